// A run's trace: the engine's OpenTelemetry spans the studio recorded for it, as a waterfall.
import { h } from "./dom.js";

/**
 * A run's spans as a waterfall: each span's name (indented under its parent), when it started
 * after the run did, how long it took, and a model call's tokens.
 * @param {{recorded: boolean, complete: boolean, spans: any[], model_calls: number, input_tokens: number, output_tokens: number}} trace
 */
export function traceView(trace) {
  if (!trace.spans.length) {
    return h("p", { class: "muted" }, trace.recorded ? "(no spans yet)" : "No trace: spans are kept in memory by the studio process that ran the run (this run ran before it started).");
  }
  const byId = new Map(trace.spans.map((s) => [s.span_id, s]));
  /** @param {any} s */
  const depth = (s) => { let d = 0; for (let p = byId.get(s.parent_id); p; p = byId.get(p.parent_id)) d += 1; return d; };
  const t0 = Math.min(...trace.spans.map((s) => s.start_ns));
  const t1 = Math.max(...trace.spans.map((s) => s.end_ns));
  const total = Math.max(1, t1 - t0);
  const ms = (/** @type {number} */ ns) => (ns / 1e6).toFixed(ns < 1e7 ? 2 : 0);
  const rows = trace.spans.map((s) => {
    const a = s.attributes;
    const what = a["ledgerflow.executor.id"] ? ` ${a["ledgerflow.executor.id"]}` : a["ledgerflow.superstep.index"] !== undefined && s.name === "workflow.superstep" ? ` ${a["ledgerflow.superstep.index"]}` : "";
    const tokens = "gen_ai.usage.input_tokens" in a || "gen_ai.request.model" in a ? `${a["gen_ai.usage.input_tokens"] || 0} in / ${a["gen_ai.usage.output_tokens"] || 0} out` : "";
    // through the CSSOM: the page's CSP forbids style attributes
    const bar = h("span", { class: "bar" });
    bar.style.marginLeft = `${((s.start_ns - t0) / total * 100).toFixed(2)}%`;
    bar.style.width = `${Math.max(0.5, (s.end_ns - s.start_ns) / total * 100).toFixed(2)}%`;
    const label = h("th", { scope: "row" }, s.name + what);
    label.style.paddingLeft = `${0.4 + depth(s)}rem`;
    return h("tr", { "data-span": s.name, class: s.status === "error" ? "failed" : "" },
      label,
      h("td", null, `${ms(s.start_ns - t0)} ms`),
      h("td", null, `${ms(s.end_ns - s.start_ns)} ms`),
      h("td", null, tokens),
      h("td", { class: "bar-cell", "aria-hidden": "true" }, bar));
  });
  return h("div", null,
    trace.complete ? null : h("p", { class: "notice" }, "Part of this run ran before this studio process started: only the spans since then are here."),
    h("p", null, `${trace.spans.length} spans over ${ms(total)} ms · ${trace.model_calls} model call${trace.model_calls === 1 ? "" : "s"} · ${trace.input_tokens} tokens in, ${trace.output_tokens} out (OpenTelemetry spans recorded by the studio)`),
    h("div", { class: "trace-scroll" }, h("table", { class: "spans" },
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "Span"), h("th", { scope: "col" }, "Start"), h("th", { scope: "col" }, "Duration"), h("th", { scope: "col" }, "Tokens"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Timeline")))),
      h("tbody", null, ...rows))));
}
