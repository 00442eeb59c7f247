// @ts-check
// The Touchpoints page: every automatic follow-up with its trigger in
// words, its status (admins switch it live or pause it) and what it did
// (scheduled, sent, skipped by reason, unknown); new ones start from a
// shipped template. Segments, the settings and the editor hang off the same
// route.

import { ApiError, get, post } from "./api.js";
import { h, replace } from "./dom.js";
import { setTitle } from "./notify.js";
import { openPicker } from "./picker.js";
import { segmentsPage } from "./segments_page.js";
import { on, state } from "./state.js";
import { toast } from "./toast.js";
import { touchSettingsPage } from "./touch_settings.js";
import { showTouchpointEditor } from "./touchpoint_editor.js";
import { statusControl } from "./touchpoints_status.js";
import { triggerWords } from "./touch_words.js";
import { mountUnknownDecisions } from "./touch_unknown.js";

/**
 * @param {HTMLElement} root
 * @param {import("./state.js").Route} route
 */
export function showTouchpoints(root, route) {
  const page = h("main", { class: "settings-page touch-page", "aria-label": "Touchpoints" });
  replace(root, page);
  if (route.section === "edit") {
    showTouchpointEditor(page, /** @type {number} */ (route.itemId));
    return;
  }
  const tabs = h("nav", { class: "touch-tabs", "aria-label": "Touchpoints sections" },
    tab("#/touchpoints", "Touchpoints", route.section === "list"),
    tab("#/touchpoints/segments", "Segments", route.section === "segments"),
    tab("#/touchpoints/settings", "Settings", route.section === "settings"));
  if (route.section === "settings") {
    setTitle("Touchpoint settings");
    touchSettingsPage(page, tabs);
    return;
  }
  if (route.section === "segments") {
    setTitle("Segments");
    segmentsPage(page, tabs);
    return;
  }
  setTitle("Touchpoints");
  touchpointList(page, tabs);
}

/**
 * @param {string} href
 * @param {string} text
 * @param {boolean} current
 */
function tab(href, text, current) {
  return h("a", { href, class: `tab${current ? " current" : ""}`, "aria-current": current ? "page" : null, text });
}

/**
 * @param {HTMLElement} page
 * @param {HTMLElement} tabs
 */
function touchpointList(page, tabs) {
  const admin = state.me && state.me.role === "admin";
  const table = h("div", { class: "touch-list", "aria-busy": "true" });
  const unknown = h("section", { class: "unknown-decisions", role: "region", "aria-label": "Unknown decisions" });
  replace(
    page,
    h("header", { class: "settings-header" }, h("h1", { text: "Touchpoints" }),
      admin ? h("button", { type: "button", class: "primary", text: "New from a template", on: { click: pickSeed } }) : null),
    tabs,
    h("p", { class: "muted", text: "Automatic follow-ups: each is decided once per customer and situation, sent at most once, within the caps and outside quiet hours in the customer's own time." }),
    admin ? unknown : null,
    table,
  );
  /** @type {any[]} */
  let segments = [];

  const load = async () => {
    let list;
    try {
      const [answer, segs] = await Promise.all([get("/touchpoints"), get("/segments").catch(() => ({ segments: [] }))]);
      list = answer.touchpoints;
      segments = segs.segments || segs.items || [];
    } catch (error) {
      replace(table, h("p", { class: "form-error", text: `Couldn't load the touchpoints: ${/** @type {Error} */ (error).message}` }));
      return;
    }
    table.removeAttribute("aria-busy");
    replace(
      table,
      list.length
        ? h("table", { class: "settings-table touch-table" },
            h("thead", null, h("tr", null,
              h("th", { text: "Name" }), h("th", { text: "Kind" }), h("th", { text: "Trigger" }), h("th", { text: "Status" }),
              ["Scheduled", "Sent", "Skipped", "Unknown"].map((t) => h("th", { class: "number", text: t })))),
            h("tbody", null, list.map((/** @type {any} */ t) => row(t))))
        : h("div", { class: "touch-empty" },
            h("p", { text: "No touchpoints yet." }),
            h("p", { class: "muted", text: admin ? "Start from a template: a welcome mail, an abandoned cart reminder, a birthday code…" : "An admin can add them from the shipped templates." })),
    );
  };

  /** @param {number} id */
  const segmentName = (id) => {
    const found = segments.find((s) => s.id === id);
    return found ? `the segment “${found.name}”` : `segment #${id}`;
  };

  /** @param {any} t a touchpoint */
  const row = (t) => {
    const counts = t.counts || {};
    const pending = (counts.scheduled || 0) + (counts.deferred || 0) + (counts.sending || 0);
    return h("tr", { dataset: { touchpointId: t.id } },
      h("td", null, h("a", { href: `#/touchpoints/${Number(t.id)}`, class: "touch-name", text: t.name }),
        t.description ? h("div", { class: "muted touch-description", text: t.description }) : null),
      h("td", null, h("span", { class: `touch-kind kind-${t.kind}`, text: t.kind })),
      h("td", { class: "touch-trigger-cell", text: triggerWords(t.trigger, segmentName) }),
      h("td", { class: "touch-status-cell" }, statusControl(t, admin, load)),
      h("td", { class: "number", title: `${counts.scheduled || 0} scheduled, ${counts.deferred || 0} deferred, ${counts.sending || 0} sending`, text: String(pending) }),
      h("td", { class: "number", text: String(counts.sent || 0) }),
      h("td", { class: "number" }, skipped(t)),
      h("td", { class: `number${counts.unknown ? " touch-unknown" : ""}`, text: String(counts.unknown || 0), title: counts.unknown ? "May or may not have gone out: see above" : null }),
    );
  };

  const reloadUnknown = admin ? mountUnknownDecisions(unknown, () => load()) : () => {};
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!page.isConnected) return;
      load();
      reloadUnknown();
    }, 300);
  };
  on("touchpoints", soon, page);
  on("touch-decisions", soon, page);
  load();
}

// The skipped count; its reasons open below it (and show on hover), with
// the other ways a touch ends without being sent.
/** @param {any} t */
function skipped(t) {
  const counts = t.counts || {};
  const reasons = Object.entries(t.skipped_by_reason || {}).sort((a, b) => Number(b[1]) - Number(a[1]));
  const others = [["cancelled", counts.cancelled], ["expired", counts.expired], ["failed", counts.failed]].filter(([, n]) => n);
  const total = counts.skipped || 0;
  if (!reasons.length && !others.length) return h("span", { text: String(total) });
  const lines = [...reasons.map(([reason, n]) => `${reason}: ${n}`), ...others.map(([what, n]) => `${what}: ${n}`)];
  return h("details", { class: "touch-skipped", title: lines.join("\n") },
    h("summary", { "aria-label": `${total} skipped, by reason` }, String(total)),
    h("ul", null,
      reasons.map(([reason, n]) => h("li", null, h("span", { text: reason }), h("span", { class: "count", text: String(n) }))),
      others.map(([what, n]) => h("li", { class: "muted" }, h("span", { text: String(what) }), h("span", { class: "count", text: String(n) })))));
}

function pickSeed() {
  openPicker({
    title: "New touchpoint from a template",
    placeholder: "Filter the templates…",
    empty: "No template matches.",
    items: async (query) => {
      const answer = await get("/touchpoint_seeds");
      const q = query.trim().toLowerCase();
      return answer.seeds
        .filter((/** @type {any} */ s) => !q || `${s.name} ${s.description}`.toLowerCase().includes(q))
        .map((/** @type {any} */ s) => ({ id: s.id, label: s.name, hint: `${s.kind} · ${s.description}`, seed: s }));
    },
    onPick: async (item) => {
      try {
        const made = await post("/touchpoint_seeds/install", { seed: item.id });
        toast(`Installed ${made.name} as a draft`);
        location.hash = `#/touchpoints/${Number(made.id)}`;
      } catch (error) {
        const message = error instanceof ApiError ? error.message : String(error);
        toast(`Couldn't install ${item.label}: ${message}`, { error: true });
      }
    },
  });
}
