"""Reading conversations and their messages, permission-checked."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.domain.json_types import JsonValue
from server.queries.access import access_conversation, visible_inbox_ids
from server.queries.api_shapes import conversation_view, message_view
from server.queries.conversation_extras import ConversationExtras, extras_of
from server.queries.conversation_filters import conversation_filters, conversation_scope
from server.queries.pagination import DEFAULT_LIMIT, decode_time_id_cursor, page
from server.queries.records import Conversation, Message, load
from server.storage import tables as t


@dataclasses.dataclass(frozen=True, slots=True)
class ListedConversation:
    """A conversation as a list shows it: its row, and how far the asking
    agent has read it (an outer join of conversation_reads; None when it
    read nothing yet)."""

    conversation: Conversation
    my_read_seq: int | None

    @classmethod
    def load(cls, row: sa.Row[Any]) -> ListedConversation:
        """From a row of conversations columns plus `my_read_seq`."""
        return cls(load(Conversation, row), row.my_read_seq)


async def labels_of(conn: AsyncConnection, ids: list[int]) -> dict[int, list[str]]:
    out: defaultdict[int, list[str]] = defaultdict(list)
    if ids:
        cl = t.conversation_labels.c
        rows = await conn.execute(
            sa.select(cl.conversation_id, cl.label)
            .where(cl.conversation_id.in_(ids))
            .order_by(cl.label)
        )
        for row in rows:
            conversation_id: int = row.conversation_id
            label: str = row.label
            out[conversation_id].append(label)
    return out


async def conversation_views(
    conn: AsyncConnection, actor: Actor, listed: Sequence[ListedConversation]
) -> list[dict[str, JsonValue]]:
    """A page of conversations as the API shows them. Labels and extras
    take one query each for the whole page; a conversation deleted between
    those reads is left out."""
    return [
        view for view, _ in (await conversation_views_with_extras(conn, actor, listed)).values()
    ]


async def conversation_views_with_extras(
    conn: AsyncConnection, actor: Actor, listed: Sequence[ListedConversation]
) -> dict[int, tuple[dict[str, JsonValue], ConversationExtras]]:
    """`conversation_views` by conversation id (in `listed` order), each
    with the extras it shows."""
    ids = [item.conversation.id for item in listed]
    labels = await labels_of(conn, ids)
    extras = await extras_of(conn, ids)
    is_agent = actor.agent_id is not None
    return {
        item.conversation.id: (
            conversation_view(
                item.conversation,
                labels[item.conversation.id],
                (item.my_read_seq or 0) if is_agent else None,
                extras=extras[item.conversation.id],
            ),
            extras[item.conversation.id],
        )
        for item in listed
        if item.conversation.id in extras
    }


async def conversation_detail(
    conn: AsyncConnection, actor: Actor, conversation_id: int
) -> dict[str, JsonValue]:
    row = await access_conversation(conn, actor, conversation_id)
    labels = (await labels_of(conn, [row.id]))[row.id]
    extras = (await extras_of(conn, [row.id])).get(row.id)
    if extras is None:  # deleted since the access check
        raise NotFound("conversation not found")
    return conversation_view(row, labels, await _read_seq(conn, actor, row.id), extras=extras)


async def _read_seq(conn: AsyncConnection, actor: Actor, conversation_id: int) -> int | None:
    """How far the asking agent has read the conversation (0: nothing yet);
    None for callers that are no agent."""
    if actor.agent_id is None:
        return None
    r = t.conversation_reads.c
    seq: int | None = await conn.scalar(
        sa.select(r.last_read_seq).where(
            r.conversation_id == conversation_id, r.agent_id == actor.agent_id
        )
    )
    return seq or 0


async def list_conversations(
    conn: AsyncConnection,
    actor: Actor,
    *,
    status: list[str] | None = None,
    inbox_id: int | None = None,
    team_id: int | None = None,
    assignee_id: int | None = None,
    contact_id: int | None = None,
    label: str | None = None,
    unassigned: bool = False,
    mine: bool = False,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, JsonValue]:
    """Newest activity first. Filters combine with AND."""
    c = t.conversations.c
    visible = await visible_inbox_ids(conn, actor)
    r = t.conversation_reads.c
    stmt = (
        sa.select(t.conversations, r.last_read_seq.label("my_read_seq"))
        .outerjoin(
            t.conversation_reads,
            sa.and_(r.conversation_id == c.id, r.agent_id == actor.agent_id),
        )
        .where(*conversation_scope(actor, visible))
        # Built where the sidebar's saved-filter counts build theirs.
        .where(
            *conversation_filters(
                actor,
                status=status,
                inbox_id=inbox_id,
                team_id=team_id,
                assignee_id=assignee_id,
                contact_id=contact_id,
                label=label,
                unassigned=unassigned,
                mine=mine,
            )
        )
    )
    if cursor is not None:
        at, last_id = decode_time_id_cursor(cursor)
        stmt = stmt.where(
            sa.or_(c.last_activity_at < at, sa.and_(c.last_activity_at == at, c.id < last_id))
        )
    stmt = stmt.order_by(c.last_activity_at.desc(), c.id.desc()).limit(limit + 1)
    rows = (await conn.execute(stmt)).all()
    items = await conversation_views(conn, actor, [ListedConversation.load(r) for r in rows])
    return page(items, limit, lambda item: (item["last_activity_at"], item["id"]))


async def list_messages(
    conn: AsyncConnection,
    actor: Actor,
    conversation_id: int,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, JsonValue]:
    """Messages in seq order. `after_seq` pages forward (and is how a
    client catches up); `before_seq` pages back; neither gives the newest
    `limit`. Private notes are included: every caller here is an agent."""
    await access_conversation(conn, actor, conversation_id)
    m = t.messages.c
    stmt = sa.select(t.messages).where(m.conversation_id == conversation_id)
    if after_seq is not None:
        rows = (
            await conn.execute(stmt.where(m.seq > after_seq).order_by(m.seq).limit(limit + 1))
        ).all()
        has_more = len(rows) > limit
        rows = rows[:limit]
    else:
        if before_seq is not None:
            stmt = stmt.where(m.seq < before_seq)
        rows = list(
            reversed((await conn.execute(stmt.order_by(m.seq.desc()).limit(limit + 1))).all())
        )
        has_more = len(rows) > limit
        rows = rows[1:] if has_more else rows
    return {"items": [message_view(load(Message, r)) for r in rows], "has_more": has_more}


async def message_detail(
    conn: AsyncConnection, actor: Actor, conversation_id: int, message_id: int
) -> dict[str, JsonValue]:
    await access_conversation(conn, actor, conversation_id)
    row = (
        await conn.execute(
            sa.select(t.messages).where(
                t.messages.c.id == message_id, t.messages.c.conversation_id == conversation_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("message not found")
    return message_view(load(Message, row))
