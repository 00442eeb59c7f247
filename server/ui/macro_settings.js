// @ts-check
// Settings → Macros: a named list of steps run in one click.

import { del, get, patch, post } from "./api.js";
import { h, replace } from "./dom.js";
import { loadMacros } from "./macros.js";
import { field, showFieldError } from "./settings_forms.js";
import { state } from "./state.js";
import { toast } from "./toast.js";

const STEP_TYPES = [
  ["send_canned_response", "Reply with a canned response"],
  ["add_label", "Add a label"],
  ["remove_label", "Remove a label"],
  ["assign_team", "Assign to a team"],
  ["assign_agent", "Assign to an agent"],
  ["set_priority", "Set priority"],
  ["snooze", "Snooze (minutes)"],
  ["resolve", "Resolve"],
  ["reopen", "Reopen"],
];

/** A macro step as the API has it: `type` and its fields.
 * @typedef {{ type: string, [field: string]: any }} Step */

/** @param {HTMLElement} page */
export function macroSettings(page) {
  const list = h("div", { class: "settings-list" });
  const editor = h("div", { class: "settings-editor" });
  replace(
    page,
    h("header", { class: "settings-header" }, h("h1", { text: "Macros" }), h("button", { type: "button", class: "primary", text: "New macro", on: { click: () => edit(null) } })),
    h("p", { class: "muted", text: "Run one from a conversation with m or the Macro button: every step happens together, or none does." }),
    h("div", { class: "settings-columns" }, list, editor),
  );

  async function load() {
    await loadMacros();
    replace(
      list,
      state.macros.length
        ? h("table", { class: "settings-table" },
            h("thead", null, h("tr", null, ["Name", "Steps", "Who", "Used"].map((t) => h("th", { text: t })))),
            h("tbody", null, state.macros.map((m) =>
              h("tr", null,
                h("td", null, h("button", { type: "button", class: "link", text: m.name, on: { click: () => edit(m) } })),
                h("td", { text: m.actions.map(describe).join(" → ") }),
                h("td", { text: m.scope === "personal" ? "Only me" : "Everyone" }),
                h("td", { class: "number", text: String(m.usage_count ?? 0) }),
              ))))
        : h("p", { class: "muted", text: "No macros yet." }),
    );
  }

  /** @param {any} macro the one to edit, or null for a new one */
  async function edit(macro) {
    const canned = await get("/canned_responses", { limit: 100 }).catch(() => ({ items: [] }));
    const name = h("input", { type: "text", value: macro ? macro.name : "" });
    const scope = h("select", null, h("option", { value: "workspace", text: "Everyone" }), h("option", { value: "personal", text: "Only me" }));
    if (macro) {
      scope.value = macro.scope;
      scope.disabled = true;
    }
    /** @type {Step[]} */
    let steps = macro ? macro.actions.map((/** @type {Step} */ a) => ({ ...a })) : [{ type: "add_label", label: "" }];
    const stepsBox = h("ol", { class: "macro-steps" });
    /**
     * @param {Step} step
     * @param {number} index
     */
    const valueInput = (step, index) => {
      /**
       * @param {string} key
       * @param {(value: string) => unknown} parse
       */
      const set = (key, parse) => (/** @type {Event} */ e) => { step[key] = parse(/** @type {HTMLInputElement} */ (e.target).value); };
      /**
       * @param {string} key
       * @param {string[][]} options [value, text] pairs
       * @param {unknown} value
       */
      const select = (key, options, value) => {
        const s = h("select", { "aria-label": `Step ${index + 1} value`, on: { change: set(key, (v) => (v === "" ? null : /^\d+$/.test(v) ? Number(v) : v)) } },
          options.map(([v, t]) => h("option", { value: v, text: t })));
        s.value = /** @type {string} */ (value ?? options[0][0]);
        step[key] = step[key] ?? (options[0][0] === "" ? null : /^\d+$/.test(options[0][0]) ? Number(options[0][0]) : options[0][0]);
        return s;
      };
      switch (step.type) {
        case "send_canned_response":
          return select("canned_response_id", canned.items.map((/** @type {any} */ r) => [String(r.id), `/${r.shortcut} — ${r.title}`]), step.canned_response_id);
        case "add_label":
        case "remove_label":
          return h("input", { type: "text", "aria-label": `Step ${index + 1} label`, value: step.label || "", on: { input: set("label", (v) => v.trim()) } });
        case "assign_team":
          return select("team_id", [["", "No team"], ...[...state.teams.values()].map((t) => [String(t.id), t.name])], step.team_id === null ? "" : step.team_id);
        case "assign_agent":
          return select("agent_id", [["me", "Whoever runs it"], ["", "Nobody (unassign)"], ...[...state.agents.values()].map((a) => [String(a.id), a.name])], step.agent_id === null ? "" : step.agent_id);
        case "set_priority":
          return select("priority", [["urgent", "Urgent"], ["high", "High"], ["medium", "Medium"], ["low", "Low"], ["none", "None"]], step.priority);
        case "snooze":
          return h("input", { type: "number", min: 1, "aria-label": `Step ${index + 1} minutes`, value: step.minutes || 60, on: { input: set("minutes", Number) } });
        default:
          return null;
      }
    };
    const drawSteps = () =>
      replace(stepsBox, steps.map((step, index) => {
        const type = h("select", { "aria-label": `Step ${index + 1}` }, STEP_TYPES.map(([v, t]) => h("option", { value: v, text: t })));
        type.value = step.type;
        type.addEventListener("change", () => {
          steps[index] = { type: type.value };
          drawSteps();
        });
        if (step.type === "snooze" && !step.minutes) step.minutes = 60;
        return h("li", { class: "macro-step", dataset: { field: `actions[${index}]` } }, type, valueInput(step, index),
          h("button", { type: "button", class: "ghost small", text: "Remove", on: { click: () => { steps.splice(index, 1); drawSteps(); } } }));
      }));
    drawSteps();
    const form = h(
      "form",
      { class: "settings-form", "aria-label": macro ? "Edit macro" : "New macro" },
      h("h2", { text: macro ? `Edit ${macro.name}` : "New macro" }),
      field("Name", name, "name"),
      field("Who can run it", scope, "scope"),
      h("div", { class: "field", dataset: { field: "actions" } }, h("span", { class: "field-label", text: "Steps" }), stepsBox,
        h("button", { type: "button", class: "ghost small", text: "Add a step", on: { click: () => { steps.push({ type: "resolve" }); drawSteps(); } } }),
        h("p", { class: "field-error", role: "alert" })),
      h("p", { class: "form-error", role: "alert" }),
      h("div", { class: "dialog-buttons" },
        macro ? h("button", { type: "button", class: "danger", text: "Delete", on: { click: remove } }) : null,
        h("button", { type: "button", class: "ghost", text: "Cancel", on: { click: () => replace(editor) } }),
        h("button", { type: "submit", class: "primary", text: "Save" })),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const payload = { name: name.value.trim(), actions: steps };
      try {
        if (macro) await patch(`/macros/${macro.id}`, payload);
        else await post("/macros", { ...payload, scope: scope.value });
        toast(`Saved ${payload.name}`);
        replace(editor);
        load();
      } catch (error) {
        showFieldError(form, error);
      }
    });
    async function remove() {
      if (!confirm(`Delete the macro ${macro.name}?`)) return;
      await del(`/macros/${macro.id}`).catch((error) => showFieldError(form, error));
      replace(editor);
      load();
    }
    replace(editor, form);
    name.focus();
  }

  load();
}

/** @param {Step} step */
function describe(step) {
  const found = STEP_TYPES.find(([v]) => v === step.type);
  const what = found ? found[1] : step.type;
  const detail = step.label || step.priority || (step.minutes ? `${step.minutes} min` : "");
  return detail ? `${what}: ${detail}` : what;
}
