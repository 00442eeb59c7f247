"""Merge suggestions in the contact column (F3) and the admins' email
quarantine (PROTOCOLS.md P4), from the inbox app as a person uses it:
a mail from an address a visitor only typed in shows a "Possible
duplicate" card live, which the admin reviews and merges or dismisses;
unparseable mail is listed for admins only, its original shown as text."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.async_api import Browser, Page, expect

from server.actions.contacts import do_create_contact, do_update_contact
from server.actions.context import perform
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import dangerous_dom, no_horizontal_overflow, sign_in
from tests.email.mails import mail
from tests.realtime.live import LiveServer, eventually
from tests.support import Workspace, fetch_all, fetch_one

pytestmark = pytest.mark.browser


async def suggestion_statuses(runtime: Runtime) -> dict[int, str]:
    s = t.contact_merge_suggestions.c
    rows = await fetch_all(runtime, sa.select(s.candidate_id, s.status))
    return {r.candidate_id: r.status for r in rows}


async def live(threadline: LiveServer, ws: Workspace) -> None:
    await eventually(
        lambda: bool(threadline.connections(ws.id)), timeout=10, what="the live connection"
    )


async def test_a_suggested_duplicate_is_reviewed_and_merged_and_another_dismissed(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace, screenshots: Path
) -> None:
    # Cora chatted in the widget and typed in a second address (a claim).
    await perform(
        runtime,
        ws.system,
        do_update_contact,
        contact_id=ws.contact_id,
        attributes={"email": "cora.home@example.test"},
    )
    await sign_in(page, threadline.base_url, ws.admin_email)
    await page.goto(f"{threadline.base_url}/#/v/all/c/{ws.conversation_id}")
    side = page.get_by_role("complementary", name="Contact")
    await expect(side.locator(".contact-name")).to_have_text("Cora Customer")
    cards = side.locator(".suggestion-card")
    await expect(cards).to_have_count(0)
    await live(threadline, ws)

    # Mail from that address: a contact of its own, and live, a card.
    out = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=mail(sender="Cora Home <cora.home@example.test>"),
        source="http",
    )
    assert out.status == "stored"
    card = side.get_by_role("article", name="Possible duplicate: Cora Home")
    await expect(card).to_be_visible()
    await expect(card.locator(".identity-value")).to_have_text(["cora.home@example.test"])
    await expect(card).to_contain_text("1 conversation")
    await expect(card.locator(".suggestion-reason")).to_contain_text(
        "one wrote in by email from it, the other only typed it in"
    )
    assert await dangerous_dom(page) == []
    assert await no_horizontal_overflow(page)
    await page.screenshot(path=str(screenshots / "inbox-merge-suggestion.png"))

    # Review: the merge dialog opens on the pair, Cora kept.
    await card.get_by_role("button", name="Review merge").click()
    dialog = page.get_by_role("dialog", name="Merge contacts")
    await expect(dialog).to_contain_text("Keep Cora Customer")
    await expect(dialog).to_contain_text("Cora Home")
    await expect(dialog.locator(".merge-moves")).to_contain_text("1 conversation")
    await dialog.get_by_role("button", name="Merge", exact=True).click()

    # One contact now: its page has both messages, and no card.
    await expect(page).to_have_url(f"{threadline.base_url}/#/contact/{ws.contact_id}")
    await expect(page.get_by_label("Timeline").locator(".message")).to_have_count(2)
    side = page.get_by_role("complementary", name="Contact")
    await expect(side.locator(".identity-value")).to_contain_text(["cora.home@example.test"])
    await expect(side.locator(".suggestion-card")).to_have_count(0)
    merged = await fetch_one(
        runtime,
        sa.select(t.contacts.c.merged_into_id).where(t.contacts.c.name == "Cora Home"),
    )
    assert merged.merged_into_id == ws.contact_id

    # Another visitor's claim, another mail: this one is not the same person.
    pat = await perform(
        runtime,
        ws.system,
        do_create_contact,
        name="Pat Visitor",
        attributes={"email": "pat@example.test"},
    )
    await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=mail(sender="Patricia Mail <pat@example.test>", subject="Invoice"),
        source="http",
    )
    await page.goto(f"{threadline.base_url}/#/contact/{pat}")
    side = page.get_by_role("complementary", name="Contact")
    await expect(side.locator(".contact-name")).to_have_text("Pat Visitor")
    card = side.get_by_role("article", name="Possible duplicate: Patricia Mail")
    await expect(card).to_be_visible()
    await page.screenshot(path=str(screenshots / "contact-merge-suggestion.png"))
    await card.get_by_role("button", name="Dismiss").click()
    await expect(page.locator(".toast", has_text="is not a duplicate")).to_be_visible()
    await expect(side.locator(".suggestion-card")).to_have_count(0)
    statuses = await suggestion_statuses(runtime)
    assert statuses[pat] == "dismissed"
    # Still gone after a reload.
    await page.reload()
    side = page.get_by_role("complementary", name="Contact")
    await expect(side.locator(".contact-name")).to_have_text("Pat Visitor")
    await expect(side.locator(".past-conversations li")).to_have_count(0)
    await expect(side.locator(".suggestion-card")).to_have_count(0)


JUNK_HEADERS = b"".join(b"X-Junk-%d: x\r\n" % i for i in range(1200))
JUNK = (
    JUNK_HEADERS
    + b"From: a@b.test\r\nSubject: many headers\r\n\r\n"
    + b"<b>bold</b><img src=x onerror=window.__xss=1><script>window.__xss=2</script>\r\n"
)


async def test_admins_see_the_quarantine_and_its_originals_and_agents_do_not(
    page: Page,
    browser: Browser,
    threadline: LiveServer,
    runtime: Runtime,
    ws: Workspace,
    screenshots: Path,
) -> None:
    # More than a page of quarantined mail: no sender, each a little different.
    for n in range(25):
        out = await ingest_mail(
            MailIntake.of(runtime),
            inbox_id=ws.other_inbox_id,
            raw=b"Subject: no sender %d\r\n\r\nwho am I?\r\n" % n,
            source="imap" if n % 2 else "smtp",
        )
        assert out.status == "quarantined"
    junk = await ingest_mail(
        MailIntake.of(runtime), inbox_id=ws.other_inbox_id, raw=JUNK, source="http"
    )
    assert junk.status == "quarantined" and junk.reason is not None

    await sign_in(page, threadline.base_url, ws.admin_email)
    await (
        page.get_by_role("navigation", name="Views")
        .get_by_role("link", name="Email quarantine")
        .click()
    )
    settings = page.get_by_role("main", name="Settings")
    await expect(settings.get_by_role("heading", name="Email quarantine")).to_be_visible()
    rows = settings.locator(".quarantine-table tbody tr")
    await expect(rows).to_have_count(25)
    newest = rows.first
    await expect(newest).to_contain_text("Billing")
    await expect(newest).to_contain_text("Inbound parse")
    await expect(newest).to_contain_text(junk.reason[:40])
    await expect(newest).to_contain_text("unknown sender")
    # Older ones: "Load more" brings the rest, and then it is gone.
    await settings.get_by_role("button", name="Load more").click()
    await expect(rows).to_have_count(26)
    await expect(rows.last).to_contain_text("no sender 0")
    await expect(rows.last).to_contain_text("SMTP")
    await expect(settings.get_by_role("button", name="Load more")).to_be_hidden()

    # Live: a new one appears on top without a reload.
    await live(threadline, ws)
    fresh = await ingest_mail(
        MailIntake.of(runtime),
        inbox_id=ws.other_inbox_id,
        raw=b"Subject: live one\r\n\r\nx\r\n",
        source="smtp",
    )
    assert fresh.status == "quarantined"
    await expect(rows).to_have_count(27)
    await expect(rows.first).to_contain_text("live one")
    assert await no_horizontal_overflow(page)
    await rows.first.scroll_into_view_if_needed()
    await page.screenshot(path=str(screenshots / "settings-quarantine.png"))

    # The original, as text: the markup in it is shown, never run.
    junk_row = settings.locator(f'tr[data-mail-id="{junk.inbound_mail_id}"]')
    download = junk_row.get_by_role("link", name="Download")
    assert await download.get_attribute("href") == (
        f"{threadline.base_url}/api/v1/inbound_mails/{junk.inbound_mail_id}/raw?download=1"
    )
    await junk_row.get_by_role("button", name="View original").click()
    dialog = page.get_by_role("dialog", name="Original message")
    original = dialog.locator("pre.original-text")
    await expect(original).to_contain_text("X-Junk-1199: x")
    await expect(original).to_contain_text("<script>window.__xss=2</script>")
    text = await original.text_content()
    assert text == JUNK.decode()
    assert await original.locator("*").count() == 0
    assert await page.evaluate("window.__xss") is None
    assert await dangerous_dom(page) == []
    await page.screenshot(path=str(screenshots / "settings-quarantine-original.png"))
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)

    # A plain agent has no link, and the page by URL says who it is for.
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        gus = await context.new_page()
        await sign_in(gus, threadline.base_url, ws.agent_email)
        nav = gus.get_by_role("navigation", name="Views")
        await expect(nav.get_by_role("link", name="Macros")).to_be_visible()
        await expect(nav.get_by_role("link", name="Email quarantine")).to_have_count(0)
        await gus.goto(f"{threadline.base_url}/#/settings/quarantine")
        main = gus.get_by_role("main", name="Settings")
        await expect(main).to_contain_text("Email quarantine is for admins only.")
        await expect(main.locator("table")).to_have_count(0)
        await gus.screenshot(path=str(screenshots / "settings-quarantine-agent.png"))
    finally:
        await context.close()
