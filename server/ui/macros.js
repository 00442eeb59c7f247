// @ts-check
// The macros the agent can run (workspace ones and their own).

import { ApiError, get } from "./api.js";
import { notify, state } from "./state.js";

export async function loadMacros() {
  try {
    const page = await get("/macros");
    state.macros = page.items;
  } catch (e) {
    // A server without macros answers 404: the app works without them.
    if (!(e instanceof ApiError)) throw e;
    state.macros = [];
  }
  notify("macros", "conversation-meta");
}
