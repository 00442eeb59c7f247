"""Touchpoints → Settings in the inbox UI, against the real server: an
admin reads the defaults, changes caps, zone and consent mode and finds
them after a reload and in the REST API; a window the server refuses is
shown at its row and nothing is saved; an agent reads them and changes
nothing. Screenshots go to /tmp/touchshots for a person to look at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from server.runtime import Runtime
from tests.browser.inbox_ui import no_horizontal_overflow, sign_in
from tests.realtime.live import LiveServer, new_token
from tests.support import Workspace

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/touchshots")

DEFAULTS = {
    "timezone": "UTC",
    "caps": {
        "marketing": [{"count": 1, "window": "16h"}, {"count": 3, "window": "7d"}],
        "service": [{"count": 2, "window": "1d"}],
    },
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    "consent": "opt_out",
}


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def shot_bottom(page: Page, name: str) -> None:
    """The page scrolled to its end: it scrolls inside its own box, which
    a full-page screenshot does not unroll."""
    SHOTS.mkdir(exist_ok=True)
    await page.locator(".settings-page").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    await page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.fixture
async def api(
    threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> AsyncIterator[httpx.AsyncClient]:
    token = (await new_token(runtime, ws.admin, name="check"))[1]
    async with threadline.http(authorization=f"Bearer {token}") as client:
        yield client


async def stored(api: httpx.AsyncClient) -> Any:
    res = await api.get("/api/v1/settings/touchpoints")
    assert res.is_success, res.text
    return res.json()


async def open_settings(page: Page) -> Locator:
    await (
        page.get_by_role("navigation", name="Views").get_by_role("link", name="Touchpoints").click()
    )
    await (
        page.get_by_role("navigation", name="Touchpoints sections")
        .get_by_role("link", name="Settings")
        .click()
    )
    await expect(page).to_have_title("Touchpoint settings · Threadline")
    return page.get_by_role("form", name="Touchpoint settings")


async def shows_caps(form: Locator, kind: str, caps: list[tuple[str, str]]) -> None:
    rows = form.locator(f'[data-field^="caps.{kind}["]')
    await expect(rows).to_have_count(len(caps))
    title = kind.capitalize()
    for i, (count, window) in enumerate(caps, start=1):
        await expect(form.get_by_label(f"{title} cap {i} count")).to_have_value(count)
        await expect(form.get_by_label(f"{title} cap {i} window")).to_have_value(window)


async def test_an_admin_changes_the_caps_zone_and_consent_mode(
    page: Page, threadline: LiveServer, ws: Workspace, api: httpx.AsyncClient
) -> None:
    await sign_in(page, threadline.base_url, ws.admin_email)
    form = await open_settings(page)
    # The defaults: capped and quiet from the start.
    await shows_caps(form, "marketing", [("1", "16h"), ("3", "7d")])
    await shows_caps(form, "service", [("2", "1d")])
    await expect(form.get_by_label("Workspace time zone")).to_have_value("UTC")
    await expect(form.get_by_label("From")).to_have_value("21:00")
    await expect(form.get_by_label("Until")).to_have_value("08:00")
    await expect(form.get_by_role("radio", name="Everyone who hasn't withdrawn")).to_be_checked()
    await expect(
        form.get_by_text("Transactional touches — a receipt — are never capped")
    ).to_be_visible()
    await expect(page.get_by_text("Only admins change these.")).to_have_count(0)
    await shot(page, "touch_settings")
    assert await no_horizontal_overflow(page)
    await shot_bottom(page, "touch_settings_consent")

    await form.get_by_label("Marketing cap 1 count").fill("2")
    await form.get_by_label("Marketing cap 1 window").fill("1d")
    await form.get_by_role("button", name="Add a marketing cap").click()
    await expect(form.get_by_label("Marketing cap 3 count")).to_be_focused()
    await form.get_by_label("Marketing cap 3 count").fill("10")
    await form.get_by_label("Marketing cap 3 window").fill("30d")
    # The service cap goes; none is left.
    await form.get_by_role("button", name="Remove service cap 1").click()
    await expect(form.get_by_text("No cap: as many as the touchpoints send.")).to_be_visible()
    await form.get_by_label("Workspace time zone").fill("Europe/Berlin")
    await form.get_by_label("From").fill("22:30")
    await form.get_by_role("radio", name="Only who opted in").check()
    await form.get_by_role("button", name="Save").click()
    await expect(
        page.get_by_role("status").get_by_text("Saved the touchpoint settings")
    ).to_be_visible()
    await expect(form.get_by_role("button", name="Save")).to_be_focused()

    assert await stored(api) == {
        "timezone": "Europe/Berlin",
        "caps": {
            "marketing": [
                {"count": 2, "window": "1d"},
                {"count": 3, "window": "7d"},
                {"count": 10, "window": "30d"},
            ],
            "service": [],
        },
        "quiet_hours": {"start": "22:30", "end": "08:00"},
        "consent": "opt_in",
    }
    await page.reload()
    form = page.get_by_role("form", name="Touchpoint settings")
    await shows_caps(form, "marketing", [("2", "1d"), ("3", "7d"), ("10", "30d")])
    await shows_caps(form, "service", [])
    await expect(form.get_by_label("Workspace time zone")).to_have_value("Europe/Berlin")
    await expect(form.get_by_label("From")).to_have_value("22:30")
    await expect(form.get_by_role("radio", name="Only who opted in")).to_be_checked()

    # A narrower screen fits too.
    await page.set_viewport_size({"width": 1024, "height": 768})
    await shot(page, "touch_settings_saved_1024")
    assert await no_horizontal_overflow(page)


async def test_a_bad_window_is_named_at_its_row_and_nothing_is_saved(
    page: Page, threadline: LiveServer, ws: Workspace, api: httpx.AsyncClient
) -> None:
    await sign_in(page, threadline.base_url, ws.admin_email)
    form = await open_settings(page)
    await form.get_by_label("Workspace time zone").fill("Europe/Berlin")
    window = form.get_by_label("Marketing cap 2 window")
    await window.fill("soon")
    await form.get_by_role("button", name="Save").click()
    row_error = form.locator('[data-field="caps.marketing[1]"] > .field-error')
    await expect(row_error).to_contain_text("caps.marketing[1].window")
    await expect(row_error).to_contain_text("'soon' is not a duration")
    await expect(window).to_have_attribute("aria-invalid", "true")
    await expect(form.locator(".field-error:not(:empty)")).to_have_count(1)
    await shot(page, "touch_settings_422")
    assert await stored(api) == DEFAULTS

    # An unknown zone is named at its field; the row's error is gone.
    await window.fill("7d")
    await form.get_by_label("Workspace time zone").fill("Mars/Base")
    await form.get_by_role("button", name="Save").click()
    zone_error = form.locator('[data-field="timezone"] > .field-error')
    await expect(zone_error).to_contain_text("'Mars/Base' is not a known IANA time zone")
    await expect(row_error).to_be_empty()
    await expect(window).not_to_have_attribute("aria-invalid", "true")
    assert await stored(api) == DEFAULTS


async def test_an_agent_reads_the_settings_and_changes_nothing(
    page: Page, threadline: LiveServer, ws: Workspace
) -> None:
    await page.set_viewport_size({"width": 1024, "height": 768})
    await sign_in(page, threadline.base_url, ws.agent_email)
    form = await open_settings(page)
    await expect(form.get_by_text("Only admins change these.")).to_be_visible()
    await shows_caps(form, "marketing", [("1", "16h"), ("3", "7d")])
    await expect(form.get_by_label("Marketing cap 1 window")).to_be_disabled()
    await expect(form.get_by_label("Workspace time zone")).to_be_disabled()
    await expect(form.get_by_label("From")).to_be_disabled()
    await expect(form.get_by_role("radio", name="Only who opted in")).to_be_disabled()
    await expect(form.get_by_role("button")).to_have_count(0)
    await shot(page, "touch_settings_agent_1024")
    await shot_bottom(page, "touch_settings_agent_1024_end")
    assert await no_horizontal_overflow(page)
