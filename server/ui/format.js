// @ts-check
// Small pure helpers for showing values.

/** @type {Record<string, string>} */
const CHANNEL_LABELS = {
  widget: "Website chat",
  email: "Email",
  api: "API",
  slack: "Slack",
  social: "Social",
};

/** @param {string} kind */
export function channelLabel(kind) {
  return CHANNEL_LABELS[kind] || kind;
}

/** @param {string | null | undefined} name */
export function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).slice(0, 2);
  return parts.map((part) => part[0] || "").join("").toUpperCase() || "?";
}

/**
 * @param {string | null | undefined} iso
 * @param {Date} [now]
 */
export function shortTime(iso, now = new Date()) {
  if (!iso) return "";
  const at = new Date(iso);
  const seconds = (now.getTime() - at.getTime()) / 1000;
  if (seconds < 60) return "now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400 && at.getDate() === now.getDate()) {
    return at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  if (seconds < 7 * 86400) return at.toLocaleDateString([], { weekday: "short" });
  return at.toLocaleDateString([], { day: "numeric", month: "short" });
}

/** @param {string | null | undefined} iso */
export function fullTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString([], {
    weekday: "short",
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/**
 * @param {number} n
 * @param {string} one
 * @param {string} many
 */
export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** @param {number} bytes */
export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** @param {{ status: string, snoozed_until?: string | null }} conversation */
export function statusLabel(conversation) {
  if (conversation.status === "snoozed" && conversation.snoozed_until) {
    return `Snoozed until ${fullTime(conversation.snoozed_until)}`;
  }
  return conversation.status[0].toUpperCase() + conversation.status.slice(1);
}
