// @ts-check
// Ctrl+K / Cmd+K: jump anywhere, run an action, or search contacts and
// conversations by name, email and message text.

import { get } from "./api.js";
import { assign, label, snooze, toggleResolved } from "./conversation_actions.js";
import { openPicker } from "./picker.js";
import { showHelp } from "./shortcuts_help.js";
import { canOfferNotifications, offerNotifications } from "./notify.js";
import { state } from "./state.js";

function commands() {
  const c = state.conversation;
  const list = [
    { id: "go:mine", label: "Go to Mine", run: () => (location.hash = "#/v/mine") },
    { id: "go:unassigned", label: "Go to Unassigned", run: () => (location.hash = "#/v/unassigned") },
    { id: "go:all", label: "Go to All", run: () => (location.hash = "#/v/all") },
    { id: "go:canned", label: "Settings: canned responses", run: () => (location.hash = "#/settings/canned") },
    { id: "go:macros", label: "Settings: macros", run: () => (location.hash = "#/settings/macros") },
    { id: "help", label: "Keyboard shortcuts", run: showHelp },
  ];
  if (canOfferNotifications()) {
    list.push({ id: "notifications", label: "Turn on desktop notifications", run: () => offerNotifications(true) });
  }
  if (c) {
    list.unshift(
      { id: "do:resolve", label: c.status === "resolved" ? "Reopen this conversation" : "Resolve this conversation", run: () => toggleResolved(c) },
      { id: "do:assign", label: "Assign…", run: () => assign(c) },
      { id: "do:label", label: "Label…", run: () => label(c) },
      { id: "do:snooze", label: "Snooze…", run: () => snooze(c) },
    );
  }
  return list.map((item) => ({ ...item, group: "Commands" }));
}

export function openPalette() {
  openPicker({
    title: "Search or run a command",
    placeholder: "Name, email, message text, or a command…",
    className: "palette",
    items: async (query) => {
      const q = query.trim();
      const matching = commands().filter((cmd) => cmd.label.toLowerCase().includes(q.toLowerCase()));
      if (q.length < 2) return matching;
      /** @type {{ contacts: any[], conversations: { conversation: any, match: any }[] }} */
      const found = await get("/search", { q, limit: 8 }).catch(() => ({ contacts: [], conversations: [] }));
      const contacts = found.contacts.map((contact) => ({
        id: `contact:${contact.id}`,
        group: "Contacts",
        label: contact.name,
        hint: contact.identities.map((/** @type {{ value: string }} */ i) => i.value).slice(0, 2).join(", "),
        run: () => (location.hash = `#/contact/${contact.id}`),
      }));
      const conversations = found.conversations.map(({ conversation, match }) => ({
        id: `conversation:${conversation.id}`,
        group: "Conversations",
        label: `${conversation.contact ? conversation.contact.name : "Contact"} · #${conversation.id}${conversation.subject ? ` ${conversation.subject}` : ""}`,
        // Found by its customer: show where the conversation stands instead.
        hint: match.field === "contact" ? (conversation.last_message ? conversation.last_message.text : "") : match.snippet,
        run: () => (location.hash = `#/v/all/c/${conversation.id}`),
      }));
      return [...contacts, ...conversations, ...matching];
    },
    onPick: (item) => item.run(),
  });
}
