// A run's page, live: its graph colours and edge counts, the agents' messages as tokens
// arrive, Magentic's ledgers, each pending request as a form, the outputs, its checkpoints and
// forks. Everything comes from the run's event stream, which replays from the first event, so
// a reload (or a second tab) rebuilds the same view and then carries on live.
import * as api from "./api.js";
import { h, show } from "./dom.js";
import { LiveGraph } from "./graph.js";
import { traceView } from "./trace.js";

const FINAL = new Set(["completed", "failed", "cancelled", "max_supersteps"]);

/**
 * @param {string} runId
 * @param {(title: string, ...content: (Node | string | null | false)[]) => void} page
 * @returns {Promise<() => void>} closes the event stream when the page leaves the run
 */
export async function runView(runId, page) {
  const record = await api.run(runId);
  const live = new LiveGraph(await api.graph(record.workflow));
  const status = h("span", { class: "status", "data-status": record.status }, record.status);
  const cancelButton = h("button", { type: "button" }, "Cancel");
  const requests = h("section", { "aria-label": "Pending requests", class: "requests" });
  const outputs = h("section", { "aria-label": "Outputs", class: "outputs", "aria-live": "polite" }, h("h2", null, "Outputs"));
  const outputList = h("ol", { class: "output-list" });
  outputs.append(outputList);
  const messages = h("section", { "aria-label": "Messages", class: "messages" }, h("h2", null, "Messages"));
  const ledger = h("section", { "aria-label": "Ledger", class: "ledger", hidden: true }, h("h2", null, "Plan and progress"));
  const callList = h("ol");
  const calls = h("section", { "aria-label": "Model calls", class: "messages", hidden: true }, h("h2", null, "Agent turns and tokens"), callList);
  const timeline = h("ol", { class: "timeline", "aria-label": "Timeline" });
  const checkpointsBox = h("section", { "aria-label": "Checkpoints", class: "checkpoints" }, h("h2", null, "Checkpoints"));
  const traceBox = h("section", { "aria-label": "Trace", class: "trace" }, h("h2", null, "Trace"), h("p", { class: "muted" }, "The trace appears when the run stops."));
  const errorBox = h("div");
  /** @type {Map<string, HTMLElement>} */
  const bubbles = new Map();
  /** @type {Set<string>} executors with a request not answered yet */
  const waiting = new Set();
  /** @type {Record<string, any>} */
  const perf = { received: 0, lastId: 0 };
  /** @type {any} */ (window).studioRun = perf;

  cancelButton.addEventListener("click", async () => {
    try { await api.cancel(runId); } catch (error) { errorBox.replaceChildren(alert(error)); }
  });

  page(`Run ${runId}`,
    h("p", null, "Workflow ", h("a", { href: `#/w/${encodeURIComponent(record.workflow)}` }, record.workflow), " · status ", status, " ", cancelButton),
    errorBox,
    h("div", { class: "run-grid" },
      h("div", null, live.el, requests, outputs),
      h("div", null, messages, calls, ledger, h("section", { "aria-label": "Events", class: "events" }, h("h2", null, "Timeline"), timeline), checkpointsBox)),
    traceBox);

  // a fork (its id is "<original>.fork-xxxxxxxx") is shown beside the run it came from
  const cut = runId.lastIndexOf(".fork-");
  const compare = cut > 0 ? h("section", { "aria-label": "Compare with the original", class: "compare" }) : null;
  if (compare) errorBox.after(compare);

  async function loadCompare() {
    if (!compare) return;
    const originalId = runId.slice(0, cut);
    const original = await api.run(originalId).catch(() => null);
    const mine = await api.run(runId).catch(() => null);
    const column = (/** @type {string} */ title, /** @type {any} */ rec, /** @type {string} */ id) =>
      h("div", { class: "compare-col" },
        h("h3", null, title, " ", h("a", { href: `#/runs/${encodeURIComponent(id)}` }, id)),
        h("p", null, `status ${rec ? rec.status : "?"}`),
        h("ol", null, ...(rec ? rec.outputs : []).map((/** @type {any} */ o) => h("li", null, h("pre", null, show(o))))));
    compare.replaceChildren(h("h2", null, "Fork and original"),
      h("div", { class: "compare-grid" }, column("Original", original, originalId), column("This fork", mine, runId)));
  }

  /** @param {string} value */
  const setStatus = (value) => {
    status.textContent = value;
    status.dataset.status = value;
    cancelButton.toggleAttribute("disabled", FINAL.has(value));
  };
  setStatus(record.status);

  /** @param {any} event */
  function apply(event) {
    switch (event.type) {
      case "RunStarted": setStatus("running"); clearRequests(); waiting.clear(); break;
      case "SuperstepStarted":
        timeline.append(h("li", null, `superstep ${event.superstep}: ${event.executor_ids.join(", ")}`));
        break;
      case "ExecutorInvoked": live.setStatus(event.executor_id, "running"); break;
      case "ExecutorCompleted":
        // a handler that asked a person completes at once; it still waits for the answer
        if (!waiting.has(event.executor_id)) live.setStatus(event.executor_id, "completed");
        live.countMessages(event.executor_id, event.messages);
        break;
      case "ExecutorFailed":
        live.setStatus(event.executor_id, "failed");
        timeline.append(h("li", { class: "error" }, `${event.executor_id} failed: ${event.error}`));
        break;
      case "RequestInfo":
        waiting.add(event.executor_id);
        live.setStatus(event.executor_id, "waiting");
        break;
      case "OutputEmitted": outputList.append(h("li", null, h("pre", null, show(event.data)))); break;
      case "CheckpointSaved":
        timeline.append(h("li", { class: "checkpoint" }, `checkpoint ${event.checkpoint_id} (superstep ${event.superstep})`));
        break;
      case "AgentDelta": bubble(event.executor_id, event.agent_name).append(event.text); break;
      case "AgentResponded": {
        const el = bubble(event.executor_id, event.agent_name);
        el.dataset.done = "true";
        bubbles.delete(event.executor_id);
        const usage = (event.response && event.response.usage) || {};
        calls.hidden = false;
        callList.append(h("li", null, `${event.agent_name}: ${usage.input_tokens || 0} tokens in, ${usage.output_tokens || 0} out`));
        const text = messageText(event.response);
        if (!el.textContent && text) el.append(text);
        break;
      }
      case "PlanCreated": case "Replanned":
        ledger.hidden = false;
        ledger.append(h("article", { class: "plan" }, h("h3", null, event.type === "PlanCreated" ? "Facts and plan" : `Replanned (reset ${event.reset_count})`),
          h("pre", null, show(event.ledger))));
        break;
      case "ProgressLedgerUpdated":
        ledger.hidden = false;
        ledger.append(h("article", { class: "round" }, h("h3", null, `Round ${event.round_count} (stalls ${event.stall_count})`), h("pre", null, show(event.ledger))));
        break;
      case "StallDetected":
        ledger.hidden = false;
        ledger.append(h("p", { class: "error" }, `Stall at round ${event.round_count} (reset ${event.reset_count})`));
        break;
      case "RunFinished":
        setStatus(event.status);
        for (const id of live.nodes.keys()) if (live.nodes.get(id)?.dataset.status === "running") live.setStatus(id, "idle");
        if (event.error) errorBox.replaceChildren(h("p", { class: "error", role: "alert" }, event.error));
        clearRequests();
        for (const request of event.pending_requests || []) {
          requests.append(requestForm(request));
          live.setStatus(request.executor_id, "waiting");
        }
        loadCheckpoints();
        loadTrace();
        loadCompare();
        break;
      default:
        timeline.append(h("li", { class: "muted" }, event.type));
    }
  }

  /** @param {string} executorId @param {string | null} agentName */
  function bubble(executorId, agentName) {
    let el = bubbles.get(executorId);
    if (!el) {
      el = h("p", { class: "bubble-text" });
      messages.append(h("article", { class: "bubble", "data-executor-id": executorId }, h("h3", null, agentName || executorId), el));
      bubbles.set(executorId, el);
    }
    return el;
  }

  function clearRequests() { requests.replaceChildren(); }

  /** @param {import("./api.js").Pending} request */
  function requestForm(request) {
    const schema = request.response_schema || {};
    const props = schema.properties || {};
    const approval = props.approved && props.approved.type === "boolean";
    const note = h("p", { role: "status" });
    /** @param {any} answer */
    const send = async (answer) => {
      try {
        await api.respond(runId, { [request.request_id]: answer });
        form.remove();
      } catch (error) { note.replaceChildren(alert(error)); }
    };
    /** @type {HTMLElement} */
    let form;
    if (isPlanReview(request)) {
      form = planReviewForm(request, send, note);
      return form;
    }
    const title = h("h2", null, `${request.executor_id} asks`);
    const payload = h("pre", null, show(request.payload));
    if (approval) {
      const reasonKey = "reason" in props ? "reason" : "note" in props ? "note" : null;
      const fieldId = `reason-${request.request_id}`;
      const reason = h("input", { id: fieldId, type: "text" });
      const decide = (/** @type {boolean} */ ok) => () => {
        /** @type {Record<string, any>} */
        const answer = { approved: ok };
        if (reasonKey) answer[reasonKey] = /** @type {HTMLInputElement} */ (reason).value;
        send(answer);
      };
      form = h("form", { class: "request", "aria-label": `Request ${request.request_id}` }, title, payload,
        reasonKey ? h("label", { for: fieldId }, "Reason (optional)") : null, reasonKey ? reason : null,
        h("div", { class: "buttons" },
          h("button", { type: "button", onclick: decide(true) }, "Approve"),
          h("button", { type: "button", onclick: decide(false) }, "Reject")),
        note);
    } else {
      const text = schema.type === "string";
      const fieldId = `answer-${request.request_id}`;
      const field = text ? h("input", { id: fieldId, type: "text" }) : h("textarea", { id: fieldId, rows: "4" });
      form = h("form", { class: "request", "aria-label": `Request ${request.request_id}` }, title, payload,
        h("label", { for: fieldId }, "Answer"), field,
        text ? null : h("details", null, h("summary", null, "Answer schema"), h("pre", null, show(schema))),
        h("button", { type: "submit" }, "Send"), note);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const raw = /** @type {HTMLInputElement} */ (field).value;
        try { send(text ? raw : JSON.parse(raw)); } catch (error) { note.replaceChildren(alert(error)); }
      });
    }
    return form;
  }

  /**
   * A Magentic plan review: the task, the facts, the plan in an editable field, and
   * "Approve" (go ahead) or "Revise" (replan with the edited plan and any feedback).
   * @param {import("./api.js").Pending} request @param {(answer: any) => Promise<void>} send @param {HTMLElement} note
   */
  function planReviewForm(request, send, note) {
    const payload = request.payload;
    const ledger = payload.ledger || {};
    const id = request.request_id.replace(/[^A-Za-z0-9_-]/g, "_");
    const original = String(ledger.plan || "");
    const plan = /** @type {HTMLTextAreaElement} */ (h("textarea", { id: `plan-${id}`, rows: String(Math.min(16, original.split("\n").length + 3)), spellcheck: "true" }, original));
    const feedback = /** @type {HTMLTextAreaElement} */ (h("textarea", { id: `feedback-${id}`, rows: "2", placeholder: "What should change, and why" }));
    const heading = payload.kind === "stall" ? "The team stalled: review the plan" : payload.kind === "replan" ? "Review the revised plan" : "Review the plan";
    const approve = h("button", { type: "button" }, "Approve");
    const revise = h("button", { type: "button", class: "secondary" }, "Revise");
    const edited = h("p", { class: "muted", hidden: true }, "You changed the plan: \u201cRevise\u201d sends your version for the manager to replan with.");
    plan.addEventListener("input", () => { edited.hidden = plan.value === original; note.replaceChildren(); });
    feedback.addEventListener("input", () => note.replaceChildren());
    approve.addEventListener("click", () => send({ approved: true }));
    revise.addEventListener("click", () => {
      const parts = [];
      if (plan.value.trim() !== original.trim()) parts.push(`Use this plan instead:\n${plan.value.trim()}`);
      if (feedback.value.trim()) parts.push(feedback.value.trim());
      if (!parts.length) { note.replaceChildren(alert("Edit the plan or write what should change, then press Revise (or Approve the plan as it is).")); return; }
      send({ approved: false, feedback: parts.join("\n\n") });
    });
    const form = h("form", { class: "request plan-review", "aria-label": `Plan review ${request.request_id}` },
      h("h2", null, heading),
      h("p", null, h("strong", null, "Task: "), String(payload.task || "")),
      h("details", { open: true }, h("summary", null, "Facts"), h("pre", null, String(ledger.facts || ""))),
      payload.progress ? h("details", null, h("summary", null, "Last progress ledger"), h("pre", null, show(payload.progress))) : null,
      h("label", { for: plan.id }, "Plan"), plan, edited,
      h("label", { for: feedback.id }, "Feedback (optional)"), feedback,
      h("div", { class: "buttons" }, approve, revise), note);
    form.addEventListener("submit", (event) => event.preventDefault());
    return form;
  }

  async function loadTrace() {
    try { traceBox.replaceChildren(h("h2", null, "Trace"), traceView(await api.trace(runId))); } catch (error) { traceBox.append(alert(error)); }
  }

  async function loadCheckpoints() {
    const list = await api.checkpoints(runId).catch(() => []);
    const rows = list.map((c) => {
      const forkButton = h("button", { type: "button" }, "Fork");
      const note = h("span", { role: "status" });
      forkButton.addEventListener("click", async () => {
        try {
          const forked = await api.fork(runId, c.checkpoint_id);
          location.hash = `#/runs/${encodeURIComponent(forked.run_id)}`;
        } catch (error) { note.replaceChildren(alert(error)); }
      });
      const stateButton = h("button", { type: "button", "aria-expanded": "false" }, "State");
      const panel = h("div", { class: "state-panel", hidden: true });
      stateButton.addEventListener("click", async () => {
        const open = panel.hidden;
        panel.hidden = !open;
        stateButton.setAttribute("aria-expanded", String(open));
        if (open) {
          try { panel.replaceChildren(await statePanel(c.checkpoint_id)); } catch (error) { panel.replaceChildren(alert(error)); }
        }
      });
      return h("li", { "data-checkpoint-id": c.checkpoint_id },
        `superstep ${c.superstep} · ${c.status}${c.parent_id ? ` · parent ${c.parent_id}` : ""} `, forkButton, " ", stateButton, note, panel);
    });
    checkpointsBox.replaceChildren(h("h2", null, "Checkpoints"), h("ol", null, ...rows));
  }

  /** The state at a checkpoint, each value editable, and a fork with the edits. @param {string} checkpointId */
  async function statePanel(checkpointId) {
    const view = await api.checkpoint(runId, checkpointId);
    const note = h("p", { role: "status" });
    /** @type {[string, HTMLTextAreaElement, string][]} */
    const fields = [];
    const rows = Object.entries(view.state).map(([key, value], i) => {
      const id = `state-${checkpointId}-${i}`.replace(/[^A-Za-z0-9_-]/g, "_");
      const text = JSON.stringify(value, null, 2);
      const area = /** @type {HTMLTextAreaElement} */ (h("textarea", { id, rows: String(Math.min(8, text.split("\n").length)) }, text));
      fields.push([key, area, text]);
      return h("div", { class: "state-field" }, h("label", { for: id }, key), area);
    });
    const forkEdited = h("button", { type: "submit" }, "Fork with these values");
    const form = h("form", { class: "state", "aria-label": `State at ${checkpointId}` },
      h("h3", null, `State at superstep ${view.superstep}`),
      rows.length ? h("div", null, ...rows) : h("p", { class: "muted" }, "(no state)"),
      h("h3", null, "Messages to deliver"),
      view.messages.length
        ? h("ul", null, ...view.messages.map((m) => h("li", null, `${m.source || "input"} \u2192 ${m.target}: `, h("code", null, JSON.stringify(m.data)))))
        : h("p", { class: "muted" }, "(none)"),
      forkEdited, note);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      /** @type {Record<string, any>} */
      const updates = {};
      try {
        for (const [key, area, before] of fields) if (area.value !== before) updates[key] = JSON.parse(area.value);
        const forked = await api.fork(runId, checkpointId, Object.keys(updates).length ? updates : undefined);
        location.hash = `#/runs/${encodeURIComponent(forked.run_id)}`;
      } catch (error) { note.replaceChildren(alert(error)); }
    });
    return form;
  }

  const source = new EventSource(api.eventsUrl(runId));
  source.onmessage = (message) => {
    perf.received += 1;
    perf.lastId = Number(message.lastEventId);
    perf.lastAt = performance.now();
    const event = JSON.parse(message.data);
    apply(event);
    if (event.type === "RunFinished" && FINAL.has(event.status)) source.close();
  };
  loadCheckpoints();
  return () => source.close();
}

/** @param {unknown} error */
function alert(error) {
  return h("span", { class: "error", role: "alert" }, error instanceof Error ? error.message : String(error));
}

/** The text of an agent's response (its last message's text). @param {any} response */
function messageText(response) {
  const list = response && response.messages;
  if (!Array.isArray(list) || !list.length) return "";
  const last = list[list.length - 1];
  return typeof last.text === "string" ? last.text : typeof last.content === "string" ? last.content : "";
}

/** A Magentic plan review request: a ledger with a plan, answered by {approved, feedback}. @param {import("./api.js").Pending} request */
function isPlanReview(request) {
  const p = request.payload, props = (request.response_schema || {}).properties || {};
  return !!(p && typeof p === "object" && p.ledger && typeof p.ledger.plan === "string" && "task" in p && props.approved && "feedback" in props);
}
