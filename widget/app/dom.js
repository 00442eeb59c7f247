// @ts-check
/* The chat page's elements (frame.html) and making new ones. */

/** @template {HTMLElement} [E=HTMLElement]
 * @param {string} id
 * @returns {E} */
export function $(id) { return /** @type {E} */ (document.getElementById(id)); }

export const panel = $('panel'), log = $('log'), pendingBox = $('pending'), typingEl = $('typing');
export const composer = /** @type {HTMLFormElement} */ ($('composer'));
export const textEl = /** @type {HTMLTextAreaElement} */ ($('text'));
export const sendBtn = /** @type {HTMLButtonElement} */ ($('send'));
export const fileEl = /** @type {HTMLInputElement} */ ($('file'));
export const chipsEl = $('chips'), thanks = $('thanks'), hoursEl = $('hours'), connEl = $('conn');
export const prechat = /** @type {HTMLFormElement} */ ($('prechat'));
export const offline = /** @type {HTMLFormElement} */ ($('offline'));
export const dropEl = $('drop'), closeBtn = $('close');

/** @typedef {HTMLInputElement | HTMLTextAreaElement} Field */

/** A form's text field, by id.
 * @param {string} id
 * @returns {Field} */
export function field(id) { return /** @type {HTMLInputElement} */ ($(id)); }

/** @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string | null} [cls]
 * @param {string | null} [text]
 * @returns {HTMLElementTagNameMap[K]} */
export function make(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text != null) el.textContent = text;
  return el;
}
