// @ts-check
// Merging two contacts: pick the duplicate, see what will move, choose
// which record survives, confirm; undo stays one click away for the rest
// of the session.

import { get, post } from "./api.js";
import { h, replace } from "./dom.js";
import { plural } from "./format.js";
import { openPicker } from "./picker.js";
import { toast } from "./toast.js";

/** @param {any} contact */
export function startContactMerge(contact) {
  openPicker({
    title: `Merge ${contact.name} with…`,
    placeholder: "Search contacts by name…",
    empty: "Type a name to find the duplicate.",
    items: async (query) => {
      if (query.trim().length < 1) return [];
      const page = await get("/contacts", { q: query.trim(), limit: 10 }).catch(() => ({ items: [] }));
      return page.items
        .filter((/** @type {any} */ c) => c.id !== contact.id)
        .map((/** @type {any} */ c) => ({ id: c.id, label: c.name, hint: (c.identities || []).map((/** @type {any} */ i) => i.value).slice(0, 2).join(", "), contact: c }));
    },
    onPick: (item) => showMergeDialog(contact, item.contact),
  });
}

// Straight to the merge dialog for a pair already known (a merge
// suggestion): `contact` survives unless the agent swaps them.
/**
 * @param {any} contact
 * @param {any} other
 */
export function reviewMerge(contact, other) {
  return showMergeDialog(contact, other);
}

/**
 * @param {any} first
 * @param {any} second
 */
async function showMergeDialog(first, second) {
  let survivor = first;
  let merged = second;
  const body = h("div", { class: "merge-body" });
  const confirm = h("button", { type: "button", class: "primary", text: "Merge" });
  const cancel = h("button", { type: "button", class: "ghost", text: "Cancel" });
  const swap = h("button", { type: "button", class: "ghost", text: "Keep the other one instead" });
  const dialog = h(
    "div",
    { class: "picker-backdrop" },
    h("div", { class: "merge-dialog", role: "dialog", "aria-modal": "true", "aria-label": "Merge contacts" }, h("h2", { text: "Merge contacts" }), body, h("div", { class: "dialog-buttons" }, swap, cancel, confirm)),
  );
  const back = document.activeElement;
  const close = () => {
    dialog.remove();
    if (back && document.contains(back)) /** @type {HTMLElement} */ (back).focus();
  };
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      close();
    }
  });
  cancel.addEventListener("click", close);

  const draw = async () => {
    replace(body, h("p", { class: "muted", text: "Checking what will move…" }));
    let preview;
    try {
      preview = await get(`/contacts/${survivor.id}/merge_preview`, { other_id: merged.id });
    } catch (e) {
      replace(body, h("p", { class: "composer-error", text: /** @type {Error} */ (e).message }));
      confirm.disabled = true;
      return;
    }
    confirm.disabled = false;
    const conversationCount = preview.conversations.length + (preview.hidden_conversations || 0);
    const moves = [
      plural(conversationCount, "conversation", "conversations"),
      plural(preview.identities.length, "identity", "identities"),
      plural(preview.tracked_events, "tracked event", "tracked events"),
      plural(preview.attributes_added.length, "attribute", "attributes"),
    ];
    replace(
      body,
      h("p", null, "Keep ", h("strong", { text: survivor.name }), ` (#${survivor.id}) and move everything of `, h("strong", { text: merged.name }), ` (#${merged.id}) into it:`),
      h("ul", { class: "merge-moves" }, moves.map((m) => h("li", { text: m }))),
      (preview.conversations || []).length
        ? h("ul", { class: "merge-conversations" }, preview.conversations.map((/** @type {any} */ c) => h("li", { text: `#${c.id} ${c.subject || ""} (${c.status})` })))
        : null,
      preview.attributes_conflicting.length
        ? h("p", { class: "muted", text: `Kept from ${survivor.name} where both differ: ${preview.attributes_conflicting.join(", ")}` })
        : null,
    );
  };
  swap.addEventListener("click", () => {
    [survivor, merged] = [merged, survivor];
    draw();
  });
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    try {
      const merge = await post(`/contacts/${survivor.id}/merge`, { other_id: merged.id });
      close();
      location.hash = `#/contact/${survivor.id}`;
      toast(`Merged ${merged.name} into ${survivor.name}`, {
        action: {
          label: "Undo",
          run: async () => {
            try {
              await post(`/contact_merges/${merge.id}/undo`, {});
              toast("Merge undone");
            } catch (e) {
              toast(`Couldn't undo: ${/** @type {Error} */ (e).message}`, { error: true });
            }
          },
        },
        ms: 60000,
      });
    } catch (e) {
      replace(body, h("p", { class: "composer-error", text: /** @type {Error} */ (e).message }));
    }
  });
  document.body.append(dialog);
  confirm.focus();
  await draw();
}
