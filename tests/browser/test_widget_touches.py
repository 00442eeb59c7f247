"""A widget touchpoint as the visitor meets it (F7, the widget channel):
live while they are on the site, as an unread message on the launcher;
on their next visit when they were away; and their answer continues the
touch's conversation instead of opening another."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from playwright.async_api import BrowserContext, Page, expect

from server.actions.inboxes import NewInbox
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.support import LAUNCHER, AppServer, launcher_becomes, widget_frame
from tests.support import Workspace, fetch_all
from tests.touchpoints.claim_support import make_touchpoint, process, start, widget_step

pytestmark = pytest.mark.browser

OFFER = "Still deciding? Free shipping on your cart today."
LATER = "Your cart is saved for a week."


def not_now() -> dict[str, str]:
    """Quiet hours an hour away (the browser lives in real time)."""
    later = datetime.now(UTC) + timedelta(hours=2)
    return {"start": later.strftime("%H:00"), "end": (later + timedelta(hours=1)).strftime("%H:00")}


async def visitor_contact(runtime: Runtime, widget: NewInbox) -> int:
    """The contact of the visitor's session, once the widget made it."""
    v = t.visitor_sessions.c
    deadline = time.monotonic() + 10
    while not (
        rows := await fetch_all(
            runtime, sa.select(v.contact_id).where(v.inbox_id == widget.inbox_id)
        )
    ):
        assert time.monotonic() < deadline, "no visitor session"
        await asyncio.sleep(0.05)  # polling interval of a condition wait
    assert len(rows) == 1, rows
    contact_id: int = rows[0].contact_id
    return contact_id


async def touch(runtime: Runtime, touchpoint_id: int, contact_id: int, key: str) -> None:
    await start(runtime, touchpoint_id, contact_id, key=key, due_at=datetime.now(UTC))
    batch = await process(runtime)
    assert batch.count("sent") == 1, batch


async def test_a_widget_touch_reaches_the_visitor_live_and_on_the_next_visit(
    page: Page,
    context: BrowserContext,
    shop: AppServer,
    runtime: Runtime,
    ws: Workspace,
    widget: NewInbox,
) -> None:
    await page.goto(shop.url)
    await launcher_becomes(page, {"name": "Open chat", "expanded": False})
    frame = await widget_frame(page)
    # The shop's page tells what the visitor looks at: that makes them a
    # visitor the widget can reach, chat never opened.
    await page.evaluate("Threadline.track('product_viewed', {name: 'Rain shell'})")
    contact_id = await visitor_contact(runtime, widget)
    offer = await make_touchpoint(
        runtime,
        ws,
        name="Cart nudge",
        inbox_id=widget.inbox_id,
        steps=[widget_step(OFFER)],
        quiet_hours=not_now(),
    )

    # On the site: it shows at once as an unread message.
    await touch(runtime, offer, contact_id, "cart:1")
    await launcher_becomes(page, {"name": "Open chat, 1 unread", "expanded": False})
    await page.locator(LAUNCHER).click()
    await expect(frame.locator(".msg.theirs", has_text=OFFER)).to_be_visible()

    # The visitor answers: the touch's conversation, not a new one.
    text = frame.locator("#text")
    await text.fill("Does that include the rain shell?")
    await text.press("Enter")
    m, c = t.messages.c, t.conversations.c
    answered = (
        sa.select(m.conversation_id, m.sender_kind)
        .join(t.conversations, c.id == m.conversation_id)
        .where(c.contact_id == contact_id)
    )
    deadline = time.monotonic() + 10
    while len(rows := await fetch_all(runtime, answered.order_by(m.id))) < 2:
        assert time.monotonic() < deadline, rows
        await asyncio.sleep(0.05)  # polling interval of a condition wait
    assert [r.sender_kind for r in rows] == ["system", "contact"]
    assert len({r.conversation_id for r in rows}) == 1

    # Away from the site, the next touch waits for the next visit.
    await page.close()
    # A service note: the marketing cap (one per 16 h) is spent.
    saved = await make_touchpoint(
        runtime,
        ws,
        name="Cart saved",
        kind="service",
        inbox_id=widget.inbox_id,
        steps=[widget_step(LATER)],
        quiet_hours=not_now(),
    )
    await touch(runtime, saved, contact_id, "cart:1")
    again = await context.new_page()
    await again.goto(shop.url)
    await launcher_becomes(again, {"name": "Open chat, 1 unread", "expanded": False})
    await again.locator(LAUNCHER).click()
    frame = await widget_frame(again)
    await expect(frame.locator(".msg.theirs", has_text=LATER)).to_be_visible()
