// Ledgerflow Studio: a hash-routed page over the service's API.
//   #/             gallery: every workflow, linked by name, with its diagram and description
//   #/w/NAME       playground: an "Input" field from the start executor's schema, "Run"
//   #/new          team builder: a new team saved as a spec file and served
//   #/team/NAME    team builder on a team of the studio's folder (reloads when the file changes)
//   #/runs         history, filtered by workflow and status
//   #/runs/ID      a run, live: graph, agents' messages, requests, outputs, checkpoints, fork
import * as api from "./api.js";
import { h, show } from "./dom.js";
import { LiveGraph } from "./graph.js";
import { runView } from "./run.js";

const main = /** @type {HTMLElement} */ (document.getElementById("main"));
/** @type {(() => void) | null} what to stop when leaving a view (an open event stream) */
let leave = null;

/** @param {string} title @param {...(Node | string | null | false)} content */
function page(title, ...content) {
  document.title = `${title} · Ledgerflow Studio`;
  main.replaceChildren(h("h1", null, title), ...content);
}

/** @param {unknown} error */
function failure(error) {
  return h("p", { class: "error", role: "alert" }, error instanceof Error ? error.message : String(error));
}

/** @param {typeof page} page */
async function gallery(page) {
  const [list, folder] = await Promise.all([api.workflows(), api.studioTeams().catch(() => ({ version: 0, teams: [] }))]);
  const editable = new Map(folder.teams.map((/** @type {any} */ t) => [t.name, t]));
  const items = list.map((wf) => {
    const team = editable.get(wf.name);
    const img = h("img", { src: `${api.diagramUrl(wf.name)}?v=${folder.version}`, alt: `Diagram of ${wf.name}`, loading: "lazy" });
    img.addEventListener("error", () => img.replaceWith(h("p", { class: "muted" }, "(no diagram: Graphviz's dot is not installed)")));
    return h("li", { class: "card" },
      h("h2", null, h("a", { href: `#/w/${encodeURIComponent(wf.name)}` }, wf.name)),
      h("p", null, wf.description || "(no description)"),
      team ? h("p", null, h("a", { href: `#/team/${encodeURIComponent(wf.name)}` }, `Edit ${wf.name} in the builder`), ` (${team.file})`) : null,
      team && team.error ? h("p", { class: "error", role: "alert" }, `${team.file} on disk has a problem: ${team.error}`) : null,
      img);
  });
  const broken = folder.teams.filter((/** @type {any} */ t) => t.error && !list.some((w) => w.name === t.name));
  page("Gallery", list.length ? h("ul", { class: "cards" }, ...items) : h("p", null, "No workflows yet: build one with \u201cNew team\u201d, or start the studio with a TARGET (a .py or spec file)."),
    ...broken.map((/** @type {any} */ t) => h("p", { class: "error", role: "alert" }, `${t.file} on disk has a problem: ${t.error}`)));
  // the folder is watched: a file edited, added or removed on disk redraws the gallery
  const poll = window.setInterval(async () => {
    const now = await api.studioTeams().catch(() => null);
    if (now && now.version !== folder.version) route();
  }, 1500);
  return () => clearInterval(poll);
}

/** @param {string} name @param {typeof page} page */
async function playground(name, page) {
  const [all, graph] = await Promise.all([api.workflows(), api.graph(name)]);
  const wf = all.find((w) => w.name === name);
  if (!wf) throw new Error(`no workflow ${JSON.stringify(name)}`);
  const schema = wf.input_schema || {};
  // a start executor that takes text (perhaps among other types) gets a text field
  const text = schema.type === "string" || (schema.anyOf || []).some((/** @type {any} */ s) => s.type === "string");
  const field = text
    ? h("input", { id: "input", name: "input", type: "text", required: true })
    : h("textarea", { id: "input", name: "input", rows: "6", spellcheck: "false" }, example(schema));
  const status = h("p", { role: "status" });
  const form = h("form", { class: "run-form" },
    h("label", { for: "input" }, "Input"),
    h("p", { class: "muted", id: "input-hint" }, text ? "Text" : "JSON matching the schema below"),
    field,
    h("button", { type: "submit" }, "Run"),
    status,
    !text && Object.keys(schema).length ? h("details", null, h("summary", null, "Input schema"), h("pre", null, show(schema))) : null);
  field.setAttribute("aria-describedby", "input-hint");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const raw = /** @type {HTMLInputElement} */ (field).value;
    status.textContent = "Starting…";
    try {
      const input = text ? raw : JSON.parse(raw);
      const started = await api.startRun(name, input);
      location.hash = `#/runs/${encodeURIComponent(started.run_id)}`;
    } catch (error) {
      status.replaceChildren(failure(error));
    }
  });
  page(name, h("p", null, wf.description), form, new LiveGraph(graph).el);
}

/** A starting value for a JSON input, from its schema. @param {Record<string, any>} schema */
function example(schema) {
  /** @param {Record<string, any>} s @returns {any} */
  const of = (s) => {
    if (s.$ref && schema.$defs) return of(schema.$defs[s.$ref.split("/").pop()] || {});
    if (s.default !== undefined) return s.default;
    switch (s.type) {
      case "object": return Object.fromEntries(Object.entries(s.properties || {}).map(([k, v]) => [k, of(v)]));
      case "array": return [];
      case "string": return "";
      case "integer": case "number": return 0;
      case "boolean": return false;
      default: return null;
    }
  };
  return JSON.stringify(of(schema), null, 2);
}

/** @param {typeof page} page */
async function history(page) {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  const workflows = await api.workflows();
  const wfSelect = h("select", { id: "f-workflow", name: "workflow" }, h("option", { value: "" }, "All"),
    ...workflows.map((w) => h("option", { value: w.name, selected: params.get("workflow") === w.name }, w.name)));
  const statusSelect = h("select", { id: "f-status", name: "status" }, h("option", { value: "" }, "All"),
    ...["running", "awaiting_input", "completed", "failed", "cancelled", "max_supersteps"].map((s) =>
      h("option", { value: s, selected: params.get("status") === s }, s)));
  const filters = h("form", { class: "filters", "aria-label": "Filter runs" },
    h("label", { for: "f-workflow" }, "Workflow"), wfSelect,
    h("label", { for: "f-status" }, "Status"), statusSelect,
    h("button", { type: "submit" }, "Filter"));
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    const w = /** @type {HTMLSelectElement} */ (wfSelect).value;
    const s = /** @type {HTMLSelectElement} */ (statusSelect).value;
    if (w) next.set("workflow", w);
    if (s) next.set("status", s);
    location.hash = `#/runs?${next}`;
  });
  const rows = await api.runs({ workflow: params.get("workflow") || "", status: params.get("status") || "", limit: 200 });
  const table = h("table", { class: "runs" },
    h("caption", null, `${rows.length} run${rows.length === 1 ? "" : "s"}${rows.length === 200 ? " (the latest 200)" : ""}`),
    h("thead", null, h("tr", null, h("th", { scope: "col" }, "Run"), h("th", { scope: "col" }, "Workflow"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Updated"))),
    h("tbody", null, ...rows.map((r) => h("tr", { "data-status": r.status },
      h("td", null, h("a", { href: `#/runs/${encodeURIComponent(r.run_id)}` }, r.run_id)),
      h("td", null, r.workflow), h("td", null, r.status), h("td", null, new Date(r.updated_at).toLocaleString())))));
  page("Runs", filters, table);
}

let generation = 0;

async function route() {
  if (leave) { leave(); leave = null; }
  const mine = ++generation;
  // a view still loading when the person moves on must neither draw nor keep polling
  const current = () => mine === generation;
  /** @type {typeof page} */
  const draw = (title, ...content) => { if (current()) page(title, ...content); };
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  /** @type {(() => void) | null | undefined} */
  let stop = null;
  try {
    if (parts.length === 0) stop = await gallery(draw);
    else if (parts[0] === "w" && parts[1]) await playground(parts[1], draw);
    else if (parts[0] === "runs" && parts[1]) stop = await runView(parts[1], draw);
    else if (parts[0] === "runs") await history(draw);
    else if (parts[0] === "new" || (parts[0] === "team" && parts[1])) {
      // the builder (and its canvas) load only when asked for: the other pages stay light
      const { builderView } = await import("./builder.js");
      stop = await builderView(draw, parts[0] === "team" ? parts[1] : null);
    }
    else draw("Not found", h("p", null, "No such page. "), h("a", { href: "#/" }, "Gallery"));
  } catch (error) {
    draw("Error", failure(error));
  }
  if (!current()) { if (stop) stop(); return; }
  leave = stop || null;
  for (const link of document.querySelectorAll("header nav a")) {
    const here = link.getAttribute("href") === `#/${parts[0] === "runs" || parts[0] === "new" ? parts[0] : parts[0] === "team" ? "new" : ""}`;
    if (here) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
}

window.addEventListener("hashchange", route);
route();
