"""REST: routing rules — admins create, change, reorder and delete rules
and set the mode; every agent reads them; 403 for an agent's write;
422s naming the field path; a conversation's routing record."""

from __future__ import annotations

from typing import Any

import httpx

from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.messages import do_receive_message
from server.actions.teams import do_create_team
from server.domain.values import IdentityKind
from server.runtime import Runtime
from tests.support import T0, Workspace

API = "/api/v1"
R = f"{API}/routing_rules"
RULE: dict[str, Any] = {
    "name": " Refunds ",
    "conditions": [{"keywords": ["refund"]}, {"language": "en"}],
    "actions": [{"priority": "high"}, {"labels": ["Refund"]}],
}


def assert_error(res: httpx.Response, status: int, field: str | None) -> None:
    assert res.status_code == status, res.text
    assert res.json()["error"]["field"] == field, res.json()


async def test_crud_reorder_and_mode(
    admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient, ws: Workspace
) -> None:
    res = await admin_client.post(R, json=RULE)
    assert res.status_code == 201, res.text
    created: dict[str, Any] = res.json()
    assert created == {
        "id": created["id"],
        "name": "Refunds",
        "position": 0,
        "enabled": True,
        "on": ["conversation.created", "message.created"],
        "match": "all",
        "conditions": [{"keywords": ["refund"], "match": "any"}, {"language": ["en"]}],
        "actions": [{"priority": "high"}, {"labels": ["refund"]}],
        "created_by_id": ws.admin_id,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    one = f"{R}/{created['id']}"
    second = (
        await admin_client.post(
            R,
            json={
                "name": "Everything else",
                "actions": [{"priority": "low"}],
                "on": ["conversation.created"],
                "enabled": False,
                "position": 0,
            },
        )
    ).json()
    assert (second["position"], second["conditions"], second["enabled"]) == (0, [], False)
    # Every agent reads the rules, in order, and the mode.
    listed = (await agent_client.get(R)).json()
    assert listed["mode"] == "first"
    assert [r["id"] for r in listed["items"]] == [second["id"], created["id"]]
    assert (await agent_client.get(one)).json() == {**created, "position": 1}
    assert (await agent_client.get(f"{R}/settings")).json() == {"mode": "first"}
    # Admins change, reorder and set the mode.
    res = await admin_client.patch(one, json={"match": "any", "enabled": False})
    assert res.status_code == 200, res.text
    assert (res.json()["match"], res.json()["enabled"]) == ("any", False)
    res = await admin_client.post(f"{R}/reorder", json={"rule_ids": [created["id"], second["id"]]})
    assert res.status_code == 200, res.text
    assert [r["id"] for r in res.json()["items"]] == [created["id"], second["id"]]
    res = await admin_client.patch(f"{R}/settings", json={"mode": "all"})
    assert res.json() == {"mode": "all"}
    assert (await agent_client.get(R)).json()["mode"] == "all"
    res = await admin_client.delete(one)
    assert res.json() == {"deleted": True}
    assert (await admin_client.get(one)).status_code == 404
    assert [r["position"] for r in (await admin_client.get(R)).json()["items"]] == [0]


async def test_agents_can_not_write(
    admin_client: httpx.AsyncClient, agent_client: httpx.AsyncClient
) -> None:
    one = f"{R}/{(await admin_client.post(R, json=RULE)).json()['id']}"
    for res in (
        await agent_client.post(R, json={**RULE, "name": "Mine"}),
        await agent_client.patch(one, json={"name": "Mine"}),
        await agent_client.delete(one),
        await agent_client.post(f"{R}/reorder", json={"rule_ids": [int(one.rsplit("/", 1)[1])]}),
        await agent_client.patch(f"{R}/settings", json={"mode": "all"}),
    ):
        assert res.status_code == 403, res.text
    assert (await agent_client.get(one)).json()["name"] == "Refunds"


async def test_bad_input_names_the_field(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    team = await perform(runtime, ws.admin, do_create_team, name="Billing")
    for body, field in (
        (
            {**RULE, "conditions": [{"inbox": 1}, {"channel": "email"}, {"pattern": "(a+)+"}]},
            "conditions[2].pattern",
        ),
        ({**RULE, "conditions": [{"pattern": r"\d+\s+\d+"}]}, "conditions[0].pattern"),
        ({**RULE, "conditions": [{"segment": 999}]}, "conditions[0].segment"),
        ({**RULE, "conditions": [{"language": ["xx"]}]}, "conditions[0].language[0]"),
        ({**RULE, "actions": [{"team": team}, {"team": 3}]}, "actions[1].team"),
        ({**RULE, "actions": [{"priority": "high"}, {"team": 999}]}, "actions[1].team"),
        ({**RULE, "actions": [{"assignee": 999}]}, "actions[0].assignee"),
        ({**RULE, "actions": []}, "actions"),
        ({**RULE, "on": ["message.deleted"]}, "on[0]"),
        ({**RULE, "match": "most"}, "match"),
        ({**RULE, "position": -1}, "position"),
        ({**RULE, "name": ""}, "name"),
        ({"name": "No actions"}, "actions"),
    ):
        assert_error(await admin_client.post(R, json=body), 422, field)
    one = f"{R}/{(await admin_client.post(R, json=RULE)).json()['id']}"
    assert_error(await admin_client.post(R, json=RULE), 409, "name")
    assert_error(await admin_client.patch(one, json={}), 422, "body")
    assert_error(
        await admin_client.patch(one, json={"conditions": [{"business_hours": "lunch"}]}),
        422,
        "conditions[0].business_hours",
    )
    assert_error(await admin_client.post(f"{R}/reorder", json={"rule_ids": []}), 422, "rule_ids")
    assert_error(await admin_client.patch(f"{R}/settings", json={"mode": "some"}), 422, "mode")
    assert_error(await admin_client.get(f"{R}/999"), 404, None)


async def test_a_conversations_routing_record(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    routing = f"{API}/conversations/{ws.conversation_id}/routing"
    assert (await agent_client.get(routing)).json() == {"items": []}
    rule = (await admin_client.post(R, json={**RULE, "conditions": []})).json()
    # The seeded customer writes again: the catch-all rule routes it.
    got = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "customer@acme.test"),
        name="Cora Customer",
        text="Any news?",
    )
    assert got.conversation_id == ws.conversation_id
    [item] = (await agent_client.get(routing)).json()["items"]
    assert item == {
        "id": item["id"],
        "conversation_id": ws.conversation_id,
        "rule_id": rule["id"],
        "rule_name": "Refunds",
        "trigger": "message.created",
        "message_id": got.message_id,
        "changes": {"labels": ["refund"], "priority": "high"},
        "skipped": [],
        "created_at": T0.isoformat(),
    }
    # Deleting the rule keeps the record, under the rule's name.
    await admin_client.delete(f"{R}/{rule['id']}")
    [kept] = (await agent_client.get(routing)).json()["items"]
    assert (kept["rule_id"], kept["rule_name"]) == (None, "Refunds")
    # A conversation the agent may not read: its record is as missing.
    other = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "mail@example.test"),
        name="Mo Mail",
        text="hi",
    )
    res = await agent_client.get(f"{API}/conversations/{other.conversation_id}/routing")
    assert res.status_code == 404
