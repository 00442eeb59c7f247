// @ts-check
// The steps of a touchpoint in its editor: each with its delay (after a
// duration, at a local time on a day offset, or relative to a date
// attribute), its channel, business hours, and its variants (subject,
// body, weight). Steps are added, removed and moved; every field carries
// the API's name for it (`steps[0].variants[1].body`) so a 422 lands there.

import { h, replace } from "./dom.js";
import { field } from "./settings_forms.js";
import { delayWords, durationText } from "./touch_words.js";

/**
 * A step and a variant as the editor keeps them (the API's JSON).
 * @typedef {{ id: string, weight: number, subject: string, body: string, html?: boolean, promo_pool_id?: number | null }} Variant
 * @typedef {{ delay: any, channel: string, business_hours: boolean, variants: Variant[] }} Step
 * @typedef {{ step: number, variant: number }} Selection
 */

const MAX_STEPS = 10;
const MAX_VARIANTS = 5;

/** @type {[string, string][]} */
const DELAY_MODES = [
  ["after", "After a duration"],
  ["at_local", "At a local time"],
  ["relative_to", "Relative to a date attribute"],
];

/** @param {any} delay */
function delayMode(delay) {
  if (delay && delay.relative_to) return "relative_to";
  if (delay && delay.at_local) return "at_local";
  return "after";
}

/** @returns {Step} */
export function newStep() {
  return { delay: { after: "1d" }, channel: "email", business_hours: false, variants: [{ id: "a", weight: 1, subject: "", body: "" }] };
}

/** @param {Variant[]} variants */
function freeVariantId(variants) {
  for (let i = 0; i < 26; i += 1) {
    const id = String.fromCharCode(97 + i);
    if (!variants.some((v) => v.id === id)) return id;
  }
  return `v${variants.length + 1}`;
}

/**
 * @param {{ steps: Step[], selected: Selection, onSelect(selection: Selection): void, onChange(): void }} options
 *   `onChange` after any edit (the preview follows); `onSelect` when the
 *   author moves to another variant.
 */
export function stepsEditor(options) {
  const box = h("ol", { class: "touch-steps" });
  const steps = options.steps;

  const draw = () => {
    replace(box, steps.map((step, i) => stepCard(step, i)));
    markSelected();
  };
  const markSelected = () => {
    for (const node of box.querySelectorAll(".touch-variant")) {
      const el = /** @type {HTMLElement} */ (node);
      const on = Number(el.dataset.step) === options.selected.step && Number(el.dataset.variant) === options.selected.variant;
      el.classList.toggle("selected", on);
    }
  };
  /** @param {() => void} change */
  const structural = (change) => {
    change();
    const last = steps.length - 1;
    if (options.selected.step > last) options.onSelect({ step: Math.max(last, 0), variant: 0 });
    const variants = steps[options.selected.step] ? steps[options.selected.step].variants.length : 1;
    if (options.selected.variant >= variants) options.onSelect({ step: options.selected.step, variant: 0 });
    draw();
    options.onChange();
  };

  /**
   * @param {Step} step
   * @param {number} i
   */
  const stepCard = (step, i) => {
    const path = `steps[${i}]`;
    const title = `Step ${i + 1}`;
    const summary = h("span", { class: "muted touch-step-summary", text: delayWords(step.delay) });
    const up = h("button", { type: "button", class: "ghost small", text: "Move up", "aria-label": `Move step ${i + 1} up`, disabled: i === 0 });
    const down = h("button", { type: "button", class: "ghost small", text: "Move down", "aria-label": `Move step ${i + 1} down`, disabled: i === steps.length - 1 });
    const remove = h("button", { type: "button", class: "ghost small", text: "Remove", "aria-label": `Remove step ${i + 1}`, disabled: steps.length === 1 });
    up.addEventListener("click", () => structural(() => steps.splice(i - 1, 0, ...steps.splice(i, 1))));
    down.addEventListener("click", () => structural(() => steps.splice(i + 1, 0, ...steps.splice(i, 1))));
    remove.addEventListener("click", () => structural(() => steps.splice(i, 1)));

    const channel = h("select", null, h("option", { value: "email", text: "Email" }), h("option", { value: "widget", text: "Widget message" }));
    channel.value = step.channel || "email";
    channel.addEventListener("change", () => {
      step.channel = channel.value;
      options.onChange();
    });
    const hours = h("input", { type: "checkbox", checked: Boolean(step.business_hours) });
    hours.id = `field-${path}.business_hours`;
    hours.addEventListener("change", () => {
      step.business_hours = hours.checked;
      options.onChange();
    });
    const delayBox = h("div", { class: "touch-delay" });
    const drawDelay = () => {
      replace(delayBox, delayFields(step, path, () => {
        summary.textContent = delayWords(step.delay);
        options.onChange();
      }, drawDelay));
    };
    drawDelay();

    const variants = h("div", { class: "touch-variants", dataset: { field: `${path}.variants` } },
      h("p", { class: "field-error", role: "alert" }),
      step.variants.map((variant, j) => variantCard(step, i, variant, j)),
      h("button", {
        type: "button",
        class: "ghost small",
        text: "Add a variant",
        "aria-label": `Add a variant to step ${i + 1}`,
        disabled: step.variants.length >= MAX_VARIANTS,
        on: { click: () => structural(() => step.variants.push({ id: freeVariantId(step.variants), weight: 1, subject: step.variants[0] ? step.variants[0].subject : "", body: step.variants[0] ? step.variants[0].body : "" })) },
      }));

    return h("li", { class: "touch-step", dataset: { field: path } },
      h("header", { class: "touch-step-head" }, h("h3", { text: title }), summary, h("span", { class: "touch-step-buttons" }, up, down, remove)),
      h("p", { class: "field-error", role: "alert" }),
      h("div", { class: "touch-row" },
        delayBox,
        field("Channel", channel, `${path}.channel`),
        h("div", { class: "field field-check", dataset: { field: `${path}.business_hours` } }, h("label", { for: hours.id }, hours, " Only in the inbox's business hours"), h("p", { class: "field-error", role: "alert" }))),
      variants,
    );
  };

  /**
   * @param {Step} step
   * @param {number} i
   * @param {Variant} variant
   * @param {number} j
   */
  const variantCard = (step, i, variant, j) => {
    const path = `steps[${i}].variants[${j}]`;
    // Short labels on screen (the legend says which variant); full names
    // for assistive technology, where the legend may not be read out.
    const named = `step ${i + 1}, variant ${variant.id}`;
    const subject = h("input", { type: "text", value: variant.subject || "", autocomplete: "off", "aria-label": `Subject (${named})` });
    const body = h("textarea", { rows: 9, value: variant.body || "", spellcheck: "true", "aria-label": `Body (${named})` });
    const weight = h("input", { type: "number", min: 1, max: 10000, value: variant.weight ?? 1, class: "touch-weight", "aria-label": `Weight (${named})` });
    subject.addEventListener("input", () => {
      variant.subject = subject.value;
      options.onChange();
    });
    body.addEventListener("input", () => {
      variant.body = body.value;
      options.onChange();
    });
    weight.addEventListener("input", () => {
      variant.weight = Number(weight.value);
    });
    const remove = h("button", { type: "button", class: "ghost small", text: "Remove variant", "aria-label": `Remove variant ${variant.id} of step ${i + 1}`, hidden: step.variants.length === 1 });
    remove.addEventListener("click", () => structural(() => step.variants.splice(j, 1)));
    const card = h("fieldset", { class: "touch-variant", dataset: { field: path, step: i, variant: j } },
      h("legend", { text: `Step ${i + 1}, variant ${variant.id}` }),
      h("p", { class: "field-error", role: "alert" }),
      field("Subject", subject, `${path}.subject`),
      field("Body", body, `${path}.body`),
      h("div", { class: "touch-row" }, field("Weight", weight, `${path}.weight`), remove),
    );
    // Whatever the author works on is what the preview shows.
    card.addEventListener("focusin", () => {
      if (options.selected.step === i && options.selected.variant === j) return;
      options.onSelect({ step: i, variant: j });
      markSelected();
    });
    return card;
  };

  const add = h("button", { type: "button", class: "ghost", text: "Add a step" });
  add.addEventListener("click", () => {
    if (steps.length >= MAX_STEPS) return;
    structural(() => steps.push(newStep()));
    const last = /** @type {HTMLElement | null} */ (box.lastElementChild);
    if (last) /** @type {HTMLElement | null} */ (last.querySelector("select, input"))?.focus();
  });
  draw();
  return { element: h("div", { class: "field-group", dataset: { field: "steps" } }, h("p", { class: "field-error", role: "alert" }), box, add), redraw: draw, markSelected };
}

/**
 * @param {Step} step
 * @param {string} path
 * @param {() => void} changed a value changed
 * @param {() => void} redraw the kind of delay changed
 */
function delayFields(step, path, changed, redraw) {
  const delay = step.delay || { after: 0 };
  const mode = h("select", null, DELAY_MODES.map(([v, t]) => h("option", { value: v, text: t })));
  mode.value = delayMode(delay);
  mode.addEventListener("change", () => {
    if (mode.value === "after") step.delay = { after: "1d" };
    else if (mode.value === "at_local") step.delay = { at_local: "09:00", day_offset: 1 };
    else step.delay = { relative_to: "birthday", offset_days: 0, at_local: "09:00" };
    redraw();
    changed();
  });
  /**
   * @param {string} key
   * @param {(raw: string) => unknown} parse
   * @param {HTMLInputElement} input
   */
  const bind = (key, parse, input) => {
    input.addEventListener("input", () => {
      step.delay = { ...step.delay, [key]: parse(input.value) };
      changed();
    });
    return input;
  };
  const text = (/** @type {string} */ v) => v.trim();
  const whole = (/** @type {string} */ v) => (v.trim() === "" ? 0 : Number(v));
  const fields = [field("When", mode, `${path}.delay`)];
  if (mode.value === "after") {
    fields.push(field("Wait", bind("after", text, h("input", { type: "text", value: durationText(delay.after ?? 0), placeholder: "0, 30m, 4h, 2d", autocomplete: "off" })), `${path}.delay.after`));
  } else if (mode.value === "at_local") {
    fields.push(
      field("Local time", bind("at_local", text, h("input", { type: "time", value: delay.at_local || "09:00" })), `${path}.delay.at_local`),
      field("Days later", bind("day_offset", whole, h("input", { type: "number", min: 0, max: 365, value: delay.day_offset ?? 0 })), `${path}.delay.day_offset`),
    );
  } else {
    fields.push(
      field("Date attribute", bind("relative_to", text, h("input", { type: "text", value: delay.relative_to || "", autocomplete: "off" })), `${path}.delay.relative_to`),
      field("Days from it (− before)", bind("offset_days", whole, h("input", { type: "number", min: -365, max: 365, value: delay.offset_days ?? 0 })), `${path}.delay.offset_days`),
      field("Local time", bind("at_local", text, h("input", { type: "time", value: delay.at_local || "09:00" })), `${path}.delay.at_local`),
    );
  }
  return fields;
}
