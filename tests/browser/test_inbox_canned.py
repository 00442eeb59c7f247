"""A visitor chats through the widget; the agent answers in the inbox app
with a canned response whose variables are filled for this customer
(F4, F6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from server.actions.canned_responses import do_create_canned_response
from server.actions.contacts import do_update_contact
from server.actions.context import perform
from server.actions.inboxes import NewInbox
from server.domain.values import CannedScope
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import sign_in
from tests.browser.support import LAUNCHER, AppServer, widget_frame
from tests.realtime.live import LiveServer
from tests.support import Workspace, fetch_all

pytestmark = pytest.mark.browser

TEMPLATE = (
    'Hi {{contact.first_name|default("there")}}, {{agent.first_name}} here:'
    " your order from conversation #{{conversation.id}} ships today."
)


@pytest.fixture
async def visitor_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    yield made
    await made.close()


async def test_an_agent_answers_a_widget_visitor_with_a_filled_canned_response(
    page: Page,
    visitor_context: BrowserContext,
    shop: AppServer,
    widget: NewInbox,
    threadline: LiveServer,
    runtime: Runtime,
    ws: Workspace,
) -> None:
    canned_id = await perform(
        runtime,
        ws.admin,
        do_create_canned_response,
        scope=CannedScope.WORKSPACE,
        shortcut="where",
        title="Where is my order",
        body=TEMPLATE,
    )
    await sign_in(page, threadline.base_url, ws.agent_email)
    await page.goto(f"{threadline.base_url}/#/v/inbox:{widget.inbox_id}")

    # The visitor writes from the shop page.
    visitor = await visitor_context.new_page()
    await visitor.goto(shop.url)
    await visitor.locator(LAUNCHER).click()
    frame = await widget_frame(visitor)
    await frame.locator("#text").fill("Where is my order?")
    await frame.locator("#text").press("Enter")

    # It appears in the agent's list without a reload.
    row = page.locator(".conversation-row", has_text="Where is my order?")
    await expect(row).to_be_visible()
    [conversation] = await fetch_all(
        runtime, sa.select(t.conversations).where(t.conversations.c.inbox_id == widget.inbox_id)
    )
    # The customer told us their name (say, on the phone).
    await perform(
        runtime,
        ws.admin,
        do_update_contact,
        contact_id=conversation.contact_id,
        name="Jamie Rivera",
    )
    await row.click()
    pane = page.get_by_role("main", name="Conversation")
    await expect(pane.get_by_role("heading", name="Jamie Rivera")).to_be_visible()

    # The visitor starts typing again: the agent sees it.
    await frame.locator("#text").press_sequentially("Also")
    await expect(pane.locator(".typing")).to_have_text("Jamie Rivera is typing…")

    # `/` in the composer opens the picker; the preview is filled in.
    box = pane.get_by_role("textbox", name="Reply")
    await box.click()
    await box.press_sequentially("/")
    picker = page.get_by_role("dialog", name="Canned responses")
    await expect(picker).to_be_visible()
    await page.keyboard.type("whe")
    expected = f"Hi Jamie, Gus here: your order from conversation #{conversation.id} ships today."
    await expect(picker.locator(".picker-item.active .picker-label")).to_have_text("/where")
    await expect(picker.locator(".canned-preview-text")).to_have_text(expected)
    await page.keyboard.press("Enter")
    await expect(picker).to_have_count(0)
    await expect(box).to_have_value(expected)
    await box.press("Enter")

    # The visitor reads it; the response counts one use.
    await expect(frame.locator(".msg.theirs .bubble", has_text=expected)).to_be_visible()
    await expect(pane.locator(".message-outbound:not(.pending) .message-text")).to_have_text(
        expected
    )

    [used] = await fetch_all(
        runtime,
        sa.select(t.canned_responses.c.usage_count).where(t.canned_responses.c.id == canned_id),
    )
    assert used.usage_count == 1


async def canned_page(page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace) -> Page:
    """Two responses whose shortcuts sort apart ('refund' first), and the
    admin in the seeded conversation's composer."""
    for shortcut, body in [
        ("refund", "Your refund is on its way."),
        ("shipping", "We ship in 1-2 days."),
    ]:
        await perform(
            runtime,
            ws.admin,
            do_create_canned_response,
            scope=CannedScope.WORKSPACE,
            shortcut=shortcut,
            title=shortcut.title(),
            body=body,
        )
    await sign_in(page, threadline.base_url, ws.admin_email)
    await page.goto(f"{threadline.base_url}/#/v/all/c/{ws.conversation_id}")
    return page


async def delay_canned_lists(page: Page, seconds: float) -> None:
    """Every canned-response list answers `seconds` late, as on a slow link."""

    async def late(route: Route) -> None:
        await asyncio.sleep(seconds)
        await route.continue_()

    await page.route("**/api/v1/canned_responses?*", late)


@pytest.mark.parametrize("latency", [0.0, 0.25])
async def test_enter_in_the_canned_picker_takes_what_the_typed_text_matches(
    latency: float, page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    await canned_page(page, threadline, runtime, ws)
    if latency:
        await delay_canned_lists(page, latency)
    box = page.get_by_role("main", name="Conversation").get_by_role("textbox", name="Reply")
    await box.click()
    # Typed in one go and confirmed at once, before the filter's answer for
    # "ship" (or, with latency, any answer at all) has come back.
    await box.press_sequentially("/ship")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog", name="Canned responses")).to_have_count(0)
    await expect(box).to_have_value("We ship in 1-2 days.")
