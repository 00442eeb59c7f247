"""The touches of a claim batch that open a conversation of their own,
written together.

Most touches are a first step: the claim (server.actions.touch_claims)
decides them one by one in memory — guards, variant, rendering — and
hands them here, where their conversations, messages, ledger rows,
outbox rows and decision states each go in one statement for the whole
batch instead of ten statements per touch. The rows and events are the
ones `open_conversation`, `append_message` and `enqueue_touch_email`
write for one: a conversation whose first message (seq 1) is the touch,
`conversation.created`, `message.created`, then `decision.sending` (an
email, its outbox row written with it) or `decision.sent` (a widget
message is the send itself).

A touch continuing an existing conversation (a chase in its thread)
locks that conversation and takes its next seq: the claim writes those
one by one, as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from server.actions.action_context import ActionContext
from server.actions.conversations import conversation_created, new_conversation_row
from server.actions.messages import message_created, message_row
from server.actions.outbound_email import touch_outbox_row
from server.actions.touch_episodes import decision_facts
from server.domain.events import DecisionSending, DecisionSent
from server.domain.touchpoints import Channel, DecisionState
from server.domain.values import ConversationStatus, DeliveryStatus, Direction, SenderKind
from server.queries.records import Decision
from server.storage import tables as t
from server.storage.updates import update_by_id


@dataclasses.dataclass(frozen=True)
class FreshSend:
    """A touch decided and rendered, to be written in a new conversation."""

    decision: Decision
    inbox_id: int
    status: ConversationStatus  # the new conversation's
    subject: str | None  # the new conversation's
    text: str
    html: str | None
    email: dict[str, Any] | None  # the stored headers of an email
    decision_values: Mapping[str, Any]  # variant, rendered, attempts, reason


# What tells a batch's new conversations apart.
_CONVERSATION_KEY = ("contact_id", "inbox_id", "subject", "status")


@dataclasses.dataclass(frozen=True)
class _Opened:
    """The ids a message row copies from its new conversation."""

    id: int
    workspace_id: int
    contact_id: int
    inbox_id: int


async def write_fresh_sends(ctx: ActionContext, sends: Sequence[FreshSend]) -> dict[int, int]:
    """Write `sends` and emit their events; returns each episode's new
    conversation id (the episode's later steps continue it)."""
    if not sends:
        return {}
    now = ctx.now
    conversations = []
    for send in sends:
        row = new_conversation_row(
            workspace_id=send.decision.workspace_id,
            inbox_id=send.inbox_id,
            contact_id=send.decision.contact_id,
            subject=send.subject,
            status=send.status,
            origin_contact_id=None,
            now=now,
        )
        row["last_seq"] = 1  # the touch is its first message
        row["resolved_at"] = now if send.status is ConversationStatus.RESOLVED else None
        conversations.append(row)
    conversation_ids = await _insert(ctx, t.conversations, conversations, _CONVERSATION_KEY)

    messages = [
        message_row(
            _Opened(
                conversation_id, send.decision.workspace_id, send.decision.contact_id, send.inbox_id
            ),
            seq=1,
            direction=Direction.OUTBOUND,
            sender_kind=SenderKind.SYSTEM,
            sender_id=None,
            private=False,
            text=send.text,
            html=send.html,
            delivery_status=DeliveryStatus.PENDING if _is_email(send) else DeliveryStatus.SENT,
            now=now,
            idempotency_key=send.decision.idempotency_key,
            email=send.email,
        )
        for send, conversation_id in zip(sends, conversation_ids, strict=True)
    ]
    message_ids = await _insert(ctx, t.messages, messages, ("idempotency_key",))

    emails = [
        (send, message_id)
        for send, message_id in zip(sends, message_ids, strict=True)
        if _is_email(send)
    ]
    outbox_ids = await _insert(
        ctx,
        t.outbox,
        [
            touch_outbox_row(
                message_id=message_id,
                workspace_id=send.decision.workspace_id,
                inbox_id=send.inbox_id,
                decision_id=send.decision.id,
                now=now,
            )
            for send, message_id in emails
        ],
        ("stable_id",),
    )
    outbox_of = {
        send.decision.id: outbox_id for (send, _), outbox_id in zip(emails, outbox_ids, strict=True)
    }

    await ctx.conn.execute(
        t.touch_ledger.insert(),
        [
            {
                "workspace_id": send.decision.workspace_id,
                "contact_id": send.decision.contact_id,
                "decision_id": send.decision.id,
                "channel": send.decision.channel,
                "kind": send.decision.kind,
                "at": now,
            }
            for send in sends
        ],
    )
    ep = t.episodes.c
    await ctx.conn.execute(
        t.episodes.update()
        .where(ep.id == sa.bindparam("episode"), ep.conversation_id.is_(None))
        .values(conversation_id=sa.bindparam("conversation")),
        [
            {"episode": send.decision.episode_id, "conversation": conversation_id}
            for send, conversation_id in zip(sends, conversation_ids, strict=True)
        ],
    )

    changes: list[tuple[int, Mapping[str, Any]]] = []
    for send, message_id in zip(sends, message_ids, strict=True):
        values = {**send.decision_values, "message_id": message_id}
        if _is_email(send):
            values |= {
                "state": DecisionState.SENDING.value,
                "outbox_id": outbox_of[send.decision.id],
            }
        else:
            values |= {
                "state": DecisionState.SENT.value,
                "channel_message_id": str(message_id),
                "settled_at": now,
            }
        changes.append((send.decision.id, values))
    await update_by_id(ctx.conn, t.decisions, changes)

    for send, conversation, conversation_id, message, message_id in zip(
        sends, conversations, conversation_ids, messages, message_ids, strict=True
    ):
        await ctx.emit(conversation_created(conversation, conversation_id))
        await ctx.emit(message_created(message, message_id))
        facts = decision_facts(send.decision) | {"reason": None}
        if _is_email(send):
            await ctx.emit(DecisionSending(**facts))
        else:
            await ctx.emit(DecisionSent(**facts, channel_message_id=str(message_id)))
    return {
        send.decision.episode_id: conversation_id
        for send, conversation_id in zip(sends, conversation_ids, strict=True)
    }


def _is_email(send: FreshSend) -> bool:
    return send.decision.channel == Channel.EMAIL.value


async def _insert(
    ctx: ActionContext, table: sa.Table, rows: list[dict[str, Any]], key: tuple[str, ...]
) -> list[int]:
    """Insert `rows` in one statement; their ids, in the rows' order.

    RETURNING gives rows in no promised order, and asking SQLAlchemy to
    sort them makes it insert one row per statement on SQLite; so each
    new id is matched to its row by `key`, columns that tell the rows
    apart. Rows alike in `key` are alike in every column written (a
    contact's two identical conversations), so which id goes to which
    does not matter."""
    if not rows:
        return []
    columns = [table.c[name] for name in key]
    result = await ctx.conn.execute(table.insert().returning(table.c.id, *columns), rows)
    ids: dict[tuple[Any, ...], list[int]] = {}
    for row in result:
        ids.setdefault(tuple(row[1:]), []).append(row[0])
    return [ids[tuple(values[name] for name in key)].pop() for values in rows]
