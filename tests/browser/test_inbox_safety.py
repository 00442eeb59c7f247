"""Every string a user supplies reaches the agent's DOM as text (F4, P7): a
corpus of script and HTML payloads goes through every field the app shows,
and no rendered screen holds a script, an event-handler attribute or a
javascript: URL, and nothing runs."""

from __future__ import annotations

import pytest
from playwright.async_api import Dialog, Page, expect

from server.actions.agents import do_create_agent
from server.actions.canned_responses import do_create_canned_response
from server.actions.contacts import IdentityInput, do_update_contact
from server.actions.context import perform
from server.actions.inboxes import do_add_inbox_member, do_create_inbox
from server.actions.messages import do_receive_message
from server.actions.teams import do_add_team_member, do_create_team
from server.actions.visitors import do_track_contact_event
from server.domain.values import CannedScope, IdentityKind, InboxKind
from server.runtime import Runtime
from tests.browser.inbox_ui import dangerous_dom, sign_in
from tests.realtime.live import LiveServer, new_token
from tests.support import PASSWORD, Workspace

pytestmark = pytest.mark.browser

# Each payload, if it ever ran, would set window.__xss.
PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "<svg onload=window.__xss=1>",
    '"><a href="javascript:window.__xss=1">click</a>',
    "javascript:window.__xss=1",
    '<iframe src="javascript:window.__xss=1"></iframe>',
    '<a href=" jav&#x09;ascript:window.__xss=1">t</a>',
    "<style>@import 'http://127.0.0.1:1/x.css';</style><b onmouseover=window.__xss=1>b</b>",
]
ALL = " ".join(PAYLOADS)
# A 1x1 PNG, so the attachment renders as an image preview.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


async def seed_hostile_workspace(runtime: Runtime, ws: Workspace, threadline: LiveServer) -> int:
    """Payloads in names, subjects, messages, notes, attributes, events,
    labels, canned responses, file names, team, inbox and agent names.
    Returns the hostile conversation's id."""
    admin = ws.admin
    inbox = await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name=PAYLOADS[1][:200],
        kind=InboxKind.WIDGET,
        settings={},
        box=runtime.secrets,
    )
    team_id = await perform(
        runtime, ws.system, do_create_team, name=PAYLOADS[2], description=PAYLOADS[0]
    )
    agent_id = await perform(
        runtime,
        ws.system,
        do_create_agent,
        email="hostile@acme.test",
        name=PAYLOADS[3][:200],
        password=PASSWORD,
    )
    await perform(runtime, ws.system, do_add_team_member, team_id=team_id, agent_id=agent_id)
    for member in (agent_id, ws.admin_id):
        await perform(
            runtime, ws.system, do_add_inbox_member, inbox_id=inbox.inbox_id, agent_id=member
        )
    got = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=inbox.inbox_id,
        identity=IdentityInput(IdentityKind.EXTERNAL, "hostile-1"),
        name=PAYLOADS[0],
        subject=PAYLOADS[5],
        text=ALL,
    )
    await perform(
        runtime,
        admin,
        do_update_contact,
        contact_id=got.contact_id,
        attributes={"plan": PAYLOADS[1], "note": {"html": PAYLOADS[6]}},
    )
    await perform(
        runtime,
        ws.system,
        do_track_contact_event,
        contact_id=got.contact_id,
        name=PAYLOADS[2][:100],
        properties={"item": PAYLOADS[0], "url": PAYLOADS[4]},
    )
    await perform(
        runtime,
        admin,
        do_create_canned_response,
        scope=CannedScope.WORKSPACE,
        shortcut="hostile",
        title=PAYLOADS[1],
        body=ALL,
    )
    token = (await new_token(runtime, admin))[1]
    async with threadline.http(authorization=f"Bearer {token}") as api:
        up = await api.post(
            f"/api/v1/inboxes/{inbox.inbox_id}/attachments",
            params={"filename": '"><img src=x onerror=window.__xss=1>.png'},
            content=PNG,
            headers={"content-type": "image/png"},
        )
        assert up.status_code == 201, up.text
        file_id = up.json()["attachment"]["id"]
        for body in (
            {"text": ALL, "attachment_ids": [file_id]},
            {"text": PAYLOADS[7], "private": True},
        ):
            res = await api.post(f"/api/v1/conversations/{got.conversation_id}/messages", json=body)
            assert res.status_code == 201, res.text
        res = await api.patch(
            f"/api/v1/conversations/{got.conversation_id}",
            json={"add_labels": ["<b onclick=x>vip</b>"]},
        )
        assert res.status_code == 200, res.text
    return got.conversation_id


async def assert_clean(page: Page, where: str) -> None:
    found = await dangerous_dom(page)
    assert not found, f"{where}: {found}"
    assert await page.evaluate("window.__xss") is None, f"{where}: a payload ran"


async def test_hostile_strings_render_as_text_on_every_screen(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    conversation_id = await seed_hostile_workspace(runtime, ws, threadline)
    dialogs: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    await sign_in(page, threadline.base_url, ws.admin_email)

    # The list, the sidebar (inbox, team, label names), the conversation.
    await page.goto(f"{threadline.base_url}/#/v/all/c/{conversation_id}")
    pane = page.get_by_role("main", name="Conversation")
    await expect(pane.get_by_role("heading", name=PAYLOADS[0])).to_be_visible()
    await expect(pane.locator(".message-inbound .message-text")).to_have_text(ALL)
    await expect(pane.locator(".message-note .message-text")).to_have_text(PAYLOADS[7])
    await expect(pane.locator(".attachment.image img")).to_have_count(1)
    await expect(
        page.locator(".conversation-row .row-contact", has_text=PAYLOADS[0])
    ).to_be_visible()
    await expect(page.get_by_role("navigation", name="Views")).to_contain_text(PAYLOADS[2])
    side = page.get_by_role("complementary", name="Contact")
    await expect(side.locator(".attributes")).to_contain_text(PAYLOADS[1])
    await expect(side.locator(".contact-events")).to_contain_text(PAYLOADS[0])
    await assert_clean(page, "conversation")

    # The assign picker lists the hostile agent's and team's names.
    await page.keyboard.press("a")
    picker = page.get_by_role("dialog", name="Assign to")
    await expect(picker).to_contain_text(PAYLOADS[3][:40])
    await assert_clean(page, "assign picker")
    await page.keyboard.press("Escape")

    # The canned picker's preview renders the hostile body.
    box = pane.get_by_role("textbox", name="Reply")
    await box.click()
    await box.press_sequentially("/hostile")
    preview = page.locator(".canned-preview-text")
    await expect(preview).to_contain_text(PAYLOADS[0])
    await assert_clean(page, "canned picker")
    await page.keyboard.press("Escape")

    # The contact timeline and the command palette's search results.
    await page.goto(f"{threadline.base_url}/#/contact/{await contact_of(page)}")
    await expect(page.get_by_label("Timeline").locator(".message")).to_have_count(3)
    await assert_clean(page, "contact timeline")
    await page.keyboard.press("Control+k")
    palette = page.get_by_role("dialog", name="Search or run a command")
    await page.keyboard.type("onerror")
    await expect(palette.locator(".picker-item").first).to_be_visible()
    await expect(palette).to_contain_text(PAYLOADS[0])
    await assert_clean(page, "palette")
    await page.keyboard.press("Escape")

    # The canned responses settings page.
    await page.goto(f"{threadline.base_url}/#/settings/canned")
    await expect(page.locator(".settings-table")).to_contain_text(PAYLOADS[1])
    await page.get_by_role("button", name="/hostile").click()
    await expect(page.get_by_label("Body")).to_have_value(ALL)
    await assert_clean(page, "canned settings")
    assert dialogs == []


async def contact_of(page: Page) -> int:
    href = await page.locator(".contact-link").get_attribute("href")
    assert href is not None
    return int(href.rsplit("/", 1)[1])
