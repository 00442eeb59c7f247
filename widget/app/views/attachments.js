// @ts-check
/* Attachments: in messages (images shown, files to download) and as chips
 * on the next message while they upload. */
import { blobUrl } from '../api.js';
import { chipsEl, make, sendBtn, textEl } from '../dom.js';
import { state } from '../state.js';
import { t } from '../strings.js';

/** @typedef {import('../state.js').Attachment} Attachment */

/** @param {number} n bytes */
function size(n) {
  return n < 1024 ? n + ' B' : n < 1048576 ? Math.round(n / 1024) + ' KB' : (n / 1048576).toFixed(1) + ' MB';
}

/** A link that fetches the file with the session, then downloads it.
 * @param {Attachment} a */
function fileLink(a) {
  const link = make('a', 'file', a.filename + (a.size ? ' (' + size(a.size) + ')' : ''));
  link.href = '#';
  link.download = a.filename;
  link.setAttribute('aria-label', t('download', { name: a.filename }));
  link.addEventListener('click', function (e) {
    if (link.getAttribute('data-ready')) return;
    e.preventDefault();
    blobUrl(a.id).then(function (url) {
      link.href = url;
      link.setAttribute('data-ready', '1');
      link.click();
    }, function () { link.textContent = a.filename + ' — ' + t('error'); });
  });
  return link;
}

/** @param {Attachment[]} list */
export function attachmentsEl(list) {
  const box = make('div', 'files');
  list.forEach(function (a) {
    if (!a || a.id == null) return;
    if (!a.image) return box.appendChild(fileLink(a));
    const holder = make('a', 'image');
    holder.target = '_blank';
    holder.rel = 'noopener';
    const img = make('img');
    img.alt = a.filename || '';
    holder.appendChild(img);
    box.appendChild(holder);
    blobUrl(a.id).then(function (url) {
      img.src = url;
      holder.href = url;
    }, function () { holder.replaceWith(fileLink(a)); });
  });
  return box;
}

export function renderChips() {
  chipsEl.textContent = '';
  chipsEl.hidden = !state.chips.length;
  state.chips.forEach(function (c) {
    const li = make('li', c.state === 'err' ? 'chip err' : 'chip');
    li.appendChild(make('span', 'name', c.name));
    if (c.state !== 'ok') li.appendChild(make('span', 'state', c.state === 'up' ? t('uploading') : c.error));
    const x = make('button', 'x', '×');
    x.type = 'button';
    x.setAttribute('aria-label', t('remove', { name: c.name }));
    x.addEventListener('click', function () {
      state.chips.splice(state.chips.indexOf(c), 1);
      renderChips();
      textEl.focus();
    });
    li.appendChild(x);
    chipsEl.appendChild(li);
  });
  sendBtn.disabled = state.chips.some(function (c) { return c.state === 'up'; });
}

/** @param {DragEvent} e */
export function hasFiles(e) {
  return !!e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types || [], 'Files') >= 0;
}
