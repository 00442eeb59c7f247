// @ts-check
// A small emoji palette: the ones support replies actually use.

import { h } from "./dom.js";

const EMOJI = [
  "😀", "😊", "🙂", "😉", "😅", "😂", "🥲", "😍", "🤔", "😮", "😢", "🙏",
  "👍", "👎", "👋", "👏", "🙌", "💪", "🤝", "✌️", "👀", "🎉", "✨", "🔥",
  "❤️", "💙", "💚", "⭐", "✅", "❌", "⚠️", "❓", "📦", "🚚", "🛒", "💳",
  "📧", "📞", "🕐", "📅", "🔧", "🔒", "🎁", "💡", "📝", "📎", "🙈", "☕",
];

/**
 * @param {(emoji: string) => void} onPick
 * @param {() => void} onClose
 */
export function emojiPopover(onPick, onClose) {
  const grid = h(
    "div",
    { class: "emoji-grid", role: "dialog", "aria-label": "Emoji" },
    EMOJI.map((e) =>
      h("button", {
        type: "button",
        class: "emoji",
        text: e,
        "aria-label": e,
        on: { click: () => onPick(e) },
      }),
    ),
  );
  grid.addEventListener("keydown", (event) => {
    const buttons = [...grid.querySelectorAll("button")];
    const index = buttons.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
    const step = /** @type {Record<string, number>} */ ({ ArrowRight: 1, ArrowLeft: -1, ArrowDown: 12, ArrowUp: -12 })[event.key];
    if (step && index >= 0) {
      event.preventDefault();
      buttons[Math.max(0, Math.min(buttons.length - 1, index + step))].focus();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      onClose();
    }
  });
  return grid;
}
