// @ts-check
// The contact column: who the customer is (identities, attributes), what
// they did (tracked events), their labels and past conversations, and
// merging them with a duplicate — one the agent finds, or one Threadline
// suggests ("Possible duplicate": an address one of them only typed in).

import { get, post } from "./api.js";
import { h, icon, replace } from "./dom.js";
import { initials, plural, shortTime, statusLabel } from "./format.js";
import { reviewMerge, startContactMerge } from "./contact_merge.js";
import { contactTouchpoints } from "./contact_touchpoints.js";
import { conversationRecord } from "./conversation_record.js";
import { on, state } from "./state.js";
import { toast } from "./toast.js";

// Contact id -> its open merge suggestions as last fetched, so that a
// redraw shows them at once while they are fetched again.
const suggestionCache = new Map();

/** @param {HTMLElement} root */
export function mountContactSidebar(root) {
  const draw = () => {
    const details = state.contact ? contactDetails(state.contact, state.contactExtras) : [];
    // The open conversation's assignment and routing lines, under the
    // contact's name: how the conversation reached whoever has it.
    if (state.conversation) details.splice(1, 0, conversationRecord(state.conversation));
    replace(root, ...details);
  };
  on("contact", draw, root);
  on("conversation", draw, root);
  draw();
}

/**
 * @param {any} contact
 * @param {{ events: any[], conversations: any[] } | null} extras
 */
export function contactDetails(contact, extras) {
  const conversations = (extras && extras.conversations) || [];
  const events = (extras && extras.events) || [];
  const labels = [...new Set(conversations.flatMap((c) => c.labels || []))].sort();
  const attributes = Object.entries(contact.attributes || {});
  /**
   * @param {string} title
   * @param {import("./dom.js").Children} body
   */
  const section = (title, body) => h("section", { class: "contact-section" }, h("h2", { text: title }), body);
  return [
    h(
      "header",
      { class: "contact-head" },
      h("span", { class: "avatar large", text: initials(contact.name) }),
      h("div", null, h("h2", { class: "contact-name", text: contact.name }), h("a", { href: `#/contact/${contact.id}`, class: "timeline-link", text: "Open full timeline" })),
    ),
    mergeSuggestions(contact),
    section(
      "Identities",
      contact.identities.length
        ? h("ul", { class: "identities" }, contact.identities.map((/** @type {any} */ i) =>
            h("li", null, h("span", { class: "identity-kind", text: i.kind }), h("span", { class: "identity-value", text: i.value }), i.verified ? h("span", { class: "verified", title: "Verified", text: "verified" }) : null),
          ))
        : h("p", { class: "muted", text: "Anonymous visitor" }),
    ),
    section(
      "Attributes",
      attributes.length
        ? h("dl", { class: "attributes" }, attributes.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: typeof v === "string" ? v : JSON.stringify(v) })]))
        : h("p", { class: "muted", text: "None yet" }),
    ),
    labels.length ? section("Labels", h("div", { class: "label-list" }, labels.map((l) => h("span", { class: "label-chip", text: l })))) : null,
    section(
      "Activity",
      events.length
        ? h("ul", { class: "contact-events" }, events.slice(0, 10).map((e) =>
            h("li", null, h("span", { class: "event-name", text: e.name }), h("time", { datetime: e.occurred_at || e.created_at, text: shortTime(e.occurred_at || e.created_at) }), h("div", { class: "event-props", text: summarize(e.properties) })),
          ))
        : h("p", { class: "muted", text: "No tracked events" }),
    ),
    contactTouchpoints(contact),
    section(
      "Conversations",
      h("ul", { class: "past-conversations" }, conversations.map((c) =>
        h("li", null, h("a", { href: `#/v/all/c/${c.id}`, class: c.id === (state.conversation && state.conversation.id) ? "current" : "" },
          h("span", { text: `#${c.id} ${c.subject || (c.last_message && c.last_message.text) || ""}`.slice(0, 60) }),
          h("span", { class: `status status-${c.status}`, text: statusLabel(c) }),
        )),
      )),
    ),
    h("div", { class: "contact-actions" }, h("button", { type: "button", class: "ghost", text: "Merge with another contact…", on: { click: () => startContactMerge(contact) } })),
  ];
}

// The "Possible duplicate" cards: drawn from the cache, then refreshed.
// Redrawn whenever the contact is (live: a contact.merge_suggestion*
// event reloads the contact it names on either side).
/** @param {any} contact */
function mergeSuggestions(contact) {
  const box = h("section", { class: "merge-suggestions", "aria-label": "Possible duplicates" });
  /** @param {any[]} items */
  const draw = (items) => {
    box.hidden = !items.length;
    replace(box, items.map((s) => suggestionCard(contact, s, box)));
  };
  draw(suggestionCache.get(contact.id) || []);
  get(`/contacts/${contact.id}/merge_suggestions`).then(
    (page) => {
      suggestionCache.set(contact.id, page.items);
      draw(page.items);
    },
    () => {},
  );
  return box;
}

/**
 * @param {any} contact
 * @param {any} suggestion
 * @param {HTMLElement} box
 */
function suggestionCard(contact, suggestion, box) {
  const other = suggestion.other;
  const review = h("button", { type: "button", class: "primary small", text: "Review merge" });
  const dismiss = h("button", { type: "button", class: "ghost small", text: "Dismiss" });
  const card = h(
    "article",
    { class: "suggestion-card", "aria-label": `Possible duplicate: ${other.name}` },
    h("h3", { class: "suggestion-title" }, icon("merge"), "Possible duplicate"),
    h("p", { class: "suggestion-name" }, h("a", { href: `#/contact/${other.id}`, text: other.name }), h("span", { class: "muted", text: ` · ${plural(other.conversation_count, "conversation", "conversations")}` })),
    other.identities.length
      ? h("ul", { class: "identities" }, other.identities.map((/** @type {any} */ i) =>
          h("li", null, h("span", { class: "identity-kind", text: i.kind }), h("span", { class: "identity-value", text: i.value }), i.verified ? h("span", { class: "verified", text: "verified" }) : null),
        ))
      : h("p", { class: "muted", text: "Anonymous visitor" }),
    h("p", { class: "suggestion-reason", text: suggestion.reason }),
    h("div", { class: "suggestion-actions" }, review, dismiss),
  );
  review.addEventListener("click", () => reviewMerge(contact, { id: other.id, name: other.name }));
  dismiss.addEventListener("click", async () => {
    dismiss.disabled = true;
    review.disabled = true;
    try {
      await post(`/merge_suggestions/${suggestion.id}/dismiss`);
    } catch (e) {
      dismiss.disabled = false;
      review.disabled = false;
      toast(`Couldn't dismiss: ${/** @type {Error} */ (e).message}`, { error: true });
      return;
    }
    for (const id of [suggestion.contact_id, suggestion.candidate_id]) {
      const cached = suggestionCache.get(id);
      if (cached) suggestionCache.set(id, cached.filter((/** @type {any} */ s) => s.id !== suggestion.id));
    }
    card.remove();
    box.hidden = !box.children.length;
    toast(`Dismissed: ${other.name} is not a duplicate`);
  });
  return card;
}

/** @param {Record<string, unknown>} properties */
function summarize(properties) {
  if (!properties || typeof properties !== "object") return "";
  return Object.entries(properties)
    .slice(0, 4)
    .map(([k, v]) => `${k}: ${brief(v)}`)
    .join(" · ")
    .slice(0, 200);
}

// A tracked value in a few words: a cart's items by name and quantity
// ("Trail Runner shoes ×1, Rain shell ×2"), not their JSON.
/** @param {unknown} value
 * @returns {string} */
function brief(value) {
  if (value === null || typeof value !== "object") return String(value);
  if (Array.isArray(value)) return value.map(brief).join(", ");
  const item = /** @type {Record<string, unknown>} */ (value);
  if (typeof item.name === "string") {
    return typeof item.quantity === "number" ? `${item.name} ×${item.quantity}` : item.name;
  }
  const keys = Object.keys(item);
  return keys.length ? `{${keys.slice(0, 3).join(", ")}${keys.length > 3 ? ", …" : ""}}` : "{}";
}
