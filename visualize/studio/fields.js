// Labelled form fields for the builder: each with its error slot (filled from a problem's
// path), and a model client's fields (scripted replies, or an OpenAI-compatible endpoint whose
// key is named by an environment variable, never typed here).
import { h } from "./dom.js";

let counter = 0;

/** A fresh element id. */
export const nextId = () => `f${++counter}`;

/** One labelled field. @param {string} label @param {HTMLElement} input @param {string} path */
export function field(label, input, path) {
  const id = input.id || nextId();
  input.id = id;
  const error = h("p", { class: "error field-error", id: `${id}-error`, role: "alert", hidden: true });
  input.setAttribute("aria-describedby", error.id);
  return h("div", { class: "field", "data-path": path }, h("label", { for: id }, label), input, error);
}

export const v = (/** @type {any} */ el) => el.value.trim();

/** Replies, one a line; a line that is a JSON object is a reply with tool calls. @param {string} text */
export function parseReplies(text) {
  return text.split("\n").map((s) => s.trim()).filter(Boolean).map((line) => {
    if (!line.startsWith("{")) return line;
    try { return JSON.parse(line); } catch { return line; }
  });
}

/**
 * Client fields (type, replies, model, base URL, key variable) with a draft reader.
 * @param {string} prefix of the fields' names @param {string} [title] of a team-level client ("Manager")
 */
export function clientFields(prefix, title = "") {
  const named = (/** @type {string} */ what) => title ? `${title} ${what.toLowerCase()}` : what;
  const type = h("input", { name: `${prefix}client-type`, list: "client-types", value: "scripted", autocomplete: "off" });
  const replies = h("textarea", { name: `${prefix}client-replies`, rows: "2", placeholder: "one reply per line" });
  const model = h("input", { name: `${prefix}client-model`, placeholder: "gpt-4o-mini" });
  const baseUrl = h("input", { name: `${prefix}client-base-url`, placeholder: "http://127.0.0.1:8080/v1" });
  const keyEnv = h("input", { name: `${prefix}client-key-env`, placeholder: "OPENAI_API_KEY" });
  const scripted = h("div", { class: "scripted" }, field(named("Replies"), replies, "client.replies"));
  const openai = h("div", { class: "openai", hidden: true },
    field(named("Model"), model, "client.model"), field("Base URL", baseUrl, "client.base_url"),
    field("API key environment variable", keyEnv, "client.api_key_env"));
  const sync = () => { scripted.hidden = v(type) === "openai"; openai.hidden = v(type) !== "openai"; };
  type.addEventListener("input", sync);
  return {
    type, sync,
    els: [field(named("Client"), type, "client"), scripted, openai],
    /** @returns {Record<string, any>} */
    draft() {
      const kind = v(type);
      if (kind === "scripted") return { type: kind, replies: parseReplies(/** @type {any} */ (replies).value) };
      if (kind !== "openai") return { type: kind };
      /** @type {Record<string, any>} */
      const client = { type: kind, model: v(model) };
      if (v(baseUrl)) client.base_url = v(baseUrl);
      if (v(keyEnv)) client.api_key_env = v(keyEnv);
      return client;
    },
    /** @param {Record<string, any>} c */
    load(c) {
      /** @type {any} */ (type).value = c.type || "scripted";
      /** @type {any} */ (replies).value = (c.replies || []).map((/** @type {any} */ r) => typeof r === "string" ? r : JSON.stringify(r)).join("\n");
      /** @type {any} */ (model).value = c.model || "";
      /** @type {any} */ (baseUrl).value = c.base_url || "";
      /** @type {any} */ (keyEnv).value = c.api_key_env || "";
      sync();
    },
  };
}
