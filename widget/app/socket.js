// @ts-check
/* The websocket to /ws/widget (PROTOCOLS.md P2): connects with the session,
 * resumes from the last event it saw, pings to notice a dead link, and
 * reconnects with backoff. What the frames mean is the app's (sync.js). */
import { state } from './state.js';

/** @typedef {import('./state.js').Frame} Frame */
/** @typedef {import('./state.js').ReadyFrame} ReadyFrame */

/** What the app does with the socket's news; set once by main.js. */
const on = {
  /** @type {(f: Frame) => void} any frame but `ready` and `pong` */
  frame: function () {},
  /** @type {(f: ReadyFrame, resumed: boolean) => void} live; `resumed`: it asked to resume */
  ready: function () {},
  /** @type {(code: number) => void} the socket is gone (4001: the session is no longer valid) */
  lost: function () {}
};

/** @param {Partial<typeof on>} handlers */
export function onSocket(handlers) { Object.assign(on, handlers); }

export function connect() {
  if (!state.token || state.ws) return;
  clearTimeout(state.retryTimer);
  const url = location.origin.replace(/^http/, 'ws') + '/ws/widget' +
    (state.lastEvent != null ? '?last_event_id=' + state.lastEvent : '');
  /** @type {WebSocket} */
  let sock;
  try { sock = new WebSocket(url, ['threadline.widget', state.token]); } catch (e) { return schedule(); }
  state.ws = sock;
  sock.onmessage = function (e) {
    let f;
    try { f = JSON.parse(e.data); } catch (x) { return; }
    if (f && typeof f.type === 'string') receive(f);
  };
  sock.onclose = function (e) { lost(sock, e.code); };
}

/** A frame from the socket (or held while the conversation loaded).
 * @param {Frame} f */
export function receive(f) {
  if (f.type === 'pong') { state.awaitingPong = false; return; }
  if (state.loading && f.type !== 'ready') { state.held.push(f); return; }
  if (typeof f.event_id === 'number' && (state.lastEvent == null || f.event_id > state.lastEvent)) {
    state.lastEvent = f.event_id;
  }
  if (f.type === 'ready') ready(f);
  else on.frame(f);
}

/** @param {ReadyFrame} f */
function ready(f) {
  const resumed = state.lastEvent != null;
  state.lastEvent = f.last_event_id;
  state.live = state.everLive = true;
  state.attempt = 0;
  state.awaitingPong = false;
  clearInterval(state.pinger);
  state.pinger = setInterval(function () {
    if (state.awaitingPong) return state.ws && lost(state.ws, 1006);
    state.awaitingPong = true;
    sendFrame({ type: 'ping' });
  }, 25000);
  on.ready(f, resumed);
}

/** @param {WebSocket} sock
 * @param {number} code */
function lost(sock, code) {
  if (state.ws !== sock) return;
  detach(sock);
  try { sock.close(); } catch (e) { /* already closed */ }
  on.lost(code);
  // 4001: the session is no longer valid; the app starts a new one when needed.
  if (code !== 4001) schedule();
}

/** @param {WebSocket} sock */
function detach(sock) {
  state.ws = null;
  state.live = false;
  clearInterval(state.pinger);
  sock.onclose = sock.onmessage = null;
}

function schedule() {
  clearTimeout(state.retryTimer);
  const cap = Math.min(30000, 500 * Math.pow(2, state.attempt++));
  state.retryTimer = setTimeout(connect, cap / 2 + Math.random() * cap / 2);
}

export function stopSocket() {
  clearTimeout(state.retryTimer);
  if (state.ws) {
    const sock = state.ws;
    detach(sock);
    sock.close();
  }
}

/** Sends a frame if the socket is live (typing, read, ping are not worth queueing).
 * @param {Record<string, unknown>} f */
export function sendFrame(f) {
  if (state.ws && state.live) state.ws.send(JSON.stringify(f));
}
