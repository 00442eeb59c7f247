// @ts-check
/* The pre-chat and offline forms: checked here, then sent. */
import { errorText, request } from './api.js';
import { field, offline, prechat, textEl, thanks } from './dom.js';
import { queueMessage } from './outbox.js';
import { ensureSession } from './session.js';
import { state, store, uuid } from './state.js';
import { t } from './strings.js';
import { updateForms } from './views/panel.js';

/** @typedef {import('./state.js').Answer} Answer */
/** @typedef {import('./dom.js').Field} Field */

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Checks a form's fields; shows the first problem and focuses its field.
 * @param {HTMLFormElement} form
 * @param {[Field, string][]} fields each with the word that names it */
function check(form, fields) {
  /** @type {[Field, string] | null} */
  let problem = null;
  form.querySelectorAll('[aria-invalid]').forEach(function (el) { el.removeAttribute('aria-invalid'); });
  fields.some(function (f) {
    const el = f[0], value = el.value.trim();
    if (el.offsetParent === null) return false;
    if (!value && el.required) problem = [el, t('required', { field: t(f[1]) })];
    else if (value && el.type === 'email' && !EMAIL.test(value)) problem = [el, t('badEmail')];
    return !!problem;
  });
  showError(form, problem && problem[1], problem && problem[0]);
  return !problem;
}

/** @param {HTMLFormElement} form
 * @param {string | null} text
 * @param {HTMLElement | null} [fieldEl] */
function showError(form, text, fieldEl) {
  /** @type {HTMLElement} */ (form.querySelector('.error')).textContent = text || '';
  if (fieldEl) {
    fieldEl.setAttribute('aria-invalid', 'true');
    fieldEl.focus();
  }
}

/** The form's field the server's error names, if any.
 * @param {HTMLFormElement} form
 * @param {Answer} r
 * @returns {HTMLElement | null} */
function fieldOf(form, r) {
  const f = r && r.data && r.data.error && r.data.error.field;
  return f ? form.querySelector('[name="' + f.replace(/[^a-z_]/g, '') + '"]') : null;
}

/** @param {SubmitEvent} e */
export function submitPrechat(e) {
  e.preventDefault();
  const name = field('prechat-name'), email = field('prechat-email'), text = field('prechat-text');
  if (!check(prechat, [[name, 'name'], [email, 'email'], [text, 'message']])) return;
  /** @type {{name?: string, email?: string}} */
  const body = {};
  if (name.value.trim() && name.offsetParent !== null) body.name = name.value.trim();
  if (email.value.trim() && email.offsetParent !== null) body.email = email.value.trim();
  const go = function () {
    store('prechat', 1);
    queueMessage(text.value.trim());
    text.value = '';
    showError(prechat, '');
    updateForms();
    textEl.focus();
  };
  if (!body.name && !body.email) return go();
  // An inbox that accepts only verified identities takes these as
  // attributes (what they are: claims).
  const strict = state.inbox && state.inbox.require_verification;
  ensureSession().then(function () {
    return strict ? request('POST', '/attributes', { attributes: body }) : request('POST', '/identify', body);
  }).then(function (r) {
    if (r.ok) return go();
    showError(prechat, errorText(r), fieldOf(prechat, r));
  }, function () { showError(prechat, t('error')); });
}

/** @param {SubmitEvent} e */
export function submitOffline(e) {
  e.preventDefault();
  const email = field('offline-email'), name = field('offline-name'), text = field('offline-text');
  if (!check(offline, [[email, 'email'], [name, 'name'], [text, 'message']])) return;
  const id = state.offlineId = state.offlineId || uuid();
  /** @type {{email: string, text: string, client_id: string, name?: string}} */
  const body = { email: email.value.trim(), text: text.value.trim(), client_id: id };
  if (name.value.trim()) body.name = name.value.trim();
  ensureSession().then(function () { return request('POST', '/offline', body); }).then(function (r) {
    if (!r.ok) return showError(offline, errorText(r), fieldOf(offline, r));
    state.offlineId = null;
    state.thanksFor = body.email;
    thanks.textContent = t('thanks', { email: state.thanksFor });
    text.value = '';
    showError(offline, '');
    updateForms();
    thanks.setAttribute('tabindex', '-1');
    thanks.focus();
  }, function () { showError(offline, t('error')); });
}
