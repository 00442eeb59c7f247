// @ts-check
/* The conversation's log: messages (deduplicated, in order), the visitor's
 * pending ones, "Seen", the agent typing, unread counts and the ding. */
import { log, make, pendingBox, typingEl } from '../dom.js';
import { sendFrame } from '../socket.js';
import { state, toParent, visible } from '../state.js';
import { t } from '../strings.js';
import { attachmentsEl } from './attachments.js';

/** @typedef {import('../state.js').Message} Message */
/** @typedef {import('../state.js').Draft} Draft */

/** @param {string | undefined} iso */
export function clock(iso) {
  const at = iso ? new Date(iso) : new Date();
  return isNaN(at.getTime()) ? '' : at.toLocaleTimeString(state.lang, { hour: '2-digit', minute: '2-digit' });
}

const LINK = /\b(?:https?:\/\/|mailto:)[^\s<>"]+/gi;

/** Appends `text` to `el`, with its web and mail addresses as links.
 * @param {HTMLElement} el
 * @param {string} text */
function linkify(el, text) {
  let last = 0, m;
  LINK.lastIndex = 0;
  while ((m = LINK.exec(text))) {
    const url = m[0].replace(/[.,;:!?)\]}'"]+$/, '');
    let ok = false;
    try { ok = /^(https?|mailto):$/.test(new URL(url).protocol); } catch (e) { ok = false; }
    if (!ok) continue;
    el.appendChild(document.createTextNode(text.slice(last, m.index)));
    const a = make('a', null, url);
    a.href = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer nofollow';
    el.appendChild(a);
    last = LINK.lastIndex = m.index + url.length;
  }
  el.appendChild(document.createTextNode(text.slice(last)));
}

/** @param {Message | Draft} m
 * @param {boolean} mine
 * @param {string} [label] its state: sending, not sent, seen */
function messageEl(m, mine, label) {
  const el = make('div', 'msg ' + (mine ? 'mine' : 'theirs'));
  const bubble = make('div', 'bubble');
  // Who said it, for screen readers (the layout shows it to the eye).
  const who = make('span', 'sr', t(mine ? 'you' : 'agent') + ' ');
  who.setAttribute('data-who', mine ? 'you' : 'agent');
  bubble.appendChild(who);
  linkify(bubble, m.text || '');
  const attachments = m.attachments || [];
  if (m.text) el.appendChild(bubble);
  else if (!attachments.length) el.appendChild(bubble);
  if (attachments.length) el.appendChild(attachmentsEl(attachments));
  const meta = make('div', 'meta');
  const time = make('time', null, clock(m.created_at));
  time.dateTime = m.created_at || new Date().toISOString();
  meta.appendChild(time);
  meta.appendChild(make('span', 'state', label || ''));
  el.appendChild(meta);
  return el;
}

function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
export function toBottom() { log.scrollTop = log.scrollHeight; }

/** @param {Message} m */
function keyOf(m) { return m.conversation_id + ':' + m.seq; }

/** @param {Message} a
 * @param {Message} b */
function before(a, b) {
  return a.conversation_id < b.conversation_id ||
    (a.conversation_id === b.conversation_id && a.seq < b.seq);
}

/** Adds a message once (deduplicated on conversation and seq); `live` when
 * it just arrived rather than with the history.
 * @param {Message | null | undefined} m
 * @param {boolean} live */
export function addMessage(m, live) {
  if (!m || m.conversation_id == null || m.seq == null) return false;
  const k = keyOf(m), msgs = state.msgs, keys = state.keys;
  if (msgs[k]) return false;
  const mine = m.direction === 'inbound';
  const stick = nearBottom() || mine;
  const el = messageEl(m, mine);
  let i = keys.length;
  while (i > 0 && before(m, msgs[keys[i - 1]].m)) i--;
  log.insertBefore(el, i < keys.length ? msgs[keys[i]].el : pendingBox);
  keys.splice(i, 0, k);
  msgs[k] = { m: m, el: el };
  if (!state.conv || m.conversation_id > state.conv.id) state.conv = { id: m.conversation_id, status: 'open' };
  const inflight = state.inflight;
  if (live && mine && inflight && !inflight.arrived && m.client_id === inflight.id) {
    // The socket brought the message being sent before its POST answered.
    inflight.arrived = true;
    renderPending();
  }
  if (live) {
    if (!mine) {
      showTyping(false);
      if (!visible()) ding();
    }
    toParent({ type: 'message', conversationId: m.conversation_id, seq: m.seq, fromAgent: !mine });
  }
  if (stick) toBottom();
  return true;
}

export function clearMessages() {
  state.keys.forEach(function (k) { state.msgs[k].el.remove(); });
  state.msgs = {};
  state.keys = [];
  state.seenEl = null;
}

/** The last seq shown of conversation `c`.
 * @param {number} c */
export function topSeq(c) {
  for (let i = state.keys.length - 1; i >= 0; i--) {
    const m = state.msgs[state.keys[i]].m;
    if (m.conversation_id === c) return m.seq;
  }
  return 0;
}

/** "Seen" under the visitor's last message, once the agent read it. */
export function updateSeen() {
  if (state.seenEl) state.seenEl.textContent = '';
  state.seenEl = null;
  const conv = state.conv;
  if (!conv || state.pending.length) return;
  for (let i = state.keys.length - 1; i >= 0; i--) {
    const e = state.msgs[state.keys[i]];
    if (e.m.conversation_id !== conv.id) break;
    if (e.m.direction !== 'inbound') continue;
    if ((state.agentRead[conv.id] || 0) >= e.m.seq) {
      state.seenEl = /** @type {HTMLElement} */ (e.el.querySelector('.state'));
      state.seenEl.textContent = t('seen');
    }
    return;
  }
}

function unreadCount() {
  const conv = state.conv;
  if (!conv) return 0;
  let n = 0;
  const read = state.myRead[conv.id] || 0;
  state.keys.forEach(function (k) {
    const m = state.msgs[k].m;
    if (m.conversation_id === conv.id && m.direction !== 'inbound' && m.seq > read) n++;
  });
  return n;
}

export function updateUnread() {
  const n = unreadCount();
  if (n !== state.unreadSent) toParent({ type: 'unread', count: n });
  state.unreadSent = n;
}

/** The visitor has seen everything when the panel is open and visible. */
export function markRead() {
  const conv = state.conv;
  if (conv && visible()) {
    const top = topSeq(conv.id);
    if (top > (state.myRead[conv.id] || 0)) {
      state.myRead[conv.id] = top;
      sendFrame({ type: 'read', conversation_id: conv.id, seq: top });
    }
  }
  updateUnread();
}

function ding() {
  try {
    const w = /** @type {typeof globalThis & {webkitAudioContext?: typeof AudioContext}} */ (window);
    const C = w.AudioContext || w.webkitAudioContext;
    if (!C) return;
    const audio = state.audio = state.audio || new C();
    if (audio.state === 'suspended') audio.resume();
    const o = audio.createOscillator(), g = audio.createGain(), at = audio.currentTime;
    o.type = 'sine';
    o.frequency.setValueAtTime(880, at);
    o.frequency.setValueAtTime(1320, at + 0.09);
    g.gain.setValueAtTime(0.0001, at);
    g.gain.exponentialRampToValueAtTime(0.12, at + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
    o.connect(g);
    g.connect(audio.destination);
    o.start(at);
    o.stop(at + 0.32);
  } catch (e) { /* no sound, no harm */ }
}

/** @param {boolean} on */
export function showTyping(on) {
  clearTimeout(state.agentTypingTimer);
  typingEl.textContent = on ? t('typing') : '';
  if (on) state.agentTypingTimer = setTimeout(showTyping, 8000, false);
}

/** The visitor's messages the server has not stored (sending, or refused). */
export function renderPending() {
  const stick = nearBottom();
  pendingBox.textContent = '';
  state.pending.concat(state.failed).forEach(function (p) {
    if (p.arrived) return;
    const el = messageEl({ text: p.text, attachments: p.att, created_at: p.at }, true,
      p.error ? t('failed') + ': ' + p.error : t('sending'));
    el.classList.add(p.error ? 'failed' : 'pending');
    pendingBox.appendChild(el);
  });
  if (stick) toBottom();
}
