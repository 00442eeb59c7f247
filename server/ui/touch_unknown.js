// @ts-check
// Decisions whose outcome is unknown (a crash between handing a touch to
// its channel and recording it): shown to admins, never resent by
// themselves. An admin who checked (the mail sink, the customer) marks one
// sent, or deliberately sends it again after a confirmation.

import { get, post } from "./api.js";
import { h, replace } from "./dom.js";
import { fullTime } from "./format.js";
import { toast } from "./toast.js";

/**
 * Fills `box` with the unknown decisions (hidden when there are none) and
 * returns how to load them again.
 * @param {HTMLElement} box
 * @param {() => void} [onSettled] after one is settled (counts change)
 */
export function mountUnknownDecisions(box, onSettled = () => {}) {
  box.hidden = true;
  const load = async () => {
    let page;
    try {
      page = await get("/decisions", { state: "unknown", limit: 50 });
    } catch {
      return;
    }
    const items = page.decisions || [];
    box.hidden = !items.length;
    replace(
      box,
      h("h2", { class: "unknown-title", text: items.length === 1 ? "1 touch may or may not have gone out" : `${items.length} touches may or may not have gone out` }),
      h("p", { class: "unknown-lead", text: "Threadline handed these to their channel but could not record the outcome, so it never resends them by itself. Check, then mark each sent or send it again." }),
      h("table", { class: "settings-table unknown-table" },
        h("thead", null, h("tr", null, ["Touchpoint", "Contact", "Step", "Handed over", "What happened", ""].map((t) => h("th", { text: t })))),
        h("tbody", null, items.map((/** @type {any} */ d) => row(d)))),
    );
  };

  /** @param {any} d a decision */
  const row = (d) => {
    const sent = h("button", { type: "button", class: "ghost small", text: "Mark sent" });
    const again = h("button", { type: "button", class: "danger small", text: "Send again" });
    /** @param {"sent" | "resend"} outcome */
    const settle = async (outcome) => {
      if (outcome === "resend" && !confirm(`Send “${d.touchpoint_name}” step ${d.position + 1} to ${d.contact_name} again? If the first one did arrive, they get it twice.`)) return;
      sent.disabled = again.disabled = true;
      try {
        await post(`/decisions/${Number(d.id)}/settle`, { outcome });
        toast(outcome === "sent" ? `Marked as sent to ${d.contact_name}` : `Sending again to ${d.contact_name}`);
        onSettled();
        await load();
      } catch (error) {
        sent.disabled = again.disabled = false;
        toast(`Couldn't settle: ${/** @type {Error} */ (error).message}`, { error: true });
      }
    };
    sent.addEventListener("click", () => settle("sent"));
    again.addEventListener("click", () => settle("resend"));
    return h("tr", { dataset: { decisionId: d.id } },
      h("td", null, h("a", { href: `#/touchpoints/${Number(d.touchpoint_id)}`, text: d.touchpoint_name })),
      h("td", null, h("a", { href: `#/contact/${Number(d.contact_id)}`, text: d.contact_name })),
      h("td", { text: `${d.position + 1} · ${d.channel}` }),
      h("td", null, h("time", { datetime: d.run_at || d.due_at, text: fullTime(d.run_at || d.due_at) })),
      h("td", { class: "unknown-reason", text: d.reason || "" }),
      h("td", { class: "unknown-actions" }, sent, again),
    );
  };

  load();
  return load;
}
