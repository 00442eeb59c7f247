// @ts-check
/* The visitor session: started the first time the visitor needs one (opens
 * the chat, sends, uploads), then kept in storage for this visitor's tabs. */
import { request } from './api.js';
import { connect } from './socket.js';
import { INBOX, state, store } from './state.js';
import { applyInbox, unavailable } from './views/panel.js';

/** Resolves once there is a session; rejects with the refused Answer, or a network error.
 * @returns {Promise<void>} */
export function ensureSession() {
  if (state.token) return Promise.resolve();
  if (!state.starting) {
    state.starting = request('POST', '/sessions', { inbox_token: INBOX }).then(function (r) {
      state.starting = null;
      if (!r.ok || !r.data) {
        if (r.status === 404) unavailable();
        throw r;
      }
      state.token = r.data.session_token || null;
      store('session', state.token);
      state.inbox = r.data.inbox || state.inbox;
      applyInbox();
      connect();
    }, function (e) {
      state.starting = null;
      throw e;
    });
  }
  return state.starting;
}
