// @ts-check
// A touchpoint's status, and for admins the switch that takes it live or
// pauses it (the list and the editor both show it).

import { post } from "./api.js";
import { h } from "./dom.js";
import { toast } from "./toast.js";
import { STATUS_WORDS } from "./touch_words.js";

// Live or not: a switch for admins (draft and paused both go live), the
// status as text for everyone.
/**
 * @param {any} t
 * @param {boolean} admin
 * @param {() => void} reload
 */
export function statusControl(t, admin, reload) {
  const label = h("span", { class: `touch-status status-${t.status}`, text: STATUS_WORDS[t.status] || t.status });
  if (!admin || t.status === "archived") return label;
  const live = t.status === "live";
  const button = h("button", {
    type: "button",
    class: `switch${live ? " on" : ""}`,
    role: "switch",
    "aria-checked": String(live),
    "aria-label": `Live: ${t.name}`,
    title: live ? "Pause: start nothing new; pending touches wait" : "Go live",
  }, h("span", { class: "switch-knob", "aria-hidden": "true" }));
  button.addEventListener("click", async () => {
    button.disabled = true;
    const next = live ? "paused" : "live";
    try {
      await post(`/touchpoints/${Number(t.id)}/status`, { status: next });
      toast(next === "live" ? `${t.name} is live` : `${t.name} is paused`);
    } catch (error) {
      toast(`Couldn't change ${t.name}: ${/** @type {Error} */ (error).message}`, { error: true });
    }
    reload();
  });
  return h("span", { class: "touch-status-control" }, button, label);
}
