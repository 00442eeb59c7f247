"""REST: macros — CRUD, who may read and change each scope, refusals that
name the step's field and write nothing, and running one: the answer,
all-or-nothing, the Idempotency-Key, and 404s."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from server.actions.canned_responses import do_create_canned_response
from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.messages import do_receive_message
from server.domain.values import CannedScope, IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, last_event_id

API = "/api/v1"
M = f"{API}/macros"
STEPS: list[dict[str, Any]] = [
    {"type": "add_label", "label": "Refund"},
    {"type": "set_priority", "priority": "high"},
    {"type": "resolve"},
]


async def created(c: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"scope": "workspace", "name": "Refund", "actions": STEPS, **fields}
    res = await c.post(M, json=body)
    assert res.status_code == 201, res.text
    out: dict[str, Any] = res.json()
    return out


def assert_error(res: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert res.status_code == status, res.text
    error: dict[str, Any] = res.json()["error"]
    assert error["field"] == field, error
    return error


async def written(runtime: Runtime) -> tuple[int, int, int, int]:
    """Macros, messages, labels, events: what a refused call must not touch."""
    async with runtime.db.read() as conn:
        counts = [
            int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)
            for table in (t.macros, t.messages, t.conversation_labels)
        ]
    return counts[0], counts[1], counts[2], await last_event_id(runtime)


async def names(c: httpx.AsyncClient, **params: str) -> list[str]:
    res = await c.get(M, params=params)
    assert res.status_code == 200, res.text
    return [item["name"] for item in res.json()["items"]]


async def test_create_get_list_update_delete(
    ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    item = await created(admin_client, name=" Refund and close ")
    assert item == {
        "id": item["id"],
        "scope": "workspace",
        "agent_id": None,
        "name": "Refund and close",
        "actions": [
            {"type": "add_label", "label": "refund"},
            {"type": "set_priority", "priority": "high"},
            {"type": "resolve"},
        ],
        "usage_count": 0,
        "created_by": ws.admin_id,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    one = f"{M}/{item['id']}"
    assert (await admin_client.get(one)).json() == item
    assert (await admin_client.get(M)).json() == {"items": [item]}
    res = await admin_client.patch(one, json={"name": "Close", "actions": [{"type": "resolve"}]})
    assert res.status_code == 200, res.text
    assert (res.json()["name"], res.json()["actions"]) == ("Close", [{"type": "resolve"}])
    assert_error(await admin_client.patch(one, json={}), 422, "body")
    res = await admin_client.delete(one)
    assert (res.status_code, res.json()) == (200, {"deleted": True})
    assert_error(await admin_client.get(one), 404, None)
    assert_error(await admin_client.delete(one), 404, None)


async def test_who_reads_and_changes_each_scope(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    shared = await created(admin_client, name="Shared")
    admins_own = await created(admin_client, scope="personal", name="Admin's own")
    before = await written(runtime)
    assert_error(
        await agent_client.post(M, json={"scope": "workspace", "name": "X", "actions": STEPS}),
        403,
        None,
    )
    assert_error(await agent_client.patch(f"{M}/{shared['id']}", json={"name": "X"}), 403, None)
    assert_error(await agent_client.delete(f"{M}/{shared['id']}"), 403, None)
    assert_error(await agent_client.get(f"{M}/{admins_own['id']}"), 404, None)
    assert_error(await agent_client.delete(f"{M}/{admins_own['id']}"), 404, None)
    assert await written(runtime) == before
    mine = await created(agent_client, scope="personal", name="Agent's own")
    assert mine["agent_id"] == ws.agent_id
    assert_error(await admin_client.get(f"{M}/{mine['id']}"), 404, None)
    # Each lists what it may run: the workspace's and its own.
    assert await names(agent_client) == ["Agent's own", "Shared"]
    assert await names(admin_client) == ["Admin's own", "Shared"]
    assert await names(agent_client, scope="personal") == ["Agent's own"]
    res = await agent_client.patch(f"{M}/{mine['id']}", json={"actions": [{"type": "reopen"}]})
    assert res.status_code == 200, res.text


async def test_bad_input_names_the_field_and_writes_nothing(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    inbox_canned = await perform(
        runtime,
        ws.admin,
        do_create_canned_response,
        scope=CannedScope.INBOX,
        inbox_id=ws.inbox_id,
        shortcut="site",
        title="Site",
        body="Hi",
    )
    await created(admin_client, name="Taken")
    before = await written(runtime)
    resolve = {"type": "resolve"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"actions": [resolve, resolve, {"type": "add_label", "label": "a,b"}]},
            422,
            "actions[2].label",
        ),
        ({"actions": [resolve, {"type": "add_label"}]}, 422, "actions[1].label"),
        ({"actions": [{"type": "close"}]}, 422, "actions[0].type"),
        ({"actions": [{"type": "resolve", "label": "x"}]}, 422, "actions[0].label"),
        ({"actions": [{"type": "snooze", "minutes": 0}]}, 422, "actions[0].minutes"),
        ({"actions": [{"type": "set_priority", "priority": "meh"}]}, 422, "actions[0].priority"),
        ({"actions": [{"type": "assign_agent", "agent_id": "you"}]}, 422, "actions[0].agent_id"),
        ({"actions": []}, 422, "actions"),
        ({"actions": [resolve] * 21}, 422, "actions"),
        (
            {
                "actions": [
                    resolve,
                    {"type": "send_canned_response", "canned_response_id": inbox_canned},
                ]
            },
            422,
            "actions[1].canned_response_id",
        ),
        ({"actions": [{"type": "assign_team", "team_id": 10**9}]}, 422, "actions[0].team_id"),
        ({"actions": [{"type": "assign_agent", "agent_id": 10**9}]}, 422, "actions[0].agent_id"),
        ({"name": "x" * 201}, 422, "name"),
        ({"scope": "team"}, 422, "scope"),
        ({"name": "Taken"}, 409, "name"),
    ]
    for change, status, field in cases:
        body = {"scope": "workspace", "name": "New", "actions": STEPS, **change}
        assert_error(await admin_client.post(M, json=body), status, field)
    assert await written(runtime) == before


async def test_run_answers_the_conversation_and_the_replies(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    canned_id = await perform(
        runtime,
        ws.admin,
        do_create_canned_response,
        scope=CannedScope.WORKSPACE,
        shortcut="refunded",
        title="Refunded",
        body="Hi {{contact.first_name}}, refunded.",
    )
    item = await created(
        admin_client,
        actions=[
            {"type": "send_canned_response", "canned_response_id": canned_id},
            {"type": "assign_agent", "agent_id": "me"},
            *STEPS,
        ],
    )
    run = f"{M}/{item['id']}/run"
    res = await agent_client.post(run, json={"conversation_id": ws.conversation_id})
    assert res.status_code == 200, res.text
    out = res.json()
    [message_id] = out["message_ids"]
    assert (out["macro_id"], out["usage_count"], out["replayed"]) == (item["id"], 1, False)
    conversation = out["conversation"]
    assert (
        conversation == (await agent_client.get(f"{API}/conversations/{ws.conversation_id}")).json()
    )
    assert (
        conversation["status"],
        conversation["priority"],
        conversation["assignee_id"],
        conversation["labels"],
    ) == ("resolved", "high", ws.agent_id, ["refund"])
    message = (
        await agent_client.get(f"{API}/conversations/{ws.conversation_id}/messages/{message_id}")
    ).json()
    assert message["text"] == "Hi Cora, refunded."
    assert (await agent_client.get(f"{M}/{item['id']}")).json()["usage_count"] == 1


async def test_run_with_an_idempotency_key_sends_once(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    canned_id = await perform(
        runtime,
        ws.admin,
        do_create_canned_response,
        scope=CannedScope.WORKSPACE,
        shortcut="thanks",
        title="Thanks",
        body="Thanks!",
    )
    item = await created(
        admin_client, actions=[{"type": "send_canned_response", "canned_response_id": canned_id}]
    )
    run = f"{M}/{item['id']}/run"
    body = {"conversation_id": ws.conversation_id}
    first = await admin_client.post(run, json=body, headers={"Idempotency-Key": "click-1"})
    assert first.status_code == 200, first.text
    before = await written(runtime)
    again = await admin_client.post(run, json=body, headers={"Idempotency-Key": "click-1"})
    assert again.status_code == 200, again.text
    assert again.json()["message_ids"] == first.json()["message_ids"]
    assert (again.json()["replayed"], again.json()["usage_count"]) == (True, 1)
    assert await written(runtime) == before
    res = await admin_client.post(run, json=body, headers={"Idempotency-Key": "x" * 201})
    assert_error(res, 422, "Idempotency-Key")
    assert await written(runtime) == before


async def test_run_refusals(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    hidden = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "hidden@acme.test"),
        name="Hidden",
        text="hi",
    )
    shared = await created(admin_client, name="Shared")
    admins_own = await created(admin_client, scope="personal", name="Own")
    outsider = (
        await admin_client.post(
            f"{API}/agents",
            json={"email": "out@acme.test", "name": "Out", "password": "a long password"},
        )
    ).json()["id"]
    # Valid when saved; the agent is no member of the conversation's inbox.
    failing = await created(
        admin_client,
        name="Failing",
        actions=[*STEPS, {"type": "assign_agent", "agent_id": outsider}],
    )
    before = await written(runtime)
    body = {"conversation_id": ws.conversation_id}
    assert_error(await agent_client.post(f"{M}/{admins_own['id']}/run", json=body), 404, None)
    assert_error(
        await agent_client.post(
            f"{M}/{shared['id']}/run", json={"conversation_id": hidden.conversation_id}
        ),
        404,
        None,
    )
    assert_error(await agent_client.post(f"{M}/{10**9}/run", json=body), 404, None)
    assert_error(
        await agent_client.post(f"{M}/{shared['id']}/run", json={}), 422, "conversation_id"
    )
    error = assert_error(
        await agent_client.post(f"{M}/{failing['id']}/run", json=body), 422, "actions[3].agent_id"
    )
    assert "member of the inbox" in error["message"]
    assert await written(runtime) == before


async def test_the_openapi_document_shows_each_step_type(admin_client: httpx.AsyncClient) -> None:
    doc = (await admin_client.get(f"{API}/openapi.json")).json()
    body = doc["paths"][f"{API}/macros"]["post"]["requestBody"]["content"]["application/json"]
    steps = body["schema"]["properties"]["actions"]
    kinds = [v["properties"]["type"]["enum"][0] for v in steps["items"]["oneOf"]]
    assert kinds == [
        "send_canned_response",
        "add_label",
        "remove_label",
        "assign_team",
        "assign_agent",
        "set_priority",
        "snooze",
        "resolve",
        "reopen",
    ]
    assert steps["maxItems"] == 20
