"""Merge suggestions (F3): two contacts that may be one person, where
nothing proves it. Threadline merges by itself only on a verified
identity; an address a widget visitor merely typed in is a claim, so a
mail from that address gets its own contact and the agents are offered
the merge instead."""

from __future__ import annotations

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.events import ContactMergeSuggested
from server.storage import tables as t

MAX_SUGGESTIONS = 5


async def suggest_claimed_duplicates(ctx: ActionContext, *, contact_id: int, address: str) -> int:
    """Suggest merging `contact_id`, which holds the email identity
    `address`, with the contacts that only claimed that address (the
    attribute `email`). Returns how many suggestions were made."""
    c = t.contacts.c
    claimed = sa.func.lower(c.attributes["email"].as_string())
    candidates = (
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
    made = 0
    for candidate_id in list(candidates):
        reason = f"{address} wrote in by email; this contact gave that address without proof"
        suggestion_id: int = (
            await ctx.conn.execute(
                t.contact_merge_suggestions.insert()
                .values(
                    workspace_id=ctx.actor.workspace_id,
                    contact_id=contact_id,
                    candidate_id=candidate_id,
                    reason=reason,
                    status="open",
                    created_at=ctx.now,
                )
                .returning(t.contact_merge_suggestions.c.id)
            )
        ).scalar_one()
        await ctx.emit(
            ContactMergeSuggested(
                workspace_id=ctx.actor.workspace_id,
                suggestion_id=suggestion_id,
                contact_id=contact_id,
                candidate_id=candidate_id,
                reason=reason,
            )
        )
        made += 1
    return made
