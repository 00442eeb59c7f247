// @ts-check
/* What the embedding page asks for through the loader (setUser,
 * setAttributes, track, reset, open and close). */
import { errorText, request } from './api.js';
import { stopTyping } from './composer.js';
import { ensureSession } from './session.js';
import { stopSocket } from './socket.js';
import { state, store, stored } from './state.js';
import { refresh } from './sync.js';
import { renderChips } from './views/attachments.js';
import { clearMessages, markRead, renderPending, showTyping, updateUnread } from './views/messages.js';
import { focusFirst, updateForms } from './views/panel.js';

// The page's setUser, setAttributes and track reach the server one after
// another, in the order the page made them: `track('signed_up')` right
// after `setUser(...)` must land on the contact the identity proved, not
// on the anonymous visitor the session had a moment before.
/** @type {Promise<unknown>} */
let last = Promise.resolve();

/** @template T
 * @param {() => Promise<T>} send
 * @returns {Promise<T>} */
function inOrder(send) {
  const next = last.then(ensureSession).then(send);
  last = next.then(function () {}, function () {}); // a refusal doesn't stop the calls after it
  return next;
}

/** @param {string | null | undefined} id
 * @param {Record<string, unknown>} traits */
export function identify(id, traits) {
  /** @type {Record<string, string>} */
  const body = {}, extra = {};
  if (id) body.user_id = id;
  if (traits.email) body.email = String(traits.email);
  if (traits.name) body.name = String(traits.name);
  if (traits.identityHash) body.identity_hash = String(traits.identityHash);
  if (traits.identityToken) body.identity_token = String(traits.identityToken);
  if (traits.phone) extra.phone = String(traits.phone);
  if (traits.avatar) extra.avatar = String(traits.avatar);
  const sig = JSON.stringify([body, extra]);
  if (sig === stored('ident')) return; // already told the server
  if (Object.keys(body).length) {
    inOrder(function () { return request('POST', '/identify', body); }).then(function (r) {
      if (!r.ok) return console.warn('Threadline: setUser refused:', errorText(r));
      store('ident', sig);
      refresh(); // a verified identity may bring its history
    }, function () { /* offline: the page calls setUser again on its next load */ });
  }
  if (Object.keys(extra).length) setAttributes(extra);
}

/** @param {unknown} attributes */
export function setAttributes(attributes) {
  inOrder(function () { return request('POST', '/attributes', { attributes: attributes }); })
    .then(function (r) { if (!r.ok) console.warn('Threadline: setAttributes refused:', errorText(r)); }, function () {});
}

/** @param {string} name
 * @param {unknown} props */
export function track(name, props) {
  inOrder(function () { return request('POST', '/events', { name: name, properties: props }); })
    .then(function (r) { if (!r.ok) console.warn('Threadline: track refused:', errorText(r)); }, function () {});
}

/** Forgets the visitor (the page's user logged out). */
export function reset() {
  stopSocket();
  ['session', 'pending', 'ident', 'prechat'].forEach(function (k) { store(k, null); });
  state.token = null;
  state.conv = state.contact = state.availability = state.lastEvent = state.thanksFor = null;
  state.pending = [];
  state.failed = [];
  state.chips = [];
  state.agentRead = {};
  state.myRead = {};
  state.loaded = state.everLive = false;
  clearMessages();
  renderPending();
  renderChips();
  showTyping(false);
  updateForms();
  updateUnread();
  if (state.isOpen) ensureSession().catch(function () {});
}

/** @param {boolean} open */
export function setOpen(open) {
  if (open === state.isOpen) return;
  state.isOpen = open;
  if (open) {
    ensureSession().catch(function () {});
    focusFirst();
    markRead();
  } else {
    stopTyping();
  }
}
