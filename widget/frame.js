/*! Threadline chat widget: the chat app inside the iframe (F8).
 * Runs on Threadline's origin under a strict CSP. Talks to the REST API under
 * /api/v1/widget (header X-Widget-Session) and to /ws/widget, and to the page
 * that embeds it only through postMessage with an explicit target origin.
 * Every text from a person is rendered with textContent, never as HTML. */
(function () {
  'use strict';
  var w = window, d = document;
  var API = '/api/v1/widget';
  var params = new URLSearchParams(location.search);
  var INBOX = params.get('inbox') || '';
  var FRAMED = w.parent !== w;
  var PAGE = pageOrigin(params.get('origin')); // the embedding page, once checked
  var KEY = 'threadline:' + INBOX + ':';

  var STRINGS = {
    en: {
      title: 'Chat', open: 'Open chat', close: 'Close chat', unread: '{n} unread',
      messages: 'Messages', message: 'Message', placeholder: 'Write a message…', send: 'Send',
      attach: 'Attach a file', drop: 'Drop files here to attach them', remove: 'Remove {name}',
      uploading: 'Uploading…', uploadFailed: 'Upload failed', sending: 'Sending…', failed: 'Not sent',
      seen: 'Seen', typing: 'Agent is typing…', you: 'You:', agent: 'Agent:',
      offline: 'You are offline. Messages will be sent when you are back online.',
      reconnecting: 'Reconnecting…',
      away: 'We are away right now. Leave a message and we will get back to you.',
      back: 'We are back {when}.',
      prechatIntro: 'Before we start, please tell us who you are.', name: 'Name', email: 'Email',
      optional: '(optional)', start: 'Start chat',
      offlineIntro: 'No one is available right now. Leave a message and we will reply by email.',
      leave: 'Send message', thanks: 'Thanks! We will reply to {email}.',
      required: 'Please fill in: {field}.', badEmail: 'Please enter a valid email address.',
      error: 'Something went wrong. Please try again.', download: 'Download {name}',
      unavailable: 'The chat is not available right now.'
    },
    de: {
      title: 'Chat', open: 'Chat öffnen', close: 'Chat schließen', unread: '{n} ungelesen',
      messages: 'Nachrichten', message: 'Nachricht', placeholder: 'Nachricht schreiben…', send: 'Senden',
      attach: 'Datei anhängen', drop: 'Dateien hier ablegen, um sie anzuhängen', remove: '{name} entfernen',
      uploading: 'Wird hochgeladen…', uploadFailed: 'Hochladen fehlgeschlagen', sending: 'Wird gesendet…',
      failed: 'Nicht gesendet', seen: 'Gesehen', typing: 'Ein Mitarbeiter schreibt…', you: 'Sie:',
      agent: 'Support:',
      offline: 'Sie sind offline. Nachrichten werden gesendet, sobald Sie wieder online sind.',
      reconnecting: 'Verbindung wird wiederhergestellt…',
      away: 'Wir sind gerade nicht erreichbar. Hinterlassen Sie eine Nachricht, wir melden uns.',
      back: 'Wir sind wieder da: {when}.',
      prechatIntro: 'Bevor es losgeht: Wie dürfen wir Sie ansprechen?', name: 'Name', email: 'E-Mail',
      optional: '(optional)', start: 'Chat starten',
      offlineIntro: 'Gerade ist niemand erreichbar. Hinterlassen Sie eine Nachricht, wir antworten per E-Mail.',
      leave: 'Nachricht senden', thanks: 'Danke! Wir antworten an {email}.',
      required: 'Bitte ausfüllen: {field}.', badEmail: 'Bitte geben Sie eine gültige E-Mail-Adresse ein.',
      error: 'Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.', download: '{name} herunterladen',
      unavailable: 'Der Chat ist gerade nicht verfügbar.'
    }
  };

  function $(id) { return d.getElementById(id); }
  var panel = $('panel'), log = $('log'), pendingBox = $('pending'), typingEl = $('typing');
  var composer = $('composer'), textEl = $('text'), sendBtn = $('send'), fileEl = $('file');
  var chipsEl = $('chips'), prechat = $('prechat'), offline = $('offline'), thanks = $('thanks');
  var hoursEl = $('hours'), connEl = $('conn'), dropEl = $('drop'), closeBtn = $('close');

  // -- state -------------------------------------------------------------
  var token = stored('session');
  var inbox = null, contact = null, availability = null;
  var conv = null;                 // the open conversation {id, status}
  var msgs = {}, keys = [];        // "conversation:seq" -> {m, el}; keys in order
  var agentRead = {}, myRead = {}; // highest seq read, per conversation
  var pending = stored('pending') || [];
  var failed = [];                 // refused for good (4xx): shown, not retried
  var chips = [];                  // attachments being added to the next message
  var blobs = {};                  // attachment id -> promise of an object URL
  var isOpen = !FRAMED, loaded = false, loading = false, held = [], everLive = false;
  var ws = null, live = false, lastEvent = null, attempt = 0, retryTimer = 0, pinger = 0, awaitingPong = false;
  var sendAttempt = 0, sendTimer = 0, flushing = false, restarts = 0, starting = null, inflight = null;
  var typingOn = false, typingAt = 0, typingTimer = 0, agentTypingTimer = 0, connTimer = 0;
  var unreadSent = -1, readySent = false, thanksFor = null, offlineId = null, gone = false;
  var userLocale = null, lang = 'en', seenEl = null, audio = null;

  // -- small helpers -------------------------------------------------------
  function stored(k) {
    try { return JSON.parse(localStorage.getItem(KEY + k)); } catch (e) { return null; }
  }
  function store(k, v) {
    try {
      if (v == null) localStorage.removeItem(KEY + k);
      else localStorage.setItem(KEY + k, JSON.stringify(v));
    } catch (e) { /* storage blocked: this tab still works */ }
  }
  function make(tag, cls, text) {
    var el = d.createElement(tag);
    if (cls) el.className = cls;
    if (text != null) el.textContent = text;
    return el;
  }
  function t(k, vars) {
    var s = (STRINGS[lang] || STRINGS.en)[k] || STRINGS.en[k] || k;
    return !vars ? s : s.replace(/\{(\w+)\}/g, function (_, v) { return vars && vars[v] != null ? vars[v] : ''; });
  }
  function uuid() {
    if (w.crypto.randomUUID) return w.crypto.randomUUID();
    var b = w.crypto.getRandomValues(new Uint8Array(16));
    b[6] = b[6] & 15 | 64;
    b[8] = b[8] & 63 | 128;
    var h = [].map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }
  function pageOrigin(raw) {
    if (!FRAMED || !raw) return null;
    try {
      var u = new URL(raw);
      var anc = location.ancestorOrigins;
      if (u.origin !== raw || !/^https?:$/.test(u.protocol)) return null;
      if (anc && anc.length && anc[0] !== raw) return null;
      return raw;
    } catch (e) { return null; }
  }
  function toParent(m) {
    if (!PAGE) return;
    m.threadline = 1;
    w.parent.postMessage(m, PAGE);
  }
  function visible() { return isOpen && !d.hidden; }
  function keyOf(m) { return m.conversation_id + ':' + m.seq; }
  function before(a, b) {
    return a.conversation_id < b.conversation_id ||
      (a.conversation_id === b.conversation_id && a.seq < b.seq);
  }
  function errorText(r) {
    return (r && r.data && r.data.error && r.data.error.message) || t('error');
  }

  function request(method, path, body) {
    var headers = {};
    if (token) headers['X-Widget-Session'] = token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(API + path, {
      method: method, headers: headers, credentials: 'omit', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (data) {
        if (r.status === 401 && path !== '/sessions') dropSession();
        return { ok: r.ok, status: r.status, data: data, retry: +r.headers.get('Retry-After') || 0 };
      });
    });
  }

  // -- strings, colour -----------------------------------------------------
  function pickLocale() {
    var wanted = [userLocale].concat(navigator.languages || [], navigator.language, inbox && inbox.locale);
    for (var i = 0; i < wanted.length; i++) {
      var base = wanted[i] && String(wanted[i]).toLowerCase().split(/[-_]/)[0];
      if (base && STRINGS[base]) return base;
    }
    return 'en';
  }

  function applyStrings() {
    lang = pickLocale();
    d.documentElement.lang = lang;
    [].forEach.call(d.querySelectorAll('[data-t]'), function (el) { el.textContent = t(el.getAttribute('data-t')); });
    [].forEach.call(d.querySelectorAll('[data-t-label]'), function (el) {
      el.setAttribute('aria-label', t(el.getAttribute('data-t-label')));
    });
    textEl.placeholder = t('placeholder');
    var name = (inbox && inbox.name) || t('title');
    $('title').textContent = d.title = name;
    panel.setAttribute('aria-label', name);
    [].forEach.call(log.querySelectorAll('time'), function (el) { el.textContent = clock(el.dateTime); });
    [].forEach.call(log.querySelectorAll('[data-who]'), function (el) {
      el.textContent = t(el.getAttribute('data-who')) + ' ';
    });
    renderPending();
    renderChips();
    updateSeen();
    updateNotices();
    if (typingEl.textContent) typingEl.textContent = t('typing');
    if (thanksFor) thanks.textContent = t('thanks', { email: thanksFor });
    sayReady(true);
  }

  function labels() {
    return { open: t('open'), close: t('close'), unread: t('unread'), title: (inbox && inbox.name) || t('title') };
  }

  function accent() {
    var c = inbox && inbox.color;
    if (!/^#([0-9a-f]{3}){1,2}$/i.test(c || '')) return null;
    if (c.length === 4) c = '#' + c[1] + c[1] + c[2] + c[2] + c[3] + c[3];
    var n = parseInt(c.slice(1), 16);
    var lum = (0.299 * (n >> 16) + 0.587 * (n >> 8 & 255) + 0.114 * (n & 255)) / 255;
    return { color: c, ink: lum > 0.6 ? '#111827' : '#ffffff' };
  }

  function applyInbox() {
    var a = accent();
    if (a) {
      d.documentElement.style.setProperty('--accent', a.color);
      d.documentElement.style.setProperty('--on-accent', a.ink);
    }
    $('greeting').textContent = (inbox && inbox.greeting) || '';
    applyStrings();
    updateForms();
  }

  // Tells the loader the launcher's labels and colour; `ready` once.
  function sayReady(labelsOnly) {
    var a = accent() || {};
    toParent({
      type: labelsOnly || readySent ? 'labels' : 'ready', labels: labels(), color: a.color, ink: a.ink
    });
    if (!labelsOnly) readySent = true;
  }

  // -- messages ------------------------------------------------------------
  function clock(iso) {
    var at = iso ? new Date(iso) : new Date();
    return isNaN(at) ? '' : at.toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' });
  }

  var LINK = /\b(?:https?:\/\/|mailto:)[^\s<>"]+/gi;
  function linkify(el, text) {
    var last = 0, m;
    LINK.lastIndex = 0;
    while ((m = LINK.exec(text))) {
      var url = m[0].replace(/[.,;:!?)\]}'"]+$/, '');
      var ok = false;
      try { ok = /^(https?|mailto):$/.test(new URL(url).protocol); } catch (e) { ok = false; }
      if (!ok) continue;
      el.appendChild(d.createTextNode(text.slice(last, m.index)));
      var a = make('a', null, url);
      a.href = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      el.appendChild(a);
      last = LINK.lastIndex = m.index + url.length;
    }
    el.appendChild(d.createTextNode(text.slice(last)));
  }

  function size(n) {
    return n < 1024 ? n + ' B' : n < 1048576 ? Math.round(n / 1024) + ' KB' : (n / 1048576).toFixed(1) + ' MB';
  }

  function blobUrl(id) {
    if (!blobs[id]) {
      blobs[id] = fetch(API + '/attachments/' + id, { headers: { 'X-Widget-Session': token }, credentials: 'omit' })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.blob(); })
        .then(function (b) { return URL.createObjectURL(b); });
      blobs[id].catch(function () { delete blobs[id]; });
    }
    return blobs[id];
  }

  function fileLink(a) {
    var link = make('a', 'file', a.filename + (a.size ? ' (' + size(a.size) + ')' : ''));
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

  function attachmentsEl(list) {
    var box = make('div', 'files');
    list.forEach(function (a) {
      if (!a || a.id == null) return;
      if (!a.image) return box.appendChild(fileLink(a));
      var holder = make('a', 'image');
      holder.target = '_blank';
      holder.rel = 'noopener';
      var img = make('img');
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

  function messageEl(m, mine, state) {
    var el = make('div', 'msg ' + (mine ? 'mine' : 'theirs'));
    var bubble = make('div', 'bubble');
    // Who said it, for screen readers (the layout shows it to the eye).
    var who = make('span', 'sr', t(mine ? 'you' : 'agent') + ' ');
    who.setAttribute('data-who', mine ? 'you' : 'agent');
    bubble.appendChild(who);
    linkify(bubble, m.text || '');
    if (m.text) el.appendChild(bubble);
    else if (!(m.attachments || []).length) el.appendChild(bubble);
    if ((m.attachments || []).length) el.appendChild(attachmentsEl(m.attachments));
    var meta = make('div', 'meta');
    var time = make('time', null, clock(m.created_at));
    time.dateTime = m.created_at || new Date().toISOString();
    meta.appendChild(time);
    var st = make('span', 'state', state || '');
    meta.appendChild(st);
    el.appendChild(meta);
    return el;
  }

  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function toBottom() { log.scrollTop = log.scrollHeight; }

  // Adds a message once (deduplicated on conversation and seq); `live` when
  // it just arrived rather than with the history.
  function addMessage(m, live) {
    if (!m || m.conversation_id == null || m.seq == null) return false;
    var k = keyOf(m);
    if (msgs[k]) return false;
    var mine = m.direction === 'inbound';
    var stick = nearBottom() || mine;
    var el = messageEl(m, mine);
    var i = keys.length;
    while (i > 0 && before(m, msgs[keys[i - 1]].m)) i--;
    log.insertBefore(el, i < keys.length ? msgs[keys[i]].el : pendingBox);
    keys.splice(i, 0, k);
    msgs[k] = { m: m, el: el };
    if (!conv || m.conversation_id > conv.id) conv = { id: m.conversation_id, status: 'open' };
    if (live && mine && inflight && !inflight.arrived && m.client_id === inflight.id) {
      // The socket brought the message being sent before its POST answered.
      inflight.arrived = true;
      renderPending();
    }
    if (live) {
      if (!mine) {
        showTyping(false);
        if (!visible()) ding();
      }
      toParent({ type: 'message', conversationId: m.conversation_id, seq: m.seq, fromAgent: !mine });
    }
    if (stick) toBottom();
    return true;
  }

  function clearMessages() {
    keys.forEach(function (k) { msgs[k].el.remove(); });
    msgs = {};
    keys = [];
    seenEl = null;
  }

  function topSeq(c) {
    for (var i = keys.length - 1; i >= 0; i--) {
      var m = msgs[keys[i]].m;
      if (m.conversation_id === c) return m.seq;
    }
    return 0;
  }

  function updateSeen() {
    if (seenEl) seenEl.textContent = '';
    seenEl = null;
    if (!conv || pending.length) return;
    for (var i = keys.length - 1; i >= 0; i--) {
      var e = msgs[keys[i]];
      if (e.m.conversation_id !== conv.id) break;
      if (e.m.direction !== 'inbound') continue;
      if ((agentRead[conv.id] || 0) >= e.m.seq) {
        seenEl = e.el.querySelector('.state');
        seenEl.textContent = t('seen');
      }
      return;
    }
  }

  function unreadCount() {
    if (!conv) return 0;
    var n = 0, read = myRead[conv.id] || 0;
    keys.forEach(function (k) {
      var m = msgs[k].m;
      if (m.conversation_id === conv.id && m.direction !== 'inbound' && m.seq > read) n++;
    });
    return n;
  }

  function updateUnread() {
    var n = unreadCount();
    if (n !== unreadSent) toParent({ type: 'unread', count: n });
    unreadSent = n;
  }

  // The visitor has seen everything when the panel is open and visible.
  function markRead() {
    if (conv && visible()) {
      var top = topSeq(conv.id);
      if (top > (myRead[conv.id] || 0)) {
        myRead[conv.id] = top;
        sendFrame({ type: 'read', conversation_id: conv.id, seq: top });
      }
    }
    updateUnread();
  }

  function ding() {
    try {
      var C = w.AudioContext || w.webkitAudioContext;
      if (!C) return;
      audio = audio || new C();
      if (audio.state === 'suspended') audio.resume();
      var o = audio.createOscillator(), g = audio.createGain(), at = audio.currentTime;
      o.type = 'sine';
      o.frequency.setValueAtTime(880, at);
      o.frequency.setValueAtTime(1320, at + 0.09);
      g.gain.setValueAtTime(0.0001, at);
      g.gain.exponentialRampToValueAtTime(0.12, at + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
      o.connect(g);
      g.connect(audio.destination);
      o.start(at);
      o.stop(at + 0.32);
    } catch (e) { /* no sound, no harm */ }
  }

  function showTyping(on) {
    clearTimeout(agentTypingTimer);
    typingEl.textContent = on ? t('typing') : '';
    if (on) agentTypingTimer = setTimeout(showTyping, 8000, false);
  }

  // -- pending messages: kept until the server answers ------------------------
  function savePending() { store('pending', pending.length ? pending : null); }

  function renderPending() {
    var stick = nearBottom();
    pendingBox.textContent = '';
    pending.concat(failed).forEach(function (p) {
      if (p.arrived) return;
      var el = messageEl({ text: p.text, attachments: p.att, created_at: p.at }, true,
        p.error ? t('failed') + ': ' + p.error : t('sending'));
      el.classList.add(p.error ? 'failed' : 'pending');
      pendingBox.appendChild(el);
    });
    if (stick) toBottom();
  }

  function queueMessage(text, att) {
    pending.push({ id: uuid(), text: text, att: att || [], at: new Date().toISOString() });
    savePending();
    renderPending();
    updateSeen();
    updateForms();
    flush();
  }

  function unqueue(p) {
    pending = pending.filter(function (q) { return q.id !== p.id; });
    savePending();
  }

  // Sends the queue in order, one at a time; each message keeps its
  // client_id, so a retry after a lost answer is stored once.
  function flush() {
    if (flushing || !pending.length) return;
    flushing = true;
    clearTimeout(sendTimer);
    ensureSession().then(step, stop);
    function stop(r) {
      flushing = false;
      if (pending.length && !gone) {
        var wait = r && r.retry ? r.retry * 1000 : Math.min(30000, 1000 * Math.pow(2, sendAttempt++));
        sendTimer = setTimeout(flush, wait * (0.75 + Math.random() / 2));
      }
    }
    function step() {
      var p = pending[0];
      if (!p) return stop();
      var body = { text: p.text, client_id: p.id };
      if (p.att.length) body.attachment_ids = p.att.map(function (a) { return a.id; });
      inflight = p;
      request('POST', '/messages', body).then(function (r) {
        inflight = null;
        if (r.ok) {
          sendAttempt = 0;
          unqueue(p);
          addMessage(r.data && r.data.message, true);
        } else if (r.status === 401) {
          flushing = false;
          if (restarts++ < 3) flush();
          return;
        } else if (r.status === 429 || r.status >= 500 || r.status === 408) {
          return stop(r);
        } else {
          p.error = errorText(r);
          failed.push(p);
          unqueue(p);
        }
        renderPending();
        updateSeen();
        updateForms();
        step();
      }, function () {
        inflight = null;
        stop();
      });
    }
  }

  // -- the session -------------------------------------------------------------
  function ensureSession() {
    if (token) return Promise.resolve();
    if (!starting) {
      starting = request('POST', '/sessions', { inbox_token: INBOX }).then(function (r) {
        starting = null;
        if (!r.ok) {
          if (r.status === 404) unavailable();
          throw r;
        }
        token = r.data.session_token;
        store('session', token);
        inbox = r.data.inbox || inbox;
        applyInbox();
        connect();
      }, function (e) {
        starting = null;
        throw e;
      });
    }
    return starting;
  }

  function dropSession() {
    token = null;
    store('session', null);
    store('ident', null);
    stopSocket();
    lastEvent = null;
    loaded = false;
  }

  function unavailable() {
    gone = true;
    connEl.textContent = t('unavailable');
    connEl.hidden = false;
    composer.hidden = true;
  }

  function refresh() {
    if (!token) return Promise.resolve();
    loading = true;
    return request('GET', '/conversation').then(function (r) {
      if (r.ok && r.data) apply(r.data);
    }).catch(function () { /* offline: the socket's ready will try again */ }).then(function () {
      loading = false;
      held.splice(0).forEach(onFrame);
      if (!readySent) sayReady();
    });
  }

  function apply(data) {
    loaded = true;
    inbox = data.inbox || inbox;
    contact = data.contact || contact;
    availability = data.availability || availability;
    conv = data.conversation || null;
    log.setAttribute('aria-busy', 'true');
    clearMessages();
    (data.messages || []).forEach(function (m) { addMessage(m, false); });
    log.removeAttribute('aria-busy');
    if (conv) {
      var read = data.read || conv;
      agentRead[conv.id] = Math.max(agentRead[conv.id] || 0, read.agent_last_read_seq || 0);
      // No read position from the server: count nothing old as unread.
      var mine = read.contact_last_read_seq == null ? topSeq(conv.id) : read.contact_last_read_seq;
      myRead[conv.id] = Math.max(myRead[conv.id] || 0, mine);
    }
    applyInbox();
    updateSeen();
    markRead();
    toBottom();
  }

  // -- the websocket -----------------------------------------------------------
  function connect() {
    if (!token || ws) return;
    clearTimeout(retryTimer);
    var url = location.origin.replace(/^http/, 'ws') + '/ws/widget' +
      (lastEvent != null ? '?last_event_id=' + lastEvent : '');
    var sock;
    try { sock = new WebSocket(url, ['threadline.widget', token]); } catch (e) { return schedule(); }
    ws = sock;
    sock.onmessage = function (e) {
      var f;
      try { f = JSON.parse(e.data); } catch (x) { return; }
      if (f && typeof f.type === 'string') onFrame(f);
    };
    sock.onclose = function (e) { lost(sock, e.code); };
  }

  function lost(sock, code) {
    if (ws !== sock) return;
    ws = null;
    live = false;
    clearInterval(pinger);
    sock.onclose = sock.onmessage = null;
    try { sock.close(); } catch (e) { /* already closed */ }
    updateNotices();
    if (!loaded && !loading) refresh(); // no socket yet: show the history anyway
    if (code === 4001) {
      // The session is no longer valid: start a new one when needed.
      dropSession();
      if (pending.length) flush();
      return;
    }
    schedule();
  }

  function schedule() {
    clearTimeout(retryTimer);
    var cap = Math.min(30000, 500 * Math.pow(2, attempt++));
    retryTimer = setTimeout(connect, cap / 2 + Math.random() * cap / 2);
  }

  function stopSocket() {
    clearTimeout(retryTimer);
    if (ws) {
      var sock = ws;
      ws = null;
      live = false;
      clearInterval(pinger);
      sock.onclose = sock.onmessage = null;
      sock.close();
    }
  }

  function sendFrame(f) {
    if (ws && live) ws.send(JSON.stringify(f));
  }

  function onFrame(f) {
    if (f.type === 'pong') { awaitingPong = false; return; }
    if (loading && f.type !== 'ready') { held.push(f); return; }
    if (typeof f.event_id === 'number' && (lastEvent == null || f.event_id > lastEvent)) lastEvent = f.event_id;
    switch (f.type) {
      case 'ready': return onReady(f);
      case 'message':
        addMessage(f.message, true);
        markRead();
        updateSeen();
        return updateForms();
      case 'conversation':
        if (f.conversation && (!conv || f.conversation.id >= conv.id)) conv = f.conversation;
        return updateForms();
      case 'read':
        agentRead[f.conversation_id] = Math.max(agentRead[f.conversation_id] || 0, f.seq);
        return updateSeen();
      case 'typing':
        if (!conv || f.conversation_id === conv.id) showTyping(!!f.typing);
        return;
      case 'availability':
        availability = availability || {};
        availability.agents_online = !!f.agents_online;
        return updateForms();
      case 'resync': return refresh();
      case 'error': return console.warn('Threadline:', f.code, f.message);
    }
  }

  function onReady(f) {
    var resumed = lastEvent != null;
    lastEvent = f.last_event_id;
    live = everLive = true;
    attempt = 0;
    awaitingPong = false;
    clearInterval(pinger);
    pinger = setInterval(function () {
      if (awaitingPong) return lost(ws, 1006);
      awaitingPong = true;
      sendFrame({ type: 'ping' });
    }, 25000);
    updateNotices();
    if (!loaded || (resumed && f.resumed === false)) refresh();
    if (conv && myRead[conv.id]) sendFrame({ type: 'read', conversation_id: conv.id, seq: myRead[conv.id] });
    flush();
  }

  // -- visitor typing -------------------------------------------------------
  function typed() {
    autosize();
    if (!conv || !live) return;
    if (!textEl.value) return stopTyping();
    var now = Date.now();
    if (!typingOn || now - typingAt > 3000) {
      sendFrame({ type: 'typing', conversation_id: conv.id, typing: true });
      typingOn = true;
      typingAt = now;
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 4000);
  }

  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingOn && conv) sendFrame({ type: 'typing', conversation_id: conv.id, typing: false });
    typingOn = false;
  }

  function autosize() {
    textEl.style.height = 'auto';
    textEl.style.height = Math.min(textEl.scrollHeight, 140) + 'px';
  }

  // -- attachments --------------------------------------------------------------
  function addFiles(files) {
    [].forEach.call(files || [], upload);
  }

  function upload(file) {
    if (chips.length >= 10) return; // the most one message carries
    var chip = { name: file.name || 'file', state: 'up' };
    chips.push(chip);
    renderChips();
    ensureSession().then(function () {
      return fetch(API + '/attachments?filename=' + encodeURIComponent(chip.name), {
        method: 'POST', credentials: 'omit', body: file,
        headers: { 'X-Widget-Session': token, 'Content-Type': file.type || 'application/octet-stream' }
      });
    }).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (data) {
        if (!r.ok || !data || !data.attachment) throw { data: data };
        chip.att = data.attachment;
        chip.state = 'ok';
      });
    }).catch(function (r) {
      chip.state = 'err';
      chip.error = r && r.data ? errorText(r) : t('uploadFailed');
    }).then(renderChips);
  }

  function renderChips() {
    chipsEl.textContent = '';
    chipsEl.hidden = !chips.length;
    chips.forEach(function (c) {
      var li = make('li', c.state === 'err' ? 'chip err' : 'chip');
      li.appendChild(make('span', 'name', c.name));
      if (c.state !== 'ok') li.appendChild(make('span', 'state', c.state === 'up' ? t('uploading') : c.error));
      var x = make('button', 'x', '×');
      x.type = 'button';
      x.setAttribute('aria-label', t('remove', { name: c.name }));
      x.addEventListener('click', function () {
        chips.splice(chips.indexOf(c), 1);
        renderChips();
        textEl.focus();
      });
      li.appendChild(x);
      chipsEl.appendChild(li);
    });
    sendBtn.disabled = chips.some(function (c) { return c.state === 'up'; });
  }

  function hasFiles(e) {
    return e.dataTransfer && [].indexOf.call(e.dataTransfer.types || [], 'Files') >= 0;
  }

  // -- forms ------------------------------------------------------------------
  // How much the inbox's pre-chat form asks for a field: 0 not, 1 optional, 2 required.
  function asks(field) {
    var p = inbox && inbox.prechat;
    if (!p || p.enabled === false) return 0;
    if (Array.isArray(p.required) && p.required.indexOf(field) >= 0) return 2;
    if (Array.isArray(p.fields)) return p.fields.indexOf(field) >= 0 ? 1 : 0;
    var v = p[field];
    if (v && typeof v === 'object') return v.required ? 2 : v.ask === false || v.enabled === false ? 0 : 1;
    return v === 'required' ? 2 : v === true || v === 'optional' || v === 'ask' ? 1 : 0;
  }

  function prechatFields() {
    if (stored('prechat') || (contact && contact.verified)) return [];
    return ['name', 'email'].filter(function (f) {
      return asks(f) && !(contact && (f === 'email' ? contact.has_email : contact.name));
    });
  }

  function hasOpenConversation() {
    return (conv && conv.status !== 'resolved') || pending.length > 0;
  }

  function updateForms() {
    var mode = 'chat';
    if (gone) mode = 'none';
    else if (thanksFor) mode = 'thanks';
    else if (!hasOpenConversation() && availability && availability.agents_online === false) mode = 'offline';
    else if (!hasOpenConversation() && prechatFields().length) mode = 'prechat';
    var was = composer.hidden ? prechat.hidden ? offline.hidden ? 'thanks' : 'offline' : 'prechat' : 'chat';
    if (mode === 'prechat') {
      var fields = prechatFields();
      ['name', 'email'].forEach(function (f) {
        var need = asks(f);
        $('prechat-' + f + '-field').hidden = fields.indexOf(f) < 0;
        $('prechat-' + f + '-field').querySelector('.opt').hidden = need === 2;
        $('prechat-' + f).required = need === 2;
      });
    }
    composer.hidden = mode !== 'chat';
    prechat.hidden = mode !== 'prechat';
    offline.hidden = mode !== 'offline';
    thanks.hidden = mode !== 'thanks';
    if (mode !== was) {
      // Carry what the visitor already typed over to the form now shown.
      var into = mode === 'prechat' ? $('prechat-text') : mode === 'offline' ? $('offline-text') : null;
      if (into && !into.value) into.value = textEl.value;
      var at = d.activeElement;
      if (isOpen && d.hasFocus() && (!at || !panel.contains(at) || at.offsetParent === null)) focusFirst();
    }
    updateNotices();
  }

  function updateNotices() {
    var a = availability || {}, closed = a.open_now === false;
    hoursEl.hidden = !closed && !a.away_message;
    if (!hoursEl.hidden) {
      var back = a.next_open_at && new Date(a.next_open_at);
      hoursEl.textContent = (a.away_message || (inbox && inbox.away_message) || t('away')) +
        (closed && back && !isNaN(back) ? ' ' + t('back', {
          when: back.toLocaleString(lang, { weekday: 'long', hour: '2-digit', minute: '2-digit' })
        }) : '');
    }
    clearTimeout(connTimer);
    if (connEl.textContent === t('unavailable') && !token) return;
    if (!navigator.onLine) {
      connEl.textContent = t('offline');
      connEl.hidden = false;
    } else if (token && everLive && !live) {
      // Only a disconnection that lasts is worth a notice.
      connTimer = setTimeout(function () {
        connEl.textContent = t('reconnecting');
        connEl.hidden = live;
      }, 3000);
    } else {
      connEl.hidden = true;
    }
  }

  var EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

  // Checks a form's fields; shows the first problem and focuses its field.
  function check(form, fields) {
    var problem = null;
    form.querySelectorAll('[aria-invalid]').forEach(function (el) { el.removeAttribute('aria-invalid'); });
    fields.some(function (f) {
      var el = f[0], value = el.value.trim();
      if (el.offsetParent === null) return false;
      if (!value && el.required) problem = [el, t('required', { field: t(f[1]) })];
      else if (value && el.type === 'email' && !EMAIL.test(value)) problem = [el, t('badEmail')];
      return !!problem;
    });
    showError(form, problem && problem[1], problem && problem[0]);
    return !problem;
  }

  function showError(form, text, field) {
    form.querySelector('.error').textContent = text || '';
    if (field) {
      field.setAttribute('aria-invalid', 'true');
      field.focus();
    }
  }

  function fieldOf(form, r) {
    var f = r && r.data && r.data.error && r.data.error.field;
    return f && form.querySelector('[name="' + f.replace(/[^a-z_]/g, '') + '"]');
  }

  prechat.addEventListener('submit', function (e) {
    e.preventDefault();
    var name = $('prechat-name'), email = $('prechat-email'), text = $('prechat-text');
    if (!check(prechat, [[name, 'name'], [email, 'email'], [text, 'message']])) return;
    var body = {};
    if (name.value.trim() && name.offsetParent !== null) body.name = name.value.trim();
    if (email.value.trim() && email.offsetParent !== null) body.email = email.value.trim();
    var go = function () {
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
    var strict = inbox && inbox.require_verification;
    ensureSession().then(function () {
      return strict ? request('POST', '/attributes', { attributes: body }) : request('POST', '/identify', body);
    }).then(function (r) {
      if (r.ok) return go();
      showError(prechat, errorText(r), fieldOf(prechat, r));
    }, function () { showError(prechat, t('error')); });
  });

  offline.addEventListener('submit', function (e) {
    e.preventDefault();
    var email = $('offline-email'), name = $('offline-name'), text = $('offline-text');
    if (!check(offline, [[email, 'email'], [name, 'name'], [text, 'message']])) return;
    offlineId = offlineId || uuid();
    var body = { email: email.value.trim(), text: text.value.trim(), client_id: offlineId };
    if (name.value.trim()) body.name = name.value.trim();
    ensureSession().then(function () { return request('POST', '/offline', body); }).then(function (r) {
      if (!r.ok) return showError(offline, errorText(r), fieldOf(offline, r));
      offlineId = null;
      thanksFor = body.email;
      thanks.textContent = t('thanks', { email: thanksFor });
      text.value = '';
      showError(offline, '');
      updateForms();
      thanks.setAttribute('tabindex', '-1');
      thanks.focus();
    }, function () { showError(offline, t('error')); });
  });

  function send() {
    var text = textEl.value.trim();
    if (chips.some(function (c) { return c.state === 'up'; })) return;
    var att = chips.filter(function (c) { return c.att; }).map(function (c) { return c.att; });
    if (!text && !att.length) return;
    textEl.value = '';
    chips = [];
    renderChips();
    stopTyping();
    autosize();
    queueMessage(text, att);
  }

  // -- what the page asks for ----------------------------------------------------
  function identify(id, traits) {
    var body = {}, extra = {};
    if (id) body.user_id = id;
    if (traits.email) body.email = String(traits.email);
    if (traits.name) body.name = String(traits.name);
    if (traits.identityHash) body.identity_hash = String(traits.identityHash);
    if (traits.identityToken) body.identity_token = String(traits.identityToken);
    if (traits.phone) extra.phone = String(traits.phone);
    if (traits.avatar) extra.avatar = String(traits.avatar);
    var sig = JSON.stringify([body, extra]);
    if (sig === stored('ident')) return; // already told the server
    if (Object.keys(body).length) {
      ensureSession().then(function () { return request('POST', '/identify', body); }).then(function (r) {
        if (!r.ok) return console.warn('Threadline: setUser refused:', errorText(r));
        store('ident', sig);
        refresh(); // a verified identity may bring its history
      }, function () { /* offline: the page calls setUser again on its next load */ });
    }
    if (Object.keys(extra).length) setAttributes(extra);
  }

  function setAttributes(attributes) {
    ensureSession().then(function () { return request('POST', '/attributes', { attributes: attributes }); })
      .then(function (r) { if (!r.ok) console.warn('Threadline: setAttributes refused:', errorText(r)); }, function () {});
  }

  function track(name, props) {
    ensureSession().then(function () { return request('POST', '/events', { name: name, properties: props }); })
      .then(function (r) { if (!r.ok) console.warn('Threadline: track refused:', errorText(r)); }, function () {});
  }

  function reset() {
    stopSocket();
    ['session', 'pending', 'ident', 'prechat'].forEach(function (k) { store(k, null); });
    token = null;
    conv = contact = availability = lastEvent = thanksFor = null;
    pending = [];
    failed = [];
    chips = [];
    agentRead = {};
    myRead = {};
    loaded = everLive = false;
    clearMessages();
    renderPending();
    renderChips();
    showTyping(false);
    updateForms();
    updateUnread();
    if (isOpen) ensureSession().catch(function () {});
  }

  function setOpen(open) {
    if (open === isOpen) return;
    isOpen = open;
    if (open) {
      ensureSession().catch(function () {});
      focusFirst();
      markRead();
    } else {
      stopTyping();
    }
  }

  function focusFirst() {
    var el = !composer.hidden ? textEl : !thanks.hidden ? closeBtn :
      [].filter.call(panel.querySelectorAll('form:not([hidden]) input, form:not([hidden]) textarea'),
        function (x) { return x.offsetParent !== null; })[0];
    if (el) el.focus();
  }

  function focusables() {
    return [].filter.call(panel.querySelectorAll('a[href],button,input,textarea,[tabindex]'), function (el) {
      return !el.disabled && el.tabIndex >= 0 && el.getClientRects().length > 0;
    });
  }

  w.addEventListener('message', function (e) {
    var m = e.data;
    if (!PAGE || e.source !== w.parent || e.origin !== PAGE || !m || m.threadline !== 1) return;
    if (m.type === 'open') setOpen(true);
    else if (m.type === 'close') setOpen(false);
    else if (m.type === 'user') identify(m.id, m.traits || {});
    else if (m.type === 'attributes') setAttributes(m.attributes || {});
    else if (m.type === 'track' && m.name) track(String(m.name), m.props || {});
    else if (m.type === 'locale') {
      userLocale = m.locale;
      applyStrings();
    } else if (m.type === 'reset') reset();
  });

  // -- wiring ---------------------------------------------------------------------
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

  var dragDepth = 0;
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
    if (!composer.hidden) addFiles(e.dataTransfer.files);
  });

  // Focus stays in the dialog while it is open; Esc closes it.
  d.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' && PAGE) {
      e.preventDefault();
      toParent({ type: 'close' });
      return;
    }
    if (e.key !== 'Tab') return;
    var f = focusables(), a = d.activeElement;
    if (!f.length) return;
    var first = f[0], last = f[f.length - 1], inside = f.indexOf(a) >= 0;
    if (e.shiftKey ? a === first || !inside : a === last || !inside) {
      e.preventDefault();
      (e.shiftKey ? last : first).focus();
    }
  });

  d.addEventListener('visibilitychange', markRead);
  w.addEventListener('online', function () {
    attempt = sendAttempt = 0;
    updateNotices();
    if (token && !ws) connect();
    flush();
  });
  w.addEventListener('offline', updateNotices);
  // Another tab of the same visitor: share the session and the queue.
  w.addEventListener('storage', function (e) {
    if (e.key === KEY + 'session' && e.newValue !== JSON.stringify(token)) {
      if (e.newValue == null) reset();
      else {
        stopSocket();
        token = stored('session');
        lastEvent = null;
        loaded = false;
        connect();
      }
    } else if (e.key === KEY + 'pending') {
      pending = stored('pending') || [];
      renderPending();
      updateSeen();
    }
  });

  applyStrings();
  updateForms();
  renderPending();
  toParent({ type: 'hello' });
  if (token) {
    connect();
    flush();
  } else {
    sayReady();
    if (isOpen) ensureSession().catch(function () {});
  }
})();
