"""Availability and assignment in the inbox UI, against the real server:
an agent sets themself busy from the sidebar and is still busy after a
reload (and in the REST API); a conversation a policy assigned shows who
got it and by which policy in its side panel. Screenshots go to
/tmp/assignshots for a person to look at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from server.actions.agents import do_update_agent
from server.actions.assignment import do_set_assignment_policy
from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.messages import do_receive_message
from server.actions.requeue import do_record_presence
from server.actions.routing_rules import do_create_routing_rule
from server.domain.values import Availability, IdentityKind
from server.runtime import Runtime
from tests.browser.inbox_ui import no_horizontal_overflow, sign_in
from tests.realtime.live import LiveServer, new_token
from tests.support import Workspace

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/assignshots")


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.fixture
async def api(
    threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> AsyncIterator[httpx.AsyncClient]:
    token = (await new_token(runtime, ws.admin, name="check"))[1]
    async with threadline.http(authorization=f"Bearer {token}") as client:
        yield client


async def test_an_agent_sets_themself_busy_and_stays_busy(
    page: Page, threadline: LiveServer, ws: Workspace, api: httpx.AsyncClient
) -> None:
    await sign_in(page, threadline.base_url, ws.agent_email)
    sidebar = page.get_by_role("navigation", name="Views")
    # A new agent starts offline: nothing is assigned to them yet.
    control = sidebar.get_by_role("button", name="Availability: Offline")
    await expect(control).to_have_attribute("aria-expanded", "false")
    await control.click()
    menu = sidebar.get_by_role("menu", name="Availability")
    await expect(menu).to_be_visible()
    await expect(menu.get_by_role("menuitemradio", name="Offline")).to_have_attribute(
        "aria-checked", "true"
    )
    await shot(page, "availability-menu")
    await menu.get_by_role("menuitemradio", name="Busy").click()
    await expect(menu).to_be_hidden()
    await expect(sidebar.get_by_role("button", name="Availability: Busy")).to_be_visible()

    await page.reload()
    busy = page.get_by_role("navigation", name="Views").get_by_role(
        "button", name="Availability: Busy"
    )
    await expect(busy).to_be_visible()
    res = await api.get(f"/api/v1/agents/{ws.agent_id}")
    assert res.json()["availability"] == "busy", res.text
    # Escape closes the menu without changing anything.
    await busy.click()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("menu", name="Availability")).to_be_hidden()
    assert (await api.get(f"/api/v1/agents/{ws.agent_id}")).json()["availability"] == "busy"
    await shot(page, "availability-busy")


async def test_a_conversation_assigned_by_a_policy_says_so(
    page: Page, threadline: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    await perform(
        runtime, ws.system, do_update_agent, agent_id=ws.agent_id, availability=Availability.ONLINE
    )
    await perform(runtime, ws.system, do_record_presence, agent_id=ws.agent_id, connected=True)
    # Setting the policy assigns the waiting seeded conversation to Gus.
    await perform(
        runtime,
        ws.admin,
        do_set_assignment_policy,
        inbox_id=ws.inbox_id,
        policy={"mode": "round_robin"},
    )
    # A new conversation is routed by a rule, then assigned.
    await perform(
        runtime,
        ws.admin,
        do_create_routing_rule,
        name="Refunds",
        conditions=[{"keywords": ["refund"]}],
        actions=[{"priority": "high"}],
    )
    routed = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "rita@example.test"),
        name="Rita",
        text="I want a refund",
    )
    await sign_in(page, threadline.base_url, ws.agent_email)
    await page.goto(f"{threadline.base_url}/#/v/all/c/{ws.conversation_id}")
    panel = page.get_by_role("complementary", name="Contact")
    record = panel.get_by_role("region", name="Assignment and routing")
    await expect(record).to_contain_text("Assigned to Gus Agent by round robin in inbox Website")
    await expect(record.get_by_role("listitem")).to_have_count(1)

    await page.goto(f"{threadline.base_url}/#/v/all/c/{routed.conversation_id}")
    await expect(panel.get_by_role("heading", name="Rita")).to_be_visible()
    lines = record.get_by_role("listitem")
    await expect(lines).to_have_count(2)
    await expect(lines.nth(0)).to_contain_text("round robin in inbox Website")
    await expect(lines.nth(1)).to_contain_text("Routed by rule 'Refunds': priority high")
    assert await no_horizontal_overflow(page)
    await shot(page, "assigned-by-round-robin")
