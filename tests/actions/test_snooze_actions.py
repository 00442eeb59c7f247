"""A snooze's wake-up job follows the snooze: written with it, superseded
by a new one, cancelled by whatever ends it; and the wake action reopens
the conversation once, with its event (server.actions.snoozes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.conversation_merges import do_merge_conversations
from server.actions.conversations import do_change_conversation_status, do_create_conversation
from server.actions.messages import do_receive_message
from server.actions.snooze_jobs import SNOOZE_WAKE
from server.actions.snoozes import do_wake_snoozed_conversation
from server.clock import FrozenClock
from server.domain.conversations import SnoozeWake
from server.domain.values import ConversationStatus, IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, events_since, fetch_all, fetch_one, last_event_id

LATER = T0 + timedelta(hours=2)


async def jobs(runtime: Runtime, conversation_id: int) -> list[tuple[Any, ...]]:
    j = t.scheduled_jobs.c
    rows = await fetch_all(
        runtime,
        sa.select(j.kind, j.due_at, j.run_at, j.status, j.attempts, j.last_error)
        .where(j.subject_id == conversation_id, j.kind == SNOOZE_WAKE)
        .order_by(j.id),
    )
    return [tuple(r) for r in rows]


async def snooze(runtime: Runtime, ws: Workspace, until: datetime, cid: int | None = None) -> None:
    await perform(
        runtime,
        ws.agent,
        do_change_conversation_status,
        conversation_id=cid or ws.conversation_id,
        status=ConversationStatus.SNOOZED,
        snoozed_until=until,
    )


async def conversation(runtime: Runtime, cid: int) -> Any:
    return await fetch_one(runtime, sa.select(t.conversations).where(t.conversations.c.id == cid))


async def test_snoozing_schedules_one_wake_up_at_the_snooze_time(
    runtime: Runtime, ws: Workspace
) -> None:
    await snooze(runtime, ws, LATER)
    assert await jobs(runtime, ws.conversation_id) == [
        (SNOOZE_WAKE, LATER, LATER, "scheduled", 0, None)
    ]


async def test_snoozing_again_supersedes_the_earlier_wake_up(
    runtime: Runtime, ws: Workspace
) -> None:
    await snooze(runtime, ws, LATER)
    await snooze(runtime, ws, LATER + timedelta(hours=1))
    assert await jobs(runtime, ws.conversation_id) == [
        (SNOOZE_WAKE, LATER, LATER, "cancelled", 0, "superseded"),
        (SNOOZE_WAKE, LATER + timedelta(hours=1), LATER + timedelta(hours=1), "scheduled", 0, None),
    ]
    # Back to the first time: that row is scheduled again, not duplicated.
    await snooze(runtime, ws, LATER)
    assert [(r[1], r[3]) for r in await jobs(runtime, ws.conversation_id)] == [
        (LATER, "scheduled"),
        (LATER + timedelta(hours=1), "cancelled"),
    ]


async def test_unsnoozing_or_resolving_cancels_the_wake_up(runtime: Runtime, ws: Workspace) -> None:
    for status in (ConversationStatus.OPEN, ConversationStatus.RESOLVED):
        await snooze(runtime, ws, LATER)
        await perform(
            runtime,
            ws.agent,
            do_change_conversation_status,
            conversation_id=ws.conversation_id,
            status=status,
        )
        assert [(r[3], r[5]) for r in await jobs(runtime, ws.conversation_id)] == [
            ("cancelled", "unsnoozed")
        ]


async def test_a_customer_message_cancels_the_wake_up(runtime: Runtime, ws: Workspace) -> None:
    await snooze(runtime, ws, LATER)
    await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "customer@acme.test"),
        name="Cora Customer",
        text="Any news?",
    )
    assert (await conversation(runtime, ws.conversation_id)).status == "open"
    assert [(r[3], r[5]) for r in await jobs(runtime, ws.conversation_id)] == [
        ("cancelled", "unsnoozed")
    ]


async def test_merging_a_snoozed_conversation_away_cancels_its_wake_up(
    runtime: Runtime, ws: Workspace
) -> None:
    source = await perform(
        runtime,
        ws.agent,
        do_create_conversation,
        inbox_id=ws.inbox_id,
        contact_id=ws.contact_id,
    )
    await snooze(runtime, ws, LATER, cid=source)
    await perform(
        runtime,
        ws.agent,
        do_merge_conversations,
        conversation_id=ws.conversation_id,
        source_id=source,
    )
    assert [(r[3], r[5]) for r in await jobs(runtime, source)] == [("cancelled", "unsnoozed")]


async def test_waking_reopens_the_conversation_with_its_event(
    runtime: Runtime, ws: Workspace
) -> None:
    await snooze(runtime, ws, LATER)
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(hours=2)
    before = await last_event_id(runtime)

    woke = await perform(
        runtime,
        ws.system,
        do_wake_snoozed_conversation,
        conversation_id=ws.conversation_id,
        due_at=LATER,
    )

    assert woke is SnoozeWake.WAKE
    row = await conversation(runtime, ws.conversation_id)
    assert (row.status, row.snoozed_until, row.resolved_at) == ("open", None, None)
    assert await events_since(runtime, before) == [
        (
            "conversation.status_changed",
            {
                "workspace_id": ws.id,
                "conversation_id": ws.conversation_id,
                "inbox_id": ws.inbox_id,
                "old_status": "snoozed",
                "status": "open",
                "snoozed_until": None,
                "reason": "snooze_expired",
            },
        )
    ]


async def test_waking_early_or_for_an_old_snooze_changes_nothing(
    runtime: Runtime, ws: Workspace
) -> None:
    await snooze(runtime, ws, LATER)
    before = await last_event_id(runtime)

    async def wake() -> SnoozeWake:
        return await perform(
            runtime,
            ws.system,
            do_wake_snoozed_conversation,
            conversation_id=ws.conversation_id,
            due_at=LATER,
        )

    assert await wake() is SnoozeWake.EARLY
    await snooze(runtime, ws, LATER + timedelta(hours=1))
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(hours=2)
    assert await wake() is SnoozeWake.STALE
    assert (await conversation(runtime, ws.conversation_id)).status == "snoozed"
    assert [e[0] for e in await events_since(runtime, before)] == [
        "conversation.status_changed"  # the second snooze only
    ]
