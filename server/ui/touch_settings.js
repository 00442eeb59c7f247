// @ts-check
// Touchpoints → Settings: the workspace's rules every touchpoint obeys
// (server/domain/touch_settings.py): the zone of last resort, the
// frequency caps per kind, quiet hours and who marketing may reach. Admins
// change them through PATCH /settings/touchpoints; a 422 shows at the
// field it names (`caps.marketing[1].window`); agents read them.

import { get, patch } from "./api.js";
import { h, replace } from "./dom.js";
import { field, showFieldError } from "./settings_forms.js";
import { state } from "./state.js";
import { toast } from "./toast.js";

// As many caps per kind as the server takes (touch_timing.MAX_CAPS).
const MAX_CAPS = 5;

/** @type {[string, string, string][]} kind, title, what it covers */
const CAP_KINDS = [
  ["marketing", "Marketing caps", "Offers, reminders to buy, newsletters."],
  ["service", "Service caps", "Follow-ups: a feedback request, a check-in."],
];

/** @type {[string, string, string][]} mode, label, what it means */
const CONSENT_MODES = [
  ["opt_out", "Everyone who hasn't withdrawn", "Marketing reaches every contact except those who unsubscribed or withdrew their consent."],
  ["opt_in", "Only who opted in", "Marketing reaches only contacts whose consent is recorded as granted."],
];

/**
 * @param {HTMLElement} page
 * @param {HTMLElement} tabs
 */
export function touchSettingsPage(page, tabs) {
  const holder = h("div", { class: "touch-settings", "aria-busy": "true" });
  replace(
    page,
    h("header", { class: "settings-header" }, h("h1", { text: "Touchpoint settings" })),
    tabs,
    h("p", { class: "muted", text: "The rules every touchpoint follows, whoever wrote it." }),
    holder,
  );
  get("/settings/touchpoints").then(
    (settings) => {
      holder.removeAttribute("aria-busy");
      replace(holder, settingsForm(settings));
    },
    (error) => {
      holder.removeAttribute("aria-busy");
      replace(holder, h("p", { class: "form-error", text: `Couldn't load the settings: ${/** @type {Error} */ (error).message}` }));
    },
  );
}

/** @param {any} settings the GET answer */
function settingsForm(settings) {
  const admin = Boolean(state.me && state.me.role === "admin");
  /** @type {Map<string, HTMLInputElement>} inputs by the field name the server uses */
  const inputs = new Map();

  const zone = h("input", { type: "text", value: settings.timezone, autocomplete: "off", spellcheck: "false", list: "touch-zones", placeholder: "Europe/Berlin" });
  inputs.set("timezone", zone);

  /** @type {Record<string, { count: string, window: string }[]>} */
  const caps = {};
  /** @type {Record<string, HTMLElement>} */
  const capLists = {};
  for (const [kind] of CAP_KINDS) {
    caps[kind] = ((settings.caps && settings.caps[kind]) || []).map((/** @type {any} */ c) => ({ count: String(c.count), window: String(c.window) }));
    capLists[kind] = h("ol", { class: "touch-caps" });
  }

  /** @param {string} kind */
  const drawCaps = (kind) => {
    const title = kind === "marketing" ? "Marketing" : "Service";
    for (const key of [...inputs.keys()]) if (key.startsWith(`caps.${kind}[`)) inputs.delete(key);
    const rows = caps[kind];
    replace(capLists[kind], rows.length
      ? rows.map((_, i) => capRow(kind, title, i))
      : h("li", { class: "muted touch-cap-none", text: "No cap: as many as the touchpoints send." }));
    const add = capLists[kind].parentElement && capLists[kind].parentElement.querySelector(":scope > .touch-cap-add");
    if (add) /** @type {HTMLButtonElement} */ (add).disabled = rows.length >= MAX_CAPS;
  };

  /**
   * @param {string} kind
   * @param {string} title
   * @param {number} i
   */
  const capRow = (kind, title, i) => {
    const cap = caps[kind][i];
    const name = `caps.${kind}[${i}]`;
    const count = h("input", { type: "number", min: "1", max: "1000", step: "1", value: cap.count, class: "touch-cap-count", "aria-label": `${title} cap ${i + 1} count` });
    count.addEventListener("input", () => { cap.count = count.value; });
    const span = h("input", { type: "text", value: cap.window, class: "touch-cap-window", autocomplete: "off", spellcheck: "false", placeholder: "16h", "aria-label": `${title} cap ${i + 1} window` });
    span.addEventListener("input", () => { cap.window = span.value; });
    inputs.set(`${name}.count`, count);
    inputs.set(`${name}.window`, span);
    return h("li", { class: "touch-cap", dataset: { field: name } },
      h("div", { class: "touch-row touch-cap-row" },
        h("span", { text: "At most" }), count, h("span", { text: "per" }), span,
        admin ? h("button", { type: "button", class: "ghost small", text: "Remove", "aria-label": `Remove ${title.toLowerCase()} cap ${i + 1}`, on: { click: () => { caps[kind].splice(i, 1); drawCaps(kind); } } }) : null),
      h("p", { class: "field-error", role: "alert" }));
  };

  const capSection = CAP_KINDS.map(([kind, title, covers]) => {
    const box = h("div", { class: "field-group touch-cap-group", dataset: { field: `caps.${kind}` } },
      h("h3", { id: `touch-caps-${kind}`, text: title }),
      h("p", { class: "muted", text: covers }),
      capLists[kind],
      h("p", { class: "field-error", role: "alert" }),
      admin ? h("button", { type: "button", class: "ghost small touch-cap-add", text: "Add a cap", "aria-label": `Add a ${kind} cap`, on: { click: () => {
        caps[kind].push({ count: "1", window: "1d" });
        drawCaps(kind);
        const fresh = inputs.get(`caps.${kind}[${caps[kind].length - 1}].count`);
        if (fresh) fresh.focus();
      } } }) : null);
    capLists[kind].setAttribute("aria-labelledby", `touch-caps-${kind}`);
    return box;
  });

  const quiet = settings.quiet_hours || { start: "21:00", end: "08:00" };
  const start = h("input", { type: "time", value: quiet.start });
  const end = h("input", { type: "time", value: quiet.end });
  inputs.set("quiet_hours.start", start);
  inputs.set("quiet_hours.end", end);

  const consent = h("fieldset", { class: "touch-consent", role: "radiogroup", dataset: { field: "consent" } },
    h("legend", { text: "Who marketing may reach" }),
    CONSENT_MODES.map(([mode, label, means]) => h("label", { class: "touch-consent-option" },
      h("input", { type: "radio", name: "consent", value: mode, checked: settings.consent === mode, "aria-describedby": `touch-consent-${mode}` }),
      h("span", null, h("span", { class: "touch-consent-label", text: label }),
        h("span", { class: "muted touch-consent-means", id: `touch-consent-${mode}`, text: means })))),
    h("p", { class: "field-error", role: "alert" }));

  const zones = supportedZones();
  const save = h("button", { type: "submit", class: "primary", text: "Save" });
  const form = h("form", { class: "settings-form touch-form touch-settings-form", "aria-label": "Touchpoint settings", novalidate: true },
    h("fieldset", { class: "touch-form-body", disabled: !admin },
      h("section", { class: "touch-section", "aria-labelledby": "touch-zone-title" },
        h("h2", { id: "touch-zone-title", text: "Time zone" }),
        h("p", { class: "muted", text: "Quiet hours and local send times are read in the contact's own zone (their profile, else what their browser reports); this one is the last resort." }),
        field("Workspace time zone", zone, "timezone"),
        zones.length ? h("datalist", { id: "touch-zones" }, zones.map((z) => h("option", { value: z }))) : null),
      h("section", { class: "touch-section", "aria-labelledby": "touch-caps-title" },
        h("h2", { id: "touch-caps-title", text: "Frequency caps" }),
        h("p", { class: "muted", text: "A contact gets at most this many touches of a kind, counted across every touchpoint and channel; one over a cap waits until the cap reopens, or is skipped when that would be too late. A window is a duration: 90m, 16h, 7d, 2w." }),
        h("p", { class: "muted", text: "Transactional touches — a receipt — are never capped or held." }),
        h("div", { class: "touch-cap-kinds" }, capSection)),
      h("section", { class: "touch-section", "aria-labelledby": "touch-quiet-title" },
        h("h2", { id: "touch-quiet-title", text: "Quiet hours" }),
        h("p", { class: "muted", text: "In the contact's own time: a touch due between these hours waits until they end. A touchpoint may set its own." }),
        h("div", { class: "touch-row touch-quiet-row" },
          field("From", start, "quiet_hours.start"),
          field("Until", end, "quiet_hours.end"))),
      h("section", { class: "touch-section", "aria-labelledby": "touch-consent-title" },
        h("h2", { id: "touch-consent-title", text: "Consent" }),
        h("p", { class: "muted", text: "Whoever withdrew is never sent marketing or service touches; this decides who else marketing reaches. Service and transactional touches need no opt-in." }),
        consent)),
    h("div", { class: "touch-save-bar" },
      h("p", { class: "form-error", role: "alert" }),
      admin ? save : h("p", { class: "muted", text: "Only admins change these." })),
  );
  for (const [kind] of CAP_KINDS) drawCaps(kind);

  /** @param {any} error */
  const showError = (error) => {
    showFieldError(form, error);
    // The cap rows' inputs sit inside their row: mark the one named.
    const input = error.field ? inputs.get(error.field) : null;
    if (input) input.setAttribute("aria-invalid", "true");
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!admin) return;
    const checked = /** @type {HTMLInputElement | null} */ (consent.querySelector("input:checked"));
    /** @type {Record<string, { count: number | string, window: string }[]>} */
    const capsOut = {};
    for (const [kind] of CAP_KINDS) {
      // A count that isn't a whole number goes as typed, for the server to name.
      capsOut[kind] = caps[kind].map((c) => ({ count: /^\d+$/.test(c.count.trim()) ? Number(c.count) : c.count.trim(), window: c.window.trim() }));
    }
    const body = {
      timezone: zone.value.trim(),
      caps: capsOut,
      quiet_hours: { start: start.value, end: end.value },
      consent: checked ? checked.value : settings.consent,
    };
    save.disabled = true;
    try {
      const saved = await patch("/settings/touchpoints", body);
      toast("Saved the touchpoint settings");
      // Drawn again from the answer: windows come back in their shortest
      // spelling. Focus stays where it was, on Save.
      const fresh = settingsForm(saved);
      form.replaceWith(fresh);
      const again = /** @type {HTMLButtonElement | null} */ (fresh.querySelector("button[type=submit]"));
      if (again) again.focus();
    } catch (error) {
      showError(error);
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

// The browser's IANA zones for the datalist (none where it can't list them).
/** @returns {string[]} */
function supportedZones() {
  const intl = /** @type {{ supportedValuesOf?: (key: string) => string[] }} */ (/** @type {unknown} */ (Intl));
  try {
    return typeof intl.supportedValuesOf === "function" ? intl.supportedValuesOf("timeZone") : [];
  } catch {
    return [];
  }
}
