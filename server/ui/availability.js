// @ts-check
// The signed-in agent's availability (online / busy / offline), set from
// the sidebar's footer. Automatic assignment hands conversations only to
// agents who are online, so this is how an agent takes a break from new
// work without logging out. Kept on the agent (PATCH /agents/{id}), so
// it survives a reload and holds on every device.

import { patch } from "./api.js";
import { h } from "./dom.js";
import { notify, state } from "./state.js";
import { toast } from "./toast.js";

const CHOICES = [
  { value: "online", label: "Online", hint: "New conversations may be assigned to you" },
  { value: "busy", label: "Busy", hint: "No new assignments; you keep your conversations" },
  { value: "offline", label: "Offline", hint: "No new assignments" },
];

/** @param {string} value */
function labelOf(value) {
  const choice = CHOICES.find((c) => c.value === value);
  return choice ? choice.label : value;
}

// The button and its menu. Redrawn with the sidebar; the menu is open
// only while the agent chooses.
export function availabilityControl() {
  const me = state.me;
  // The directory follows changes made elsewhere (agent.updated reloads it).
  const current = (state.agents.get(me.id) || me).availability || "online";
  const menu = h("ul", { class: "availability-menu", role: "menu", "aria-label": "Availability", hidden: true });
  const button = h(
    "button",
    {
      type: "button",
      class: "availability-button",
      "aria-haspopup": "menu",
      "aria-label": `Availability: ${labelOf(current)}`,
      "aria-expanded": "false",
      title: "Your availability for new conversations",
      dataset: { availability: current },
      on: { click: () => (menu.hidden ? open() : close()) },
    },
    h("span", { class: `availability-dot availability-${current}`, "aria-hidden": "true" }),
    h("span", { class: "availability-label", text: labelOf(current) }),
  );
  const close = () => {
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
    document.removeEventListener("click", outside, true);
  };
  /** @param {MouseEvent} event */
  const outside = (event) => {
    if (event.target instanceof Node && !wrap.contains(event.target)) close();
  };
  const open = () => {
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    document.addEventListener("click", outside, true);
    const checked = /** @type {HTMLElement | null} */ (menu.querySelector("[aria-checked=true]"));
    if (checked) checked.focus();
  };
  /** @param {string} value */
  const choose = async (value) => {
    close();
    if (value === current) return;
    try {
      const agent = await patch(`/agents/${me.id}`, { availability: value });
      state.me = { ...state.me, availability: agent.availability };
      if (state.agents.has(me.id)) state.agents.set(me.id, { ...state.agents.get(me.id), availability: agent.availability });
      notify("me");
    } catch {
      toast("Could not change your availability. Try again.", { error: true });
    }
  };
  for (const choice of CHOICES) {
    menu.append(
      h(
        "li",
        { role: "none" },
        h(
          "button",
          {
            type: "button",
            role: "menuitemradio",
            "aria-checked": String(choice.value === current),
            class: "availability-choice",
            dataset: { availability: choice.value },
            on: { click: () => choose(choice.value) },
          },
          h("span", { class: `availability-dot availability-${choice.value}`, "aria-hidden": "true" }),
          h("span", null, h("strong", { text: choice.label }), h("small", { text: choice.hint })),
        ),
      ),
    );
  }
  const wrap = h("div", {
    class: "availability",
    on: {
      keydown: (/** @type {KeyboardEvent} */ event) => {
        if (event.key === "Escape" && !menu.hidden) {
          event.stopPropagation();
          close();
          button.focus();
        }
      },
    },
  }, menu, button);
  return wrap;
}
