// @ts-check
// Touchpoints in words: triggers, delays, durations and decision outcomes
// as a person says them ("When cart_updated is tracked", "48 h without a
// customer reply", "skipped: frequency cap"). Pure: no DOM, no state.

/** @type {Record<string, string>} */
const EVENT_WORDS = {
  "contact.created": "When a contact is created",
  "conversation.created": "When a conversation starts",
  "conversation.resolved": "When a conversation is resolved",
  "message.received": "When a customer's message arrives",
};

export const TRIGGER_EVENTS = Object.keys(EVENT_WORDS);

/** @type {[string, string][]} */
export const TRIGGER_KINDS = [
  ["contact_event", "A tracked event (signed_up, cart_updated…)"],
  ["event", "A Threadline event"],
  ["no_customer_reply", "No customer reply for a time"],
  ["no_agent_reply", "No agent reply for a time"],
  ["segment_entry", "Entering a segment"],
  ["date", "A date attribute (birthday…)"],
  ["broadcast", "A one-off broadcast to a segment"],
];

/** @type {[string, string][]} */
export const TOUCH_KINDS = [
  ["marketing", "Marketing (needs consent, capped)"],
  ["service", "Service (about their conversation or account)"],
  ["transactional", "Transactional (asked for, never capped)"],
];

/** @type {Record<string, string>} */
export const STATUS_WORDS = { draft: "Draft", live: "Live", paused: "Paused", archived: "Archived" };

const UNITS = /** @type {const} */ ([
  [7 * 86400, "w", "wk"],
  [86400, "d", "d"],
  [3600, "h", "h"],
  [60, "m", "min"],
  [1, "s", "s"],
]);

// A duration as the API sends it back: whole seconds, or still the text an
// author wrote ("4h").
/** @param {unknown} value */
export function durationSeconds(value) {
  if (typeof value === "number") return value;
  const found = /^\s*(\d+)\s*([smhdw]?)\s*$/.exec(String(value ?? ""));
  if (!found) return null;
  const unit = UNITS.find(([, short]) => short === (found[2] || "s"));
  return Number(found[1]) * (unit ? unit[0] : 1);
}

// The form an author types back in: "4h", "2d", "90m", "0".
/** @param {unknown} value */
export function durationText(value) {
  const seconds = durationSeconds(value);
  if (seconds === null) return String(value ?? "");
  if (seconds === 0) return "0";
  for (const [size, short] of UNITS.slice(1)) if (seconds % size === 0) return `${seconds / size}${short}`;
  return `${seconds}s`;
}

// For reading: "48 h", "3 d", "10 min" (hours up to two days, as people
// say "48 hours").
/** @param {unknown} value */
export function durationWords(value) {
  const seconds = durationSeconds(value);
  if (seconds === null) return String(value ?? "");
  for (const [size, , long] of UNITS.slice(1)) {
    if (size === 86400 && seconds <= 2 * 86400) continue;
    if (seconds >= size && seconds % size === 0) return `${seconds / size} ${long}`;
  }
  return `${seconds} s`;
}

/**
 * @param {any} trigger the touchpoint's trigger as the API has it
 * @param {(id: number) => string} [segmentName]
 */
export function triggerWords(trigger, segmentName = (id) => `segment #${id}`) {
  if (!trigger) return "";
  const where = Object.entries(trigger.where || {}).map(([k, v]) => `${k} = ${typeof v === "string" ? v : JSON.stringify(v)}`);
  const withWhere = where.length ? ` with ${where.join(", ")}` : "";
  switch (trigger.kind) {
    case "contact_event":
      return `When ${trigger.name} is tracked${withWhere}`;
    case "event":
      return `${EVENT_WORDS[trigger.name] || `When ${trigger.name} happens`}${withWhere}`;
    case "no_customer_reply":
      return `${durationWords(trigger.wait)} without a customer reply`;
    case "no_agent_reply":
      return `${durationWords(trigger.wait)} without an agent reply`;
    case "segment_entry":
      return `On entering ${segmentName(trigger.segment_id)}`;
    case "date":
      return `On each contact's ${trigger.attribute}`;
    case "broadcast":
      return `Once to ${segmentName(trigger.segment_id)}, ${String(trigger.at_local || "").replace("T", " ")} in each contact's time`;
    default:
      return String(trigger.kind || "");
  }
}

/** @param {number} days */
function dayWords(days) {
  if (days === 0) return "the same day";
  if (days === 1) return "the next day";
  return `${days} days later`;
}

// A step's delay: {"after": "4h"}, {"at_local": "10:00", "day_offset": 1}
// or {"relative_to": "birthday", "offset_days": -1, "at_local": "09:00"}.
/** @param {any} delay */
export function delayWords(delay) {
  if (!delay) return "Right away";
  if (delay.relative_to) {
    const days = Number(delay.offset_days || 0);
    const when = days === 0 ? `on the ${delay.relative_to}` : `${Math.abs(days)} ${Math.abs(days) === 1 ? "day" : "days"} ${days < 0 ? "before" : "after"} the ${delay.relative_to}`;
    return `${delay.at_local ? `At ${delay.at_local} ` : ""}${when}`;
  }
  if (delay.at_local) return `At ${delay.at_local} local, ${dayWords(Number(delay.day_offset || 0))}`;
  const seconds = durationSeconds(delay.after ?? 0);
  return seconds ? `After ${durationWords(delay.after)}` : "Right away";
}

// "skipped: frequency cap", "cancelled: order placed", "sent".
/** @param {{ state: string, reason?: string | null }} decision */
export function outcomeWords(decision) {
  return decision.reason ? `${decision.state}: ${decision.reason}` : decision.state;
}
