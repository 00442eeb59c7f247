"""REST: segments — admins create, change and delete; every agent lists,
reads, counts and previews; the editor's live preview of an unsaved
filter; refusals naming the field path; 403 for a non-admin write."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from server.actions.contacts import do_create_contact
from server.actions.context import perform
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, fetch_all

API = "/api/v1"
S = f"{API}/segments"
PRO = {"conditions": [{"attribute": "plan", "op": "eq", "value": "pro"}]}


def assert_error(res: httpx.Response, status: int, field: str | None) -> None:
    assert res.status_code == status, res.text
    assert res.json()["error"]["field"] == field, res.json()


async def pros(runtime: Runtime, ws: Workspace, n: int) -> list[int]:
    return [
        await perform(
            runtime, ws.admin, do_create_contact, name=f"Pro {i}", attributes={"plan": "pro"}
        )
        for i in range(n)
    ]


async def test_crud_count_and_preview(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    ids = await pros(runtime, ws, 3)
    res = await admin_client.post(S, json={"name": " Pro plan ", "filter": PRO})
    assert res.status_code == 201, res.text
    created: dict[str, Any] = res.json()
    assert created == {
        "id": created["id"],
        "name": "Pro plan",
        "filter": {
            "match": "all",
            "conditions": [{"attribute": "plan", "op": "eq", "value": "pro"}],
        },
        "members": 0,
        "created_by_id": ws.admin_id,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    one = f"{S}/{created['id']}"
    # Every agent reads, counts and previews.
    assert (await agent_client.get(S)).json() == {"items": [created]}
    assert (await agent_client.get(one)).json() == created
    assert (await agent_client.get(f"{one}/count")).json() == {"count": 3}
    preview = (await agent_client.get(f"{one}/preview", params={"limit": 2})).json()
    assert [c["id"] for c in preview["items"]] == [ids[2], ids[1]]
    assert preview["items"][0] == {
        "id": ids[2],
        "name": "Pro 2",
        "email": None,
        "last_seen_at": None,
    }

    res = await admin_client.patch(one, json={"filter": {"conditions": [{"identity": "email"}]}})
    assert res.status_code == 200, res.text
    assert res.json()["filter"]["conditions"] == [{"identity": "email", "exists": True}]
    assert (await agent_client.get(f"{one}/count")).json() == {"count": 1}
    assert (await admin_client.patch(one, json={"name": "Emailable"})).json()["name"] == (
        "Emailable"
    )
    assert_error(await admin_client.patch(one, json={}), 422, "body")

    res = await admin_client.delete(one)
    assert res.status_code == 200 and res.json() == {"deleted": True}
    assert_error(await agent_client.get(one), 404, None)
    assert (await agent_client.get(S)).json() == {"items": []}


async def test_live_preview_of_an_unsaved_filter(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    ids = await pros(runtime, ws, 4)
    res = await agent_client.post(f"{S}/preview", params={"limit": 3}, json={"filter": PRO})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["count"] == 4
    assert [c["id"] for c in body["contacts"]] == ids[::-1][:3]
    everyone = (await agent_client.post(f"{S}/preview", json={"filter": {"conditions": []}})).json()
    assert everyone["count"] == 5
    # Nothing was saved.
    assert await fetch_all(runtime, sa.select(t.segments)) == []


async def test_refusals_name_the_field(
    admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {
                "name": "X",
                "filter": {"conditions": [{"label": "a"}, {"event": "e", "within": "4"}]},
            },
            "filter.conditions[1].within",
        ),
        (
            {"name": "X", "filter": {"conditions": [{"attribute": "n", "op": "gt", "value": "1"}]}},
            "filter.conditions[0].value",
        ),
        ({"name": "X", "filter": {"match": "any", "conditions": []}}, "filter.conditions"),
        ({"name": "X", "filter": {"conditions": [{"nope": 1}]}}, "filter.conditions[0]"),
        ({"name": "", "filter": PRO}, "name"),
        ({"filter": PRO}, "name"),
        ({"name": "X"}, "filter"),
    ]
    for body, field in cases:
        res = await admin_client.post(S, json=body)
        assert_error(res, 422, field)
        assert res.json()["error"]["message"].startswith(field), res.json()
    res = await agent_client.post(
        f"{S}/preview", json={"filter": {"conditions": [{"consent": {"channel": "email"}}]}}
    )
    assert_error(res, 422, "filter.conditions[0].consent.topic")
    assert (await admin_client.get(S)).json() == {"items": []}


async def test_duplicate_names_are_409_naming_name(admin_client: httpx.AsyncClient) -> None:
    first = (await admin_client.post(S, json={"name": "Pro", "filter": PRO})).json()
    assert_error(await admin_client.post(S, json={"name": "Pro", "filter": PRO}), 409, "name")
    second = (await admin_client.post(S, json={"name": "Free", "filter": PRO})).json()
    assert_error(await admin_client.patch(f"{S}/{second['id']}", json={"name": "Pro"}), 409, "name")
    listed = (await admin_client.get(S)).json()["items"]
    assert [s["name"] for s in listed] == ["Free", "Pro"]
    assert first["id"] in {s["id"] for s in listed}


async def test_a_non_admin_may_not_write(
    admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    assert_error(await agent_client.post(S, json={"name": "Mine", "filter": PRO}), 403, None)
    made = (await admin_client.post(S, json={"name": "Pro", "filter": PRO})).json()
    one = f"{S}/{made['id']}"
    assert_error(await agent_client.patch(one, json={"name": "Mine"}), 403, None)
    assert_error(await agent_client.delete(one), 403, None)
    assert (await agent_client.get(one)).json() == made
