// @ts-check
// Short confirmations at the bottom of the screen (with an optional action
// such as Undo). Announced to screen readers.

import { h } from "./dom.js";

let region = null;

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
  region.append(item);
  setTimeout(() => item.remove(), action ? Math.max(ms, 10000) : ms);
  return item;
}
