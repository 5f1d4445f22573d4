// The live graph: one box per executor (data-node-id, data-status) and one row per edge with
// the number of messages it carried. Laid out in layers from the start executor, so it reads
// top to bottom at any width without a layout engine.
import { h } from "./dom.js";

/** @typedef {import("./api.js").Graph} Graph */

export const STATUSES = ["idle", "running", "completed", "failed", "waiting"];

export class LiveGraph {
  /** @param {Graph} graph */
  constructor(graph) {
    this.graph = graph;
    /** @type {Map<string, HTMLElement>} */
    this.nodes = new Map();
    /** @type {Map<string, {el: HTMLElement, count: number}>} */
    this.edges = new Map();
    this.el = h("figure", { class: "graph", "aria-label": `Graph of ${graph.name}` });
    const rows = h("div", { class: "layers" });
    for (const layer of layers(graph)) {
      const row = h("div", { class: "layer" });
      for (const id of layer) {
        const node = h("div", { class: "node", "data-node-id": id, "data-status": "idle", tabindex: "0" },
          h("span", { class: "node-id" }, id), h("span", { class: "node-status" }, "idle"));
        this.nodes.set(id, node);
        row.append(node);
      }
      rows.append(row);
    }
    const list = h("ul", { class: "edges", "aria-label": "Edges" });
    for (const edge of graph.edges) {
      const key = `${edge.source}\u2192${edge.target}`;
      const count = h("span", { class: "count" }, "0");
      const el = h("li", { "data-edge": key, "data-count": "0" }, `${edge.source} \u2192 ${edge.target}: `, count, " messages");
      this.edges.set(key, { el, count: 0 });
      list.append(el);
    }
    this.el.append(rows, list);
  }

  /** @param {string} id @param {string} status */
  setStatus(id, status) {
    const node = this.nodes.get(id.split("/")[0]);
    if (!node) return;
    node.dataset.status = status;
    const label = node.querySelector(".node-status");
    if (label) label.textContent = status;
  }

  /** @param {string} source @param {Record<string, number>} messages per target */
  countMessages(source, messages) {
    for (const [target, n] of Object.entries(messages || {})) {
      const edge = this.edges.get(`${source}\u2192${target}`);
      if (!edge) continue;
      edge.count += n;
      edge.el.dataset.count = String(edge.count);
      const count = edge.el.querySelector(".count");
      if (count) count.textContent = String(edge.count);
    }
  }
}

/** Executors by distance from the start (breadth first); unreachable ones last. @param {Graph} graph */
function layers(graph) {
  const next = new Map(graph.nodes.map((n) => [n.id, /** @type {string[]} */ ([])]));
  for (const e of graph.edges) next.get(e.source)?.push(e.target);
  const depth = new Map([[graph.start, 0]]);
  const queue = [graph.start];
  while (queue.length) {
    const id = /** @type {string} */ (queue.shift());
    for (const t of next.get(id) || []) {
      if (!depth.has(t)) { depth.set(t, (depth.get(id) || 0) + 1); queue.push(t); }
    }
  }
  const max = Math.max(0, ...depth.values());
  /** @type {string[][]} */
  const out = Array.from({ length: max + 2 }, () => []);
  for (const n of graph.nodes) out[depth.has(n.id) ? /** @type {number} */ (depth.get(n.id)) : max + 1].push(n.id);
  return out.filter((layer) => layer.length);
}
