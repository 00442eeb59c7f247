"""Support for the inbox web app's browser tests: signing in as a person
does, and checking what the rendered page holds."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.support import PASSWORD


async def sign_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Open the app, fill in the login form and wait for the inbox, as an
    agent who has already answered the one-time question about desktop
    notifications (its offer would cover part of the sidebar; the
    notification tests ask it)."""
    await page.goto(f"{base_url}/")
    await page.evaluate("localStorage.setItem('threadline.notifications-asked', '1')")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("navigation", name="Views")).to_be_visible()


# Finds anything in the DOM that could run: script elements other than the
# app's own modules, on* attributes, and javascript:/data: URLs.
DANGEROUS_DOM = """() => {
  const found = [];
  for (const s of document.querySelectorAll("script")) {
    const src = s.getAttribute("src") || "";
    if (!src.startsWith("/ui/")) found.push("script: " + (src || s.textContent.slice(0, 60)));
  }
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.trim().toLowerCase();
      if (name.startsWith("on")) found.push(el.tagName + " " + name);
      if (["href", "src", "action", "formaction", "xlink:href"].includes(name)
          && (value.startsWith("javascript:") || value.startsWith("data:text/html"))) {
        found.push(el.tagName + " " + name + "=" + value.slice(0, 40));
      }
    }
  }
  for (const el of document.querySelectorAll("iframe, object, embed")) found.push(el.tagName);
  return found;
}"""


async def dangerous_dom(page: Page) -> list[str]:
    found: list[str] = await page.evaluate(DANGEROUS_DOM)
    return found


async def no_horizontal_overflow(page: Page) -> bool:
    """Whether the page fits its viewport's width (nothing cut off or
    scrolled sideways)."""
    fits: bool = await page.evaluate(
        "() => document.documentElement.scrollWidth <= window.innerWidth"
    )
    return fits
