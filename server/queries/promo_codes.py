"""Reading promo code pools: each with how many codes are free (never
issued), issued (reserved for a decision, sent or about to be) and
redeemed, counted in one grouped read over the pool index."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.domain.json_types import JsonValue
from server.queries.api_shapes import iso
from server.queries.records import PromoPool, load
from server.storage import tables as t

STATES = ("free", "issued", "redeemed")


async def access_promo_pool(
    conn: AsyncConnection, actor: Actor, pool_id: int, *, for_update: bool = False
) -> PromoPool:
    p = t.promo_pools.c
    stmt = sa.select(t.promo_pools).where(p.id == pool_id, p.workspace_id == actor.workspace_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("promo pool not found", field="pool_id")
    return load(PromoPool, row)


async def code_counts(conn: AsyncConnection, pool_ids: list[int]) -> dict[int, dict[str, int]]:
    """Codes per state for each pool (every state present, 0 when none)."""
    out = {pool_id: dict.fromkeys(STATES, 0) for pool_id in pool_ids}
    if not pool_ids:
        return out
    c = t.promo_codes.c
    rows = await conn.execute(
        sa.select(c.pool_id, c.state, sa.func.count())
        .where(c.pool_id.in_(pool_ids))
        .group_by(c.pool_id, c.state)
    )
    for pool_id, state, count in rows:
        if state in out[pool_id]:
            out[pool_id][state] = int(count)
    return out


def promo_pool_view(pool: PromoPool, counts: dict[str, int]) -> dict[str, JsonValue]:
    return {
        "id": pool.id,
        "name": pool.name,
        "valid_days": pool.valid_days,
        "low_stock": pool.low_stock,
        "free": counts["free"],
        "issued": counts["issued"],
        "redeemed": counts["redeemed"],
        "created_at": iso(pool.created_at),
    }


async def list_promo_pools(conn: AsyncConnection, actor: Actor) -> dict[str, JsonValue]:
    """Every pool of the workspace by name (a workspace has a handful)."""
    p = t.promo_pools.c
    pools = [
        load(PromoPool, r)
        for r in await conn.execute(
            sa.select(t.promo_pools)
            .where(p.workspace_id == actor.workspace_id)
            .order_by(p.name, p.id)
        )
    ]
    counts = await code_counts(conn, [pool.id for pool in pools])
    return {"pools": [promo_pool_view(pool, counts[pool.id]) for pool in pools]}


async def promo_pool_detail(
    conn: AsyncConnection, actor: Actor, pool_id: int
) -> dict[str, JsonValue]:
    pool = await access_promo_pool(conn, actor, pool_id)
    return promo_pool_view(pool, (await code_counts(conn, [pool.id]))[pool.id])


async def free_codes(conn: AsyncConnection, pool_id: int) -> int:
    c = t.promo_codes.c
    count = await conn.scalar(
        sa.select(sa.func.count()).where(c.pool_id == pool_id, c.state == "free")
    )
    return int(count or 0)
