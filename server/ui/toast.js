// @ts-check
// Short confirmations at the bottom of the screen (with an optional action
// such as Undo). Announced to screen readers.

import { h } from "./dom.js";

/** @type {HTMLElement | null} */
let region = null;

/**
 * @param {string} text
 * @param {{ error?: boolean, action?: { label: string, run(): void } | null, ms?: number }} [options]
 */
export function toast(text, { error = false, action = null, ms = 4000 } = {}) {
  if (!region || !document.contains(region)) {
    region = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  const item = h(
    "div",
    { class: `toast${error ? " error" : ""}` },
    h("span", { text }),
    action ? h("button", { type: "button", class: "ghost small", text: action.label, on: { click: () => { item.remove(); action.run(); } } }) : null,
  );
  /** @type {HTMLElement} */ (region).append(item);
  setTimeout(() => item.remove(), action ? Math.max(ms, 10000) : ms);
  return item;
}
