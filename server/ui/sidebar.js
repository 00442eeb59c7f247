// @ts-check
// The left column: views with their counts, settings, the signed-in agent.

import { post } from "./api.js";
import { availabilityControl } from "./availability.js";
import { h, icon, replace } from "./dom.js";
import { initials } from "./format.js";
import { inboxHash } from "./router.js";
import { on, state } from "./state.js";

/** @param {HTMLElement} root */
export function mountSidebar(root) {
  const draw = () => replace(root, ...content());
  // After a mouse click on a view, the keys (j, k, Enter…) belong to the
  // list again, not to the link the click left focused.
  root.addEventListener("click", (/** @type {MouseEvent} */ event) => {
    const link = event.target instanceof Element ? event.target.closest("a") : null;
    if (link && event.detail > 0) link.blur();
  });
  on("counts", draw);
  on("directory", draw);
  // A route change only moves the highlight.
  on("route", () => {
    const route = state.route;
    for (const link of /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll(".view-link"))) {
      const current =
        (route.page === "inbox" && link.dataset.view === route.view) ||
        (route.page === "settings" && link.dataset.section === route.section) ||
        (route.page === "touchpoints" && link.dataset.touch === touchSection(route));
      link.classList.toggle("current", current);
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  });
  on("presence", draw);
  on("me", draw);
  draw();
}

/** @param {import("./state.js").Route} route */
function touchSection(route) {
  return route.section === "segments" ? "segments" : "touchpoints";
}

function content() {
  const counts = state.counts || { inboxes: {}, teams: {}, labels: {} };
  const route = state.route;
  /**
   * @param {string} view
   * @param {string} label
   * @param {number | null} [count]
   * @param {Node} [extra]
   */
  const link = (view, label, count, extra) => {
    const current = route.page === "inbox" && route.view === view;
    return h(
      "li",
      null,
      h(
        "a",
        {
          href: inboxHash(view, null),
          class: `view-link${current ? " current" : ""}`,
          "aria-current": current ? "page" : null,
          dataset: { view },
        },
        extra || null,
        h("span", { class: "view-name", text: label }),
        count !== undefined && count !== null ? h("span", { class: "view-count", text: String(count) }) : null,
      ),
    );
  };
  /**
   * @param {string} title
   * @param {HTMLElement[]} items
   */
  const section = (title, items) =>
    items.length ? h("div", { class: "view-section" }, h("h2", { text: title }), h("ul", null, items)) : null;

  const inboxes = [...state.inboxes.values()].map((inbox) =>
    link(`inbox:${inbox.id}`, inbox.name, counts.inboxes[String(inbox.id)] ?? 0, icon(inbox.kind)),
  );
  const teams = [...state.teams.values()].map((team) =>
    link(`team:${team.id}`, team.name, counts.teams[String(team.id)] ?? 0),
  );
  const labels = Object.entries(counts.labels).map(([label, n]) => link(`label:${label}`, label, n, icon("tag")));
  const filters = (state.savedFilters || []).map((f) => link(`filter:${f.id}`, f.name, f.count));
  const me = state.me;
  const status = state.presence.get(me.id) || "online";
  /**
   * @param {string} section
   * @param {string} label
   */
  const settingsLink = (section, label) =>
    h("li", null, h("a", {
      href: `#/settings/${section}`,
      class: `view-link${route.page === "settings" && route.section === section ? " current" : ""}`,
      dataset: { section },
      text: label,
    }));
  /**
   * @param {string} touch
   * @param {string} href
   * @param {string} label
   */
  const touchLink = (touch, href, label) => {
    const current = route.page === "touchpoints" && touchSection(route) === touch;
    return h("li", null, h("a", {
      href,
      class: `view-link${current ? " current" : ""}`,
      "aria-current": current ? "page" : null,
      dataset: { touch },
    }, touch === "touchpoints" ? icon("bolt") : null, h("span", { class: "view-name", text: label })));
  };
  return [
    h("div", { class: "brand" }, h("img", { src: "/ui/icon.svg", alt: "", width: 22, height: 22 }), h("span", { text: "Threadline" })),
    h(
      "div",
      { class: "view-section" },
      h("ul", null, [
        link("mine", "Mine", counts.mine),
        link("unassigned", "Unassigned", counts.unassigned),
        link("all", "All", counts.all),
      ]),
    ),
    section("Inboxes", inboxes),
    section("Teams", teams),
    section("Labels", labels),
    section("Saved filters", filters),
    h("div", { class: "view-section" }, h("h2", { text: "Automation" }), h("ul", null, [
      touchLink("touchpoints", "#/touchpoints", "Touchpoints"),
      touchLink("segments", "#/touchpoints/segments", "Segments"),
    ])),
    h("div", { class: "view-section" }, h("h2", { text: "Settings" }), h("ul", null, [
      settingsLink("canned", "Canned responses"),
      settingsLink("macros", "Macros"),
      me.role === "admin" ? settingsLink("quarantine", "Email quarantine") : null,
    ])),
    h(
      "div",
      { class: "me" },
      h("span", { class: `avatar presence-${status}`, text: initials(me.name), title: `${me.name} (${status})` }),
      h("span", { class: "me-who" }, h("span", { class: "me-name", text: me.name }), availabilityControl()),
      h("button", {
        class: "ghost small",
        type: "button",
        text: "Log out",
        on: {
          click: async () => {
            await post("/auth/logout").catch(() => {});
            location.hash = "";
            location.reload();
          },
        },
      }),
    ),
  ];
}
