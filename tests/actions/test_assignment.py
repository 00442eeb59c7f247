"""Automatic assignment on events (server.actions.assignment): who gets a
new conversation, what waits, what a freed agent takes, and capacity
held when conversations arrive at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.agents import do_create_agent, do_update_agent
from server.actions.assignment import (
    do_delete_assignment_policy,
    do_set_assignment_policy,
    do_take_next,
)
from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.conversations import (
    do_assign_conversation,
    do_change_conversation_status,
    do_set_conversation_priority,
)
from server.actions.inboxes import do_add_inbox_member
from server.actions.messages import MessageResult, do_receive_message
from server.actions.requeue import do_record_presence
from server.actions.routing_rules import do_create_routing_rule
from server.actions.teams import do_add_team_member, do_create_team
from server.domain.errors import Forbidden, InvalidInput, NotFound
from server.domain.values import Availability, ConversationStatus, IdentityKind, Priority
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import PASSWORD, Workspace, agent_actor, fetch_all, fetch_one


async def online_agent(
    runtime: Runtime,
    ws: Workspace,
    name: str,
    *,
    capacity: int | None = None,
    connected: bool = True,
    availability: Availability = Availability.ONLINE,
) -> int:
    """An agent of `ws.inbox_id` with the given availability and presence."""
    agent_id: int = await perform(
        runtime,
        ws.system,
        do_create_agent,
        email=f"{name.lower()}@acme.test",
        name=name,
        password=PASSWORD,
        capacity=capacity,
    )
    await perform(runtime, ws.system, do_add_inbox_member, inbox_id=ws.inbox_id, agent_id=agent_id)
    await perform(runtime, ws.system, do_update_agent, agent_id=agent_id, availability=availability)
    if connected:
        await perform(runtime, ws.system, do_record_presence, agent_id=agent_id, connected=True)
    return agent_id


async def arrive(runtime: Runtime, ws: Workspace, who: str, text: str = "Hi") -> MessageResult:
    result: MessageResult = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, f"{who}@example.test"),
        name=who,
        text=text,
    )
    return result


async def assignee(runtime: Runtime, conversation_id: int) -> int | None:
    c = t.conversations.c
    row = await fetch_one(runtime, sa.select(c.assignee_id).where(c.id == conversation_id))
    value: int | None = row.assignee_id
    return value


async def policy(runtime: Runtime, ws: Workspace, **settings: Any) -> None:
    await perform(
        runtime, ws.admin, do_set_assignment_policy, inbox_id=ws.inbox_id, policy=settings
    )


async def test_new_conversations_are_spread_round_robin_at_once(
    runtime: Runtime, ws: Workspace
) -> None:
    ann = await online_agent(runtime, ws, "Ann")
    bob = await online_agent(runtime, ws, "Bob")
    await policy(runtime, ws, mode="round_robin")  # the seeded conversation goes to Ann

    got = [await arrive(runtime, ws, f"c{i}") for i in range(3)]

    owners = [await assignee(runtime, g.conversation_id) for g in got]
    assert owners == [bob, ann, bob]
    rows = await fetch_all(
        runtime, sa.select(t.assignments.c.agent_id, t.assignments.c.reason).order_by("id")
    )
    assert [r.agent_id for r in rows] == [ann, bob, ann, bob]
    assert rows[0].reason == f"round robin in inbox {ws.inbox_id}"


async def test_busy_absent_and_full_agents_are_passed_over(runtime: Runtime, ws: Workspace) -> None:
    await online_agent(runtime, ws, "Busy", availability=Availability.BUSY)
    await online_agent(runtime, ws, "Away", connected=False)  # online, but never connected
    full = await online_agent(runtime, ws, "Full", capacity=1)
    await policy(runtime, ws, mode="least_loaded")

    first = await arrive(runtime, ws, "c1")
    assert await assignee(runtime, ws.conversation_id) == full  # the seeded one, at once
    assert await assignee(runtime, first.conversation_id) is None  # Full is full: it waits


async def test_resolving_frees_capacity_for_the_oldest_waiting(
    runtime: Runtime, ws: Workspace
) -> None:
    ann = await online_agent(runtime, ws, "Ann", capacity=1)
    await policy(runtime, ws, mode="round_robin")
    assert await assignee(runtime, ws.conversation_id) == ann
    older = await arrive(runtime, ws, "c1")
    newer = await arrive(runtime, ws, "c2")
    assert await assignee(runtime, older.conversation_id) is None

    await perform(
        runtime,
        ws.agent,
        do_change_conversation_status,
        conversation_id=ws.conversation_id,
        status=ConversationStatus.RESOLVED,
    )

    assert await assignee(runtime, older.conversation_id) == ann  # in the resolve's transaction
    assert await assignee(runtime, newer.conversation_id) is None


async def test_an_agent_coming_online_or_connecting_takes_from_the_queue(
    runtime: Runtime, ws: Workspace
) -> None:
    await policy(runtime, ws, mode="round_robin")
    waiting = await arrive(runtime, ws, "c1")
    assert await assignee(runtime, waiting.conversation_id) is None  # no one is there

    ann = await online_agent(runtime, ws, "Ann", availability=Availability.BUSY, connected=True)
    assert await assignee(runtime, waiting.conversation_id) is None
    await perform(
        runtime, ws.system, do_update_agent, agent_id=ann, availability=Availability.ONLINE
    )
    assert await assignee(runtime, ws.conversation_id) == ann
    assert await assignee(runtime, waiting.conversation_id) == ann

    later = await arrive(runtime, ws, "c2")
    bob = await online_agent(runtime, ws, "Bob", connected=False)
    assert await assignee(runtime, later.conversation_id) == ann  # Bob was not there
    await perform(
        runtime,
        ws.system,
        do_assign_conversation,
        conversation_id=later.conversation_id,
        assignee_id=None,
    )
    # Unassigned: back to the queue, and to whoever may take it (still Ann).
    assert await assignee(runtime, later.conversation_id) == ann
    await perform(runtime, ws.system, do_record_presence, agent_id=bob, connected=True)
    third = await arrive(runtime, ws, "c3")
    assert await assignee(runtime, third.conversation_id) == bob


async def test_a_teams_policy_serves_the_conversations_routed_to_it(
    runtime: Runtime, ws: Workspace
) -> None:
    await online_agent(runtime, ws, "Ann")
    billing = await perform(runtime, ws.admin, do_create_team, name="Billing")
    bea = await online_agent(runtime, ws, "Bea")
    await perform(runtime, ws.admin, do_add_team_member, team_id=billing, agent_id=bea)
    await perform(
        runtime,
        ws.admin,
        do_create_routing_rule,
        name="Refunds",
        conditions=[{"keywords": ["refund"]}],
        actions=[{"team": billing}],
    )
    await policy(runtime, ws, mode="least_loaded")
    await perform(
        runtime,
        ws.admin,
        do_set_assignment_policy,
        team_id=billing,
        policy={"mode": "round_robin"},
    )

    refund = await arrive(runtime, ws, "r1", "I want a refund")
    other = await arrive(runtime, ws, "o1", "Where is my parcel")

    assert await assignee(runtime, refund.conversation_id) == bea
    assert await assignee(runtime, other.conversation_id) is not None  # the inbox's policy
    c = t.conversations.c
    row = await fetch_one(runtime, sa.select(c.team_id).where(c.id == refund.conversation_id))
    assert row.team_id == billing


async def test_a_manual_policy_or_none_assigns_nothing(runtime: Runtime, ws: Workspace) -> None:
    await online_agent(runtime, ws, "Ann")
    first = await arrive(runtime, ws, "c1")
    assert await assignee(runtime, first.conversation_id) is None  # no policy
    await policy(runtime, ws, mode="manual")
    second = await arrive(runtime, ws, "c2")
    assert await assignee(runtime, second.conversation_id) is None
    await perform(runtime, ws.admin, do_delete_assignment_policy, inbox_id=ws.inbox_id)
    assert await fetch_all(runtime, sa.select(t.assignment_policies)) == []


async def test_policies_are_for_admins_and_checked(runtime: Runtime, ws: Workspace) -> None:
    with pytest.raises(Forbidden):
        await perform(runtime, ws.agent, do_set_assignment_policy, inbox_id=ws.inbox_id, policy={})
    with pytest.raises(InvalidInput) as bad:
        await perform(
            runtime,
            ws.admin,
            do_set_assignment_policy,
            inbox_id=ws.inbox_id,
            policy={"mode": "random"},
        )
    assert bad.value.field == "policy.mode"
    with pytest.raises(NotFound):
        await perform(runtime, ws.admin, do_set_assignment_policy, inbox_id=999_999, policy={})


async def test_arrivals_at_once_never_exceed_an_agents_capacity(
    runtime: Runtime, ws: Workspace
) -> None:
    agents = [await online_agent(runtime, ws, f"A{i}", capacity=2) for i in range(3)]
    await policy(runtime, ws, mode="least_loaded")  # the seeded conversation takes one place

    got = await asyncio.gather(*(arrive(runtime, ws, f"c{i}") for i in range(12)))

    owners = Counter([await assignee(runtime, g.conversation_id) for g in got])
    owners[await assignee(runtime, ws.conversation_id)] += 1
    assert owners.pop(None) == 13 - 6  # six places in all; the rest wait
    assert set(owners) == set(agents)
    assert set(owners.values()) == {2}


async def test_take_next_pulls_the_most_urgent_within_capacity(
    runtime: Runtime, ws: Workspace
) -> None:
    ann = await online_agent(runtime, ws, "Ann", capacity=2, availability=Availability.BUSY)
    await policy(runtime, ws, mode="manual")
    calm = await arrive(runtime, ws, "c1")
    urgent = await arrive(runtime, ws, "c2")
    await perform(
        runtime,
        ws.admin,
        do_set_conversation_priority,
        conversation_id=urgent.conversation_id,
        priority=Priority.URGENT,
    )
    me = agent_actor(ws.id, ann)

    assert await perform(runtime, me, do_take_next) == urgent.conversation_id
    # Then the longest waiting: the seeded conversation, older than c1.
    assert await perform(runtime, me, do_take_next) == ws.conversation_id
    assert await perform(runtime, me, do_take_next) is None  # full at 2
    assert await assignee(runtime, calm.conversation_id) is None
    reasons = await fetch_all(runtime, sa.select(t.assignments.c.reason))
    assert {r.reason for r in reasons} == {f"taken from the queue of inbox {ws.inbox_id}"}
