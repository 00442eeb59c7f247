"""What the touchpoint planner (server.actions.touch_planning) reads: the
touchpoint a job is about (locked, so a status change waits for the
page), a job's key, who entered a segment since a time, and a page of
contacts that carry a date attribute."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.json_types import JsonValue
from server.queries.records import Segment, Touchpoint, load_or_none
from server.storage import tables as t


async def touchpoint_for_planning(conn: AsyncConnection, touchpoint_id: int) -> Touchpoint | None:
    """The touchpoint, locked for the rest of the job's transaction: a
    pause committed meanwhile is seen by the next page, never half-way
    through one."""
    tp = t.touchpoints.c
    row = (
        await conn.execute(sa.select(t.touchpoints).where(tp.id == touchpoint_id).with_for_update())
    ).first()
    return load_or_none(Touchpoint, row)


async def planning_segment(
    conn: AsyncConnection, workspace_id: int, segment_id: int
) -> Segment | None:
    s = t.segments.c
    row = (
        await conn.execute(
            sa.select(t.segments).where(s.id == segment_id, s.workspace_id == workspace_id)
        )
    ).first()
    return load_or_none(Segment, row)


async def job_key(conn: AsyncConnection, job_id: int) -> str:
    """The key of a claimed job (a claim hands out the id, the key says
    which page or round it is)."""
    j = t.scheduled_jobs.c
    key: str = (await conn.execute(sa.select(j.key).where(j.id == job_id))).scalar_one()
    return key


async def segment_entries_since(
    conn: AsyncConnection, segment_id: int, since: datetime, *, after_id: int, limit: int
) -> list[tuple[int, datetime]]:
    """(contact id, entered at) of the next `limit` members of `segment_id`
    above `after_id` that entered at or after `since`, whoever refreshed
    the segment: two touchpoints on one segment both see an entry that
    only one refresh found."""
    m = t.segment_members.c
    rows = await conn.execute(
        sa.select(m.contact_id, m.entered_at)
        .where(m.segment_id == segment_id, m.entered_at >= since, m.contact_id > after_id)
        .order_by(m.contact_id)
        .limit(limit)
    )
    return [(row.contact_id, row.entered_at) for row in rows]


def _attribute_present(conn: AsyncConnection, attribute: str) -> sa.ColumnElement[bool]:
    """SQL that narrows the page to contacts with `attribute` set, on both
    databases; a name the JSON path syntax could not spell narrows nothing
    (the caller checks each value anyway)."""
    column = t.contacts.c.attributes
    if '"' in attribute or "\\" in attribute:
        return sa.true()
    if conn.dialect.name == "sqlite":
        path = sa.literal(f'$."{attribute}"', sa.String)
        return sa.func.json_type(column, path, type_=sa.String) == "text"
    return sa.func.jsonb_typeof(column[attribute], type_=sa.String) == "string"


async def contacts_with_attribute(
    conn: AsyncConnection, workspace_id: int, attribute: str, after_id: int, limit: int
) -> list[tuple[int, JsonValue]]:
    """The next `limit` (contact id, value of `attribute`) of the
    workspace's contacts that have it, above `after_id` in id order;
    merged-away contacts are left out."""
    c = t.contacts.c
    rows = await conn.execute(
        sa.select(c.id, c.attributes)
        .where(
            c.workspace_id == workspace_id,
            c.merged_into_id.is_(None),
            c.id > after_id,
            _attribute_present(conn, attribute),
        )
        .order_by(c.id)
        .limit(limit)
    )
    return [(row.id, (row.attributes or {}).get(attribute)) for row in rows]


async def last_job_key(
    conn: AsyncConnection, kind: str, subject_id: int, prefix: str
) -> str | None:
    """The key of the newest job of `kind` for `subject_id` whose key
    starts with `prefix`: the page a paused broadcast stopped at."""
    j = t.scheduled_jobs.c
    key: str | None = await conn.scalar(
        sa.select(j.key)
        .where(
            j.kind == kind,
            j.subject_id == subject_id,
            j.key.startswith(prefix, autoescape=True),
        )
        .order_by(j.id.desc())
        .limit(1)
    )
    return key


async def first_step_delay(conn: AsyncConnection, row: Touchpoint) -> JsonValue:
    """The stored delay of step 0 of the touchpoint's current version
    (None if it has no steps)."""
    s = t.touchpoint_steps.c
    delay: JsonValue = await conn.scalar(
        sa.select(s.delay).where(
            s.touchpoint_id == row.id, s.version == row.version, s.position == 0
        )
    )
    return delay
