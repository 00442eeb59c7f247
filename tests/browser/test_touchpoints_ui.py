"""The Touchpoints UI (F7) as an admin and an agent use it, against the real
server: installing a shipped template, editing a step with its live
preview for a real contact, a broken Liquid tag refused at its field,
switching it live and seeing what it did; segments with their live
count; the contact column's touchpoints with their reasons; settling a
decision whose outcome is unknown. Screenshots of each page go to
/tmp/touchshots for a person to look at."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.async_api import Page, expect

from server.actions.contacts import do_update_contact
from server.actions.context import perform
from server.runtime import Runtime
from server.storage import tables as t
from tests.browser.inbox_ui import no_horizontal_overflow, sign_in
from tests.realtime.live import LiveServer
from tests.support import Workspace, fetch_all

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/touchshots")


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


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
