// The contact column: who the customer is (identities, attributes), what
// they did (tracked events), their labels and past conversations, and
// merging them with a duplicate.

import { h, replace } from "./dom.js";
import { initials, shortTime, statusLabel } from "./format.js";
import { startContactMerge } from "./contact_merge.js";
import { on, state } from "./state.js";

export function mountContactSidebar(root) {
  const draw = () => replace(root, ...(state.contact ? contactDetails(state.contact, state.contactExtras) : []));
  on("contact", draw, root);
  on("conversation", draw, root);
  draw();
}

export function contactDetails(contact, extras) {
  const conversations = (extras && extras.conversations) || [];
  const events = (extras && extras.events) || [];
  const labels = [...new Set(conversations.flatMap((c) => c.labels || []))].sort();
  const attributes = Object.entries(contact.attributes || {});
  const section = (title, body) => h("section", { class: "contact-section" }, h("h2", { text: title }), body);
  return [
    h(
      "header",
      { class: "contact-head" },
      h("span", { class: "avatar large", text: initials(contact.name) }),
      h("div", null, h("h2", { class: "contact-name", text: contact.name }), h("a", { href: `#/contact/${contact.id}`, class: "timeline-link", text: "Open full timeline" })),
    ),
    section(
      "Identities",
      contact.identities.length
        ? h("ul", { class: "identities" }, contact.identities.map((i) =>
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

function summarize(properties) {
  if (!properties || typeof properties !== "object") return "";
  return Object.entries(properties)
    .slice(0, 4)
    .map(([k, v]) => `${k}: ${typeof v === "string" || typeof v === "number" ? v : JSON.stringify(v)}`)
    .join(" · ")
    .slice(0, 200);
}
