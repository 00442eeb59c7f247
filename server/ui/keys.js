// Keyboard first: every action has a key, `?` lists them, and nothing
// fires while the agent is typing in a field (except Escape and Ctrl+K).

import { focusComposer, openCanned } from "./composer.js";
import { assign, label, mergeConversation, priority, runMacro, snooze, toggleResolved } from "./conversation_actions.js";
import { h } from "./dom.js";
import { moveSelection, openSelected } from "./list.js";
import { openPalette } from "./palette.js";
import { closePicker, pickerOpen } from "./picker.js";
import { state } from "./state.js";

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

function typingInField(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

export function installKeys() {
  document.addEventListener("keydown", onKey);
}

function onKey(event) {
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
    event.preventDefault();
    openPalette();
    return;
  }
  if (event.key === "Escape" && closeHelp()) return;
  if (pickerOpen() || event.ctrlKey || event.metaKey || event.altKey) return;
  if (typingInField(event.target)) return;
  const conversation = state.conversation;
  const run = (fn) => {
    event.preventDefault();
    fn();
  };
  switch (event.key) {
    case "j":
      if (state.route.page === "inbox") run(() => moveSelection(1));
      break;
    case "k":
      if (state.route.page === "inbox") run(() => moveSelection(-1));
      break;
    case "Enter":
      if (state.route.page === "inbox" && !(event.target instanceof HTMLButtonElement) && !(event.target instanceof HTMLAnchorElement)) run(openSelected);
      break;
    case "r":
      if (conversation) run(() => focusComposer("reply"));
      break;
    case "n":
      if (conversation) run(() => focusComposer("note"));
      break;
    case "/":
      if (conversation) run(() => { focusComposer("reply"); openCanned(); });
      break;
    case "e":
      if (conversation) run(() => toggleResolved(conversation));
      break;
    case "a":
      if (conversation) run(() => assign(conversation));
      break;
    case "l":
      if (conversation) run(() => label(conversation));
      break;
    case "p":
      if (conversation) run(() => priority(conversation));
      break;
    case "s":
      if (conversation) run(() => snooze(conversation));
      break;
    case "m":
      if (conversation) run(() => runMacro(conversation));
      break;
    case "M":
      if (conversation) run(() => mergeConversation(conversation));
      break;
    case "c":
      if (conversation) run(() => { location.hash = `#/contact/${conversation.contact_id}`; });
      break;
    case "?":
      run(showHelp);
      break;
    default:
  }
}

let help = null;

function closeHelp() {
  if (!help) return false;
  const { node, back } = help;
  help = null;
  node.remove();
  if (back && document.contains(back)) back.focus();
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
