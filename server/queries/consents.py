"""Reading a contact's consents: the history, newest first, and the state
that counts now per channel and topic (the latest row)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.consents import current_states
from server.domain.json_types import JsonValue
from server.queries.access import access_contact
from server.queries.api_shapes import iso
from server.queries.records import Consent, load
from server.storage import tables as t

# A contact's history is short (a few changes a year); past this many
# rows the oldest are left out of `consents` but still count in `current`.
MAX_SHOWN = 200


def consent_view(row: Consent) -> dict[str, JsonValue]:
    return {
        "channel": row.channel,
        "topic": row.topic,
        "state": row.state,
        "source": row.source,
        "at": iso(row.at),
    }


async def contact_consents(
    conn: AsyncConnection, actor: Actor, contact_id: int
) -> dict[str, JsonValue]:
    """`{"consents": [newest first], "current": {"email:marketing": ...}}`."""
    await access_contact(conn, actor, contact_id)
    k = t.consents.c
    rows = [
        load(Consent, r)
        for r in await conn.execute(
            sa.select(t.consents)
            .where(k.contact_id == contact_id, k.workspace_id == actor.workspace_id)
            .order_by(k.at, k.id)
        )
    ]
    return {
        "consents": [consent_view(r) for r in reversed(rows[-MAX_SHOWN:])],
        "current": current_states((r.channel, r.topic, r.state) for r in rows),
    }
