// @ts-check
// REST calls to /api/v1 with the session cookie. Writes carry the CSRF
// token the login (or /auth/me) handed out.

/** @type {string | null} */
let csrfToken = null;

/** @param {string | null} token */
export function setCsrfToken(token) {
  csrfToken = token;
}

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {any} body the answer's JSON, if it was JSON
   */
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed (${status})`);
    this.status = status;
    this.code = error.code || "error";
    this.field = error.field || null;
  }
}

// Network failures (offline, server restarting) are told apart from
// answers, so a caller can keep what it tried to send and retry it.
export class NetworkError extends Error {}

/**
 * @typedef {{ query?: Record<string, unknown>, headers?: Record<string, string>,
 *   raw?: BodyInit, anonymous?: boolean }} CallOptions
 */

/**
 * The answer's JSON: its shape is the REST API's (the OpenAPI document),
 * read by each caller.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {CallOptions} [options]
 * @returns {Promise<any>}
 */
export async function api(method, path, body, options = {}) {
  const url = new URL(`/api/v1${path}`, location.origin);
  for (const [key, value] of Object.entries(options.query || {})) {
    if (value === undefined || value === null || value === "" || value === false) continue;
    url.searchParams.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  /** @type {Record<string, string>} */
  const headers = { ...(options.headers || {}) };
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let payload;
  if (options.raw !== undefined) {
    payload = options.raw;
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
  } catch (error) {
    throw new NetworkError(String(error));
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && !options.anonymous) {
      window.dispatchEvent(new CustomEvent("threadline:signed-out"));
    }
    throw new ApiError(response.status, data);
  }
  return data;
}

/** @param {string} path @param {Record<string, unknown>} [query] */
export const get = (path, query) => api("GET", path, undefined, { query });
/** @param {string} path @param {unknown} [body] @param {CallOptions} [options] */
export const post = (path, body, options) => api("POST", path, body, options);
/** @param {string} path @param {unknown} body */
export const patch = (path, body) => api("PATCH", path, body);
/** @param {string} path @param {unknown} body */
export const put = (path, body) => api("PUT", path, body);
/** @param {string} path */
export const del = (path) => api("DELETE", path);
