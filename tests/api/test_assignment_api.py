"""REST: assignment policies — admins set and remove an inbox's or a
team's policy, agents who see the inbox or team read it, 403 for an
agent's write, 422s naming the setting; a conversation's assignments,
newest first; another workspace sees none of it."""

from __future__ import annotations

from typing import Any

import httpx

from server.actions.agents import do_update_agent
from server.actions.context import perform
from server.actions.requeue import do_record_presence
from server.actions.teams import do_create_team
from server.domain.values import Availability
from server.runtime import Runtime
from tests.support import T0, Workspace, client, login, seed_workspace

API = "/api/v1"
STORED_DEFAULTS: dict[str, Any] = {
    "mode": "round_robin",
    "capacity": None,
    "channel_capacity": {},
    "fairness_window": 8 * 3600,
    "reassign_after": None,
    "offline_grace": 120,
}


def inbox_policy(ws: Workspace, inbox_id: int | None = None) -> str:
    return f"{API}/inboxes/{inbox_id or ws.inbox_id}/assignment_policy"


def assert_error(res: httpx.Response, status: int, field: str | None) -> None:
    assert res.status_code == status, res.text
    assert res.json()["error"]["field"] == field, res.json()


async def make_agent_available(runtime: Runtime, ws: Workspace) -> None:
    """Gus (a member of ws.inbox) online with a live socket: eligible."""
    await perform(
        runtime, ws.system, do_update_agent, agent_id=ws.agent_id, availability=Availability.ONLINE
    )
    await perform(runtime, ws.system, do_record_presence, agent_id=ws.agent_id, connected=True)


async def test_inbox_policy_crud(
    ws: Workspace, admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    url = inbox_policy(ws)
    # None yet: null, for the inbox's members as for admins.
    for c in (admin_client, agent_client):
        res = await c.get(url)
        assert res.status_code == 200, res.text
        assert res.json() is None
    res = await admin_client.put(url, json={"mode": "least_loaded", "capacity": 5})
    assert res.status_code == 200, res.text
    assert res.json() == {**STORED_DEFAULTS, "mode": "least_loaded", "capacity": 5}
    # A PUT replaces the whole policy; durations may be spelled out.
    changed = {"channel_capacity": {"email": 20}, "reassign_after": "15m", "offline_grace": "0s"}
    res = await admin_client.put(url, json=changed)
    expected = {**STORED_DEFAULTS, "channel_capacity": {"email": 20}, "reassign_after": 900}
    assert res.json() == {**expected, "offline_grace": 0}
    assert (await agent_client.get(url)).json() == {**expected, "offline_grace": 0}
    res = await admin_client.delete(url)
    assert res.json() == {"deleted": True}
    assert (await agent_client.get(url)).json() is None
    assert (await admin_client.delete(url)).json() == {"deleted": False}


async def test_team_policy_crud(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    team_id = await perform(runtime, ws.admin, do_create_team, name="Billing team")
    url = f"{API}/teams/{team_id}/assignment_policy"
    res = await admin_client.put(url, json={"mode": "manual"})
    assert res.status_code == 200, res.text
    # Teams are visible workspace-wide: any agent reads the policy.
    assert (await agent_client.get(url)).json() == {**STORED_DEFAULTS, "mode": "manual"}
    assert (await agent_client.put(url, json={})).status_code == 403
    assert (await agent_client.delete(url)).status_code == 403
    assert (await admin_client.delete(url)).json() == {"deleted": True}
    assert (await admin_client.get(f"{API}/teams/999999/assignment_policy")).status_code == 404


async def test_agents_may_read_but_not_write(
    ws: Workspace, admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    url = inbox_policy(ws)
    await admin_client.put(url, json={"mode": "round_robin", "capacity": 3})
    for res in (
        await agent_client.put(url, json={"mode": "manual"}),
        await agent_client.delete(url),
    ):
        assert res.status_code == 403, res.text
    assert (await agent_client.get(url)).json()["capacity"] == 3
    # An inbox the agent is not a member of is as missing as none at all.
    hidden = inbox_policy(ws, ws.other_inbox_id)
    for res in (
        await agent_client.get(hidden),
        await agent_client.put(hidden, json={"mode": "manual"}),
        await agent_client.delete(hidden),
    ):
        assert res.status_code == 404, res.text


async def test_bad_settings_are_refused_by_name(
    ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    url = inbox_policy(ws)
    for body, field in (
        ({"mode": "random"}, "mode"),
        ({"capacity": -1}, "capacity"),
        ({"capacity": "8"}, "capacity"),
        ({"channel_capacity": {"sms": 3}}, "channel_capacity.sms"),
        ({"channel_capacity": {"email": None}}, "channel_capacity.email"),
        ({"channel_capacity": []}, "channel_capacity"),
        ({"fairness_window": "10s"}, "fairness_window"),
        ({"reassign_after": "soon"}, "reassign_after"),
        ({"offline_grace": True}, "offline_grace"),
        ({"colour": "red"}, "colour"),
    ):
        assert_error(await admin_client.put(url, json=body), 422, field)
    assert (await admin_client.get(url)).json() is None  # nothing was stored


async def test_a_conversation_shows_who_it_was_assigned_to_and_why(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    url = f"{API}/conversations/{ws.conversation_id}/assignments"
    assert (await agent_client.get(url)).json() == {"items": []}
    await make_agent_available(runtime, ws)
    # Setting the policy serves the waiting seeded conversation at once.
    res = await admin_client.put(inbox_policy(ws), json={"mode": "round_robin"})
    assert res.status_code == 200, res.text
    conversation = (await agent_client.get(f"{API}/conversations/{ws.conversation_id}")).json()
    assert conversation["assignee_id"] == ws.agent_id
    [first] = (await agent_client.get(url)).json()["items"]
    assert first == {
        "id": first["id"],
        "agent_id": ws.agent_id,
        "agent_name": "Gus Agent",
        "policy_id": first["policy_id"],
        "reason": "round robin in inbox Website",
        "at": T0.isoformat(),
    }
    assert isinstance(first["policy_id"], int)
    # Unassigned by hand, it waits again and is assigned again: newest first.
    res = await admin_client.patch(
        f"{API}/conversations/{ws.conversation_id}", json={"assignee_id": None}
    )
    assert res.status_code == 200, res.text
    items = (await admin_client.get(url)).json()["items"]
    assert [i["id"] for i in items][1:] == [first["id"]]
    assert items[0]["id"] > first["id"]
    # The policy gone, its lines stay.
    await admin_client.delete(inbox_policy(ws))
    assert [i["reason"] for i in (await agent_client.get(url)).json()["items"]] == [
        "round robin in inbox Website"
    ] * 2


async def test_another_workspace_sees_nothing(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    team_id = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    await make_agent_available(runtime, ws)
    await admin_client.put(inbox_policy(ws), json={"mode": "round_robin"})
    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)  # an admin, of the other workspace
        for method, path, body in (
            ("GET", inbox_policy(ws), None),
            ("PUT", inbox_policy(ws), {"mode": "manual"}),
            ("DELETE", inbox_policy(ws), None),
            ("GET", f"{API}/teams/{team_id}/assignment_policy", None),
            ("PUT", f"{API}/teams/{team_id}/assignment_policy", {"mode": "manual"}),
            ("DELETE", f"{API}/teams/{team_id}/assignment_policy", None),
            ("GET", f"{API}/conversations/{ws.conversation_id}/assignments", None),
        ):
            res = await outsider.request(method, path, json=body)
            assert res.status_code == 404, f"{method} {path}: {res.text}"
    assert (await admin_client.get(inbox_policy(ws))).json()["mode"] == "round_robin"
