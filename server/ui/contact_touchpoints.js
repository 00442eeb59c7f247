// @ts-check
// The contact column's "Touchpoints" section: what is coming for this
// customer (touchpoint, step, when, in the customer's own time when their
// zone is known) and what happened before, with the reason ("skipped:
// frequency cap", "cancelled: order placed"). It is refetched when a
// `decision.*` or `episode.*` event about this contact arrives.

import { get } from "./api.js";
import { h, replace } from "./dom.js";
import { fullTime } from "./format.js";
import { outcomeWords } from "./touch_words.js";

// Contact id -> the last answer, so a redraw of the column shows it at
// once while it is fetched again.
/** @type {Map<number, any>} */
const cache = new Map();
/** @type {Map<HTMLElement, { contactId: number, load(): void }>} */
const mounted = new Map();

// A live decision or episode event about `contactId`: every section
// showing that contact loads again.
/** @param {number} contactId */
export function touchpointsChanged(contactId) {
  for (const [box, entry] of [...mounted]) {
    if (!box.isConnected) mounted.delete(box);
    else if (entry.contactId === contactId) entry.load();
  }
}

/** @param {any} contact */
function zoneOf(contact) {
  const zone = contact.timezone || (contact.attributes && contact.attributes.timezone);
  if (typeof zone !== "string" || !zone) return null;
  try {
    new Intl.DateTimeFormat("en", { timeZone: zone });
    return zone;
  } catch {
    return null;
  }
}

// "Tue 8 Dec, 10:00 their time" in the contact's zone; the agent's own
// time on hover.
/**
 * @param {string | null | undefined} iso
 * @param {string | null} zone
 */
function when(iso, zone) {
  if (!iso) return h("span");
  const at = new Date(iso);
  const text = zone
    ? `${at.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: zone })} their time`
    : fullTime(iso);
  return h("time", { datetime: iso, title: zone ? `${fullTime(iso)} your time · ${zone}` : null, text });
}

/** @param {any} contact */
export function contactTouchpoints(contact) {
  const box = h("section", { class: "contact-section contact-touchpoints", "aria-label": "Touchpoints" });
  const zone = zoneOf(contact);
  /** @param {any} d */
  const item = (d, upcoming = false) =>
    h("li", { class: `touch-decision state-${d.state}`, dataset: { decisionId: d.id } },
      h("div", { class: "touch-decision-top" },
        h("a", { href: `#/touchpoints/${Number(d.touchpoint_id)}`, class: "touch-decision-name", text: d.touchpoint_name }),
        h("span", { class: "muted", text: ` · step ${d.position + 1}` })),
      h("div", { class: "touch-decision-line" },
        h("span", { class: `touch-outcome outcome-${d.state}`, text: upcoming && d.state === "scheduled" ? `by ${d.channel}` : outcomeWords(d) }),
        " · ",
        when(upcoming ? d.run_at || d.due_at : d.settled_at || d.run_at || d.due_at, zone)));
  /** @param {any} answer */
  const draw = (answer) => {
    const upcoming = (answer && answer.upcoming) || [];
    const past = (answer && answer.past) || [];
    replace(box,
      h("h2", { text: "Touchpoints" }),
      answer === undefined ? h("p", { class: "muted", text: "Loading…" }) : null,
      answer && !upcoming.length && !past.length ? h("p", { class: "muted", text: "None yet" }) : null,
      upcoming.length ? [h("h3", { class: "touch-sub", text: "Upcoming" }), h("ul", { class: "touch-decisions" }, upcoming.map((/** @type {any} */ d) => item(d, true)))] : null,
      past.length ? [h("h3", { class: "touch-sub", text: "Past" }), h("ul", { class: "touch-decisions" }, past.slice(0, 20).map((/** @type {any} */ d) => item(d)))] : null,
    );
  };
  let generation = 0;
  const load = () => {
    const mine = ++generation;
    get(`/contacts/${Number(contact.id)}/touchpoints`).then(
      (answer) => {
        if (mine !== generation) return;
        cache.set(contact.id, answer);
        draw(answer);
      },
      () => {},
    );
  };
  draw(cache.get(contact.id));
  mounted.set(box, { contactId: contact.id, load });
  load();
  return box;
}
