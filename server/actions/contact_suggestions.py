"""Merge suggestions (F3): two contacts that may be one person, where
nothing proves it. Threadline merges by itself only on a verified
identity; an address a widget visitor merely typed in is a claim, so a
mail from that address gets its own contact, a claim of an address
another contact holds stays on the claimant, and the agents are offered
the merge instead.

A pair of contacts is suggested at most once, whichever way round and
whatever became of the first suggestion: a dismissed pair is not
offered again. An agent accepts a suggestion by merging the two
(server.actions.contact_merges, which calls `settle_suggestions`) or
dismisses it (`do_dismiss_merge_suggestion`).
"""

from __future__ import annotations

import sqlalchemy as sa

from server.actions.audit import record_audit
from server.actions.context import ActionContext
from server.domain.errors import Conflict, NotFound
from server.domain.events import (
    ContactMergeSuggested,
    ContactMergeSuggestionAccepted,
    ContactMergeSuggestionDismissed,
)
from server.domain.values import IdentityKind, normalize_identity
from server.queries.access import require_merge_reach
from server.queries.records import ContactMergeSuggestion, load
from server.storage import tables as t

MAX_SUGGESTIONS = 5


def _pair(a: int, b: int) -> sa.ColumnElement[bool]:
    s = t.contact_merge_suggestions.c
    return sa.or_(
        sa.and_(s.contact_id == a, s.candidate_id == b),
        sa.and_(s.contact_id == b, s.candidate_id == a),
    )


async def _suggest(ctx: ActionContext, contact_id: int, candidate_id: int, reason: str) -> bool:
    """One suggestion for the pair, unless it was ever suggested (either
    way round). A concurrent writer of the same pair loses on the unique
    key and `perform` runs the action again, which then finds the row."""
    s = t.contact_merge_suggestions.c
    known = await ctx.conn.scalar(
        sa.select(s.id).where(
            s.workspace_id == ctx.actor.workspace_id, _pair(contact_id, candidate_id)
        )
    )
    if known is not None:
        return False
    suggestion_id: int = (
        await ctx.conn.execute(
            t.contact_merge_suggestions.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                contact_id=contact_id,
                candidate_id=candidate_id,
                reason=reason[:1000],
                status="open",
                created_at=ctx.now,
            )
            .returning(s.id)
        )
    ).scalar_one()
    await ctx.emit(
        ContactMergeSuggested(
            workspace_id=ctx.actor.workspace_id,
            suggestion_id=suggestion_id,
            contact_id=contact_id,
            candidate_id=candidate_id,
            reason=reason[:1000],
        )
    )
    return True


async def suggest_claimed_duplicates(ctx: ActionContext, *, contact_id: int, address: str) -> int:
    """Suggest merging `contact_id`, which holds the email identity
    `address`, with the contacts that only claimed that address (the
    attribute `email`). Returns how many suggestions were made."""
    c = t.contacts.c
    claimed = sa.func.lower(c.attributes["email"].as_string())
    candidates: list[int] = list(
        (
            await ctx.conn.execute(
                sa.select(c.id)
                .where(
                    c.workspace_id == ctx.actor.workspace_id,
                    c.id != contact_id,
                    c.merged_into_id.is_(None),
                    claimed == address.lower(),
                )
                .order_by(c.id)
                .limit(MAX_SUGGESTIONS)
            )
        ).scalars()
    )
    # Read from either contact's side, so it names neither.
    reason = f"Same address, {address}: one wrote in by email from it, the other only typed it in"
    made = 0
    for candidate_id in candidates:
        made += await _suggest(ctx, contact_id, candidate_id, reason)
    return made


async def suggest_claimed_owner(ctx: ActionContext, *, claimant_id: int, address: str) -> int:
    """The other direction: contact `claimant_id` (a widget visitor) just
    claimed `address` without proof (its attribute `email`). If another
    contact holds that address as an email identity, suggest merging the
    two (the holder is the suggestion's `contact_id`, the claimant its
    `candidate_id`, as in `suggest_claimed_duplicates`). Returns how many
    suggestions were made: 0 or 1."""
    ci, c = t.contact_identities.c, t.contacts.c
    value = normalize_identity(IdentityKind.EMAIL, address)
    owner: int | None = await ctx.conn.scalar(
        sa.select(ci.contact_id)
        .join(t.contacts, c.id == ci.contact_id)
        .where(
            ci.workspace_id == ctx.actor.workspace_id,
            ci.kind == IdentityKind.EMAIL.value,
            ci.value == value,
            ci.contact_id != claimant_id,
            c.merged_into_id.is_(None),
        )
    )
    if owner is None:
        return 0
    reason = f"Same address, {value}: one holds it, the other only typed it in on the website"
    return int(await _suggest(ctx, owner, claimant_id, reason))


async def _locked(ctx: ActionContext, suggestion_id: int) -> ContactMergeSuggestion:
    s = t.contact_merge_suggestions.c
    row = (
        await ctx.conn.execute(
            sa.select(t.contact_merge_suggestions)
            .where(s.id == suggestion_id, s.workspace_id == ctx.actor.workspace_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound("merge suggestion not found", field="suggestion_id")
    return load(ContactMergeSuggestion, row)


async def do_dismiss_merge_suggestion(ctx: ActionContext, *, suggestion_id: int) -> None:
    """An agent says the two contacts are not one person: the suggestion
    is dismissed and the pair is never suggested again. Whoever may merge
    the two may (`require_merge_reach`): saying no for good is as much a
    decision about both contacts' conversations as saying yes. Dismissing a dismissed suggestion changes
    nothing and emits nothing; one already accepted (the two were merged)
    is a Conflict."""
    row = await _locked(ctx, suggestion_id)
    await require_merge_reach(
        ctx.conn, ctx.actor, ("suggestion_id", row.contact_id), ("suggestion_id", row.candidate_id)
    )
    if row.status == "dismissed":
        return
    if row.status != "open":
        raise Conflict("this suggestion was accepted: the two contacts were merged")
    s = t.contact_merge_suggestions.c
    await ctx.conn.execute(
        t.contact_merge_suggestions.update().where(s.id == row.id).values(status="dismissed")
    )
    await record_audit(
        ctx,
        "contact.merge_suggestion_dismissed",
        "contact",
        row.contact_id,
        {"suggestion_id": row.id, "candidate_id": row.candidate_id},
    )
    await ctx.emit(
        ContactMergeSuggestionDismissed(
            workspace_id=ctx.actor.workspace_id,
            suggestion_id=row.id,
            contact_id=row.contact_id,
            candidate_id=row.candidate_id,
            dismissed_by=ctx.actor.agent_id,
        )
    )


async def settle_suggestions(ctx: ActionContext, *, survivor_id: int, merged_id: int) -> int:
    """Two contacts were merged (call from do_merge_contacts, in its
    transaction): the open suggestions between them are accepted. Returns
    how many. Suggestions of the merged contact with third contacts stay
    as they are: while it is merged nobody is shown them, and an undo of
    the merge brings them back."""
    s = t.contact_merge_suggestions.c
    rows = [
        load(ContactMergeSuggestion, row)
        for row in await ctx.conn.execute(
            t.contact_merge_suggestions.update()
            .where(
                s.workspace_id == ctx.actor.workspace_id,
                s.status == "open",
                _pair(survivor_id, merged_id),
            )
            .values(status="accepted")
            .returning(t.contact_merge_suggestions)
        )
    ]
    for row in sorted(rows, key=lambda r: r.id):
        await ctx.emit(
            ContactMergeSuggestionAccepted(
                workspace_id=ctx.actor.workspace_id,
                suggestion_id=row.id,
                contact_id=row.contact_id,
                candidate_id=row.candidate_id,
                survivor_id=survivor_id,
                merged_id=merged_id,
            )
        )
    return len(rows)
