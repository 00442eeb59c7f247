// @ts-check
// A segment's filter as simple rows: one condition each (an attribute, a
// tracked event with count and recency, last seen, created, an identity,
// consent, a label), all or any of them. The rows edit the filter's JSON
// in place (server/domain/segments.py reads it); a nested group is kept
// as it is and shown as such.

import { h, replace } from "./dom.js";

/** @type {[string, string][]} */
export const CONDITION_KINDS = [
  ["attribute", "Attribute"],
  ["event", "Tracked event"],
  ["last_seen", "Last seen"],
  ["created", "Created"],
  ["identity", "Has an identity"],
  ["consent", "Consent"],
  ["label", "Conversation label"],
];

/** @type {[string, string][]} */
const OPS = [
  ["eq", "is"], ["ne", "is not"], ["in", "is one of"], ["contains", "contains"],
  ["exists", "is set"], ["missing", "is not set"],
  ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"],
];

/** @param {any} condition */
export function conditionKind(condition) {
  for (const [kind] of CONDITION_KINDS) if (condition && kind in condition) return kind;
  return "match";
}

/** @param {string} kind */
function blank(kind) {
  switch (kind) {
    case "attribute": return { attribute: "", op: "eq", value: "" };
    case "event": return { event: "", within: "7d", count: { min: 1 } };
    case "last_seen": return { last_seen: { within: "30d" } };
    case "created": return { created: { within: "30d" } };
    case "identity": return { identity: "email", exists: true };
    case "consent": return { consent: { channel: "email", topic: "marketing", state: "granted" } };
    default: return { label: "" };
  }
}

// A typed value back as the filter wants it: numbers for comparisons, a
// list for "is one of".
/**
 * @param {string} op
 * @param {string} raw
 */
function attributeValue(op, raw) {
  if (op === "in") return raw.split(",").map((v) => v.trim()).filter(Boolean);
  if (["gt", "gte", "lt", "lte"].includes(op)) return raw.trim() === "" ? "" : Number(raw);
  return raw;
}

/**
 * @param {[string, string][]} options
 * @param {unknown} value
 * @param {string} label
 */
function select(options, value, label) {
  const el = h("select", { "aria-label": label }, options.map(([v, t]) => h("option", { value: v, text: t })));
  el.value = String(value);
  return el;
}

/**
 * @param {string} value
 * @param {string} label
 * @param {(value: string) => void} set
 * @param {Record<string, unknown>} [more]
 */
function text(value, label, set, more = {}) {
  const el = h("input", { type: "text", value, "aria-label": label, autocomplete: "off", ...more });
  el.addEventListener("input", () => set(el.value));
  return el;
}

/**
 * @param {{ filter: any, onChange(): void }} options the filter
 *   (`{"match", "conditions"}`), edited in place
 */
export function filterRows(options) {
  const filter = options.filter;
  if (!Array.isArray(filter.conditions)) filter.conditions = [];
  const list = h("ol", { class: "segment-rows" });
  const match = select([["all", "all of these"], ["any", "any of these"]], filter.match || "all", "Match");
  match.addEventListener("change", () => {
    filter.match = match.value;
    options.onChange();
  });
  const changed = () => options.onChange();

  const draw = () => {
    replace(list, filter.conditions.map((/** @type {any} */ c, /** @type {number} */ i) => row(c, i)));
  };

  /**
   * @param {any} c
   * @param {number} i
   */
  const row = (c, i) => {
    const n = i + 1;
    const kind = conditionKind(c);
    const kindSelect = select(kind === "match" ? [["match", "A group (kept as is)"], ...CONDITION_KINDS] : CONDITION_KINDS, kind, `Condition ${n}`);
    kindSelect.addEventListener("change", () => {
      filter.conditions[i] = blank(kindSelect.value);
      draw();
      changed();
    });
    const remove = h("button", { type: "button", class: "ghost small", text: "Remove", "aria-label": `Remove condition ${n}` });
    remove.addEventListener("click", () => {
      filter.conditions.splice(i, 1);
      draw();
      changed();
    });
    return h("li", { class: "segment-row", dataset: { field: `filter.conditions[${i}]` } },
      h("div", { class: "touch-row" }, kindSelect, fieldsOf(c, kind, n, () => { draw(); changed(); }), remove),
      h("p", { class: "field-error", role: "alert" }));
  };

  /**
   * @param {any} c
   * @param {string} kind
   * @param {number} n
   * @param {() => void} redraw
   */
  const fieldsOf = (c, kind, n, redraw) => {
    switch (kind) {
      case "attribute": {
        const op = select(OPS, c.op || "eq", `Condition ${n} comparison`);
        op.addEventListener("change", () => {
          c.op = op.value;
          if (c.op === "exists" || c.op === "missing") delete c.value;
          else c.value = attributeValue(c.op, Array.isArray(c.value) ? c.value.join(", ") : String(c.value ?? ""));
          redraw();
        });
        const noValue = c.op === "exists" || c.op === "missing";
        return [
          text(c.attribute || "", `Condition ${n} attribute`, (v) => { c.attribute = v.trim(); changed(); }, { placeholder: "plan" }),
          op,
          noValue ? null : text(Array.isArray(c.value) ? c.value.join(", ") : String(c.value ?? ""), `Condition ${n} value`, (v) => { c.value = attributeValue(c.op, v); changed(); }),
        ];
      }
      case "event": {
        const count = c.count || {};
        const none = count.max === 0;
        const how = select([["some", "at least"], ["none", "none"]], none ? "none" : "some", `Condition ${n} how many`);
        how.addEventListener("change", () => {
          c.count = how.value === "none" ? { max: 0 } : { min: 1 };
          redraw();
        });
        return [
          text(c.event || "", `Condition ${n} event`, (v) => { c.event = v.trim(); changed(); }, { placeholder: "cart_updated" }),
          how,
          none ? null : h("input", { type: "number", min: 1, value: count.min ?? 1, "aria-label": `Condition ${n} at least`, class: "segment-count", on: { input: (/** @type {Event} */ e) => { c.count = { ...c.count, min: Number(/** @type {HTMLInputElement} */ (e.target).value) || 1 }; changed(); } } }),
          h("span", { class: "muted", text: "in the last" }),
          text(c.within === undefined ? "" : String(c.within), `Condition ${n} within`, (v) => { if (v.trim()) c.within = v.trim(); else delete c.within; changed(); }, { placeholder: "ever", class: "segment-duration" }),
        ];
      }
      case "last_seen":
      case "created": {
        const spec = c[kind] || {};
        const side = "before" in spec ? "before" : "within";
        const which = select([["within", "within the last"], ["before", "more than … ago"]], side, `Condition ${n} when`);
        which.addEventListener("change", () => {
          c[kind] = { [which.value]: spec[side] || "30d" };
          changed();
        });
        return [which, text(String(spec[side] ?? "30d"), `Condition ${n} duration`, (v) => { c[kind] = { [which.value]: v.trim() }; changed(); }, { class: "segment-duration" })];
      }
      case "identity": {
        const kindOf = select(["email", "phone", "visitor", "slack", "social", "external"].map((k) => [k, k]), c.identity || "email", `Condition ${n} identity`);
        kindOf.addEventListener("change", () => { c.identity = kindOf.value; changed(); });
        const has = select([["true", "has one"], ["false", "has none"]], String(c.exists !== false), `Condition ${n} has`);
        has.addEventListener("change", () => { c.exists = has.value === "true"; changed(); });
        return [kindOf, has];
      }
      case "consent": {
        const spec = c.consent || {};
        const stateSelect = select([["granted", "granted"], ["withdrawn", "withdrawn"], ["none", "never asked"]], spec.state || "granted", `Condition ${n} consent`);
        stateSelect.addEventListener("change", () => { spec.state = stateSelect.value; c.consent = spec; changed(); });
        return [
          text(spec.channel || "email", `Condition ${n} channel`, (v) => { spec.channel = v.trim(); c.consent = spec; changed(); }, { class: "segment-short" }),
          text(spec.topic || "marketing", `Condition ${n} topic`, (v) => { spec.topic = v.trim(); c.consent = spec; changed(); }, { class: "segment-short" }),
          stateSelect,
        ];
      }
      case "label":
        return [text(c.label || "", `Condition ${n} label`, (v) => { c.label = v.trim(); changed(); }, { placeholder: "vip" })];
      default:
        return [h("code", { class: "segment-group", text: JSON.stringify(c) })];
    }
  };

  const add = h("button", { type: "button", class: "ghost small", text: "Add a condition" });
  add.addEventListener("click", () => {
    filter.conditions.push(blank("attribute"));
    draw();
    changed();
    /** @type {HTMLElement | null} */ (list.lastElementChild && list.lastElementChild.querySelector("select"))?.focus();
  });
  draw();
  return h("div", { class: "field-group", dataset: { field: "filter" } },
    h("p", { class: "segment-match" }, "Contacts matching ", match),
    h("p", { class: "field-error", role: "alert" }),
    list,
    h("div", null, add));
}
