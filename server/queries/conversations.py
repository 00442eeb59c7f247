"""Reading conversations and their messages, permission-checked."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.queries.access import AnyRow, access_conversation, visible_inbox_ids
from server.queries.api_shapes import conversation_view, message_view
from server.queries.conversation_extras import extras_of
from server.queries.conversation_filters import conversation_filters, conversation_scope
from server.queries.pagination import DEFAULT_LIMIT, decode_time_id_cursor, page
from server.queries.records import Conversation, load
from server.storage import tables as t


async def labels_of(conn: AsyncConnection, ids: list[int]) -> dict[int, list[str]]:
    out: defaultdict[int, list[str]] = defaultdict(list)
    if ids:
        rows = await conn.execute(
            sa.select(t.conversation_labels.c.conversation_id, t.conversation_labels.c.label)
            .where(t.conversation_labels.c.conversation_id.in_(ids))
            .order_by(t.conversation_labels.c.label)
        )
        for conversation_id, label in rows:
            out[conversation_id].append(label)
    return out


async def conversation_views(
    conn: AsyncConnection, actor: Actor, rows: Sequence[AnyRow]
) -> list[dict[str, Any]]:
    """A page of conversations as the API shows them. `rows` are
    conversations rows plus `my_read_seq`, the asking agent's read position
    (an outer join of conversation_reads; NULL when it read nothing yet).
    Labels and extras take one query each for the whole page; a
    conversation deleted between those reads is left out."""
    ids = [r.id for r in rows]
    labels = await labels_of(conn, ids)
    extras = await extras_of(conn, ids)
    is_agent = actor.agent_id is not None
    return [
        conversation_view(
            load(Conversation, row),
            labels[row.id],
            (row.my_read_seq or 0) if is_agent else None,
            extras=extras[row.id],
        )
        for row in rows
        if row.id in extras
    ]


async def conversation_detail(
    conn: AsyncConnection, actor: Actor, conversation_id: int
) -> dict[str, Any]:
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
) -> dict[str, Any]:
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
    items = await conversation_views(conn, actor, rows)
    return page(items, limit, lambda item: (item["last_activity_at"], item["id"]))


async def list_messages(
    conn: AsyncConnection,
    actor: Actor,
    conversation_id: int,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
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
    return {"items": [message_view(r) for r in rows], "has_more": has_more}


async def message_detail(
    conn: AsyncConnection, actor: Actor, conversation_id: int, message_id: int
) -> dict[str, Any]:
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
    return message_view(row)
