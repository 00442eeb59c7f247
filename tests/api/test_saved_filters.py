"""REST: saved filters — CRUD of an agent's own filters, refusals naming
`query.<key>`, and the sidebar counts: each filter's count is exactly the
number of conversations GET /conversations lists for its query, for each
agent's own access."""

from __future__ import annotations

from typing import Any

import httpx

from server.actions.contacts import do_create_contact
from server.actions.context import perform
from server.actions.conversations import (
    do_assign_conversation,
    do_change_conversation_labels,
    do_change_conversation_status,
    do_create_conversation,
)
from server.actions.teams import do_create_team
from server.domain.saved_filters import FILTERS
from server.domain.values import ConversationStatus
from server.http.routes import ENDPOINTS
from server.http.saved_filters import Query
from server.runtime import Runtime
from tests.support import T0, Workspace, last_event_id

API = "/api/v1"
F = f"{API}/saved_filters"


async def created(c: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    res = await c.post(F, json={"name": name, "query": {}, **fields})
    assert res.status_code == 201, res.text
    out: dict[str, Any] = res.json()
    return out


def assert_error(res: httpx.Response, status: int, field: str | None) -> None:
    assert res.status_code == status, res.text
    assert res.json()["error"]["field"] == field, res.json()


async def test_crud_of_ones_own_filters(
    runtime: Runtime, admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    first = await created(
        agent_client, " Waiting VIPs ", query={"label": "VIP", "status": ["pending", "open"]}
    )
    assert first == {
        "id": first["id"],
        "name": "Waiting VIPs",
        "query": {"label": "vip", "status": ["open", "pending"]},
        "position": 0,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    second = await created(agent_client, "Mine", query={"mine": True})
    top = await created(agent_client, "Top", query={"unassigned": True}, position=0)
    listed = (await agent_client.get(F)).json()["items"]
    assert [(i["name"], i["position"]) for i in listed] == [
        ("Waiting VIPs", 0),
        ("Top", 0),
        ("Mine", 1),
    ]
    res = await agent_client.patch(f"{F}/{top['id']}", json={"position": 9, "name": "Bottom"})
    assert res.status_code == 200, res.text
    assert (res.json()["name"], res.json()["position"]) == ("Bottom", 9)
    assert [i["name"] for i in (await agent_client.get(F)).json()["items"]] == [
        "Waiting VIPs",
        "Mine",
        "Bottom",
    ]
    assert_error(await agent_client.patch(f"{F}/{top['id']}", json={}), 422, "body")
    # Another agent, an admin included, finds none of them.
    before = await last_event_id(runtime)
    assert (await admin_client.get(F)).json() == {"items": []}
    assert_error(await admin_client.patch(f"{F}/{second['id']}", json={"name": "X"}), 404, None)
    assert_error(await admin_client.delete(f"{F}/{second['id']}"), 404, None)
    assert await last_event_id(runtime) == before
    res = await agent_client.delete(f"{F}/{second['id']}")
    assert (res.status_code, res.json()) == (200, {"deleted": True})
    assert_error(await agent_client.delete(f"{F}/{second['id']}"), 404, None)


async def test_bad_input_names_the_field(runtime: Runtime, agent_client: httpx.AsyncClient) -> None:
    await created(agent_client, "Taken")
    before = await last_event_id(runtime)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"query": {"priority": "high"}}, 422, "query.priority"),
        ({"query": {"cursor": "abc"}}, 422, "query.cursor"),
        ({"query": {"status": ["open", "closed"]}}, 422, "query.status[1]"),
        ({"query": {"status": "open"}}, 422, "query.status"),
        ({"query": {"inbox_id": 0}}, 422, "query.inbox_id"),
        ({"query": {"mine": "yes"}}, 422, "query.mine"),
        ({"query": {"label": ""}}, 422, "query.label"),
        ({"query": {"label": "a,b"}}, 422, "query.label"),
        ({"query": "mine"}, 422, "query"),
        ({"position": -1}, 422, "position"),
        ({"name": ""}, 422, "name"),
        ({"name": "x" * 101}, 422, "name"),
        ({"name": "Taken"}, 409, "name"),
    ]
    for change, status, field in cases:
        body = {"name": "New", "query": {}, **change}
        assert_error(await agent_client.post(F, json=body), status, field)
    assert len((await agent_client.get(F)).json()["items"]) == 1
    assert await last_event_id(runtime) == before


def test_the_keys_are_the_conversation_lists_filters() -> None:
    """A saved filter opens as GET /conversations: a filter added to the
    list must be added here (and to the counts) too."""
    (listing,) = [ep for ep in ENDPOINTS if (ep.method, ep.path) == ("GET", "/conversations")]
    assert listing.query is not None
    assert set(listing.query.fields) - {"cursor", "limit"} == set(FILTERS)
    assert set(Query.fields) == set(FILTERS)


def as_params(query: dict[str, Any]) -> dict[str, str]:
    """A saved query as GET /conversations' query string."""
    out = {}
    for key, value in query.items():
        if isinstance(value, list):
            out[key] = ",".join(value)
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


async def test_counts_are_the_lists_lengths(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    team = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    contact = await perform(runtime, ws.system, do_create_contact, name="Someone")

    async def conversation(
        inbox_id: int,
        *,
        assignee: int | None = None,
        team_id: int | None = None,
        labels: list[str] | None = None,
        status: ConversationStatus | None = None,
    ) -> None:
        cid = await perform(
            runtime, ws.system, do_create_conversation, inbox_id=inbox_id, contact_id=contact
        )
        if assignee is not None or team_id is not None:
            await perform(
                runtime,
                ws.system,
                do_assign_conversation,
                conversation_id=cid,
                assignee_id=assignee,
                team_id=team_id,
            )
        if labels:
            await perform(
                runtime, ws.system, do_change_conversation_labels, conversation_id=cid, add=labels
            )
        if status is not None:
            await perform(
                runtime,
                ws.system,
                do_change_conversation_status,
                conversation_id=cid,
                status=status,
            )

    # The seeded conversation is open and unassigned in ws.inbox.
    await conversation(ws.inbox_id, assignee=ws.agent_id, labels=["vip"])
    await conversation(ws.inbox_id, assignee=ws.agent_id, team_id=team, labels=["vip", "billing"])
    await conversation(ws.inbox_id, status=ConversationStatus.RESOLVED, labels=["vip"])
    await conversation(ws.inbox_id, assignee=ws.admin_id, status=ConversationStatus.PENDING)
    await conversation(ws.other_inbox_id, assignee=ws.admin_id, team_id=team, labels=["vip"])
    await conversation(ws.other_inbox_id, status=ConversationStatus.PENDING)

    queries: list[dict[str, Any]] = [
        {},
        {"status": ["open"]},
        {"status": ["open", "pending"]},
        {"mine": True},
        {"unassigned": True},
        {"unassigned": True, "status": ["pending"]},
        {"label": "vip"},
        {"label": "VIP", "status": ["open"]},
        {"label": "nothing-has-this"},
        {"team_id": team},
        {"inbox_id": ws.other_inbox_id},
        {"inbox_id": ws.inbox_id, "mine": True},
        {"assignee_id": ws.admin_id},
        {"contact_id": contact},
        {"contact_id": ws.contact_id, "status": ["open"]},
    ]
    for c in (agent_client, admin_client):
        for i, query in enumerate(queries):
            await created(c, f"filter {i}", query=query)
        counts = (await c.get(f"{API}/views/counts")).json()["saved_filters"]
        saved = (await c.get(F)).json()["items"]
        assert [(s["id"], s["name"]) for s in counts] == [(s["id"], s["name"]) for s in saved]
        for count, item in zip(counts, saved, strict=True):
            listed = await c.get(
                f"{API}/conversations", params={**as_params(item["query"]), "limit": "100"}
            )
            assert listed.status_code == 200, listed.text
            assert count["count"] == len(listed.json()["items"]), item
    # Each agent counts what it may see: the agent none of the other inbox's.
    agent = {
        s["name"]: s["count"]
        for s in (await agent_client.get(f"{API}/views/counts")).json()["saved_filters"]
    }
    admin = {
        s["name"]: s["count"]
        for s in (await admin_client.get(f"{API}/views/counts")).json()["saved_filters"]
    }
    assert (agent["filter 0"], admin["filter 0"]) == (5, 7)
    assert (agent["filter 3"], admin["filter 3"]) == (2, 2)
    assert (agent["filter 10"], admin["filter 10"]) == (0, 2)
    # A saved filter's count ignores the statuses asked for the other views.
    resolved = (await agent_client.get(f"{API}/views/counts?status=resolved")).json()
    assert {s["name"]: s["count"] for s in resolved["saved_filters"]} == agent
