// @ts-check
// The conversation list of the current view.

import { del, post } from "./api.js";
import { loadCounts, loadList, loadMoreList, viewAsFilter } from "./data.js";
import { setTitle } from "./notify.js";
import { openPicker } from "./picker.js";
import { toast } from "./toast.js";
import { h, icon, replace } from "./dom.js";
import { channelLabel, initials, shortTime } from "./format.js";
import { go, inboxHash } from "./router.js";
import { agentName, channelOf, inboxName, notify, on, state, teamName } from "./state.js";

const TABS = [
  ["open", "Open"],
  ["pending", "Pending"],
  ["snoozed", "Snoozed"],
  ["resolved", "Resolved"],
];

/** @param {string} view */
export function viewTitle(view) {
  const [kind, id] = view.split(":");
  if (kind === "mine") return "Mine";
  if (kind === "unassigned") return "Unassigned";
  if (kind === "all") return "All";
  if (kind === "inbox") return inboxName(Number(id));
  if (kind === "team") return teamName(Number(id));
  if (kind === "label") return `Label: ${id}`;
  if (kind === "filter") {
    const saved = state.savedFilters.find((f) => String(f.id) === id);
    return saved ? saved.name : "Saved filter";
  }
  return "Conversations";
}

/** @param {HTMLElement} root */
export function mountList(root) {
  const title = h("h1", { class: "list-title" });
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Status" });
  const items = h("ul", { class: "conversation-list", role: "listbox", "aria-label": "Conversations" });
  const more = h("button", { class: "ghost load-more", type: "button", text: "Load more", on: { click: () => loadMoreList() } });
  const viewAction = h("div", { class: "list-view-action" });
  replace(root, h("header", { class: "list-header" }, h("div", { class: "list-title-row" }, title, viewAction), tabs), items, more);

  const drawTabs = () =>
    replace(
      tabs,
      TABS.map(([value, label]) =>
        h("button", {
          type: "button",
          role: "tab",
          class: `tab${state.statusFilter === value ? " current" : ""}`,
          "aria-selected": state.statusFilter === value ? "true" : "false",
          text: label,
          on: {
            click: () => {
              state.statusFilter = value;
              state.selectedIndex = 0;
              drawTabs();
              loadList();
            },
          },
        }),
      ),
    );

  /** @type {string | null} */
  let shownView = null;
  const draw = () => {
    const view = state.route.view || "mine";
    title.textContent = viewTitle(view);
    if (view !== shownView) {
      shownView = view;
      replace(
        viewAction,
        view.startsWith("filter:")
          ? h("button", { type: "button", class: "ghost small", text: "Delete filter", on: { click: () => deleteFilter(view.split(":")[1]) } })
          : h("button", { type: "button", class: "ghost small", text: "Save as filter", on: { click: () => saveFilter(view) } }),
      );
    }
    setTitle(viewTitle(view));
    more.hidden = !state.listMore;
    if (!state.list.length) {
      replace(items, h("li", { class: "empty-list", text: emptyText() }));
      return;
    }
    replace(items, state.list.map((c, index) => row(c, index)));
    mark();
  };
  // Selection and the open conversation change often (j / k, a click):
  // only the rows' classes change, the list isn't rebuilt.
  const mark = () => {
    for (const node of /** @type {HTMLCollectionOf<HTMLElement>} */ (items.children)) {
      const index = Number(node.dataset.index);
      const c = state.list[index];
      if (!c) continue;
      const open = state.route.conversationId === c.id;
      node.classList.toggle("open", open);
      node.classList.toggle("selected", index === state.selectedIndex);
      node.setAttribute("aria-selected", open ? "true" : "false");
      if (!c.unread) {
        node.classList.remove("unread");
        const badge = node.querySelector(".unread-count");
        if (badge) badge.remove();
      }
    }
    const selected = /** @type {HTMLElement | null} */ (items.querySelector(".selected"));
    if (selected && selected.dataset.index !== lastScrolled) {
      lastScrolled = selected.dataset.index;
      selected.scrollIntoView({ block: "nearest" });
    }
  };
  /** @type {string | null | undefined} */
  let lastScrolled = null;
  on("list", draw, root);
  on("directory", draw, root);
  on(
    "route",
    () => {
      title.textContent = viewTitle(state.route.view || "mine");
      setTitle(viewTitle(state.route.view || "mine"));
      mark();
    },
    root,
  );
  on("selection", mark, root);
  drawTabs();
  draw();
}

function emptyText() {
  return state.statusFilter === "open" ? "No open conversations here. Nice work." : `No ${state.statusFilter} conversations.`;
}

/**
 * @param {import("./state.js").Conversation} c
 * @param {number} index
 */
function row(c, index) {
  const open = state.route.conversationId === c.id;
  const selected = index === state.selectedIndex;
  const contactName = c.contact ? c.contact.name : `Contact ${c.contact_id}`;
  const last = c.last_message;
  const preview = last ? `${last.private ? "Note: " : last.sender_kind === "agent" ? "You/team: " : ""}${last.text || (last.attachments ? "Attachment" : "")}` : c.subject || "";
  const channel = channelOf(c);
  return h(
    "li",
    {
      role: "option",
      "aria-selected": open ? "true" : "false",
      class: `conversation-row${open ? " open" : ""}${selected ? " selected" : ""}${c.unread ? " unread" : ""}`,
      dataset: { id: c.id, index },
      on: {
        click: () => {
          state.selectedIndex = index;
          notify("selection");
          go(inboxHash(state.route.view, c.id));
        },
      },
    },
    h("span", { class: "avatar", text: initials(contactName) }),
    h(
      "div",
      { class: "row-main" },
      h(
        "div",
        { class: "row-top" },
        h("span", { class: "row-contact", text: contactName }),
        icon(channel, channelLabel(channel)),
        c.priority && c.priority !== "none" ? h("span", { class: `priority priority-${c.priority}`, text: c.priority }) : null,
        h("time", { class: "row-time", datetime: c.last_activity_at, text: shortTime(c.last_activity_at) }),
      ),
      c.subject ? h("div", { class: "row-subject", text: c.subject }) : null,
      h(
        "div",
        { class: "row-bottom" },
        h("span", { class: "row-preview", text: preview }),
        c.unread ? h("span", { class: "unread-count", "aria-label": `${c.unread} unread`, text: String(c.unread) }) : null,
        c.assignee_id ? h("span", { class: "assignee", title: `Assigned to ${agentName(c.assignee_id)}`, text: initials(agentName(c.assignee_id)) }) : null,
      ),
      c.labels && c.labels.length ? h("div", { class: "row-labels" }, c.labels.map((/** @type {any} */ l) => h("span", { class: "label-chip", text: l }))) : null,
    ),
  );
}

/** @param {number} delta */
export function moveSelection(delta) {
  if (!state.list.length) return;
  state.selectedIndex = Math.max(0, Math.min(state.list.length - 1, state.selectedIndex + delta));
  notify("selection");
  if (delta > 0 && state.selectedIndex >= state.list.length - 3) loadMoreList();
}

export function openSelected() {
  const c = state.list[state.selectedIndex];
  if (c) go(inboxHash(state.route.view, c.id));
}

/** @param {string} view */
function saveFilter(view) {
  const query = viewAsFilter(view, state.statusFilter);
  openPicker({
    title: "Save this view as a filter",
    placeholder: "Name it, e.g. VIP waiting",
    empty: "Type a name, then Enter.",
    items: () => [],
    extra: (name) => (name.trim() ? { id: "save", label: `Save as “${name.trim()}”` } : null),
    onPick: async (item, name) => {
      // Focus came back to "Save as filter", which the saved view replaces:
      // let the keys (j, k, Enter) go to the list instead of reopening this.
      if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
      try {
        const saved = await post("/saved_filters", { name: name.trim(), query });
        await loadCounts();
        go(inboxHash(`filter:${saved.id}`, null));
      } catch (e) {
        toast(`Not saved: ${/** @type {Error} */ (e).message}`, { error: true });
      }
    },
  });
}

/** @param {string} id the saved filter's, from its view name */
async function deleteFilter(id) {
  const saved = state.savedFilters.find((f) => String(f.id) === id);
  if (!saved || !confirm(`Delete the saved filter “${saved.name}”?`)) return;
  await del(`/saved_filters/${id}`).catch((e) => toast(`Not deleted: ${e.message}`, { error: true }));
  await loadCounts();
  go(inboxHash("all", null));
}
