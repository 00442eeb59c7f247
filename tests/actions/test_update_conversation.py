"""do_update_conversation: several changes in one transaction, all or none,
one event per part; and do_record_token_use's bookkeeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from server.actions.context import perform
from server.actions.conversations import do_update_conversation
from server.actions.teams import do_create_team
from server.actions.tokens import do_create_api_token, do_record_token_use
from server.clock import FrozenClock
from server.domain.errors import InvalidInput
from server.domain.values import ConversationStatus, Priority
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, events_since, last_event_id


async def conversation_row(runtime: Runtime, conversation_id: int) -> sa.Row[tuple[object, ...]]:
    async with runtime.db.read() as conn:
        row = (
            await conn.execute(
                sa.select(t.conversations).where(t.conversations.c.id == conversation_id)
            )
        ).one()
        return row


async def labels(runtime: Runtime, conversation_id: int) -> list[str]:
    async with runtime.db.read() as conn:
        rows = await conn.execute(
            sa.select(t.conversation_labels.c.label)
            .where(t.conversation_labels.c.conversation_id == conversation_id)
            .order_by(t.conversation_labels.c.label)
        )
        return list(rows.scalars())


async def test_every_part_applies_with_one_event_each(runtime: Runtime, ws: Workspace) -> None:
    team_id = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    until = T0 + timedelta(hours=3)
    before = await last_event_id(runtime)
    await perform(
        runtime,
        ws.admin,
        do_update_conversation,
        conversation_id=ws.conversation_id,
        status=ConversationStatus.SNOOZED,
        snoozed_until=until,
        priority=Priority.URGENT,
        add_labels=["VIP", "refund"],
        assignee_id=ws.agent_id,
        team_id=team_id,
    )
    row = await conversation_row(runtime, ws.conversation_id)
    assert (row.status, row.snoozed_until, row.priority) == ("snoozed", until, "urgent")
    assert (row.assignee_id, row.team_id) == (ws.agent_id, team_id)
    assert await labels(runtime, ws.conversation_id) == ["refund", "vip"]
    common = {"workspace_id": ws.id, "conversation_id": ws.conversation_id, "inbox_id": ws.inbox_id}
    assert await events_since(runtime, before) == [
        (
            "conversation.status_changed",
            {
                **common,
                "old_status": "open",
                "status": "snoozed",
                "snoozed_until": until.isoformat(),
                "reason": None,
            },
        ),
        ("conversation.priority_changed", {**common, "priority": "urgent"}),
        (
            "conversation.labels_changed",
            {**common, "labels": ["refund", "vip"], "added": ["refund", "vip"], "removed": []},
        ),
        ("conversation.assigned", {**common, "assignee_id": ws.agent_id, "team_id": team_id}),
    ]


async def test_a_failing_part_leaves_everything_as_it_was(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    original = await conversation_row(runtime, ws.conversation_id)
    with pytest.raises(InvalidInput) as failure:
        await perform(
            runtime,
            ws.admin,
            do_update_conversation,
            conversation_id=ws.conversation_id,
            status=ConversationStatus.RESOLVED,
            priority=Priority.HIGH,
            add_labels=["ok"],
            team_id=999_999,  # no such team: the last part fails
        )
    assert failure.value.field == "team_id"
    assert await conversation_row(runtime, ws.conversation_id) == original
    assert await labels(runtime, ws.conversation_id) == []
    assert await events_since(runtime, before) == []


async def test_record_token_use_stamps_without_an_event(runtime: Runtime, ws: Workspace) -> None:
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    token = await perform(runtime, ws.agent, do_create_api_token, name="cron")
    before = await last_event_id(runtime)
    clock.advance(minutes=5)
    await perform(runtime, ws.agent, do_record_token_use, token_id=token.token_id)
    async with runtime.db.read() as conn:
        stamped = await conn.scalar(
            sa.select(t.api_tokens.c.last_used_at).where(t.api_tokens.c.id == token.token_id)
        )
    assert stamped == T0 + timedelta(minutes=5)
    assert await events_since(runtime, before) == []
