"""Routing in the transaction of what brought the conversation or the
customer's message: the rule's changes, its record and its events; what
does not route (agents' replies, notes, disabled rules); first-match vs
all-match; skipped actions; and the rule actions themselves (admins
only, positions kept 0..n-1, references checked by field)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.contacts import IdentityInput, do_update_contact
from server.actions.context import perform
from server.actions.conversations import do_create_conversation
from server.actions.messages import MessageResult, do_receive_message, do_send_message
from server.actions.routing import is_customer_message
from server.actions.routing_rules import (
    do_create_routing_rule,
    do_delete_routing_rule,
    do_reorder_routing_rules,
    do_set_routing_mode,
    do_update_routing_rule,
)
from server.actions.segments import do_create_segment
from server.actions.teams import do_create_team
from server.domain.errors import Conflict, Forbidden, InvalidInput
from server.domain.json_types import JsonObject
from server.domain.values import IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, events_since, fetch_all, fetch_one, last_event_id

REFUND = [{"keywords": ["refund"]}]


async def receive(runtime: Runtime, ws: Workspace, text: str, who: str = "new") -> MessageResult:
    result: MessageResult = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, who if "@" in who else f"{who}@example.test"),
        name="Nina New",
        text=text,
    )
    return result


async def conversation(runtime: Runtime, conversation_id: int) -> sa.Row[Any]:
    c = t.conversations.c
    return await fetch_one(
        runtime,
        sa.select(c.team_id, c.priority, c.assignee_id).where(c.id == conversation_id),
    )


async def labels_of(runtime: Runtime, conversation_id: int) -> list[str]:
    cl = t.conversation_labels.c
    rows = await fetch_all(
        runtime, sa.select(cl.label).where(cl.conversation_id == conversation_id).order_by(cl.label)
    )
    return [r.label for r in rows]


async def decisions(runtime: Runtime, conversation_id: int | None = None) -> list[sa.Row[Any]]:
    d = t.routing_decisions.c
    stmt = sa.select(t.routing_decisions).order_by(d.id)
    if conversation_id is not None:
        stmt = stmt.where(d.conversation_id == conversation_id)
    return await fetch_all(runtime, stmt)


async def make_rule(runtime: Runtime, ws: Workspace, name: str, **kwargs: Any) -> int:
    rule_id: int = await perform(runtime, ws.admin, do_create_routing_rule, name=name, **kwargs)
    return rule_id


async def test_a_new_conversation_with_a_matching_message_is_routed_in_one_transaction(
    runtime: Runtime, ws: Workspace
) -> None:
    billing = await perform(runtime, ws.admin, do_create_team, name="Billing")
    rule_id = await make_rule(
        runtime,
        ws,
        "Refunds",
        conditions=[{"channel": "widget"}, *REFUND],
        actions=[
            {"team": billing},
            {"priority": "high"},
            {"labels": ["Refund"]},
            {"assignee": ws.agent_id},
        ],
    )
    before = await last_event_id(runtime)
    got = await receive(runtime, ws, "Hello, I would like a refund please")
    assert got.created_conversation
    row = await conversation(runtime, got.conversation_id)
    assert (row.team_id, row.priority, row.assignee_id) == (billing, "high", ws.agent_id)
    assert await labels_of(runtime, got.conversation_id) == ["refund"]
    changes = {"assignee": ws.agent_id, "labels": ["refund"], "priority": "high", "team": billing}
    [decision] = await decisions(runtime)
    assert (
        decision.conversation_id,
        decision.rule_id,
        decision.rule_name,
        decision.trigger,
        decision.message_id,
        decision.changes,
        decision.skipped,
        decision.created_at,
    ) == (
        got.conversation_id,
        rule_id,
        "Refunds",
        "conversation.created",
        got.message_id,
        changes,
        [],
        T0,
    )
    events = await events_since(runtime, before)
    assert [kind for kind, _ in events] == [
        "contact.created",
        "contact.identity_added",
        "conversation.created",
        "message.created",
        "conversation.routed",
        "conversation.priority_changed",
        "conversation.labels_changed",
        "conversation.assigned",
    ]
    scope = {"workspace_id": ws.id, "conversation_id": got.conversation_id, "inbox_id": ws.inbox_id}
    assert events[4][1] == {
        **scope,
        "routing_decision_id": decision.id,
        "routing_rule_id": rule_id,
        "rule_name": "Refunds",
        "trigger": "conversation.created",
        "message_id": got.message_id,
        "changes": changes,
        "skipped": [],
    }
    assert events[5][1] == {**scope, "priority": "high"}
    assert events[6][1] == {**scope, "labels": ["refund"], "added": ["refund"], "removed": []}
    assert events[7][1] == {**scope, "assignee_id": ws.agent_id, "team_id": billing}


async def test_only_a_customers_public_message_routes(runtime: Runtime, ws: Workspace) -> None:
    await make_rule(runtime, ws, "Refunds", conditions=REFUND, actions=[{"priority": "urgent"}])
    cid = ws.conversation_id
    await perform(runtime, ws.agent, do_send_message, conversation_id=cid, text="A refund? Sure.")
    await perform(
        runtime, ws.agent, do_send_message, conversation_id=cid, text="refund", private=True
    )
    assert (await conversation(runtime, cid)).priority == "none"
    assert await decisions(runtime) == []
    # The customer writing in the same conversation routes it.
    again = await receive(runtime, ws, "About that refund", who="customer@acme.test")
    assert (again.conversation_id, again.created_conversation) == (cid, False)
    assert (await conversation(runtime, cid)).priority == "urgent"
    [decision] = await decisions(runtime)
    assert (decision.trigger, decision.message_id) == ("message.created", again.message_id)


def test_which_messages_are_the_customer_writing() -> None:
    customer: JsonObject = {"direction": "inbound", "sender_kind": "contact", "private": False}
    assert is_customer_message(customer)
    assert is_customer_message({**customer, "email": {"auto": "none"}})
    assert not is_customer_message({**customer, "email": {"auto": "auto_reply"}})
    assert not is_customer_message({**customer, "private": True})
    assert not is_customer_message({**customer, "direction": "outbound"})
    assert not is_customer_message({**customer, "sender_kind": "bot"})


async def test_a_disabled_rule_does_nothing(runtime: Runtime, ws: Workspace) -> None:
    rule_id = await make_rule(
        runtime, ws, "Refunds", conditions=REFUND, actions=[{"priority": "high"}], enabled=False
    )
    got = await receive(runtime, ws, "refund")
    assert (await conversation(runtime, got.conversation_id)).priority == "none"
    assert await decisions(runtime) == []
    await perform(runtime, ws.admin, do_update_routing_rule, rule_id=rule_id, enabled=True)
    await receive(runtime, ws, "refund")
    assert (await conversation(runtime, got.conversation_id)).priority == "high"


async def test_a_rule_runs_only_on_its_triggers(runtime: Runtime, ws: Workspace) -> None:
    rule_id = await make_rule(
        runtime,
        ws,
        "New only",
        on=["conversation.created"],
        conditions=[],
        actions=[{"labels": ["new"]}],
    )
    first = await receive(runtime, ws, "hi")
    assert await labels_of(runtime, first.conversation_id) == ["new"]
    await perform(
        runtime, ws.admin, do_update_routing_rule, rule_id=rule_id, actions=[{"labels": ["again"]}]
    )
    second = await receive(runtime, ws, "hello again")
    assert second.conversation_id == first.conversation_id
    # A later message in it is not "conversation.created".
    assert await labels_of(runtime, first.conversation_id) == ["new"]
    # An agent opening a conversation routes it too (no message: text
    # conditions are false; this rule has none).
    opened = await perform(
        runtime,
        ws.agent,
        do_create_conversation,
        inbox_id=ws.inbox_id,
        contact_id=first.contact_id,
    )
    assert await labels_of(runtime, opened) == ["again"]


async def test_all_match_overrides_and_first_match_stops(runtime: Runtime, ws: Workspace) -> None:
    await make_rule(
        runtime, ws, "Low", conditions=[], actions=[{"priority": "low"}, {"labels": ["a"]}]
    )
    await make_rule(
        runtime, ws, "High", conditions=REFUND, actions=[{"priority": "high"}, {"labels": ["b"]}]
    )
    first = await receive(runtime, ws, "refund", who="one")
    assert (await conversation(runtime, first.conversation_id)).priority == "low"
    assert await labels_of(runtime, first.conversation_id) == ["a"]
    await perform(runtime, ws.admin, do_set_routing_mode, mode="all")
    second = await receive(runtime, ws, "refund", who="two")
    assert (await conversation(runtime, second.conversation_id)).priority == "high"
    assert await labels_of(runtime, second.conversation_id) == ["a", "b"]
    assert [(d.rule_name, d.changes) for d in await decisions(runtime, second.conversation_id)] == [
        ("Low", {"labels": ["a"]}),
        ("High", {"labels": ["b"], "priority": "high"}),
    ]


async def test_an_assignee_who_cannot_see_the_inbox_is_skipped_and_said_so(
    runtime: Runtime, ws: Workspace
) -> None:
    # The agent is a member of `inbox` only; this rule routes the other.
    rule_id = await make_rule(
        runtime,
        ws,
        "To Gus",
        conditions=[],
        actions=[{"assignee": ws.agent_id}, {"priority": "low"}],
    )
    got = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "mail@example.test"),
        name="Mo Mail",
        text="hi",
    )
    row = await conversation(runtime, got.conversation_id)
    assert (row.assignee_id, row.priority) == (None, "low")
    [decision] = await decisions(runtime)
    assert (decision.rule_id, decision.changes, decision.skipped) == (
        rule_id,
        {"priority": "low"},
        [f"agent {ws.agent_id} is not an active member of the inbox"],
    )


async def test_segment_and_attribute_conditions_read_the_contact(
    runtime: Runtime, ws: Workspace
) -> None:
    segment = await perform(
        runtime,
        ws.admin,
        do_create_segment,
        name="Pro",
        filter={"conditions": [{"attribute": "plan", "op": "eq", "value": "pro"}]},
    )
    await make_rule(
        runtime, ws, "Pros", conditions=[{"segment": segment}], actions=[{"priority": "high"}]
    )
    first = await receive(runtime, ws, "hi", who="pro")
    assert (await conversation(runtime, first.conversation_id)).priority == "none"
    await perform(
        runtime,
        ws.admin,
        do_update_contact,
        contact_id=first.contact_id,
        attributes={"plan": "pro"},
    )
    await receive(runtime, ws, "hi again", who="pro")
    assert (await conversation(runtime, first.conversation_id)).priority == "high"


# -- the rules themselves --------------------------------------------------------


async def test_rule_actions_keep_positions_and_emit(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    a = await make_rule(runtime, ws, "A", conditions=[], actions=[{"priority": "low"}])
    b = await make_rule(runtime, ws, "B", conditions=[], actions=[{"priority": "low"}])
    c = await make_rule(runtime, ws, "C", conditions=[], actions=[{"priority": "low"}], position=0)
    r = t.routing_rules.c

    async def order() -> list[tuple[int, int]]:
        rows = await fetch_all(runtime, sa.select(r.id, r.position).order_by(r.position))
        return [(row.id, row.position) for row in rows]

    assert await order() == [(c, 0), (a, 1), (b, 2)]
    await perform(runtime, ws.admin, do_reorder_routing_rules, rule_ids=[a, b, c])
    await perform(runtime, ws.admin, do_reorder_routing_rules, rule_ids=[a, b, c])  # no change
    assert await order() == [(a, 0), (b, 1), (c, 2)]
    await perform(runtime, ws.admin, do_update_routing_rule, rule_id=b, name="B2", match="any")
    await perform(runtime, ws.admin, do_update_routing_rule, rule_id=b, name="B2")  # no change
    await perform(runtime, ws.admin, do_delete_routing_rule, rule_id=a)
    assert await order() == [(b, 0), (c, 1)]
    await perform(runtime, ws.admin, do_set_routing_mode, mode="all")
    await perform(runtime, ws.admin, do_set_routing_mode, mode="all")  # no change
    w = {"workspace_id": ws.id}
    assert await events_since(runtime, before) == [
        (
            "routing_rule.created",
            {**w, "routing_rule_id": a, "name": "A", "position": 0, "enabled": True},
        ),
        (
            "routing_rule.created",
            {**w, "routing_rule_id": b, "name": "B", "position": 1, "enabled": True},
        ),
        (
            "routing_rule.created",
            {**w, "routing_rule_id": c, "name": "C", "position": 0, "enabled": True},
        ),
        ("routing_rules.reordered", {**w, "routing_rule_ids": [a, b, c]}),
        (
            "routing_rule.updated",
            {
                **w,
                "routing_rule_id": b,
                "name": "B2",
                "enabled": True,
                "changes": ["match", "name"],
            },
        ),
        ("routing_rule.deleted", {**w, "routing_rule_id": a, "name": "A"}),
        ("routing.mode_changed", {**w, "mode": "all"}),
    ]


async def test_only_admins_write_rules_and_references_are_checked(
    runtime: Runtime, ws: Workspace
) -> None:
    ok: dict[str, Any] = {"conditions": [], "actions": [{"priority": "low"}]}
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_create_routing_rule, name="Mine", **ok)
    rule_id = await make_rule(runtime, ws, "Taken", **ok)
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_update_routing_rule, rule_id=rule_id, name="x")
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_delete_routing_rule, rule_id=rule_id)
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_reorder_routing_rules, rule_ids=[rule_id])
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_set_routing_mode, mode="all")
    with pytest.raises(Conflict) as conflict:
        await make_rule(runtime, ws, " Taken ", **ok)
    assert conflict.value.field == "name"
    for conditions, actions, field in (
        ([{"segment": 999}], [{"priority": "low"}], "conditions[0].segment"),
        (
            [{"channel": "email"}, {"inbox": [ws.inbox_id, 999]}],
            [{"priority": "low"}],
            "conditions[1].inbox",
        ),
        ([], [{"priority": "low"}, {"team": 999}], "actions[1].team"),
        ([], [{"assignee": 999}], "actions[0].assignee"),
        ([{"pattern": "(a+)+"}], [{"priority": "low"}], "conditions[0].pattern"),
    ):
        with pytest.raises(InvalidInput) as caught:
            await make_rule(runtime, ws, "Bad", conditions=conditions, actions=actions)
        assert caught.value.field == field
    with pytest.raises(InvalidInput) as caught:
        await perform(runtime, ws.admin, do_reorder_routing_rules, rule_ids=[rule_id, rule_id])
    assert caught.value.field == "rule_ids"
