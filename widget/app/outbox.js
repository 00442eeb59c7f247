// @ts-check
/* The visitor's messages until the server stores them: kept in storage
 * (shared by this visitor's tabs), sent in order, retried with backoff. */
import { errorText, request } from './api.js';
import { ensureSession } from './session.js';
import { state, store, uuid } from './state.js';
import { addMessage, renderPending, updateSeen } from './views/messages.js';
import { updateForms } from './views/panel.js';

/** @typedef {import('./state.js').Attachment} Attachment */
/** @typedef {import('./state.js').Answer} Answer */

function savePending() { store('pending', state.pending.length ? state.pending : null); }

/** @param {string} text
 * @param {Attachment[]} [att] */
export function queueMessage(text, att) {
  state.pending.push({ id: uuid(), text: text, att: att || [], at: new Date().toISOString() });
  savePending();
  renderPending();
  updateSeen();
  updateForms();
  flush();
}

/** @param {import('./state.js').Pending} p */
function unqueue(p) {
  state.pending = state.pending.filter(function (q) { return q.id !== p.id; });
  savePending();
}

/** Sends the queue in order, one at a time; each message keeps its
 * client_id, so a retry after a lost answer is stored once. */
export function flush() {
  if (state.flushing || !state.pending.length) return;
  state.flushing = true;
  clearTimeout(state.sendTimer);
  ensureSession().then(step, stop);
  /** @param {Answer} [r] */
  function stop(r) {
    state.flushing = false;
    if (state.pending.length && !state.gone) {
      const wait = r && r.retry ? r.retry * 1000 : Math.min(30000, 1000 * Math.pow(2, state.sendAttempt++));
      state.sendTimer = setTimeout(flush, wait * (0.75 + Math.random() / 2));
    }
  }
  function step() {
    const p = state.pending[0];
    if (!p) return stop();
    /** @type {{text: string, client_id: string, attachment_ids?: number[]}} */
    const body = { text: p.text, client_id: p.id };
    if (p.att.length) body.attachment_ids = p.att.map(function (a) { return a.id; });
    state.inflight = p;
    request('POST', '/messages', body).then(function (r) {
      state.inflight = null;
      if (r.ok) {
        state.sendAttempt = 0;
        unqueue(p);
        addMessage(r.data && r.data.message, true);
      } else if (r.status === 401) {
        state.flushing = false;
        if (state.restarts++ < 3) flush();
        return;
      } else if (r.status === 429 || r.status >= 500 || r.status === 408) {
        return stop(r);
      } else {
        p.error = errorText(r);
        state.failed.push(p);
        unqueue(p);
      }
      renderPending();
      updateSeen();
      updateForms();
      step();
    }, function () {
      state.inflight = null;
      stop();
    });
  }
}
