// REST calls to /api/v1 with the session cookie. Writes carry the CSRF
// token the login (or /auth/me) handed out.

let csrfToken = null;

export function setCsrfToken(token) {
  csrfToken = token;
}

export class ApiError extends Error {
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

export async function api(method, path, body, options = {}) {
  const url = new URL(`/api/v1${path}`, location.origin);
  for (const [key, value] of Object.entries(options.query || {})) {
    if (value === undefined || value === null || value === "" || value === false) continue;
    url.searchParams.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
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

export const get = (path, query) => api("GET", path, undefined, { query });
export const post = (path, body, options) => api("POST", path, body, options);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);
