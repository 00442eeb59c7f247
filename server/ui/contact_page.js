// @ts-check
// One timeline per customer: every message of the contact from every
// conversation and channel, in time order, each marked with where it came
// from; reply from here on the channel the agent picks.

import { get, post } from "./api.js";
import { contactBundle } from "./data.js";
import { sendFromTimeline } from "./outbox.js";
import { contactDetails } from "./contact_sidebar.js";
import { h, replace } from "./dom.js";
import { channelLabel, plural } from "./format.js";
import { messageBubble } from "./message_view.js";
import { setTitle } from "./notify.js";
import { on, state } from "./state.js";
import { toast } from "./toast.js";

const MAX_ITEMS = 1000;
/** @type {{ contactId: number, timeline: HTMLElement, side: HTMLElement, head: HTMLElement, replyBox: HTMLElement } | null} */
let mounted = null;

/**
 * @param {HTMLElement} root
 * @param {number} contactId
 */
export async function showContactPage(root, contactId) {
  const timeline = h("div", { class: "thread timeline", tabindex: "-1", "aria-label": "Timeline" });
  const side = h("aside", { class: "contact-column", "aria-label": "Contact" });
  const head = h("header", { class: "pane-header" });
  const replyBox = h("div", { class: "composer-slot" });
  replace(root, h("main", { class: "pane contact-page", "aria-label": "Contact timeline" }, head, timeline, replyBox), side);
  mounted = { contactId, timeline, side, head, replyBox };
  await loadPage(contactId);
}

/** @param {number} contactId */
async function loadPage(contactId) {
  let bundle;
  let items;
  try {
    // The contact (with its events and conversations) and its timeline,
    // side by side.
    [bundle, items] = await Promise.all([contactBundle(contactId), timelineItems(contactId)]);
  } catch (e) {
    replace(/** @type {NonNullable<typeof mounted>} */ (mounted).head, h("h1", { text: "Contact not found" }));
    return;
  }
  const { contact, extras } = bundle;
  if (contact.merged_into_id) {
    location.hash = `#/contact/${contact.merged_into_id}`;
    return;
  }
  if (!mounted || mounted.contactId !== contactId) return;
  state.contact = contact;
  state.contactExtras = extras;
  setTitle(contact.name);
  const channels = new Set(items.map((m) => m.channel));
  replace(
    mounted.head,
    h(
      "div",
      { class: "pane-title" },
      h("h1", { text: contact.name }),
      h("div", { class: "pane-subtitle", text: `${plural(items.length, "message", "messages")} · ${plural(extras.conversations.length, "conversation", "conversations")} · ${[...channels].map(channelLabel).join(", ") || "no messages yet"}` }),
    ),
  );
  replace(
    mounted.timeline,
    items.length ? null : h("p", { class: "muted empty-timeline", text: "No messages yet." }),
    items.map((m) =>
      messageBubble(m, {
        contactName: contact.name,
        channel: m.channel,
        showChannel: true,
        conversationSubject: m.conversation_subject,
        conversationLabel: { href: `#/v/all/c/${m.conversation_id}`, text: `#${m.conversation_id}${m.conversation_subject ? ` ${m.conversation_subject}` : ""}` },
      }),
    ),
  );
  mounted.timeline.scrollTop = mounted.timeline.scrollHeight;
  replace(mounted.side, ...contactDetails(contact, state.contactExtras));
  drawReply(contact, extras.conversations);
}

/** @param {number} contactId */
async function timelineItems(contactId) {
  /** @type {any[]} */
  const items = [];
  /** @type {string | null} */
  let cursor = null;
  do {
    const page = await get(`/contacts/${contactId}/timeline`, { limit: 100, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < MAX_ITEMS);
  return items;
}

/**
 * @param {any} contact
 * @param {any[]} conversations
 */
function drawReply(contact, conversations) {
  const open = conversations.filter((c) => c.status !== "resolved");
  const choices = [
    ...conversations.map((c) => ({ value: `c:${c.id}`, text: `${channelLabel(c.channel || "api")} · #${c.id}${c.subject ? ` ${c.subject}` : ""} (${c.status})` })),
    ...[...state.inboxes.values()].map((i) => ({ value: `i:${i.id}`, text: `New conversation in ${i.name}` })),
  ];
  const select = h("select", { class: "reply-channel", "aria-label": "Reply on" }, choices.map((o) => h("option", { value: o.value, text: o.text })));
  const preferred = open[0] || conversations[0];
  if (preferred) select.value = `c:${preferred.id}`;
  const text = h("textarea", { class: "composer-text", rows: 2, "aria-label": "Reply from the timeline", placeholder: `Reply to ${contact.name}…` });
  const button = h("button", { type: "submit", class: "primary", text: "Send" });
  const form = h(
    "form",
    { class: "composer timeline-composer", on: { submit: submit } },
    h("label", { class: "reply-on" }, "Reply on ", select),
    text,
    h("div", { class: "composer-bar" }, h("span", { class: "composer-hint", text: "Enter to send · Shift+Enter for a new line" }), button),
  );
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    } else if (e.key === "Escape") {
      text.blur();
    }
  });
  replace(/** @type {NonNullable<typeof mounted>} */ (mounted).replyBox, form);

  /** @param {SubmitEvent} event */
  async function submit(event) {
    event.preventDefault();
    const body = text.value.trim();
    if (!body) return;
    button.disabled = true;
    try {
      let conversationId;
      const [kind, id] = select.value.split(":");
      if (kind === "c") conversationId = Number(id);
      else conversationId = (await post("/conversations", { inbox_id: Number(id), contact_id: contact.id })).id;
      text.value = "";
      const sent = await sendFromTimeline(conversationId, body);
      if (!sent) toast("Offline: the reply will be sent when the connection is back.");
      await loadPage(contact.id);
    } catch (e) {
      toast(`Not sent: ${/** @type {Error} */ (e).message}`, { error: true });
    } finally {
      button.disabled = false;
    }
  }
}

on("contact-event", () => {
  if (mounted && state.route.page === "contact" && state.route.contactId === mounted.contactId && document.contains(mounted.timeline)) {
    loadPage(mounted.contactId);
  }
});

export function refreshContactPage() {
  if (mounted && document.contains(mounted.timeline)) loadPage(mounted.contactId);
}
