// @ts-check
// Canned responses in the composer: the `/` picker, with each response
// rendered for this conversation (its variables filled) as a live preview.

import { get, post } from "./api.js";
import { h } from "./dom.js";
import { plural } from "./format.js";
import { openPicker } from "./picker.js";

const previews = new Map(); // `${id}:${conversationId}` -> Promise<preview>

export function invalidateCanned() {
  previews.clear();
}

/**
 * @param {number} id
 * @param {number} conversationId
 * @returns {Promise<any>}
 */
function previewOf(id, conversationId) {
  const key = `${id}:${conversationId}`;
  if (!previews.has(key)) {
    const pending = post(`/canned_responses/${id}/preview`, { conversation_id: conversationId });
    pending.catch(() => previews.delete(key));
    previews.set(key, pending);
  }
  return previews.get(key);
}

/**
 * @param {import("./state.js").Conversation} conversation
 * @param {string} initial
 * @param {(response: any) => void} onPick
 */
export function openCannedPicker(conversation, initial, onPick) {
  openPicker({
    title: "Canned responses",
    placeholder: "Shortcut or words…",
    className: "canned-picker",
    empty: "No canned response matches. Add some under Settings.",
    initial,
    items: async (query) => {
      const page = await get("/canned_responses", {
        q: query.replace(/^\//, "").trim(),
        inbox_id: conversation.inbox_id,
        limit: 20,
      }).catch(() => ({ items: [] }));
      return page.items.map((/** @type {any} */ r) => ({ id: r.id, label: `/${r.shortcut}`, hint: r.title, response: r }));
    },
    preview: async (item) => {
      try {
        const rendered = await previewOf(item.id, conversation.id);
        return h(
          "div",
          { class: "canned-preview" },
          h("div", { class: "canned-preview-title", text: item.response.title }),
          h("div", { class: "canned-preview-text", text: rendered.text }),
          rendered.attachments.length
            ? h("ul", { class: "canned-preview-files" }, rendered.attachments.map((/** @type {any} */ f) => h("li", { text: f.filename })))
            : null,
          h("div", { class: "muted", text: `Used ${plural(item.response.usage_count, "time", "times")}` }),
        );
      } catch {
        return h("p", { class: "muted", text: "Preview unavailable." });
      }
    },
    onPick: async (item) => {
      const rendered = await previewOf(item.id, conversation.id).catch(() => ({ text: item.response.body, attachments: [] }));
      onPick({ id: item.id, text: rendered.text, attachments: rendered.attachments });
    },
  });
}
