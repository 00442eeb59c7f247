// @ts-check
// What an agent does to a conversation: assign, label, priority, snooze,
// resolve / reopen, run a macro, merge. Each is a picker and one API call;
// the live event that follows redraws the list and the pane.

import { get, patch, post } from "./api.js";
import { h, icon } from "./dom.js";
import { agentName, notify, state, teamName } from "./state.js";
import { offerNotifications } from "./notify.js";
import { openPicker } from "./picker.js";
import { toast } from "./toast.js";

/** @typedef {import("./state.js").Conversation} Conversation */

/**
 * @param {Conversation} conversation
 * @param {Record<string, unknown>} body
 * @param {string} done
 */
async function change(conversation, body, done) {
  try {
    const fresh = await patch(`/conversations/${conversation.id}`, body);
    if (state.conversation && state.conversation.id === fresh.id) {
      state.conversation = { ...state.conversation, ...fresh };
      notify("conversation-meta");
    }
    if (done) toast(done);
  } catch (e) {
    toast(`Couldn't change it: ${/** @type {Error} */ (e).message}`, { error: true });
  }
}

/** @param {Conversation} conversation */
export function assign(conversation) {
  openPicker({
    title: "Assign to",
    placeholder: "Agent or team…",
    items: (query) => {
      const q = query.toLowerCase();
      const agents = [...state.agents.values()]
        .filter((a) => a.active !== false && a.name.toLowerCase().includes(q))
        .map((a) => ({ id: `agent:${a.id}`, label: a.id === state.me.id ? `${a.name} (me)` : a.name, hint: state.presence.get(a.id) || "offline", group: "Agents" }));
      const teams = [...state.teams.values()]
        .filter((t) => t.name.toLowerCase().includes(q))
        .map((t) => ({ id: `team:${t.id}`, label: t.name, group: "Teams" }));
      const none = "unassign".includes(q) ? [{ id: "none", label: "Unassign", group: "Agents" }] : [];
      return [...none, ...agents, ...teams];
    },
    onPick: (item) => {
      const [kind, id] = item.id.split(":");
      if (kind === "none") change(conversation, { assignee_id: null }, "Unassigned");
      else if (kind === "agent") {
        change(conversation, { assignee_id: Number(id) }, `Assigned to ${agentName(Number(id))}`);
        // Taking a conversation: its customer's next message is for me.
        if (Number(id) === state.me.id) offerNotifications();
      }
      else change(conversation, { team_id: Number(id) }, `Team set to ${teamName(Number(id))}`);
    },
  });
}

/** @param {Conversation} conversation */
export function label(conversation) {
  const known = new Set([...Object.keys((state.counts && state.counts.labels) || {}), ...conversation.labels]);
  openPicker({
    title: "Labels",
    placeholder: "Add or remove a label…",
    items: (query) => {
      const q = query.trim().toLowerCase();
      return [...known]
        .filter((l) => l.includes(q))
        .sort()
        .map((l) => ({ id: l, label: l, hint: conversation.labels.includes(l) ? "✓ remove" : "add" }));
    },
    extra: (query, found) => {
      const q = query.trim().toLowerCase();
      return q && !found.some((f) => f.id === q) ? { id: q, label: `Create label “${q}”`, hint: "add" } : null;
    },
    onPick: (item) => {
      if (conversation.labels.includes(item.id)) change(conversation, { remove_labels: [item.id] }, `Removed ${item.id}`);
      else change(conversation, { add_labels: [item.id] }, `Labelled ${item.id}`);
    },
  });
}

/** @param {Conversation} conversation */
export function priority(conversation) {
  openPicker({
    title: "Priority",
    items: () =>
      ["urgent", "high", "medium", "low", "none"].map((p) => ({ id: p, label: p === "none" ? "No priority" : p[0].toUpperCase() + p.slice(1), hint: conversation.priority === p ? "current" : "" })),
    onPick: (item) => change(conversation, { priority: item.id }, `Priority ${item.id}`),
  });
}

/**
 * @param {number} hours
 * @param {number} [minutes]
 * @param {number} [daysAhead]
 */
function at(hours, minutes = 0, daysAhead = 0) {
  const d = new Date();
  d.setDate(d.getDate() + daysAhead);
  d.setHours(hours, minutes, 0, 0);
  return d;
}

export function snoozeOptions(now = new Date()) {
  const nextMonday = (8 - now.getDay()) % 7 || 7;
  return [
    { id: "1h", label: "For 1 hour", until: new Date(now.getTime() + 3600e3) },
    { id: "4h", label: "For 4 hours", until: new Date(now.getTime() + 4 * 3600e3) },
    { id: "tomorrow", label: "Until tomorrow, 9:00", until: at(9, 0, 1) },
    { id: "week", label: "Until next Monday, 9:00", until: at(9, 0, nextMonday) },
  ];
}

/** @param {Conversation} conversation */
export function snooze(conversation) {
  openPicker({
    title: "Snooze until",
    placeholder: "Pick, or type a date like 2026-12-24 14:00",
    items: (query) => {
      const options = snoozeOptions().map((o) => ({ ...o, hint: o.until.toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" }) }));
      const typed = parseDate(query);
      return typed ? [{ id: "typed", label: `Until ${typed.toLocaleString()}`, until: typed }, ...options] : options;
    },
    onPick: (item) => {
      change(conversation, { status: "snoozed", snoozed_until: item.until.toISOString() }, `Snoozed until ${item.until.toLocaleString()}`);
    },
  });
}

/** @param {string} text */
export function parseDate(text) {
  const m = /^\s*(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2}):(\d{2}))?\s*$/.exec(text);
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] || 9), Number(m[5] || 0));
  return Number.isNaN(d.getTime()) || d <= new Date() ? null : d;
}

/** @param {Conversation} conversation */
export function toggleResolved(conversation) {
  if (conversation.status === "resolved") change(conversation, { status: "open" }, "Reopened");
  else change(conversation, { status: "resolved" }, "Resolved");
}

/** @param {Conversation} conversation */
export function runMacro(conversation) {
  openPicker({
    title: "Run a macro",
    empty: "No macros yet. Add some under Settings → Macros.",
    items: (query) =>
      state.macros
        .filter((m) => m.name.toLowerCase().includes(query.toLowerCase()))
        .map((m) => ({ id: m.id, label: m.name, hint: `${m.actions.length} steps` })),
    onPick: async (item) => {
      try {
        await post(`/macros/${item.id}/run`, { conversation_id: conversation.id }, { headers: { "Idempotency-Key": crypto.randomUUID() } });
        toast(`Ran “${item.label}”`);
      } catch (e) {
        toast(`The macro didn't run: ${/** @type {Error} */ (e).message}`, { error: true });
      }
    },
  });
}

/** @param {Conversation} conversation */
export async function mergeConversation(conversation) {
  /** @type {{ items: Conversation[] }} */
  const page = await get("/conversations", { contact_id: conversation.contact_id, status: ["open", "pending", "snoozed", "resolved"], limit: 50 });
  openPicker({
    title: "Merge another conversation of this contact into this one",
    empty: "This contact has no other conversation.",
    items: (query) =>
      page.items
        .filter((c) => c.id !== conversation.id && !c.merged_into_id)
        .filter((c) => `#${c.id} ${c.subject || ""}`.toLowerCase().includes(query.toLowerCase()))
        .map((c) => ({ id: c.id, label: `#${c.id} ${c.subject || (c.last_message && c.last_message.text) || ""}`.trim(), hint: c.status })),
    onPick: async (item) => {
      try {
        await post(`/conversations/${conversation.id}/merge`, { source_id: item.id });
        toast(`Merged #${item.id} into this conversation`);
      } catch (e) {
        toast(`Couldn't merge: ${/** @type {Error} */ (e).message}`, { error: true });
      }
    },
  });
}

/** @param {Conversation} conversation */
export function actionButtons(conversation) {
  /**
   * @param {string} label
   * @param {string} key
   * @param {(conversation: Conversation) => void} fn
   * @param {string} iconName
   */
  const button = (label, key, fn, iconName) =>
    h(
      "button",
      { type: "button", class: "ghost action", title: `${label} (${key})`, "aria-keyshortcuts": key, on: { click: () => fn(conversation) } },
      iconName ? icon(iconName) : null,
      h("span", { class: "action-label", text: label }),
    );
  return h(
    "div",
    { class: "pane-actions", role: "toolbar", "aria-label": "Conversation actions" },
    button("Assign", "a", assign, "user"),
    button("Label", "l", label, "tag"),
    button("Priority", "p", priority, "flag"),
    button("Snooze", "s", snooze, "clock"),
    state.macros.length ? button("Macro", "m", runMacro, "bolt") : null,
    button("Merge", "Shift+M", mergeConversation, "merge"),
    h(
      "button",
      { type: "button", class: "primary action", title: conversation.status === "resolved" ? "Reopen (e)" : "Resolve (e)", "aria-keyshortcuts": "e", on: { click: () => toggleResolved(conversation) } },
      icon("check"),
      conversation.status === "resolved" ? "Reopen" : "Resolve",
    ),
  );
}
