// Settings pages: canned responses and macros.

import { cannedSettings } from "./canned_settings.js";
import { h, replace } from "./dom.js";
import { macroSettings } from "./macro_settings.js";
import { setTitle } from "./notify.js";

export function showSettings(root, section) {
  const page = h("main", { class: "settings-page", "aria-label": "Settings" });
  replace(root, page);
  if (section === "macros") {
    setTitle("Macros");
    macroSettings(page);
  } else {
    setTitle("Canned responses");
    cannedSettings(page);
  }
}

// A labelled field with room for its error (422 answers name the field).
export function field(label, input, name) {
  const id = `field-${name}`;
  input.id = id;
  input.name = name;
  return h("div", { class: "field", dataset: { field: name } }, h("label", { for: id, text: label }), input, h("p", { class: "field-error", role: "alert" }));
}

export function showFieldError(form, error) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  const name = error.field ? error.field.split(/[.[]/)[0] : null;
  const slot = name ? form.querySelector(`[data-field="${CSS.escape(name)}"] .field-error`) : null;
  const message = error.field ? `${error.message}` : error.message;
  if (slot) slot.textContent = message;
  else form.querySelector(".form-error").textContent = message;
}
