// The composer: reply or private note, files, emoji, `/` canned responses.
// A message goes out with an Idempotency-Key; when the network is down it
// waits (shown as "Sending…", kept across reloads) and is sent again with
// the same key once the connection is back, so it lands exactly once.

import { NetworkError, api, get } from "./api.js";
import { liveSend } from "./app.js";
import { openCannedPicker } from "./canned.js";
import { addMessages, conversationStillOpen } from "./data.js";
import { h, icon, replace } from "./dom.js";
import { emojiPopover } from "./emoji.js";
import { fileSize } from "./format.js";
import { messageBubble } from "./message_view.js";
import { offerNotifications } from "./notify.js";
import { channelOf, on, state } from "./state.js";

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
    const text = `Not sent: ${error.message}`;
    // A recipient the server refused (to[1], cc): said at its field.
    const recipient = error.field && /^(to|cc)\b/.test(error.field);
    if (!recipient || !current.markRecipients(error.field.slice(0, 2), text)) current.showError(text);
    if (!current.textarea.value) current.textarea.value = item.body.text || "";
  }
  // Its "Sending…" bubble goes: the text is back in the composer.
  if (current) current.redraw();
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
  const recipients = isEmail(conversation) ? emailRecipients(conversation, () => textarea) : null;
  const fileInput = h("input", { type: "file", multiple: true, hidden: true, "aria-hidden": "true", tabindex: "-1" });
  const fileList = h("ul", { class: "composer-files", "aria-label": "Attached files" });
  const error = h("p", { class: "composer-error", role: "alert" });
  const emojiSlot = h("div", { class: "emoji-slot" });
  const sendButton = h("button", { type: "submit", class: "primary send", text: "Send" });
  const form = h(
    "form",
    { class: "composer", on: { submit: (e) => { e.preventDefault(); send(); } } },
    h(
      "div",
      { class: "composer-head" },
      h("div", { class: "composer-modes", role: "tablist", "aria-label": "Reply or note" }, replyTab, noteTab),
      recipients ? recipients.subject : null,
    ),
    recipients ? recipients.el : null,
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
    if (recipients) recipients.showFor(mode);
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
    if (recipients && mode === "reply") {
      const chosen = recipients.read();
      if (chosen === null) return; // the field says what is wrong
      Object.assign(body, chosen);
    }
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
    if (recipients) recipients.clearErrors();
    typing(false);
    redrawThread();
    // The customer will answer this: the moment to offer notifications.
    if (!body.private) offerNotifications();
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
            email: item.body.to || item.body.cc ? pendingEmail(item.body) : null,
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
    markRecipients: (field, text) => Boolean(recipients) && recipients.mark(field, text),
  };
  return current;
}

// -- email recipients -----------------------------------------------------

function isEmail(conversation) {
  return channelOf(conversation) === "email";
}

function pendingEmail(body) {
  const list = (addresses) => (addresses || []).map((address) => ({ name: "", address }));
  return { to: list(body.to), cc: list(body.cc) };
}

const ADDRESS = /^[^\s@<>()\[\],;:"]+@[^\s@<>()\[\],;:"]+\.[^\s@<>()\[\],;:".]+$/;

// Split at commas and semicolons, except inside a quoted name ("Doe, Jane").
function splitList(value) {
  const parts = [];
  let part = "";
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && (ch === "," || ch === ";")) {
      parts.push(part);
      part = "";
    } else {
      part += ch;
    }
  }
  parts.push(part);
  return parts;
}

// "Sam <sam@x.test>, pat@y.test; lee@z.test" -> addresses, and what isn't one.
export function parseAddresses(value) {
  const addresses = [];
  const bad = [];
  for (const part of splitList(String(value))) {
    const trimmed = part.trim();
    if (!trimmed) continue;
    const bracketed = /<([^<>]*)>\s*$/.exec(trimmed);
    // "a@x.test b@y.test" is two addresses; "lee at acme" is one mistake.
    const candidates = bracketed ? [bracketed[1].trim()] : trimmed.split(/\s+/);
    if (!candidates.every((c) => ADDRESS.test(c))) {
      bad.push(trimmed);
      continue;
    }
    for (const candidate of candidates) {
      if (!addresses.some((a) => a.toLowerCase() === candidate.toLowerCase())) addresses.push(candidate);
    }
  }
  return { addresses, bad };
}

// To and Cc of an email reply, filled with who the reply goes to unless
// the agent changes it (GET /conversations/{id}/email_defaults). Until
// those arrive (or if they can't), an untouched reply leaves the choice
// to the server, which uses the same defaults.
function emailRecipients(conversation, textarea) {
  const id = conversation.id;
  let ready = false;
  const field = (name, label) => {
    const input = h("input", {
      type: "text",
      id: `composer-${name}-${id}`,
      class: "email-field-input",
      "aria-label": label,
      autocomplete: "off",
      spellcheck: "false",
      inputmode: "email",
      placeholder: name === "to" ? "Loading…" : "Add addresses, separated by commas",
    });
    const error = h("p", { class: "field-error", id: `composer-${name}-error-${id}`, role: "alert" });
    input.setAttribute("aria-describedby", error.id);
    const f = { input, error, label, touched: false };
    input.addEventListener("input", () => {
      ready = true;
      f.touched = true;
      clear(input, error);
    });
    f.row = h("div", { class: `email-field email-field-${name}` }, h("label", { for: input.id, text: label }), input, error);
    return f;
  };
  const to = field("to", "To");
  const cc = field("cc", "Cc");
  // No Cc row until there is one, or the agent asks for it.
  const showCc = (focus) => {
    cc.row.hidden = false;
    ccButton.hidden = true;
    if (focus) cc.input.focus();
  };
  const ccButton = h("button", { type: "button", class: "link email-cc-toggle", "aria-label": "Add Cc", text: "Cc", on: { click: () => showCc(true) } });
  to.row.append(ccButton);
  cc.row.hidden = true;
  const subject = h("p", { class: "email-subject-line", hidden: true });
  const warning = h("p", { class: "email-warning", role: "status", hidden: true });
  const el = h("div", { class: "email-fields", role: "group", "aria-label": "Email recipients" }, to.row, cc.row, warning);

  // Enter moves on (To → Cc → the message) rather than sending half a reply.
  to.input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      (cc.row.hidden ? textarea() : cc.input).focus();
    } else if (e.key === "Escape") {
      to.input.blur();
    }
  });
  cc.input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      textarea().focus();
    } else if (e.key === "Escape") {
      cc.input.blur();
    }
  });

  function clear(input, error) {
    input.removeAttribute("aria-invalid");
    error.textContent = "";
  }

  function fail(f, text) {
    f.input.setAttribute("aria-invalid", "true");
    f.error.textContent = text;
  }

  get(`/conversations/${id}/email_defaults`).then(
    (defaults) => {
      to.input.placeholder = "Add addresses, separated by commas";
      // What the agent typed before they arrived stands.
      if (!to.touched) to.input.value = (defaults.to || []).join(", ");
      if (!cc.touched) cc.input.value = (defaults.cc || []).join(", ");
      if (cc.input.value) showCc(false);
      ready = true;
      if (defaults.subject) {
        subject.hidden = false;
        subject.title = `Subject: ${defaults.subject}`;
        replace(subject, h("span", { class: "muted", text: "Subject: " }), defaults.subject);
      }
      const blocked = defaults.suppressed || [];
      if (blocked.length) {
        warning.hidden = false;
        warning.textContent = blocked.map((b) => `${b.address} no longer receives mail from us (${b.reason}).`).join(" ");
      }
    },
    () => {
      to.input.placeholder = "The customer's address (from the thread)";
    },
  );

  return {
    el,
    subject,
    showFor(mode) {
      // A note stays with the agents: no recipients, no subject.
      el.hidden = mode === "note";
      subject.classList.toggle("note-hidden", mode === "note");
    },
    // The recipients to send with, {} to leave them to the server, or
    // null when a field holds something that isn't an address.
    read() {
      if (!ready) return {};
      const out = {};
      for (const [name, f] of [["to", to], ["cc", cc]]) {
        const { addresses, bad } = parseAddresses(f.input.value);
        if (bad.length) {
          fail(f, `${f.label}: “${bad[0]}” is not an email address.`);
          f.input.focus();
          return null;
        }
        out[name] = addresses;
      }
      if (!out.to.length) {
        fail(to, "To: add at least one address.");
        to.input.focus();
        return null;
      }
      return out;
    },
    mark(name, text) {
      if (name === "cc") showCc(false);
      fail(name === "cc" ? cc : to, text);
      return true;
    },
    clearErrors() {
      clear(to.input, to.error);
      clear(cc.input, cc.error);
    },
  };
}

// A reply sent from the contact timeline (no composer of its own there).
export async function sendFromTimeline(conversationId, text) {
  outbox.push({ key: crypto.randomUUID(), conversationId, body: { text, private: false }, createdAt: new Date().toISOString(), files: [] });
  saveOutbox();
  await flushOutbox();
  return !outbox.some((item) => item.conversationId === conversationId);
}

