// @ts-check
// The signed-in app: layout, routing, the live connection and how live
// events change what is on screen.

import { NetworkError, get, post } from "./api.js";
import { refreshContactPage, showContactPage } from "./contact_page.js";
import {
  addMessages,
  catchUpMessages,
  closeConversation,
  conversationStillOpen,
  loadContact,
  loadConversation,
  loadCounts,
  loadDirectory,
  loadList,
  noteDelivery,
} from "./data.js";
import { h, replace } from "./dom.js";
import { installKeys } from "./keys.js";
import { mountList } from "./list.js";
import { Live } from "./live.js";
import { liveSend, setLiveSender } from "./live_send.js";
import { noticeMessage, refreshTitle } from "./notify.js";
import { mountPane } from "./pane.js";
import { showQuarantine } from "./quarantine.js";
import { inboxHash, parseHash } from "./router.js";
import { showSettings } from "./settings.js";
import { showTouchpoints } from "./touchpoints_page.js";
import { touchpointsChanged } from "./contact_touchpoints.js";
import { mountSidebar } from "./sidebar.js";
import { mountContactSidebar } from "./contact_sidebar.js";
import { notify, on, state } from "./state.js";
import { invalidateCanned } from "./canned.js";
import { loadMacros } from "./macros.js";

/** @typedef {import("./live.js").Frame} Frame */

/** @type {Live | null} */
let live = null;
// Set once the app starts, before anything routes.
let layout = /** @type {{ sidebar: HTMLElement, main: HTMLElement, banner: HTMLElement }} */ (/** @type {unknown} */ (null));
const TYPING_TTL_MS = 6000;

export function stopApp() {
  if (live) live.stop();
  live = null;
  setLiveSender(null);
}

/**
 * @param {HTMLElement} root
 * @param {any} me the signed-in agent
 */
export function startApp(root, me) {
  state.me = me;
  const sidebar = h("nav", { class: "sidebar", "aria-label": "Views" });
  const main = h("div", { class: "workspace" });
  const banner = h("div", { class: "connection", role: "status", hidden: true });
  layout = { sidebar, main, banner };
  replace(root, h("div", { class: "app" }, sidebar, main), banner);
  mountSidebar(sidebar);

  on("connection", () => {
    const text = { connecting: "Connecting…", offline: "Offline — reconnecting. Nothing you send is lost." }[state.connection];
    banner.hidden = !text;
    banner.textContent = text || "";
    document.body.classList.toggle("is-offline", state.connection === "offline");
  });

  live = new Live({
    onEvent: applyEvent,
    onEphemeral: applyEphemeral,
    onReady: (frame) => onReady(frame),
    onResync: () => reloadEverything(),
    onStatus: (status) => {
      state.connection = status;
      notify("connection");
    },
  });
  const socket = live;
  setLiveSender((frame) => socket.send(frame));
  installKeys();
  // Chosen while the socket connects, so the first load waits for nothing.
  if (!location.hash) firstView = chooseFirstView();
  window.addEventListener("hashchange", () => route());
  live.start();
}

let firstReady = true;
let firstView = Promise.resolve();

/** @param {Frame} frame */
async function onReady(frame) {
  if (firstReady) {
    firstReady = false;
    await firstView;
    await reloadEverything();
    return;
  }
  // A resumed connection replayed what we missed; a catch-up on the open
  // conversation covers messages that arrived while the socket was down
  // without being in the replay window of its inbox.
  if (frame.resumed) {
    await Promise.all([catchUpMessages(), loadCounts(), loadList()]);
    announceViewing();
  }
}

// The first screen after login, when no link asked for one: Mine, unless
// it is empty and other views have conversations waiting.
async function chooseFirstView() {
  await loadCounts().catch(() => {});
  const counts = state.counts;
  if (!counts || counts.mine > 0 || location.hash) return;
  const view = counts.unassigned > 0 ? "unassigned" : counts.all > 0 ? "all" : "mine";
  history.replaceState(null, "", inboxHash(view, null));
}

// Everything at once: the list and the open conversation don't wait for
// the directory or the counts (names fill in when those arrive).
async function reloadEverything() {
  await Promise.all([loadDirectory(), loadCounts(), loadMacros(), loadMineUnread(), route(true)]);
}

async function loadMineUnread() {
  const page = await get("/conversations", { mine: true, status: ["open", "pending"], limit: 100 });
  state.mineUnread = new Set(page.items.filter((/** @type {any} */ c) => c.unread > 0).map((/** @type {any} */ c) => c.id));
  refreshTitle();
}

/** @type {string | null} */
let currentPage = null;

// `reload`: fetch the list and the open conversation again even if the
// route didn't change (after a `resync`).
async function route(reload = false) {
  const next = parseHash(location.hash);
  const previous = state.route;
  state.route = next;
  layout.main.className = `workspace page-${next.page}`;
  if (next.page === "inbox") {
    let listLoad = null;
    if (currentPage !== "inbox") {
      currentPage = "inbox";
      const listColumn = h("section", { class: "list-column", "aria-label": "Conversations" });
      const pane = h("main", { class: "pane", "aria-label": "Conversation" });
      const contactColumn = h("aside", { class: "contact-column", "aria-label": "Contact" });
      replace(layout.main, listColumn, pane, contactColumn);
      mountList(listColumn);
      mountPane(pane);
      mountContactSidebar(contactColumn);
      listLoad = loadList();
    } else if (reload || previous.view !== next.view) {
      if (previous.view !== next.view) state.selectedIndex = 0;
      listLoad = loadList();
    }
    notify("route");
    let conversationLoad = null;
    if (next.conversationId === null) {
      closeConversation();
    } else if (reload || !state.conversation || state.conversation.id !== next.conversationId) {
      conversationLoad = loadConversation(next.conversationId).then(markRead, (error) => {
        // A reload the network cut short keeps what is on screen: the
        // socket's resume catches it up once the network is back.
        const shown = state.conversation && state.conversation.id === next.conversationId;
        if (!(error instanceof NetworkError && shown)) closeConversation();
      });
    }
    // The list and the conversation load side by side.
    await Promise.all([listLoad, conversationLoad]);
    announceViewing();
  } else if (next.page === "contact") {
    currentPage = "contact";
    closeConversation();
    notify("route");
    await showContactPage(layout.main, /** @type {number} */ (next.contactId));
    announceViewing();
  } else if (next.page === "touchpoints") {
    currentPage = "touchpoints";
    closeConversation();
    notify("route");
    // The editor is built once per touchpoint: a live event or a resync
    // must not throw away what the author is typing.
    const same = previous.page === "touchpoints" && previous.section === next.section && previous.itemId === next.itemId;
    if (!same || !layout.main.querySelector(".touch-page")) showTouchpoints(layout.main, next);
    else notify("touchpoints");
    announceViewing();
  } else {
    currentPage = "settings";
    closeConversation();
    notify("route");
    if (next.section === "quarantine") showQuarantine(layout.main);
    else showSettings(layout.main, next.section);
    announceViewing();
  }
}

export function announceViewing() {
  liveSend({ type: "viewing", conversation_id: state.conversation ? state.conversation.id : null });
}

// Tell the server the agent has seen the open conversation up to its last
// message (only when the page is visible: a background tab hasn't seen it).
export function markRead() {
  const conversation = state.conversation;
  if (!conversation || document.hidden || !state.messages.length) return;
  const seq = state.messages[state.messages.length - 1].seq;
  if (conversation.unread === 0 && (conversation._readSeq || 0) >= seq) return;
  conversation._readSeq = seq;
  conversation.unread = 0;
  const row = state.list.find((c) => c.id === conversation.id);
  if (row && row.unread) {
    row.unread = 0;
    notify("selection");
  }
  state.mineUnread.delete(conversation.id);
  refreshTitle();
  post(`/conversations/${conversation.id}/read`, { seq }).catch(() => {});
}

document.addEventListener("visibilitychange", () => markRead());

/** @type {ReturnType<typeof setTimeout> | undefined} */
let listTimer;
function refreshListSoon() {
  clearTimeout(listTimer);
  listTimer = setTimeout(() => {
    if (state.route.page === "inbox") loadList().catch(() => {});
    loadCounts().catch(() => {});
  }, 150);
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let conversationTimer;
/** @param {number} id */
function refreshConversationSoon(id) {
  clearTimeout(conversationTimer);
  conversationTimer = setTimeout(async () => {
    if (!conversationStillOpen(id)) return;
    const fresh = await get(`/conversations/${id}`).catch(() => null);
    if (fresh && conversationStillOpen(id)) {
      state.conversation = { ...fresh, _readSeq: state.conversation._readSeq };
      notify("conversation-meta");
    }
  }, 100);
}

/** @param {any} data a message.created event's data */
function messageFromEvent(data) {
  return {
    id: data.message_id,
    conversation_id: data.conversation_id,
    contact_id: data.contact_id,
    seq: data.seq,
    direction: data.direction,
    sender_kind: data.sender_kind,
    sender_id: data.sender_id,
    private: data.private,
    text: data.text,
    html: data.html,
    external_id: data.external_id || null,
    // As stored: an agent's reply waits for its channel until a
    // `message.delivery_changed` says otherwise.
    delivery_status: data.direction === "inbound" || data.private ? "received" : "pending",
    delivery_error: null,
    attachments: data.attachments || [],
    email: data.email || null,
    created_at: data.created_at,
  };
}

/** @param {Frame} frame */
function applyEvent(frame) {
  const data = frame.data || {};
  const type = frame.type;
  const conversationId = data.conversation_id;
  if (type === "message.created") {
    if (conversationStillOpen(conversationId)) {
      const last = state.messages.length ? state.messages[state.messages.length - 1].seq : 0;
      addMessages([messageFromEvent(data)]);
      if (data.seq > last + 1) catchUpMessages().catch(() => {});
      clearTyping(conversationId, data.sender_kind === "contact" ? "visitor" : `agent:${data.sender_id}`);
      markRead();
    }
    if (state.route.page === "contact" && state.route.contactId === data.contact_id) refreshContactPage();
    noticeMessage(data);
    refreshListSoon();
    return;
  }
  if (type === "message.delivery_changed") {
    // Queued → sent, or failed with the reason (a refusal, a bounce).
    noteDelivery(data);
    return;
  }
  if (type.startsWith("conversation.")) {
    if (type === "conversation.merged" && conversationStillOpen(data.source_id)) {
      // The open conversation was merged away: follow its messages.
      location.hash = location.hash.replace(/\/c\/\d+$/, `/c/${conversationId}`);
    } else if (conversationStillOpen(conversationId)) {
      refreshConversationSoon(conversationId);
      // Merged-in messages were appended after the last seq we have.
      if (type === "conversation.merged") catchUpMessages().catch(() => {});
    }
    if (type === "conversation.assigned" && data.assignee_id !== state.me.id) {
      state.mineUnread.delete(conversationId);
      refreshTitle();
    }
    refreshListSoon();
    return;
  }
  if (type.startsWith("contact.")) {
    const contactId = data.contact_id ?? data.survivor_id;
    // A merge suggestion names two contacts: either may be the one shown.
    const shown = state.contact && [contactId, data.merged_id, data.candidate_id].includes(state.contact.id);
    if (shown) {
      if (type === "contact.merged" && state.contact.id === data.merged_id && state.route.page === "contact") {
        location.hash = `#/contact/${data.survivor_id}`;
      } else {
        loadContact(state.contact.id).catch(() => {});
      }
    }
    if (type === "contact.merged" || type === "contact.merge_undone") refreshListSoon();
    notify("contact-event");
    return;
  }
  if (type.startsWith("decision.") || type.startsWith("episode.")) {
    touchpointsChanged(data.contact_id);
    notify("touch-decisions");
    return;
  }
  if (type.startsWith("touchpoint.")) {
    notify("touchpoints");
    return;
  }
  if (type.startsWith("segment.")) {
    notify("segments");
    return;
  }
  if (type === "email.quarantined") {
    notify("quarantine");
    return;
  }
  if (type.startsWith("canned_response.")) {
    invalidateCanned();
    notify("canned");
    return;
  }
  if (type.startsWith("macro.")) {
    loadMacros().catch(() => {});
    return;
  }
  if (type.startsWith("saved_filter.")) {
    loadCounts().catch(() => {});
    return;
  }
  if (type.startsWith("agent.") || type.startsWith("team.") || type.startsWith("inbox.")) {
    loadDirectory().catch(() => {});
    if (type.startsWith("inbox.member") || type.startsWith("team.member")) refreshListSoon();
  }
}

/**
 * @param {number} conversationId
 * @param {string} key
 */
function clearTyping(conversationId, key) {
  const map = state.typing.get(conversationId);
  if (map && map.delete(key)) notify("typing");
}

/** @param {Frame} frame */
function applyEphemeral(frame) {
  if (frame.type === "typing") {
    if (frame.agent_id === state.me.id) return;
    const key = frame.agent_id === null ? "visitor" : `agent:${frame.agent_id}`;
    const map = state.typing.get(frame.conversation_id) || new Map();
    state.typing.set(frame.conversation_id, map);
    if (frame.typing) {
      map.set(key, {
        agentId: frame.agent_id,
        visitor: frame.agent_id === null,
        private: Boolean(frame.private),
        until: Date.now() + TYPING_TTL_MS,
      });
      setTimeout(() => {
        const entry = map.get(key);
        if (entry && entry.until <= Date.now()) {
          map.delete(key);
          notify("typing");
        }
      }, TYPING_TTL_MS + 50);
    } else {
      map.delete(key);
    }
    notify("typing");
  } else if (frame.type === "viewing") {
    state.viewing.set(frame.conversation_id, frame.agent_ids || []);
    notify("viewing");
  } else if (frame.type === "presence") {
    if (frame.agents) {
      state.presence = new Map(Object.entries(frame.agents).map(([k, v]) => [Number(k), v]));
    } else {
      state.presence.set(frame.agent_id, frame.status);
    }
    notify("presence");
  }
}
