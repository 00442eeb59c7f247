// @ts-check
// The outbox: messages not yet acknowledged by the server. Each goes out
// with an Idempotency-Key; when the network is down it waits (kept across
// reloads in localStorage) and is sent again with the same key once the
// connection is back, so it lands exactly once.

import { NetworkError, api } from "./api.js";
import { addMessages, conversationStillOpen } from "./data.js";
import { on, state } from "./state.js";

const PENDING_KEY = "threadline.pending";

/**
 * @typedef {{ id: number, filename: string, size: number, image?: boolean }} PendingFile
 * @typedef {{ text: string, private: boolean, to?: string[], cc?: string[],
 *   attachment_ids?: number[], canned_response_id?: number }} MessageBody
 * @typedef {{ key: string, conversationId: number, body: MessageBody, createdAt: string,
 *   files: PendingFile[], error?: string }} PendingMessage
 * @typedef {{ sent(item: PendingMessage): void,
 *   failed(item: PendingMessage, error: import("./api.js").ApiError): void }} OutboxWatcher
 */

/** @type {PendingMessage[]} */
const outbox = loadOutbox();

/** @returns {PendingMessage[]} */
function loadOutbox() {
  try {
    const saved = JSON.parse(localStorage.getItem(PENDING_KEY) || "[]");
    return Array.isArray(saved) ? saved : [];
  } catch {
    return [];
  }
}

function saveOutbox() {
  try {
    localStorage.setItem(PENDING_KEY, JSON.stringify(outbox));
  } catch {
    // private mode or full: the in-memory outbox still retries
  }
}

// Who shows the outcome (the composer); the outbox doesn't draw.
/** @type {OutboxWatcher | null} */
let watcher = null;

/** @param {OutboxWatcher} next */
export function watchOutbox(next) {
  watcher = next;
}

/** Messages of one conversation still waiting for the server, oldest first.
 * @param {number} conversationId */
export function pendingFor(conversationId) {
  return outbox.filter((item) => item.conversationId === conversationId);
}

/**
 * @param {number} conversationId
 * @param {MessageBody} body
 * @param {PendingFile[]} files
 */
export function queueMessage(conversationId, body, files) {
  outbox.push({ key: crypto.randomUUID(), conversationId, body, createdAt: new Date().toISOString(), files });
  saveOutbox();
}

let flushing = false;

export async function flushOutbox() {
  if (flushing) return;
  flushing = true;
  try {
    while (outbox.length) {
      const item = outbox[0];
      let message;
      try {
        message = await api("POST", `/conversations/${item.conversationId}/messages`, item.body, {
          headers: { "Idempotency-Key": item.key },
        });
      } catch (error) {
        if (error instanceof NetworkError) break; // try again when back online
        const refused = /** @type {import("./api.js").ApiError} */ (error);
        item.error = refused.message;
        outbox.shift();
        saveOutbox();
        if (watcher) watcher.failed(item, refused);
        continue;
      }
      outbox.shift();
      saveOutbox();
      if (conversationStillOpen(item.conversationId)) addMessages([message]);
      if (watcher) watcher.sent(item);
    }
  } finally {
    flushing = false;
  }
}

// A reply sent from the contact timeline (no composer of its own there).
/**
 * @param {number} conversationId
 * @param {string} text
 */
export async function sendFromTimeline(conversationId, text) {
  queueMessage(conversationId, { text, private: false }, []);
  await flushOutbox();
  return !outbox.some((item) => item.conversationId === conversationId);
}

window.addEventListener("online", () => flushOutbox());
on("connection", () => {
  if (state.connection === "live") flushOutbox();
});
