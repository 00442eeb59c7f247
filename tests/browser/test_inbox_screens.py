"""The inbox app's main screens at a laptop and a small-laptop size, saved
for review (tests/browser/screenshots/), each checked to fit its width."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from server.actions.canned_responses import do_create_canned_response
from server.actions.context import perform
from server.actions.conversations import do_change_conversation_labels
from server.actions.messages import do_send_message
from server.domain.values import CannedScope
from server.runtime import Runtime
from tests.browser.inbox_ui import no_horizontal_overflow, sign_in
from tests.realtime.live import LiveServer
from tests.support import Workspace

pytestmark = pytest.mark.browser

SIZES = [(1440, 900), (1024, 768)]


async def furnish(runtime: Runtime, ws: Workspace) -> None:
    await perform(
        runtime,
        ws.admin,
        do_send_message,
        conversation_id=ws.conversation_id,
        text="Sorry to hear that! Could you send me your order number?",
    )
    await perform(
        runtime,
        ws.admin,
        do_send_message,
        conversation_id=ws.conversation_id,
        text="Customer asked twice already, let's prioritise.",
        private=True,
    )
    await perform(
        runtime,
        ws.admin,
        do_change_conversation_labels,
        conversation_id=ws.conversation_id,
        add=["shipping", "vip"],
    )
    for shortcut, title, body in [
        (
            "shipping",
            "Shipping times",
            'Hi {{contact.first_name|default("there")}}! We ship in 1-2 days.',
        ),
        ("thanks", "Thanks, closing", "Glad I could help, {{contact.first_name}}!"),
    ]:
        await perform(
            runtime,
            ws.admin,
            do_create_canned_response,
            scope=CannedScope.WORKSPACE,
            shortcut=shortcut,
            title=title,
            body=body,
        )


@pytest.mark.parametrize(("width", "height"), SIZES)
async def test_main_screens_fit_and_are_saved_for_review(
    width: int,
    height: int,
    browser: Browser,
    threadline: LiveServer,
    runtime: Runtime,
    ws: Workspace,
    screenshots: Path,
) -> None:
    await furnish(runtime, ws)
    context = await browser.new_context(viewport={"width": width, "height": height})
    try:
        page = await context.new_page()
        await sign_in(page, threadline.base_url, ws.admin_email)
        await page.goto(f"{threadline.base_url}/#/v/all/c/{ws.conversation_id}")
        await expect(page.locator(".message-note")).to_be_visible()
        await expect(page.locator(".contact-column .contact-name")).to_have_text("Cora Customer")
        assert await no_horizontal_overflow(page)
        await page.screenshot(path=str(screenshots / f"inbox-conversation-{width}x{height}.png"))

        await page.keyboard.press("c")
        await expect(page.get_by_label("Timeline").locator(".message")).to_have_count(3)
        assert await no_horizontal_overflow(page)
        await page.screenshot(path=str(screenshots / f"inbox-contact-{width}x{height}.png"))

        await page.goto(f"{threadline.base_url}/#/settings/canned")
        await page.get_by_role("button", name="/shipping").click()
        await expect(page.get_by_label("Shortcut")).to_have_value("shipping")
        assert await no_horizontal_overflow(page)
        await page.screenshot(path=str(screenshots / f"inbox-canned-{width}x{height}.png"))
    finally:
        await context.close()
