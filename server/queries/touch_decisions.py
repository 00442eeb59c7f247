"""When the next touchpoint decision is due (the decision runner sleeps
until then, server.workers.touch_decisions): a read, so an idle server
never opens a write transaction to find nothing."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.touchpoints import PENDING, TouchStatus
from server.storage import tables as t


async def next_decision_due(conn: AsyncConnection) -> datetime | None:
    """The earliest `run_at` of a pending decision whose touchpoint is not
    paused (maybe in the past), or None when nothing is pending. Paused
    touchpoints' decisions are left out, or a paused touchpoint with a
    due decision would keep the runner awake."""
    d, tp = t.decisions.c, t.touchpoints.c
    due: datetime | None = await conn.scalar(
        sa.select(sa.func.min(d.run_at))
        .select_from(t.decisions.join(t.touchpoints, tp.id == d.touchpoint_id))
        .where(d.state.in_([s.value for s in PENDING]), tp.status != TouchStatus.PAUSED.value)
    )
    return due
