// @ts-check
// Settings → Canned responses: list, search, create, edit, delete.

import { api, del, get, patch, post } from "./api.js";
import { h, replace } from "./dom.js";
import { field, showFieldError } from "./settings_forms.js";
import { state } from "./state.js";
import { toast } from "./toast.js";

const SCOPES = [
  ["workspace", "Everyone in the workspace"],
  ["team", "A team"],
  ["inbox", "An inbox's members"],
  ["personal", "Only me"],
];

/** @param {HTMLElement} page */
export function cannedSettings(page) {
  const search = h("input", { type: "search", class: "settings-search", placeholder: "Search by shortcut or text…", "aria-label": "Search canned responses" });
  const table = h("div", { class: "settings-list" });
  const editor = h("div", { class: "settings-editor" });
  const newButton = h("button", { type: "button", class: "primary", text: "New canned response", on: { click: () => edit(null) } });
  replace(
    page,
    h("header", { class: "settings-header" }, h("h1", { text: "Canned responses" }), newButton),
    h("p", { class: "muted", text: "Type / in the composer to use one. Variables: {{contact.first_name}}, {{contact.name}}, {{contact.email}}, {{agent.name}}, {{agent.first_name}}, {{conversation.id}}, {{inbox.name}}; defaults like {{contact.first_name|default(\"there\")}}." }),
    h("div", { class: "settings-columns" }, h("div", null, search, table), editor),
  );
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(load, 150);
  });

  async function load() {
    const list = await get("/canned_responses", { q: search.value.trim(), limit: 100 });
    replace(
      table,
      list.items.length
        ? h(
            "table",
            { class: "settings-table" },
            h("thead", null, h("tr", null, ["Shortcut", "Title", "Scope", "Used"].map((t) => h("th", { text: t })))),
            h(
              "tbody",
              null,
              list.items.map((/** @type {any} */ r) =>
                h(
                  "tr",
                  null,
                  h("td", null, h("button", { type: "button", class: "link", text: `/${r.shortcut}`, on: { click: () => edit(r) } })),
                  h("td", { text: r.title }),
                  h("td", { text: scopeText(r) }),
                  h("td", { class: "number", text: String(r.usage_count) }),
                ),
              ),
            ),
          )
        : h("p", { class: "muted", text: search.value ? "Nothing matches." : "No canned responses yet." }),
    );
  }

  /** @param {any} response the one to edit, or null for a new one */
  function edit(response) {
    const shortcut = h("input", { type: "text", value: response ? response.shortcut : "", placeholder: "e.g. shipping", autocomplete: "off" });
    const title = h("input", { type: "text", value: response ? response.title : "" });
    const body = h("textarea", { rows: 8, value: response ? response.body : "" });
    const scope = h("select", null, SCOPES.map(([v, t]) => h("option", { value: v, text: t })));
    const team = h("select", null, [...state.teams.values()].map((t) => h("option", { value: t.id, text: t.name })));
    const inbox = h("select", null, [...state.inboxes.values()].map((i) => h("option", { value: i.id, text: i.name })));
    const files = h("input", { type: "file", multiple: true });
    let attachments = response ? [...response.attachments] : [];
    const fileList = h("ul", { class: "composer-files" });
    const drawFiles = () =>
      replace(fileList, attachments.map((f, i) => h("li", { class: "file-chip" }, h("span", { text: f.filename }), h("button", { type: "button", class: "ghost small", text: "×", "aria-label": `Remove ${f.filename}`, on: { click: () => { attachments.splice(i, 1); drawFiles(); } } }))));
    drawFiles();
    if (response) {
      scope.value = response.scope;
      scope.disabled = true;
      if (response.team_id) team.value = response.team_id;
      if (response.inbox_id) inbox.value = response.inbox_id;
      team.disabled = inbox.disabled = true;
    }
    const teamField = field("Team", team, "team_id");
    const inboxField = field("Inbox", inbox, "inbox_id");
    const showScope = () => {
      teamField.hidden = scope.value !== "team";
      inboxField.hidden = scope.value !== "inbox";
    };
    scope.addEventListener("change", showScope);
    showScope();
    files.addEventListener("change", async () => {
      const inboxId = scope.value === "inbox" ? inbox.value : [...state.inboxes.keys()][0];
      for (const file of /** @type {FileList} */ (files.files)) {
        try {
          const answer = await api("POST", `/inboxes/${inboxId}/attachments`, undefined, {
            raw: file,
            query: { filename: file.name },
            headers: { "Content-Type": file.type || "application/octet-stream" },
          });
          attachments.push(answer.attachment);
        } catch (e) {
          toast(`${file.name}: ${/** @type {Error} */ (e).message}`, { error: true });
        }
      }
      files.value = "";
      drawFiles();
    });
    const form = h(
      "form",
      { class: "settings-form", "aria-label": response ? "Edit canned response" : "New canned response" },
      h("h2", { text: response ? `Edit /${response.shortcut}` : "New canned response" }),
      field("Shortcut", shortcut, "shortcut"),
      field("Title", title, "title"),
      field("Body", body, "body"),
      field("Who can use it", scope, "scope"),
      teamField,
      inboxField,
      field("Files", files, "attachment_ids"),
      fileList,
      h("p", { class: "form-error", role: "alert" }),
      h(
        "div",
        { class: "dialog-buttons" },
        response ? h("button", { type: "button", class: "danger", text: "Delete", on: { click: remove } }) : null,
        h("button", { type: "button", class: "ghost", text: "Cancel", on: { click: () => replace(editor) } }),
        h("button", { type: "submit", class: "primary", text: "Save" }),
      ),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      /** @type {Record<string, unknown>} */
      const payload = { shortcut: shortcut.value.trim(), title: title.value.trim(), body: body.value, attachment_ids: attachments.map((a) => a.id) };
      try {
        if (response) {
          await patch(`/canned_responses/${response.id}`, payload);
        } else {
          payload.scope = scope.value;
          if (scope.value === "team") payload.team_id = Number(team.value);
          if (scope.value === "inbox") payload.inbox_id = Number(inbox.value);
          await post("/canned_responses", payload);
        }
        toast(`Saved /${payload.shortcut}`);
        replace(editor);
        load();
      } catch (error) {
        showFieldError(form, error);
      }
    });
    async function remove() {
      if (!confirm(`Delete /${response.shortcut}?`)) return;
      try {
        await del(`/canned_responses/${response.id}`);
        toast(`Deleted /${response.shortcut}`);
        replace(editor);
        load();
      } catch (error) {
        showFieldError(form, error);
      }
    }
    replace(editor, form);
    shortcut.focus();
  }

  load();
}

/** @param {any} r a canned response */
function scopeText(r) {
  if (r.scope === "team") return `Team: ${state.teams.get(r.team_id)?.name || r.team_id}`;
  if (r.scope === "inbox") return `Inbox: ${state.inboxes.get(r.inbox_id)?.name || r.inbox_id}`;
  if (r.scope === "personal") return "Only me";
  return "Everyone";
}
