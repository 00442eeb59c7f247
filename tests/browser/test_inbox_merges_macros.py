"""Merging contacts and conversations, and running macros, from the inbox
app (F3, F6): each is one action with its events and, for merges, an
audit entry; a contact merge can be undone from the toast."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, expect

from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.messages import do_receive_message
from server.domain.values import IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import sign_in
from tests.realtime.live import LiveServer, new_token
from tests.support import Workspace, fetch_all


async def one(runtime: Runtime, stmt: sa.Select[Any]) -> sa.Row[Any]:
    [row] = await fetch_all(runtime, stmt)
    return row


pytestmark = pytest.mark.browser


async def test_an_agent_merges_a_duplicate_contact_and_undoes_it(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    duplicate = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.PHONE, "+4712345678"),
        name="Cora C.",
        text="Can I change the delivery address?",
    )
    await sign_in(page, threadline.base_url, ws.admin_email)
    await page.goto(f"{threadline.base_url}/#/contact/{ws.contact_id}")
    timeline = page.get_by_label("Timeline").locator(".message")
    await expect(timeline).to_have_count(1)

    await page.get_by_role("button", name="Merge with another contact…").click()
    await page.keyboard.type("Cora C")
    await expect(page.locator(".picker-item.active")).to_contain_text("Cora C.")
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Merge contacts")
    await expect(dialog).to_contain_text("Keep Cora Customer")
    await expect(dialog.locator(".merge-moves")).to_contain_text("1 conversation")
    await expect(dialog.locator(".merge-moves")).to_contain_text("1 identity")
    await dialog.get_by_role("button", name="Merge", exact=True).click()

    # One timeline now: both customers' messages, and the phone identity.
    await expect(timeline).to_have_count(2)
    side = page.get_by_role("complementary", name="Contact")
    await expect(side.locator(".identity-value")).to_contain_text(["+4712345678"])
    moved = await one(
        runtime,
        sa.select(t.conversations.c.contact_id).where(
            t.conversations.c.id == duplicate.conversation_id
        ),
    )
    assert moved.contact_id == ws.contact_id

    await page.locator(".toast").get_by_role("button", name="Undo").click()
    await expect(page.locator(".toast", has_text="Merge undone")).to_be_visible()
    back = await one(
        runtime,
        sa.select(t.conversations.c.contact_id).where(
            t.conversations.c.id == duplicate.conversation_id
        ),
    )
    assert back.contact_id == duplicate.contact_id
    await expect(timeline).to_have_count(1)
    audit = await fetch_all(runtime, sa.select(t.audit_log.c.action).order_by(t.audit_log.c.id))
    assert len(audit) == 2, audit


async def test_an_agent_merges_conversations_and_runs_a_macro_with_the_keyboard(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    token = (await new_token(runtime, ws.admin))[1]
    async with threadline.http(authorization=f"Bearer {token}") as api:
        made = await api.post(
            "/api/v1/conversations",
            json={"inbox_id": ws.inbox_id, "contact_id": ws.contact_id, "subject": "Follow-up"},
        )
        assert made.status_code == 201, made.text
        source_id = made.json()["id"]
        res = await api.post(
            f"/api/v1/conversations/{source_id}/messages",
            json={"text": "Following up on your late order.", "private": True},
        )
        assert res.status_code == 201, res.text
        res = await api.post(
            "/api/v1/macros",
            json={
                "scope": "workspace",
                "name": "Close as shipped",
                "actions": [
                    {"type": "add_label", "label": "shipped"},
                    {"type": "set_priority", "priority": "low"},
                    {"type": "resolve"},
                ],
            },
        )
        assert res.status_code == 201, res.text

    await sign_in(page, threadline.base_url, ws.admin_email)
    await page.goto(f"{threadline.base_url}/#/v/all/c/{ws.conversation_id}")
    pane = page.get_by_role("main", name="Conversation")
    await expect(pane.locator(".message")).to_have_count(1)

    # Shift+M: merge the follow-up into this conversation.
    await page.keyboard.press("Shift+M")
    picker = page.get_by_role(
        "dialog", name="Merge another conversation of this contact into this one"
    )
    await expect(picker.locator(".picker-item.active")).to_contain_text(f"#{source_id} Follow-up")
    await page.keyboard.press("Enter")
    await expect(pane.locator(".message")).to_have_count(2)
    await expect(pane.locator(".message-note .message-text")).to_have_text(
        "Following up on your late order."
    )
    source = await one(runtime, sa.select(t.conversations).where(t.conversations.c.id == source_id))
    assert source.merged_into_id == ws.conversation_id

    # m: run the macro; every step lands.
    await page.keyboard.press("m")
    await expect(page.locator(".picker-item.active")).to_contain_text("Close as shipped")
    await page.keyboard.press("Enter")
    await expect(pane.locator(".status-resolved")).to_be_visible()
    await expect(pane.locator(".pane-subtitle .label-chip")).to_have_text("shipped")
    target = await one(
        runtime, sa.select(t.conversations).where(t.conversations.c.id == ws.conversation_id)
    )
    assert (target.status, target.priority) == ("resolved", "low")
