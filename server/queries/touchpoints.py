"""Reading touchpoints (F7, TOUCHPOINTS.md): a touchpoint's spec as its
author wrote it, the steps of one version, the live ones an event can
start, and the list and detail the REST layer shows.

The JSON columns are read back through the domain parsers
(server.domain.touchpoints), the same that checked them on the way in, so
a stored touchpoint means exactly what its author was shown.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.errors import NotFound
from server.domain.json_types import JsonValue
from server.domain.touch_timing import parse_delay
from server.domain.touchpoints import (
    Channel,
    Step,
    TouchpointSpec,
    TouchStatus,
    parse_touchpoint,
    parse_variants,
)
from server.queries.api_shapes import iso
from server.queries.records import Touchpoint, TouchpointStep, load
from server.storage import tables as t


async def touchpoint_row(
    conn: AsyncConnection, workspace_id: int, touchpoint_id: int, *, for_update: bool = False
) -> Touchpoint:
    """A touchpoint of the workspace (NotFound otherwise); `for_update`
    locks it, so two edits of one touchpoint take turns."""
    c = t.touchpoints.c
    stmt = sa.select(t.touchpoints).where(c.id == touchpoint_id, c.workspace_id == workspace_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("touchpoint not found")
    return load(Touchpoint, row)


async def steps_of(conn: AsyncConnection, touchpoint_id: int, version: int) -> list[TouchpointStep]:
    """The steps of one version of a touchpoint, in order."""
    c = t.touchpoint_steps.c
    rows = await conn.execute(
        sa.select(t.touchpoint_steps)
        .where(c.touchpoint_id == touchpoint_id, c.version == version)
        .order_by(c.position)
    )
    return [load(TouchpointStep, row) for row in rows]


async def step_at(
    conn: AsyncConnection, touchpoint_id: int, version: int, position: int
) -> TouchpointStep | None:
    """One step of one version, None past the last."""
    c = t.touchpoint_steps.c
    row = (
        await conn.execute(
            sa.select(t.touchpoint_steps).where(
                c.touchpoint_id == touchpoint_id, c.version == version, c.position == position
            )
        )
    ).first()
    return None if row is None else load(TouchpointStep, row)


def step_of(row: TouchpointStep) -> Step:
    """A stored step as the domain's Step."""
    field = f"steps[{row.position}]"
    channel = Channel(row.channel)
    return Step(
        position=row.position,
        delay=parse_delay(row.delay, f"{field}.delay"),
        channel=channel,
        variants=parse_variants(row.variants, f"{field}.variants", channel),
        business_hours=row.business_hours,
    )


def stored_body(row: Touchpoint, steps: Sequence[TouchpointStep]) -> dict[str, JsonValue]:
    """The touchpoint as a request body would carry it (what
    parse_touchpoint reads)."""
    return {
        "name": row.name,
        "description": row.description,
        "kind": row.kind,
        "trigger": row.trigger,
        "steps": [
            {
                "delay": s.delay,
                "channel": s.channel,
                "variants": s.variants,
                "business_hours": s.business_hours,
            }
            for s in steps
        ],
        "episode_key": row.episode_key,
        "exit_rules": row.exit_rules,
        "goal": row.goal,
        "reentry": row.reentry,
        "cooldown": row.cooldown_seconds,
        "priority": row.priority,
        "holdout_percent": row.holdout_percent,
        "max_lateness": row.max_lateness_seconds,
        "quiet_hours": row.quiet_hours,
        "inbox_id": row.inbox_id,
        "entry_segment_id": row.entry_segment_id,
    }


async def touchpoint_spec(
    conn: AsyncConnection, workspace_id: int, touchpoint_id: int
) -> tuple[Touchpoint, TouchpointSpec]:
    """The touchpoint and its current version's spec, read back through
    the parsers that stored it."""
    row = await touchpoint_row(conn, workspace_id, touchpoint_id)
    steps = await steps_of(conn, row.id, row.version)
    return row, parse_touchpoint(stored_body(row, steps))


async def live_touchpoints(
    conn: AsyncConnection, workspace_id: int, trigger_keys: Collection[str]
) -> list[Touchpoint]:
    """The live touchpoints an event with these trigger keys may start:
    one read on ix_touchpoints_workspace_status_trigger."""
    if not trigger_keys:
        return []
    c = t.touchpoints.c
    rows = await conn.execute(
        sa.select(t.touchpoints)
        .where(
            c.workspace_id == workspace_id,
            c.status == TouchStatus.LIVE.value,
            c.trigger_key.in_(sorted(set(trigger_keys))),
        )
        .order_by(c.id)
    )
    return [load(Touchpoint, row) for row in rows]


# -- for the REST layer ----------------------------------------------------


def touchpoint_summary(row: Touchpoint) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "kind": row.kind,
        "status": row.status,
        "trigger": row.trigger,
        "version": row.version,
        "seed": row.seed,
        "priority": row.priority,
        "inbox_id": row.inbox_id,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def decision_counts(
    conn: AsyncConnection, workspace_id: int, touchpoint_ids: Collection[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Per touchpoint: its decisions by state, and the skipped ones by
    reason (`{"states": {"sent": 3, ...}, "skipped": {"holdout": 1}}`), in
    one GROUP BY over the decisions."""
    c = t.decisions.c
    stmt = (
        sa.select(c.touchpoint_id, c.state, c.reason, sa.func.count())
        .where(c.workspace_id == workspace_id)
        .group_by(c.touchpoint_id, c.state, c.reason)
    )
    if touchpoint_ids is not None:
        if not touchpoint_ids:
            return {}
        stmt = stmt.where(c.touchpoint_id.in_(sorted(set(touchpoint_ids))))
    out: dict[int, dict[str, Any]] = {}
    for touchpoint_id, state, reason, count in await conn.execute(stmt):
        entry = out.setdefault(touchpoint_id, {"states": {}, "skipped": {}})
        entry["states"][state] = entry["states"].get(state, 0) + count
        if state == "skipped":
            key = reason or "unknown"
            entry["skipped"][key] = entry["skipped"].get(key, 0) + count
    return out


def _counts_view(counts: dict[str, Any] | None) -> dict[str, JsonValue]:
    return counts if counts is not None else {"states": {}, "skipped": {}}


async def list_touchpoints(
    conn: AsyncConnection, workspace_id: int, *, status: TouchStatus | None = None
) -> list[dict[str, JsonValue]]:
    """The workspace's touchpoints (newest first) with their counts."""
    c = t.touchpoints.c
    stmt = sa.select(t.touchpoints).where(c.workspace_id == workspace_id)
    if status is not None:
        stmt = stmt.where(c.status == status.value)
    rows = [load(Touchpoint, row) for row in await conn.execute(stmt.order_by(c.id.desc()))]
    counts = await decision_counts(conn, workspace_id, [row.id for row in rows])
    return [{**touchpoint_summary(row), "counts": _counts_view(counts.get(row.id))} for row in rows]


async def touchpoint_detail(
    conn: AsyncConnection, workspace_id: int, touchpoint_id: int
) -> dict[str, JsonValue]:
    """One touchpoint: its summary, its whole current spec as stored and
    its counts."""
    row = await touchpoint_row(conn, workspace_id, touchpoint_id)
    steps = await steps_of(conn, row.id, row.version)
    counts = await decision_counts(conn, workspace_id, [row.id])
    return {
        **touchpoint_summary(row),
        "spec": stored_body(row, steps),
        "counts": _counts_view(counts.get(row.id)),
    }
