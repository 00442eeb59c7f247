"""The rest of what an agent does by hand (F4, F6): files and emoji in the
composer, priority, a team, a typed snooze date, searching by email, and
managing canned responses and macros on the settings pages."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.async_api import FilePayload, Page, WebSocketRoute, expect

from server.actions.context import perform
from server.actions.conversations import do_change_conversation_labels
from server.actions.teams import do_add_team_member, do_create_team
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import sign_in
from tests.realtime.live import LiveServer
from tests.support import Workspace, fetch_all

pytestmark = pytest.mark.browser

# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


async def conversation(runtime: Runtime, conversation_id: int) -> sa.Row[Any]:
    [row] = await fetch_all(
        runtime, sa.select(t.conversations).where(t.conversations.c.id == conversation_id)
    )
    return row


async def test_files_emoji_priority_team_and_a_typed_snooze_date(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    team_id = await perform(runtime, ws.system, do_create_team, name="Returns", description="")
    await perform(runtime, ws.system, do_add_team_member, team_id=team_id, agent_id=ws.agent_id)
    await sign_in(page, threadline.base_url, ws.agent_email)
    await page.goto(f"{threadline.base_url}/#/v/all/c/{ws.conversation_id}")
    pane = page.get_by_role("main", name="Conversation")
    box = pane.get_by_role("textbox", name="Reply")
    await expect(box).to_be_visible()

    # A file through the Attach button's file chooser, and an emoji.
    async with page.expect_file_chooser() as chooser:
        await pane.get_by_role("button", name="Attach files").click()
    await (await chooser.value).set_files(
        files=[FilePayload(name="receipt.png", mimeType="image/png", buffer=PNG)]
    )
    await expect(pane.locator(".file-chip")).to_contain_text("receipt.png")
    await box.fill("Here is your receipt ")
    await pane.get_by_role("button", name="Emoji").click()
    await page.get_by_role("button", name="👍").click()
    await expect(box).to_have_value("Here is your receipt 👍")
    await expect(box).to_be_focused()
    await box.press("Enter")
    sent = pane.locator(".message-outbound:not(.pending)")
    await expect(sent.locator(".message-text")).to_have_text("Here is your receipt 👍")
    await expect(sent.locator(".attachment.image img")).to_have_attribute("alt", "receipt.png")
    [message] = await fetch_all(
        runtime,
        sa.select(t.messages).where(
            t.messages.c.conversation_id == ws.conversation_id, t.messages.c.seq == 2
        ),
    )
    assert [a["filename"] for a in message.attachments] == ["receipt.png"]
    await box.press("Escape")

    # p: priority; a: a team.
    await page.keyboard.press("p")
    await page.keyboard.type("urg")
    await page.keyboard.press("Enter")
    await expect(pane.locator(".pane-subtitle .priority")).to_have_text("urgent")
    await page.keyboard.press("a")
    await page.keyboard.type("Returns")
    await page.keyboard.press("Enter")
    await expect(pane.locator(".assignee-line")).to_contain_text("Returns")
    row = await conversation(runtime, ws.conversation_id)
    assert (row.priority, row.team_id) == ("urgent", team_id)

    # s with a typed date.
    await page.keyboard.press("s")
    year = datetime.now().year + 1
    await page.keyboard.type(f"{year}-03-02 14:30")
    await expect(page.locator(".picker-item.active")).to_contain_text("Until")
    await page.keyboard.press("Enter")
    await expect(pane.locator(".status-snoozed")).to_be_visible()
    until = (await conversation(runtime, ws.conversation_id)).snoozed_until
    local = until.astimezone()  # the browser and the test share the machine's zone
    assert (local.year, local.month, local.day, local.hour, local.minute) == (year, 3, 2, 14, 30)

    # Ctrl+K finds the customer by email.
    await page.keyboard.press("Control+k")
    await page.keyboard.type("customer@acme")
    palette = page.get_by_role("dialog", name="Search or run a command")
    await expect(palette.locator(".picker-item").first).to_contain_text("Cora Customer")
    # Her conversations are listed with her.
    found = palette.locator(".picker-item", has_text=f"Cora Customer · #{ws.conversation_id}")
    await expect(found).to_contain_text("Conversations")
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Timeline").locator(".message")).to_have_count(2)


async def test_canned_responses_and_macros_are_managed_on_the_settings_pages(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    await sign_in(page, threadline.base_url, ws.admin_email)
    await page.get_by_role("link", name="Canned responses").click()
    await expect(page).to_have_title("Canned responses · Threadline")
    await page.get_by_role("button", name="New canned response").click()
    await page.get_by_label("Shortcut").fill("late")
    await page.get_by_label("Title").fill("Late order")
    # A template error is shown at the field, and nothing is saved.
    await page.get_by_label("Body").fill("Hi {{contact.password}}")
    await page.get_by_role("button", name="Save").click()
    error = page.locator('[data-field="body"] .field-error')
    await expect(error).to_contain_text("contact.password")
    assert await fetch_all(runtime, sa.select(t.canned_responses)) == []
    await page.get_by_label("Body").fill('Sorry {{contact.first_name|default("there")}}!')
    await page.get_by_role("button", name="Save").click()
    table = page.locator(".settings-table")
    await expect(table).to_contain_text("Late order")

    # Edit, then delete.
    await page.get_by_role("button", name="/late").click()
    await page.get_by_label("Title").fill("Late order, apology")
    await page.get_by_role("button", name="Save").click()
    await expect(table).to_contain_text("Late order, apology")
    [saved] = await fetch_all(runtime, sa.select(t.canned_responses))
    assert (saved.shortcut, saved.title, saved.scope) == (
        "late",
        "Late order, apology",
        "workspace",
    )

    # A macro that replies with it, labels and resolves.
    await page.get_by_role("link", name="Macros").click()
    await expect(page).to_have_title("Macros · Threadline")
    await page.get_by_role("button", name="New macro").click()
    await page.get_by_label("Name").fill("Apologise and close")
    await page.get_by_label("Step 1", exact=True).select_option("send_canned_response")
    await page.get_by_role("button", name="Add a step").click()
    await page.get_by_label("Step 2", exact=True).select_option("add_label")
    await page.get_by_label("Step 2 label").fill("late")
    await page.get_by_role("button", name="Add a step").click()
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".settings-table")).to_contain_text("Apologise and close")
    [macro] = await fetch_all(runtime, sa.select(t.macros))
    assert macro.actions == [
        {"type": "send_canned_response", "canned_response_id": saved.id},
        {"type": "add_label", "label": "late"},
        {"type": "resolve"},
    ]

    # Deleting the canned response.
    await page.get_by_role("link", name="Canned responses").click()
    await page.get_by_role("button", name="/late").click()
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete").click()
    await expect(page.get_by_text("No canned responses yet.")).to_be_visible()


async def test_a_draft_and_its_file_survive_the_conversation_loading_again(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    # The live socket is held back, so the agent starts writing before its
    # first `ready`, which loads the open conversation again (as a resync
    # does).
    release = asyncio.Event()

    async def held(socket: WebSocketRoute) -> None:
        await release.wait()
        socket.connect_to_server()

    await page.route_web_socket("**/ws/agent", held)
    await sign_in(page, threadline.base_url, ws.agent_email)
    await page.goto(f"{threadline.base_url}/#/v/all/c/{ws.conversation_id}")
    pane = page.get_by_role("main", name="Conversation")
    box = pane.get_by_role("textbox", name="Reply")
    async with page.expect_file_chooser() as chooser:
        await pane.get_by_role("button", name="Attach files").click()
    await (await chooser.value).set_files(
        files=[FilePayload(name="receipt.png", mimeType="image/png", buffer=PNG)]
    )
    await expect(pane.locator(".file-chip")).to_contain_text("receipt.png")
    await box.fill("Half-written answer")

    # A change only the reload shows (the socket never saw it: it was not
    # connected yet), so the test knows when the reload has landed.
    await perform(
        runtime,
        ws.admin,
        do_change_conversation_labels,
        conversation_id=ws.conversation_id,
        add=["reloaded"],
    )
    release.set()
    await expect(pane.locator(".pane-header .label-chip")).to_have_text("reloaded")
    await expect(box).to_have_value("Half-written answer")
    await expect(pane.locator(".file-chip")).to_contain_text("receipt.png")
