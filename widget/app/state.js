// @ts-check
/*! Threadline chat widget: the chat app inside the iframe (F8).
 * Runs on Threadline's origin under a strict CSP. Talks to the REST API under
 * /api/v1/widget (header X-Widget-Session) and to /ws/widget, and to the page
 * that embeds it only through postMessage with an explicit target origin.
 * Every text from a person is rendered with textContent, never as HTML.
 *
 * This module is the bottom of the app: what the server sends (as types),
 * the page's parameters, and the one state object the other modules share. */

/**
 * @typedef {{id: number, filename: string, size?: number, image?: boolean}} Attachment
 * @typedef {{
 *   conversation_id: number, seq: number, direction?: string, text?: string | null,
 *   attachments?: Attachment[], created_at?: string, client_id?: string | null
 * }} Message
 * @typedef {{text: string, attachments: Attachment[], created_at: string}} Draft  a message not stored yet
 * @typedef {{
 *   id: number, status: string,
 *   agent_last_read_seq?: number, contact_last_read_seq?: number | null
 * }} Conversation
 * @typedef {{
 *   enabled?: boolean, required?: unknown, fields?: unknown,
 *   [field: string]: unknown
 * }} Prechat  the inbox's pre-chat form, in any of the shapes settings allow
 * @typedef {{
 *   name?: string, greeting?: string, color?: string, locale?: string,
 *   away_message?: string | null, require_verification?: boolean, prechat?: Prechat | null
 * }} Inbox
 * @typedef {{verified?: boolean, has_email?: boolean, name?: string | null}} Contact
 * @typedef {{
 *   agents_online?: boolean, open_now?: boolean,
 *   next_open_at?: string | null, away_message?: string | null
 * }} Availability
 * @typedef {{
 *   error?: {message?: string, field?: string},
 *   session_token?: string, inbox?: Inbox, contact?: Contact, availability?: Availability,
 *   conversation?: Conversation | null, read?: Conversation, messages?: Message[],
 *   message?: Message, attachment?: Attachment
 * }} Body  what /api/v1/widget answers (each route some of it)
 * @typedef {{ok: boolean, status: number, data: Body | null, retry: number}} Answer
 *
 * @typedef {{id: string, text: string, att: Attachment[], at: string, error?: string, arrived?: boolean}} Pending
 *   a message of the visitor's until the server answers (its id is the client_id)
 * @typedef {{name: string, state: 'up' | 'ok' | 'err', att?: Attachment, error?: string}} Chip
 *   an attachment being added to the next message
 * @typedef {{m: Message, el: HTMLElement}} Shown
 *
 * @typedef {{type: 'ready', last_event_id: number | null, resumed?: boolean}} ReadyFrame
 * @typedef {(
 *   ReadyFrame
 *   | {type: 'message', message: Message}
 *   | {type: 'conversation', conversation?: Conversation}
 *   | {type: 'read', conversation_id: number, seq: number}
 *   | {type: 'typing', conversation_id: number, typing?: boolean}
 *   | {type: 'availability', agents_online?: boolean}
 *   | {type: 'resync'} | {type: 'pong'}
 *   | {type: 'error', code: string, message: string}
 * ) & {event_id?: number}} Frame  what /ws/widget sends (PROTOCOLS.md P2)
 */

export const API = '/api/v1/widget';
const params = new URLSearchParams(location.search);
export const INBOX = params.get('inbox') || '';
export const FRAMED = window.parent !== window;
export const PAGE = pageOrigin(params.get('origin')); // the embedding page, once checked
const KEY = 'threadline:' + INBOX + ':';

/** The embedding page's origin, if the frame really is in that page.
 * @param {string | null} raw
 * @returns {string | null} */
function pageOrigin(raw) {
  if (!FRAMED || !raw) return null;
  try {
    const u = new URL(raw);
    const anc = location.ancestorOrigins;
    if (u.origin !== raw || !/^https?:$/.test(u.protocol)) return null;
    if (anc && anc.length && anc[0] !== raw) return null;
    return raw;
  } catch (e) { return null; }
}

/** The storage key of `k` (shared by this visitor's tabs).
 * @param {string} k */
export function keyName(k) { return KEY + k; }

/** @param {string} k
 * @returns {any} what `store` kept, or null */
export function stored(k) {
  try { return JSON.parse(localStorage.getItem(KEY + k) || 'null'); } catch (e) { return null; }
}

/** @param {string} k
 * @param {unknown} v null removes it */
export function store(k, v) {
  try {
    if (v == null) localStorage.removeItem(KEY + k);
    else localStorage.setItem(KEY + k, JSON.stringify(v));
  } catch (e) { /* storage blocked: this tab still works */ }
}

/** Everything the app changes as it runs, in one place. */
export const state = {
  // -- the session and what the server said
  /** @type {string | null} */ token: stored('session'),
  /** @type {Inbox | null} */ inbox: null,
  /** @type {Contact | null} */ contact: null,
  /** @type {Availability | null} */ availability: null,
  /** @type {Conversation | null} the open conversation */ conv: null,
  /** @type {Promise<void> | null} the session being started */ starting: null,
  gone: false, // the inbox does not exist: the chat is unavailable

  // -- the log: "conversation:seq" -> shown message; keys in order
  /** @type {Record<string, Shown>} */ msgs: {},
  /** @type {string[]} */ keys: [],
  /** @type {Record<number, number>} highest seq the agent read, per conversation */ agentRead: {},
  /** @type {Record<number, number>} highest seq the visitor read */ myRead: {},
  /** @type {HTMLElement | null} the "Seen" label shown */ seenEl: null,
  loaded: false, // the conversation was loaded once
  loading: false, // ... and is being loaded: frames wait in `held`
  /** @type {Frame[]} */ held: [],

  // -- the outbox
  /** @type {Pending[]} */ pending: stored('pending') || [],
  /** @type {Pending[]} refused for good (4xx): shown, not retried */ failed: [],
  /** @type {Pending | null} the message being POSTed */ inflight: null,
  sendAttempt: 0,
  sendTimer: 0,
  flushing: false,
  restarts: 0,
  /** @type {Chip[]} */ chips: [],
  /** @type {Record<number, Promise<string>>} attachment id -> object URL */ blobs: {},

  // -- the websocket
  /** @type {WebSocket | null} */ ws: null,
  live: false, // the socket said ready
  everLive: false,
  /** @type {number | null} the last event seen, to resume from */ lastEvent: null,
  attempt: 0,
  retryTimer: 0,
  pinger: 0,
  awaitingPong: false,

  // -- typing, both ways
  typingOn: false,
  typingAt: 0,
  typingTimer: 0,
  agentTypingTimer: 0,

  // -- the panel and the page
  isOpen: !FRAMED,
  connTimer: 0,
  unreadSent: -1,
  readySent: false,
  /** @type {string | null} the offline form was sent: we reply to this address */ thanksFor: null,
  /** @type {string | null} the offline message's client_id until it is stored */ offlineId: null,
  /** @type {string | null} */ userLocale: null,
  lang: 'en',
  /** @type {AudioContext | null} */ audio: null
};

/** @param {Record<string, unknown>} m */
export function toParent(m) {
  if (!PAGE) return;
  m.threadline = 1;
  window.parent.postMessage(m, PAGE);
}

export function visible() { return state.isOpen && !document.hidden; }

export function uuid() {
  const c = window.crypto;
  if (c.randomUUID) return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = b[6] & 15 | 64;
  b[8] = b[8] & 63 | 128;
  const h = Array.from(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
}
