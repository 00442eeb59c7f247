// @ts-check
// The editor's live preview: the selected variant rendered for a chosen
// contact (their latest attributes and tracked events) or sample data,
// while the author types (debounced; a late answer never overwrites a
// newer one). The HTML part is shown in an iframe with an empty sandbox
// (no scripts, no origin, no forms) from srcdoc: it never enters the page.

import { ApiError, get, post } from "./api.js";
import { h, replace } from "./dom.js";
import { openPicker } from "./picker.js";

const DEBOUNCE_MS = 300;

/**
 * @typedef {{ subject: string, body: string, html?: boolean } | null} Source
 * @param {{ source(): Source, describe(): string }} options
 *   `source`: the variant to render now; `describe`: which one it is, in words
 */
export function previewPane(options) {
  /** @type {{ id: number, name: string } | null} */
  let contact = null;
  const who = h("span", { class: "touch-preview-contact", text: "Sample data" });
  const choose = h("button", { type: "button", class: "ghost small", text: "Choose a contact…" });
  const sample = h("button", { type: "button", class: "ghost small", text: "Use sample data", hidden: true });
  const which = h("p", { class: "muted touch-preview-which" });
  // Not live regions that speak on every keystroke: the status is only
  // shown, and a template error is announced politely once it settles.
  const status = h("p", { class: "muted touch-preview-status" });
  const error = h("p", { class: "form-error touch-preview-error", "aria-live": "polite" });
  const subject = h("p", { class: "touch-preview-subject" });
  const frameBox = h("div", { class: "touch-preview-frame" });
  const text = h("pre", { class: "touch-preview-text", tabindex: "0", "aria-label": "Text part" });
  const pane = h("aside", { class: "touch-preview", "aria-label": "Preview" },
    h("h2", { text: "Preview" }),
    h("div", { class: "touch-preview-for" }, h("span", { class: "muted", text: "For " }), who, choose, sample),
    which,
    status,
    error,
    h("div", { class: "touch-preview-output" },
      h("h3", { text: "Subject" }), subject,
      h("h3", { text: "HTML part" }), frameBox,
      h("h3", { text: "Text part" }), text),
  );

  choose.addEventListener("click", () =>
    openPicker({
      title: "Preview for a contact",
      placeholder: "Search contacts by name or email…",
      empty: "Type a name or an email.",
      items: async (query) => {
        if (!query.trim()) return [];
        const page = await get("/contacts", { q: query.trim(), limit: 10 }).catch(() => ({ items: [] }));
        return page.items.map((/** @type {any} */ c) => ({ id: c.id, label: c.name, hint: (c.identities || []).map((/** @type {any} */ i) => i.value).slice(0, 2).join(", "), contact: c }));
      },
      onPick: (item) => {
        contact = { id: item.contact.id, name: item.contact.name };
        who.textContent = contact.name;
        sample.hidden = false;
        refresh(true);
      },
    }),
  );
  sample.addEventListener("click", () => {
    contact = null;
    who.textContent = "Sample data";
    sample.hidden = true;
    refresh(true);
  });

  let generation = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const render = async () => {
    const mine = ++generation;
    const source = options.source();
    which.textContent = options.describe();
    if (!source) return;
    status.textContent = "Rendering…";
    try {
      /** @type {Record<string, unknown>} */
      const request = { subject: source.subject || "", body: source.body || "", html: Boolean(source.html) };
      if (contact) request.contact_id = contact.id;
      const answer = await post("/touchpoints/preview", request);
      if (mine !== generation) return;
      status.textContent = contact ? `Rendered with ${contact.name}'s latest data` : "Rendered with sample data";
      error.textContent = "";
      pane.classList.remove("has-error");
      subject.textContent = answer.subject || "";
      text.textContent = answer.text || "";
      replace(frameBox, answer.html
        ? h("iframe", { class: "touch-preview-html", title: "HTML part", sandbox: "", referrerpolicy: "no-referrer", srcdoc: answer.html })
        : h("p", { class: "muted", text: "No HTML part." }));
    } catch (e) {
      if (mine !== generation) return;
      status.textContent = "";
      // The last good rendering stays, dimmed, under the template's error.
      pane.classList.add("has-error");
      error.textContent = e instanceof ApiError && e.field ? `${e.message}` : /** @type {Error} */ (e).message;
    }
  };
  /** @param {boolean} [now] */
  const refresh = (now = false) => {
    clearTimeout(timer);
    if (now) render();
    else timer = setTimeout(render, DEBOUNCE_MS);
  };
  return { element: pane, refresh };
}
