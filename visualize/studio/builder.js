// The team builder (#/new, #/team/NAME): a team of any kind the spec loader supports, its agents
// on a canvas (dragged from the library, connected by dragging), each agent's card (name,
// instructions, model client, tools), the team's options. Every change posts the draft to
// /api/studio/validate (debounced): the spec loader's problems appear at the node, edge or
// field they name, and a valid draft shows its diagram and spec. "Save" writes NAME.yaml through
// /api/studio/teams; the page then watches that file (GET /api/studio/teams, polled) and
// reloads the builder when it is edited on disk.
import * as api from "./api.js";
import { Canvas } from "./canvas.js";
import { h } from "./dom.js";
import { NEW_EDGE_KINDS, connect, edgeItem, fromDraft, pruned, toDraft, wires, without } from "./edges.js";
import { clientFields, field, nextId, v } from "./fields.js";

const KINDS = [["group_chat", "Group chat"], ["sequential", "Sequential"], ["concurrent", "Concurrent"],
  ["handoff", "Handoff"], ["graph", "Graph (edges)"], ["magentic", "Magentic (manager-led)"]];
const EDGED = new Set(["graph", "handoff"]);
/**
 * The builder page.
 * @param {(title: string, ...content: any[]) => void} page
 * @param {string | null} [teamName] a team of the studio's folder to edit
 * @returns {Promise<() => void>} stops watching the folder
 */
export async function builderView(page, teamName) {
  const library = await api.studioLibrary().catch(() => ({ kinds: [], tools: [], clients: [], folder: null }));
  /** @type {{key: string, card: HTMLElement, node: HTMLElement, name: () => string, draft: () => Record<string, any>, client: ReturnType<typeof clientFields>, tools: Map<string, HTMLInputElement>, number: number}[]} */
  const agents = [];
  /** @type {import("./edges.js").Edge[]} edges by member key (plain, fan-out, fan-in) */
  let edges = [];
  let editing = teamName || null;
  let savedJson = "";
  let knownStamp = /** @type {number | null} */ (null);
  let selected = /** @type {string | null} */ (null);

  const name = h("input", { name: "team-name", required: true, autocomplete: "off", placeholder: "my_team" });
  const description = h("input", { name: "team-description" });
  const kind = h("select", { name: "team-kind" }, ...KINDS.map(([value, label]) => h("option", { value }, label)));
  const maxRounds = h("input", { name: "max-rounds", type: "number", min: "1", value: "4" });
  const maxRoundCount = h("input", { name: "max-round-count", type: "number", min: "1", value: "10" });
  const planReview = h("input", { name: "plan-review", type: "checkbox" });
  const start = h("select", { name: "start" });
  const manager = clientFields("manager-", "Manager");
  const selectorClient = clientFields("selector-", "Selector");
  const speaker = h("select", { name: "speaker-selection" },
    h("option", { value: "round_robin" }, "round robin"), h("option", { value: "model" }, "a model picks"));
  const speakerField = field("Speaker selection", speaker, "selector");
  const selectorBox = h("fieldset", { class: "manager", "data-path": "selector.client", hidden: true },
    h("legend", null, "Speaker selector's model client"), ...selectorClient.els,
    h("p", { class: "error field-error", role: "alert", hidden: true }));
  const rounds = field("Max rounds", maxRounds, "max_rounds");
  const magentic = h("div", { class: "kind-options", hidden: true },
    field("Max Magentic rounds", maxRoundCount, "max_round_count"),
    h("div", { class: "field check", "data-path": "plan_review" }, h("label", null, planReview, " Plan review (a person approves or revises the plan)")),
    h("fieldset", { class: "manager", "data-path": "manager.client" }, h("legend", null, "Manager's model client"), ...manager.els,
      h("p", { class: "error field-error", role: "alert", hidden: true })));
  const startField = field("Start agent", start, "start");
  const stopText = h("input", { name: "stop-text", autocomplete: "off", placeholder: "e.g. APPROVED" });
  const stopField = field("Stop when a message mentions", stopText, "stop_text");
  const aggregator = h("select", { name: "aggregator" });
  const aggregatorField = field("Aggregator", aggregator, "aggregator");

  const canvas = new Canvas({
    onEdge: (from, to) => addEdge(from, to),
    onDrop: (item, x, y, key) => drop(item, x, y, key),
    onMove: () => {},
    onSelect: (key) => select(key),
  });
  const libraryItems = [
    h("button", { type: "button", "data-kind": "agent", "data-value": "agent" }, "Agent"),
    h("button", { type: "button", "data-kind": "person", "data-value": "person" }, "Person"),
    ...["scripted", "openai"].map((c) => h("button", { type: "button", "data-kind": "client", "data-value": c },
      c === "scripted" ? "Scripted model client" : "OpenAI-compatible model client")),
    ...library.tools.map((/** @type {{name: string, description: string}} */ t) =>
      h("button", { type: "button", "data-kind": "tool", "data-value": t.name, title: t.description }, `Tool: ${t.name}`)),
  ];
  for (const item of libraryItems) {
    canvas.source(item);
    item.addEventListener("click", () => {
      if (item.dataset.dragged) { delete item.dataset.dragged; return; }
      drop(item.dataset, null, null, selected);
    });
  }
  const libraryNote = h("p", { class: "muted", role: "status" });
  const aside = h("aside", { class: "library", "aria-label": "Library" }, h("h2", null, "Library"),
    h("p", { class: "muted" }, "Drag onto the canvas (or onto an agent), or press to add to the selected agent."),
    h("div", { class: "library-items" }, ...libraryItems),
    library.tools.length ? null : h("p", { class: "muted" }, "No tools: start the studio with --tools FILE.py."),
    libraryNote);

  const list = h("div", { class: "agents" });
  const add = h("button", { type: "button" }, "Add agent");
  add.addEventListener("click", () => { const a = addAgent(); a.card.querySelector("input")?.focus(); });

  const edgeKind = h("select", { name: "edge-kind" }, ...NEW_EDGE_KINDS.map(([value, label]) => h("option", { value }, label)));
  const edgeKindField = field("New edges make", edgeKind, "edge-kind");
  const edgeFrom = h("select", { name: "edge-from" });
  const edgeTo = h("select", { name: "edge-to" });
  const addEdgeButton = h("button", { type: "button" }, "Add edge");
  addEdgeButton.addEventListener("click", () => {
    const a = agents.find((x) => x.key === /** @type {any} */ (edgeFrom).value);
    const b = agents.find((x) => x.key === /** @type {any} */ (edgeTo).value);
    if (a && b) addEdge(a.key, b.key);
  });
  const edgeList = h("ul", { class: "edge-list", "aria-label": "Edges" });
  const edgesBox = h("section", { class: "edges-box", "aria-label": "Edges and handoffs", "data-path": "edges" },
    h("h2", null, "Edges"),
    h("div", { class: "add-edge" }, edgeKindField, field("Edge from", edgeFrom, "edge-from"), field("Edge to", edgeTo, "edge-to"), addEdgeButton),
    h("p", { class: "error field-error", role: "alert", hidden: true }),
    edgeList);

  const verdict = h("p", { class: "verdict", role: "status", "aria-live": "polite" });
  const diagram = h("div", { class: "diagram" }, h("p", { class: "muted" }, "The diagram appears when the draft is valid."));
  const specText = h("pre", { class: "spec-text" });
  const preview = h("section", { class: "preview", "aria-label": "Live diagram" }, h("h2", null, "Live diagram"), verdict, diagram,
    h("details", null, h("summary", null, "Spec (YAML)"), specText));
  const status = h("p", { role: "status", class: "save-status" });
  const disk = h("div", { class: "disk", role: "status" });

  const form = h("form", { class: "builder", "aria-label": "Team builder" },
    h("div", { class: "team" },
      field("Team name", name, "name"), field("Team kind", kind, "kind"),
      field("Description", description, "description"), rounds, speakerField, startField, stopField, aggregatorField, selectorBox, magentic),
    h("div", { class: "builder-grid" }, aside, h("div", { class: "canvas-box" }, canvas.el, edgesBox)),
    h("div", { class: "builder-grid2" },
      h("div", null, h("h2", null, "Agents"), list, add),
      preview),
    h("datalist", { id: "client-types" }, h("option", { value: "scripted" }), h("option", { value: "openai" })),
    h("p", { class: "error", id: "builder-error", role: "alert" }),
    h("div", { class: "save-row" }, h("button", { type: "submit" }, "Save"), status), disk);

  /** @param {Record<string, any>} [values] */
  function addAgent(values, /** @type {number | null} */ x = null, /** @type {number | null} */ y = null, person = false) {
    // a person is a member the run asks to answer (a HumanExecutor): a name, nothing else
    const kindOf = person ? "person" : "agent";
    const same = agents.filter((a) => a.kind === kindOf);
    const number = same.length ? Math.max(...same.map((a) => a.number)) + 1 : 1;
    const key = `k${nextId()}`;
    const nameInput = h("input", { name: `${kindOf}-name`, required: true, autocomplete: "off", value: values?.name ?? `${kindOf}_${number}` });
    const desc = h("input", { name: "agent-description", value: values?.description ?? "" });
    const instructions = h("textarea", { name: "agent-instructions", rows: "2" }, values?.instructions ?? "");
    const client = clientFields("");
    /** @type {Map<string, HTMLInputElement>} */
    const tools = new Map();
    const toolBoxes = library.tools.map((/** @type {{name: string}} */ t) => {
      const box = /** @type {HTMLInputElement} */ (h("input", { type: "checkbox", name: "agent-tool", value: t.name }));
      tools.set(t.name, box);
      box.addEventListener("change", () => { refresh(); changed(); });
      return h("label", { class: "tool-box" }, box, ` ${t.name}`);
    });
    const title = person ? "Person" : "Agent";
    const remove = h("button", { type: "button", class: "secondary" }, `Remove ${kindOf} ${number}`);
    const card = person
      ? h("fieldset", { class: "agent person card", "data-key": key },
        h("legend", null, `${title} ${number}`), field("Name", nameInput, "name"),
        h("p", { class: "muted" }, "The run asks this person to answer (a form on the run's page)."), remove)
      : h("fieldset", { class: "agent card", "data-key": key },
        h("legend", null, `${title} ${number}`),
        field("Name", nameInput, "name"), field("Description", desc, "description"),
        field("Instructions", instructions, "instructions"), ...client.els,
        h("fieldset", { class: "tools", "data-path": "tools" }, h("legend", null, "Tools"),
          ...(toolBoxes.length ? toolBoxes : [h("span", { class: "muted" }, "(none offered)")]),
          h("p", { class: "error field-error", role: "alert", hidden: true })),
        remove);
    const label = h("strong", { class: "node-name" });
    const clientBadge = h("span", { class: "node-client" });
    const toolChips = h("span", { class: "node-tools" });
    const node = h("div", { class: person ? "node-card person" : "node-card", tabindex: "0", role: "group" },
      label, clientBadge, toolChips,
      h("p", { class: "node-error error", role: "alert", hidden: true }));
    const port = h("button", { type: "button", class: "port", title: "Drag onto another member to connect" }, "\u2192");
    node.append(port);
    port.addEventListener("click", () => {
      if (port.dataset.dragged) { delete port.dataset.dragged; return; }
      /** @type {any} */ (edgeFrom).value = key;
      const other = agents.find((a) => a.key !== key);
      if (other && /** @type {any} */ (edgeTo).value === key) /** @type {any} */ (edgeTo).value = other.key;
      edgeTo.focus();
    });
    const agentName = () => v(nameInput);
    const refresh = () => {
      label.textContent = agentName() || "(no name)";
      node.dataset.nodeId = agentName();
      node.setAttribute("aria-label", `${title} box ${agentName()} (arrow keys move it)`);
      port.setAttribute("aria-label", `Connect ${agentName()} to another member`);
      const picked = client.draft();
      clientBadge.textContent = person ? "person" : (v(client.type) || "no client") + (picked.model && picked.type === "openai" ? ` \u00b7 ${picked.model}` : "");
      const chosen = [...tools].filter(([, b]) => b.checked).map(([n]) => n);
      toolChips.textContent = chosen.length ? `tools: ${chosen.join(", ")}` : "";
    };
    if (values?.client) client.load(values.client);
    for (const t of values?.tools || []) { const box = tools.get(t); if (box) box.checked = true; }
    nameInput.addEventListener("input", () => { refresh(); syncEdges(); });
    card.addEventListener("input", refresh);
    const entry = {
      key, card, node, name: agentName, client, tools, number, kind: kindOf,
      /** @returns {Record<string, any>} */
      draft: () => person ? { name: agentName() } : ({
        name: agentName(), description: v(desc), instructions: v(instructions), client: client.draft(),
        tools: [...tools].filter(([, b]) => b.checked).map(([n]) => n),
      }),
    };
    remove.addEventListener("click", () => {
      agents.splice(agents.indexOf(entry), 1);
      edges = without(edges, key);
      card.remove();
      canvas.remove(key);
      syncEdges();
      changed();
    });
    card.addEventListener("focusin", () => select(key));
    agents.push(entry);
    list.append(card);
    const spot = x === null || y === null ? canvas.spot(agents.length - 1) : { x: Math.max(0, x - 60), y: Math.max(0, y - 20) };
    canvas.place(key, agentName, node, spot.x, spot.y);
    refresh();
    syncEdges();
    changed();
    return entry;
  }

  /** @param {string} key */
  function select(key) {
    selected = key;
    for (const a of agents) a.node.classList.toggle("selected", a.key === key);
  }

  /** A library item dropped at (x, y) on the canvas, on agent `key`, or pressed. @param {DOMStringMap} item */
  function drop(item, /** @type {number | null} */ x, /** @type {number | null} */ y, /** @type {string | null} */ key) {
    if (item.kind === "agent" || item.kind === "person") {
      const a = addAgent(undefined, x, y, item.kind === "person");
      select(a.key);
      libraryNote.textContent = `Added ${a.name()}.`;
      return;
    }
    const target = agents.find((a) => a.key === key) || agents.find((a) => a.key === selected);
    if (!target) { libraryNote.textContent = "Drop it on an agent (or select one first)."; return; }
    if (target.kind === "person") { libraryNote.textContent = `${target.name()} is a person: tools and model clients go to agents.`; return; }
    if (item.kind === "tool" && item.value) {
      const box = target.tools.get(item.value);
      if (box) box.checked = true;
      libraryNote.textContent = `${item.value} is a tool of ${target.name()}.`;
    } else if (item.kind === "client") {
      /** @type {any} */ (target.client.type).value = item.value;
      target.client.sync();
      libraryNote.textContent = `${target.name()} uses ${item.value === "openai" ? "an OpenAI-compatible" : "a scripted"} model client.`;
    }
    target.client.type.dispatchEvent(new Event("input", { bubbles: true }));
    select(target.key);
  }

  /** @param {string} from @param {string} to keys */
  function addEdge(from, to) {
    if (!connect(edges, v(kind) === "graph" ? v(edgeKind) : "edge", from, to)) return;
    syncEdges();
    changed();
  }

  /** The edge list, the selects and the canvas arrows, from `edges` and the agents' names. */
  function syncEdges(/** @type {Set<number>} */ invalid = new Set()) {
    const byKey = new Map(agents.map((a) => [a.key, a]));
    const options = () => agents.map((a) => h("option", { value: a.key }, a.name() || "(no name)"));
    for (const select of [edgeFrom, edgeTo, start]) {
      const before = /** @type {any} */ (select).value;
      select.replaceChildren(...options());
      if (before && byKey.has(before)) /** @type {any} */ (select).value = before;
    }
    const chosen = /** @type {any} */ (aggregator).value;
    aggregator.replaceChildren(h("option", { value: "" }, "(none: the replies as they are)"),
      ...agents.map((a) => h("option", { value: a.name() }, `${a.kind} ${a.name()}`)),
      ...library.tools.map((/** @type {{name: string}} */ t) => h("option", { value: t.name }, `function ${t.name}`)));
    /** @type {any} */ (aggregator).value = chosen;
    const to = /** @type {any} */ (edgeTo);
    if ((!to.value || to.value === /** @type {any} */ (edgeFrom).value) && agents[1]) to.value = agents[1].key;
    // the list is rebuilt: the control that had the focus gets it back (keyboard path)
    const focused = edgeList.contains(document.activeElement) ? document.activeElement?.getAttribute("aria-label") : null;
    const nameOf = (/** @type {string} */ key) => byKey.get(key)?.name() || "(no name)";
    edgeList.replaceChildren(...edges.map((e, i) => edgeItem(e, i, {
      name: nameOf, members: () => agents.map((a) => a.key), functions: library.tools, graph: v(kind) === "graph",
      changed: () => { edges = pruned(edges); syncEdges(); changed(); },
      remove: () => { edges.splice(i, 1); syncEdges(); changed(); },
    })));
    if (focused) /** @type {HTMLElement | null} */ (edgeList.querySelector(`[aria-label="${CSS.escape(focused)}"]`))?.focus();
    if (!edges.length) edgeList.append(h("li", { class: "muted" }, "(no edges)"));
    markEdges(invalid);
  }

  /** Mark the edges with problems (list and arrows) without rebuilding the list: focus stays. @param {Set<number>} invalid */
  function markEdges(invalid) {
    for (const item of edgeList.querySelectorAll("[data-edge-index]")) {
      item.classList.toggle("invalid", invalid.has(Number(/** @type {HTMLElement} */ (item).dataset.edgeIndex)));
    }
    canvas.setEdges(wires(edges, invalid, v(kind) === "graph"));
  }

  function syncKind() {
    const k = v(kind);
    rounds.hidden = k !== "group_chat";
    speakerField.hidden = k !== "group_chat";
    selectorBox.hidden = k !== "group_chat" || v(speaker) !== "model";
    stopField.hidden = k !== "group_chat" && k !== "handoff";
    aggregatorField.hidden = k !== "concurrent";
    magentic.hidden = k !== "magentic";
    startField.hidden = !EDGED.has(k);
    edgeKindField.hidden = k !== "graph";
    edgesBox.hidden = !EDGED.has(k);
    canvas.el.classList.toggle("edged", EDGED.has(k));
    syncEdges();
  }

  function draft() {
    /** @type {Record<string, any>} */
    const options = {};
    const k = v(kind);
    if (k === "group_chat" && v(maxRounds)) options.max_rounds = Number(v(maxRounds));
    if (k === "magentic") {
      if (v(maxRoundCount)) options.max_round_count = Number(v(maxRoundCount));
      options.plan_review = /** @type {HTMLInputElement} */ (planReview).checked;
    }
    if ((k === "group_chat" || k === "handoff") && v(stopText)) options.stop_text = v(stopText);
    if (k === "concurrent" && v(aggregator)) options.aggregator = v(aggregator);
    const byKey = new Map(agents.map((a) => [a.key, a.name()]));
    /** @type {Record<string, any>} */
    const d = {
      name: v(name), kind: k, description: v(description), options,
      agents: agents.filter((a) => a.kind === "agent").map((a) => a.draft()),
      people: agents.filter((a) => a.kind === "person").map((a) => a.draft()),
    };
    if (EDGED.has(k)) {
      d.edges = toDraft(edges, (key) => byKey.get(key), k === "graph");
      d.start = byKey.get(/** @type {any} */ (start).value) || null;
    }
    if (k === "magentic") d.manager = { client: manager.draft() };
    if (k === "group_chat" && v(speaker) === "model") d.selector = { client: selectorClient.draft() };
    return d;
  }

  /** Show each problem at the node, edge or field its path names. @param {{path: string, message: string}[]} problems */
  function showProblems(problems) {
    for (const el of form.querySelectorAll(".field-error, .node-error")) { el.textContent = ""; /** @type {HTMLElement} */ (el).hidden = true; }
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    for (const el of edgeList.querySelectorAll(".chip.invalid, [data-path].invalid")) el.classList.remove("invalid");
    for (const a of agents) a.node.classList.remove("invalid");
    const general = /** @type {HTMLElement} */ (form.querySelector("#builder-error"));
    general.textContent = "";
    /** @type {Set<number>} */
    const badEdges = new Set();
    /** @type {[HTMLElement, string][]} */
    const notes = [];
    for (const { path, message } of problems) {
      const indexed = /^(agents|people)\[(\d+)\](?:\.(\w+))?/.exec(path);
      const named = /^(?:agents|people)\.([^.[]+)(?:\.([a-z_.]+))?/.exec(path);
      const edge = /^edges\[(\d+)\]/.exec(path);
      const ofKind = indexed ? agents.filter((a) => a.kind === (indexed[1] === "people" ? "person" : "agent")) : [];
      let agent = indexed ? ofKind[Number(indexed[2])] : named ? agents.find((a) => a.name() === named[1]) : undefined;
      const key = indexed ? (indexed[3] || "name") : named ? (named[2] || "") : "";
      if (agent) {
        // the most precise field: client.api_key_env, else client
        const slot = key && (agent.card.querySelector(`[data-path="${key.replace(/\.$/, "")}"]`) || agent.card.querySelector(`[data-path="${key.split(".")[0]}"]`));
        if (slot) notes.push([/** @type {HTMLElement} */ (slot), message]);
        notes.push([agent.node, message]);
        agent.node.classList.add("invalid");
      } else if (edge) {
        badEdges.add(Number(edge[1]));
      } else {
        const head = path.split(".")[0];
        const slot = head === "manager" || head === "selector" ? `${head}.client` : head === "termination" ? "stop_text" : head;
        const team = path === "edges" ? edgesBox : form.querySelector(`.team [data-path="${slot}"]`);
        if (team) notes.push([/** @type {HTMLElement} */ (team), message]);
        else general.textContent += `${path ? path + ": " : ""}${message} `;
      }
    }
    markEdges(badEdges);
    for (const { path, message } of problems) {
      const edge = /^edges\[(\d+)\]\.?(.*)$/.exec(path);
      const item = edge && edgeList.querySelector(`[data-edge-index="${edge[1]}"]`);
      if (item) notes.push([edgePart(/** @type {HTMLElement} */ (item), edge[2]), message]);
    }
    for (const [where, message] of notes) {
      const slot = /** @type {HTMLElement | null} */ (where.querySelector(":scope > .field-error, :scope > .node-error"));
      if (!slot) continue;
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + message;
      slot.hidden = false;
      where.querySelector("input, textarea, select")?.setAttribute("aria-invalid", "true");
    }
  }

  /**
   * The part of an edge's item a problem's path names (`from[1]`, `to`, `select`): the most
   * precise one with an error slot, the member it names marked too; else the whole item.
   * @param {HTMLElement} item @param {string} tail
   */
  function edgePart(item, tail) {
    const exact = tail && item.querySelector(`[data-path="${CSS.escape(tail)}"]`);
    if (exact) exact.classList.add("invalid");
    for (let path = tail; path; path = path.replace(/(\[\d+\]|\.?[^.[]+)$/, "")) {
      const part = /** @type {HTMLElement | null} */ (item.querySelector(`[data-path="${CSS.escape(path)}"]`));
      if (part?.querySelector(":scope > .field-error")) return part;
    }
    return item;
  }

  let timer = 0;
  let asked = 0;
  function changed() {
    clearTimeout(timer);
    timer = window.setTimeout(validate, 350);
  }
  async function validate() {
    const mine = ++asked;
    const d = draft();
    if (!d.agents.length && !d.name) { verdict.textContent = ""; return; }
    let result;
    try { result = await api.validateTeam(d); } catch (error) { verdict.textContent = String(error); return; }
    if (mine !== asked) return; // a newer draft is on its way
    showProblems(result.problems);
    verdict.textContent = result.ok ? "Valid: ready to save." : `${result.problems.length} problem${result.problems.length === 1 ? "" : "s"}.`;
    verdict.className = result.ok ? "verdict ok" : "verdict error";
    if (result.ok) {
      specText.textContent = result.spec;
      diagram.replaceChildren(result.diagram
        ? h("img", { src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(result.diagram)}`, alt: `Diagram of ${d.name}` })
        : h("p", { class: "muted" }, "(no diagram: Graphviz's dot is not installed)"));
    }
  }

  /** Fill the form from a draft (a saved team, or the file after an edit on disk). @param {Record<string, any>} d */
  function load(d) {
    for (const a of [...agents]) { a.card.remove(); canvas.remove(a.key); }
    agents.length = 0;
    edges = [];
    /** @type {any} */ (name).value = d.name || "";
    /** @type {any} */ (description).value = d.description || "";
    /** @type {any} */ (kind).value = d.kind || "group_chat";
    const o = d.options || {};
    if (o.max_rounds) /** @type {any} */ (maxRounds).value = o.max_rounds;
    if (o.max_round_count) /** @type {any} */ (maxRoundCount).value = o.max_round_count;
    /** @type {any} */ (stopText).value = o.stop_text || "";
    /** @type {HTMLInputElement} */ (planReview).checked = !!o.plan_review;
    if (d.manager) manager.load(d.manager.client || {});
    /** @type {any} */ (speaker).value = d.selector ? "model" : "round_robin";
    if (d.selector) selectorClient.load(d.selector.client || {});
    const at = layers(d);
    for (const a of d.agents || []) addAgent(a, ...at(a.name));
    for (const p of d.people || []) addAgent(p, ...at(p.name), true);
    const keyOf = new Map(agents.map((a) => [a.name(), a.key]));
    edges = fromDraft(d.edges, keyOf);
    syncEdges();
    if (d.start && keyOf.has(d.start)) /** @type {any} */ (start).value = keyOf.get(d.start);
    /** @type {any} */ (aggregator).value = o.aggregator || "";
    syncKind();
    savedJson = JSON.stringify(draft());
    changed();
  }

  /**
   * Where a loaded team's members go on the canvas: a column per step from the start (so
   * fan-outs and fan-ins read left to right), else the default grid.
   * @param {Record<string, any>} d @returns {(name: string) => [number | null, number | null]}
   */
  function layers(d) {
    if (!EDGED.has(d.kind) || !d.start) return () => [null, null];
    const depth = new Map([[d.start, 0]]);
    const names = (/** @type {any} */ x) => (Array.isArray(x) ? x : [x]);
    const pairs = (d.edges || []).flatMap((/** @type {any} */ e) =>
      names(e.from).flatMap((/** @type {string} */ f) => names(e.to ?? (e.cases || []).map((/** @type {any} */ c) => c.to)).map((/** @type {string} */ t) => [f, t])));
    for (let changed = true, rounds = 0; changed && rounds < 64; rounds++) {
      changed = false;
      for (const [f, t] of pairs) if (depth.has(f) && !depth.has(t)) { depth.set(t, /** @type {number} */ (depth.get(f)) + 1); changed = true; }
    }
    const rows = new Map(), top = canvas.spot(0).y;
    return (name) => {
      const column = depth.get(name) ?? Math.max(0, ...depth.values()) + 1;
      const row = rows.get(column) || 0;
      rows.set(column, row + 1);
      return [20 + column * 290 + 60, top + row * 110 + 20];
    };
  }

  async function openTeam(/** @type {string} */ team) {
    const found = await api.studioTeam(team);
    load(found.draft);
    disk.replaceChildren(found.editable ? "" : h("p", { class: "error" }, `The builder cannot show all of ${found.file}: ${found.reason}. Saving would drop those parts.`));
    return found;
  }

  async function watch() {
    if (!editing) return;
    let listing;
    try { listing = await api.studioTeams(); } catch { return; }
    const entry = listing.teams.find((/** @type {any} */ t) => t.name === editing);
    if (!entry) return;
    if (entry.error) {
      disk.replaceChildren(h("p", { class: "error", role: "alert" }, `${entry.file} on disk has a problem: ${entry.error}`));
      knownStamp = entry.mtime_ns;
      return;
    }
    if (knownStamp === null) { knownStamp = entry.mtime_ns; return; }
    if (entry.mtime_ns === knownStamp) return;
    knownStamp = entry.mtime_ns;
    if (JSON.stringify(draft()) === savedJson) {
      await openTeam(editing);
      disk.replaceChildren(h("p", { class: "notice" }, `${entry.file} changed on disk: reloaded.`));
    } else {
      const reload = h("button", { type: "button" }, "Reload from disk");
      reload.addEventListener("click", async () => { await openTeam(/** @type {string} */ (editing)); disk.replaceChildren(); });
      disk.replaceChildren(h("p", { class: "notice" }, `${entry.file} changed on disk; your edits here are not saved. `, reload));
    }
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", (event) => { if (event.target === kind || event.target === speaker) syncKind(); changed(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = draft();
    status.textContent = "Saving…";
    try {
      const saved = await api.saveTeam({ ...d, replace: editing === d.name });
      showProblems([]);
      editing = saved.name;
      savedJson = JSON.stringify(d);
      history.replaceState(null, "", `#/team/${encodeURIComponent(saved.name)}`);
      const listing = await api.studioTeams().catch(() => null);
      knownStamp = listing?.teams.find((/** @type {any} */ t) => t.name === saved.name)?.mtime_ns ?? null;
      status.replaceChildren(`Saved ${saved.path}. `, h("a", { href: `#/w/${encodeURIComponent(saved.name)}` }, `Open ${saved.name} in the playground`));
    } catch (error) {
      status.textContent = "Not saved.";
      const problems = error instanceof api.ApiError && error.problems ? error.problems : [{ path: "", message: String(error instanceof Error ? error.message : error) }];
      showProblems(problems);
    }
  });

  syncKind();
  page(teamName ? `Team ${teamName}` : "New team", form);
  syncEdges();
  if (teamName) {
    const found = await openTeam(teamName);
    knownStamp = null;
    if (found.error) disk.replaceChildren(h("p", { class: "error", role: "alert" }, `${found.file} on disk has a problem: ${found.error}`));
  }
  const poll = window.setInterval(watch, 1000);
  return () => { clearInterval(poll); clearTimeout(timer); };
}
