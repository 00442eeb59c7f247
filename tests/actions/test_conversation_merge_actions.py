"""Conversation merges (F3): the source's messages are appended to the
target with contiguous new seqs, in order, keeping their time and files;
labels, read positions and status follow; rows, audit entry and events
are written together; refusals write nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.attachments import do_upload_attachment, store_file
from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.conversation_merges import do_merge_conversations
from server.actions.conversations import (
    do_change_conversation_labels,
    do_change_conversation_status,
    do_create_conversation,
)
from server.actions.messages import do_receive_message, do_send_message
from server.actions.reads import do_mark_read
from server.clock import FrozenClock
from server.domain.actors import Actor
from server.domain.errors import DomainError, InvalidInput, NotFound
from server.domain.values import ConversationStatus, IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, events_since, fetch_all, fetch_one, last_event_id


def advance(runtime: Runtime, minutes: int = 1) -> None:
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(minutes=minutes)


async def conversation(runtime: Runtime, conversation_id: int) -> sa.Row[Any]:
    c = t.conversations.c
    return await fetch_one(runtime, sa.select(t.conversations).where(c.id == conversation_id))


async def thread(runtime: Runtime, conversation_id: int) -> list[sa.Row[Any]]:
    m = t.messages.c
    return await fetch_all(
        runtime, sa.select(t.messages).where(m.conversation_id == conversation_id).order_by(m.seq)
    )


async def reads(runtime: Runtime, conversation_id: int) -> dict[int, int]:
    r = t.conversation_reads.c
    rows = await fetch_all(
        runtime,
        sa.select(r.agent_id, r.last_read_seq).where(r.conversation_id == conversation_id),
    )
    return {row.agent_id: row.last_read_seq for row in rows}


async def written(runtime: Runtime) -> tuple[int, int, list[tuple[int, int, int]]]:
    async with runtime.db.read() as conn:
        audits = await conn.scalar(sa.select(sa.func.count()).select_from(t.audit_log))
    m = t.messages.c
    placement = await fetch_all(runtime, sa.select(m.id, m.conversation_id, m.seq).order_by(m.id))
    return await last_event_id(runtime), int(audits or 0), [tuple(r) for r in placement]


async def second_conversation(runtime: Runtime, ws: Workspace, inbox_id: int | None = None) -> int:
    conversation_id: int = await perform(
        runtime,
        ws.admin,
        do_create_conversation,
        inbox_id=inbox_id or ws.inbox_id,
        contact_id=ws.contact_id,
    )
    return conversation_id


async def test_messages_are_appended_in_order_with_new_seqs(
    runtime: Runtime, ws: Workspace
) -> None:
    target_id = ws.conversation_id  # seq 1: the customer's first message
    advance(runtime)
    await perform(
        runtime,
        ws.admin,
        do_send_message,
        conversation_id=target_id,
        text="Looking into it",
        idempotency_key="k1",
    )
    await perform(
        runtime, ws.admin, do_change_conversation_labels, conversation_id=target_id, add=["order"]
    )
    advance(runtime)
    source_id = await second_conversation(runtime, ws)
    file = await store_file(runtime.blobs, b"%PDF-1.7", filename="label.pdf", declared_type=None)
    attachment = await perform(
        runtime, ws.admin, do_upload_attachment, file=file, inbox_id=ws.inbox_id
    )
    source_texts = ["Here is the shipping label", "note: VIP", "Anything else?"]
    for i, text in enumerate(source_texts):
        advance(runtime)
        await perform(
            runtime,
            ws.admin,
            do_send_message,
            conversation_id=source_id,
            text=text,
            private=i == 1,
            # The first reuses the target's key: the moved copy drops it.
            idempotency_key="k1" if i == 0 else f"s{i}",
            attachment_ids=[attachment.id] if i == 0 else [],
        )
    await perform(
        runtime,
        ws.admin,
        do_change_conversation_labels,
        conversation_id=source_id,
        add=["order", "shipping"],
    )
    # The admin has read everything in both; the agent is behind in the target.
    for conversation_id, seq in ((target_id, 2), (source_id, 3)):
        await perform(runtime, ws.admin, do_mark_read, conversation_id=conversation_id, seq=seq)
    await perform(runtime, ws.agent, do_mark_read, conversation_id=target_id, seq=1)
    await perform(runtime, ws.agent, do_mark_read, conversation_id=source_id, seq=2)
    source_before = await thread(runtime, source_id)
    advance(runtime)
    before = await last_event_id(runtime)

    merged = await perform(
        runtime, ws.agent, do_merge_conversations, conversation_id=target_id, source_id=source_id
    )

    assert (merged.moved_messages, merged.last_seq) == (3, 5)
    messages = await thread(runtime, target_id)
    assert [(m.seq, m.text) for m in messages] == [
        (1, "Hello, my order is late"),
        (2, "Looking into it"),
        *[(3 + i, text) for i, text in enumerate(source_texts)],
    ]
    for moved, original in zip(messages[2:], source_before, strict=True):
        assert moved.id == original.id
        assert moved.created_at == original.created_at
        assert moved.attachments == original.attachments
        assert moved.private == original.private
        assert moved.contact_id == ws.contact_id
    assert messages[2].attachments[0]["id"] == attachment.id
    assert [m.idempotency_key for m in messages] == [None, "k1", None, "s1", "s2"]
    assert await thread(runtime, source_id) == []

    target, source = await conversation(runtime, target_id), await conversation(runtime, source_id)
    assert (target.last_seq, target.last_activity_at) == (5, T0 + timedelta(minutes=5))
    assert (target.agent_last_read_seq, target.status) == (5, "open")
    assert (source.status, source.merged_into_id, source.resolved_at) == (
        "resolved",
        target_id,
        T0 + timedelta(minutes=6),
    )
    assert (source.last_seq, source.agent_last_read_seq, source.contact_last_read_seq) == (3, 3, 3)
    assert await reads(runtime, target_id) == {ws.admin_id: 5, ws.agent_id: 1}
    assert await reads(runtime, source_id) == {ws.admin_id: 3, ws.agent_id: 3}
    lab = t.conversation_labels.c
    labels = await fetch_all(
        runtime, sa.select(lab.label).where(lab.conversation_id == target_id).order_by(lab.label)
    )
    assert [r.label for r in labels] == ["order", "shipping"]

    [entry] = await fetch_all(runtime, sa.select(t.audit_log))
    assert (entry.action, entry.actor_id, entry.subject_kind, entry.subject_id) == (
        "conversation.merged",
        ws.agent_id,
        "conversation",
        target_id,
    )
    assert entry.details == {"source_id": source_id, "moved_messages": 3, "last_seq": 5}
    base = {"workspace_id": ws.id, "inbox_id": ws.inbox_id}
    assert await events_since(runtime, before) == [
        (
            "conversation.status_changed",
            {
                **base,
                "conversation_id": source_id,
                "old_status": "open",
                "status": "resolved",
                "snoozed_until": None,
                "reason": None,
            },
        ),
        (
            "conversation.labels_changed",
            {
                **base,
                "conversation_id": target_id,
                "labels": ["order", "shipping"],
                "added": ["shipping"],
                "removed": [],
            },
        ),
        (
            "conversation.merged",
            {
                **base,
                "conversation_id": target_id,
                "source_id": source_id,
                "moved_messages": 3,
                "last_seq": 5,
            },
        ),
    ]
    # The next message continues the contiguous seq.
    after = await perform(
        runtime, ws.agent, do_send_message, conversation_id=target_id, text="Done!"
    )
    assert after.seq == 6


async def test_a_resolved_target_reopens_for_a_waiting_source(
    runtime: Runtime, ws: Workspace
) -> None:
    target_id = ws.conversation_id
    await perform(
        runtime,
        ws.admin,
        do_change_conversation_status,
        conversation_id=target_id,
        status=ConversationStatus.RESOLVED,
    )
    advance(runtime)
    waiting = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "customer@acme.test"),
        name="Cora",
        text="It still has not arrived",
    )
    assert waiting.created_conversation
    before = await last_event_id(runtime)
    await perform(
        runtime,
        ws.agent,
        do_merge_conversations,
        conversation_id=target_id,
        source_id=waiting.conversation_id,
    )
    target = await conversation(runtime, target_id)
    assert (target.status, target.resolved_at) == ("open", None)
    assert target.waiting_since == T0 + timedelta(minutes=1)
    changes = [
        (data["conversation_id"], data["status"])
        for kind, data in await events_since(runtime, before)
        if kind == "conversation.status_changed"
    ]
    assert changes == [(waiting.conversation_id, "resolved"), (target_id, "open")]


async def test_nonsense_merges_are_refused_by_field_and_write_nothing(
    runtime: Runtime, ws: Workspace
) -> None:
    same_inbox = await second_conversation(runtime, ws)
    other_inbox = await second_conversation(runtime, ws, ws.other_inbox_id)
    someone_else = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "dave@acme.test"),
        name="Dave",
        text="hi",
    )
    already = await second_conversation(runtime, ws)
    await perform(
        runtime, ws.admin, do_merge_conversations, conversation_id=same_inbox, source_id=already
    )
    before = await written(runtime)
    target = ws.conversation_id
    cases: list[tuple[Actor, int, int, type[DomainError], str | None]] = [
        (ws.agent, target, target, InvalidInput, "source_id"),
        (ws.agent, target, someone_else.conversation_id, InvalidInput, "source_id"),
        (ws.admin, target, other_inbox, InvalidInput, "source_id"),
        (ws.agent, target, already, InvalidInput, "source_id"),
        (ws.agent, already, target, InvalidInput, "conversation_id"),
        # The agent is no member of the other inbox: not found, as elsewhere.
        (ws.agent, target, other_inbox, NotFound, "source_id"),
        (ws.agent, other_inbox, target, NotFound, None),
        (ws.agent, target, 10**9, NotFound, "source_id"),
    ]
    for actor, conversation_id, source_id, error, field in cases:
        with pytest.raises(error) as refused:
            await perform(
                runtime,
                actor,
                do_merge_conversations,
                conversation_id=conversation_id,
                source_id=source_id,
            )
        assert refused.value.field == field, (conversation_id, source_id)
    assert await written(runtime) == before


async def test_a_merge_racing_with_replies_keeps_seqs_contiguous(
    runtime: Runtime, ws: Workspace
) -> None:
    """PROTOCOLS.md P1 with a merge among concurrent writers (each in its
    own transaction): nothing fails, no message is lost, the target's
    seqs stay 1..last_seq, and replies that reach the source after the
    merge continue after its last seq."""
    source_id = await second_conversation(runtime, ws)
    n = 20

    async def send(conversation_id: int, i: int) -> None:
        await perform(
            runtime, ws.admin, do_send_message, conversation_id=conversation_id, text=f"m{i}"
        )

    async def merge() -> None:
        await perform(
            runtime,
            ws.agent,
            do_merge_conversations,
            conversation_id=ws.conversation_id,
            source_id=source_id,
        )

    writers = [send(ws.conversation_id if i % 2 else source_id, i) for i in range(2 * n)]
    await asyncio.gather(*writers[:n], merge(), *writers[n:])

    target, source = (
        await conversation(runtime, ws.conversation_id),
        await conversation(runtime, source_id),
    )
    in_target = [m.seq for m in await thread(runtime, ws.conversation_id)]
    in_source = [m.seq for m in await thread(runtime, source_id)]
    assert in_target == list(range(1, target.last_seq + 1))
    assert in_source == list(range(source.last_seq - len(in_source) + 1, source.last_seq + 1))
    assert len(in_target) + len(in_source) == 1 + 2 * n
    assert source.merged_into_id == ws.conversation_id
