"""The Touchpoints UI (F7) as an admin and an agent use it, against the real
server: installing a shipped template, editing a step with its live
preview for a real contact, a broken Liquid tag refused at its field,
switching it live and seeing what it did; segments with their live
count; the contact column's touchpoints with their reasons; settling a
decision whose outcome is unknown. Screenshots of each page go to
/tmp/touchshots for a person to look at."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from playwright.async_api import Page, expect

from server.actions.contacts import IdentityInput, do_create_contact, do_update_contact
from server.actions.context import perform
from server.actions.outbound_email import do_claim_outbox, do_record_delivery
from server.actions.touch_claims import do_process_due_decisions
from server.domain.actors import system_actor
from server.domain.values import IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import no_horizontal_overflow, sign_in
from tests.realtime.live import LiveServer, new_token
from tests.support import Workspace, fetch_all, fetch_one

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/touchshots")


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def api(
    threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> AsyncIterator[httpx.AsyncClient]:
    """The REST API as the admin's token (the shop's backend uses one the
    same way to track events)."""
    token = (await new_token(runtime, ws.admin, name="shop"))[1]
    async with threadline.http(authorization=f"Bearer {token}") as client:
        yield client


async def call(api: httpx.AsyncClient, method: str, path: str, body: Any = None) -> Any:
    res = await api.request(method, f"/api/v1{path}", json=body)
    assert res.is_success, res.text
    return res.json()


async def track(api: httpx.AsyncClient, contact_id: int, name: str, **properties: Any) -> None:
    await call(
        api, "POST", f"/contacts/{contact_id}/events", {"name": name, "properties": properties}
    )


def welcome(
    name: str, *, priority: int = 50, max_lateness: str = "6h", inbox_id: int
) -> dict[str, Any]:
    """A live touchpoint mailing on `signed_up`, right away."""
    return {
        "name": name,
        "kind": "marketing",
        "status": "live",
        "trigger": {"kind": "contact_event", "name": "signed_up"},
        "reentry": "once",
        "priority": priority,
        "max_lateness": max_lateness,
        "inbox_id": inbox_id,
        "steps": [
            {
                "delay": {"after": 0},
                "channel": "email",
                "variants": [
                    {
                        "subject": f"{name} for {{{{ contact.name }}}}",
                        "body": "Hello {{ contact.name }}",
                    }
                ],
            }
        ],
    }


async def not_quiet_now(api: httpx.AsyncClient) -> None:
    """The workspace's quiet hours moved to an hour that is not now: the
    browser lives in real time, and a touch due in quiet hours waits."""
    now = datetime.now(UTC)
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    quiet = {"start": start.strftime("%H:00"), "end": end.strftime("%H:00")}
    await call(api, "PATCH", "/settings/touchpoints", {"timezone": "UTC", "quiet_hours": quiet})


async def process(runtime: Runtime) -> None:
    """What the decision worker does when decisions come due."""
    await perform(
        runtime,
        system_actor(0),
        do_process_due_decisions,
        limit=100,
        unsubscribe_link=lambda ws, address: f"http://127.0.0.1/u/{ws}-{address}",
    )


async def decision_states(runtime: Runtime) -> dict[int, tuple[str, str | None]]:
    d = t.decisions.c
    rows = await fetch_all(runtime, sa.select(d.id, d.state, d.reason))
    return {r.id: (r.state, r.reason) for r in rows}


async def test_a_template_is_installed_edited_previewed_and_switched_live(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace, api: httpx.AsyncClient
) -> None:
    # Cora left a mug and a scarf in her cart.
    cart = {
        "cart_id": "c-1",
        "items": [
            {"name": "Blue mug", "price": 12, "quantity": 2},
            {"name": "Red scarf", "price": 30, "quantity": 1},
        ],
        "total": 54,
        "currency": "EUR",
    }
    await track(api, ws.contact_id, "cart_updated", **cart)
    await sign_in(page, threadline.base_url, ws.admin_email)
    await (
        page.get_by_role("navigation", name="Views").get_by_role("link", name="Touchpoints").click()
    )
    await expect(page).to_have_title("Touchpoints · Threadline")
    await expect(page.get_by_text("No touchpoints yet.")).to_be_visible()

    # From a template, by keyboard.
    await page.get_by_role("button", name="New from a template").click()
    await page.keyboard.type("cart")
    await expect(page.locator(".picker-item.active")).to_contain_text("Abandoned cart")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"#/touchpoints/\d+$"))
    [row] = await fetch_all(runtime, sa.select(t.touchpoints))
    assert (row.status, row.version) == ("draft", 1)
    await expect(page.get_by_role("heading", name="Abandoned cart", level=1)).to_be_visible()

    words = page.locator(".touch-trigger-words")
    await expect(words).to_have_text("When cart_updated is tracked")
    await page.get_by_label("Starts on").select_option("no_customer_reply")
    await page.get_by_label("Wait").first.fill("48h")
    await expect(words).to_have_text("48 h without a customer reply")
    await page.get_by_label("Starts on").select_option("contact_event")
    await page.get_by_label("Tracked event name").fill("cart_updated")
    await expect(words).to_have_text("When cart_updated is tracked")

    # The preview, for Cora: her cart, from her latest tracked event.
    preview = page.get_by_role("complementary", name="Preview")
    await preview.get_by_role("button", name="Choose a contact…").click()
    await page.keyboard.type("Cora")
    await expect(page.locator(".picker-item.active")).to_contain_text("Cora Customer")
    await page.keyboard.press("Enter")
    await expect(preview.locator(".touch-preview-contact")).to_have_text("Cora Customer")
    text = preview.get_by_label("Text part")
    await expect(text).to_contain_text("Blue mug")
    await expect(text).to_contain_text("Red scarf")
    html = preview.frame_locator("iframe.touch-preview-html")
    await expect(html.locator("body")).to_contain_text("Blue mug")
    await expect(preview.locator("iframe")).to_have_attribute("sandbox", "")

    # Editing step 1's body changes the preview while typing.
    body = page.get_by_label("Body (step 1, variant a)")
    await body.fill("Hello {{ contact.name }}, {{ events.cart.items | size }} things wait.")
    await expect(text).to_have_text("Hello Cora Customer, 2 things wait.")
    await shot(page, "touchpoint_editor")

    # A broken Liquid tag: refused at save, named at its field with its line.
    await body.fill("Hello\n{% if contact.name %}Cora")
    await expect(preview.locator(".touch-preview-error")).not_to_be_empty()
    await page.get_by_role("button", name="Save").click()
    error = page.locator('[data-field="steps[0].variants[0].body"] > .field-error')
    await expect(error).to_contain_text("line")
    await expect(body).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(".touch-save-status")).to_have_text(
        "Not saved: see step 1, variant a"
    )
    await shot(page, "touchpoint_editor_422")
    assert (await fetch_one(runtime, sa.select(t.touchpoints.c.version))).version == 1
    await body.fill("Hello {{ contact.name }}, {{ events.cart.items | size }} things wait.")
    await body.press("Control+s")
    await expect(error).to_be_empty()
    await expect(page.locator(".touch-meta")).to_contain_text("version 2")
    await expect(page.locator(".touch-save-status")).to_have_text("Saved: version 2")
    [step] = await fetch_all(
        runtime,
        sa.select(t.touchpoint_steps.c.variants).where(
            t.touchpoint_steps.c.version == 2, t.touchpoint_steps.c.position == 0
        ),
    )
    assert (
        step.variants[0]["body"]
        == "Hello {{ contact.name }}, {{ events.cart.items | size }} things wait."
    )

    # A third step, at 09:30 the next morning in Cora's time, moved up to
    # come second; a variant added to it and removed again.
    await page.get_by_role("button", name="Add a step").click()
    third = page.locator('.touch-step[data-field="steps[2]"]')
    await third.get_by_label("When").select_option("at_local")
    await third.get_by_label("Local time").fill("09:30")
    await third.get_by_label("Days later").fill("1")
    await page.get_by_label("Subject (step 3, variant a)").fill("Last call")
    await page.get_by_label("Body (step 3, variant a)").fill("Last call, {{ contact.name }}")
    await expect(text).to_have_text("Last call, Cora Customer")
    await page.get_by_role("button", name="Add a variant to step 3").click()
    await expect(page.get_by_label("Body (step 3, variant b)")).to_have_value(
        "Last call, {{ contact.name }}"
    )
    await page.get_by_role("button", name="Remove variant b of step 3").click()
    await page.get_by_role("button", name="Move step 3 up").click()
    await expect(page.locator(".touch-step h3")).to_have_text(["Step 1", "Step 2", "Step 3"])
    await expect(
        page.locator('.touch-step[data-field="steps[1]"] .touch-step-summary')
    ).to_have_text("At 09:30 local, the next day")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".touch-save-status")).to_have_text("Saved: version 3")
    s = t.touchpoint_steps.c
    steps = await fetch_all(
        runtime,
        sa.select(s.position, s.delay, s.variants).where(s.version == 3).order_by(s.position),
    )
    assert [(r.delay, [v["subject"] for v in r.variants]) for r in steps] == [
        ({"after": "4h"}, ["You left {{ events.cart.items | size }} things in your cart"]),
        ({"at_local": "09:30", "day_offset": 1}, ["Last call"]),
        ({"after": "20h"}, ["Still thinking about {{ events.cart.items.first.name }}?"]),
    ]

    # Live, with the switch.
    switch = page.get_by_role("switch", name="Live: Abandoned cart")
    await expect(switch).to_have_attribute("aria-checked", "false")
    await switch.click()
    await expect(page.get_by_role("switch", name="Live: Abandoned cart")).to_have_attribute(
        "aria-checked", "true"
    )
    assert (await fetch_one(runtime, sa.select(t.touchpoints.c.status))).status == "live"

    # Back on the list, a new cart shows up in the counts, live.
    await page.get_by_role("link", name="← Touchpoints").click()
    listed = page.locator(".touch-table tbody tr", has_text="Abandoned cart")
    await expect(listed.locator(".touch-trigger-cell")).to_have_text("When cart_updated is tracked")
    await expect(listed.locator("td").nth(4)).to_have_text("0")
    await track(api, ws.contact_id, "cart_updated", **{**cart, "cart_id": "c-2"})
    await expect(listed.locator("td").nth(4)).to_have_text("1")
    await shot(page, "touchpoints_list")
    assert await no_horizontal_overflow(page)


async def test_the_contact_column_shows_a_skipped_touch_with_its_reason(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace, api: httpx.AsyncClient
) -> None:
    # Two welcome mails compete for Cora's one marketing touch per 16 h;
    # the second may not wait long, so it is skipped for the cap.
    await not_quiet_now(api)
    await call(
        api, "POST", "/touchpoints", welcome("Welcome", priority=80, inbox_id=ws.other_inbox_id)
    )
    await call(
        api,
        "POST",
        "/touchpoints",
        welcome("Club invitation", max_lateness="10m", inbox_id=ws.other_inbox_id),
    )
    await sign_in(page, threadline.base_url, ws.agent_email)
    await page.goto(f"{threadline.base_url}/#/v/all/c/{ws.conversation_id}")
    side = page.get_by_role("complementary", name="Contact")
    section = side.get_by_role("region", name="Touchpoints")
    await expect(section).to_contain_text("None yet")

    # She signs up: both are scheduled, and the column shows them live.
    await track(api, ws.contact_id, "signed_up")
    upcoming = section.locator(".touch-decisions").first
    await expect(upcoming.locator(".touch-decision")).to_have_count(2)
    await process(runtime)
    states = sorted((await decision_states(runtime)).values())
    assert states == [("sending", None), ("skipped", "frequency cap")]
    skipped = section.locator(".touch-decision", has_text="Club invitation")
    await expect(skipped.locator(".touch-outcome")).to_have_text("skipped: frequency cap")
    await expect(section.locator(".touch-decision", has_text="Welcome")).to_be_visible()
    await shot(page, "contact_column_touchpoints")

    # The contact page's column shows the same, and her activity reads as
    # words: the cart's items by name, not their JSON.
    items = [
        {"name": "Blue mug", "price": 12, "quantity": 2},
        {"name": "Red scarf", "price": 30, "quantity": 1},
    ]
    await track(api, ws.contact_id, "cart_updated", cart_id="c-9", items=items)
    await page.goto(f"{threadline.base_url}/#/contact/{ws.contact_id}")
    column = page.get_by_role("complementary", name="Contact").get_by_role(
        "region", name="Touchpoints"
    )
    await expect(page.locator(".event-props").first).to_have_text(
        "cart_id: c-9 · items: Blue mug ×2, Red scarf ×1"  # noqa: RUF001 -- as shown
    )
    await expect(column.locator(".touch-decision", has_text="Club invitation")).to_contain_text(
        "skipped: frequency cap"
    )

    # An agent reads the touchpoints, on a narrower screen too, and
    # changes nothing: no switch, no template picker, a read-only editor.
    await page.set_viewport_size({"width": 1024, "height": 768})
    await column.get_by_role("link", name="Club invitation").click()
    await expect(page.get_by_role("heading", name="Club invitation", level=1)).to_be_visible()
    await expect(page.get_by_text("Only admins change touchpoints.")).to_be_visible()
    await expect(page.get_by_label("Name", exact=True)).to_be_disabled()
    await expect(page.get_by_role("switch")).to_have_count(0)
    await shot(page, "touchpoint_editor_agent_1024")
    assert await no_horizontal_overflow(page)
    await page.get_by_role("link", name="← Touchpoints").click()
    row = page.locator(".touch-table tbody tr", has_text="Club invitation")
    await expect(row.locator(".touch-status")).to_have_text("Live")
    skipped = row.locator(".touch-skipped summary")
    await expect(skipped).to_have_text("1")
    await expect(row.locator(".touch-skipped li")).to_be_hidden()
    await skipped.focus()
    await page.keyboard.press("Enter")
    await expect(row.locator(".touch-skipped li")).to_have_text(["frequency cap1"])
    await expect(page.get_by_role("button", name="New from a template")).to_have_count(0)
    await expect(page.get_by_role("switch")).to_have_count(0)
    await shot(page, "touchpoints_list_agent_1024")
    assert await no_horizontal_overflow(page)


async def test_an_admin_settles_unknown_touches(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace, api: httpx.AsyncClient
) -> None:
    await not_quiet_now(api)
    await call(api, "POST", "/touchpoints", welcome("Welcome", inbox_id=ws.other_inbox_id))
    dora = await perform(
        runtime,
        ws.system,
        do_create_contact,
        name="Dora Doe",
        attributes={},
        identities=[IdentityInput(IdentityKind.EMAIL, "dora@example.test")],
    )
    for contact_id in (ws.contact_id, dora):
        await track(api, contact_id, "signed_up")
    await process(runtime)
    # Both mails were handed to the mail server and the connection broke
    # during DATA: they may have arrived, so they are never resent alone.
    jobs = await perform(runtime, system_actor(0), do_claim_outbox, limit=10)
    assert len(jobs) == 2
    for job in jobs:
        await perform(
            runtime,
            system_actor(0),
            do_record_delivery,
            outbox_id=job.outbox_id,
            status="temporary",
            reason="connection lost during DATA",
            maybe_delivered=True,
        )
    assert sorted(s for s, _ in (await decision_states(runtime)).values()) == ["unknown", "unknown"]

    await sign_in(page, threadline.base_url, ws.admin_email)
    await page.goto(f"{threadline.base_url}/#/touchpoints")
    region = page.get_by_role("region", name="Unknown decisions")
    await expect(region.locator("tbody tr")).to_have_count(2)
    await expect(region).to_contain_text("2 touches may or may not have gone out")
    listed = page.locator(".touch-table tbody tr", has_text="Welcome")
    await expect(listed.locator(".touch-unknown")).to_have_text("2")
    await shot(page, "touchpoints_unknown")

    # Cora's did arrive: marked sent.
    cora = region.locator("tr", has_text="Cora Customer")
    await cora.get_by_role("button", name="Mark sent").click()
    await expect(region.locator("tbody tr")).to_have_count(1)
    # Dora's is sent again, after a confirmation; declining it changes nothing.
    dora_row = region.locator("tr", has_text="Dora Doe")
    page.once("dialog", lambda dialog: dialog.dismiss())
    await dora_row.get_by_role("button", name="Send again").click()
    await expect(dora_row).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    await dora_row.get_by_role("button", name="Send again").click()
    await expect(region).to_be_hidden()
    await expect(listed.locator(".touch-unknown")).to_have_count(0)
    d = t.decisions.c
    rows = await fetch_all(runtime, sa.select(d.contact_id, d.state, d.reason))
    assert {r.contact_id: (r.state, r.reason) for r in rows} == {
        ws.contact_id: ("sent", "settled as sent"),
        dora: ("sending", "resent by an admin"),
    }


async def test_a_segment_is_built_from_rows_with_its_live_count_and_saved(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    await perform(
        runtime,
        ws.system,
        do_update_contact,
        contact_id=ws.contact_id,
        attributes={"plan": "pro"},
    )
    await sign_in(page, threadline.base_url, ws.admin_email)
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="Segments").click()
    await expect(page).to_have_title("Segments · Threadline")
    await expect(page.get_by_text("No segments yet.")).to_be_visible()
    await page.get_by_role("button", name="New segment").click()
    form = page.get_by_role("form", name="New segment")
    await form.get_by_label("Name").fill("Pro customers")
    # An empty "all" group matches everyone: Cora.
    count = form.locator(".segment-count-line")
    await expect(count).to_have_text("1 contact matches now")
    await expect(form.locator(".segment-preview")).to_contain_text("Cora Customer")

    await form.get_by_role("button", name="Add a condition").click()
    await form.get_by_label("Condition 1 attribute").fill("plan")
    await form.get_by_label("Condition 1 value").fill("team")
    await expect(count).to_have_text("0 contacts match now")
    await form.get_by_label("Condition 1 value").fill("pro")
    await expect(count).to_have_text("1 contact matches now")
    # A bad duration is named at its row.
    await form.get_by_role("button", name="Add a condition").click()
    await form.get_by_label("Condition 2", exact=True).select_option("last_seen")
    await form.get_by_label("Condition 2 duration").fill("soon")
    row_error = form.locator('[data-field="filter.conditions[1]"] > .field-error')
    await expect(row_error).to_contain_text("last_seen.within")
    await expect(count).to_have_text("Not counted: the filter has an error")
    await shot(page, "segment_editor_error")
    await form.get_by_label("Condition 2 duration").fill("30d")
    await expect(row_error).to_be_empty()
    await expect(count).to_have_text("0 contacts match now")  # Cora was never seen
    await form.get_by_role("button", name="Remove condition 2").click()
    await expect(count).to_have_text("1 contact matches now")
    await shot(page, "segment_editor")
    assert await no_horizontal_overflow(page)
    await form.get_by_role("button", name="Save").click()

    table = page.locator(".segment-table")
    await expect(table.get_by_role("row", name="Pro customers 1")).to_be_visible()
    [saved] = await fetch_all(runtime, sa.select(t.segments))
    assert saved.name == "Pro customers"
    assert saved.filter["conditions"] == [{"attribute": "plan", "op": "eq", "value": "pro"}]
    await shot(page, "segments_list")
