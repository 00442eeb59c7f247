// @ts-check
// Touchpoints → Segments: saved filters over contacts with their live
// count; the editor shows how many contacts match (and who) while the
// filter is being changed, through POST /segments/preview.

import { del, get, patch, post } from "./api.js";
import { h, replace } from "./dom.js";
import { plural } from "./format.js";
import { filterRows } from "./segment_rows.js";
import { field, showFieldError } from "./settings_forms.js";
import { on, state } from "./state.js";
import { toast } from "./toast.js";

const PREVIEW_DEBOUNCE_MS = 300;

/**
 * @param {HTMLElement} page
 * @param {HTMLElement} tabs
 */
export function segmentsPage(page, tabs) {
  const admin = state.me && state.me.role === "admin";
  const list = h("div", { class: "settings-list" });
  const editor = h("div", { class: "settings-editor" });
  replace(
    page,
    h("header", { class: "settings-header" }, h("h1", { text: "Segments" }),
      admin ? h("button", { type: "button", class: "primary", text: "New segment", on: { click: () => edit(null) } }) : null),
    tabs,
    h("p", { class: "muted", text: "Saved filters over contacts: who enters a touchpoint, who a broadcast goes to." }),
    h("div", { class: "settings-columns segment-columns" }, list, editor),
  );

  const load = async () => {
    let segments;
    try {
      const answer = await get("/segments");
      segments = answer.segments || answer.items || [];
    } catch (error) {
      replace(list, h("p", { class: "form-error", text: `Couldn't load the segments: ${/** @type {Error} */ (error).message}` }));
      return;
    }
    const counts = h("tbody");
    replace(list, segments.length
      ? h("table", { class: "settings-table segment-table" },
          h("thead", null, h("tr", null, h("th", { text: "Name" }), h("th", { class: "number", text: "Contacts" }))),
          append(counts, segments))
      : h("p", { class: "muted", text: "No segments yet." }));
  };

  /**
   * @param {HTMLElement} body
   * @param {any[]} segments
   */
  const append = (body, segments) => {
    for (const s of segments) {
      // As of the last membership refresh, until the live count answers.
      const count = h("td", { class: "number", text: s.members === undefined || s.members === null ? "…" : String(s.members) });
      body.append(h("tr", { dataset: { segmentId: s.id } },
        h("td", null, h("button", { type: "button", class: "link", text: s.name, on: { click: () => edit(s) } })),
        count));
      // The live count, asked for each segment on its own.
      get(`/segments/${Number(s.id)}/count`).then((c) => { count.textContent = String(c.count); }, () => {});
    }
    return body;
  };

  /** @param {any} segment the one to edit, or null for a new one */
  const edit = async (segment) => {
    const full = segment ? await get(`/segments/${Number(segment.id)}`).catch(() => segment) : null;
    const name = h("input", { type: "text", value: full ? full.name : "", autocomplete: "off" });
    const filter = JSON.parse(JSON.stringify((full && full.filter) || { match: "all", conditions: [] }));
    const count = h("p", { class: "segment-count-line", role: "status", text: "Counting…" });
    const who = h("ul", { class: "segment-preview" });
    const json = h("pre", { class: "segment-json" });
    let generation = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const previewNow = async () => {
      const mine = ++generation;
      json.textContent = JSON.stringify(filter, null, 2);
      try {
        const answer = await post("/segments/preview", { filter });
        if (mine !== generation) return;
        count.textContent = `${plural(answer.count, "contact matches", "contacts match")} now`;
        showFieldError(form, { field: null, message: "" });
        replace(who, (answer.contacts || []).slice(0, 10).map((/** @type {any} */ c) => h("li", null, h("a", { href: `#/contact/${Number(c.id)}`, text: c.name }), c.email ? h("span", { class: "muted", text: ` ${c.email}` }) : null)));
      } catch (error) {
        if (mine !== generation) return;
        // Shown at the row it names; the count waits for a filter it can run.
        count.textContent = "Not counted: the filter has an error";
        replace(who);
        showFieldError(form, error);
      }
    };
    const changed = () => {
      clearTimeout(timer);
      timer = setTimeout(previewNow, PREVIEW_DEBOUNCE_MS);
    };
    const form = h("form", { class: "settings-form", "aria-label": full ? "Edit segment" : "New segment" },
      h("h2", { text: full ? `Edit ${full.name}` : "New segment" }),
      h("fieldset", { class: "touch-form-body", disabled: !admin },
        field("Name", name, "name"),
        filterRows({ filter, onChange: changed })),
      h("div", { class: "segment-live" }, count, who),
      h("details", { class: "segment-json-box" }, h("summary", { text: "As JSON" }), json),
      h("p", { class: "form-error", role: "alert" }),
      admin ? h("div", { class: "dialog-buttons" },
        full ? h("button", { type: "button", class: "danger", text: "Delete", on: { click: () => remove() } }) : null,
        h("button", { type: "button", class: "ghost", text: "Cancel", on: { click: () => replace(editor) } }),
        h("button", { type: "submit", class: "primary", text: "Save" })) : null,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { name: name.value.trim(), filter };
      try {
        if (full) await patch(`/segments/${Number(full.id)}`, body);
        else await post("/segments", body);
        toast(`Saved ${body.name}`);
        replace(editor);
        load();
      } catch (error) {
        showFieldError(form, error);
      }
    });
    const remove = async () => {
      if (!full || !confirm(`Delete the segment ${full.name}?`)) return;
      try {
        await del(`/segments/${Number(full.id)}`);
        toast(`Deleted ${full.name}`);
        replace(editor);
        load();
      } catch (error) {
        showFieldError(form, error);
      }
    };
    replace(editor, form);
    name.focus();
    previewNow();
  };

  on("segments", () => { if (page.isConnected) load(); }, page);
  load();
}
