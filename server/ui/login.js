// @ts-check
// The login form, shown to anyone without a session.

import { ApiError, post, setCsrfToken } from "./api.js";
import { h, replace } from "./dom.js";

/**
 * @param {HTMLElement} root
 * @param {(agent: any) => void} onSignedIn
 */
export function showLogin(root, onSignedIn) {
  const email = h("input", { id: "login-email", type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", {
    id: "login-password",
    type: "password",
    name: "password",
    autocomplete: "current-password",
    required: true,
  });
  const error = h("p", { class: "login-error", role: "alert" });
  const button = h("button", { type: "submit", class: "primary", text: "Log in" });
  const form = h(
    "form",
    { class: "login-card", on: { submit: submit } },
    h("div", { class: "login-brand" }, h("img", { src: "/ui/icon.svg", alt: "", width: 36, height: 36 }), h("h1", { text: "Threadline" })),
    h("p", { class: "login-lead", text: "Log in to your team's inbox." }),
    h("label", { for: "login-email", text: "Email" }),
    email,
    h("label", { for: "login-password", text: "Password" }),
    password,
    error,
    button,
  );
  replace(root, h("main", { class: "login" }, form));
  document.title = "Log in · Threadline";
  email.focus();

  /** @param {SubmitEvent} event */
  async function submit(event) {
    event.preventDefault();
    error.textContent = "";
    button.disabled = true;
    try {
      const answer = await post(
        "/auth/login",
        { email: email.value.trim(), password: password.value },
        { anonymous: true },
      );
      setCsrfToken(answer.csrf_token);
      onSignedIn(answer.agent);
    } catch (e) {
      if (e instanceof ApiError && e.status === 429) error.textContent = "Too many attempts. Wait a minute and try again.";
      else if (e instanceof ApiError && (e.status === 401 || e.status === 422)) error.textContent = "That email and password don't match.";
      else error.textContent = "Can't reach the server. Check your connection and try again.";
      button.disabled = false;
      password.select();
    }
  }
}
