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
 * @param {HTMLFormElement} form
 * @param {any} error an ApiError, or another Error (then it names no field)
 */
export function showFieldError(form, error) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  const name = error.field ? error.field.split(/[.[]/)[0] : null;
  const slot = name ? form.querySelector(`[data-field="${CSS.escape(name)}"] .field-error`) : null;
  if (slot) slot.textContent = error.message;
  else /** @type {HTMLElement} */ (form.querySelector(".form-error")).textContent = error.message;
}
