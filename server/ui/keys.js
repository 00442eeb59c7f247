// @ts-check
// Keyboard first: every action has a key, `?` lists them, and nothing
// fires while the agent is typing in a field (except Escape and Ctrl+K).

import { focusComposer, openCanned } from "./composer.js";
import { assign, label, mergeConversation, priority, runMacro, snooze, toggleResolved } from "./conversation_actions.js";
import { moveSelection, openSelected } from "./list.js";
import { openPalette } from "./palette.js";
import { pickerOpen } from "./picker.js";
import { closeHelp, showHelp } from "./shortcuts_help.js";
import { state } from "./state.js";

/** @param {EventTarget | null} target */
function typingInField(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

export function installKeys() {
  document.addEventListener("keydown", onKey);
}

/** @param {KeyboardEvent} event */
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
  /** @param {() => void} fn */
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
