"""Email in the inbox (F2, F4, PROTOCOLS.md P4, P7): an agent reads a mail
as it was sent — who from and to, its text, its formatted HTML in a
sandboxed frame with its inline image, its files, how it was threaded,
its original — without anything in it running; and answers it from the
composer with To and Cc, seeing the reply's delivery change live."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.async_api import Browser, Dialog, Page, expect

from server.actions.context import perform
from server.actions.email_bounces import suppress_address
from server.actions.inboxes import do_update_inbox
from server.actions.outbound_email import do_claim_outbox, do_record_delivery
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import dangerous_dom, no_horizontal_overflow, sign_in
from tests.email.mails import mail
from tests.realtime.live import LiveServer
from tests.support import Workspace, fetch_all

pytestmark = pytest.mark.browser

SIZES = [(1440, 900), (1024, 768)]
SANDBOX = "allow-popups allow-popups-to-escape-sandbox"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour (so the inline image has a size to check)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


LABEL = png(180, 48, (15, 118, 110))
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TEXT = (
    "Hello, my order #1042 has not arrived.\n"
    "Could you check? The shipping label is below.\n\n"
    "On Mon, 23 Nov 2026, Acme Support <support@acme.test> wrote:\n"
    "> Your order has shipped and arrives on Friday.\n"
)
HTML = (
    "<p>Hello, my order <b>#1042</b> has not arrived.</p>"
    "<p>Could you check? The shipping label is below.</p>"
    '<p><img src="cid:label@customer.test" alt="shipping label" width="180" height="48"></p>'
    '<p><a href="https://shop.example/orders/1042">Order #1042</a></p>'
    "<script>window.__xss = 1; alert('script')</script>"
    '<img src="x" onerror="window.__xss = 1; alert(\'onerror\')">'
    '<img src="https://tracker.example/pixel.gif" alt="tracker">'
    "<blockquote>Your order has shipped and arrives on Friday.</blockquote>"
)
FIRST_ID = "<order-1042@customer.test>"


async def email_inbox(runtime: Runtime, ws: Workspace) -> None:
    """The seeded email inbox, with the address the customer writes to."""
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.other_inbox_id,
        settings={"address": "support@acme.test"},
    )


async def receive(runtime: Runtime, ws: Workspace, raw: bytes) -> tuple[int, int]:
    out = await ingest_mail(
        MailIntake.of(runtime), inbox_id=ws.other_inbox_id, raw=raw, source="http"
    )
    assert out.status == "stored", out
    assert out.conversation_id is not None and out.message_id is not None
    return out.conversation_id, out.message_id


async def first_mail(runtime: Runtime, ws: Workspace) -> tuple[int, int]:
    return await receive(
        runtime,
        ws,
        mail(
            sender="Pat Doe <pat@customer.test>",
            to="Acme Support <support@acme.test>",
            cc="Sam Lee <sam@customer.test>, lee@customer.test",
            message_id=FIRST_ID,
            text=TEXT,
            html=HTML,
            inline_image=("label@customer.test", LABEL),
            attachments=[("invoice-1042.pdf", "application/pdf", PDF)],
        ),
    )


async def test_an_email_reads_as_sent_and_nothing_in_it_runs(
    browser: Browser,
    threadline: LiveServer,
    runtime: Runtime,
    ws: Workspace,
    screenshots: Path,
) -> None:
    await email_inbox(runtime, ws)
    conversation_id, message_id = await first_mail(runtime, ws)
    # The customer writes again in the thread, about something else.
    same, _ = await receive(
        runtime,
        ws,
        mail(
            sender="Pat Doe <pat@customer.test>",
            to="support@acme.test",
            subject="Wrong delivery address",
            in_reply_to=FIRST_ID,
            text="Also, the address on the label is wrong: it should be 12 Elm St.",
        ),
    )
    assert same == conversation_id
    # Sam answers the thread: not the contact, so a conversation of their own.
    sams, _ = await receive(
        runtime,
        ws,
        mail(
            sender="Sam Lee <sam@customer.test>",
            to="support@acme.test",
            subject="Re: Where is my order?",
            in_reply_to=FIRST_ID,
            text="I'm Pat's colleague: this is urgent for us.",
        ),
    )
    assert sams != conversation_id

    for width, height in SIZES:
        context = await browser.new_context(viewport={"width": width, "height": height})
        try:
            page = await context.new_page()
            dialogs: list[str] = []

            async def on_dialog(dialog: Dialog, seen: list[str] = dialogs) -> None:
                seen.append(dialog.message)
                await dialog.dismiss()

            page.on("dialog", on_dialog)
            await sign_in(page, threadline.base_url, ws.admin_email)
            await page.goto(f"{threadline.base_url}/#/v/all/c/{conversation_id}")
            await read_the_mail(page, conversation_id, message_id, sams, width, height, screenshots)
            assert dialogs == []
        finally:
            await context.close()


async def read_the_mail(
    page: Page,
    conversation_id: int,
    message_id: int,
    sams: int,
    width: int,
    height: int,
    screenshots: Path,
) -> None:
    pane = page.get_by_role("main", name="Conversation")
    await expect(pane.locator(".pane-subject")).to_have_text("Where is my order?")
    messages = pane.locator(".message-inbound")
    await expect(messages).to_have_count(2)
    first, second = messages.nth(0), messages.nth(1)

    # Who it is from and to; every recipient on demand.
    await expect(first.locator(".message-sender")).to_have_text("Pat Doe")
    await expect(first.locator(".message-address")).to_have_text("<pat@customer.test>")
    recipients = first.get_by_role("button", name="to Acme Support, Sam Lee +1")
    await expect(recipients).to_have_attribute("aria-expanded", "false")
    await recipients.click()
    details = first.locator(".email-details")
    await expect(details).to_be_visible()
    await expect(details).to_contain_text("Sam Lee <sam@customer.test>, lee@customer.test")
    await expect(details).to_contain_text("Acme Support <support@acme.test>")

    # The reply text first, the quoted history on demand; the subject is
    # the conversation's, so it isn't repeated.
    text = first.locator(".message-text")
    await expect(text).to_have_text(
        "Hello, my order #1042 has not arrived.\nCould you check? The shipping label is below."
    )
    await expect(first.locator(".email-subject")).to_have_count(0)
    await first.get_by_role("button", name="Show quoted text").click()
    await expect(text).to_contain_text("> Your order has shipped and arrives on Friday.")
    assert await no_horizontal_overflow(page)
    await page.screenshot(path=str(screenshots / f"inbox-email-text-{width}x{height}.png"))
    await recipients.click()
    await expect(details).to_be_hidden()
    await first.get_by_role("button", name="Hide quoted text").click()
    await expect(text).not_to_contain_text("Your order has shipped")

    # Its files: the PDF, and the inline label image.
    await expect(first.locator(".attachment.file")).to_contain_text("invoice-1042.pdf")
    await expect(first.locator(".attachment.image img")).to_have_count(1)

    # The second mail changed the subject: shown, and flagged with why.
    await expect(second.locator(".email-subject")).to_have_text("Wrong delivery address")
    flag = second.locator(".email-flag")
    await expect(flag).to_have_text("Subject changed")
    assert "subject changed" in (await flag.get_attribute("title") or "")

    # Nothing from the mail is in the app's own DOM as code.
    assert await dangerous_dom(page) == []
    assert await page.evaluate("window.__xss") is None

    # The formatted mail: a sandboxed frame without scripts or origin.
    await first.get_by_role("button", name="Show formatted").click()
    frame_element = first.locator("iframe.email-html")
    await expect(frame_element).to_have_attribute("sandbox", SANDBOX)
    sandbox = await frame_element.get_attribute("sandbox") or ""
    assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
    src = await frame_element.get_attribute("src") or ""
    assert src.endswith(f"/api/v1/messages/{message_id}/html")
    await expect(text).to_be_hidden()
    frame = first.frame_locator("iframe.email-html")
    await expect(frame.locator("b")).to_have_text("#1042")
    await expect(frame.locator("blockquote")).to_contain_text("arrives on Friday")
    label = frame.locator("img[alt='shipping label']")
    width_loaded = await label.evaluate(
        """img => img.complete && img.naturalWidth ? img.naturalWidth
            : new Promise(done => img.addEventListener("load", () => done(img.naturalWidth)))"""
    )
    assert width_loaded == 180
    assert await frame.locator("img[alt='tracker']").get_attribute("src") is None
    link = frame.get_by_role("link", name="Order #1042")
    await expect(link).to_have_attribute("target", "_blank")
    assert "noopener" in (await link.get_attribute("rel") or "")
    assert await frame.locator("script, [onerror]").count() == 0
    # The frame is the only thing dangerous_dom may find, and nothing ran.
    assert await dangerous_dom(page) == ["IFRAME"]
    assert await page.evaluate("window.__xss") is None
    assert await frame.locator("body").evaluate("body => window.__xss") is None
    assert await no_horizontal_overflow(page)
    await page.screenshot(path=str(screenshots / f"inbox-email-{width}x{height}.png"))

    # A new conversation for Sam, linked to the one Sam replied into.
    await page.goto(page.url.replace(f"/c/{conversation_id}", f"/c/{sams}"))
    linked = pane.get_by_role("link", name=f"New conversation: replied to #{conversation_id}")
    await expect(linked).to_be_visible()
    await expect(pane.locator(".email-flag")).to_have_text("Different sender")
    await page.screenshot(path=str(screenshots / f"inbox-email-linked-{width}x{height}.png"))
    await linked.click()
    await expect(pane.locator(".message-inbound")).to_have_count(2)
    # The formatted view stays open for the message the agent opened it on.
    await expect(pane.locator("iframe.email-html")).to_have_count(1)

    # "Show original": the mail as received, as plain text in its own tab.
    async with page.context.expect_page() as opened:
        await pane.get_by_role("link", name="Show original").first.click()
    original = await opened.value
    await original.wait_for_load_state()
    assert original.url.endswith(f"/api/v1/messages/{message_id}/original")
    raw = await original.locator("body").inner_text()
    assert "Message-ID: <order-1042@customer.test>" in raw
    assert "Subject: Where is my order?" in raw
    await original.close()

    # The contact's timeline shows the same mails, as mails.
    await page.keyboard.press("c")
    timeline = page.get_by_label("Timeline")
    await expect(timeline.locator(".message-email")).to_have_count(2)
    await expect(timeline.locator(".message-address").first).to_have_text("<pat@customer.test>")
    await expect(timeline.locator(".email-subject")).to_have_text("Wrong delivery address")
    # The formatted view the agent opened is open here too.
    shown = timeline.frame_locator("iframe.email-html")
    await expect(shown.locator("b")).to_have_text("#1042")
    assert await no_horizontal_overflow(page)
    await page.screenshot(path=str(screenshots / f"inbox-email-contact-{width}x{height}.png"))


async def test_an_email_reply_has_to_and_cc_and_shows_its_delivery(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace, screenshots: Path
) -> None:
    await email_inbox(runtime, ws)
    conversation_id, _ = await first_mail(runtime, ws)
    await perform(
        runtime,
        ws.system,
        suppress_address,
        inbox_id=ws.other_inbox_id,
        address="old@customer.test",
        reason="permanent bounce: 5.1.1 user unknown",
    )
    await sign_in(page, threadline.base_url, ws.admin_email)
    await page.goto(f"{threadline.base_url}/#/v/all/c/{conversation_id}")
    pane = page.get_by_role("main", name="Conversation")
    await expect(pane.locator(".message-inbound")).to_have_count(1)

    # r: reply, with who it goes to filled in (reply to all, not to us).
    await page.keyboard.press("r")
    box = pane.get_by_role("textbox", name="Reply")
    await expect(box).to_be_focused()
    to = pane.get_by_role("textbox", name="To", exact=True)
    cc = pane.get_by_role("textbox", name="Cc", exact=True)
    await expect(to).to_have_value("pat@customer.test")
    await expect(cc).to_have_value("sam@customer.test, lee@customer.test")
    await expect(pane.locator(".email-subject-line")).to_contain_text("Re: Where is my order?")

    # A note has no recipients.
    await box.press("Escape")
    await page.keyboard.press("n")
    await expect(to).to_be_hidden()
    await page.keyboard.press("Escape")
    await page.keyboard.press("r")
    await expect(to).to_be_visible()

    # Something that isn't an address is caught before sending.
    await cc.fill("sam@customer.test, lee at customer")
    await box.fill("We're on it: a replacement ships today.")
    await box.press("Enter")
    await expect(pane.locator("#composer-cc-error-" + str(conversation_id))).to_have_text(
        "Cc: “lee at customer” is not an email address."
    )
    await expect(cc).to_have_attribute("aria-invalid", "true")
    await expect(cc).to_be_focused()
    await expect(box).to_have_value("We're on it: a replacement ships today.")

    # An address the server refuses (it bounced before): told at its field.
    await cc.fill("sam@customer.test, old@customer.test")
    await cc.press("Enter")
    await expect(box).to_be_focused()
    await box.press("Enter")
    await expect(pane.locator("#composer-cc-error-" + str(conversation_id))).to_contain_text(
        "old@customer.test no longer receives mail from us"
    )
    await expect(cc).to_have_attribute("aria-invalid", "true")
    await expect(box).to_have_value("We're on it: a replacement ships today.")
    await expect(pane.locator(".message-outbound")).to_have_count(0)

    # Add a Cc and send, with Enter as always.
    await cc.fill("sam@customer.test, boss@customer.test")
    await box.press("Enter")
    await expect(pane.locator(".message-outbound.pending")).to_have_count(0)
    reply = pane.locator(".message-outbound")
    await expect(reply).to_have_count(1)
    await expect(reply.locator(".message-text")).to_have_text(
        "We're on it: a replacement ships today."
    )
    await expect(reply.locator(".email-recipients")).to_have_text(
        "to pat@customer.test, sam@customer.test +1▾"
    )
    await expect(reply.locator(".delivery")).to_have_text("Queued")
    await expect(cc).not_to_have_attribute("aria-invalid", "true")
    rows = await fetch_all(
        runtime,
        sa.select(t.messages.c.text, t.messages.c.email, t.messages.c.delivery_status).where(
            t.messages.c.conversation_id == conversation_id,
            t.messages.c.direction == "outbound",
        ),
    )
    assert len(rows) == 1
    assert rows[0].text == "We're on it: a replacement ships today."
    assert [a["address"] for a in rows[0].email["to"]] == ["pat@customer.test"]
    assert [a["address"] for a in rows[0].email["cc"]] == [
        "sam@customer.test",
        "boss@customer.test",
    ]
    assert rows[0].email["subject"] == "Re: Where is my order?"

    # The mail server refuses it: the reply says so, live, in red.
    jobs = await perform(runtime, ws.system, do_claim_outbox)
    assert len(jobs) == 1
    await perform(
        runtime,
        ws.system,
        do_record_delivery,
        outbox_id=jobs[0].outbox_id,
        status="permanent",
        reason="550 5.1.1 <boss@customer.test>: mailbox unavailable",
    )
    failed = reply.locator(".delivery-failed")
    await expect(failed).to_have_text("Failed: 550 5.1.1 <boss@customer.test>: mailbox unavailable")
    color = await failed.evaluate("el => getComputedStyle(el).color")
    assert color == "rgb(198, 40, 40)"
    assert await no_horizontal_overflow(page)
    await page.screenshot(path=str(screenshots / "inbox-email-reply-1280x800.png"))

    # The customer answers: the mail shows up live, as a mail.
    await receive(
        runtime,
        ws,
        mail(
            sender="Pat Doe <pat@customer.test>",
            to="support@acme.test",
            subject="Re: Where is my order?",
            in_reply_to=FIRST_ID,
            text="Thanks, and sorry about my boss's address.",
            html="<p>Thanks, and <i>sorry</i> about my boss's address.</p>",
        ),
    )
    latest = pane.locator(".message-inbound").nth(1)
    await expect(latest.locator(".message-text")).to_have_text(
        "Thanks, and sorry about my boss's address."
    )
    await expect(latest.locator(".message-address")).to_have_text("<pat@customer.test>")
    await latest.get_by_role("button", name="Show formatted").click()
    await expect(latest.frame_locator("iframe.email-html").locator("i")).to_have_text("sorry")
