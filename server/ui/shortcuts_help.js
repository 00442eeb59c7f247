// @ts-check
// The `?` list of keyboard shortcuts, opened by its key or from the palette.

import { h } from "./dom.js";
import { closePicker } from "./picker.js";

export const SHORTCUTS = [
  ["j / k", "Next / previous conversation"],
  ["Enter", "Open the selected conversation"],
  ["r", "Reply"],
  ["n", "Private note"],
  ["/", "Insert a canned response"],
  ["e", "Resolve (or reopen)"],
  ["a", "Assign to an agent or team"],
  ["l", "Add or remove a label"],
  ["p", "Set priority"],
  ["s", "Snooze"],
  ["m", "Run a macro"],
  ["Shift+M", "Merge a conversation into this one"],
  ["c", "Open the contact's timeline"],
  ["Ctrl+K / ⌘K", "Command palette and search"],
  ["Esc", "Leave the field / close"],
  ["?", "This list"],
];

/** @type {{ node: HTMLElement, back: Element | null } | null} */
let help = null;

export function closeHelp() {
  if (!help) return false;
  const { node, back } = help;
  help = null;
  node.remove();
  if (back && document.contains(back)) /** @type {HTMLElement} */ (back).focus();
  return true;
}

export function showHelp() {
  closePicker();
  if (help) return;
  const close = h("button", { type: "button", class: "ghost", text: "Close", on: { click: closeHelp } });
  const node = h(
    "div",
    { class: "picker-backdrop", on: { mousedown: (e) => e.target === node && closeHelp() } },
    h(
      "div",
      { class: "help", role: "dialog", "aria-modal": "true", "aria-label": "Keyboard shortcuts" },
      h("h2", { text: "Keyboard shortcuts" }),
      h("dl", null, SHORTCUTS.map(([keys, what]) => [h("dt", null, h("kbd", { text: keys })), h("dd", { text: what })])),
      close,
    ),
  );
  help = { node, back: document.activeElement };
  document.body.append(node);
  close.focus();
}
