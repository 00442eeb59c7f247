"""Merging one conversation into another (FEATURES.md F3): a customer who
wrote twice about the same thing gets one thread.

The source's messages are appended to the target in their original order
with new seqs after the target's last one, so seq stays contiguous and
unique per conversation (PROTOCOLS.md P1). Both rows are locked first,
as message appends lock them (server.actions.messages), so no message
lands in either conversation half-way through. The messages keep their
created_at, sender and attachments. The target gains the source's
labels (and reopens if it was resolved while the source was not); the
source is resolved and points at the target (`merged_into_id`); read
positions follow `read_after_merge`.

Both conversations must be the same contact's and in the same inbox: a
message carries its inbox (the channel it came by, the key that dedupes
inbound mail, the route of its delivery), so moving it to another inbox
would make it claim a channel it never used. There is no undo; the audit
log records the merge. Two conversations opened for different contacts
(before a contact merge made them one) give a target opened for neither
(`origin_contact_id` NULL): no widget session follows it any more, as
each would read the other contact's messages (PROTOCOLS.md P3).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import sqlalchemy as sa

from server.actions.audit import record_audit
from server.actions.context import ActionContext
from server.actions.conversations import state_of, status_changed
from server.actions.snooze_jobs import set_snooze_wake
from server.domain.conversations import status_change
from server.domain.errors import InvalidInput, NotFound
from server.domain.events import (
    ConversationLabelsChanged,
    ConversationMerged,
    ConversationStatusChanged,
)
from server.domain.merges import read_after_merge
from server.domain.values import ConversationStatus
from server.queries.access import access_conversation
from server.queries.records import Conversation
from server.storage import tables as t


@dataclasses.dataclass(frozen=True)
class ConversationMerge:
    conversation_id: int
    source_id: int
    moved_messages: int
    last_seq: int


async def _lock_both(
    ctx: ActionContext, target_id: int, source_id: int
) -> tuple[Conversation, Conversation]:
    """Both conversations, locked in id order (two merges of one pair in
    opposite directions can't deadlock); either one the caller can't see
    is not found."""
    rows: dict[int, Conversation] = {}
    for conversation_id in sorted((target_id, source_id)):
        try:
            rows[conversation_id] = await access_conversation(
                ctx.conn, ctx.actor, conversation_id, for_update=True
            )
        except NotFound:
            if conversation_id == source_id:
                raise NotFound("source_id: conversation not found", field="source_id") from None
            raise
    return rows[target_id], rows[source_id]


def _check(target: Conversation, source: Conversation) -> None:
    if target.merged_into_id is not None:
        raise InvalidInput(
            f"conversation_id: this conversation was merged into {target.merged_into_id}",
            field="conversation_id",
        )
    if source.merged_into_id is not None:
        raise InvalidInput(
            f"source_id: this conversation was already merged into {source.merged_into_id}",
            field="source_id",
        )
    if source.contact_id != target.contact_id:
        raise InvalidInput(
            "source_id: only conversations of the same contact can be merged", field="source_id"
        )
    if source.inbox_id != target.inbox_id:
        raise InvalidInput(
            "source_id: only conversations of the same inbox can be merged", field="source_id"
        )


async def do_merge_conversations(
    ctx: ActionContext, *, conversation_id: int, source_id: int
) -> ConversationMerge:
    """Move every message of `source_id` into `conversation_id` (the target)."""
    if source_id == conversation_id:
        raise InvalidInput(
            "source_id: a conversation can't be merged into itself", field="source_id"
        )
    target, source = await _lock_both(ctx, conversation_id, source_id)
    _check(target, source)
    m = t.messages.c
    messages = [
        _MovedMessage(row.id, row.idempotency_key)
        for row in await ctx.conn.execute(
            sa.select(m.id, m.idempotency_key).where(m.conversation_id == source.id).order_by(m.seq)
        )
    ]
    new_last = target.last_seq + len(messages)
    await _append_messages(ctx, target, messages)
    reopened = await _update_target(ctx, target, source, new_last)
    await _merge_reads(ctx, target, source, new_last)
    added = await _union_labels(ctx, target, source)
    retired = await _retire_source(ctx, target, source)
    await record_audit(
        ctx,
        "conversation.merged",
        "conversation",
        target.id,
        {"source_id": source.id, "moved_messages": len(messages), "last_seq": new_last},
    )
    # The state changes first, then the merge itself: a client that reloads
    # the target on `conversation.merged` already knows its new status.
    for change in (retired, reopened, added):
        if change is not None:
            await ctx.emit(change)
    await ctx.emit(
        ConversationMerged(
            workspace_id=target.workspace_id,
            conversation_id=target.id,
            inbox_id=target.inbox_id,
            source_id=source.id,
            moved_messages=len(messages),
            last_seq=new_last,
        )
    )
    return ConversationMerge(target.id, source.id, len(messages), new_last)


@dataclasses.dataclass(frozen=True)
class _MovedMessage:
    """A message of the source, moving into the target."""

    id: int
    idempotency_key: str | None


async def _append_messages(
    ctx: ActionContext, target: Conversation, messages: Sequence[_MovedMessage]
) -> None:
    """Renumber the source's messages (already in seq order) after the
    target's last seq. Seqs above `last_seq` are free in the target, so
    no row ever collides on (conversation_id, seq) on the way. An
    idempotency key the target already uses is dropped from the moved
    message: it only guards the retry of a send, long over by now."""
    if not messages:
        return
    m = t.messages.c
    keys = [r.idempotency_key for r in messages if r.idempotency_key is not None]
    taken: set[str] = set()
    if keys:
        taken = set(
            (
                await ctx.conn.execute(
                    sa.select(m.idempotency_key).where(
                        m.conversation_id == target.id, m.idempotency_key.in_(keys)
                    )
                )
            ).scalars()
        )
    await ctx.conn.execute(
        t.messages.update()
        .where(m.id == sa.bindparam("message_id"))
        .values(
            conversation_id=target.id,
            seq=sa.bindparam("new_seq"),
            idempotency_key=sa.bindparam("new_key"),
        ),
        [
            {
                "message_id": r.id,
                "new_seq": target.last_seq + i,
                "new_key": None if r.idempotency_key in taken else r.idempotency_key,
            }
            for i, r in enumerate(messages, start=1)
        ],
    )


async def _update_target(
    ctx: ActionContext, target: Conversation, source: Conversation, new_last: int
) -> ConversationStatusChanged | None:
    """The target's seq, activity and read marks after the append. A
    resolved target is reopened when the source was not resolved: merging
    a customer's new question into its old, closed thread must not bury
    it. Returns that status change's event, if any."""
    values: dict[str, object] = {
        "last_seq": new_last,
        "origin_contact_id": (
            target.origin_contact_id
            if source.origin_contact_id == target.origin_contact_id
            else None
        ),
        "last_activity_at": max(target.last_activity_at, source.last_activity_at),
        "agent_last_read_seq": read_after_merge(
            target.agent_last_read_seq,
            target.last_seq,
            source.agent_last_read_seq,
            source.last_seq,
            new_last,
        ),
        "contact_last_read_seq": read_after_merge(
            target.contact_last_read_seq,
            target.last_seq,
            source.contact_last_read_seq,
            source.last_seq,
            new_last,
        ),
    }
    reopened: ConversationStatusChanged | None = None
    resolved = ConversationStatus.RESOLVED.value
    if target.status == resolved and source.status != resolved:
        reopening = status_change(
            state_of(target), ConversationStatus.OPEN, snoozed_until=None, now=ctx.now
        )
        assert reopening is not None  # a resolved conversation always changes on reopening
        values |= reopening.columns()
        values["waiting_since"] = source.waiting_since
        reopened = status_changed(target, reopening.status, reopening.snoozed_until)
    elif target.status != resolved and source.waiting_since is not None:
        # The customer has been waiting since the earlier of the two.
        waiting = [w for w in (target.waiting_since, source.waiting_since) if w is not None]
        values["waiting_since"] = min(waiting)
    await ctx.conn.execute(
        t.conversations.update().where(t.conversations.c.id == target.id).values(**values)
    )
    return reopened


async def _merge_reads(
    ctx: ActionContext, target: Conversation, source: Conversation, new_last: int
) -> None:
    """Each agent's read position: in the target per `read_after_merge`;
    in the source, everything (nothing is left there to read, so it must
    not count as unread)."""
    r = t.conversation_reads.c
    rows = await ctx.conn.execute(
        sa.select(r.conversation_id, r.agent_id, r.last_read_seq).where(
            r.conversation_id.in_([target.id, source.id])
        )
    )
    positions: dict[int, dict[int, int]] = {target.id: {}, source.id: {}}
    for row in rows:
        positions[row.conversation_id][row.agent_id] = row.last_read_seq
    for agent_id, seq in positions[target.id].items():
        after = read_after_merge(
            seq, target.last_seq, positions[source.id].get(agent_id, 0), source.last_seq, new_last
        )
        if after != seq:
            await ctx.conn.execute(
                t.conversation_reads.update()
                .where(r.conversation_id == target.id, r.agent_id == agent_id)
                .values(last_read_seq=after)
            )
    await ctx.conn.execute(
        t.conversation_reads.update()
        .where(r.conversation_id == source.id)
        .values(last_read_seq=source.last_seq)
    )


async def _union_labels(
    ctx: ActionContext, target: Conversation, source: Conversation
) -> ConversationLabelsChanged | None:
    """Give the target the source's labels it lacks; the event to emit, if
    any were added."""
    lab = t.conversation_labels.c
    rows = await ctx.conn.execute(
        sa.select(lab.conversation_id, lab.label).where(
            lab.conversation_id.in_([target.id, source.id])
        )
    )
    labels: dict[int, set[str]] = {target.id: set(), source.id: set()}
    for row in rows:
        labels[row.conversation_id].add(row.label)
    added = sorted(labels[source.id] - labels[target.id])
    if not added:
        return None
    await ctx.conn.execute(
        t.conversation_labels.insert(),
        [
            {"conversation_id": target.id, "label": label, "workspace_id": target.workspace_id}
            for label in added
        ],
    )
    return ConversationLabelsChanged(
        workspace_id=target.workspace_id,
        conversation_id=target.id,
        inbox_id=target.inbox_id,
        labels=sorted(labels[target.id] | labels[source.id]),
        added=added,
        removed=[],
    )


async def _retire_source(
    ctx: ActionContext, target: Conversation, source: Conversation
) -> ConversationStatusChanged | None:
    """Resolve the emptied source and point it at the target; nothing is
    left in it to read or to wait for. Returns the status change's event
    unless it was resolved already."""
    change = status_change(
        state_of(source), ConversationStatus.RESOLVED, snoozed_until=None, now=ctx.now
    )
    await ctx.conn.execute(
        t.conversations.update()
        .where(t.conversations.c.id == source.id)
        .values(
            **(change.columns() if change is not None else {}),
            merged_into_id=target.id,
            agent_last_read_seq=source.last_seq,
            contact_last_read_seq=source.last_seq,
        )
    )
    if change is None:
        return None
    await set_snooze_wake(
        ctx, workspace_id=source.workspace_id, conversation_id=source.id, until=None
    )
    return status_changed(source, change.status, change.snoozed_until)
