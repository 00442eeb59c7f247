"""Reading contact merges: the preview an agent sees before merging, and a
merge as the API answers it (server.actions.contact_merges writes them).

Like contacts themselves, merges are visible to every agent of the
workspace. A preview is refused exactly as the merge would be, also to an
agent who can't read every conversation of both contacts
(`require_merge_reach`); so whoever gets one sees all it lists.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.domain.json_types import JsonObject, JsonValue
from server.domain.merges import (
    MergeRecord,
    check_contact_merge,
    merge_attributes,
    moved_counts,
    undo_until,
)
from server.queries.access import access_contact, require_merge_reach, visible_inbox_ids
from server.queries.api_shapes import iso
from server.queries.contacts import contact_view, identities_of, identity_view
from server.queries.records import ContactMerge, load, load_or_none
from server.storage import tables as t


async def _count(conn: AsyncConnection, table: sa.Table, contact_id: int) -> int:
    return int(
        await conn.scalar(
            sa.select(sa.func.count()).select_from(table).where(table.c.contact_id == contact_id)
        )
        or 0
    )


async def _contact(conn: AsyncConnection, actor: Actor, contact_id: int) -> dict[str, JsonValue]:
    row = await access_contact(conn, actor, contact_id)
    return contact_view(row, (await identities_of(conn, [row.id]))[row.id])


async def merge_preview(
    conn: AsyncConnection, actor: Actor, contact_id: int, other_id: int
) -> dict[str, JsonValue]:
    """What merging `other_id` into `contact_id` would do, refused exactly
    as the merge itself would be."""
    survivor = await access_contact(conn, actor, contact_id)
    try:
        other = await access_contact(conn, actor, other_id)
    except NotFound:
        raise NotFound("other_id: contact not found", field="other_id") from None
    check_contact_merge(survivor.id, survivor.merged_into_id, other.id, other.merged_into_id)
    await require_merge_reach(conn, actor, ("contact_id", survivor.id), ("other_id", other.id))
    identities = await identities_of(conn, [survivor.id, other.id])
    attributes = merge_attributes(survivor.attributes, other.attributes)
    conversations, hidden = await _conversations(conn, actor, other.id)
    return {
        "survivor": contact_view(survivor, identities[survivor.id]),
        "merged": contact_view(other, identities[other.id]),
        "conversations": conversations,
        "hidden_conversations": hidden,
        "identities": [identity_view(i) for i in identities[other.id]],
        "attributes_added": sorted(attributes.added),
        "attributes_conflicting": attributes.conflicting,
        "tracked_events": await _count(conn, t.contact_events, other.id),
        "visitor_sessions": await _count(conn, t.visitor_sessions, other.id),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class _MovingConversation:
    """A conversation a merge would move, and the inbox it is in."""

    id: int
    subject: str | None
    status: str
    inbox_id: int
    inbox_name: str


async def _conversations(
    conn: AsyncConnection, actor: Actor, contact_id: int
) -> tuple[list[dict[str, JsonValue]], int]:
    """The contact's conversations in inboxes the caller can see (newest
    activity first), and how many others it has."""
    c, inbox = t.conversations.c, t.inboxes.c
    stmt: sa.Select[Any] = (
        sa.select(c.id, c.subject, c.status, c.inbox_id, inbox.name.label("inbox_name"))
        .join(t.inboxes, inbox.id == c.inbox_id)
        .where(c.contact_id == contact_id)
        .order_by(c.last_activity_at.desc(), c.id.desc())
    )
    rows = [load(_MovingConversation, r) for r in await conn.execute(stmt)]
    visible = await visible_inbox_ids(conn, actor)
    shown = [r for r in rows if visible is None or r.inbox_id in visible]
    items: list[dict[str, JsonValue]] = [
        {
            "id": r.id,
            "subject": r.subject,
            "status": r.status,
            "inbox_id": r.inbox_id,
            "inbox_name": r.inbox_name,
        }
        for r in shown
    ]
    return items, len(rows) - len(shown)


def _merge_view(
    row: ContactMerge, survivor: JsonObject, merged: JsonObject
) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "survivor": survivor,
        "merged": merged,
        "merged_by": row.merged_by,
        "created_at": iso(row.created_at),
        "undo_until": iso(undo_until(row.created_at)),
        "undone_at": iso(row.undone_at),
        "moved": moved_counts(MergeRecord.from_json(row.moved).rows()),
    }


async def contact_merge_detail(
    conn: AsyncConnection, actor: Actor, merge_id: int
) -> dict[str, JsonValue]:
    """A merge with both contacts as they are now, and what it moved."""
    m = t.contact_merges.c
    row = load_or_none(
        ContactMerge,
        (
            await conn.execute(
                sa.select(t.contact_merges).where(
                    m.id == merge_id, m.workspace_id == actor.workspace_id
                )
            )
        ).first(),
    )
    if row is None:
        raise NotFound("contact merge not found")
    survivor = await _contact(conn, actor, row.survivor_id)
    merged = await _contact(conn, actor, row.merged_id)
    return _merge_view(row, survivor, merged)
