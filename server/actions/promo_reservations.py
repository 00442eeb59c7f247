"""Reserving a promo code for a decision (TOUCHPOINTS.md rule 4; the
lesson from Braze: a failed send must not burn a code, a retry must not
issue a second one).

One code per decision: `promo_codes.decision_id` is UNIQUE, so the code
reserved for a decision is found again by it and a retried claim reuses
it. A free code is taken with FOR UPDATE SKIP LOCKED on PostgreSQL, so two
claims running at once take two different codes without waiting on each
other; on SQLite the one writer serialises them. Redemption and uploads
live in server.actions.promo_codes.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.events import PromoPoolLow
from server.domain.promo_codes import expiry
from server.queries.records import PromoCode, PromoPool, load, load_or_none
from server.storage import tables as t

FREE = "free"
ISSUED = "issued"


async def reserve_code(
    ctx: ActionContext, *, decision_id: int, pool_id: int, contact_id: int
) -> PromoCode | None:
    """The code reserved for `decision_id` (the same one on every retry),
    else a free code of the pool issued to it now with its expiry counted
    from now; None when the pool has no free code left. Emits
    PromoPoolLow when issuing leaves the pool at or below its low-stock
    mark."""
    c = t.promo_codes.c
    held = load_or_none(
        PromoCode,
        (
            await ctx.conn.execute(sa.select(t.promo_codes).where(c.decision_id == decision_id))
        ).first(),
    )
    if held is not None:
        return held
    pool = load_or_none(
        PromoPool,
        (
            await ctx.conn.execute(sa.select(t.promo_pools).where(t.promo_pools.c.id == pool_id))
        ).first(),
    )
    if pool is None:
        return None
    free = (
        await ctx.conn.execute(
            sa.select(t.promo_codes)
            .where(c.pool_id == pool_id, c.state == FREE)
            .order_by(c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    ).first()
    if free is None:
        return None
    row = (
        await ctx.conn.execute(
            t.promo_codes.update()
            .where(c.id == free.id)
            .values(
                state=ISSUED,
                decision_id=decision_id,
                contact_id=contact_id,
                issued_at=ctx.now,
                expires_at=expiry(ctx.now, pool.valid_days),
            )
            .returning(t.promo_codes)
        )
    ).one()
    left = int(
        await ctx.conn.scalar(
            sa.select(sa.func.count()).where(c.pool_id == pool_id, c.state == FREE)
        )
        or 0
    )
    # At the mark and when the last one went: a warning per issue below
    # the mark would only be noise.
    if left in (pool.low_stock, 0):
        await ctx.emit(PromoPoolLow(workspace_id=pool.workspace_id, pool_id=pool.id, free=left))
    return load(PromoCode, row)


async def release_code(ctx: ActionContext, *, decision_id: int) -> None:
    """Give the decision's code back to its pool: the decision failed
    before anything went out (its template would not render)."""
    c = t.promo_codes.c
    await ctx.conn.execute(
        t.promo_codes.update()
        .where(c.decision_id == decision_id, c.state == ISSUED)
        .values(state=FREE, decision_id=None, contact_id=None, issued_at=None, expires_at=None)
    )
