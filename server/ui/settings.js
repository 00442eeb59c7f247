// @ts-check
// Settings pages: canned responses and macros.

import { cannedSettings } from "./canned_settings.js";
import { h, replace } from "./dom.js";
import { macroSettings } from "./macro_settings.js";
import { setTitle } from "./notify.js";

/**
 * @param {HTMLElement} root
 * @param {string | undefined} section
 */
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
