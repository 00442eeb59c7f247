// @ts-check
// Frames for the live connection, for any module that sends one (typing,
// viewing). The app plugs its socket in when it starts and out when it
// stops, so senders don't import the app that imports them; with no socket
// a frame is dropped, as the socket itself drops frames while it is down.

/** @typedef {Record<string, unknown> & { type: string }} LiveFrame */

/** @type {((frame: LiveFrame) => void) | null} */
let sender = null;

/** @param {((frame: LiveFrame) => void) | null} send */
export function setLiveSender(send) {
  sender = send;
}

/** @param {LiveFrame} frame */
export function liveSend(frame) {
  if (sender) sender(frame);
}
