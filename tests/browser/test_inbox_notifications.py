"""Desktop notifications and the title badge for new customer messages in
the agent's own conversations (F4): permission is asked once, from a
button; a message in Mine raises a notification and a count in the title
until the agent opens the conversation."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from playwright.async_api import BrowserContext, Page, expect

from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.conversations import do_assign_conversation
from server.actions.messages import do_receive_message
from server.actions.reads import do_mark_read
from server.domain.values import IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import sign_in
from tests.realtime.live import LiveServer
from tests.support import PASSWORD, Workspace, fetch_all

pytestmark = pytest.mark.browser

# Records what the app asks of the Notification API instead of showing it
# (the test browser has no notification centre). The browser remembers a
# granted permission across reloads, as a real one does.
NOTIFICATION_PROBE = """(() => {
  const remembered = localStorage.getItem("test:permission");
  const state = { permission: remembered || "default", requests: 0, shown: [] };
  window.__notifications = state;
  class FakeNotification {
    static get permission() { return state.permission; }
    static async requestPermission() {
      state.requests += 1;
      state.permission = "granted";
      localStorage.setItem("test:permission", "granted");
      return "granted";
    }
    constructor(title, options) { state.shown.push({ title, body: options && options.body }); }
    close() {}
  }
  window.Notification = FakeNotification;
})();"""


async def write_in(runtime: Runtime, ws: Workspace, text: str) -> None:
    await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "customer@acme.test"),
        name="Cora Customer",
        text=text,
    )


async def read_to_the_end(runtime: Runtime, ws: Workspace) -> None:
    """Wait until the agent's read position reaches the conversation's last
    message (the app posts it after the message lands)."""
    c, r = t.conversations.c, t.conversation_reads.c
    query = (
        sa.select(c.last_seq, r.last_read_seq)
        .select_from(t.conversations)
        .outerjoin(
            t.conversation_reads,
            sa.and_(r.conversation_id == c.id, r.agent_id == ws.agent_id),
        )
        .where(c.id == ws.conversation_id)
    )
    async with asyncio.timeout(5):
        while True:
            [row] = await fetch_all(runtime, query)
            if (row.last_read_seq or 0) >= row.last_seq:
                return
            await asyncio.sleep(0.05)


async def test_permission_is_asked_once_and_mine_raises_a_badge_and_a_notification(
    page: Page, context: BrowserContext, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    await context.add_init_script(NOTIFICATION_PROBE)
    await perform(
        runtime,
        ws.admin,
        do_assign_conversation,
        conversation_id=ws.conversation_id,
        assignee_id=ws.agent_id,
    )
    # The agent has read what is there so far: nothing new in Mine.
    await perform(runtime, ws.agent, do_mark_read, conversation_id=ws.conversation_id, seq=1)
    await page.goto(f"{threadline.base_url}/")
    await page.get_by_label("Email").fill(ws.agent_email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    # Nothing is asked on the first screen after login...
    ask = page.get_by_role("region", name="Desktop notifications")
    await expect(page.locator(".conversation-row").first).to_be_visible()
    await expect(page.locator(".list-title")).to_have_text("Mine")
    await expect(ask).to_have_count(0)
    # ...nor for a private note; answering the customer is the moment.
    await page.goto(f"{threadline.base_url}/#/v/mine/c/{ws.conversation_id}")
    pane = page.get_by_role("main", name="Conversation")
    await pane.get_by_role("tab", name="Private note").click()
    await pane.get_by_role("textbox", name="Private note").fill("Checking the carrier")
    await pane.get_by_role("textbox", name="Private note").press("Enter")
    await expect(pane.locator(".message-note .message-text", has_text="Checking")).to_be_visible()
    await expect(ask).to_have_count(0)
    await pane.get_by_role("tab", name="Reply").click()
    await pane.get_by_role("textbox", name="Reply").fill("Looking into it now")
    await pane.get_by_role("textbox", name="Reply").press("Enter")
    await expect(ask).to_be_visible()
    assert await page.evaluate("window.__notifications.requests") == 0
    await ask.get_by_role("button", name="Turn on").click()
    await expect(ask).to_have_count(0)
    assert await page.evaluate("window.__notifications.requests") == 1
    # The app has recorded that the agent read its own note and reply, so
    # they don't count as unread after the reload below.
    await read_to_the_end(runtime, ws)
    # Asked once: a reload doesn't ask again.
    await page.reload()
    await expect(page.get_by_role("navigation", name="Views")).to_be_visible()
    await expect(ask).to_have_count(0)

    # The agent looks at the Unassigned view; the customer writes in the
    # conversation assigned to them.
    await page.goto(f"{threadline.base_url}/#/v/unassigned")
    await expect(page.locator(".list-title")).to_have_text("Unassigned")
    await expect(page).to_have_title("Unassigned · Threadline")
    await write_in(runtime, ws, "Are you there?")
    await expect(page).to_have_title("(1) Unassigned · Threadline")
    # The badge and the notification come from the same handler, in one go.
    shown = await page.evaluate("window.__notifications.shown")
    assert shown == [{"title": "New message", "body": "Are you there?"}]

    # Opening it clears the badge; a message in the open conversation
    # neither notifies nor counts.
    await page.goto(f"{threadline.base_url}/#/v/mine/c/{ws.conversation_id}")
    await expect(page.locator(".message-text", has_text="Are you there?")).to_be_visible()
    await expect(page).to_have_title("Mine · Threadline")
    await write_in(runtime, ws, "Hello again")
    await expect(page.locator(".message-text", has_text="Hello again")).to_be_visible()
    assert await page.evaluate("window.__notifications.shown.length") == 1
    await expect(page).to_have_title("Mine · Threadline")


async def test_messages_outside_mine_raise_nothing(
    page: Page, context: BrowserContext, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    await context.add_init_script(NOTIFICATION_PROBE.replace('|| "default"', '|| "granted"'))
    await sign_in(page, threadline.base_url, ws.agent_email)
    await page.goto(f"{threadline.base_url}/#/v/all")
    row = page.locator(".conversation-row", has_text="Cora Customer")
    await expect(row.locator(".unread-count")).to_have_text("1")
    await write_in(runtime, ws, "Anyone?")  # unassigned: not Mine
    await expect(row.locator(".unread-count")).to_have_text("2")
    assert await page.evaluate("window.__notifications.shown.length") == 0
    await expect(page).to_have_title("All · Threadline")
