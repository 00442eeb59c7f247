// @ts-check
// "How this conversation got here", in the side panel: who it was
// assigned to and by which policy ("Assigned to Ann by round robin in
// inbox Website") and what routing rules changed ("Routed by rule
// 'Refunds': team Billing, priority high"), newest first.

import { get } from "./api.js";
import { h, replace } from "./dom.js";
import { fullTime, shortTime } from "./format.js";
import { agentName, teamName } from "./state.js";

// Conversation id -> its lines as last fetched, so a redraw (every
// change to the conversation redraws the panel) shows them at once while
// they are fetched again.
const cache = new Map();

/**
 * @typedef {{ at: string, text: string, skipped: string[] }} Line
 */

/** @param {any} conversation */
export function conversationRecord(conversation) {
  const list = h("ul", { class: "conversation-record" });
  const box = h(
    "section",
    { class: "contact-section record-section", "aria-label": "Assignment and routing" },
    h("h2", { text: "Assignment & routing" }),
    list,
  );
  /** @param {Line[]} lines */
  const draw = (lines) => {
    box.hidden = !lines.length;
    replace(list, lines.map(lineView));
  };
  draw(cache.get(conversation.id) || []);
  Promise.all([
    get(`/conversations/${conversation.id}/assignments`),
    get(`/conversations/${conversation.id}/routing`),
  ]).then(
    ([assignments, routing]) => {
      // Routing runs before assignment in the same transaction, so the two
      // can share a time: assignments go first and the sort is stable,
      // which keeps the later step on top.
      const lines = [
        ...assignments.items.map(assignmentLine),
        ...routing.items.map(routingLine),
      ].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
      cache.set(conversation.id, lines);
      draw(lines);
    },
    () => {},
  );
  return box;
}

/**
 * @param {any} a
 * @returns {Line}
 */
function assignmentLine(a) {
  return { at: a.at, text: `Assigned to ${a.agent_name} by ${a.reason}`, skipped: [] };
}

/**
 * @param {any} d
 * @returns {Line}
 */
function routingLine(d) {
  const changes = Object.entries(d.changes || {}).map(([field, value]) => change(field, value));
  const did = changes.length ? `: ${changes.join(", ")}` : "";
  return { at: d.created_at, text: `Routed by rule '${d.rule_name}'${did}`, skipped: d.skipped || [] };
}

/**
 * @param {string} field
 * @param {unknown} value
 */
function change(field, value) {
  if (field === "team") return `team ${typeof value === "number" ? teamName(value) : "none"}`;
  if (field === "assignee") return `assigned to ${typeof value === "number" ? agentName(value) : "nobody"}`;
  if (Array.isArray(value)) return `${field} ${value.join(", ")}`;
  return `${field} ${String(value)}`;
}

/** @param {Line} line */
function lineView(line) {
  return h(
    "li",
    null,
    h("span", { class: "record-text", text: line.text }),
    h("time", { datetime: line.at, title: fullTime(line.at), text: shortTime(line.at) }),
    line.skipped.length ? h("span", { class: "record-skipped", text: `Not done: ${line.skipped.join("; ")}` }) : null,
  );
}
