// @ts-check
// The conversation pane: header with the actions, the thread, who else is
// here (viewing, typing, replying), and the composer.

import { loadOlderMessages } from "./data.js";
import { h, icon, reconcile, replace } from "./dom.js";
import { channelLabel, initials, shortTime, statusLabel } from "./format.js";
import { mountComposer } from "./composer.js";
import { messageBubble } from "./message_view.js";
import { actionButtons } from "./conversation_actions.js";
import { agentName, channelOf, inboxName, on, state, teamName } from "./state.js";

// The contact's name as the freshest source has it (never the previous
// conversation's contact while the new one loads).
/** @param {import("./state.js").Conversation} c */
function nameOf(c) {
  if (state.contact && state.contact.id === c.contact_id) return state.contact.name;
  return c.contact ? c.contact.name : "";
}

/** @param {HTMLElement} root */
export function mountPane(root) {
  const header = h("header", { class: "pane-header" });
  const thread = h("div", { class: "thread", tabindex: "-1", "aria-label": "Messages" });
  const presence = h("div", { class: "pane-presence", "aria-live": "polite" });
  const composerSlot = h("div", { class: "composer-slot" });
  const empty = h(
    "div",
    { class: "pane-empty" },
    h("p", { text: "Pick a conversation with j / k and Enter." }),
    h("p", { class: "muted", text: "Press ? for every shortcut, Ctrl+K to search." }),
  );
  replace(root, empty);
  /** @type {import("./composer.js").Composer | null} */
  let composer = null;
  /** @type {number | null} */
  let shownId = null;
  let bubbles = new Map(); // seq -> { key, el }: the thread's drawn messages
  const olderButton = h("button", { class: "ghost load-older", type: "button", text: "Load older messages", on: { click: () => loadOlderMessages() } });

  const drawHeader = () => {
    const c = state.conversation;
    if (!c) return;
    const contactName = nameOf(c);
    const channel = channelOf(c);
    const viewers = (state.viewing.get(c.id) || []).filter((id) => id !== state.me.id);
    replace(
      header,
      h(
        "div",
        { class: "pane-title" },
        h("h1", null, h("a", { href: `#/contact/${c.contact_id}`, class: "contact-link", text: contactName || `Contact ${c.contact_id}` })),
        // An email conversation is about its subject: it gets a line of its own.
        channel === "email" ? h("p", { class: "pane-subject", title: c.subject || "", text: c.subject || "(no subject)" }) : null,
        h(
          "div",
          { class: "pane-subtitle" },
          h("span", { class: "channel", title: channelLabel(channel) }, icon(channel, channelLabel(channel)), inboxName(c.inbox_id)),
          c.subject && channel !== "email" ? h("span", { class: "subject", text: c.subject }) : null,
          h("span", { class: `status status-${c.status}`, text: statusLabel(c) }),
          h("span", { class: "assignee-line", text: `${agentName(c.assignee_id)}${c.team_id ? ` · ${teamName(c.team_id)}` : ""}` }),
          c.priority !== "none" ? h("span", { class: `priority priority-${c.priority}`, text: c.priority }) : null,
          c.labels.map((/** @type {any} */ l) => h("span", { class: "label-chip", text: l })),
        ),
      ),
      h(
        "div",
        { class: "viewers", "aria-label": viewers.length ? "Also viewing" : null },
        viewers.map((id) => h("span", { class: "avatar small", title: `${agentName(id)} is viewing`, text: initials(agentName(id)) })),
      ),
      actionButtons(c),
    );
  };

  const drawThread = () => {
    const c = state.conversation;
    if (!c) return;
    const atBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80 || shownId !== c.id;
    const contactName = nameOf(c);
    const lastOutbound = [...state.messages].reverse().find((m) => m.sender_kind !== "contact" && !m.private);
    if (shownId !== c.id) bubbles.clear();
    const channel = channelOf(c);
    const kept = new Map();
    const items = state.messages.map((m) => {
      const seen = Boolean(lastOutbound && m === lastOutbound && c.contact_last_read_seq >= m.seq);
      // A bubble is drawn again only when what it shows changed: the
      // others stay in place, so an open email frame isn't reloaded (and
      // doesn't lose its scroll) whenever a message arrives.
      const key = [m, contactName, channel, seen, c.subject, state.agents];
      const cached = bubbles.get(m.seq);
      const reuse = cached && cached.key.every((/** @type {any} */ part, /** @type {any} */ i) => part === key[i]);
      const el = reuse ? cached.el : messageBubble(m, { contactName, channel, seen, conversationSubject: c.subject });
      if (reuse) {
        // Only its age moves on ("now" → "5m").
        const time = el.querySelector(".message-meta time");
        if (time) time.textContent = shortTime(m.created_at);
      }
      kept.set(m.seq, { key, el });
      return el;
    });
    bubbles = kept;
    reconcile(
      thread,
      state.messagesHasOlder ? olderButton : null,
      items,
      composer ? composer.pendingBubbles() : null,
    );
    if (atBottom) thread.scrollTop = thread.scrollHeight;
    shownId = c.id;
  };

  const drawPresence = () => {
    const c = state.conversation;
    if (!c) return;
    const typing = [...(state.typing.get(c.id) || new Map()).values()].filter((t) => t.until > Date.now());
    const visitor = typing.find((t) => t.visitor);
    const replying = typing.filter((t) => !t.visitor && !t.private);
    const noting = typing.filter((t) => !t.visitor && t.private);
    replace(
      presence,
      visitor ? h("p", { class: "typing", text: `${nameOf(c) || "The customer"} is typing…` }) : null,
      replying.map((t) =>
        h("p", { class: "collision", role: "alert" }, icon("flag"), `${agentName(t.agentId)} is typing a reply — you may be answering twice.`),
      ),
      noting.map((t) => h("p", { class: "typing", text: `${agentName(t.agentId)} is writing a note…` })),
    );
  };

  /** @type {number | null} */
  let composerFor = null;
  on("conversation", () => {
    const c = state.conversation;
    if (!c) {
      replace(root, empty);
      composer = null;
      composerFor = null;
      shownId = null;
      return;
    }
    // The same conversation loaded again (the first socket ready after
    // login, a resync) keeps its composer: a draft or an attached file is
    // never thrown away under the agent's hands.
    if (composer === null || composerFor !== c.id) {
      replace(root, header, thread, presence, composerSlot);
      composer = mountComposer(composerSlot, () => drawThread());
      composerFor = c.id;
    }
    drawHeader();
    drawThread();
    drawPresence();
  }, root);
  const redraw = () => {
    drawHeader();
    drawThread();
  };
  on("conversation-meta", redraw, root);
  on("directory", drawHeader, root);
  on("contact", redraw, root);
  on("messages", drawThread, root);
  on("viewing", drawHeader, root);
  on("typing", drawPresence, root);
}
