// A tiny element builder: h("p", {class: "x"}, "text", child) -> <p class="x">text…</p>.
// Text is always set as text (never parsed as HTML), so run data cannot inject markup.

/**
 * @param {string} tag
 * @param {Record<string, any> | null} [attrs] attributes; `on*` functions become listeners
 * @param {...(Node | string | number | null | undefined | false)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Pretty JSON for people (strings as they are). @param {any} value */
export function show(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}
