// @ts-check
// One message as a bubble: who, when, where, its delivery state, its files.
// Text is shown as text (line breaks kept by CSS), never parsed as HTML.

import { h, icon } from "./dom.js";
import { emailBody, fromAddress, fromName } from "./email_view.js";
import { channelLabel, fileSize, fullTime, shortTime } from "./format.js";
import { agentName } from "./state.js";

/**
 * @param {any} message
 * @param {string | null | undefined} contactName
 */
export function senderName(message, contactName) {
  if (message.sender_kind === "contact") return fromName(message) || contactName || "Customer";
  if (message.sender_kind === "agent") return agentName(message.sender_id);
  if (message.sender_kind === "bot") return "Bot";
  return "Threadline";
}

// A stored message the server hasn't handed to a channel's transport yet:
// queued for email; on chat channels the stored message is what the
// customer's widget reads, so it is sent.
/** @type {Record<string, string | null>} */
const DELIVERY = {
  pending: "Sent",
  sent: "Sent",
  delivered: "Delivered",
  failed: "Failed",
  received: null,
};

// `conversationSubject`: an email's subject is shown only when it is not
// the conversation's (a "Re:" in front doesn't count).
/**
 * @typedef {{ contactName?: string | null, channel?: string, showChannel?: boolean,
 *   conversationLabel?: { href: string, text: string } | null, seen?: boolean, conversationSubject?: string | null }} BubbleOptions
 */

/**
 * @param {any} message
 * @param {BubbleOptions} [options]
 */
export function messageBubble(message, { contactName, channel, showChannel, conversationLabel, seen, conversationSubject } = {}) {
  const mine = message.sender_kind !== "contact";
  const kind = message.private ? "note" : mine ? "outbound" : "inbound";
  const email = Boolean(message.email) && !message.private;
  const status = message._pending
    ? "Sending…"
    : message.delivery_status === "pending" && (channel === "email" || email)
      ? message.delivery_error
        ? `Queued · ${message.delivery_error}`
        : "Queued"
      : message.delivery_status === "sent" && email && message.delivery_error
        ? `Sent · ${message.delivery_error}` // some recipients refused it
        : (DELIVERY[message.delivery_status] ?? null);
  return h(
    "article",
    {
      class: `message message-${kind}${email ? " message-email" : ""}${message._pending ? " pending" : ""}`,
      dataset: { seq: message.seq ?? "", id: message.id ?? "" },
      "aria-label": `${message.private ? "Private note" : "Message"} from ${senderName(message, contactName)}`,
    },
    h(
      "header",
      { class: "message-meta" },
      h("span", { class: "message-sender", text: senderName(message, contactName) }),
      email && !mine ? fromAddress(message) : null,
      message.private ? h("span", { class: "note-badge" }, icon("note"), "Private note") : null,
      showChannel && channel ? h("span", { class: "message-channel", title: channelLabel(channel) }, icon(channel), channelLabel(channel)) : null,
      conversationLabel ? h("a", { class: "message-conversation", href: conversationLabel.href, text: conversationLabel.text }) : null,
      h("time", { datetime: message.created_at, title: fullTime(message.created_at), text: shortTime(message.created_at) }),
    ),
    email
      ? emailBody(message, { conversationSubject })
      : message.text
        ? h("div", { class: "message-text", text: message.text })
        : null,
    message.attachments && message.attachments.length
      ? h("div", { class: "attachments" }, message.attachments.map((/** @type {any} */ file) => attachmentView(file)))
      : null,
    mine && !message.private && (status || (seen && !email))
      ? h(
          "footer",
          { class: `delivery delivery-${message.delivery_status}` },
          message.delivery_status === "failed"
            ? `Failed: ${message.delivery_error || "not delivered"}`
            : seen && !email
              ? "Seen"
              : status,
        )
      : null,
  );
}

/** @param {any} file an attachment */
export function attachmentView(file) {
  const url = `/api/v1/attachments/${file.id}`;
  if (file.image) {
    return h(
      "a",
      { class: "attachment image", href: url, target: "_blank", rel: "noopener", title: file.filename },
      h("img", { src: url, alt: file.filename, loading: "lazy" }),
    );
  }
  return h(
    "a",
    { class: "attachment file", href: url, download: file.filename, rel: "noopener" },
    icon("clip"),
    h("span", { class: "attachment-name", text: file.filename }),
    h("span", { class: "attachment-size", text: fileSize(file.size || 0) }),
  );
}
