// @ts-check
/* The REST API under /api/v1/widget, with the visitor's session. */
import { API, state, store } from './state.js';
import { stopSocket } from './socket.js';
import { t } from './strings.js';

/** @typedef {import('./state.js').Answer} Answer */
/** @typedef {import('./state.js').Body} Body */

/** @param {string} method
 * @param {string} path
 * @param {unknown} [body] sent as JSON
 * @returns {Promise<Answer>} */
export function request(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (state.token) headers['X-Widget-Session'] = state.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(API + path, {
    method: method, headers: headers, credentials: 'omit', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body)
  }).then(function (r) {
    return r.json().catch(function () { return null; }).then(function (/** @type {Body | null} */ data) {
      if (r.status === 401 && path !== '/sessions') dropSession();
      return { ok: r.ok, status: r.status, data: data, retry: +(r.headers.get('Retry-After') || 0) || 0 };
    });
  });
}

/** The server's reason for refusing, or a generic one.
 * @param {{data?: Body | null} | null | undefined} r */
export function errorText(r) {
  return (r && r.data && r.data.error && r.data.error.message) || t('error');
}

/** The session is no longer valid: forget it (a new one starts when needed). */
export function dropSession() {
  state.token = null;
  store('session', null);
  store('ident', null);
  stopSocket();
  state.lastEvent = null;
  state.loaded = false;
}

/** An attachment's bytes as an object URL, fetched once.
 * @param {number} id */
export function blobUrl(id) {
  if (!state.blobs[id]) {
    const got = fetch(API + '/attachments/' + id, {
      headers: { 'X-Widget-Session': String(state.token) }, credentials: 'omit'
    })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.blob(); })
      .then(function (b) { return URL.createObjectURL(b); });
    state.blobs[id] = got;
    got.catch(function () { delete state.blobs[id]; });
  }
  return state.blobs[id];
}

/** Uploads a file for the next message: its JSON answer, as `request` gives it.
 * @param {File} file
 * @param {string} name
 * @returns {Promise<{ok: boolean, data: Body | null}>} */
export function postAttachment(file, name) {
  return fetch(API + '/attachments?filename=' + encodeURIComponent(name), {
    method: 'POST', credentials: 'omit', body: file,
    headers: { 'X-Widget-Session': String(state.token), 'Content-Type': file.type || 'application/octet-stream' }
  }).then(function (r) {
    return r.json().catch(function () { return null; }).then(function (/** @type {Body | null} */ data) {
      return { ok: r.ok, data: data };
    });
  });
}
