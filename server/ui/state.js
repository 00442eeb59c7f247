// @ts-check
// The app's state, in one place, and a tiny change notification: views
// subscribe to the parts they draw and redraw when those change.

/**
 * Records from the server (agents, conversations, messages...) are the
 * REST API's JSON, read as the API documents them: typed `any` here.
 * @typedef {{ view: string | null, conversationId: number | null, contactId?: number | null,
 *   page: string, section?: string, itemId?: number | null }} Route
 * @typedef {{ id: number, inbox_id: number, contact_id: number, status: string,
 *   [field: string]: any }} Conversation
 * @typedef {{ agentId: number | null, visitor: boolean, private: boolean, until: number }} Typing
 * @typedef {{
 *   me: any, agents: Map<number, any>, teams: Map<number, any>, inboxes: Map<number, any>,
 *   counts: any, savedFilters: any[], macros: any[], route: Route, statusFilter: string,
 *   list: any[], listMore: string | null, selectedIndex: number, conversation: any,
 *   messages: any[], messagesHasOlder?: boolean, contact: any, contactExtras: any, typing: Map<number, Map<string, Typing>>,
 *   viewing: Map<number, number[]>, presence: Map<number, string>, connection: string,
 *   mineUnread: Set<number>,
 * }} State
 */

/** @type {State} */
export const state = {
  me: null,
  agents: new Map(),
  teams: new Map(),
  inboxes: new Map(),
  counts: null,
  savedFilters: [],
  macros: [],
  route: { view: "mine", conversationId: null, contactId: null, page: "inbox" },
  statusFilter: "open",
  list: [], // conversations of the current view, newest activity first
  listMore: null, // cursor of the next page
  selectedIndex: 0,
  conversation: null, // the open conversation
  messages: [], // its messages in seq order
  contact: null, // the open conversation's (or contact page's) contact
  contactExtras: null, // { events, conversations }
  typing: new Map(), // conversation id -> Map(key -> {agentId, private, until, visitor})
  viewing: new Map(), // conversation id -> agent ids
  presence: new Map(), // agent id -> status
  connection: "connecting",
  mineUnread: new Set(), // conversations in Mine with messages I haven't seen
};

/** @type {Map<string, Set<{ fn: () => void, owner: Element | null }>>} */
const listeners = new Map();

// `owner`: the element the listener draws into. Once it has left the page
// (the agent moved to another screen) the listener is dropped, so screens
// that are built again don't pile up listeners.
/**
 * @param {string} topic
 * @param {() => void} fn
 * @param {Element | null} [owner]
 */
export function on(topic, fn, owner = null) {
  let set = listeners.get(topic);
  if (!set) listeners.set(topic, (set = new Set()));
  set.add({ fn, owner });
}

/** @param {...string} topics */
export function notify(...topics) {
  for (const topic of topics) {
    const set = listeners.get(topic);
    if (!set) continue;
    for (const listener of [...set]) {
      if (listener.owner && !listener.owner.isConnected) set.delete(listener);
      else listener.fn();
    }
  }
}

/** @param {number | null | undefined} id */
export function agentName(id) {
  if (id === null || id === undefined) return "Unassigned";
  const agent = state.agents.get(id);
  return agent ? agent.name : `Agent ${id}`;
}

/** @param {number} id */
export function teamName(id) {
  const team = state.teams.get(id);
  return team ? team.name : `Team ${id}`;
}

/** @param {number} id */
export function inboxName(id) {
  const inbox = state.inboxes.get(id);
  return inbox ? inbox.name : `Inbox ${id}`;
}

/** @param {{ channel?: string, inbox_id: number }} conversation
 * @returns {string} */
export function channelOf(conversation) {
  if (conversation.channel) return conversation.channel;
  const inbox = state.inboxes.get(conversation.inbox_id);
  return inbox ? inbox.kind : "api";
}
