// @ts-check
/* The chat app's wiring: the page's messages, the panel's events, other
 * tabs, and the start. */
import { $, closeBtn, composer, dropEl, fileEl, offline, prechat, textEl } from './dom.js';
import { addFiles, send, stopTyping, typed } from './composer.js';
import { submitOffline, submitPrechat } from './forms.js';
import { flush } from './outbox.js';
import { identify, reset, setAttributes, setOpen, track } from './page.js';
import { ensureSession } from './session.js';
import { connect, onSocket, stopSocket } from './socket.js';
import { FRAMED, PAGE, keyName, state, stored, toParent } from './state.js';
import { onFrame, onLost, onReady } from './sync.js';
import { hasFiles } from './views/attachments.js';
import { markRead, renderPending, updateSeen } from './views/messages.js';
import { applyStrings, focusables, sayReady, updateForms, updateNotices } from './views/panel.js';

const w = window, d = document;

onSocket({ frame: onFrame, ready: onReady, lost: onLost });

w.addEventListener('message', function (e) {
  const m = e.data;
  if (!PAGE || e.source !== w.parent || e.origin !== PAGE || !m || m.threadline !== 1) return;
  if (m.type === 'open') setOpen(true);
  else if (m.type === 'close') setOpen(false);
  else if (m.type === 'user') identify(m.id, m.traits || {});
  else if (m.type === 'attributes') setAttributes(m.attributes || {});
  else if (m.type === 'track' && m.name) track(String(m.name), m.props || {});
  else if (m.type === 'locale') {
    state.userLocale = m.locale;
    applyStrings();
  } else if (m.type === 'reset') reset();
});

prechat.addEventListener('submit', submitPrechat);
offline.addEventListener('submit', submitOffline);
composer.addEventListener('submit', function (e) {
  e.preventDefault();
  send();
});
textEl.addEventListener('keydown', function (e) {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
textEl.addEventListener('input', typed);
textEl.addEventListener('blur', stopTyping);
textEl.addEventListener('paste', function (e) {
  if (e.clipboardData && e.clipboardData.files.length) {
    e.preventDefault();
    addFiles(e.clipboardData.files);
  }
});
$('attach').addEventListener('click', function () { fileEl.click(); });
fileEl.addEventListener('change', function () {
  addFiles(fileEl.files);
  fileEl.value = '';
});
closeBtn.addEventListener('click', function () { toParent({ type: 'close' }); });
if (!FRAMED) closeBtn.hidden = true; // the chat page opened on its own

let dragDepth = 0;
d.addEventListener('dragenter', function (e) {
  if (!hasFiles(e) || composer.hidden) return;
  e.preventDefault();
  dragDepth++;
  dropEl.hidden = false;
});
d.addEventListener('dragover', function (e) { if (hasFiles(e)) e.preventDefault(); });
d.addEventListener('dragleave', function () {
  if (--dragDepth <= 0) {
    dragDepth = 0;
    dropEl.hidden = true;
  }
});
d.addEventListener('drop', function (e) {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  dropEl.hidden = true;
  if (!composer.hidden && e.dataTransfer) addFiles(e.dataTransfer.files);
});

// Focus stays in the dialog while it is open; Esc closes it.
d.addEventListener('keydown', function (e) {
  if (e.key === 'Escape' && PAGE) {
    e.preventDefault();
    toParent({ type: 'close' });
    return;
  }
  if (e.key !== 'Tab') return;
  const f = focusables(), a = d.activeElement;
  if (!f.length) return;
  const first = f[0], last = f[f.length - 1], inside = f.indexOf(a) >= 0;
  if (e.shiftKey ? a === first || !inside : a === last || !inside) {
    e.preventDefault();
    (e.shiftKey ? last : first).focus();
  }
});

d.addEventListener('visibilitychange', markRead);
w.addEventListener('online', function () {
  state.attempt = state.sendAttempt = 0;
  updateNotices();
  if (state.token && !state.ws) connect();
  flush();
});
w.addEventListener('offline', updateNotices);
// Another tab of the same visitor: share the session and the queue.
w.addEventListener('storage', function (e) {
  if (e.key === keyName('session') && e.newValue !== JSON.stringify(state.token)) {
    if (e.newValue == null) reset();
    else {
      stopSocket();
      state.token = stored('session');
      state.lastEvent = null;
      state.loaded = false;
      connect();
    }
  } else if (e.key === keyName('pending')) {
    state.pending = stored('pending') || [];
    renderPending();
    updateSeen();
  }
});

applyStrings();
updateForms();
renderPending();
toParent({ type: 'hello' });
if (state.token) {
  connect();
  flush();
} else {
  sayReady();
  if (state.isOpen) ensureSession().catch(function () {});
}
