// @ts-check
/* Keeping the log in step with the server: the conversation as loaded
 * (GET /conversation), then what the socket brings, in order. */
import { dropSession, request } from './api.js';
import { log } from './dom.js';
import { flush } from './outbox.js';
import { receive, sendFrame } from './socket.js';
import { state } from './state.js';
import {
  addMessage, clearMessages, markRead, showTyping, toBottom, topSeq, updateSeen
} from './views/messages.js';
import { applyInbox, sayReady, updateForms, updateNotices } from './views/panel.js';

/** @typedef {import('./state.js').Body} Body */
/** @typedef {import('./state.js').Frame} Frame */
/** @typedef {import('./state.js').ReadyFrame} ReadyFrame */

/** Loads the conversation; the socket's frames wait until it is shown. */
export function refresh() {
  if (!state.token) return Promise.resolve();
  state.loading = true;
  return request('GET', '/conversation').then(function (r) {
    if (r.ok && r.data) apply(r.data);
  }).catch(function () { /* offline: the socket's ready will try again */ }).then(function () {
    state.loading = false;
    state.held.splice(0).forEach(receive);
    if (!state.readySent) sayReady();
  });
}

/** @param {Body} data */
function apply(data) {
  state.loaded = true;
  state.inbox = data.inbox || state.inbox;
  state.contact = data.contact || state.contact;
  state.availability = data.availability || state.availability;
  const conv = state.conv = data.conversation || null;
  log.setAttribute('aria-busy', 'true');
  clearMessages();
  (data.messages || []).forEach(function (m) { addMessage(m, false); });
  log.removeAttribute('aria-busy');
  if (conv) {
    const read = data.read || conv;
    state.agentRead[conv.id] = Math.max(state.agentRead[conv.id] || 0, read.agent_last_read_seq || 0);
    // No read position from the server: count nothing old as unread.
    const mine = read.contact_last_read_seq == null ? topSeq(conv.id) : read.contact_last_read_seq;
    state.myRead[conv.id] = Math.max(state.myRead[conv.id] || 0, mine);
  }
  applyInbox();
  updateSeen();
  markRead();
  toBottom();
}

/** What a frame from the socket changes.
 * @param {Frame} f */
export function onFrame(f) {
  switch (f.type) {
    case 'message':
      addMessage(f.message, true);
      markRead();
      updateSeen();
      return updateForms();
    case 'conversation':
      if (f.conversation && (!state.conv || f.conversation.id >= state.conv.id)) state.conv = f.conversation;
      return updateForms();
    case 'read':
      state.agentRead[f.conversation_id] = Math.max(state.agentRead[f.conversation_id] || 0, f.seq);
      return updateSeen();
    case 'typing':
      if (!state.conv || f.conversation_id === state.conv.id) showTyping(!!f.typing);
      return;
    case 'availability':
      state.availability = state.availability || {};
      state.availability.agents_online = !!f.agents_online;
      return updateForms();
    case 'resync':
      refresh();
      return;
    case 'error': return console.warn('Threadline:', f.code, f.message);
  }
}

/** @param {ReadyFrame} f
 * @param {boolean} resumed */
export function onReady(f, resumed) {
  updateNotices();
  if (!state.loaded || (resumed && f.resumed === false)) refresh();
  const conv = state.conv;
  if (conv && state.myRead[conv.id]) sendFrame({ type: 'read', conversation_id: conv.id, seq: state.myRead[conv.id] });
  flush();
}

/** @param {number} code */
export function onLost(code) {
  updateNotices();
  if (!state.loaded && !state.loading) refresh(); // no socket yet: show the history anyway
  if (code === 4001) {
    // The session is no longer valid: start a new one when needed.
    dropSession();
    if (state.pending.length) flush();
  }
}

