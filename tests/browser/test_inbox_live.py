"""Two agents at once, and an agent whose network goes away (F4 real time,
PROTOCOLS.md P2): changes appear without a reload, and after an outage the
app resumes with nothing twice and nothing missing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from playwright.async_api import Browser, BrowserContext, Page, expect

from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.messages import do_receive_message
from server.domain.values import IdentityKind
from server.realtime.visibility import Close, CloseCode
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import sign_in
from tests.realtime.live import LiveServer
from tests.support import Workspace, fetch_all

pytestmark = pytest.mark.browser


@pytest.fixture
async def second_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    yield made
    await made.close()


async def open_conversation(page: Page, base_url: str, conversation_id: int) -> None:
    await page.goto(f"{base_url}/#/v/all/c/{conversation_id}")
    await expect(
        page.get_by_role("main", name="Conversation").locator(".message").first
    ).to_be_visible()


async def test_two_agents_see_each_other_live(
    page: Page,
    second_context: BrowserContext,
    threadline: LiveServer,
    runtime: Runtime,
    ws: Workspace,
) -> None:
    gus, ada = page, await second_context.new_page()
    await sign_in(gus, threadline.base_url, ws.agent_email)
    await sign_in(ada, threadline.base_url, ws.admin_email)
    await open_conversation(gus, threadline.base_url, ws.conversation_id)
    await open_conversation(ada, threadline.base_url, ws.conversation_id)
    gus_pane = gus.get_by_role("main", name="Conversation")
    ada_pane = ada.get_by_role("main", name="Conversation")

    # Each sees the other viewing.
    await expect(gus_pane.locator(".viewers .avatar", has_text="AA")).to_be_visible()
    await expect(ada_pane.locator(".viewers .avatar", has_text="GA")).to_be_visible()

    # Ada starts typing a reply: Gus is warned he may answer twice. A note
    # being written is shown, but is no collision.
    reply_box = ada_pane.get_by_role("textbox", name="Reply")
    await reply_box.press_sequentially("Looking into it")
    await expect(gus_pane.locator(".collision")).to_contain_text("Ada Admin is typing a reply")
    await reply_box.press("Enter")
    await expect(gus_pane.locator(".message-outbound .message-text")).to_have_text(
        "Looking into it"
    )
    await expect(gus_pane.locator(".collision")).to_have_count(0)

    # Ada labels and assigns; Gus's pane and list follow without a reload.
    await ada.keyboard.press("Escape")
    await ada.keyboard.press("l")
    await ada.keyboard.type("refund")
    await ada.keyboard.press("Enter")
    await expect(gus_pane.locator(".pane-subtitle .label-chip")).to_have_text("refund")
    await ada.keyboard.press("a")
    await ada.keyboard.type("gus")
    await ada.keyboard.press("Enter")
    await expect(gus_pane.locator(".assignee-line")).to_have_text("Gus Agent")
    mine = gus.get_by_role("link", name="Mine")
    await expect(mine.locator(".view-count")).to_have_text("1")

    # A new customer writes in: both lists show it, once.
    await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "newcomer@example.com"),
        name="Nora Newcomer",
        text="Is the store open on Sunday?",
    )
    for agent in (gus, ada):
        await agent.get_by_role("link", name="All").click()
        row = agent.locator(".conversation-row", has_text="Nora Newcomer")
        await expect(row).to_have_count(1)
        await expect(row.locator(".row-preview")).to_have_text("Is the store open on Sunday?")


async def test_after_a_network_outage_nothing_is_missing_or_twice(
    page: Page,
    context: BrowserContext,
    threadline: LiveServer,
    runtime: Runtime,
    ws: Workspace,
) -> None:
    await sign_in(page, threadline.base_url, ws.agent_email)
    await open_conversation(page, threadline.base_url, ws.conversation_id)
    pane = page.get_by_role("main", name="Conversation")
    banner = page.locator(".connection")
    await expect(banner).to_be_hidden()

    await context.set_offline(True)
    # The app drops its socket when the browser reports going offline. Chromium's
    # offline mode would otherwise hold an open socket rather than drop it; a
    # real outage costs the connection, so the server drops any it still has.
    await expect(banner).to_contain_text("Offline")
    for socket in threadline.connections(ws.id):
        if socket.delivery.viewer and socket.delivery.viewer.agent_id == ws.agent_id:
            socket.request_close(Close(CloseCode.GOING_AWAY, "the network went away"))

    # While the agent is away the customer writes three times, and the
    # agent writes a reply that can't go out yet.
    customer_texts = ["Any news?", "It's for a birthday", "Saturday at the latest"]
    for text in customer_texts:
        await perform(
            runtime,
            ws.system,
            do_receive_message,
            inbox_id=ws.inbox_id,
            identity=IdentityInput(IdentityKind.EMAIL, "customer@acme.test"),
            name="Cora Customer",
            text=text,
        )
    box = pane.get_by_role("textbox", name="Reply")
    await box.press_sequentially("It will arrive Friday.")
    await box.press("Enter")
    await expect(pane.locator(".message.pending .delivery")).to_have_text("Sending…")
    assert await pane.locator(".message-text", has_text="Any news?").count() == 0

    await context.set_offline(False)
    await expect(banner).to_be_hidden(timeout=15_000)
    await expect(pane.locator(".message.pending")).to_have_count(0)
    expected = ["Hello, my order is late", *customer_texts, "It will arrive Friday."]
    texts = pane.locator(".message .message-text")
    await expect(texts).to_have_text(expected)

    async def stored() -> list[str]:
        rows = await fetch_all(
            runtime,
            sa.select(t.messages.c.text)
            .where(t.messages.c.conversation_id == ws.conversation_id)
            .order_by(t.messages.c.seq),
        )
        return [r.text for r in rows]

    assert await stored() == expected
    # Once more after a reload: the server's log and the screen agree.
    await page.reload()
    await expect(
        page.get_by_role("main", name="Conversation").locator(".message .message-text")
    ).to_have_text(expected)
