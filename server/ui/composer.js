// @ts-check
// The composer: reply or private note, files, emoji, `/` canned responses.
// What it sends goes through the outbox (outbox.js), which shows as
// "Sending…" until the server has it; email replies get To and Cc fields
// (recipients.js).

import { openCannedPicker } from "./canned.js";
import { composerFiles } from "./composer_files.js";
import { h, icon, replace } from "./dom.js";
import { emojiPopover } from "./emoji.js";
import { liveSend } from "./live_send.js";
import { messageBubble } from "./message_view.js";
import { offerNotifications } from "./notify.js";
import { flushOutbox, pendingFor, queueMessage, watchOutbox } from "./outbox.js";
import { emailRecipients, pendingRecipients } from "./recipients.js";
import { channelOf, state } from "./state.js";

const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;
const PLACEHOLDER = {
  reply: "Reply to the customer… (/ for canned responses)",
  note: "Write a private note (only agents see it)…",
};

/**
 * @typedef {"reply" | "note"} Mode
 * @typedef {{ conversationId: number, textarea: HTMLTextAreaElement, setMode(mode: Mode): void,
 *   showError(text: string): void, openCanned(): void, pendingBubbles(): HTMLElement[],
 *   redraw(): void, markRecipients(field: string, text: string): boolean }} Composer
 */

/** @type {Composer | null} */
let current = null;

/** @param {Mode} mode */
export function focusComposer(mode) {
  if (!current) return false;
  current.setMode(mode);
  current.textarea.focus();
  return true;
}

export function openCanned() {
  if (current) current.openCanned();
}

watchOutbox({
  sent() {
    if (current) current.redraw();
  },
  failed(item, error) {
    if (current && current.conversationId === item.conversationId) {
      const text = `Not sent: ${error.message}`;
      // A recipient the server refused (to[1], cc): said at its field.
      const recipient = error.field && /^(to|cc)\b/.test(error.field);
      if (!recipient || !current.markRecipients(String(error.field).slice(0, 2), text)) current.showError(text);
      if (!current.textarea.value) current.textarea.value = item.body.text || "";
    }
    // Its "Sending…" bubble goes: the text is back in the composer.
    if (current) current.redraw();
  },
});

/**
 * @param {HTMLTextAreaElement} textarea
 * @param {string} text
 */
function insertAtCursor(textarea, text) {
  textarea.setRangeText(text, textarea.selectionStart, textarea.selectionEnd, "end");
  textarea.focus();
}

/**
 * The emoji grid opens in `slot` and closes on a pick or a second click.
 * @param {HTMLElement} slot
 * @param {HTMLTextAreaElement} textarea
 */
function toggleEmoji(slot, textarea) {
  const close = () => {
    replace(slot);
    textarea.focus();
  };
  if (slot.firstChild) {
    close();
    return;
  }
  const grid = emojiPopover((emoji) => {
    insertAtCursor(textarea, emoji);
    close();
  }, close);
  replace(slot, grid);
  /** @type {HTMLElement} */ (grid.querySelector("button")).focus();
}

/**
 * The canned picker, searching what follows a `/` before the cursor (or
 * `initial`); the pick replaces that `/word`.
 * @param {any} conversation
 * @param {HTMLTextAreaElement} textarea
 * @param {string | undefined} initial
 * @param {(cannedId: number) => void} picked
 */
function pickCanned(conversation, textarea, initial, picked) {
  const slash = /(^|\s)\/(\S*)$/.exec(textarea.value.slice(0, textarea.selectionStart));
  openCannedPicker(conversation, initial ?? (slash ? slash[2] : ""), (/** @type {{ id: number, text: string }} */ canned) => {
    if (slash) {
      const start = textarea.selectionStart - slash[2].length - 1;
      textarea.setRangeText(canned.text, start, textarea.selectionStart, "end");
    } else {
      insertAtCursor(textarea, canned.text);
    }
    picked(canned.id);
    textarea.focus();
  });
}

/**
 * Typing indicators for the others: on while text is being typed (sent
 * again every few seconds), off after a pause, on blur or on send.
 * @param {number} conversationId
 * @param {() => boolean} isNote
 * @param {() => boolean} hasText
 * @returns {(active: boolean) => void}
 */
function typingSignal(conversationId, isNote, hasText) {
  let sentAt = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @param {boolean} active */
  const typing = (active) => {
    const now = Date.now();
    clearTimeout(timer);
    if (active && hasText()) {
      if (now - sentAt > TYPING_REFRESH_MS) {
        sentAt = now;
        liveSend({ type: "typing", conversation_id: conversationId, typing: true, private: isNote() });
      }
      timer = setTimeout(() => typing(false), TYPING_IDLE_MS);
    } else if (sentAt) {
      sentAt = 0;
      liveSend({ type: "typing", conversation_id: conversationId, typing: false, private: isNote() });
    }
  };
  return typing;
}

/**
 * @param {string} label
 * @param {string} title
 * @param {string} iconName
 * @param {() => void} click
 */
function barButton(label, title, iconName, click) {
  return h("button", { type: "button", class: "ghost icon-button", title, "aria-label": label, on: { click } }, icon(iconName));
}

/**
 * The composer's parts, laid out; `actions` are what its buttons do.
 * @param {{ recipients: import("./recipients.js").Recipients | null, textarea: HTMLTextAreaElement,
 *   files: ReturnType<typeof composerFiles>, error: HTMLElement }} parts
 * @param {{ setMode(mode: Mode): void, send(): void, openCanned(): void }} actions
 */
function composerForm({ recipients, textarea, files, error }, actions) {
  /** @param {Mode} mode @param {string} text */
  const tab = (mode, text) => h("button", { type: "button", role: "tab", class: "mode", text, on: { click: () => actions.setMode(mode) } });
  const tabs = { reply: tab("reply", "Reply"), note: tab("note", "Private note") };
  const emojiSlot = h("div", { class: "emoji-slot" });
  const sendButton = h("button", { type: "submit", class: "primary send", text: "Send" });
  const form = h(
    "form",
    { class: "composer", on: { submit: (/** @type {Event} */ e) => { e.preventDefault(); actions.send(); } } },
    h(
      "div",
      { class: "composer-head" },
      h("div", { class: "composer-modes", role: "tablist", "aria-label": "Reply or note" }, tabs.reply, tabs.note),
      recipients ? recipients.subject : null,
    ),
    recipients ? recipients.el : null,
    textarea,
    files.list,
    error,
    h(
      "div",
      { class: "composer-bar" },
      barButton("Attach files", "Attach files", "clip", () => files.input.click()),
      barButton("Emoji", "Emoji", "smile", () => toggleEmoji(emojiSlot, textarea)),
      barButton("Canned response", "Canned response (/)", "bolt", actions.openCanned),
      emojiSlot,
      h("span", { class: "composer-hint", text: "Enter to send · Shift+Enter for a new line" }),
      files.input,
      sendButton,
    ),
  );
  files.acceptFrom(form, textarea);
  /** @param {Mode} mode */
  const showMode = (mode) => {
    tabs.reply.classList.toggle("current", mode === "reply");
    tabs.note.classList.toggle("current", mode === "note");
    tabs.reply.setAttribute("aria-selected", String(mode === "reply"));
    tabs.note.setAttribute("aria-selected", String(mode === "note"));
    form.classList.toggle("note-mode", mode === "note");
    textarea.setAttribute("aria-label", mode === "note" ? "Private note" : "Reply");
    textarea.placeholder = PLACEHOLDER[mode];
    sendButton.textContent = mode === "note" ? "Add note" : "Send";
    if (recipients) recipients.showFor(mode);
  };
  return { form, showMode };
}

/**
 * Enter sends (Shift+Enter is a new line), Escape leaves the field, a `/`
 * alone opens the canned picker; typing tells the others.
 * @param {HTMLTextAreaElement} textarea
 * @param {{ send(): void, openCanned(): void, emptied(): void, typing(active: boolean): void }} on
 */
function textareaKeys(textarea, on) {
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      on.send();
    } else if (e.key === "Escape") {
      e.preventDefault();
      textarea.blur();
    }
  });
  textarea.addEventListener("input", () => {
    const before = textarea.value.slice(0, textarea.selectionStart);
    if (/(^|\s)\/$/.test(before) && before.trim() === "/") on.openCanned();
    if (!textarea.value) on.emptied();
    on.typing(true);
  });
  textarea.addEventListener("blur", () => on.typing(false));
}

/** "Sending…" bubbles for what the outbox still holds of `conversationId`.
 * @param {number} conversationId */
function pendingBubbles(conversationId) {
  return pendingFor(conversationId).map((item) =>
    messageBubble(
      {
        _pending: true,
        sender_kind: "agent",
        sender_id: /** @type {any} */ (state.me).id,
        private: item.body.private,
        text: item.body.text,
        attachments: item.files,
        created_at: item.createdAt,
        delivery_status: "pending",
        email: item.body.to || item.body.cc ? pendingRecipients(item.body) : null,
      },
      {},
    ),
  );
}

/**
 * @param {HTMLElement} slot
 * @param {() => void} redrawThread
 * @returns {Composer}
 */
export function mountComposer(slot, redrawThread) {
  const conversation = /** @type {import("./state.js").Conversation} */ (state.conversation);
  /** @type {Mode} */
  let mode = "reply";
  /** @type {number | null} */
  let cannedId = null;

  const textarea = h("textarea", { class: "composer-text", rows: 3, "aria-label": "Reply", placeholder: PLACEHOLDER.reply });
  const recipients = channelOf(conversation) === "email" ? emailRecipients(conversation, () => textarea) : null;
  const error = h("p", { class: "composer-error", role: "alert" });
  /** @param {string} text */
  const showError = (text) => {
    error.textContent = text;
  };
  const files = composerFiles(conversation.inbox_id, showError);
  /** @param {string} [initial] */
  const openCanned = (initial) => pickCanned(conversation, textarea, initial, (id) => (cannedId = id));
  /** @param {Mode} next */
  const setMode = (next) => {
    mode = next;
    showMode(mode);
  };
  const { form, showMode } = composerForm({ recipients, textarea, files, error }, { setMode, send, openCanned: () => openCanned("") });
  replace(slot, form);
  setMode("reply");
  const typing = typingSignal(conversation.id, () => mode === "note", () => Boolean(textarea.value));
  textareaKeys(textarea, { send, openCanned: () => openCanned(""), emptied: () => (cannedId = null), typing });

  async function send() {
    const text = textarea.value.trim();
    if (files.uploading()) {
      showError("Wait for the files to finish uploading.");
      return;
    }
    const attached = files.all();
    if (!text && !attached.length) return;
    /** @type {import("./outbox.js").MessageBody} */
    const body = { text, private: mode === "note" };
    if (recipients && mode === "reply") {
      const chosen = recipients.read();
      if (chosen === null) return; // the field says what is wrong
      Object.assign(body, chosen);
    }
    if (attached.length) body.attachment_ids = attached.map((f) => f.id);
    if (cannedId !== null) body.canned_response_id = cannedId;
    queueMessage(conversation.id, body, attached.map((f) => ({ id: f.id, filename: f.filename, size: f.size, image: f.image })));
    textarea.value = "";
    cannedId = null;
    files.clear();
    showError("");
    if (recipients) recipients.clearErrors();
    typing(false);
    redrawThread();
    // The customer will answer this: the moment to offer notifications.
    if (!body.private) offerNotifications();
    await flushOutbox();
  }

  current = {
    conversationId: conversation.id,
    textarea,
    setMode,
    showError,
    openCanned: () => openCanned(""),
    pendingBubbles: () => pendingBubbles(conversation.id),
    redraw: redrawThread,
    markRecipients: (field, text) => Boolean(recipients) && /** @type {import("./recipients.js").Recipients} */ (recipients).mark(field, text),
  };
  return current;
}
