// @ts-check
// Desktop notifications and the title badge for new customer messages in
// the agent's own conversations (Mine). Permission is asked once, from a
// button the agent clicks, never by surprise: the offer appears when it
// means something (the agent has just answered a customer or taken a
// conversation), not on the first screen after login. The command palette
// offers it at any time.

import { get } from "./api.js";
import { h } from "./dom.js";
import { on, state } from "./state.js";

const ASKED_KEY = "threadline.notifications-asked";

let titleBase = "Threadline";

// The tab's title: what is on screen, after the count of conversations in
// Mine with customer messages the agent hasn't seen.
/** @param {string} what */
export function setTitle(what) {
  titleBase = `${what} · Threadline`;
  refreshTitle();
}

export function refreshTitle() {
  const unread = state.mineUnread.size;
  document.title = unread ? `(${unread}) ${titleBase}` : titleBase;
}

export function canOfferNotifications() {
  return "Notification" in window && Notification.permission === "default";
}

// Called after a gesture of the agent's that makes notifications useful;
// offered once (unless `again`, from the palette).
export function offerNotifications(again = false) {
  if (!canOfferNotifications() || document.querySelector(".notify-bar")) return;
  if (localStorage.getItem(ASKED_KEY) && !again) return;
  const bar = h(
    "div",
    { class: "notify-bar", role: "region", "aria-label": "Desktop notifications" },
    h("span", { text: "Desktop notifications when a customer writes in one of your conversations?" }),
    h("button", {
      type: "button",
      class: "primary small",
      text: "Turn on",
      on: {
        click: async () => {
          localStorage.setItem(ASKED_KEY, "1");
          bar.remove();
          await Notification.requestPermission();
        },
      },
    }),
    h("button", {
      type: "button",
      class: "ghost small",
      text: "Not now",
      on: {
        click: () => {
          localStorage.setItem(ASKED_KEY, "1");
          bar.remove();
        },
      },
    }),
  );
  document.body.append(bar);
}

// A message event: count it for the badge and notify when it is a
// customer's message in a conversation assigned to me that I am not
// looking at right now.
/** @param {any} data a message.created event's data */
export async function noticeMessage(data) {
  if (data.sender_kind !== "contact" || data.private) return;
  const looking = !document.hidden && state.conversation && state.conversation.id === data.conversation_id;
  if (looking) return;
  const mine = state.list.find((c) => c.id === data.conversation_id);
  const assignedToMe = mine ? mine.assignee_id === state.me.id : await isMine(data.conversation_id);
  if (!assignedToMe) return;
  state.mineUnread.add(data.conversation_id);
  refreshTitle();
  if ("Notification" in window && Notification.permission === "granted") {
    const n = new Notification("New message", { body: String(data.text || "Attachment").slice(0, 140), tag: `conversation-${data.conversation_id}` });
    n.onclick = () => {
      window.focus();
      location.hash = `#/v/mine/c/${data.conversation_id}`;
      n.close();
    };
  }
}

/** @param {number} conversationId */
async function isMine(conversationId) {
  const c = await get(`/conversations/${conversationId}`).catch(() => null);
  return Boolean(c && c.assignee_id === state.me.id);
}
