// The builder's edges, by member key: plain edges (a condition, optionally), fan-outs (one
// member to several; every target gets each message, or those a function selects), fan-ins
// (several members to one, which waits for a reply from each and gets them as a list) and
// switches (cases in order, each a condition and a target; the one without a condition is the
// default, taken when no other case holds). They
// have the graph spec's shapes, so a draft saves as the edges the spec loader reads back.
// Each edge is an item of the "Edges" list with its own fields; a problem whose path names a
// part of it (edges[2].from[1]) is shown at that part.
import { h } from "./dom.js";

/** @typedef {{kind: "edge", from: string, to: string, when?: string}} Plain */
/** @typedef {{kind: "fan_out", from: string, to: string[], select?: string}} FanOut */
/** @typedef {{kind: "fan_in", from: string[], to: string}} FanIn */
/** @typedef {{kind: "switch", from: string, cases: {when?: string, to: string}[]}} Switch */
/** @typedef {Plain | FanOut | FanIn | Switch} Edge */

/** What a new connection (dragged on the canvas, or "Add edge") makes, in a graph team. */
export const NEW_EDGE_KINDS = [["edge", "a plain edge"], ["fan_out", "a fan-out (one to many)"], ["fan_in", "a fan-in (many to one)"],
  ["switch", "a switch case (first that holds)"]];

/**
 * Connect `from` to `to` as `kind`: a fan-out grows the source's last fan-out, a fan-in the
 * target's last fan-in. @param {Edge[]} edges @param {string} kind @param {string} from @param {string} to
 * @returns {boolean} whether anything changed
 */
export function connect(edges, kind, from, to) {
  if (kind === "fan_out") {
    const fan = /** @type {FanOut | undefined} */ (edges.findLast((e) => e.kind === "fan_out" && e.from === from));
    if (fan) {
      if (fan.to.includes(to)) return false;
      fan.to.push(to);
    } else edges.push({ kind: "fan_out", from, to: [to] });
    return true;
  }
  if (kind === "fan_in") {
    const fan = /** @type {FanIn | undefined} */ (edges.findLast((e) => e.kind === "fan_in" && e.to === to));
    if (fan) {
      if (fan.from.includes(from)) return false;
      fan.from.push(from);
    } else edges.push({ kind: "fan_in", from: [from], to });
    return true;
  }
  if (kind === "switch") {
    const sw = /** @type {Switch | undefined} */ (edges.findLast((e) => e.kind === "switch" && e.from === from));
    if (sw) addCase(sw, to);
    else edges.push({ kind: "switch", from, cases: [{ to }] }); // its first case: the default
    return true;
  }
  if (edges.some((e) => e.kind === "edge" && e.from === from && e.to === to)) return false;
  edges.push({ kind: "edge", from, to });
  return true;
}

/** A case to `to`, before the default (the default stays last). @param {Switch} sw @param {string} to */
function addCase(sw, to) {
  const fallback = sw.cases.findIndex((c) => !c.when);
  sw.cases.splice(fallback < 0 ? sw.cases.length : fallback, 0, { to });
}

/** The edges left with members (a fan or switch whose last member went is dropped). @param {Edge[]} edges */
export function pruned(edges) {
  return edges.filter((e) => e.kind === "edge" || (e.kind === "switch" ? e.cases.length : e.kind === "fan_out" ? e.to.length : e.from.length));
}

/** The edges without member `key` (removed from the team). @param {Edge[]} edges @param {string} key @returns {Edge[]} */
export function without(edges, key) {
  /** @type {Edge[]} */
  const kept = [];
  for (const e of edges) {
    if (e.kind === "edge") { if (e.from !== key && e.to !== key) kept.push(e); }
    else if (e.kind === "switch") {
      const cases = e.cases.filter((c) => c.to !== key);
      if (e.from !== key && cases.length) kept.push({ ...e, cases });
    }
    else if (e.kind === "fan_out") {
      const to = e.to.filter((t) => t !== key);
      if (e.from !== key && to.length) kept.push({ ...e, to });
    } else {
      const from = e.from.filter((f) => f !== key);
      if (e.to !== key && from.length) kept.push({ ...e, from });
    }
  }
  return kept;
}

/** The draft's edges (member names). @param {Edge[]} edges @param {(key: string) => string | undefined} name @param {boolean} graph */
export function toDraft(edges, name, graph) {
  return edges.map((e) => {
    if (e.kind === "fan_out") return { from: name(e.from), to: e.to.map(name), ...(e.select ? { select: e.select } : {}) };
    if (e.kind === "fan_in") return { from: e.from.map(name), to: name(e.to) };
    if (e.kind === "switch") return { from: name(e.from), cases: e.cases.map((c) => ({ ...(c.when ? { when: c.when } : {}), to: name(c.to) })) };
    return { from: name(e.from), to: name(e.to), ...(graph && e.when ? { when: e.when } : {}) };
  });
}

/** Edges from a draft's (names), dropping those naming no member. @param {any[]} list @param {Map<string, string>} keyOf @returns {Edge[]} */
export function fromDraft(list, keyOf) {
  /** @type {Edge[]} */
  const edges = [];
  const keys = (/** @type {any} */ names) => (Array.isArray(names) ? names : []).map((n) => keyOf.get(n)).filter((k) => k !== undefined);
  for (const e of list || []) {
    if (Array.isArray(e.cases)) {
      const from = keyOf.get(e.from);
      const cases = e.cases.map((/** @type {any} */ c) => ({ to: keyOf.get(c.to), ...(c.when ? { when: c.when } : {}) })).filter((/** @type {any} */ c) => c.to);
      if (from && cases.length) edges.push({ kind: "switch", from, cases });
    } else if (Array.isArray(e.to)) {
      const from = keyOf.get(e.from), to = keys(e.to);
      if (from && to.length) edges.push({ kind: "fan_out", from, to, ...(e.select ? { select: e.select } : {}) });
    } else if (Array.isArray(e.from)) {
      const to = keyOf.get(e.to), from = keys(e.from);
      if (to && from.length) edges.push({ kind: "fan_in", from, to });
    } else {
      const from = keyOf.get(e.from), to = keyOf.get(e.to);
      if (from && to) edges.push({ kind: "edge", from, to, ...(e.when ? { when: e.when } : {}) });
    }
  }
  return edges;
}

/** The canvas's arrows. @param {Edge[]} edges @param {Set<number>} invalid @param {boolean} graph */
export function wires(edges, invalid, graph) {
  return edges.flatMap((e, i) => {
    const bad = invalid.has(i);
    if (e.kind === "fan_out") {
      const label = e.select ? `fan-out, select ${e.select}` : "fan-out";
      return e.to.map((to) => ({ from: e.from, to, label, invalid: bad, kind: "fan_out" }));
    }
    if (e.kind === "fan_in") return e.from.map((from) => ({ from, to: e.to, label: "fan-in", invalid: bad, kind: "fan_in" }));
    if (e.kind === "switch") {
      return e.cases.map((c, j) => ({ from: e.from, to: c.to, label: c.when ? `case ${j + 1}: ${c.when}` : "default", invalid: bad, kind: "switch" }));
    }
    return [{ from: e.from, to: e.to, label: graph && e.when ? `when ${e.when}` : "", invalid: bad, kind: "edge" }];
  });
}

/**
 * @typedef {{name: (key: string) => string, members: () => string[], functions: {name: string}[], graph: boolean, changed: () => void, remove: () => void}} ItemHooks
 */

/** A member chip with its own remove button. @param {string} text @param {string} path @param {string} label @param {() => void} onRemove */
function chip(text, path, label, onRemove) {
  const x = h("button", { type: "button", class: "secondary chip-x", "aria-label": label }, "\u00d7");
  x.addEventListener("click", onRemove);
  return h("span", { class: "chip", "data-path": path }, text, " ", x);
}

/** A "pick a function" select. @param {string} label @param {string} none @param {string} prefix @param {{name: string}[]} functions @param {string | undefined} value @param {(v: string | undefined) => void} set */
function functionPick(label, none, prefix, functions, value, set) {
  const pick = /** @type {HTMLSelectElement} */ (h("select", { "aria-label": label }, h("option", { value: "" }, none),
    ...functions.map((t) => h("option", { value: t.name, selected: value === t.name }, `${prefix} ${t.name}`))));
  pick.addEventListener("change", () => set(pick.value || undefined));
  return pick;
}

/** The text naming edge `e` (in labels and messages). @param {Edge} e @param {(key: string) => string} name */
export function edgeName(e, name) {
  if (e.kind === "fan_out") return `fan-out from ${name(e.from)}`;
  if (e.kind === "fan_in") return `fan-in to ${name(e.to)}`;
  if (e.kind === "switch") return `switch from ${name(e.from)}`;
  return `${name(e.from)} \u2192 ${name(e.to)}`;
}

/** Edge `e`'s item in the "Edges" list: its members and fields, each removable. @param {Edge} e @param {number} i @param {ItemHooks} hooks */
export function edgeItem(e, i, hooks) {
  const { name } = hooks;
  const title = edgeName(e, name);
  const remove = h("button", { type: "button", class: "secondary", "aria-label": `Remove ${e.kind === "edge" ? "edge " : ""}${title}` },
    e.kind === "edge" ? "Remove" : `Remove ${title.split(" ")[0]}`);
  remove.addEventListener("click", hooks.remove);
  const error = () => h("p", { class: "error field-error", role: "alert", hidden: true });
  /** @type {(Node | string | null)[]} */
  let parts;
  if (e.kind === "fan_out") {
    const targets = h("span", { class: "chips edge-part", "data-path": "to" }, ...e.to.map((t, j) => chip(name(t), `to[${j}]`, `Remove ${name(t)} from the ${title}`, () => {
      e.to.splice(j, 1);
      hooks.changed();
    })), error());
    const select = functionPick(`Selection of the ${title}`, "every target", "select", hooks.functions, e.select, (value) => { e.select = value; hooks.changed(); });
    parts = [h("span", { class: "edge-title" }, `Fan-out from ${name(e.from)} to`), " ", targets, " ", h("span", { class: "edge-part", "data-path": "select" }, select, error())];
  } else if (e.kind === "fan_in") {
    const sources = h("span", { class: "chips edge-part", "data-path": "from" }, ...e.from.map((f, j) => chip(name(f), `from[${j}]`, `Remove ${name(f)} from the ${title}`, () => {
      e.from.splice(j, 1);
      hooks.changed();
    })), error());
    parts = [h("span", { class: "edge-title" }, `Fan-in to ${name(e.to)} from`), " ", sources];
  } else if (e.kind === "switch") {
    parts = [h("span", { class: "edge-title" }, `Switch from ${name(e.from)}`), " ", cases(e, title, hooks, error)];
  } else {
    // a graph edge may carry a condition: one of the studio's functions, of the message
    const condition = hooks.graph
      ? functionPick(`Condition of ${title}`, "always", "when", hooks.functions, e.when, (value) => { e.when = value; hooks.changed(); })
      : null;
    parts = [h("span", null, title), " ", condition];
  }
  return h("li", { "data-edge-index": i, "data-edge-kind": e.kind }, ...parts, " ", remove, error());
}

/**
 * A switch's cases in order: each "Condition" (a function, or "otherwise": the default) and
 * "Target", removable; "Add case" puts a new one before the default.
 * @param {Switch} e @param {string} title @param {ItemHooks} hooks @param {() => HTMLElement} error
 */
function cases(e, title, hooks, error) {
  const rows = e.cases.map((c, j) => {
    const of = `case ${j + 1} of the ${title}`;
    const condition = functionPick(`Condition of ${of}`, "otherwise (default)", "when", hooks.functions, c.when, (value) => { c.when = value; hooks.changed(); });
    const target = /** @type {HTMLSelectElement} */ (h("select", { "aria-label": `Target of ${of}` },
      ...hooks.members().map((key) => h("option", { value: key, selected: key === c.to }, hooks.name(key)))));
    target.addEventListener("change", () => { c.to = target.value; hooks.changed(); });
    const remove = h("button", { type: "button", class: "secondary", "aria-label": `Remove ${of}` }, "Remove case");
    remove.addEventListener("click", () => { e.cases.splice(j, 1); hooks.changed(); });
    return h("li", { class: "case", "data-path": `cases[${j}]` }, h("span", { class: "case-name" }, `Case ${j + 1}`), condition, "\u2192", target, remove, error());
  });
  const add = h("button", { type: "button", class: "secondary", "aria-label": `Add a case to the ${title}` }, "Add case");
  add.addEventListener("click", () => {
    const to = hooks.members().find((key) => key !== e.from);
    if (to) { addCase(e, to); hooks.changed(); }
  });
  return h("div", { class: "cases", "data-path": "cases" }, h("ol", null, ...rows), add, error());
}
