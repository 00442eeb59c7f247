"""The widget's other paths in a real browser (F8): pre-chat and offline
forms, the business-hours notice, attachments, identity, tracked events
from the shop page, another language, and the keyboard."""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, Request, Route, expect

from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import perform
from server.actions.inboxes import NewInbox, do_update_inbox
from server.domain.values import IdentityKind
from server.domain.widget_identity import identity_hash, identity_token
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.support import LAUNCHER, AppServer, launcher_becomes, widget_frame
from tests.realtime.live import LiveServer
from tests.support import Workspace, fetch_all

pytestmark = pytest.mark.browser


def png(width: int = 40, height: int = 30) -> bytes:
    """A small, valid PNG (a solid teal rectangle)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\x0f\x76\x6e" * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


async def settings(runtime: Runtime, ws: Workspace, widget: NewInbox, **values: Any) -> None:
    await perform(runtime, ws.admin, do_update_inbox, inbox_id=widget.inbox_id, settings=values)


async def open_widget(page: Page, shop: AppServer) -> Any:
    await page.goto(shop.url)
    await page.locator(LAUNCHER).click()
    return await widget_frame(page)


async def test_the_prechat_form_asks_before_the_first_message(
    page: Page,
    runtime: Runtime,
    ws: Workspace,
    widget: NewInbox,
    shop: AppServer,
    threadline: LiveServer,
    agent_token: str,
) -> None:
    await settings(
        runtime, ws, widget, prechat={"enabled": True, "name": "optional", "email": "required"}
    )
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    frame = await open_widget(page, shop)
    form = frame.locator("#prechat")
    await expect(form).to_be_visible()
    await expect(frame.locator("#composer")).to_be_hidden()
    email = form.get_by_label("Email")
    await expect(email).to_be_visible()
    await expect(form.get_by_label("Name (optional)")).to_be_focused()
    await expect(form.get_by_label("Name (optional)")).to_be_visible()

    await form.get_by_role("button", name="Start chat").click()
    await expect(form.get_by_role("alert")).to_have_text("Please fill in: Email.")
    await expect(email).to_have_attribute("aria-invalid", "true")
    await email.fill("robin@example")
    await form.get_by_role("button", name="Start chat").click()
    await expect(form.get_by_role("alert")).to_have_text("Please enter a valid email address.")

    await email.fill("robin@example.com")
    await form.get_by_label("Name (optional)").fill("Robin")
    await form.get_by_label("Message").fill("Where is my order?")
    await form.get_by_role("button", name="Start chat").click()
    await agent.until(
        lambda f: f["type"] == "message.created" and f["data"]["text"] == "Where is my order?"
    )
    await expect(frame.locator("#composer")).to_be_visible()
    await expect(form).to_be_hidden()
    await expect(frame.locator("#text")).to_be_focused()
    contacts = await fetch_all(runtime, sa.select(t.contacts.c.name, t.contacts.c.attributes))
    assert any(c.name == "Robin" or c.attributes.get("name") == "Robin" for c in contacts)


async def test_the_offline_form_when_no_agent_is_online(
    page: Page, runtime: Runtime, shop: AppServer
) -> None:
    frame = await open_widget(page, shop)
    form = frame.locator("#offline")
    await expect(form).to_be_visible()
    await expect(frame.locator("#composer")).to_be_hidden()
    await form.get_by_label("Email").fill("kim@example.com")
    await form.get_by_label("Message").fill("Please call me back about a return.")
    await form.get_by_role("button", name="Send message").click()
    await expect(frame.locator("#thanks")).to_have_text("Thanks! We will reply to kim@example.com.")
    stored = await fetch_all(
        runtime,
        sa.select(t.messages.c.id).where(
            t.messages.c.text == "Please call me back about a return."
        ),
    )
    assert len(stored) == 1


async def test_the_away_message_outside_business_hours(
    page: Page,
    runtime: Runtime,
    ws: Workspace,
    widget: NewInbox,
    shop: AppServer,
    threadline: LiveServer,
    agent_token: str,
) -> None:
    # No opening hours on any day: closed now, whoever is online.
    await settings(
        runtime,
        ws,
        widget,
        business_hours={"timezone": "UTC", "weekly": {}},
        away_message="We answer on weekdays, 9 to 5.",
    )
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    frame = await open_widget(page, shop)
    await expect(frame.locator("#hours")).to_have_text("We answer on weekdays, 9 to 5.")
    await expect(frame.locator("#composer")).to_be_visible()  # an agent is online anyway


async def test_attachments_are_uploaded_sent_and_shown(
    page: Page,
    runtime: Runtime,
    shop: AppServer,
    threadline: LiveServer,
    agent_token: str,
    tmp_path: Path,
) -> None:
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    frame = await open_widget(page, shop)
    picture, notes = tmp_path / "receipt.png", tmp_path / "notes.txt"
    picture.write_bytes(png())
    notes.write_text("size 43, not 42\n")
    await frame.locator("#file").set_input_files([picture, notes])
    chips = frame.locator("#chips li")
    await expect(chips).to_have_count(2)
    await expect(chips.filter(has_text="Uploading")).to_have_count(0)
    await expect(frame.get_by_role("button", name="Send")).to_be_enabled()
    await frame.locator("#text").fill("Here is my receipt")
    await frame.locator("#text").press("Enter")

    heard = await agent.until(lambda f: f["type"] == "message.created")
    sent = heard[-1]["data"]
    assert sent["text"] == "Here is my receipt"
    assert sorted(a["filename"] for a in sent["attachments"]) == ["notes.txt", "receipt.png"]
    await expect(chips).to_have_count(0)

    mine = frame.locator(".msg.mine", has_text="Here is my receipt")
    image = mine.get_by_role("img", name="receipt.png")
    await expect(image).to_have_attribute("src", re.compile(r"^blob:"))
    assert await image.evaluate("img => img.complete && img.naturalWidth") == 40
    link = mine.get_by_role("link", name="Download notes.txt")
    await expect(link).to_be_visible()
    async with page.expect_download() as download:
        await link.click()
    saved = tmp_path / "downloaded.txt"
    await (await download.value).save_as(saved)
    assert saved.read_text() == "size 43, not 42\n"

    # Dropping a file on the chat attaches it as well.
    await frame.evaluate(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["hello"], "dropped.txt", {type: "text/plain"}));
            for (const type of ["dragenter", "dragover", "drop"]) {
                const event = new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true});
                document.getElementById("log").dispatchEvent(event);
            }
        }"""
    )
    await expect(chips).to_have_count(1)
    await expect(chips).to_contain_text("dropped.txt")
    await expect(chips.filter(has_text="Uploading")).to_have_count(0)
    await expect(frame.locator("#drop")).to_be_hidden()


async def test_identity_and_tracked_events_reach_the_contact(
    page: Page,
    runtime: Runtime,
    widget: NewInbox,
    shop: AppServer,
) -> None:
    assert widget.secret is not None
    await page.goto(shop.url)
    # What the shop's backend would put in the page for its logged-in user.
    await page.evaluate(
        "([id, hash]) => Threadline.setUser(id, {email: 'lee@example.com', name: 'Lee', identityHash: hash})",
        ["user-7", identity_hash(widget.secret, "user-7")],
    )
    await page.get_by_role("button", name="Add to cart").first.click()
    await page.get_by_role("button", name="Add to cart").first.click()

    def verified_sessions() -> Any:
        return fetch_all(
            runtime, sa.select(t.visitor_sessions.c.id).where(t.visitor_sessions.c.verified)
        )

    events = sa.select(t.contact_events.c.name, t.contact_events.c.properties)
    await expect_rows(lambda: fetch_all(runtime, events), 2)
    rows = await fetch_all(runtime, events)
    assert [r.name for r in rows] == ["cart_updated", "cart_updated"]
    cart = rows[-1].properties
    assert cart["item_count"] == 2 and cart["total"] == 178 and cart["currency"] == "EUR"
    assert cart["cart_id"] == rows[0].properties["cart_id"]
    [item] = cart["items"]
    assert (item["name"], item["price"], item["quantity"]) == ("Trail Runner shoes", 89, 2)
    assert item["url"] == f"{shop.url.rstrip('/')}/#trail-runner"
    await expect_rows(verified_sessions, 1)


async def test_track_right_after_set_user_lands_on_the_proven_contact(
    page: Page,
    runtime: Runtime,
    ws: Workspace,
    widget: NewInbox,
    shop: AppServer,
) -> None:
    assert widget.secret is not None
    known = await perform(
        runtime,
        ws.system,
        do_create_contact,
        name="Kim Known",
        identities=[IdentityInput(IdentityKind.EMAIL, "kim@example.com", verified=True)],
    )
    token = identity_token(
        widget.secret, "user-9", "kim@example.com", datetime.now(UTC) + timedelta(hours=1)
    )
    tracked = asyncio.Event()

    def on_request(request: Request) -> None:
        if request.url.endswith("/api/v1/widget/events"):
            tracked.set()

    async def slow_identify(route: Route) -> None:
        # Hold the identity a moment: a track() sent without waiting for
        # it would reach the server first, onto the anonymous visitor.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tracked.wait(), 1.0)
        await route.continue_()

    page.on("request", on_request)
    await page.route("**/api/v1/widget/identify", slow_identify)
    await page.goto(shop.url)
    await page.evaluate(
        """(token) => {
          Threadline.setUser("user-9", {identityToken: token});
          Threadline.track("signed_up", {method: "email"});
        }""",
        token,
    )
    events = sa.select(t.contact_events.c.contact_id).where(t.contact_events.c.name == "signed_up")
    await expect_rows(lambda: fetch_all(runtime, events), 1)
    [row] = await fetch_all(runtime, events)
    assert row.contact_id == known


async def expect_rows(fetch: Any, count: int) -> None:
    """Wait until `fetch()` returns `count` rows (writes from the browser
    land asynchronously)."""
    deadline = time.monotonic() + 5
    while len(await fetch()) != count:
        assert time.monotonic() < deadline, f"expected {count} rows"
        await asyncio.sleep(0.02)


async def test_german_strings_and_the_keyboard(
    page: Page, shop: AppServer, threadline: LiveServer, agent_token: str
) -> None:
    agent = await threadline.open(token=agent_token)
    await agent.ready()
    await page.goto(shop.url)
    await page.evaluate("Threadline.setLocale('de')")
    frame = await widget_frame(page)
    await expect(frame.locator("#text")).to_have_attribute("placeholder", "Nachricht schreiben…")
    await page.wait_for_function("document.title === 'Demo Shop'")
    await launcher_becomes(page, {"name": "Chat öffnen", "expanded": False})

    # Keyboard only: Tab to the launcher, Enter opens, focus goes in.
    await page.locator("body").focus()
    for _ in range(20):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.matches('[data-threadline]')"):
            break
    await page.keyboard.press("Enter")
    text = frame.locator("#text")
    await expect(text).to_be_focused()
    # The focus stays inside the chat: Tab from the last control wraps to
    # the first, Shift+Tab from the first to the last.
    await frame.get_by_role("button", name="Senden").focus()
    await page.keyboard.press("Tab")
    await expect(frame.get_by_role("button", name="Chat schließen")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await expect(frame.get_by_role("button", name="Senden")).to_be_focused()
    await page.keyboard.press("Escape")
    await page.wait_for_function("document.activeElement.matches('[data-threadline]')")
