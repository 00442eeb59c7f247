// @ts-check
/* The panel around the log: words and colours, the launcher's labels, the
 * notices (hours, connection), which form shows (chat, pre-chat, offline,
 * thanks) and where the focus goes. */
import {
  $, closeBtn, composer, connEl, field, hoursEl, log, offline, panel, prechat, textEl, thanks, typingEl
} from '../dom.js';
import { state, stored, toParent } from '../state.js';
import { pickLocale, t } from '../strings.js';
import { renderChips } from './attachments.js';
import { clock, renderPending, updateSeen } from './messages.js';

export function applyStrings() {
  const d = document, inbox = state.inbox;
  state.lang = pickLocale();
  d.documentElement.lang = state.lang;
  d.querySelectorAll('[data-t]').forEach(function (el) { el.textContent = t(el.getAttribute('data-t') || ''); });
  d.querySelectorAll('[data-t-label]').forEach(function (el) {
    el.setAttribute('aria-label', t(el.getAttribute('data-t-label') || ''));
  });
  textEl.placeholder = t('placeholder');
  const name = (inbox && inbox.name) || t('title');
  $('title').textContent = d.title = name;
  panel.setAttribute('aria-label', name);
  log.querySelectorAll('time').forEach(function (el) { el.textContent = clock(el.dateTime); });
  log.querySelectorAll('[data-who]').forEach(function (el) {
    el.textContent = t(el.getAttribute('data-who') || '') + ' ';
  });
  renderPending();
  renderChips();
  updateSeen();
  updateNotices();
  if (typingEl.textContent) typingEl.textContent = t('typing');
  if (state.thanksFor) thanks.textContent = t('thanks', { email: state.thanksFor });
  sayReady(true);
}

function labels() {
  const inbox = state.inbox;
  return { open: t('open'), close: t('close'), unread: t('unread'), title: (inbox && inbox.name) || t('title') };
}

/** The inbox's colour and the ink that reads on it, if it has a valid one. */
function accent() {
  let c = state.inbox && state.inbox.color;
  if (!c || !/^#([0-9a-f]{3}){1,2}$/i.test(c)) return null;
  if (c.length === 4) c = '#' + c[1] + c[1] + c[2] + c[2] + c[3] + c[3];
  const n = parseInt(c.slice(1), 16);
  const lum = (0.299 * (n >> 16) + 0.587 * (n >> 8 & 255) + 0.114 * (n & 255)) / 255;
  return { color: c, ink: lum > 0.6 ? '#111827' : '#ffffff' };
}

export function applyInbox() {
  const a = accent(), root = document.documentElement.style;
  if (a) {
    root.setProperty('--accent', a.color);
    root.setProperty('--on-accent', a.ink);
  }
  $('greeting').textContent = (state.inbox && state.inbox.greeting) || '';
  applyStrings();
  updateForms();
}

/** Tells the loader the launcher's labels and colour; `ready` once.
 * @param {boolean} [labelsOnly] */
export function sayReady(labelsOnly) {
  const a = accent();
  toParent({
    type: labelsOnly || state.readySent ? 'labels' : 'ready', labels: labels(),
    color: a ? a.color : undefined, ink: a ? a.ink : undefined
  });
  if (!labelsOnly) state.readySent = true;
}

/** How much the inbox's pre-chat form asks for a field: 0 not, 1 optional, 2 required.
 * @param {string} name */
function asks(name) {
  const p = state.inbox && state.inbox.prechat;
  if (!p || p.enabled === false) return 0;
  if (Array.isArray(p.required) && p.required.indexOf(name) >= 0) return 2;
  if (Array.isArray(p.fields)) return p.fields.indexOf(name) >= 0 ? 1 : 0;
  const v = p[name];
  if (v && typeof v === 'object') {
    const o = /** @type {{required?: unknown, ask?: unknown, enabled?: unknown}} */ (v);
    return o.required ? 2 : o.ask === false || o.enabled === false ? 0 : 1;
  }
  return v === 'required' ? 2 : v === true || v === 'optional' || v === 'ask' ? 1 : 0;
}

/** The pre-chat fields still to ask this visitor for. */
function prechatFields() {
  const contact = state.contact;
  if (stored('prechat') || (contact && contact.verified)) return [];
  return ['name', 'email'].filter(function (f) {
    return asks(f) && !(contact && (f === 'email' ? contact.has_email : contact.name));
  });
}

function hasOpenConversation() {
  return (state.conv && state.conv.status !== 'resolved') || state.pending.length > 0;
}

/** Shows the chat, the pre-chat form, the offline form or the thanks. */
export function updateForms() {
  let mode = 'chat';
  const availability = state.availability;
  if (state.gone) mode = 'none';
  else if (state.thanksFor) mode = 'thanks';
  else if (!hasOpenConversation() && availability && availability.agents_online === false) mode = 'offline';
  else if (!hasOpenConversation() && prechatFields().length) mode = 'prechat';
  const was = composer.hidden ? prechat.hidden ? offline.hidden ? 'thanks' : 'offline' : 'prechat' : 'chat';
  if (mode === 'prechat') {
    const fields = prechatFields();
    ['name', 'email'].forEach(function (f) {
      const need = asks(f), row = $('prechat-' + f + '-field');
      row.hidden = fields.indexOf(f) < 0;
      /** @type {HTMLElement} */ (row.querySelector('.opt')).hidden = need === 2;
      field('prechat-' + f).required = need === 2;
    });
  }
  composer.hidden = mode !== 'chat';
  prechat.hidden = mode !== 'prechat';
  offline.hidden = mode !== 'offline';
  thanks.hidden = mode !== 'thanks';
  if (mode !== was) {
    // Carry what the visitor already typed over to the form now shown.
    const into = mode === 'prechat' ? field('prechat-text') : mode === 'offline' ? field('offline-text') : null;
    if (into && !into.value) into.value = textEl.value;
    const at = /** @type {HTMLElement | null} */ (document.activeElement);
    if (state.isOpen && document.hasFocus() && (!at || !panel.contains(at) || at.offsetParent === null)) {
      focusFirst();
    }
  }
  updateNotices();
}

export function updateNotices() {
  const a = state.availability || {}, closed = a.open_now === false, inbox = state.inbox;
  hoursEl.hidden = !closed && !a.away_message;
  if (!hoursEl.hidden) {
    const back = a.next_open_at && new Date(a.next_open_at);
    hoursEl.textContent = (a.away_message || (inbox && inbox.away_message) || t('away')) +
      (closed && back && !isNaN(back.getTime()) ? ' ' + t('back', {
        when: back.toLocaleString(state.lang, { weekday: 'long', hour: '2-digit', minute: '2-digit' })
      }) : '');
  }
  clearTimeout(state.connTimer);
  if (connEl.textContent === t('unavailable') && !state.token) return;
  if (!navigator.onLine) {
    connEl.textContent = t('offline');
    connEl.hidden = false;
  } else if (state.token && state.everLive && !state.live) {
    // Only a disconnection that lasts is worth a notice.
    state.connTimer = setTimeout(function () {
      connEl.textContent = t('reconnecting');
      connEl.hidden = state.live;
    }, 3000);
  } else {
    connEl.hidden = true;
  }
}

/** The inbox does not exist (any more): no chat here. */
export function unavailable() {
  state.gone = true;
  connEl.textContent = t('unavailable');
  connEl.hidden = false;
  composer.hidden = true;
}

export function focusFirst() {
  const el = !composer.hidden ? textEl : !thanks.hidden ? closeBtn :
    Array.prototype.filter.call(panel.querySelectorAll('form:not([hidden]) input, form:not([hidden]) textarea'),
      function (/** @type {HTMLElement} */ x) { return x.offsetParent !== null; })[0];
  if (el) el.focus();
}

/** What Tab may reach in the panel. */
export function focusables() {
  return Array.prototype.filter.call(panel.querySelectorAll('a[href],button,input,textarea,[tabindex]'),
    function (/** @type {HTMLInputElement} */ el) {
      return !el.disabled && el.tabIndex >= 0 && el.getClientRects().length > 0;
    });
}
