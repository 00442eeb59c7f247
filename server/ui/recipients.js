// @ts-check
// To and Cc of an email reply, filled with who the reply goes to unless
// the agent changes it (GET /conversations/{id}/email_defaults). Until
// those arrive (or if they can't), an untouched reply leaves the choice
// to the server, which uses the same defaults.

import { get } from "./api.js";
import { h, replace } from "./dom.js";

/**
 * @typedef {{ input: HTMLInputElement, error: HTMLParagraphElement, label: string,
 *   touched: boolean, row: HTMLDivElement }} AddressField
 * @typedef {{ to: string[], cc: string[] }} Chosen
 * @typedef {{ el: HTMLDivElement, subject: HTMLParagraphElement,
 *   showFor(mode: string): void, read(): Chosen | {} | null,
 *   mark(name: string, text: string): boolean, clearErrors(): void }} Recipients
 */

const ADDRESS = /^[^\s@<>()\[\],;:"]+@[^\s@<>()\[\],;:"]+\.[^\s@<>()\[\],;:".]+$/;

// Split at commas and semicolons, except inside a quoted name ("Doe, Jane").
/** @param {string} value */
function splitList(value) {
  const parts = [];
  let part = "";
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && (ch === "," || ch === ";")) {
      parts.push(part);
      part = "";
    } else {
      part += ch;
    }
  }
  parts.push(part);
  return parts;
}

// "Sam <sam@x.test>, pat@y.test; lee@z.test" -> addresses, and what isn't one.
/** @param {unknown} value */
export function parseAddresses(value) {
  /** @type {string[]} */
  const addresses = [];
  /** @type {string[]} */
  const bad = [];
  for (const part of splitList(String(value))) {
    const trimmed = part.trim();
    if (!trimmed) continue;
    const bracketed = /<([^<>]*)>\s*$/.exec(trimmed);
    // "a@x.test b@y.test" is two addresses; "lee at acme" is one mistake.
    const candidates = bracketed ? [bracketed[1].trim()] : trimmed.split(/\s+/);
    if (!candidates.every((c) => ADDRESS.test(c))) {
      bad.push(trimmed);
      continue;
    }
    for (const candidate of candidates) {
      if (!addresses.some((a) => a.toLowerCase() === candidate.toLowerCase())) addresses.push(candidate);
    }
  }
  return { addresses, bad };
}

// The recipients a pending reply shows in its "Sending…" bubble.
/** @param {{ to?: string[], cc?: string[] }} body */
export function pendingRecipients(body) {
  /** @param {string[] | undefined} addresses */
  const list = (addresses) => (addresses || []).map((address) => ({ name: "", address }));
  return { to: list(body.to), cc: list(body.cc) };
}

/**
 * @param {HTMLInputElement} input
 * @param {HTMLElement} error
 */
function clear(input, error) {
  input.removeAttribute("aria-invalid");
  error.textContent = "";
}

/**
 * @param {AddressField} f
 * @param {string} text
 */
function fail(f, text) {
  f.input.setAttribute("aria-invalid", "true");
  f.error.textContent = text;
}

/**
 * @param {number} id the conversation's
 * @param {"to" | "cc"} name
 * @param {string} label
 * @param {() => void} onInput
 * @returns {AddressField}
 */
function addressField(id, name, label, onInput) {
  const input = h("input", {
    type: "text",
    id: `composer-${name}-${id}`,
    class: "email-field-input",
    "aria-label": label,
    autocomplete: "off",
    spellcheck: "false",
    inputmode: "email",
    placeholder: name === "to" ? "Loading…" : "Add addresses, separated by commas",
  });
  const error = h("p", { class: "field-error", id: `composer-${name}-error-${id}`, role: "alert" });
  input.setAttribute("aria-describedby", error.id);
  const row = h("div", { class: `email-field email-field-${name}` }, h("label", { for: input.id, text: label }), input, error);
  const f = { input, error, label, touched: false, row };
  input.addEventListener("input", () => {
    f.touched = true;
    onInput();
    clear(input, error);
  });
  return f;
}

// Enter moves on (To → Cc → the message) rather than sending half a reply.
/**
 * @param {HTMLInputElement} input
 * @param {() => HTMLElement} next
 */
function enterMovesOn(input, next) {
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      next().focus();
    } else if (e.key === "Escape") {
      input.blur();
    }
  });
}

/**
 * @param {{ id: number }} conversation
 * @param {() => HTMLTextAreaElement} textarea
 * @returns {Recipients}
 */
export function emailRecipients(conversation, textarea) {
  const id = conversation.id;
  let ready = false;
  const to = addressField(id, "to", "To", () => (ready = true));
  const cc = addressField(id, "cc", "Cc", () => (ready = true));
  // No Cc row until there is one, or the agent asks for it.
  /** @param {boolean} focus */
  const showCc = (focus) => {
    cc.row.hidden = false;
    ccButton.hidden = true;
    if (focus) cc.input.focus();
  };
  const ccButton = h("button", { type: "button", class: "link email-cc-toggle", "aria-label": "Add Cc", text: "Cc", on: { click: () => showCc(true) } });
  to.row.append(ccButton);
  cc.row.hidden = true;
  const subject = h("p", { class: "email-subject-line", hidden: true });
  const warning = h("p", { class: "email-warning", role: "status", hidden: true });
  const el = h("div", { class: "email-fields", role: "group", "aria-label": "Email recipients" }, to.row, cc.row, warning);
  enterMovesOn(to.input, () => (cc.row.hidden ? textarea() : cc.input));
  enterMovesOn(cc.input, textarea);

  get(`/conversations/${id}/email_defaults`).then(
    (defaults) => {
      to.input.placeholder = "Add addresses, separated by commas";
      // What the agent typed before they arrived stands.
      if (!to.touched) to.input.value = (defaults.to || []).join(", ");
      if (!cc.touched) cc.input.value = (defaults.cc || []).join(", ");
      if (cc.input.value) showCc(false);
      ready = true;
      showDefaults(defaults, subject, warning);
    },
    () => {
      to.input.placeholder = "The customer's address (from the thread)";
    },
  );

  return {
    el,
    subject,
    showFor(mode) {
      // A note stays with the agents: no recipients, no subject.
      el.hidden = mode === "note";
      subject.classList.toggle("note-hidden", mode === "note");
    },
    // The recipients to send with, {} to leave them to the server, or
    // null when a field holds something that isn't an address.
    read: () => (ready ? readFields(to, cc) : {}),
    mark(name, text) {
      if (name === "cc") showCc(false);
      fail(name === "cc" ? cc : to, text);
      return true;
    },
    clearErrors() {
      clear(to.input, to.error);
      clear(cc.input, cc.error);
    },
  };
}

/**
 * The subject line and the addresses that no longer receive mail.
 * @param {{ subject?: string, suppressed?: { address: string, reason: string }[] }} defaults
 * @param {HTMLElement} subject
 * @param {HTMLElement} warning
 */
function showDefaults(defaults, subject, warning) {
  if (defaults.subject) {
    subject.hidden = false;
    subject.title = `Subject: ${defaults.subject}`;
    replace(subject, h("span", { class: "muted", text: "Subject: " }), defaults.subject);
  }
  const blocked = defaults.suppressed || [];
  if (blocked.length) {
    warning.hidden = false;
    warning.textContent = blocked.map((b) => `${b.address} no longer receives mail from us (${b.reason}).`).join(" ");
  }
}

/**
 * @param {AddressField} to
 * @param {AddressField} cc
 * @returns {Chosen | null}
 */
function readFields(to, cc) {
  /** @type {Chosen} */
  const out = { to: [], cc: [] };
  for (const [name, f] of /** @type {const} */ ([["to", to], ["cc", cc]])) {
    const { addresses, bad } = parseAddresses(f.input.value);
    if (bad.length) {
      fail(f, `${f.label}: “${bad[0]}” is not an email address.`);
      f.input.focus();
      return null;
    }
    out[name] = addresses;
  }
  if (!out.to.length) {
    fail(to, "To: add at least one address.");
    to.input.focus();
    return null;
  }
  return out;
}
