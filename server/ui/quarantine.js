// @ts-check
// Settings → Email quarantine (admins only): mail that reached an inbox
// but could not be taken in (PROTOCOLS.md P4: unparseable, over a limit,
// no sender), newest first, each with its original. The original is shown
// as text in a <pre>, never rendered; new quarantined mail appears live.

import { ApiError, NetworkError, get } from "./api.js";
import { h, replace } from "./dom.js";
import { fileSize, fullTime } from "./format.js";
import { setTitle } from "./notify.js";
import { inboxName, on, state } from "./state.js";

const PAGE = 25;
// The most of an original shown on the page (a mail may be 25 MiB); the
// download has all of it.
const MAX_SHOWN_BYTES = 512 * 1024;
/** @type {Record<string, string>} */
const SOURCES = { smtp: "SMTP", imap: "IMAP", http: "Inbound parse" };

/** @param {HTMLElement} root */
export function showQuarantine(root) {
  setTitle("Email quarantine");
  const page = h("main", { class: "settings-page", "aria-label": "Settings" });
  replace(root, page);
  const header = h("header", { class: "settings-header" }, h("h1", { text: "Email quarantine" }));
  if (!state.me || state.me.role !== "admin") {
    replace(page, header, adminsOnly());
    return;
  }
  const list = h("div", { class: "quarantine-list" });
  const status = h("p", { class: "muted", role: "status", text: "Loading…" });
  const more = h("button", { type: "button", class: "ghost", text: "Load more", hidden: true });
  replace(
    page,
    header,
    h("p", { class: "muted", text: "Mail that reached an inbox but could not be taken in. Nothing here became a conversation; the original is kept for you to look at." }),
    list,
    status,
    h("div", { class: "quarantine-more" }, more),
  );

  /** @type {any[]} */
  let items = [];
  /** @type {string | null} */
  let cursor = null;
  let loaded = false;

  const draw = () => {
    if (!loaded) return;
    replace(
      list,
      items.length
        ? h("table", { class: "settings-table quarantine-table" },
            h("thead", null, h("tr", null, ["Received", "Inbox", "Source", "From / subject", "Size", "Reason", ""].map((t) => h("th", { text: t })))),
            h("tbody", null, items.map(row)))
        : h("p", { class: "muted empty-quarantine", text: "Nothing in quarantine." }),
    );
    more.hidden = !cursor;
  };

  /** @param {any} error */
  const failed = (error) => {
    if (error instanceof ApiError && error.status === 403) replace(page, header, adminsOnly());
    else status.textContent = `Couldn't load the quarantine: ${error.message}`;
  };

  /** @param {string | null} after */
  const fetchPage = (after) => get("/inbound_mails", { status: "quarantined", limit: PAGE, cursor: after });

  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const next = await fetchPage(cursor);
      const known = new Set(items.map((m) => m.id));
      items = [...items, ...next.items.filter((/** @type {any} */ m) => !known.has(m.id))];
      cursor = next.next_cursor;
      draw();
    } catch (error) {
      failed(error);
    } finally {
      more.disabled = false;
    }
  });

  // Live: a newly quarantined mail is newer than everything listed, so
  // it goes on top; pages already loaded stay.
  const refresh = async () => {
    try {
      const first = await fetchPage(null);
      const known = new Set(items.map((m) => m.id));
      const fresh = first.items.filter((/** @type {any} */ m) => !known.has(m.id));
      if (!items.length || fresh.length === first.items.length) {
        // First load, or so much arrived that the first page doesn't
        // reach what was listed: start over from the first page.
        items = first.items;
        cursor = first.next_cursor;
      } else {
        items = [...fresh, ...items];
      }
      loaded = true;
      status.textContent = "";
      draw();
    } catch (error) {
      failed(error);
    }
  };
  on("quarantine", refresh, page);
  on("directory", draw, page);
  refresh();
}

function adminsOnly() {
  return h(
    "div",
    { class: "admins-only", role: "note" },
    h("p", { text: "Email quarantine is for admins only." }),
    h("p", { class: "muted", text: "Ask an admin of your workspace if a mail seems to be missing." }),
  );
}

/** @param {any} mail an inbound mail */
function row(mail) {
  const raw = `/api/v1/inbound_mails/${Number(mail.id)}/raw`;
  const from = mail.from_address || mail.envelope_from;
  return h(
    "tr",
    { dataset: { mailId: mail.id } },
    h("td", null, h("time", { datetime: mail.created_at, text: fullTime(mail.created_at) })),
    h("td", { text: inboxName(mail.inbox_id) }),
    h("td", { text: SOURCES[mail.source] || mail.source }),
    h(
      "td",
      { class: "quarantine-mail" },
      h("div", { class: from ? "" : "muted", text: from || "unknown sender" }),
      h("div", { class: mail.subject ? "muted" : "muted unknown", text: mail.subject || "no subject" }),
    ),
    h("td", { class: "number", text: fileSize(mail.size) }),
    h("td", { class: "quarantine-reason", text: mail.reason || "" }),
    h(
      "td",
      { class: "quarantine-actions" },
      h("button", { type: "button", class: "ghost small", text: "View original", on: { click: () => showOriginal(mail) } }),
      h("a", { href: `${raw}?download=1`, download: `mail-${Number(mail.id)}.eml`, class: "download", text: "Download" }),
    ),
  );
}

// The raw bytes, as text: at most MAX_SHOWN_BYTES of them (decoded as
// UTF-8 with replacement characters for anything else). Errors come back
// as the api module's, so they read the same as everywhere else.
/** @param {number} mailId */
async function fetchOriginal(mailId) {
  let response;
  try {
    response = await fetch(`/api/v1/inbound_mails/${Number(mailId)}/raw`, { credentials: "same-origin" });
  } catch (error) {
    throw new NetworkError(String(error));
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    if (response.status === 401) window.dispatchEvent(new CustomEvent("threadline:signed-out"));
    throw new ApiError(response.status, body);
  }
  const reader = /** @type {ReadableStream<Uint8Array>} */ (response.body).getReader();
  const chunks = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size > MAX_SHOWN_BYTES) {
      truncated = true;
      await reader.cancel();
      break;
    }
  }
  const bytes = new Uint8Array(Math.min(size, MAX_SHOWN_BYTES));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - at);
    bytes.set(part, at);
    at += part.length;
    if (at >= bytes.length) break;
  }
  return { text: new TextDecoder("utf-8").decode(bytes), truncated };
}

/** @param {any} mail */
async function showOriginal(mail) {
  const body = h("pre", { class: "original-text", tabindex: "0", "aria-label": "Original message" }, "Loading…");
  const note = h("p", { class: "muted original-note" });
  const close = h("button", { type: "button", class: "primary", text: "Close" });
  const dialog = h(
    "div",
    { class: "picker-backdrop", on: { mousedown: (e) => e.target === dialog && done() } },
    h(
      "div",
      { class: "original-dialog", role: "dialog", "aria-modal": "true", "aria-label": "Original message" },
      h("h2", { text: `Original of mail #${Number(mail.id)}` }),
      h("p", { class: "muted", text: `${fileSize(mail.size)} · ${mail.reason || ""}` }),
      body,
      note,
      h(
        "div",
        { class: "dialog-buttons" },
        h("a", { href: `/api/v1/inbound_mails/${Number(mail.id)}/raw?download=1`, download: `mail-${Number(mail.id)}.eml`, class: "download", text: "Download" }),
        close,
      ),
    ),
  );
  const back = document.activeElement;
  function done() {
    dialog.remove();
    if (back && document.contains(back)) /** @type {HTMLElement} */ (back).focus();
  }
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      done();
    }
  });
  close.addEventListener("click", done);
  document.body.append(dialog);
  close.focus();
  try {
    const { text, truncated } = await fetchOriginal(mail.id);
    body.textContent = text;
    note.textContent = truncated ? `Showing the first ${fileSize(MAX_SHOWN_BYTES)}; download it for the whole message.` : "";
  } catch (error) {
    body.textContent = "";
    note.textContent = `Couldn't load the original: ${/** @type {Error} */ (error).message}`;
    note.classList.add("composer-error");
  }
}
