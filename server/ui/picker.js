// @ts-check
// A popover list to choose from by typing and arrow keys (assign, label,
// snooze, canned responses, macros, the command palette). One open at a
// time; Escape closes it and gives focus back to where it came from.

import { h, replace } from "./dom.js";

/** @type {{ root: HTMLElement, returnFocus: Element | null } | null} */
let open = null;

export function closePicker() {
  if (!open) return;
  const { root, returnFocus } = open;
  open = null;
  root.remove();
  if (returnFocus && document.contains(returnFocus)) /** @type {HTMLElement} */ (returnFocus).focus();
}

export function pickerOpen() {
  return open !== null;
}

/**
 * @typedef {{ id: any, label: string, hint?: string, group?: string, [more: string]: any }} PickerItem
 * @typedef {{ title: string, placeholder?: string, initial?: string, empty?: string, className?: string,
 *   items(query: string): PickerItem[] | Promise<PickerItem[]>,
 *   onPick(item: any, query: string): void,
 *   preview?(item: any): Promise<Node | null> | Node | null,
 *   extra?(query: string, found: PickerItem[]): PickerItem | null | "" }} PickerOptions
 */

/**
 * options:
 *   title        heading, also the dialog's accessible name
 *   placeholder  the filter field's placeholder
 *   items(query) -> Promise<[{id, label, hint?, group?, run?}]> or an array
 *   onPick(item, query)
 *   preview(item) -> Promise<Node|null>  shown beside the list (optional)
 *   extra(query) -> item|null            e.g. "Create label “x”"
 *   className
 * @param {PickerOptions} options
 */
export function openPicker(options) {
  closePicker();
  const returnFocus = document.activeElement;
  const input = h("input", {
    class: "picker-input",
    type: "text",
    placeholder: options.placeholder || "Type to filter…",
    "aria-label": options.title,
    autocomplete: "off",
    spellcheck: "false",
    role: "combobox",
    "aria-expanded": "true",
    "aria-controls": "picker-list",
  });
  const list = h("ul", { class: "picker-list", id: "picker-list", role: "listbox" });
  const preview = h("div", { class: "picker-preview", "aria-live": "polite" });
  const root = h(
    "div",
    { class: `picker-backdrop ${options.className || ""}`, on: { mousedown: (e) => e.target === root && closePicker() } },
    h(
      "div",
      { class: "picker", role: "dialog", "aria-modal": "true", "aria-label": options.title },
      h("div", { class: "picker-title", text: options.title }),
      input,
      h("div", { class: "picker-body" }, list, options.preview ? preview : null),
    ),
  );
  document.body.append(root);
  open = { root, returnFocus };
  /** @type {PickerItem[]} */
  let items = [];
  let active = 0;
  let generation = 0;
  // The query the shown items answer, and an Enter pressed before the
  // answer for the text typed arrived: the pick waits for that answer
  // rather than taking whatever the older list had first.
  /** @type {string | null} */
  let shownQuery = null;
  /** @type {string | null} */
  let pickWhenShown = null;

  const show = () => {
    replace(
      list,
      items.length === 0
        ? h("li", { class: "picker-empty", text: options.empty || "Nothing found" })
        : items.map((item, index) =>
            h(
              "li",
              {
                role: "option",
                id: `picker-option-${index}`,
                class: `picker-item${index === active ? " active" : ""}`,
                "aria-selected": index === active ? "true" : "false",
                dataset: { index },
                on: {
                  mousedown: (e) => {
                    e.preventDefault();
                    pick(index);
                  },
                  mousemove: () => {
                    if (active !== index) {
                      active = index;
                      show();
                    }
                  },
                },
              },
              item.group && (index === 0 || items[index - 1].group !== item.group)
                ? h("span", { class: "picker-group", text: item.group })
                : null,
              h("span", { class: "picker-label", text: item.label }),
              item.hint ? h("span", { class: "picker-hint", text: item.hint }) : null,
            ),
          ),
    );
    input.setAttribute("aria-activedescendant", items.length ? `picker-option-${active}` : "");
    const node = list.querySelector(".active");
    if (node) node.scrollIntoView({ block: "nearest" });
    showPreview();
  };

  let previewGeneration = 0;
  const showPreview = async () => {
    if (!options.preview) return;
    const mine = ++previewGeneration;
    const item = items[active];
    if (!item) {
      replace(preview);
      return;
    }
    const node = await options.preview(item);
    if (mine === previewGeneration && open && open.root === root) replace(preview, node);
  };

  const refresh = async () => {
    const mine = ++generation;
    const query = input.value;
    let found = await options.items(query);
    const extra = options.extra ? options.extra(query, found) : null;
    if (mine !== generation || !open || open.root !== root) return;
    if (extra) found = [...found, extra];
    items = found;
    shownQuery = query;
    active = Math.min(active, Math.max(items.length - 1, 0));
    show();
    if (pickWhenShown === query) {
      pickWhenShown = null;
      pick(active);
    }
  };

  /** @param {number} index */
  const pick = (index) => {
    const item = items[index];
    if (!item) return;
    const query = input.value;
    closePicker();
    options.onPick(item, query);
  };

  input.addEventListener("input", () => {
    active = 0;
    pickWhenShown = null;
    refresh();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || (e.key === "n" && e.ctrlKey)) {
      e.preventDefault();
      active = Math.min(active + 1, items.length - 1);
      show();
    } else if (e.key === "ArrowUp" || (e.key === "p" && e.ctrlKey)) {
      e.preventDefault();
      active = Math.max(active - 1, 0);
      show();
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (shownQuery === input.value) pick(active);
      else pickWhenShown = input.value;
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      closePicker();
    } else if (e.key === "Tab") {
      e.preventDefault();
    }
  });
  input.value = options.initial || "";
  input.focus();
  refresh();
  return { root, input };
}
