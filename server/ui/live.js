// @ts-check
// The agent's live connection (/ws/agent, PROTOCOLS.md P2): reconnects with
// backoff and jitter, resumes from the last event id it saw (so the server
// replays exactly what was missed), drops events it already has, and asks
// the app to reload everything when the server says `resync`.

const PING_EVERY_MS = 20000;
const PONG_WITHIN_MS = 8000;
const MAX_BACKOFF_MS = 15000;

/**
 * A frame from the server (PROTOCOLS.md P2): an event, `ready`, `resync`,
 * `pong`, or an ephemeral one (typing, viewing, presence).
 * @typedef {{ type: string, event_id?: number, last_event_id?: number | null, [field: string]: any }} Frame
 * @typedef {{ onEvent(frame: Frame): void, onEphemeral(frame: Frame): void, onReady(frame: Frame): void,
 *   onResync(): void, onStatus(status: "connecting" | "live" | "offline"): void }} Handlers
 */

export class Live {
  /** @param {Handlers} handlers */
  constructor({ onEvent, onEphemeral, onReady, onResync, onStatus }) {
    this.handlers = { onEvent, onEphemeral, onReady, onResync, onStatus };
    /** @type {number | null} */
    this.lastEventId = null;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.ready = false;
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.pongTimer = undefined;
    this.stopped = false;
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("offline", () => this.drop());
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.drop();
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.ready;
  }

  /** @param {Record<string, unknown>} frame */
  send(frame) {
    if (this.connected && this.ws) this.ws.send(JSON.stringify(frame));
  }

  connect() {
    if (this.stopped || this.ws) return;
    const url = new URL("/ws/agent", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this.lastEventId !== null) url.searchParams.set("last_event_id", String(this.lastEventId));
    const ws = new WebSocket(url);
    this.ws = ws;
    this.ready = false;
    this.handlers.onStatus("connecting");
    ws.addEventListener("message", (message) => {
      if (ws !== this.ws) return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.receive(frame);
    });
    ws.addEventListener("close", () => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.ready = false;
      this.stopPings();
      this.handlers.onStatus("offline");
      this.scheduleRetry();
    });
  }

  /** @param {Frame} frame */
  receive(frame) {
    if (frame.type === "pong") {
      clearTimeout(this.pongTimer);
      return;
    }
    if (frame.type === "ready") {
      this.ready = true;
      this.attempt = 0;
      this.lastEventId = /** @type {number | null} */ (frame.last_event_id);
      this.startPings();
      this.handlers.onStatus("live");
      this.handlers.onReady(frame);
      return;
    }
    if (frame.type === "resync") {
      this.handlers.onResync();
      return;
    }
    if (typeof frame.event_id === "number") {
      // A replayed event can overlap one already seen: never apply twice.
      if (this.lastEventId !== null && frame.event_id <= this.lastEventId) return;
      this.lastEventId = frame.event_id;
      this.handlers.onEvent(frame);
      return;
    }
    this.handlers.onEphemeral(frame);
  }

  startPings() {
    this.stopPings();
    this.pingTimer = setInterval(() => {
      if (!this.ws) return;
      this.send({ type: "ping" });
      clearTimeout(this.pongTimer);
      // No pong: the connection is dead even if the browser hasn't noticed.
      this.pongTimer = setTimeout(() => this.drop(), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  stopPings() {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
  }

  drop() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.ready = false;
    this.stopPings();
    ws.close();
    this.handlers.onStatus("offline");
    this.scheduleRetry();
  }

  scheduleRetry() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }

  reconnectNow() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    if (!this.ws) this.connect();
  }
}
