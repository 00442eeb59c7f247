"""Merging two contacts into one, and undoing it (FEATURES.md F3).

`do_merge_contacts` folds the *merged* contact into the *survivor*: its
conversations (their messages follow, as each message carries its
conversation's contact), identities, tracked events and widget sessions
move over; the survivor gains the attributes it lacked (where both have a
key, the survivor's value stays); the merged contact is kept, hidden,
with `merged_into_id` set, so that GET /contacts/{id} can point to the
survivor and an undo can bring it back. A `contact_merges` row records
exactly which rows moved and the survivor's attributes before, the audit
log says who did it, and `contact.merged` tells everyone.

Who may merge: an admin, or an agent who can read every conversation of
both contacts (`require_merge_reach`, the one rule for merges, their
preview, their undo and merge suggestions). Seeing a contact is not
enough: a merge gives each contact's conversations to the other, and an
agent outside an inbox must not be able to hand that inbox's customer,
history and all, to a contact it controls (its own widget visitor).
Widget sessions never widen by a merge either: a session follows only the
conversations opened for the contact it proved (server.queries.visitors).

`do_undo_contact_merge` puts back exactly the recorded rows that are
still on the survivor: anything created on the survivor after the merge
(a new conversation, a new tracked event) stays there. Allowed within
UNDO_WINDOW, to an admin or the agent who merged while it can still read
every conversation of both contacts, once, and only while neither
contact has been merged again and no moved conversation was merged with
another since (the two contacts' messages would no longer separate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence

import sqlalchemy as sa

from server.actions.audit import record_audit
from server.actions.contact_suggestions import settle_suggestions
from server.actions.context import ActionContext
from server.domain.errors import Conflict, Forbidden, NotFound
from server.domain.events import ContactMerged, ContactMergeUndone
from server.domain.merges import (
    MergeRecord,
    MovedRows,
    check_contact_merge,
    merge_attributes,
    moved_counts,
    undo_refusal,
    unmerge_attributes,
)
from server.queries import records as r
from server.queries.access import require_merge_reach
from server.queries.records import load
from server.storage import tables as t

# Rows owned through `contact_id` that move with a contact, by their key in
# contact_merges.moved. Conversations are handled apart: their inbox goes
# into the event, and their messages follow them.
_OWNED = {
    "identities": t.contact_identities,
    "contact_events": t.contact_events,
    "visitor_sessions": t.visitor_sessions,
}

# Ids per statement when moving rows back by id: well under the bound
# parameter limits of SQLite and asyncpg, for a contact with a long history.
_CHUNK = 500


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield list(ids[i : i + _CHUNK])


@dataclasses.dataclass(frozen=True)
class _ConversationRef:
    """A conversation that changed contact, and its inbox (for the event)."""

    id: int
    inbox_id: int


async def _lock_pair(
    ctx: ActionContext, survivor_id: int, other_id: int, *, other_field: str | None
) -> tuple[r.Contact, r.Contact]:
    """Both contacts, locked (in id order, so two merges of the same pair
    can't deadlock) until the end of the transaction. A contact of another
    workspace is not found, like one that does not exist."""
    c = t.contacts.c
    rows = {
        row.id: load(r.Contact, row)
        for row in await ctx.conn.execute(
            sa.select(t.contacts)
            .where(c.id.in_([survivor_id, other_id]), c.workspace_id == ctx.actor.workspace_id)
            .order_by(c.id)
            .with_for_update()
        )
    }
    if survivor_id not in rows:
        raise NotFound("contact not found")
    if other_id not in rows:
        raise NotFound(f"{other_field or 'contact'}: contact not found", field=other_field)
    return rows[survivor_id], rows[other_id]


def _conversation_refs(refs: Iterable[_ConversationRef]) -> list[dict[str, int]]:
    """The conversations as the merge events list them, by id."""
    return [{"id": c.id, "inbox_id": c.inbox_id} for c in sorted(refs, key=lambda c: c.id)]


async def do_merge_contacts(ctx: ActionContext, *, contact_id: int, other_id: int) -> int:
    """Merge contact `other_id` into contact `contact_id` (the survivor).
    Returns the merge's id (for its undo)."""
    check_contact_merge(contact_id, None, other_id, None)
    survivor, other = await _lock_pair(ctx, contact_id, other_id, other_field="other_id")
    check_contact_merge(survivor.id, survivor.merged_into_id, other.id, other.merged_into_id)
    await require_merge_reach(
        ctx.conn, ctx.actor, ("contact_id", survivor.id), ("other_id", other.id)
    )
    conv = t.conversations.c
    # Conversation merges among the merged contact's own conversations,
    # so that an undo can tell them from ones made after this merge.
    earlier_merges: list[tuple[int, int]] = [
        (row.id, row.merged_into_id)
        for row in await ctx.conn.execute(
            sa.select(conv.id, conv.merged_into_id)
            .where(conv.contact_id == other.id, conv.merged_into_id.is_not(None))
            .order_by(conv.id)
        )
    ]
    conversations = sorted(
        (
            _ConversationRef(row.id, row.inbox_id)
            for row in await ctx.conn.execute(
                t.conversations.update()
                .where(conv.contact_id == other.id)
                .values(contact_id=survivor.id)
                .returning(conv.id, conv.inbox_id)
            )
        ),
        key=lambda c: c.id,
    )
    # After the conversations: on PostgreSQL that update waited for any
    # message being appended to them, so this one sees those messages too.
    messages = await ctx.conn.execute(
        t.messages.update()
        .where(t.messages.c.contact_id == other.id)
        .values(contact_id=survivor.id)
    )
    owned: dict[str, list[int]] = {}
    for key, table in _OWNED.items():
        result = await ctx.conn.execute(
            table.update()
            .where(table.c.contact_id == other.id)
            .values(contact_id=survivor.id)
            .returning(table.c.id)
        )
        owned[key] = sorted(result.scalars().all())
    attributes = merge_attributes(survivor.attributes, other.attributes)
    if attributes.added:
        await ctx.conn.execute(
            t.contacts.update()
            .where(t.contacts.c.id == survivor.id)
            .values(attributes=attributes.attributes)
        )
    await ctx.conn.execute(
        t.contacts.update().where(t.contacts.c.id == other.id).values(merged_into_id=survivor.id)
    )
    moved = MergeRecord(
        conversations=[c.id for c in conversations],
        messages=messages.rowcount,
        identities=owned["identities"],
        contact_events=owned["contact_events"],
        visitor_sessions=owned["visitor_sessions"],
        conversation_merges=earlier_merges,
        attributes_added=attributes.added,
        survivor_attributes=survivor.attributes,
    )
    merge_id: int = (
        await ctx.conn.execute(
            t.contact_merges.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                survivor_id=survivor.id,
                merged_id=other.id,
                moved=moved.to_json(),
                merged_by=ctx.actor.agent_id,
                created_at=ctx.now,
            )
            .returning(t.contact_merges.c.id)
        )
    ).scalar_one()
    await record_audit(
        ctx,
        "contact.merged",
        "contact",
        survivor.id,
        {"merge_id": merge_id, "merged_id": other.id, "moved": moved_counts(moved.rows())},
    )
    await ctx.emit(
        ContactMerged(
            workspace_id=ctx.actor.workspace_id,
            survivor_id=survivor.id,
            merged_id=other.id,
            merge_id=merge_id,
            conversations=_conversation_refs(conversations),
        )
    )
    # A suggestion to merge these two was just taken up.
    await settle_suggestions(ctx, survivor_id=survivor.id, merged_id=other.id)
    return merge_id


async def _locked_merge(ctx: ActionContext, merge_id: int) -> r.ContactMerge:
    m = t.contact_merges.c
    row = (
        await ctx.conn.execute(
            sa.select(t.contact_merges)
            .where(m.id == merge_id, m.workspace_id == ctx.actor.workspace_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound("contact merge not found")
    return load(r.ContactMerge, row)


async def _conversations_merged_since(
    ctx: ActionContext, ids: Sequence[int], earlier: Sequence[tuple[int, int]]
) -> list[int]:
    """Moved conversations that took part in a conversation merge after the
    contact merge (as source or target)."""
    conv = t.conversations.c
    before = set(earlier)
    found: set[int] = set()
    for chunk in _chunks(ids):
        rows = await ctx.conn.execute(
            sa.select(conv.id, conv.merged_into_id).where(
                conv.merged_into_id.is_not(None),
                sa.or_(conv.id.in_(chunk), conv.merged_into_id.in_(chunk)),
            )
        )
        found |= {row.id for row in rows if (row.id, row.merged_into_id) not in before}
    return sorted(found)


def _give_back(table: sa.Table, ids: list[int], survivor_id: int, merged_id: int) -> sa.Update:
    """Give the recorded rows that are still the survivor's back to the
    merged contact; rows that went elsewhere since (a widget session
    identified as someone else) stay where they are."""
    return (
        table.update()
        .where(table.c.id.in_(ids), table.c.contact_id == survivor_id)
        .values(contact_id=merged_id)
    )


async def _move_back(
    ctx: ActionContext, table: sa.Table, ids: Sequence[int], survivor_id: int, merged_id: int
) -> list[int]:
    """`_give_back` the rows `ids` of `table`; returns the ids that moved."""
    back: list[int] = []
    for chunk in _chunks(ids):
        result = await ctx.conn.execute(
            _give_back(table, chunk, survivor_id, merged_id).returning(table.c.id)
        )
        back.extend(result.scalars().all())
    return back


async def _move_conversations_back(
    ctx: ActionContext, ids: Sequence[int], survivor_id: int, merged_id: int
) -> list[_ConversationRef]:
    """`_give_back` the conversations `ids`; returns those that moved."""
    conv = t.conversations.c
    back: list[_ConversationRef] = []
    for chunk in _chunks(ids):
        rows = await ctx.conn.execute(
            _give_back(t.conversations, chunk, survivor_id, merged_id).returning(
                conv.id, conv.inbox_id
            )
        )
        back.extend(_ConversationRef(row.id, row.inbox_id) for row in rows)
    return back


async def do_undo_contact_merge(ctx: ActionContext, *, merge_id: int) -> None:
    """Undo contact merge `merge_id` (the rules are in the module's
    docstring): Forbidden for anyone but an admin or its agent (who must
    still reach every conversation of both contacts), Conflict when it can
    no longer be undone."""
    merge = await _locked_merge(ctx, merge_id)
    if not ctx.actor.is_admin and (
        ctx.actor.agent_id is None or merge.merged_by != ctx.actor.agent_id
    ):
        raise Forbidden("only the agent who merged these contacts or an admin may undo it")
    survivor, merged = await _lock_pair(ctx, merge.survivor_id, merge.merged_id, other_field=None)
    # The survivor holds the moved conversations now: its reach covers them.
    await require_merge_reach(
        ctx.conn, ctx.actor, ("merge_id", survivor.id), ("merge_id", merged.id)
    )
    refusal = undo_refusal(
        now=ctx.now,
        merged_at=merge.created_at,
        undone_at=merge.undone_at,
        survivor_merged_into=survivor.merged_into_id,
    )
    if refusal is not None:
        raise Conflict(refusal)
    if merged.merged_into_id != survivor.id:
        # Only a merge sets merged_into_id and only its undo clears it, so
        # this is a record out of step with the contacts: touch nothing.
        raise Conflict("the merged contact no longer points at the survivor")
    moved = MergeRecord.from_json(merge.moved)
    tangled = await _conversations_merged_since(ctx, moved.conversations, moved.conversation_merges)
    if tangled:
        raise Conflict(
            f"conversation {tangled[0]} was merged with another conversation since;"
            " the two contacts' messages can no longer be told apart"
        )
    back = await _move_conversations_back(ctx, moved.conversations, survivor.id, merged.id)
    messages = 0
    for chunk in _chunks([c.id for c in back]):
        result = await ctx.conn.execute(
            t.messages.update()
            .where(t.messages.c.conversation_id.in_(chunk))
            .values(contact_id=merged.id)
        )
        messages += result.rowcount
    owned = {
        key: await _move_back(ctx, _OWNED[key], ids, survivor.id, merged.id)
        for key, ids in [
            ("identities", moved.identities),
            ("contact_events", moved.contact_events),
            ("visitor_sessions", moved.visitor_sessions),
        ]
    }
    attributes = unmerge_attributes(survivor.attributes, moved.attributes_added)
    went_back = MovedRows(
        conversations=[c.id for c in back],
        messages=messages,
        identities=owned["identities"],
        contact_events=owned["contact_events"],
        visitor_sessions=owned["visitor_sessions"],
        attributes_added=sorted(set(survivor.attributes) - set(attributes)),
    )
    if attributes != survivor.attributes:
        await ctx.conn.execute(
            t.contacts.update().where(t.contacts.c.id == survivor.id).values(attributes=attributes)
        )
    await ctx.conn.execute(
        t.contacts.update().where(t.contacts.c.id == merged.id).values(merged_into_id=None)
    )
    await ctx.conn.execute(
        t.contact_merges.update().where(t.contact_merges.c.id == merge.id).values(undone_at=ctx.now)
    )
    await record_audit(
        ctx,
        "contact.merge_undone",
        "contact",
        survivor.id,
        {"merge_id": merge.id, "merged_id": merged.id, "moved_back": moved_counts(went_back)},
    )
    await ctx.emit(
        ContactMergeUndone(
            workspace_id=ctx.actor.workspace_id,
            survivor_id=survivor.id,
            merged_id=merged.id,
            merge_id=merge.id,
            conversations=_conversation_refs(back),
        )
    )
