"""What the REST API answers about touchpoints (API.md of the engine): a
touchpoint with its counts per decision state and its skips by reason,
its whole spec, decisions with who and what they were for, and one
contact's upcoming and past touches.

Reads are for every agent of the workspace. The stored spec is shown as
server.queries.touchpoints.stored_body reads it, so an editor can send
the detail back as a `PUT` unchanged.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import InvalidInput, NotFound
from server.domain.json_types import JsonValue
from server.domain.touchpoints import PENDING, DecisionState
from server.queries.access import access_contact
from server.queries.api_shapes import iso
from server.queries.pagination import decode_cursor, encode_cursor
from server.queries.records import Touchpoint, load
from server.queries.touchpoints import decision_counts, steps_of, stored_body, touchpoint_row
from server.storage import tables as t

MAX_PAST = 50
MAX_UPCOMING = 50
DEFAULT_DECISIONS = 50
MAX_DECISIONS = 200
# The spec fields the summary shows already.
_SUMMARY_FIELDS = ("name", "description", "kind", "trigger", "inbox_id")


def _counts(entry: dict[str, Any] | None) -> tuple[dict[str, JsonValue], dict[str, JsonValue]]:
    states = (entry or {}).get("states", {})
    skipped = (entry or {}).get("skipped", {})
    return {s.value: int(states.get(s.value, 0)) for s in DecisionState}, dict(skipped)


def touchpoint_view(row: Touchpoint, entry: dict[str, Any] | None) -> dict[str, JsonValue]:
    counts, skipped = _counts(entry)
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "kind": row.kind,
        "status": row.status,
        "trigger": row.trigger,
        "version": row.version,
        "seed": row.seed,
        "inbox_id": row.inbox_id,
        "updated_at": iso(row.updated_at),
        "counts": counts,
        "skipped_by_reason": skipped,
    }


async def touchpoints_view(conn: AsyncConnection, actor: Actor) -> dict[str, JsonValue]:
    """`{"touchpoints": [T]}`, newest first, counted in one GROUP BY."""
    c = t.touchpoints.c
    rows = [
        load(Touchpoint, r)
        for r in await conn.execute(
            sa.select(t.touchpoints)
            .where(c.workspace_id == actor.workspace_id)
            .order_by(c.id.desc())
        )
    ]
    counts = await decision_counts(conn, actor.workspace_id, [r.id for r in rows])
    return {"touchpoints": [touchpoint_view(r, counts.get(r.id)) for r in rows]}


async def touchpoint_detail_view(
    conn: AsyncConnection, actor: Actor, touchpoint_id: int
) -> dict[str, JsonValue]:
    """D: the summary and every spec field of the current version."""
    row = await touchpoint_row(conn, actor.workspace_id, touchpoint_id)
    body = stored_body(row, await steps_of(conn, row.id, row.version))
    counts = await decision_counts(conn, actor.workspace_id, [row.id])
    spec = {k: v for k, v in body.items() if k not in _SUMMARY_FIELDS}
    steps = spec.get("steps")
    if isinstance(steps, list):
        # Positions shown, as the decisions and previews name steps by them.
        spec["steps"] = [
            {"position": i, **item} if isinstance(item, dict) else item
            for i, item in enumerate(steps)
        ]
    return {**touchpoint_view(row, counts.get(row.id)), **spec}


def _decisions_select(actor: Actor) -> sa.Select[Any]:
    d, tp, k, e = t.decisions.c, t.touchpoints.c, t.contacts.c, t.episodes.c
    return (
        sa.select(
            t.decisions,
            tp.name.label("touchpoint_name"),
            k.name.label("contact_name"),
            e.conversation_id.label("conversation_id"),
        )
        .join(t.touchpoints, tp.id == d.touchpoint_id)
        .join(t.contacts, k.id == d.contact_id)
        .join(t.episodes, e.id == d.episode_id)
        .where(d.workspace_id == actor.workspace_id)
    )


def decision_view(row: Any) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "touchpoint_id": row.touchpoint_id,
        "touchpoint_name": row.touchpoint_name,
        "contact_id": row.contact_id,
        "contact_name": row.contact_name,
        "position": row.position,
        "channel": row.channel,
        "state": row.state,
        "reason": row.reason,
        "variant": row.variant,
        "due_at": iso(row.due_at),
        "run_at": iso(row.run_at),
        "settled_at": iso(row.settled_at),
        "conversation_id": row.conversation_id,
        "message_id": row.message_id,
    }


async def list_decisions(
    conn: AsyncConnection,
    actor: Actor,
    *,
    state: str | None = None,
    touchpoint_id: int | None = None,
    contact_id: int | None = None,
    limit: int = DEFAULT_DECISIONS,
    cursor: str | None = None,
) -> dict[str, JsonValue]:
    """Decisions newest first (by id), filtered; `next_cursor` pages on."""
    d = t.decisions.c
    stmt = _decisions_select(actor)
    if state is not None:
        stmt = stmt.where(d.state == state)
    if touchpoint_id is not None:
        stmt = stmt.where(d.touchpoint_id == touchpoint_id)
    if contact_id is not None:
        stmt = stmt.where(d.contact_id == contact_id)
    if cursor is not None:
        [last] = decode_cursor(cursor, 1)
        if isinstance(last, bool) or not isinstance(last, int):
            raise InvalidInput("cursor: not a cursor this API returned", field="cursor")
        stmt = stmt.where(d.id < last)
    rows = (await conn.execute(stmt.order_by(d.id.desc()).limit(limit + 1))).all()
    items = [decision_view(r) for r in rows[:limit]]
    more = len(rows) > limit and items
    return {"decisions": items, "next_cursor": encode_cursor(items[-1]["id"]) if more else None}


async def decision_detail(
    conn: AsyncConnection, actor: Actor, decision_id: int
) -> dict[str, JsonValue]:
    row = (
        await conn.execute(_decisions_select(actor).where(t.decisions.c.id == decision_id))
    ).first()
    if row is None:
        raise NotFound("decision not found")
    return decision_view(row)


async def contact_touchpoints(
    conn: AsyncConnection, actor: Actor, contact_id: int
) -> dict[str, JsonValue]:
    """The contact's pending touches (soonest first) and settled ones
    (latest first, at most MAX_PAST), for its column in the inbox."""
    await access_contact(conn, actor, contact_id)
    d = t.decisions.c
    pending = [s.value for s in PENDING]
    mine = _decisions_select(actor).where(d.contact_id == contact_id)
    upcoming = await conn.execute(
        mine.where(d.state.in_(pending)).order_by(d.run_at, d.id).limit(MAX_UPCOMING)
    )
    past = await conn.execute(
        mine.where(d.state.not_in(pending))
        .order_by(sa.func.coalesce(d.settled_at, d.run_at).desc(), d.id.desc())
        .limit(MAX_PAST)
    )
    return {
        "upcoming": [decision_view(r) for r in upcoming],
        "past": [decision_view(r) for r in past],
    }
