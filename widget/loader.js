/*! Threadline chat widget loader (README: "Embed the chat widget"). The chat
 * runs in an iframe on Threadline's origin, so this page can't read it. */
(function (w, d) {
  'use strict';
  var api = w.Threadline = w.Threadline || {};
  if (api.loaded) return;
  var script = d.currentScript || d.querySelector('script[data-inbox][src*="/widget/loader.js"]');
  var token = script && script.getAttribute('data-inbox');
  if (!token) return console.warn('Threadline: add data-inbox="PUBLIC_TOKEN" to the script tag');
  // Threadline's origin: where this script came from.
  var ORIGIN = new URL(script.src, location.href).origin;
  var queue = api.q || [];
  var handlers = {};
  var outbox = []; // messages for the frame until it says hello
  var up = false, isOpen = false, isReady = false, unread = 0, locale = null;
  var ownTitle = null, pageTitle = '';
  var labels = { open: 'Open chat', close: 'Close chat', unread: '{n} unread', title: 'Chat' };
  var ICONS = {
    open: 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z',
    close: 'M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z'
  };
  var CSS =
    ':host{all:initial;position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px}' +
    'button{position:relative;width:56px;height:56px;padding:0;border:0;' +
    'border-radius:50%;background:#2563eb;color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.3);' +
    'display:flex;align-items:center;justify-content:center}' +
    'button:focus-visible{outline:3px solid #fff;box-shadow:0 0 0 6px #111}' +
    'svg{width:26px;height:26px;fill:currentColor}' +
    'b{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 6px;box-sizing:border-box;' +
    'border-radius:10px;background:#dc2626;color:#fff;font:700 12px/20px system-ui,sans-serif}' +
    'iframe{position:fixed;right:20px;bottom:88px;width:380px;height:min(640px,calc(100% - 108px));' +
    'border:0;border-radius:14px;box-shadow:0 8px 32px rgba(0,0,0,.28);background:transparent}' +
    '[hidden]{display:none}' +
    '@media (max-width:479px){iframe{inset:0;width:100%;height:100%;border-radius:0}}';

  var host = d.createElement('div');
  host.setAttribute('data-threadline', 'launcher');
  var root = host.attachShadow({ mode: 'closed' });
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    root.appendChild(d.createElement('style')).textContent = CSS;
  }
  var btn = root.appendChild(d.createElement('button'));
  btn.type = 'button';
  btn.setAttribute('aria-haspopup', 'dialog');
  btn.setAttribute('aria-controls', 'threadline-chat');
  var svg = btn.appendChild(d.createElementNS('http://www.w3.org/2000/svg', 'svg'));
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  var path = svg.appendChild(d.createElementNS('http://www.w3.org/2000/svg', 'path'));
  var badge = btn.appendChild(d.createElement('b'));
  badge.setAttribute('aria-hidden', 'true');
  var frame = d.createElement('iframe');
  frame.id = 'threadline-chat';
  frame.hidden = true;
  frame.allow = 'autoplay';
  frame.src = ORIGIN + '/widget/frame?inbox=' + encodeURIComponent(token) +
    '&origin=' + encodeURIComponent(location.origin);
  root.appendChild(frame);

  function render() {
    btn.setAttribute('aria-expanded', String(isOpen));
    btn.setAttribute('aria-label', (isOpen ? labels.close : labels.open) +
      (unread ? ', ' + labels.unread.replace('{n}', unread) : ''));
    path.setAttribute('d', isOpen ? ICONS.close : ICONS.open);
    badge.textContent = unread > 9 ? '9+' : unread;
    badge.hidden = !unread;
    frame.title = labels.title;
  }

  function emit(name, data) {
    (handlers[name] || []).slice().forEach(function (fn) {
      try { fn(data); } catch (err) { setTimeout(function () { throw err; }); }
    });
  }

  function post(msg) {
    msg.threadline = 1;
    if (up) frame.contentWindow.postMessage(msg, ORIGIN);
    else outbox.push(msg);
  }

  // Only plain data crosses to the frame (functions, DOM nodes are dropped).
  function plain(value) {
    try { return JSON.parse(JSON.stringify(value === undefined ? null : value)); } catch (e) { return null; }
  }

  function setUnread(n) {
    unread = n > 0 ? n : 0;
    render();
    if (d.title !== ownTitle) pageTitle = d.title; // the page changed its own title
    var want = unread ? '(' + unread + ') ' + pageTitle : pageTitle;
    if (d.title !== want) d.title = want;
    ownTitle = want;
  }

  function open() {
    if (isOpen) return;
    isOpen = true;
    frame.hidden = false;
    render();
    post({ type: 'open' });
    frame.focus();
    emit('open');
  }

  function close(fromFrame) {
    if (!isOpen) return;
    var focused = fromFrame === true || d.activeElement === host;
    isOpen = false;
    frame.hidden = true;
    render();
    post({ type: 'close' });
    if (focused) btn.focus();
    emit('close');
  }

  w.addEventListener('message', function (e) {
    var m = e.data;
    if (e.origin !== ORIGIN || e.source !== frame.contentWindow || !m || m.threadline !== 1) return;
    if (m.type === 'hello') {
      up = true;
      post({ type: isOpen ? 'open' : 'close' });
      if (locale) post({ type: 'locale', locale: locale });
      outbox.splice(0).forEach(post);
    } else if (m.type === 'ready' || m.type === 'labels') {
      if (m.labels) labels = m.labels;
      if (/^#[0-9a-f]{3,8}$/i.test(m.color)) btn.style.background = m.color;
      if (/^#[0-9a-f]{3,8}$/i.test(m.ink)) btn.style.color = m.ink;
      render();
      if (m.type === 'ready' && !isReady) {
        isReady = true;
        emit('ready');
      }
    } else if (m.type === 'unread') {
      setUnread(+m.count || 0);
    } else if (m.type === 'message') {
      // Never the text: the host page must not read the conversation.
      emit('message', { conversationId: +m.conversationId, seq: +m.seq, fromAgent: !!m.fromAgent });
    } else if (m.type === 'close') {
      close(true);
    }
  });

  frame.addEventListener('load', function () {
    setTimeout(function () {
      if (!up) console.warn('Threadline: the chat did not load; is this site in the inbox\'s allowed domains?');
    }, 5000);
  });

  btn.addEventListener('click', function () { isOpen ? close(true) : open(); });

  api.open = open;
  api.close = function () { close(); };
  api.toggle = function () { isOpen ? close() : open(); };
  api.setUser = function (id, traits) {
    post({ type: 'user', id: id == null ? null : String(id), traits: plain(traits) || {} });
  };
  api.setAttributes = function (attributes) { post({ type: 'attributes', attributes: plain(attributes) || {} }); };
  api.track = function (name, props) { post({ type: 'track', name: String(name), props: plain(props) || {} }); };
  api.setLocale = function (l) {
    locale = String(l);
    post({ type: 'locale', locale: locale });
  };
  api.reset = function () {
    post({ type: 'reset' });
    setUnread(0);
  };
  api.on = function (name, fn) {
    if (typeof fn !== 'function') return;
    (handlers[name] = handlers[name] || []).push(fn);
    if (name === 'ready' && isReady) fn();
  };
  api.loaded = true;
  delete api.q;

  render();
  function mount() { d.body.appendChild(host); }
  if (d.body) mount(); else d.addEventListener('DOMContentLoaded', mount);
  queue.forEach(function (call) {
    if (typeof api[call[0]] === 'function') api[call[0]].apply(api, call[1] || []);
  });
})(window, document);
