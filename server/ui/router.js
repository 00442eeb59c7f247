// @ts-check
// Where the agent is, kept in the URL's hash so reload and back/forward work:
//   #/v/<view>            a sidebar view (mine, unassigned, all, inbox:3, team:2, label:vip, filter:5)
//   #/v/<view>/c/<id>     … with a conversation open
//   #/contact/<id>        a contact's timeline
//   #/settings/<page>     canned responses, macros
//   #/touchpoints         automatic follow-ups; #/touchpoints/<id> edits one
//   #/touchpoints/segments  the segments they use
//   #/touchpoints/settings  the caps, quiet hours and consent mode they follow

/**
 * @param {string} hash
 * @returns {import("./state.js").Route}
 */
export function parseHash(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "contact" && /^\d+$/.test(parts[1] || "")) {
    return { page: "contact", contactId: Number(parts[1]), view: null, conversationId: null };
  }
  if (parts[0] === "touchpoints") {
    if (parts[1] === "segments" || parts[1] === "settings") return { page: "touchpoints", section: parts[1], view: null, conversationId: null };
    if (/^\d+$/.test(parts[1] || "")) return { page: "touchpoints", section: "edit", itemId: Number(parts[1]), view: null, conversationId: null };
    return { page: "touchpoints", section: "list", view: null, conversationId: null };
  }
  if (parts[0] === "settings") {
    return { page: "settings", section: parts[1] || "canned", view: null, conversationId: null };
  }
  const view = parts[0] === "v" && parts[1] ? parts[1] : "mine";
  const conversationId = parts[2] === "c" && /^\d+$/.test(parts[3] || "") ? Number(parts[3]) : null;
  return { page: "inbox", view, conversationId, contactId: null };
}

/**
 * @param {string | null} view
 * @param {number | null} conversationId
 */
export function inboxHash(view, conversationId) {
  const base = `#/v/${encodeURIComponent(String(view))}`;
  return conversationId ? `${base}/c/${conversationId}` : base;
}

/** @param {string} hash */
export function go(hash) {
  if (location.hash !== hash) location.hash = hash;
}
