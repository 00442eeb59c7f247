// @ts-check
/* The widget's words, in each language it speaks. */
import { state } from './state.js';

/** @type {Record<string, Record<string, string>>} language -> word -> text */
const STRINGS = {
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

/** A word in the visitor's language, with `{name}`s filled in.
 * @param {string} k
 * @param {Record<string, string | number | null | undefined>} [vars] */
export function t(k, vars) {
  const s = (STRINGS[state.lang] || STRINGS.en)[k] || STRINGS.en[k] || k;
  return !vars ? s : s.replace(/\{(\w+)\}/g, function (_, v) {
    const value = vars && vars[v];
    return value != null ? String(value) : '';
  });
}

/** The first language the visitor (or the page, or the inbox) asks for that we speak. */
export function pickLocale() {
  const inbox = state.inbox;
  const wanted = /** @type {unknown[]} */ ([state.userLocale]).concat(navigator.languages || [], navigator.language, inbox && inbox.locale);
  for (let i = 0; i < wanted.length; i++) {
    const base = wanted[i] ? String(wanted[i]).toLowerCase().split(/[-_]/)[0] : '';
    if (base && STRINGS[base]) return base;
  }
  return 'en';
}
