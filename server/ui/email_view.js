// @ts-check
// The email parts of a message bubble (F2, PROTOCOLS.md P4): who it was
// from and to, its subject when it isn't the conversation's, how it was
// threaded, its text or its formatted HTML, the quoted history and the
// original.
//
// The HTML never enters this page: it is shown by a sandboxed <iframe>
// (no scripts, no origin) of GET /messages/{id}/html, a page the server
// sanitises again and serves with its own strict CSP. The original is
// plain text opened in a tab of its own.

import { h, icon, replace } from "./dom.js";
import { fullTime } from "./format.js";
import { state } from "./state.js";

// What the agent opened on each message (formatted view, quoted text,
// all recipients), kept across redraws of the thread.
/** @type {Map<number, Set<string>>} */
const opened = new Map(); // message id -> Set of "html" | "quoted" | "recipients"

/**
 * @param {number} id
 * @param {string} what
 */
function isOpen(id, what) {
  const set = opened.get(id);
  return Boolean(set && set.has(what));
}

/**
 * @param {number} id
 * @param {string} what
 * @param {boolean} value
 */
function setOpen(id, what, value) {
  const set = opened.get(id) || new Set();
  if (value) set.add(what);
  else set.delete(what);
  opened.set(id, set);
}

/** @type {Record<string, string>} */
const FLAGS = {
  different_sender: "Different sender",
  subject_changed: "Subject changed",
  automatic: "Automatic reply",
};

// "Re: Fwd: Where is my order?" and "where is my order?" are one subject.
/** @param {string | null | undefined} subject */
export function normalizeSubject(subject) {
  let s = String(subject || "").trim();
  const prefix = /^(?:re|fwd?|aw|wg|sv|tr|vs|antw|rif|res|enc)\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*/i;
  while (prefix.test(s)) s = s.replace(prefix, "");
  return s.replace(/\s+/g, " ").toLowerCase();
}

/** @typedef {{ name?: string, address?: string }} Address */

/** @param {Address} a */
export function addressText(a) {
  if (!a) return "";
  return a.name ? `${a.name} <${a.address}>` : a.address || "";
}

/** @param {Address} a */
function shortName(a) {
  return (a && (a.name || a.address)) || "";
}

/**
 * @param {unknown} list
 * @returns {Address[]}
 */
const clean = (list) => (Array.isArray(list) ? list.filter((a) => a && (a.name || a.address)) : []);

// "to support@acme.test, Sam +2": the first two recipients, then how many more.
/** @param {any} email a message's `email` part */
export function recipientsSummary(email) {
  const to = clean(email.to);
  const cc = clean(email.cc);
  const all = [...to, ...cc];
  if (!all.length) return "";
  const shown = all.slice(0, 2).map(shortName);
  const more = all.length - shown.length;
  return `to ${shown.join(", ")}${more > 0 ? ` +${more}` : ""}`;
}

/**
 * @param {string} label
 * @param {string} value
 */
function detailRow(label, value) {
  if (!value) return null;
  return [h("dt", { text: label }), h("dd", { text: value })];
}

// The line under the sender: a summary of the recipients that opens into
// every header the agent may want (From, Reply-To, To, Cc, Subject, Date).
/**
 * @param {any} message
 * @param {any} email
 */
function recipientsLine(message, email) {
  const summary = recipientsSummary(email);
  if (!summary) return null;
  const details = h(
    "dl",
    { class: "email-details", hidden: !isOpen(message.id, "recipients") },
    detailRow("From", addressText(email.from)),
    detailRow("Reply-To", clean(email.reply_to).map(addressText).join(", ")),
    detailRow("To", clean(email.to).map(addressText).join(", ")),
    detailRow("Cc", clean(email.cc).map(addressText).join(", ")),
    detailRow("Subject", email.subject),
    detailRow("Date", fullTime(message.created_at)),
  );
  const toggle = h("button", {
    type: "button",
    class: "email-recipients",
    "aria-expanded": String(isOpen(message.id, "recipients")),
    title: "Show every recipient",
    on: {
      click: () => {
        const open = details.hidden;
        details.hidden = !open;
        toggle.setAttribute("aria-expanded", String(open));
        setOpen(message.id, "recipients", open);
      },
    },
  }, h("span", { class: "email-recipients-text", text: summary }), h("span", { class: "caret", "aria-hidden": "true", text: "▾" }));
  return [toggle, details];
}

/** @param {any} email */
function threadNotes(email) {
  const thread = email.thread || {};
  /** @type {string[]} */
  const flags = (thread.flags || []).filter((/** @type {string} */ f) => FLAGS[f]);
  const linked = thread.reason === "new_different_sender" && thread.linked_conversation_id;
  if (!flags.length && !linked) return null;
  const view = state.route && state.route.view ? state.route.view : "all";
  return h(
    "div",
    { class: "email-flags" },
    flags.map((f) => h("span", { class: `email-flag flag-${f}`, title: thread.detail || FLAGS[f], text: FLAGS[f] })),
    linked
      ? h("a", {
          class: "email-linked",
          href: `#/v/${encodeURIComponent(view)}/c/${Number(thread.linked_conversation_id)}`,
          title: thread.detail || "",
          text: `New conversation: replied to #${Number(thread.linked_conversation_id)}`,
        })
      : null,
  );
}

// The sender's address, shown after the name in the bubble's header.
/** @param {any} message */
export function fromAddress(message) {
  const email = message.email;
  if (!email || !email.from || !email.from.address) return null;
  return h("span", { class: "message-address", text: `<${email.from.address}>` });
}

/** @param {any} message */
export function fromName(message) {
  const email = message.email;
  return (email && email.from && email.from.name) || null;
}

// The stored HTML is sanitised markup: only looked at, never parsed.
const REMOTE_IMAGE = /<img\b[^>]*\ssrc="https?:/i;

// The frame can't be measured from outside (it has no origin), so its
// height is a guess from the mail's text and inline images, between a
// few lines and most of the screen; the agent can drag it taller.
/** @param {any} message */
function frameHeight(message) {
  const email = message.email || {};
  const text = email.full_text || message.text || "";
  const lines = text.split("\n").reduce((/** @type {number} */ n, /** @type {string} */ line) => n + Math.max(1, Math.ceil(line.length / 80)), 0);
  const images = Object.keys(email.inline || {}).length;
  const guess = 48 + lines * 24 + images * 180;
  return Math.round(Math.max(140, Math.min(guess, 640, window.innerHeight * 0.6)));
}

// Everything between the header and the attachments.
/**
 * @param {any} message
 * @param {{ conversationSubject?: string | null }} [options]
 */
export function emailBody(message, { conversationSubject } = {}) {
  const email = message.email || {};
  const id = message.id;
  const hasHtml = Boolean(message.html) && id !== undefined && id !== null && !message._pending;
  const fullText = email.full_text || null;
  const differs = email.subject && normalizeSubject(email.subject) !== normalizeSubject(conversationSubject);
  // HTML-only mail has no text to show: it opens formatted.
  if (hasHtml && !message.text && !opened.has(id)) setOpen(id, "html", true);

  const text = h("div", { class: "message-text" });
  const frameBox = h("div", { class: "email-frame" });
  const actions = h("div", { class: "email-actions" });

  const draw = () => {
    const html = hasHtml && isOpen(id, "html");
    const quoted = Boolean(fullText) && isOpen(id, "quoted");
    text.textContent = quoted ? fullText : message.text || "";
    text.hidden = html || !(quoted ? fullText : message.text);
    if (html && !frameBox.firstChild) {
      frameBox.style.height = `${frameHeight(message)}px`;
      replace(
        frameBox,
        // Behind the frame until its white page covers it.
        h("p", { class: "email-frame-loading muted", "aria-hidden": "true", text: "Loading the formatted mail…" }),
        h("iframe", {
          class: "email-html",
          title: `Formatted email${email.subject ? `: ${email.subject}` : ""}`,
          sandbox: "allow-popups allow-popups-to-escape-sandbox",
          referrerpolicy: "no-referrer",
          src: `/api/v1/messages/${Number(id)}/html`,
        }),
      );
    } else if (!html && frameBox.firstChild) {
      replace(frameBox);
    }
    frameBox.hidden = !html;
    replace(
      actions,
      hasHtml
        ? h("button", {
            type: "button",
            class: "link email-toggle-html",
            "aria-pressed": String(html),
            text: html ? "Show text" : "Show formatted",
            on: { click: () => { setOpen(id, "html", !html); draw(); } },
          })
        : null,
      fullText && !html
        ? h("button", {
            type: "button",
            class: "link email-toggle-quoted",
            "aria-pressed": String(quoted),
            text: quoted ? "Hide quoted text" : "Show quoted text",
            on: { click: () => { setOpen(id, "quoted", !quoted); draw(); } },
          })
        : null,
      html && REMOTE_IMAGE.test(message.html)
        ? h("span", { class: "email-blocked muted", title: "Images from other sites would tell the sender the mail was read.", text: "Remote images are not loaded" })
        : null,
      email.inbound_mail_id && id !== undefined && id !== null
        ? h("a", {
            class: "email-original",
            href: `/api/v1/messages/${Number(id)}/original`,
            target: "_blank",
            rel: "noopener noreferrer",
            title: "The mail as it was received, headers and all (opens a new tab)",
            text: "Show original",
          })
        : null,
    );
    actions.hidden = !actions.firstChild;
  };
  draw();

  return [
    recipientsLine(message, email),
    differs ? h("div", { class: "email-subject" }, icon("email"), h("span", { text: email.subject })) : null,
    threadNotes(email),
    text,
    frameBox,
    actions,
  ];
}
