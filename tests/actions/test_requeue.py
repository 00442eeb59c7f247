"""Requeue (server.actions.requeue): an assignee who doesn't answer in
time, or goes away, loses the conversation to a colleague — once, through
the durable scheduler, with a note in the thread saying why."""

from __future__ import annotations

import sqlalchemy as sa

from server.actions.context import perform
from server.actions.messages import do_send_message
from server.actions.requeue import do_record_presence
from server.clock import FrozenClock
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.jobs import HANDLERS, JobRunner
from tests.actions.test_assignment import arrive, assignee, online_agent, policy
from tests.support import Workspace, agent_actor, events_since, fetch_all, last_event_id


def clock(runtime: Runtime) -> FrozenClock:
    assert isinstance(runtime.clock, FrozenClock)
    return runtime.clock


async def run_jobs(runtime: Runtime) -> int:
    """Run due jobs until none is due (a fresh runner each time, as after
    a restart); how many ran."""
    total = 0
    while ran := await JobRunner(runtime, HANDLERS, worker="test", batch=10).run_due():
        total += ran
    return total


async def notes(runtime: Runtime, conversation_id: int) -> list[str]:
    m = t.messages.c
    rows = await fetch_all(
        runtime,
        sa.select(m.text)
        .where(m.conversation_id == conversation_id, m.private.is_(True))
        .order_by(m.id),
    )
    return [r.text for r in rows]


async def test_no_reply_in_time_hands_it_to_a_colleague_once(
    runtime: Runtime, ws: Workspace
) -> None:
    ann = await online_agent(runtime, ws, "Ann")
    await policy(runtime, ws, mode="round_robin", reassign_after="15m")
    assert await assignee(runtime, ws.conversation_id) == ann
    bob = await online_agent(runtime, ws, "Bob")
    before = await last_event_id(runtime)

    clock(runtime).advance(seconds=14 * 60)
    assert await run_jobs(runtime) == 0  # not yet
    clock(runtime).advance(seconds=61)
    assert await run_jobs(runtime) == 1

    assert await assignee(runtime, ws.conversation_id) == bob
    assert await notes(runtime, ws.conversation_id) == [
        "Returned to the queue: no reply from Ann within 15 min."
    ]
    kinds = [k for k, _ in await events_since(runtime, before)]
    assert "conversation.requeued" in kinds
    assert kinds.count("conversation.assigned") == 2  # to nobody, then to Bob
    assert await run_jobs(runtime) == 0  # done once
    # Bob's assignment has its own wait: he doesn't answer either, and Ann
    # (the only other) takes it back.
    clock(runtime).advance(seconds=15 * 60 + 1)
    assert await run_jobs(runtime) == 1
    assert await assignee(runtime, ws.conversation_id) == ann


async def test_an_answer_in_time_keeps_it(runtime: Runtime, ws: Workspace) -> None:
    await online_agent(runtime, ws, "Ann")
    await online_agent(runtime, ws, "Bob")
    await policy(runtime, ws, mode="round_robin", reassign_after="15m")
    got = await arrive(runtime, ws, "c1")
    owner = await assignee(runtime, got.conversation_id)
    assert owner is not None
    clock(runtime).advance(seconds=60)
    await perform(
        runtime,
        agent_actor(ws.id, owner),
        do_send_message,
        conversation_id=got.conversation_id,
        text="On it!",
    )
    clock(runtime).advance(seconds=15 * 60)
    await run_jobs(runtime)

    assert await assignee(runtime, got.conversation_id) == owner
    assert await notes(runtime, got.conversation_id) == []
    # The seeded conversation went unanswered by whoever had it: requeued.
    assert await notes(runtime, ws.conversation_id) != []


async def test_without_anyone_else_it_waits_in_the_queue(runtime: Runtime, ws: Workspace) -> None:
    ann = await online_agent(runtime, ws, "Ann")
    await policy(runtime, ws, mode="round_robin", reassign_after="10m")
    assert await assignee(runtime, ws.conversation_id) == ann
    clock(runtime).advance(seconds=10 * 60 + 1)
    await run_jobs(runtime)
    assert await assignee(runtime, ws.conversation_id) is None  # not straight back to Ann


async def test_an_agent_who_goes_away_loses_their_conversations_after_the_grace(
    runtime: Runtime, ws: Workspace
) -> None:
    ann = await online_agent(runtime, ws, "Ann")
    await policy(runtime, ws, mode="least_loaded", offline_grace="2m")
    first = await arrive(runtime, ws, "c1")
    assert {await assignee(runtime, c) for c in (ws.conversation_id, first.conversation_id)} == {
        ann
    }
    bob = await online_agent(runtime, ws, "Bob")

    await perform(runtime, ws.system, do_record_presence, agent_id=ann, connected=False)
    clock(runtime).advance(seconds=60)
    assert await run_jobs(runtime) == 0
    clock(runtime).advance(seconds=61)
    assert await run_jobs(runtime) == 1

    for conversation_id in (ws.conversation_id, first.conversation_id):
        assert await assignee(runtime, conversation_id) == bob
        assert await notes(runtime, conversation_id) == ["Returned to the queue: Ann went offline."]


async def test_coming_back_within_the_grace_keeps_them(runtime: Runtime, ws: Workspace) -> None:
    await online_agent(runtime, ws, "Ann")
    await online_agent(runtime, ws, "Bob")
    await policy(runtime, ws, mode="least_loaded", offline_grace="2m")
    owner = await assignee(runtime, ws.conversation_id)
    assert owner is not None
    await perform(runtime, ws.system, do_record_presence, agent_id=owner, connected=False)
    clock(runtime).advance(seconds=30)
    await perform(runtime, ws.system, do_record_presence, agent_id=owner, connected=True)
    clock(runtime).advance(seconds=120)
    await run_jobs(runtime)
    assert await assignee(runtime, ws.conversation_id) == owner
    assert await notes(runtime, ws.conversation_id) == []
