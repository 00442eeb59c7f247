// @ts-check
/* The composer: sending, the visitor's typing indicator, attachments. */
import { errorText, postAttachment } from './api.js';
import { textEl } from './dom.js';
import { queueMessage } from './outbox.js';
import { ensureSession } from './session.js';
import { sendFrame } from './socket.js';
import { state } from './state.js';
import { t } from './strings.js';
import { renderChips } from './views/attachments.js';

export function send() {
  const text = textEl.value.trim();
  if (state.chips.some(function (c) { return c.state === 'up'; })) return;
  const att = state.chips.flatMap(function (c) { return c.att ? [c.att] : []; });
  if (!text && !att.length) return;
  textEl.value = '';
  state.chips = [];
  renderChips();
  stopTyping();
  autosize();
  queueMessage(text, att);
}

export function typed() {
  autosize();
  const conv = state.conv;
  if (!conv || !state.live) return;
  if (!textEl.value) return stopTyping();
  const now = Date.now();
  if (!state.typingOn || now - state.typingAt > 3000) {
    sendFrame({ type: 'typing', conversation_id: conv.id, typing: true });
    state.typingOn = true;
    state.typingAt = now;
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(stopTyping, 4000);
}

export function stopTyping() {
  clearTimeout(state.typingTimer);
  if (state.typingOn && state.conv) sendFrame({ type: 'typing', conversation_id: state.conv.id, typing: false });
  state.typingOn = false;
}

function autosize() {
  textEl.style.height = 'auto';
  textEl.style.height = Math.min(textEl.scrollHeight, 140) + 'px';
}

/** @param {FileList | null | undefined} files */
export function addFiles(files) {
  Array.prototype.forEach.call(files || [], upload);
}

/** @param {File} file */
function upload(file) {
  if (state.chips.length >= 10) return; // the most one message carries
  /** @type {import('./state.js').Chip} */
  const chip = { name: file.name || 'file', state: 'up' };
  state.chips.push(chip);
  renderChips();
  ensureSession().then(function () { return postAttachment(file, chip.name); }).then(function (r) {
    if (!r.ok || !r.data || !r.data.attachment) throw { data: r.data };
    chip.att = r.data.attachment;
    chip.state = 'ok';
  }).catch(function (r) {
    chip.state = 'err';
    chip.error = r && r.data ? errorText(r) : t('uploadFailed');
  }).then(renderChips);
}
