"""Reading merge suggestions (F3; server.actions.contact_suggestions writes
them): the possible duplicates of one contact, as its sidebar shows them.

A suggestion is offered only to whoever may take it up: an admin, or an
agent who can read every conversation of both contacts (the merge rule,
server.queries.access.require_merge_reach); so the other contact's
`conversation_count` is all of its conversations. A suggestion is shown while it is
open and neither of its contacts has been merged into another: once a
merge folded one of them away there is nothing left to suggest, even
before the merge settles the suggestion.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.domain.json_types import JsonValue
from server.queries.access import access_contact, out_of_merge_reach
from server.queries.api_shapes import iso
from server.queries.contacts import identities_of, identity_view
from server.queries.records import ContactMergeSuggestion, load, load_or_none
from server.storage import tables as t

# Open suggestions per contact are few (each inbound mail suggests at most
# a handful); the list is not paged, and stops here.
MAX_SHOWN = 50


@dataclasses.dataclass(frozen=True, slots=True)
class OfferedSuggestion:
    """A suggestion about a contact, and the other contact it names."""

    suggestion: ContactMergeSuggestion
    other_id: int
    other_name: str


def merge_suggestion_view(row: ContactMergeSuggestion) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "contact_id": row.contact_id,
        "candidate_id": row.candidate_id,
        "reason": row.reason,
        "status": row.status,
        "created_at": iso(row.created_at),
    }


async def merge_suggestion_detail(
    conn: AsyncConnection, actor: Actor, suggestion_id: int
) -> dict[str, JsonValue]:
    s = t.contact_merge_suggestions.c
    row = load_or_none(
        ContactMergeSuggestion,
        (
            await conn.execute(
                sa.select(t.contact_merge_suggestions).where(
                    s.id == suggestion_id, s.workspace_id == actor.workspace_id
                )
            )
        ).first(),
    )
    if row is None:
        raise NotFound("merge suggestion not found", field="suggestion_id")
    return merge_suggestion_view(row)


async def _conversation_counts(
    conn: AsyncConnection, workspace_id: int, contact_ids: list[int]
) -> dict[int, int]:
    """Every conversation of each contact: only contacts within the
    caller's merge reach are counted, and it can read all of theirs."""
    if not contact_ids:
        return {}
    c = t.conversations.c
    rows = await conn.execute(
        sa.select(c.contact_id, sa.func.count().label("n"))
        .where(
            c.contact_id.in_(contact_ids),
            c.workspace_id == workspace_id,
            c.merged_into_id.is_(None),
        )
        .group_by(c.contact_id)
    )
    return {int(r.contact_id): int(r.n) for r in rows}


async def contact_merge_suggestions(
    conn: AsyncConnection, actor: Actor, contact_id: int
) -> dict[str, JsonValue]:
    """`offered_suggestions` as the contact's sidebar shows them, each with
    the other contact as `other`."""
    rows = await offered_suggestions(conn, actor, contact_id)
    ids = [r.other_id for r in rows]
    identities = await identities_of(conn, ids)
    counts = await _conversation_counts(conn, actor.workspace_id, ids)
    return {
        "items": [
            {
                **merge_suggestion_view(r.suggestion),
                "other": {
                    "id": r.other_id,
                    "name": r.other_name,
                    "identities": [identity_view(i) for i in identities[r.other_id]],
                    "conversation_count": counts.get(r.other_id, 0),
                },
            }
            for r in rows
        ]
    }


async def offered_suggestions(
    conn: AsyncConnection, actor: Actor, contact_id: int
) -> list[OfferedSuggestion]:
    """The open suggestions where `contact_id` is either side, newest
    first; only those the caller may accept (merge) or dismiss."""
    contact = await access_contact(conn, actor, contact_id)
    if contact.merged_into_id is not None:
        return []
    s, other = t.contact_merge_suggestions.c, t.contacts.alias("other")
    other_id = sa.case((s.contact_id == contact_id, s.candidate_id), else_=s.contact_id)
    rows = [
        OfferedSuggestion(load(ContactMergeSuggestion, r), r.other_id, r.other_name)
        for r in await conn.execute(
            sa.select(
                t.contact_merge_suggestions,
                other.c.id.label("other_id"),
                other.c.name.label("other_name"),
            )
            .join(other, other.c.id == other_id)
            .where(
                s.workspace_id == actor.workspace_id,
                s.status == "open",
                sa.or_(s.contact_id == contact_id, s.candidate_id == contact_id),
                other.c.merged_into_id.is_(None),
            )
            .order_by(s.created_at.desc(), s.id.desc())
            .limit(MAX_SHOWN)
        )
    ]
    hidden = await out_of_merge_reach(conn, actor, {contact.id, *(r.other_id for r in rows)})
    if contact.id in hidden:
        return []
    return [r for r in rows if r.other_id not in hidden]
