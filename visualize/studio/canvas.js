// The builder's canvas: agents as boxes a person moves, edges (graph edges or handoffs) as
// arrows drawn by dragging from an agent's port onto another agent, and drops from the
// library. Pointer events only (mouse, pen and touch alike); every action also has a
// keyboard path in the builder's forms (the "Add edge" form, the agent cards' tool boxes).
import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

/** @param {string} tag @param {Record<string, string | number>} attrs */
function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}

/**
 * @typedef {{key: string, name: () => string, node: HTMLElement, x: number, y: number}} Placed
 * @typedef {{onEdge: (from: string, to: string) => void, onDrop: (item: DOMStringMap, x: number, y: number, key: string | null) => void, onMove: () => void, onSelect: (key: string) => void}} Hooks
 */

export class Canvas {
  /** @param {Hooks} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    this.wires = svg("svg", { class: "wires", "aria-hidden": "true" });
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "8", markerHeight: "8", orient: "auto-start-reverse" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z" }));
    const defs = svg("defs", {});
    defs.append(marker);
    this.wires.append(defs);
    this.el = h("div", { class: "canvas", role: "region", "aria-label": "Team canvas" },
      h("p", { class: "muted canvas-hint" }, "Drag agents, people, tools and model clients here from the library; drag from a member's \u2192 port onto another to connect them."));
    this.el.append(this.wires);
    /** @type {Map<string, Placed>} */
    this.placed = new Map();
    /** @type {{from: string, to: string, label: string, invalid: boolean, kind?: string}[]} */
    this.edges = [];
  }

  /** Put an agent's box on the canvas. @param {string} key @param {() => string} name @param {HTMLElement} node @param {number} x @param {number} y */
  place(key, name, node, x, y) {
    node.dataset.key = key;
    node.style.left = `${x}px`;
    node.style.top = `${y}px`;
    this.el.append(node);
    const placed = { key, name, node, x, y };
    this.placed.set(key, placed);
    this.#movable(placed);
    const port = /** @type {HTMLElement} */ (node.querySelector(".port"));
    this.#wiring(key, port);
    node.addEventListener("focusin", () => this.hooks.onSelect(key));
    this.draw();
  }

  /** @param {string} key */
  remove(key) {
    this.placed.get(key)?.node.remove();
    this.placed.delete(key);
    this.draw();
  }

  /** A free spot for the n-th box. @param {number} n */
  spot(n) {
    const width = Math.max(this.el.clientWidth, 400);
    const perRow = Math.max(1, Math.floor((width - 20) / 320));
    const hint = /** @type {HTMLElement} */ (this.el.querySelector(".canvas-hint"));
    // one box a row (a narrow window): every other one to the right, so an arrow that skips a
    // row (a switch's or fan's second target) does not run through the box between
    const x = perRow === 1 ? (n % 2 ? Math.max(20, this.el.clientWidth - 200) : 20) : 20 + (n % perRow) * 320;
    return { x, y: hint.offsetHeight + 16 + Math.floor(n / perRow) * 130 };
  }

  /** @param {{from: string, to: string, label: string, invalid: boolean, kind?: string}[]} edges by agent key (a fan-out or fan-in: one per pair) */
  setEdges(edges) {
    this.edges = edges;
    this.draw();
  }

  draw() {
    for (const old of this.wires.querySelectorAll("line, text")) old.remove();
    let height = 260;
    for (const p of this.placed.values()) height = Math.max(height, p.y + p.node.offsetHeight + 30);
    this.el.style.height = `${height}px`;
    for (const edge of this.edges) {
      const a = this.placed.get(edge.from), b = this.placed.get(edge.to);
      if (!a || !b) continue;
      let [x1, y1] = this.#anchor(a, b), [x2, y2] = this.#anchor(b, a);
      let [lx, ly] = [0, -8]; // where the label goes, from the arrow's middle
      if (this.edges.some((e) => e.from === edge.to && e.to === edge.from)) {
        // both ways: two parallel arrows, each shifted to its own side, its label beyond it
        const len = Math.hypot(x2 - x1, y2 - y1) || 1, nx = -(y2 - y1) / len * 14, ny = (x2 - x1) / len * 14;
        x1 += nx; y1 += ny; x2 += nx; y2 += ny;
        [lx, ly] = [nx * 0.8, ny * 0.8 + (ny > 0 ? 10 : -2)];
      }
      const line = svg("line", { x1, y1, x2, y2, class: edge.invalid ? "wire invalid" : "wire", "marker-end": "url(#arrow)" });
      line.dataset.edge = `${a.name()}->${b.name()}`;
      if (edge.kind) line.dataset.kind = edge.kind;
      this.wires.append(line);
      if (edge.label) {
        const text = svg("text", { x: (x1 + x2) / 2 + lx, y: (y1 + y2) / 2 + ly, class: "wire-label", "text-anchor": "middle" });
        text.textContent = edge.label;
        this.wires.append(text);
      }
    }
  }

  /** Where on a's border the line toward b leaves. @param {Placed} a @param {Placed} b */
  #anchor(a, b) {
    const w = a.node.offsetWidth, hgt = a.node.offsetHeight;
    const cx = a.x + w / 2, cy = a.y + hgt / 2;
    const dx = b.x + b.node.offsetWidth / 2 - cx, dy = b.y + b.node.offsetHeight / 2 - cy;
    if (!dx && !dy) return [cx, cy];
    const scale = Math.min(Math.abs(w / 2 / (dx || 1e-9)), Math.abs(hgt / 2 / (dy || 1e-9)));
    return [cx + dx * scale, cy + dy * scale];
  }

  /** Canvas coordinates of a pointer event. @param {PointerEvent} event */
  point(event) {
    const box = this.el.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  }

  /** The agent key under a pointer, if any. @param {PointerEvent} event */
  keyAt(event) {
    const under = document.elementFromPoint(event.clientX, event.clientY);
    const node = under && /** @type {HTMLElement | null} */ (under.closest(".node-card"));
    return node && this.el.contains(node) ? node.dataset.key || null : null;
  }

  /** @param {Placed} placed */
  #movable(placed) {
    const node = placed.node;
    node.addEventListener("keydown", (event) => {
      const step = event.shiftKey ? 40 : 10;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      const move = moves[/** @type {keyof typeof moves} */ (event.key)];
      if (!move || event.target !== node) return;
      event.preventDefault();
      placed.x = Math.max(0, placed.x + move[0]);
      placed.y = Math.max(0, placed.y + move[1]);
      node.style.left = `${placed.x}px`;
      node.style.top = `${placed.y}px`;
      this.draw();
    });
    node.addEventListener("pointerdown", (event) => {
      const target = /** @type {HTMLElement} */ (event.target);
      if (target.closest(".port, button, input")) return;
      event.preventDefault();
      node.setPointerCapture(event.pointerId);
      const start = this.point(event), from = { x: placed.x, y: placed.y };
      const move = (/** @type {PointerEvent} */ e) => {
        const now = this.point(e);
        placed.x = Math.max(0, from.x + now.x - start.x);
        placed.y = Math.max(0, from.y + now.y - start.y);
        node.style.left = `${placed.x}px`;
        node.style.top = `${placed.y}px`;
        this.draw();
      };
      const up = () => {
        node.removeEventListener("pointermove", move);
        node.removeEventListener("pointerup", up);
        this.hooks.onMove();
      };
      node.addEventListener("pointermove", move);
      node.addEventListener("pointerup", up);
    });
  }

  /** Drag from a port: a rubber-band line, an edge when released on another agent. @param {string} key @param {HTMLElement} port */
  #wiring(key, port) {
    port.addEventListener("pointerdown", (event) => {
      event.preventDefault();
      port.setPointerCapture(event.pointerId);
      const origin = this.placed.get(key);
      if (!origin) return;
      const x1 = origin.x + origin.node.offsetWidth, y1 = origin.y + origin.node.offsetHeight / 2;
      const band = svg("line", { x1, y1, x2: x1, y2: y1, class: "wire band", "marker-end": "url(#arrow)" });
      this.wires.append(band);
      const move = (/** @type {PointerEvent} */ e) => {
        const p = this.point(e);
        band.setAttribute("x2", String(p.x));
        band.setAttribute("y2", String(p.y));
        for (const n of this.el.querySelectorAll(".node-card.target")) n.classList.remove("target");
        const over = this.keyAt(e);
        if (over && over !== key) this.placed.get(over)?.node.classList.add("target");
      };
      const up = (/** @type {PointerEvent} */ e) => {
        port.removeEventListener("pointermove", move);
        port.removeEventListener("pointerup", up);
        band.remove();
        for (const n of this.el.querySelectorAll(".node-card.target")) n.classList.remove("target");
        // a drag, not a press: the click that follows must not start the keyboard path
        if (Math.hypot(e.clientX - event.clientX, e.clientY - event.clientY) >= 5) port.dataset.dragged = "true";
        const over = this.keyAt(e);
        if (over && over !== key) this.hooks.onEdge(key, over);
      };
      port.addEventListener("pointermove", move);
      port.addEventListener("pointerup", up);
    });
  }

  /**
   * Make a library item draggable onto the canvas (a click still works: the builder handles it).
   * @param {HTMLElement} item with data-kind (agent, client, tool) and data-value
   */
  source(item) {
    item.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      item.setPointerCapture(event.pointerId);
      const start = { x: event.clientX, y: event.clientY };
      /** @type {HTMLElement | null} */
      let ghost = null;
      const move = (/** @type {PointerEvent} */ e) => {
        if (!ghost && Math.hypot(e.clientX - start.x, e.clientY - start.y) < 5) return;
        if (!ghost) {
          ghost = h("div", { class: "ghost", "aria-hidden": "true" }, item.textContent || "");
          document.body.append(ghost);
        }
        ghost.style.left = `${e.clientX + 6}px`;
        ghost.style.top = `${e.clientY + 6}px`;
        for (const n of this.el.querySelectorAll(".node-card.target")) n.classList.remove("target");
        const over = this.keyAt(e);
        if (over) this.placed.get(over)?.node.classList.add("target");
      };
      const up = (/** @type {PointerEvent} */ e) => {
        item.removeEventListener("pointermove", move);
        item.removeEventListener("pointerup", up);
        for (const n of this.el.querySelectorAll(".node-card.target")) n.classList.remove("target");
        if (!ghost) return; // a click: the builder's click handler does the keyboard-equal thing
        ghost.remove();
        item.dataset.dragged = "true";
        const box = this.el.getBoundingClientRect();
        const inside = e.clientX >= box.left && e.clientX <= box.right && e.clientY >= box.top && e.clientY <= box.bottom;
        if (inside) {
          const p = this.point(e);
          this.hooks.onDrop(item.dataset, p.x, p.y, this.keyAt(e));
        }
      };
      item.addEventListener("pointermove", move);
      item.addEventListener("pointerup", up);
    });
  }
}
