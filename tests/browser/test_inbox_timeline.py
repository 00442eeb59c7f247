"""One timeline per customer (F3): the contact view holds every message of
every conversation and channel of the contact, in time order, each marked
with where it belongs, and the agent replies from there on the channel
they choose."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, expect

from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import sign_in
from tests.realtime.live import LiveServer, new_token
from tests.support import Workspace, fetch_all

pytestmark = pytest.mark.browser


async def test_the_contact_timeline_joins_a_chat_and_an_email_conversation(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    # An email conversation with the same customer, made through the API.
    token = (await new_token(runtime, ws.admin))[1]
    async with threadline.http(authorization=f"Bearer {token}") as api:
        made = await api.post(
            "/api/v1/conversations",
            json={
                "inbox_id": ws.other_inbox_id,
                "contact_id": ws.contact_id,
                "subject": "Invoice question",
            },
        )
        assert made.status_code == 201, made.text
        email_id = made.json()["id"]
        sent = await api.post(
            f"/api/v1/conversations/{email_id}/messages",
            json={"text": "Your invoice is attached. Anything else?"},
        )
        assert sent.status_code == 201, sent.text

    await sign_in(page, threadline.base_url, ws.admin_email)
    await page.goto(f"{threadline.base_url}/#/v/all/c/{ws.conversation_id}")
    await expect(page.locator(".message-inbound")).to_be_visible()
    await page.keyboard.press("c")

    timeline = page.get_by_label("Timeline")
    items = timeline.locator(".message")
    await expect(items).to_have_count(2)
    await expect(page).to_have_title("Cora Customer · Threadline")
    await expect(items.nth(0).locator(".message-text")).to_have_text("Hello, my order is late")
    await expect(items.nth(0).locator(".message-channel")).to_have_text("Website chat")
    await expect(items.nth(0).locator(".message-conversation")).to_have_text(
        f"#{ws.conversation_id}"
    )
    await expect(items.nth(1).locator(".message-text")).to_have_text(
        "Your invoice is attached. Anything else?"
    )
    await expect(items.nth(1).locator(".message-channel")).to_have_text("Email")
    await expect(items.nth(1).locator(".message-conversation")).to_have_text(
        f"#{email_id} Invoice question"
    )
    side = page.get_by_role("complementary", name="Contact")
    await expect(side.locator(".identity-value")).to_have_text(["customer@acme.test"])
    await expect(side.locator(".past-conversations li")).to_have_count(2)

    # Reply on the email conversation, from the timeline.
    await page.get_by_label("Reply on").select_option(f"c:{email_id}")
    box = page.get_by_role("textbox", name="Reply from the timeline")
    await box.fill("One more thing: the refund is on its way.")
    await box.press("Enter")
    await expect(items).to_have_count(3)
    await expect(items.nth(2).locator(".message-channel")).to_have_text("Email")
    rows = await fetch_all(
        runtime,
        sa.select(t.messages.c.text).where(t.messages.c.conversation_id == email_id),
    )
    assert [r.text for r in rows][-1] == "One more thing: the refund is on its way."

    # The timeline's conversation links lead to the conversation.
    await items.nth(0).locator(".message-conversation").click()
    await expect(page.get_by_role("main", name="Conversation")).to_contain_text(
        "Hello, my order is late"
    )
