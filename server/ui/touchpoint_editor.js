// @ts-check
// A touchpoint's editor (#/touchpoints/<id>): what it is, what starts it,
// its steps and variants, what ends it, and the guards it is sent under;
// Save sends the whole spec (PUT) and a 422 is shown at the field the
// server named (`steps[0].variants[1].body: line 3: …`). Beside it, the
// selected variant rendered live for a chosen contact. Agents who are not
// admins see it read-only.

import { ApiError, get, put } from "./api.js";
import { h, replace } from "./dom.js";
import { setTitle } from "./notify.js";
import { field, showFieldError } from "./settings_forms.js";
import { state } from "./state.js";
import { toast } from "./toast.js";
import { statusControl } from "./touchpoints_status.js";
import { previewPane } from "./touch_preview.js";
import { stepsEditor } from "./touch_steps.js";
import { TOUCH_KINDS, TRIGGER_EVENTS, TRIGGER_KINDS, durationText, triggerWords } from "./touch_words.js";

/** @type {[string, string][]} */
const EXIT_KINDS = [
  ["contact_event", "A tracked event (e.g. order_placed)"],
  ["customer_reply", "The customer replies"],
  ["agent_reply", "An agent replies"],
  ["conversation_resolved", "The conversation is resolved"],
];

/** @type {[string, string][]} */
const REENTRY = [
  ["per_episode", "Once per situation (each cart, each message)"],
  ["once", "Once per contact, ever"],
  ["cooldown", "Once per situation, and not again within a cooldown"],
];

// "cart_id={cart_id}, source=shop" and back.
/** @param {Record<string, unknown> | null | undefined} match */
function matchText(match) {
  return Object.entries(match || {}).map(([k, v]) => `${k}=${v}`).join(", ");
}

/** @param {string} text */
function parseMatch(text) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const part of text.split(",")) {
    const at = part.indexOf("=");
    if (at > 0) out[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return out;
}

/**
 * @param {HTMLElement} page
 * @param {number} id
 */
export async function showTouchpointEditor(page, id) {
  replace(page, h("p", { class: "muted", role: "status", text: "Loading…" }));
  /** @type {any} */
  let detail;
  /** @type {any[]} */
  let segments = [];
  try {
    const [d, segs] = await Promise.all([get(`/touchpoints/${id}`), get("/segments").catch(() => ({ segments: [] }))]);
    detail = d;
    segments = segs.segments || segs.items || [];
  } catch (error) {
    const missing = error instanceof ApiError && error.status === 404;
    replace(page, h("header", { class: "settings-header" }, h("h1", { text: missing ? "Touchpoint not found" : "Couldn't load the touchpoint" })),
      h("p", null, h("a", { href: "#/touchpoints", text: "Back to the touchpoints" })));
    return;
  }
  if (!page.isConnected) return;
  const admin = state.me && state.me.role === "admin";
  setTitle(detail.name);
  /** @param {number} segmentId */
  const segmentName = (segmentId) => {
    const found = segments.find((s) => s.id === segmentId);
    return found ? `the segment “${found.name}”` : `segment #${segmentId}`;
  };
  const spec = specOf(detail);

  const heading = h("h1", { text: detail.name });
  const meta = h("span", { class: "muted touch-meta" });
  const statusSlot = h("span", { class: "touch-editor-status" });
  const drawHead = () => {
    heading.textContent = detail.name;
    meta.textContent = `version ${detail.version}${detail.seed ? ` · from the “${detail.seed}” template` : ""}`;
    replace(statusSlot, statusControl(detail, admin, async () => {
      detail = await get(`/touchpoints/${id}`).catch(() => detail);
      drawHead();
    }));
  };
  drawHead();

  /** @type {{ step: number, variant: number }} */
  const selected = { step: 0, variant: 0 };
  const preview = previewPane({
    source: () => {
      const step = spec.steps[selected.step];
      const variant = step && step.variants[selected.variant];
      return variant ? { subject: variant.subject, body: variant.body, html: variant.html } : null;
    },
    describe: () => {
      const step = spec.steps[selected.step];
      const variant = step && step.variants[selected.variant];
      return variant ? `Step ${selected.step + 1}, variant ${variant.id}` : "";
    },
  });
  const steps = stepsEditor({
    steps: spec.steps,
    selected,
    onSelect: (next) => {
      selected.step = next.step;
      selected.variant = next.variant;
      preview.refresh(true);
    },
    onChange: () => preview.refresh(),
  });

  const form = h("form", { class: "settings-form touch-form", "aria-label": "Edit touchpoint", novalidate: true });
  const save = h("button", { type: "submit", class: "primary", text: "Save" });
  // Where the save bar says how the last save went (the error itself is
  // at its field, which may be scrolled away).
  const saveStatus = h("p", { class: "touch-save-status", role: "status" });
  const body = h("fieldset", { class: "touch-form-body", disabled: !admin },
    basics(spec),
    h("section", { class: "touch-section", "aria-labelledby": "touch-trigger-title" }, h("h2", { id: "touch-trigger-title", text: "Trigger" }), triggerEditor(spec, segments)),
    h("section", { class: "touch-section", "aria-labelledby": "touch-steps-title" }, h("h2", { id: "touch-steps-title", text: "Steps" }),
      h("p", { class: "muted", text: "Templates are Liquid: {{ contact.name }}, {{ events.cart.items }}, {{ promo.code }}, {{ links.unsubscribe }}…" }),
      steps.element),
    h("section", { class: "touch-section", "aria-labelledby": "touch-end-title" }, h("h2", { id: "touch-end-title", text: "When it ends" }), endingEditor(spec)),
    h("section", { class: "touch-section", "aria-labelledby": "touch-guards-title" }, h("h2", { id: "touch-guards-title", text: "Delivery" }), guardsEditor(spec, segments)),
  );
  replace(form, body, h("div", { class: "touch-save-bar" }, saveStatus, h("p", { class: "form-error", role: "alert" }), admin ? [h("span", { class: "composer-hint", text: "Ctrl+S to save" }), save] : h("p", { class: "muted", text: "Only admins change touchpoints." })));
  // Ctrl+S (⌘S) saves from any field, as editors do.
  form.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!admin) return;
    save.disabled = true;
    try {
      detail = await put(`/touchpoints/${id}`, payload(spec));
      showFieldError(form, { field: null, message: "" });
      saveStatus.textContent = `Saved: version ${detail.version}`;
      saveStatus.classList.remove("failed");
      drawHead();
      setTitle(detail.name);
      toast(`Saved ${detail.name} (version ${detail.version})`);
    } catch (error) {
      showFieldError(form, error);
      const at = /** @type {any} */ (error).field;
      saveStatus.textContent = at ? `Not saved: see ${where(at, spec)}` : "Not saved";
      saveStatus.classList.add("failed");
    } finally {
      save.disabled = false;
    }
  });

  // The trigger in words follows the trigger fields.
  const words = h("p", { class: "muted touch-trigger-words", text: triggerWords(spec.trigger, segmentName) });
  const reword = () => { words.textContent = triggerWords(spec.trigger, segmentName); };
  form.addEventListener("input", reword);
  form.addEventListener("change", reword);
  replace(
    page,
    h("p", { class: "touch-back" }, h("a", { href: "#/touchpoints", text: "← Touchpoints" })),
    h("header", { class: "settings-header" }, heading, meta, statusSlot),
    words,
    h("div", { class: "touch-editor-columns" }, form, preview.element),
  );
  preview.refresh(true);
}

// A field the API named, as the author sees it: "step 1, variant a".
/**
 * @param {string} field
 * @param {Spec} spec
 */
function where(field, spec) {
  const step = /^steps\[(\d+)\](?:\.variants\[(\d+)\])?/.exec(field);
  if (!step) return field.split(/[.[]/)[0].replace(/_/g, " ");
  const n = Number(step[1]);
  if (step[2] === undefined) return `step ${n + 1}`;
  const variant = spec.steps[n] && spec.steps[n].variants[Number(step[2])];
  return `step ${n + 1}, variant ${variant ? variant.id : Number(step[2]) + 1}`;
}

// The editable spec, from a touchpoint's detail.
/** @param {any} d */
function specOf(d) {
  return {
    name: d.name || "",
    description: d.description || "",
    kind: d.kind || "marketing",
    trigger: { ...(d.trigger || { kind: "contact_event", name: "" }) },
    steps: (d.steps || []).map((/** @type {any} */ s) => ({
      delay: s.delay || { after: 0 },
      channel: s.channel || "email",
      business_hours: Boolean(s.business_hours),
      variants: (s.variants || []).map((/** @type {any} */ v) => ({ ...v })),
    })),
    episode_key: d.episode_key || "",
    exit_rules: (d.exit_rules || []).map((/** @type {any} */ r) => ({ ...r })),
    goal: d.goal ? { ...d.goal } : null,
    reentry: d.reentry || "per_episode",
    cooldown: d.cooldown ?? null,
    priority: d.priority ?? 50,
    holdout_percent: d.holdout_percent ?? 0,
    max_lateness: d.max_lateness ?? null,
    quiet_hours: d.quiet_hours ? { ...d.quiet_hours } : null,
    inbox_id: d.inbox_id ?? null,
    entry_segment_id: d.entry_segment_id ?? null,
  };
}

/** @typedef {ReturnType<typeof specOf>} Spec */

// What PUT /touchpoints/{id} takes: the spec as parse_touchpoint reads it.
/** @param {Spec} spec */
function payload(spec) {
  return {
    ...spec,
    name: spec.name.trim(),
    steps: spec.steps.map((/** @type {any} */ s) => ({
      delay: s.delay,
      channel: s.channel,
      business_hours: s.business_hours,
      variants: s.variants.map((/** @type {any} */ v) => ({ id: v.id, weight: v.weight, subject: v.subject || "", body: v.body, html: Boolean(v.html), promo_pool_id: v.promo_pool_id ?? null })),
    })),
    cooldown: spec.reentry === "cooldown" ? spec.cooldown : null,
  };
}

/**
 * An input bound to one key of an object.
 * @param {Record<string, any>} target
 * @param {string} key
 * @param {HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement} input
 * @param {(raw: string) => unknown} [parse]
 */
function bind(target, key, input, parse = (v) => v) {
  input.addEventListener(input instanceof HTMLSelectElement ? "change" : "input", () => {
    target[key] = parse(input.value);
  });
  return input;
}

/**
 * @param {[string, string][]} options
 * @param {unknown} value
 */
function select(options, value) {
  const el = h("select", null, options.map(([v, t]) => h("option", { value: v, text: t })));
  el.value = String(value ?? options[0][0]);
  return el;
}

const orNull = (/** @type {string} */ v) => (v.trim() === "" ? null : v.trim());
const idOrNull = (/** @type {string} */ v) => (v === "" ? null : Number(v));

/** @param {Spec} spec */
function basics(spec) {
  return h("section", { class: "touch-section", "aria-labelledby": "touch-basics-title" },
    h("h2", { id: "touch-basics-title", text: "Touchpoint" }),
    field("Name", bind(spec, "name", h("input", { type: "text", value: spec.name, autocomplete: "off" })), "name"),
    field("Description", bind(spec, "description", h("textarea", { rows: 2, value: spec.description, class: "plain" })), "description"),
    field("Kind", bind(spec, "kind", select(TOUCH_KINDS, spec.kind)), "kind"),
  );
}

/**
 * @param {Spec} spec
 * @param {any[]} segments
 */
function triggerEditor(spec, segments) {
  const box = h("div", { class: "touch-trigger" });
  const segmentOptions = /** @type {[string, string][]} */ (segments.map((s) => [String(s.id), s.name]));
  const draw = () => {
    const trigger = spec.trigger;
    const kind = bind(trigger, "kind", select(TRIGGER_KINDS, trigger.kind));
    kind.addEventListener("change", () => {
      spec.trigger = { kind: kind.value };
      draw();
    });
    const fields = [field("Starts on", kind, "trigger.kind")];
    switch (trigger.kind) {
      case "contact_event":
        fields.push(field("Tracked event name", bind(trigger, "name", h("input", { type: "text", value: trigger.name || "", placeholder: "cart_updated", autocomplete: "off" }), (v) => v.trim()), "trigger.name"));
        break;
      case "event":
        if (!trigger.name) trigger.name = TRIGGER_EVENTS[0];
        fields.push(field("Event", bind(trigger, "name", select(TRIGGER_EVENTS.map((e) => [e, e]), trigger.name)), "trigger.name"));
        break;
      case "no_customer_reply":
      case "no_agent_reply":
        if (trigger.wait === undefined) trigger.wait = "24h";
        fields.push(field("Wait (e.g. 10m, 24h, 2d)", bind(trigger, "wait", h("input", { type: "text", value: durationText(trigger.wait), autocomplete: "off" }), (v) => v.trim()), "trigger.wait"));
        break;
      case "segment_entry":
      case "broadcast":
        if (trigger.segment_id === undefined && segmentOptions.length) trigger.segment_id = Number(segmentOptions[0][0]);
        fields.push(field("Segment", bind(trigger, "segment_id", select(segmentOptions.length ? segmentOptions : [["", "No segments yet"]], trigger.segment_id), idOrNull), "trigger.segment_id"));
        if (trigger.kind === "broadcast") {
          fields.push(field("At (each contact's local time)", bind(trigger, "at_local", h("input", { type: "datetime-local", value: trigger.at_local || "" })), "trigger.at_local"));
        }
        break;
      case "date":
        fields.push(field("Date attribute", bind(trigger, "attribute", h("input", { type: "text", value: trigger.attribute || "", placeholder: "birthday", autocomplete: "off" }), (v) => v.trim()), "trigger.attribute"));
        break;
      default:
        break;
    }
    replace(box, h("div", { class: "touch-row" }, fields), h("div", { class: "field-group", dataset: { field: "trigger" } }, h("p", { class: "field-error", role: "alert" })));
  };
  draw();
  return h("div", null, box,
    field("Episode key (one episode per contact and key)", bind(spec, "episode_key", h("input", { type: "text", value: spec.episode_key, placeholder: "cart:{cart_id}", autocomplete: "off" })), "episode_key"));
}

/** @param {Spec} spec */
function endingEditor(spec) {
  const rules = h("ol", { class: "touch-exits" });
  const drawRules = () => {
    replace(rules, spec.exit_rules.map((/** @type {any} */ rule, /** @type {number} */ i) => {
      const path = `exit_rules[${i}]`;
      const kind = select(EXIT_KINDS, rule.kind);
      kind.setAttribute("aria-label", `Exit rule ${i + 1}`);
      kind.addEventListener("change", () => {
        spec.exit_rules[i] = { kind: kind.value };
        drawRules();
      });
      const name = h("input", { type: "text", value: rule.name || "", placeholder: "order_placed", "aria-label": `Exit rule ${i + 1} event`, autocomplete: "off" });
      name.addEventListener("input", () => { rule.name = name.value.trim(); });
      const match = h("input", { type: "text", value: matchText(rule.match), placeholder: "cart_id={cart_id}", "aria-label": `Exit rule ${i + 1} match`, autocomplete: "off" });
      match.addEventListener("input", () => { rule.match = parseMatch(match.value); });
      const remove = h("button", { type: "button", class: "ghost small", text: "Remove", "aria-label": `Remove exit rule ${i + 1}`, on: { click: () => { spec.exit_rules.splice(i, 1); drawRules(); } } });
      return h("li", { class: "touch-exit", dataset: { field: path } },
        h("div", { class: "touch-row" }, kind, rule.kind === "contact_event" ? [name, match] : null, remove),
        h("p", { class: "field-error", role: "alert" }));
    }));
  };
  drawRules();
  const addRule = h("button", { type: "button", class: "ghost small", text: "Add an exit rule", on: { click: () => { spec.exit_rules.push({ kind: "contact_event", name: "" }); drawRules(); } } });

  const goal = spec.goal || { name: "", within: "7d" };
  const syncGoal = () => { spec.goal = goal.name ? goal : null; };
  const goalName = h("input", { type: "text", value: goal.name || "", placeholder: "order_placed (empty: no goal)", autocomplete: "off" });
  goalName.addEventListener("input", () => { goal.name = goalName.value.trim(); syncGoal(); });
  const goalWithin = h("input", { type: "text", value: durationText(goal.within ?? "7d"), autocomplete: "off" });
  goalWithin.addEventListener("input", () => { goal.within = goalWithin.value.trim(); syncGoal(); });
  const goalMatch = h("input", { type: "text", value: matchText(goal.match), placeholder: "cart_id={cart_id}", autocomplete: "off" });
  goalMatch.addEventListener("input", () => { goal.match = parseMatch(goalMatch.value); syncGoal(); });

  const reentry = bind(spec, "reentry", select(REENTRY, spec.reentry));
  const cooldown = field("Cooldown (e.g. 30d)", bind(spec, "cooldown", h("input", { type: "text", value: spec.cooldown === null ? "" : durationText(spec.cooldown), autocomplete: "off" }), orNull), "cooldown");
  const showCooldown = () => { cooldown.hidden = reentry.value !== "cooldown"; };
  reentry.addEventListener("change", showCooldown);
  showCooldown();
  return h("div", null,
    h("div", { class: "field-group", dataset: { field: "exit_rules" } }, h("span", { class: "field-label", text: "Exit rules (the pending step is cancelled)" }), h("p", { class: "field-error", role: "alert" }), rules, h("div", null, addRule)),
    h("div", { class: "touch-row", dataset: { field: "goal" } },
      field("Goal event", goalName, "goal.name"), field("Within", goalWithin, "goal.within"), field("Goal match", goalMatch, "goal.match"),
      h("p", { class: "field-error", role: "alert" })),
    h("div", { class: "touch-row" }, field("Re-entry", reentry, "reentry"), cooldown),
  );
}

/**
 * @param {Spec} spec
 * @param {any[]} segments
 */
function guardsEditor(spec, segments) {
  const whole = (/** @type {string} */ v) => (v.trim() === "" ? 0 : Number(v));
  const quiet = spec.quiet_hours || { start: "", end: "" };
  const syncQuiet = () => { spec.quiet_hours = quiet.start || quiet.end ? quiet : null; };
  const start = h("input", { type: "time", value: quiet.start || "" });
  start.addEventListener("input", () => { quiet.start = start.value; syncQuiet(); });
  const end = h("input", { type: "time", value: quiet.end || "" });
  end.addEventListener("input", () => { quiet.end = end.value; syncQuiet(); });
  const inboxes = /** @type {[string, string][]} */ ([["", "The workspace's default"], ...[...state.inboxes.values()].map((/** @type {any} */ i) => [String(i.id), i.name])]);
  const segmentOptions = /** @type {[string, string][]} */ ([["", "Everyone"], ...segments.map((s) => [String(s.id), s.name])]);
  return h("div", null,
    h("div", { class: "touch-row" },
      field("Priority (0–100, higher wins)", bind(spec, "priority", h("input", { type: "number", min: 0, max: 100, value: spec.priority }), whole), "priority"),
      field("Holdout % (control group)", bind(spec, "holdout_percent", h("input", { type: "number", min: 0, max: 50, value: spec.holdout_percent }), whole), "holdout_percent"),
      field("Max lateness (empty: none)", bind(spec, "max_lateness", h("input", { type: "text", value: spec.max_lateness === null ? "" : durationText(spec.max_lateness), autocomplete: "off" }), orNull), "max_lateness")),
    h("div", { class: "touch-row", dataset: { field: "quiet_hours" } },
      field("Quiet hours from", start, "quiet_hours.start"),
      field("until (contact's time; empty: workspace's)", end, "quiet_hours.end"),
      h("p", { class: "field-error", role: "alert" })),
    h("div", { class: "touch-row" },
      field("Only contacts in", bind(spec, "entry_segment_id", select(segmentOptions, spec.entry_segment_id ?? ""), idOrNull), "entry_segment_id"),
      field("Sent from inbox", bind(spec, "inbox_id", select(inboxes, spec.inbox_id ?? ""), idOrNull), "inbox_id")),
  );
}
