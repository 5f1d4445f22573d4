// The team builder (#/new): a form for a team kind, its agents (each with its own client) and
// options. "Save" posts the draft to /api/studio/teams, which validates it with the spec loader,
// writes NAME.yaml and serves the team; each problem comes back with its spec path
// (agents.writer.client) and is shown next to the field with that data-path.
import * as api from "./api.js";
import { h } from "./dom.js";

let counter = 0;

/** One labelled field. @param {string} label @param {HTMLElement} input @param {string} path */
function field(label, input, path) {
  const id = input.id || `f${++counter}`;
  input.id = id;
  const error = h("p", { class: "error field-error", id: `${id}-error`, role: "alert", hidden: true });
  input.setAttribute("aria-describedby", error.id);
  return h("div", { class: "field", "data-path": path }, h("label", { for: id }, label), input, error);
}

/** @param {HTMLElement} list */
function agentCard(list) {
  const n = list.children.length + 1;
  const name = h("input", { name: "agent-name", required: true, autocomplete: "off" });
  const description = h("input", { name: "agent-description" });
  const instructions = h("textarea", { name: "agent-instructions", rows: "2" });
  const type = h("input", { name: "client-type", list: "client-types", value: "scripted" });
  const replies = h("textarea", { name: "client-replies", rows: "2", placeholder: "one reply per line" });
  const model = h("input", { name: "client-model", placeholder: "gpt-4o-mini" });
  const baseUrl = h("input", { name: "client-base-url", placeholder: "http://127.0.0.1:8080/v1" });
  const keyEnv = h("input", { name: "client-key-env", placeholder: "OPENAI_API_KEY" });
  const remove = h("button", { type: "button" }, `Remove agent ${n}`);
  const card = h("fieldset", { class: "agent card" },
    h("legend", null, `Agent ${n}`),
    field("Name", name, "name"), field("Description", description, "description"),
    field("Instructions", instructions, "instructions"),
    field("Client", type, "client"),
    h("div", { class: "scripted" }, field("Replies", replies, "replies")),
    h("div", { class: "openai", hidden: true },
      field("Model", model, "model"), field("Base URL", baseUrl, "base_url"),
      field("API key environment variable", keyEnv, "api_key_env")),
    remove);
  const sync = () => {
    const kind = /** @type {HTMLInputElement} */ (type).value.trim();
    /** @type {HTMLElement} */ (card.querySelector(".scripted")).hidden = kind === "openai";
    /** @type {HTMLElement} */ (card.querySelector(".openai")).hidden = kind !== "openai";
  };
  type.addEventListener("input", sync);
  remove.addEventListener("click", () => card.remove());
  /** @returns {Record<string, any>} */
  card.draft = () => {
    const v = (/** @type {any} */ el) => el.value.trim();
    const kind = v(type);
    /** @type {Record<string, any>} */
    let client = { type: kind };
    if (kind === "scripted") client.replies = v(replies).split("\n").map((/** @type {string} */ s) => s.trim()).filter(Boolean);
    else if (kind === "openai") {
      client = { type: kind, model: v(model) };
      if (v(baseUrl)) client.base_url = v(baseUrl);
      if (v(keyEnv)) client.api_key_env = v(keyEnv);
    }
    return { name: v(name), description: v(description), instructions: v(instructions), client };
  };
  card.agentName = () => /** @type {HTMLInputElement} */ (name).value.trim();
  list.append(card);
  return card;
}

/** Clear, then show each problem at the field its spec path names (or at the form). */
function showProblems(/** @type {HTMLElement} */ form, /** @type {{path: string, message: string}[]} */ problems) {
  for (const el of form.querySelectorAll(".field-error")) { el.textContent = ""; /** @type {HTMLElement} */ (el).hidden = true; }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const general = /** @type {HTMLElement} */ (form.querySelector("#builder-error"));
  general.textContent = "";
  const cards = /** @type {any[]} */ ([...form.querySelectorAll("fieldset.agent")]);
  for (const { path, message } of problems) {
    const parts = path.split(".");
    let target = null;
    const index = /^agents\[(\d+)\]/.exec(path);
    if (index || ((parts[0] === "agents" || parts[0] === "clients") && parts[1])) {
      const card = index ? cards[Number(index[1])] : cards.find((c) => c.agentName() === parts[1]);
      const key = index ? (path.split(".")[1] || "name") : parts[0] === "clients" ? (["model", "base_url", "api_key_env", "replies"].includes(parts[2]) ? parts[2] : "client") : (parts[2] || "name");
      target = card && card.querySelector(`[data-path="${key}"]`);
    } else {
      target = form.querySelector(`.team [data-path="${parts[0]}"]`);
    }
    const slot = target ? target.querySelector(".field-error") : null;
    if (slot) {
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + message;
      slot.hidden = false;
      target.querySelector("input, textarea, select")?.setAttribute("aria-invalid", "true");
    } else {
      general.textContent += `${path ? path + ": " : ""}${message} `;
    }
  }
}

/** The builder page. @param {(title: string, ...content: any[]) => void} page */
export function builderView(page) {
  const name = h("input", { name: "team-name", required: true, autocomplete: "off", placeholder: "my_team" });
  const description = h("input", { name: "team-description" });
  const kind = h("select", { name: "team-kind" },
    h("option", { value: "group_chat" }, "Group chat (round robin)"),
    h("option", { value: "sequential" }, "Sequential"));
  const maxRounds = h("input", { name: "max-rounds", type: "number", min: "1", value: "4" });
  const list = h("div", { class: "agents" });
  const add = h("button", { type: "button" }, "Add agent");
  add.addEventListener("click", () => { const card = agentCard(list); card.querySelector("input")?.focus(); });
  const status = h("p", { role: "status" });
  const rounds = field("Max rounds", maxRounds, "max_rounds");
  const sync = () => { rounds.hidden = /** @type {HTMLSelectElement} */ (kind).value !== "group_chat"; };
  kind.addEventListener("change", sync);
  const form = h("form", { class: "builder", "aria-label": "Team builder" },
    h("div", { class: "team" },
      field("Team name", name, "name"), field("Team kind", kind, "kind"),
      field("Description", description, "description"), rounds),
    h("h2", null, "Agents"), list, add,
    h("datalist", { id: "client-types" }, h("option", { value: "scripted" }), h("option", { value: "openai" })),
    h("p", { class: "error", id: "builder-error", role: "alert" }),
    h("button", { type: "submit" }, "Save"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = (/** @type {any} */ el) => el.value.trim();
    /** @type {Record<string, any>} */
    const options = {};
    if (v(kind) === "group_chat" && v(maxRounds)) options.max_rounds = Number(v(maxRounds));
    const draft = {
      name: v(name), kind: v(kind), description: v(description), options,
      agents: [...list.children].map((card) => /** @type {any} */ (card).draft()),
    };
    status.textContent = "Saving…";
    try {
      const saved = await api.saveTeam(draft);
      showProblems(form, []);
      status.replaceChildren(`Saved ${saved.path}. `, h("a", { href: `#/w/${encodeURIComponent(saved.name)}` }, `Open ${saved.name} in the playground`));
    } catch (error) {
      status.textContent = "Not saved.";
      const problems = error instanceof api.ApiError && error.problems ? error.problems : [{ path: "", message: String(error instanceof Error ? error.message : error) }];
      showProblems(form, problems);
    }
  });
  sync();
  page("New team", form);
}
