// The service's API, as the page uses it. Every URL is relative: the page talks only to the
// origin that served it (the studio), never to anything else.

/**
 * @typedef {{name: string, description: string, input_schema: Record<string, any>}} WorkflowInfo
 * @typedef {{id: string, kind: string, start: boolean}} GraphNode
 * @typedef {{source: string, target: string}} GraphEdge
 * @typedef {{name: string, start: string, nodes: GraphNode[], edges: GraphEdge[]}} Graph
 * @typedef {{request_id: string, executor_id: string, payload: any, response_schema: Record<string, any>}} Pending
 * @typedef {{run_id: string, workflow: string, status: string, outputs: any[], pending_requests: Pending[], error: string | null}} RunRecord
 * @typedef {{run_id: string, workflow: string, status: string, updated_at: string}} RunRow
 * @typedef {{checkpoint_id: string, run_id: string, superstep: number, parent_id: string | null, status: string, created_at: string}} CheckpointRow
 */

/** An error the API answered with, carrying its message for people. */
export class ApiError extends Error {
  /**
   * @param {number} status @param {string} type @param {string} message
   * @param {{path: string, message: string}[] | undefined} [problems] each with its spec path
   */
  constructor(status, type, message, problems) {
    super(message);
    this.status = status;
    this.type = type;
    this.problems = problems;
  }
}

/**
 * @param {string} path
 * @param {any} [body] sent as JSON with POST when given
 * @returns {Promise<any>}
 */
export async function call(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json();
  if (!response.ok) {
    const error = data && data.error ? data.error : { type: "http_error", message: String(response.status) };
    throw new ApiError(response.status, error.type, error.message, error.problems);
  }
  return data;
}

const q = encodeURIComponent;

/** @returns {Promise<WorkflowInfo[]>} */
export const workflows = () => call("/api/workflows");
/** @param {string} name @returns {Promise<Graph>} */
export const graph = (name) => call(`/api/workflows/${q(name)}/graph`);
/** @param {string} name */
export const diagramUrl = (name) => `/api/workflows/${q(name)}/diagram.svg`;
/** @param {string} name @param {any} input @returns {Promise<{run_id: string, status: string}>} */
export const startRun = (name, input) => call(`/api/workflows/${q(name)}/runs`, { input });
/** @param {{workflow?: string, status?: string, limit?: number}} filter @returns {Promise<RunRow[]>} */
export function runs(filter) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filter)) if (value) params.set(key, String(value));
  return call(`/api/runs?${params}`);
}
/** @param {string} id @returns {Promise<RunRecord>} */
export const run = (id) => call(`/api/runs/${q(id)}`);
/** @param {string} id */
export const eventsUrl = (id) => `/api/runs/${q(id)}/events`;
/** @param {string} id @param {Record<string, any>} answers */
export const respond = (id, answers) => call(`/api/runs/${q(id)}/responses`, answers);
/** @param {string} id */
export const cancel = (id) => call(`/api/runs/${q(id)}/cancel`, {});
/** @param {string} id @returns {Promise<CheckpointRow[]>} */
export const checkpoints = (id) => call(`/api/runs/${q(id)}/checkpoints`);
/** @param {string} id @param {string} checkpointId @param {Record<string, any>} [stateUpdates] */
export function fork(id, checkpointId, stateUpdates) {
  /** @type {Record<string, any>} */
  const body = { checkpoint_id: checkpointId };
  if (stateUpdates) body.state_updates = stateUpdates;
  return call(`/api/runs/${q(id)}/fork`, body);
}
/**
 * A checkpoint's committed state and the messages waiting to be delivered from it.
 * @param {string} id @param {string} checkpointId
 * @returns {Promise<{checkpoint_id: string, superstep: number, status: string, state: Record<string, any>, messages: {source: string | null, target: string, data: any}[]}>}
 */
export const checkpoint = (id, checkpointId) => call(`/api/runs/${q(id)}/checkpoints/${q(checkpointId)}`);
/**
 * Save a team builder draft as a spec file and serve it (422 with problems when invalid).
 * @param {Record<string, any>} draft @returns {Promise<{name: string, path: string}>}
 */
export const saveTeam = (draft) => call("/api/studio/teams", draft);
/** What the builder's library offers: team kinds, client types, the studio's tools. */
export const studioLibrary = () => call("/api/studio/library");
/**
 * Check a draft as the person types: the spec loader's problems by draft path, or (when valid)
 * the spec's YAML and its diagram (SVG text).
 * @param {Record<string, any>} draft
 * @returns {Promise<{ok: boolean, problems: {path: string, message: string}[], spec?: string, diagram?: string | null}>}
 */
export const validateTeam = (draft) => call("/api/studio/validate", draft);
/** The studio folder's teams and a version that changes when a file does (the folder is looked at on each call). */
export const studioTeams = () => call("/api/studio/teams");
/** @param {string} name a team of the studio's folder, as a builder draft */
export const studioTeam = (name) => call(`/api/studio/teams/${q(name)}`);
/** A run's OpenTelemetry spans as the studio recorded them, with token totals. @param {string} id */
export const trace = (id) => call(`/api/runs/${q(id)}/trace`);
