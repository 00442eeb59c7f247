"""Installing a seed touchpoint (server.domain.touch_seeds): one of the
ready templates becomes a draft of the workspace, to edit and switch on.

What the seed needs around it is made in the same transaction: its
segment and its promo pool, by name (the workspace's own of that name is
used when it has one, so installing twice makes no second pool). The
touchpoint's name is made unique ("Abandoned cart (2)") rather than
refused: installing is a click, not a form.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.actions.promo_codes import do_create_promo_pool
from server.actions.segments import do_create_segment
from server.actions.touchpoints import TemplateCheck, do_create_touchpoint
from server.domain.errors import NotFound
from server.domain.touch_seeds import SEEDS, with_ids
from server.domain.touchpoints import MAX_NAME, TouchStatus, parse_touchpoint
from server.queries.access import require_admin
from server.storage import tables as t

MAX_COPIES = 100


async def _named(ctx: ActionContext, table: sa.Table, name: str) -> int | None:
    found: int | None = await ctx.conn.scalar(
        sa.select(table.c.id).where(
            table.c.workspace_id == ctx.actor.workspace_id, table.c.name == name
        )
    )
    return found


async def _free_name(ctx: ActionContext, name: str) -> str:
    """`name`, or the first of "name (2)", "name (3)"... not taken."""
    for n in range(1, MAX_COPIES + 1):
        suffix = "" if n == 1 else f" ({n})"
        candidate = name[: MAX_NAME - len(suffix)] + suffix
        if await _named(ctx, t.touchpoints, candidate) is None:
            return candidate
    return name  # the action refuses it by name, as for any taken name


async def do_install_seed(
    ctx: ActionContext, *, seed_id: str, validate_templates: TemplateCheck | None = None
) -> int:
    """The seed `seed_id` as a new draft touchpoint; its id."""
    require_admin(ctx.actor)
    seed = SEEDS.get(seed_id)
    if seed is None:
        raise NotFound("seed not found", field="seed")
    segment_id = None
    if seed.segment is not None:
        segment_id = await _named(ctx, t.segments, seed.segment.name)
        if segment_id is None:
            segment_id = await do_create_segment(
                ctx, name=seed.segment.name, filter=seed.segment.filter
            )
    pool_id = None
    if seed.pool is not None:
        pool_id = await _named(ctx, t.promo_pools, seed.pool.name)
        if pool_id is None:
            pool_id = await do_create_promo_pool(
                ctx,
                name=seed.pool.name,
                valid_days=seed.pool.valid_days,
                low_stock=seed.pool.low_stock,
            )
    body = with_ids(seed, segment_id=segment_id, promo_pool_id=pool_id)
    body["name"] = await _free_name(ctx, str(body.get("name") or seed.name))
    return await do_create_touchpoint(
        ctx,
        spec=parse_touchpoint(body),
        status=TouchStatus.DRAFT,
        seed=seed.id,
        validate_templates=validate_templates,
    )
