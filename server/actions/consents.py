"""Consents: recording a contact's yes or no to a channel and topic.

The table is append-only (server.storage.tables.consents): a change is a
new row with its source and time, so the history answers "who said so,
and when". The one-click unsubscribe records a withdrawal here too, in
the same transaction as the suppression, so the touchpoint guards (which
read consents) and the outbox (which reads suppressions) agree.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.consents import (
    CHANNELS,
    MAX_SOURCE,
    TOPICS,
    ConsentState,
)
from server.domain.errors import InvalidInput, NotFound
from server.domain.events import ConsentRecorded
from server.domain.values import IdentityKind, normalize_identity
from server.storage import tables as t


async def _append(
    ctx: ActionContext, *, contact_id: int, channel: str, topic: str, state: str, source: str
) -> int:
    consent_id: int = (
        await ctx.conn.execute(
            t.consents.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                contact_id=contact_id,
                channel=channel,
                topic=topic,
                state=state,
                source=source[:MAX_SOURCE],
                at=ctx.now,
            )
            .returning(t.consents.c.id)
        )
    ).scalar_one()
    await ctx.emit(
        ConsentRecorded(
            workspace_id=ctx.actor.workspace_id,
            contact_id=contact_id,
            channel=channel,
            topic=topic,
            state=state,
            source=source[:MAX_SOURCE],
        )
    )
    return consent_id


async def do_record_consent(
    ctx: ActionContext,
    *,
    contact_id: int,
    channel: str,
    topic: str,
    state: ConsentState,
    source: str,
) -> int:
    """Append `state` for the contact's `channel` and `topic`; the new row
    is the current state. Returns its id."""
    if channel not in CHANNELS:
        raise InvalidInput(f"channel: must be one of {', '.join(CHANNELS)}", field="channel")
    if topic not in TOPICS:
        raise InvalidInput(f"topic: must be one of {', '.join(TOPICS)}", field="topic")
    c = t.contacts.c
    exists = await ctx.conn.scalar(
        sa.select(c.id).where(c.id == contact_id, c.workspace_id == ctx.actor.workspace_id)
    )
    if exists is None:
        raise NotFound("contact not found")
    return await _append(
        ctx,
        contact_id=contact_id,
        channel=channel,
        topic=topic,
        state=ConsentState(state).value,
        source=source,
    )


async def withdraw_for_address(ctx: ActionContext, *, address: str, source: str) -> list[int]:
    """Email marketing withdrawn for every contact mail to `address` goes
    to (the unsubscribe link names an address, not a contact): the one
    holding it as an identity and those who only typed it in (the `email`
    attribute, which automatic mail falls back to), unless withdrawn
    already: a second click adds no row. The contacts' ids."""
    value = normalize_identity(IdentityKind.EMAIL, address)
    i, c = t.contact_identities.c, t.contacts.c
    holders = sa.select(i.contact_id.label("contact_id")).where(
        i.workspace_id == ctx.actor.workspace_id,
        i.kind == IdentityKind.EMAIL.value,
        i.value == value,
    )
    claimers = sa.select(c.id.label("contact_id")).where(
        c.workspace_id == ctx.actor.workspace_id,
        c.merged_into_id.is_(None),
        sa.func.lower(c.attributes["email"].as_string()) == value,
    )
    contact_ids = sorted(set(await ctx.conn.scalars(sa.union(holders, claimers))))
    withdrawn = []
    for contact_id in contact_ids:
        k = t.consents.c
        latest = await ctx.conn.scalar(
            sa.select(k.state)
            .where(
                k.contact_id == contact_id,
                k.channel == "email",
                k.topic == "marketing",
            )
            .order_by(k.at.desc(), k.id.desc())
            .limit(1)
        )
        if latest == ConsentState.WITHDRAWN.value:
            continue
        await _append(
            ctx,
            contact_id=contact_id,
            channel="email",
            topic="marketing",
            state=ConsentState.WITHDRAWN.value,
            source=source,
        )
        withdrawn.append(contact_id)
    return withdrawn
