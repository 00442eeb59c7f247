// @ts-check
// What the settings pages' forms share: labelled fields and errors shown at
// the field the server named.

import { h } from "./dom.js";

// A labelled field with room for its error (422 answers name the field).
/**
 * @param {string} label
 * @param {HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement} input
 * @param {string} name
 */
export function field(label, input, name) {
  const id = `field-${name}`;
  input.id = id;
  input.name = name;
  return h("div", { class: "field", dataset: { field: name } }, h("label", { for: id, text: label }), input, h("p", { class: "field-error", role: "alert" }));
}

/**
 * The error goes to the most precise field the form has for the name the
 * server gave: `steps[0].variants[1].body`, else `steps[0].variants[1]`,
 * `steps[0]`, `steps`, else the form's own error line.
 * @param {HTMLFormElement} form
 * @param {any} error an ApiError, or another Error (then it names no field)
 */
export function showFieldError(form, error) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  const slot = error.field ? errorSlot(form, error.field) : null;
  if (slot) {
    slot.textContent = error.message;
    const input = slot.parentElement && slot.parentElement.querySelector(":scope > input, :scope > textarea, :scope > select");
    if (input) input.setAttribute("aria-invalid", "true");
    slot.scrollIntoView({ block: "nearest" });
  } else {
    /** @type {HTMLElement} */ (form.querySelector(".form-error")).textContent = error.message;
  }
}

/**
 * @param {HTMLFormElement} form
 * @param {string} name
 */
function errorSlot(form, name) {
  let path = name;
  for (;;) {
    for (const holder of form.querySelectorAll(`[data-field="${CSS.escape(path)}"]`)) {
      const slot = holder.querySelector(":scope > .field-error");
      if (slot) return slot;
    }
    const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
    if (cut <= 0) return null;
    path = path.slice(0, cut);
  }
}
