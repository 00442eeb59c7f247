// The composer: reply or private note, files, emoji, `/` canned responses.
// A message goes out with an Idempotency-Key; when the network is down it
// waits (shown as "Sending…", kept across reloads) and is sent again with
// the same key once the connection is back, so it lands exactly once.

import { NetworkError, api } from "./api.js";
import { liveSend } from "./app.js";
import { openCannedPicker } from "./canned.js";
import { addMessages, conversationStillOpen } from "./data.js";
import { h, icon, replace } from "./dom.js";
import { emojiPopover } from "./emoji.js";
import { fileSize } from "./format.js";
import { messageBubble } from "./message_view.js";
import { on, state } from "./state.js";

const PENDING_KEY = "threadline.pending";
const TYPING_REFRESH_MS = 3000;
const TYPING_IDLE_MS = 4000;

let current = null;

export function focusComposer(mode) {
  if (!current) return false;
  current.setMode(mode);
  current.textarea.focus();
  return true;
}

export function openCanned() {
  if (current) current.openCanned();
}

// -- the outbox: messages not yet acknowledged by the server ---------------

const outbox = loadOutbox();

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
        item.error = error.message;
        outbox.shift();
        saveOutbox();
        failed(item, error);
        continue;
      }
      outbox.shift();
      saveOutbox();
      if (conversationStillOpen(item.conversationId)) addMessages([message]);
      if (current) current.redraw();
    }
  } finally {
    flushing = false;
  }
}

function failed(item, error) {
  if (current && current.conversationId === item.conversationId) {
    current.showError(`Not sent: ${error.message}`);
    if (!current.textarea.value) current.textarea.value = item.body.text || "";
  }
}

window.addEventListener("online", () => flushOutbox());
on("connection", () => {
  if (state.connection === "live") flushOutbox();
});

// -- the composer ---------------------------------------------------------

export function mountComposer(slot, redrawThread) {
  const conversation = state.conversation;
  let mode = "reply";
  let cannedId = null;
  let files = []; // {id, filename, size} uploaded, or {uploading: name}
  let typingSentAt = 0;
  let typingTimer = null;

  const replyTab = h("button", { type: "button", role: "tab", class: "mode", text: "Reply", on: { click: () => setMode("reply") } });
  const noteTab = h("button", { type: "button", role: "tab", class: "mode", text: "Private note", on: { click: () => setMode("note") } });
  const textarea = h("textarea", {
    class: "composer-text",
    rows: 3,
    "aria-label": "Reply",
    placeholder: "Reply to the customer… (/ for canned responses)",
  });
  const fileInput = h("input", { type: "file", multiple: true, hidden: true, "aria-hidden": "true", tabindex: "-1" });
  const fileList = h("ul", { class: "composer-files", "aria-label": "Attached files" });
  const error = h("p", { class: "composer-error", role: "alert" });
  const emojiSlot = h("div", { class: "emoji-slot" });
  const sendButton = h("button", { type: "submit", class: "primary send", text: "Send" });
  const form = h(
    "form",
    { class: "composer", on: { submit: (e) => { e.preventDefault(); send(); } } },
    h("div", { class: "composer-modes", role: "tablist", "aria-label": "Reply or note" }, replyTab, noteTab),
    textarea,
    fileList,
    error,
    h(
      "div",
      { class: "composer-bar" },
      h("button", { type: "button", class: "ghost icon-button", title: "Attach files", "aria-label": "Attach files", on: { click: () => fileInput.click() } }, icon("clip")),
      h("button", { type: "button", class: "ghost icon-button", title: "Emoji", "aria-label": "Emoji", on: { click: toggleEmoji } }, icon("smile")),
      h("button", { type: "button", class: "ghost icon-button", title: "Canned response (/)", "aria-label": "Canned response", on: { click: () => openCanned("") } }, icon("bolt")),
      emojiSlot,
      h("span", { class: "composer-hint", text: "Enter to send · Shift+Enter for a new line" }),
      fileInput,
      sendButton,
    ),
  );
  replace(slot, form);

  function setMode(next) {
    mode = next;
    replyTab.classList.toggle("current", mode === "reply");
    noteTab.classList.toggle("current", mode === "note");
    replyTab.setAttribute("aria-selected", String(mode === "reply"));
    noteTab.setAttribute("aria-selected", String(mode === "note"));
    form.classList.toggle("note-mode", mode === "note");
    textarea.setAttribute("aria-label", mode === "note" ? "Private note" : "Reply");
    textarea.placeholder = mode === "note" ? "Write a private note (only agents see it)…" : "Reply to the customer… (/ for canned responses)";
    sendButton.textContent = mode === "note" ? "Add note" : "Send";
  }
  setMode("reply");

  function showError(text) {
    error.textContent = text;
  }

  function drawFiles() {
    replace(
      fileList,
      files.map((f, i) =>
        h(
          "li",
          { class: "file-chip" },
          h("span", { text: f.uploading ? `Uploading ${f.uploading}…` : f.filename }),
          f.size ? h("span", { class: "muted", text: fileSize(f.size) }) : null,
          f.uploading
            ? null
            : h("button", { type: "button", class: "ghost small", "aria-label": `Remove ${f.filename}`, text: "×", on: { click: () => { files.splice(i, 1); drawFiles(); } } }),
        ),
      ),
    );
  }

  async function upload(list) {
    for (const file of list) {
      const slotItem = { uploading: file.name };
      files.push(slotItem);
      drawFiles();
      try {
        const answer = await api("POST", `/inboxes/${conversation.inbox_id}/attachments`, undefined, {
          raw: file,
          query: { filename: file.name },
          headers: { "Content-Type": file.type || "application/octet-stream" },
        });
        Object.assign(slotItem, answer.attachment, { uploading: null });
      } catch (e) {
        files.splice(files.indexOf(slotItem), 1);
        showError(`${file.name}: ${e.message}`);
      }
      drawFiles();
    }
  }

  fileInput.addEventListener("change", () => {
    upload([...fileInput.files]);
    fileInput.value = "";
  });
  form.addEventListener("dragover", (e) => {
    e.preventDefault();
    form.classList.add("dragging");
  });
  form.addEventListener("dragleave", () => form.classList.remove("dragging"));
  form.addEventListener("drop", (e) => {
    e.preventDefault();
    form.classList.remove("dragging");
    if (e.dataTransfer && e.dataTransfer.files.length) upload([...e.dataTransfer.files]);
  });
  textarea.addEventListener("paste", (e) => {
    const pasted = e.clipboardData ? [...e.clipboardData.files] : [];
    if (pasted.length) {
      e.preventDefault();
      upload(pasted);
    }
  });

  function toggleEmoji() {
    if (emojiSlot.firstChild) {
      replace(emojiSlot);
      textarea.focus();
      return;
    }
    const close = () => {
      replace(emojiSlot);
      textarea.focus();
    };
    const grid = emojiPopover((emoji) => {
      insertAtCursor(emoji);
      close();
    }, close);
    replace(emojiSlot, grid);
    grid.querySelector("button").focus();
  }

  function insertAtCursor(text) {
    const start = textarea.selectionStart;
    const end = textarea.selectionEnd;
    textarea.setRangeText(text, start, end, "end");
    textarea.focus();
  }

  function openCanned(initial) {
    const value = textarea.value;
    const slash = /(^|\s)\/(\S*)$/.exec(value.slice(0, textarea.selectionStart));
    openCannedPicker(conversation, initial ?? (slash ? slash[2] : ""), (picked) => {
      if (slash) {
        const start = textarea.selectionStart - slash[2].length - 1;
        textarea.setRangeText(picked.text, start, textarea.selectionStart, "end");
      } else {
        insertAtCursor(picked.text);
      }
      cannedId = picked.id;
      textarea.focus();
    });
  }

  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === "Escape") {
      e.preventDefault();
      textarea.blur();
    }
  });
  textarea.addEventListener("input", () => {
    const before = textarea.value.slice(0, textarea.selectionStart);
    if (/(^|\s)\/$/.test(before) && before.trim() === "/") openCanned("");
    if (!textarea.value) cannedId = null;
    typing(true);
  });
  textarea.addEventListener("blur", () => typing(false));

  function typing(active) {
    const now = Date.now();
    clearTimeout(typingTimer);
    if (active && textarea.value) {
      if (now - typingSentAt > TYPING_REFRESH_MS) {
        typingSentAt = now;
        liveSend({ type: "typing", conversation_id: conversation.id, typing: true, private: mode === "note" });
      }
      typingTimer = setTimeout(() => typing(false), TYPING_IDLE_MS);
    } else if (typingSentAt) {
      typingSentAt = 0;
      liveSend({ type: "typing", conversation_id: conversation.id, typing: false, private: mode === "note" });
    }
  }

  async function send() {
    const text = textarea.value.trim();
    if (files.some((f) => f.uploading)) {
      showError("Wait for the files to finish uploading.");
      return;
    }
    if (!text && !files.length) return;
    const body = { text, private: mode === "note" };
    if (files.length) body.attachment_ids = files.map((f) => f.id);
    if (cannedId !== null) body.canned_response_id = cannedId;
    outbox.push({
      key: crypto.randomUUID(),
      conversationId: conversation.id,
      body,
      createdAt: new Date().toISOString(),
      files: files.map((f) => ({ id: f.id, filename: f.filename, size: f.size, image: f.image })),
    });
    saveOutbox();
    textarea.value = "";
    files = [];
    cannedId = null;
    drawFiles();
    showError("");
    typing(false);
    redrawThread();
    await flushOutbox();
  }

  function pendingBubbles() {
    return outbox
      .filter((item) => item.conversationId === conversation.id)
      .map((item) =>
        messageBubble(
          {
            _pending: true,
            sender_kind: "agent",
            sender_id: state.me.id,
            private: item.body.private,
            text: item.body.text,
            attachments: item.files,
            created_at: item.createdAt,
            delivery_status: "pending",
          },
          {},
        ),
      );
  }

  current = {
    conversationId: conversation.id,
    textarea,
    setMode,
    showError,
    openCanned: () => openCanned(""),
    pendingBubbles,
    redraw: redrawThread,
  };
  return current;
}

// A reply sent from the contact timeline (no composer of its own there).
export async function sendFromTimeline(conversationId, text) {
  outbox.push({ key: crypto.randomUUID(), conversationId, body: { text, private: false }, createdAt: new Date().toISOString(), files: [] });
  saveOutbox();
  await flushOutbox();
  return !outbox.some((item) => item.conversationId === conversationId);
}

