"""The agent inbox web app in Chromium (F4): logging in, working a
conversation with the keyboard alone, writing replies and notes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, WebSocketRoute, expect

from server.actions.context import perform
from server.actions.conversations import do_change_conversation_labels
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import sign_in
from tests.realtime.live import LiveServer
from tests.support import Workspace, fetch_all

pytestmark = pytest.mark.browser


async def conversation_row(runtime: Runtime, conversation_id: int) -> sa.Row[Any]:
    [row] = await fetch_all(
        runtime, sa.select(t.conversations).where(t.conversations.c.id == conversation_id)
    )
    return row


async def labels(runtime: Runtime, conversation_id: int) -> set[str]:
    rows = await fetch_all(
        runtime,
        sa.select(t.conversation_labels.c.label).where(
            t.conversation_labels.c.conversation_id == conversation_id
        ),
    )
    return {r.label for r in rows}


async def test_anonymous_visitors_get_the_login_form_and_a_wrong_password_is_refused(
    page: Page, threadline: LiveServer, ws: Workspace
) -> None:
    response = await page.goto(f"{threadline.base_url}/")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    await expect(page.get_by_role("heading", name="Threadline")).to_be_visible()

    await page.get_by_label("Email").fill(ws.agent_email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_have_text("That email and password don't match.")
    await expect(page.get_by_role("navigation", name="Views")).to_have_count(0)

    await sign_in(page, threadline.base_url, ws.agent_email)
    await expect(page.get_by_role("link", name="Mine")).to_be_visible()
    # A reload keeps the session (the cookie), and logging out ends it.
    await page.reload()
    await expect(page.get_by_role("navigation", name="Views")).to_be_visible()
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("button", name="Log in")).to_be_visible()


async def test_an_agent_works_a_conversation_with_the_keyboard_alone(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    await sign_in(page, threadline.base_url, ws.agent_email)
    # A mouse click on a view, then the keyboard: the keys go to the list.
    await page.get_by_role("link", name="Unassigned").click()
    row = page.locator(".conversation-row", has_text="Cora Customer")
    await expect(row).to_be_visible()
    await expect(row.locator(".unread-count")).to_have_text("1")

    # j moves the selection, Enter opens it; the unread count goes.
    await page.keyboard.press("j")
    await page.keyboard.press("Enter")
    pane = page.get_by_role("main", name="Conversation")
    await expect(pane.get_by_role("heading", name="Cora Customer")).to_be_visible()
    await expect(pane.locator(".message-inbound .message-text")).to_have_text(
        "Hello, my order is late"
    )
    await expect(row.locator(".unread-count")).to_have_count(0)

    # ? lists the shortcuts; Escape closes the list.
    await page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_dialog).to_contain_text("Ctrl+K")
    await page.keyboard.press("Escape")
    await expect(help_dialog).to_have_count(0)

    # a: assign to myself.
    await page.keyboard.press("a")
    picker = page.get_by_role("dialog", name="Assign to")
    await expect(picker).to_be_visible()
    await page.keyboard.type("gus")
    await page.keyboard.press("Enter")
    await expect(pane.locator(".assignee-line")).to_have_text("Gus Agent")
    assert (await conversation_row(runtime, ws.conversation_id)).assignee_id == ws.agent_id

    # l: a new label, typed.
    await page.keyboard.press("l")
    await page.keyboard.type("vip")
    await page.keyboard.press("Enter")
    await expect(pane.locator(".pane-subtitle .label-chip")).to_have_text("vip")
    assert await labels(runtime, ws.conversation_id) == {"vip"}

    # r: reply; n: a private note. Enter sends each.
    await page.keyboard.press("r")
    composer = pane.get_by_role("textbox", name="Reply")
    await expect(composer).to_be_focused()
    await composer.press_sequentially("Sorry about that! It ships today.")
    await composer.press("Enter")
    await expect(pane.locator(".message-outbound:not(.pending) .message-text")).to_have_text(
        "Sorry about that! It ships today."
    )
    await composer.press("Escape")
    await page.keyboard.press("n")
    note = pane.get_by_role("textbox", name="Private note")
    await expect(note).to_be_focused()
    await note.press_sequentially("Checked with the warehouse.")
    await note.press("Enter")
    await expect(pane.locator(".message-note:not(.pending) .message-text")).to_have_text(
        "Checked with the warehouse."
    )
    await note.press("Escape")
    sent = await fetch_all(
        runtime,
        sa.select(t.messages.c.text, t.messages.c.private)
        .where(t.messages.c.conversation_id == ws.conversation_id, t.messages.c.seq > 1)
        .order_by(t.messages.c.seq),
    )
    assert [(m.text, m.private) for m in sent] == [
        ("Sorry about that! It ships today.", False),
        ("Checked with the warehouse.", True),
    ]

    # s: snooze for an hour (the first preset).
    await page.keyboard.press("s")
    await expect(page.get_by_role("dialog", name="Snooze until")).to_be_visible()
    await page.keyboard.press("Enter")
    await expect(pane.locator(".status-snoozed")).to_be_visible()
    snoozed = await conversation_row(runtime, ws.conversation_id)
    assert snoozed.status == "snoozed"
    assert snoozed.snoozed_until is not None
    left = snoozed.snoozed_until - runtime.clock.now()
    assert timedelta(minutes=55) < left <= timedelta(hours=1)

    # e: resolve; e again: reopen.
    await page.keyboard.press("e")
    await expect(pane.locator(".status-resolved")).to_be_visible()
    assert (await conversation_row(runtime, ws.conversation_id)).status == "resolved"
    await page.keyboard.press("e")
    await expect(pane.locator(".status-open")).to_be_visible()
    assert (await conversation_row(runtime, ws.conversation_id)).status == "open"


async def test_a_view_saved_as_a_filter_shows_in_the_sidebar_with_its_count(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    await sign_in(page, threadline.base_url, ws.agent_email)
    await page.goto(f"{threadline.base_url}/#/v/inbox:{ws.inbox_id}")
    await expect(page.locator(".conversation-row")).to_have_count(1)
    await page.get_by_role("button", name="Save as filter").click()
    await page.keyboard.type("Website, open")
    await page.keyboard.press("Enter")
    saved = page.get_by_role("link", name="Website, open")
    await expect(saved.locator(".view-count")).to_have_text("1")
    await expect(saved).to_have_attribute("aria-current", "page")
    await expect(page.locator(".conversation-row")).to_have_count(1)
    [row] = await fetch_all(runtime, sa.select(t.saved_filters))
    assert (row.agent_id, row.name) == (ws.agent_id, "Website, open")
    assert row.query == {"status": ["open"], "inbox_id": ws.inbox_id}

    # Resolving the conversation empties the filter's count, live.
    await page.keyboard.press("j")
    await page.keyboard.press("Enter")
    pane = page.get_by_role("main", name="Conversation")
    await expect(pane.get_by_role("heading", name="Cora Customer")).to_be_visible()
    await page.keyboard.press("e")
    await expect(saved.locator(".view-count")).to_have_text("0")

    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete filter").click()
    await expect(saved).to_have_count(0)
    assert await fetch_all(runtime, sa.select(t.saved_filters)) == []


async def test_the_first_screen_is_a_view_with_conversations(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    # Nothing is assigned to the admin: Mine is empty, Unassigned is not.
    await sign_in(page, threadline.base_url, ws.admin_email)
    await expect(page.locator(".list-title")).to_have_text("Unassigned")
    await expect(page.locator(".conversation-row", has_text="Cora Customer")).to_be_visible()
    assert page.url.endswith("#/v/unassigned")
    # A link to a view is honoured even when that view is empty.
    await page.goto(f"{threadline.base_url}/#/v/mine")
    await page.reload()
    await expect(page.locator(".list-title")).to_have_text("Mine")


async def test_the_counts_load_again_once_the_socket_is_subscribed(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    # PROTOCOLS.md P2, subscribe first, then load: the first view is chosen
    # from counts loaded while the socket connects, which miss what changes
    # before it is subscribed; its first `ready` loads them again.
    release = asyncio.Event()

    async def held(socket: WebSocketRoute) -> None:
        await release.wait()
        socket.connect_to_server()

    await page.route_web_socket("**/ws/agent", held)
    await sign_in(page, threadline.base_url, ws.admin_email)
    views = page.get_by_role("navigation", name="Views")
    await expect(views.locator('[data-view="unassigned"] .view-count')).to_have_text("1")
    await page.wait_for_url("**/#/v/unassigned")
    # Seen by neither the first counts nor the socket (not connected yet).
    await perform(
        runtime,
        ws.admin,
        do_change_conversation_labels,
        conversation_id=ws.conversation_id,
        add=["counted"],
    )
    release.set()
    await expect(views.locator('[data-view="label:counted"] .view-count')).to_have_text("1")
