"""A simulated day at a support desk (issue: routing and assignment): 2,000
conversations arriving at random over 24 hours at 20 agents working three
overlapping shifts with their own capacities, each conversation resolved
a while after it was assigned, agents leaving at the end of their shift.

After every step of the day: no agent holds more open conversations than
their capacity, and no conversation waits unassigned while an agent who
could take it (online, connected, under capacity) is free — assignment
runs on the event itself, so the "event latency" here is zero. At the end
every conversation had arrived, and agents alike (one shift, one
capacity) got shares of the work within a spread.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.agents import do_create_agent, do_update_agent
from server.actions.assignment import do_set_assignment_policy
from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.conversations import do_change_conversation_status
from server.actions.inboxes import do_add_inbox_member
from server.actions.messages import do_receive_message
from server.actions.requeue import do_record_presence
from server.clock import FrozenClock
from server.domain.values import Availability, ConversationStatus, IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.jobs import HANDLERS, JobRunner
from tests.support import PASSWORD, Workspace, agent_actor, fetch_all

ARRIVALS = 2000
AGENTS = 20
# Shifts in hours of the day, overlapping by an hour (the last ends next day).
SHIFTS = [(0, 9), (8, 17), (16, 25)]
SPREAD = 0.1  # like agents' shares differ by at most this fraction of their mean

START, END, ARRIVE, RESOLVE = 0, 1, 2, 3  # event kinds, in this order at one instant


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
async def test_a_simulated_day(runtime: Runtime, ws: Workspace) -> None:
    rng = random.Random(2026)
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    day = clock.now().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    _move_to(clock, day - timedelta(minutes=1))
    # The seeded conversation is resolved: the day starts with an empty queue.
    await perform(
        runtime,
        ws.system,
        do_change_conversation_status,
        conversation_id=ws.conversation_id,
        status=ConversationStatus.RESOLVED,
    )
    await perform(
        runtime,
        ws.admin,
        do_set_assignment_policy,
        inbox_id=ws.inbox_id,
        policy={"mode": "round_robin", "fairness_window": "8h", "offline_grace": "2m"},
    )

    capacity: dict[int, int] = {}
    shift_of: dict[int, int] = {}
    events: list[tuple[Any, ...]] = []
    for n in range(AGENTS):
        agent_id = await perform(
            runtime,
            ws.system,
            do_create_agent,
            email=f"sim{n}@acme.test",
            name=f"Sim {n}",
            password=PASSWORD,
            capacity=rng.randint(3, 6),
        )
        await perform(
            runtime, ws.system, do_add_inbox_member, inbox_id=ws.inbox_id, agent_id=agent_id
        )
        row = await fetch_all(
            runtime, sa.select(t.agents.c.capacity).where(t.agents.c.id == agent_id)
        )
        capacity[agent_id] = int(row[0].capacity)
        shift = n % len(SHIFTS)
        shift_of[agent_id] = shift
        begin, end = SHIFTS[shift]
        events.append((day + timedelta(hours=begin), START, n, agent_id))
        events.append((day + timedelta(hours=end), END, n, agent_id))
    for i in range(ARRIVALS):
        at = day + timedelta(seconds=rng.uniform(0, 24 * 3600))
        events.append((at, ARRIVE, i, i))
    heapq.heapify(events)

    resolving: dict[int, int] = {}  # conversation -> the agent whose resolve is scheduled
    arrived: list[int] = []
    step = 0
    while events:
        at, kind, _, subject = heapq.heappop(events)
        _move_to(clock, at)
        await _run_jobs(runtime)  # requeues due by now
        if kind == START:
            await perform(
                runtime,
                ws.system,
                do_update_agent,
                agent_id=subject,
                availability=Availability.ONLINE,
            )
            await perform(runtime, ws.system, do_record_presence, agent_id=subject, connected=True)
        elif kind == END:
            await perform(
                runtime,
                ws.system,
                do_update_agent,
                agent_id=subject,
                availability=Availability.OFFLINE,
            )
            await perform(runtime, ws.system, do_record_presence, agent_id=subject, connected=False)
        elif kind == ARRIVE:
            got = await perform(
                runtime,
                ws.system,
                do_receive_message,
                inbox_id=ws.inbox_id,
                identity=IdentityInput(IdentityKind.EMAIL, f"customer{subject}@example.test"),
                name=f"Customer {subject}",
                text="Hello, I need help with my order",
            )
            arrived.append(got.conversation_id)
        else:  # RESOLVE: only if it is still theirs (a requeue may have moved it)
            conversation_id, agent_id = subject
            if resolving.get(conversation_id) == agent_id:
                del resolving[conversation_id]
                await perform(
                    runtime,
                    agent_actor(ws.id, agent_id),
                    do_change_conversation_status,
                    conversation_id=conversation_id,
                    status=ConversationStatus.RESOLVED,
                )
        step += 1
        open_rows = await _open_conversations(runtime)
        for conversation_id, owner in open_rows:
            if owner is not None and resolving.get(conversation_id) != owner:
                resolving[conversation_id] = owner
                handling = timedelta(minutes=rng.uniform(5, 40))
                heapq.heappush(
                    events, (clock.now() + handling, RESOLVE, step, (conversation_id, owner))
                )
        await _check(runtime, open_rows, capacity, when=f"step {step} at {clock.now():%H:%M}")

    # Past the last shift's end: the grace runs out and nothing is left.
    clock.advance(minutes=5)
    await _run_jobs(runtime)
    assert len(arrived) == ARRIVALS
    given = await _assignments_by_agent(runtime)
    for shift in range(len(SHIFTS)):
        # Agents of one shift with the same capacity are interchangeable:
        # round robin gives them even shares. (Across capacities it can't:
        # when all are full, what frees up goes to whoever freed it.)
        for size in {capacity[a] for a, s in shift_of.items() if s == shift}:
            shares = [given[a] for a, s in shift_of.items() if s == shift and capacity[a] == size]
            mean = sum(shares) / len(shares)
            assert max(shares) - min(shares) <= SPREAD * mean + 2, (shift, size, shares)


def _move_to(clock: FrozenClock, at: Any) -> None:
    if at > clock.now():
        clock.advance(seconds=(at - clock.now()).total_seconds())


async def _run_jobs(runtime: Runtime) -> None:
    runner = JobRunner(runtime, HANDLERS, worker="sim", batch=50)
    while await runner.run_due():
        pass


async def _open_conversations(runtime: Runtime) -> list[tuple[int, int | None]]:
    c = t.conversations.c
    rows = await fetch_all(
        runtime,
        sa.select(c.id, c.assignee_id).where(c.status == ConversationStatus.OPEN.value),
    )
    return [(r.id, r.assignee_id) for r in rows]


async def _check(
    runtime: Runtime,
    open_rows: list[tuple[int, int | None]],
    capacity: dict[int, int],
    *,
    when: str,
) -> None:
    load = Counter(agent_id for _, agent_id in open_rows if agent_id is not None)
    for agent_id, count in load.items():
        if agent_id in capacity:
            assert count <= capacity[agent_id], f"{when}: agent {agent_id} over capacity"
    waiting = [cid for cid, agent_id in open_rows if agent_id is None]
    if not waiting:
        return
    a = t.agents.c
    free = [
        r.id
        for r in await fetch_all(
            runtime,
            sa.select(a.id).where(
                a.id.in_(list(capacity)),
                a.availability == Availability.ONLINE.value,
                a.connected.is_(True),
            ),
        )
        if load[r.id] < capacity[r.id]
    ]
    assert not free, f"{when}: {len(waiting)} waiting while agents {free} have room"


async def _assignments_by_agent(runtime: Runtime) -> Counter[int]:
    s = t.assignments.c
    rows = await fetch_all(runtime, sa.select(s.agent_id))
    return Counter(r.agent_id for r in rows)
