// @ts-check
// Loading state from the REST API. Every loader is safe to call again
// (after a reconnect or a `resync`): it replaces what it loads.

import { get } from "./api.js";
import { notify, state } from "./state.js";

/** @type {Record<string, string[]>} */
const STATUS_FILTERS = {
  open: ["open"],
  pending: ["pending"],
  snoozed: ["snoozed"],
  resolved: ["resolved"],
  all: ["open", "pending", "snoozed", "resolved"],
};

export async function loadDirectory() {
  const [agents, teams, inboxes] = await Promise.all([
    get("/agents"),
    get("/teams"),
    get("/inboxes"),
  ]);
  /** @param {{ items: { id: number }[] }} page */
  const byId = (page) => new Map(page.items.map((item) => [item.id, item]));
  state.agents = byId(agents);
  state.teams = byId(teams);
  state.inboxes = byId(inboxes);
  notify("directory");
}

// Counts are reloaded from several places at once (an event, a saved
// filter just made); only the newest request may land, or an older answer
// arriving late would put stale counts back. A superseded call resolves
// once the newest has landed, so `await loadCounts()` always sees fresh
// state.
let countsGeneration = 0;
/** @type {Promise<void>} */
let countsLatest = Promise.resolve();

export function loadCounts() {
  const mine = ++countsGeneration;
  const request = Promise.all([
    get("/views/counts", { status: ["open", "pending"] }),
    get("/saved_filters").catch(() => ({ items: [] })),
  ]).then(([counts, filters]) => {
    if (mine !== countsGeneration) return countsLatest;
    const countOf = new Map((counts.saved_filters || []).map((/** @type {any} */ f) => [f.id, f.count]));
    state.counts = counts;
    state.savedFilters = filters.items.map((/** @type {any} */ f) => ({ ...f, count: countOf.get(f.id) ?? null }));
    notify("counts");
  });
  countsLatest = request;
  return request;
}

// The current view as a saved filter's query (the same filters the list
// takes, ids as numbers).
/**
 * @param {string} view
 * @param {string} statusFilter
 */
export function viewAsFilter(view, statusFilter) {
  /** @type {Record<string, unknown>} */
  const query = {};
  for (const [key, value] of Object.entries(viewQuery(view, statusFilter))) {
    if (key === "status") query.status = value;
    else if (key.endsWith("_id")) query[key] = Number(value);
    else query[key] = value;
  }
  return query;
}

// The list query of a sidebar view (route.view) and the status tab.
/**
 * @param {string | null} view
 * @param {string} statusFilter
 */
export function viewQuery(view, statusFilter) {
  /** @type {Record<string, unknown>} */
  const query = { status: STATUS_FILTERS[statusFilter] || STATUS_FILTERS.open };
  const [kind, id] = /** @type {string} */ (view).split(":");
  if (kind === "mine") query.mine = true;
  else if (kind === "unassigned") query.unassigned = true;
  else if (kind === "inbox") query.inbox_id = id;
  else if (kind === "team") query.team_id = id;
  else if (kind === "label") query.label = id;
  else if (kind === "filter") {
    const saved = state.savedFilters.find((f) => String(f.id) === id);
    if (saved && saved.query) Object.assign(query, saved.query);
  }
  return query;
}

let listGeneration = 0;

export async function loadList() {
  const mine = ++listGeneration;
  const page = await get("/conversations", { ...viewQuery(state.route.view, state.statusFilter), limit: 50 });
  if (mine !== listGeneration) return;
  state.list = page.items;
  state.listMore = page.next_cursor || null;
  const selected = state.route.conversationId;
  const index = state.list.findIndex((c) => c.id === selected);
  if (index >= 0) state.selectedIndex = index;
  state.selectedIndex = Math.min(state.selectedIndex, Math.max(state.list.length - 1, 0));
  notify("list");
}

export async function loadMoreList() {
  if (!state.listMore) return;
  const mine = listGeneration;
  const page = await get("/conversations", {
    ...viewQuery(state.route.view, state.statusFilter),
    limit: 50,
    cursor: state.listMore,
  });
  if (mine !== listGeneration) return;
  const known = new Set(state.list.map((c) => c.id));
  state.list.push(...page.items.filter((/** @type {any} */ c) => !known.has(c.id)));
  state.listMore = page.next_cursor || null;
  notify("list");
}

let conversationGeneration = 0;

// The conversation, its messages and its contact (with events and past
// conversations) are fetched together: when the list already knows the
// contact, nothing waits for the conversation to come back first.
/** @param {number} id */
export async function loadConversation(id) {
  const mine = ++conversationGeneration;
  const known = state.list.find((c) => c.id === id);
  const conversationRequest = get(`/conversations/${id}`);
  const messagesRequest = get(`/conversations/${id}/messages`, { limit: 100 });
  const contactRequest = known
    ? contactBundle(known.contact_id)
    : conversationRequest.then((/** @type {any} */ c) => contactBundle(c.contact_id));
  contactRequest.catch(() => {});
  const [conversation, messages] = await Promise.all([conversationRequest, messagesRequest]);
  if (mine !== conversationGeneration) return;
  state.conversation = conversation;
  state.messages = messages.items;
  state.messagesHasOlder = messages.has_more;
  if (state.contact && state.contact.id !== conversation.contact_id) {
    state.contact = null;
    state.contactExtras = null;
  }
  notify("conversation");
  const bundle = await contactRequest;
  if (mine !== conversationGeneration || bundle.contact.id !== conversation.contact_id) return;
  state.contact = bundle.contact;
  state.contactExtras = bundle.extras;
  notify("contact");
}

/** @param {number} contactId */
export async function contactBundle(contactId) {
  const [contact, events, conversations] = await Promise.all([
    get(`/contacts/${contactId}`),
    get(`/contacts/${contactId}/events`, { limit: 20 }).catch(() => ({ items: [] })),
    get("/conversations", { contact_id: contactId, status: STATUS_FILTERS.all, limit: 50 }),
  ]);
  return { contact, extras: { events: events.items, conversations: conversations.items } };
}

/** @param {number} id */
export function conversationStillOpen(id) {
  return state.conversation !== null && state.conversation.id === id;
}

export async function loadOlderMessages() {
  const conversation = state.conversation;
  if (!conversation || !state.messages.length) return;
  const page = await get(`/conversations/${conversation.id}/messages`, {
    before_seq: state.messages[0].seq,
    limit: 100,
  });
  if (!conversationStillOpen(conversation.id)) return;
  state.messages = mergeMessages(page.items, state.messages);
  state.messagesHasOlder = page.has_more;
  notify("messages");
}

// Messages after the last one we have (fills any gap the live feed left).
export async function catchUpMessages() {
  const conversation = state.conversation;
  if (!conversation) return;
  const after = state.messages.length ? state.messages[state.messages.length - 1].seq : 0;
  const page = await get(`/conversations/${conversation.id}/messages`, { after_seq: after, limit: 100 });
  if (!conversationStillOpen(conversation.id)) return;
  addMessages(page.items);
}

// How far along its delivery a message is: a copy of a message never
// takes it back (the answer to a send can arrive after the live event
// that said it was sent).
/** @type {Record<string, number>} */
const DELIVERY_RANK = { received: 0, pending: 1, sent: 2, delivered: 3, read: 4, failed: 5 };
/** @param {any} m */
const rank = (m) => DELIVERY_RANK[m.delivery_status] ?? 0;

// The latest `message.delivery_changed` of each message, for a message
// whose copy arrives after its event.
/** @type {Map<number, { delivery_status: string, delivery_error: string | null }>} */
const deliveries = new Map(); // message id -> { delivery_status, delivery_error }

/** @param {any} m */
function withDelivery(m) {
  const known = deliveries.get(m.id);
  if (!known || rank(m) > DELIVERY_RANK[known.delivery_status]) return m;
  return { ...m, ...known };
}

/**
 * @param {any[]} a
 * @param {any[]} b
 * @returns {any[]}
 */
export function mergeMessages(a, b) {
  /** @type {Map<number, any>} */
  const bySeq = new Map();
  for (const m of [...a, ...b]) {
    const before = bySeq.get(m.seq);
    if (before && before.id === m.id && rank(before) > rank(m)) {
      bySeq.set(m.seq, { ...m, delivery_status: before.delivery_status, delivery_error: before.delivery_error });
    } else {
      bySeq.set(m.seq, m);
    }
  }
  return [...bySeq.values()].sort((x, y) => x.seq - y.seq);
}

/** @param {any[]} items */
export function addMessages(items) {
  if (!items.length) return;
  state.messages = mergeMessages(state.messages, items.map(withDelivery));
  notify("messages");
}

// A live `message.delivery_changed`: the message shows its new state.
/** @param {any} data a message.delivery_changed event's data */
export function noteDelivery(data) {
  const change = { delivery_status: data.delivery_status, delivery_error: data.delivery_error ?? null };
  deliveries.set(data.message_id, change);
  if (deliveries.size > 500) deliveries.delete(/** @type {number} */ (deliveries.keys().next().value));
  if (!conversationStillOpen(data.conversation_id)) return;
  const index = state.messages.findIndex((m) => m.id === data.message_id);
  if (index < 0) return;
  state.messages = state.messages.map((m, i) => (i === index ? { ...m, ...change } : m));
  notify("messages");
}

/**
 * @param {number} contactId
 * @param {number} [generation]
 */
export async function loadContact(contactId, generation = conversationGeneration) {
  const bundle = await contactBundle(contactId);
  if (generation !== conversationGeneration) return;
  state.contact = bundle.contact;
  state.contactExtras = bundle.extras;
  notify("contact");
}

export function closeConversation() {
  conversationGeneration += 1;
  state.conversation = null;
  state.messages = [];
  state.contact = null;
  state.contactExtras = null;
  notify("conversation", "contact");
}
