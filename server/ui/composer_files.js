// @ts-check
// The composer's files: picked, dropped or pasted, uploaded at once to the
// inbox (POST /inboxes/{id}/attachments) and sent with the message by id.

import { api } from "./api.js";
import { h, replace } from "./dom.js";
import { fileSize } from "./format.js";

/**
 * An uploaded file, or one still uploading (`uploading` holds its name).
 * @typedef {import("./outbox.js").PendingFile & { uploading: string | null }} ComposerFile
 */

/**
 * @param {number} inboxId
 * @param {(text: string) => void} showError
 */
export function composerFiles(inboxId, showError) {
  /** @type {ComposerFile[]} */
  let files = [];
  const input = h("input", { type: "file", multiple: true, hidden: true, "aria-hidden": "true", tabindex: "-1" });
  const list = h("ul", { class: "composer-files", "aria-label": "Attached files" });

  function draw() {
    replace(
      list,
      files.map((f, i) =>
        h(
          "li",
          { class: "file-chip" },
          h("span", { text: f.uploading ? `Uploading ${f.uploading}…` : f.filename }),
          f.size ? h("span", { class: "muted", text: fileSize(f.size) }) : null,
          f.uploading
            ? null
            : h("button", { type: "button", class: "ghost small", "aria-label": `Remove ${f.filename}`, text: "×", on: { click: () => { files.splice(i, 1); draw(); } } }),
        ),
      ),
    );
  }

  /** @param {File[]} picked */
  async function upload(picked) {
    for (const file of picked) {
      /** @type {ComposerFile} */
      const slotItem = { id: 0, filename: file.name, size: 0, uploading: file.name };
      files.push(slotItem);
      draw();
      try {
        const answer = await api("POST", `/inboxes/${inboxId}/attachments`, undefined, {
          raw: file,
          query: { filename: file.name },
          headers: { "Content-Type": file.type || "application/octet-stream" },
        });
        Object.assign(slotItem, answer.attachment, { uploading: null });
      } catch (e) {
        files.splice(files.indexOf(slotItem), 1);
        showError(`${file.name}: ${/** @type {Error} */ (e).message}`);
      }
      draw();
    }
  }

  input.addEventListener("change", () => {
    upload([.../** @type {FileList} */ (input.files)]);
    input.value = "";
  });

  return {
    input,
    list,
    all: () => files,
    uploading: () => files.some((f) => f.uploading),
    clear() {
      files = [];
      draw();
    },
    /**
     * Files dropped on the form or pasted into the text are attached too.
     * @param {HTMLFormElement} form
     * @param {HTMLTextAreaElement} textarea
     */
    acceptFrom(form, textarea) {
      form.addEventListener("dragover", (e) => {
        e.preventDefault();
        form.classList.add("dragging");
      });
      form.addEventListener("dragleave", () => form.classList.remove("dragging"));
      form.addEventListener("drop", (e) => {
        e.preventDefault();
        form.classList.remove("dragging");
        if (e.dataTransfer && e.dataTransfer.files.length) upload([...e.dataTransfer.files]);
      });
      textarea.addEventListener("paste", (e) => {
        const pasted = e.clipboardData ? [...e.clipboardData.files] : [];
        if (pasted.length) {
          e.preventDefault();
          upload(pasted);
        }
      });
    },
  };
}
