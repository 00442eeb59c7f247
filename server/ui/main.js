// @ts-check
// Start: who is logged in? The inbox for an agent, the login form otherwise.

import { ApiError, get, setCsrfToken } from "./api.js";
import { startApp, stopApp } from "./app.js";
import { showLogin } from "./login.js";

// index.html has it.
const root = /** @type {HTMLElement} */ (document.getElementById("app"));

async function boot() {
  try {
    const me = await get("/auth/me").catch((e) => {
      if (e instanceof ApiError && e.status === 401) return null;
      throw e;
    });
    if (me === null) {
      showLogin(root, () => boot());
      return;
    }
    setCsrfToken(me.csrf_token);
    startApp(root, me.agent);
  } catch {
    root.textContent = "Threadline can't reach its server. Retrying…";
    setTimeout(boot, 2000);
  }
}

window.addEventListener("threadline:signed-out", () => {
  stopApp();
  showLogin(root, () => boot());
});

boot();
