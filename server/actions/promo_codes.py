"""Promo code pools (TOUCHPOINTS.md, "one code per decision"): creating a
pool, filling it from a CSV upload or with generated codes, and recording
a redemption.

A code is UNIQUE in its workspace: adding one already there (in any
pool) adds nothing, by `INSERT … ON CONFLICT DO NOTHING` in batches, so a
re-uploaded file or two overlapping ones never make a code twice and
100k codes go in in a few statements. Generated codes are drawn with
`secrets.randbelow` (server.domain.promo_codes.generate_codes); a
collision with an existing code is drawn again, so `count` are added.

Redeeming is the goal of the decision that issued the code: its episode
ends with state `goal` when still active. A tracked `order_placed` whose
properties carry `promo_code` redeems it too (`redeem_tracked_code`,
called where tracked events are recorded).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from server.actions.context import ActionContext
from server.actions.touch_episodes import end_episode
from server.domain.errors import Conflict, InvalidInput, NotFound
from server.domain.events import PromoCodeRedeemed, PromoCodesAdded, PromoPoolCreated
from server.domain.json_types import JsonValue
from server.domain.promo_codes import (
    MAX_CODE_LENGTH,
    generate_codes,
    normalize_code,
    parse_code_csv,
)
from server.domain.touchpoints import EpisodeState
from server.queries.access import require_admin
from server.queries.promo_codes import access_promo_pool, free_codes
from server.queries.records import PromoCode, load
from server.storage import tables as t

# Rows per INSERT: well under SQLite's 32766 bound variables (5 per row).
BATCH = 2000
# Draws of a generated batch before giving up on filling it: each one
# only happens when a drawn code was taken, which a sane length makes rare.
MAX_DRAWS = 5
MAX_POOL_NAME = 200
MAX_VALID_DAYS = 3650
MAX_LOW_STOCK = 1_000_000
REDEEMED_GOAL = "promo code redeemed"
TRACKED_ORDER = "order_placed"


@dataclasses.dataclass(frozen=True)
class GenerateCodes:
    prefix: str
    count: int
    length: int


@dataclasses.dataclass(frozen=True)
class AddedCodes:
    added: int
    free: int


@dataclasses.dataclass(frozen=True)
class Redeemed:
    code: str
    decision_id: int | None


async def do_create_promo_pool(
    ctx: ActionContext, *, name: str, valid_days: int | None, low_stock: int
) -> int:
    require_admin(ctx.actor)
    name = name.strip()
    if not name or len(name) > MAX_POOL_NAME:
        raise InvalidInput(f"name: 1 to {MAX_POOL_NAME} characters", field="name")
    if valid_days is not None and not 1 <= valid_days <= MAX_VALID_DAYS:
        raise InvalidInput(f"valid_days: from 1 to {MAX_VALID_DAYS}", field="valid_days")
    if not 0 <= low_stock <= MAX_LOW_STOCK:
        raise InvalidInput(f"low_stock: from 0 to {MAX_LOW_STOCK}", field="low_stock")
    p = t.promo_pools.c
    taken = await ctx.conn.scalar(
        sa.select(p.id).where(p.workspace_id == ctx.actor.workspace_id, p.name == name)
    )
    if taken is not None:
        raise Conflict(f"name: a pool named {name!r} exists already", field="name")
    pool_id: int = (
        await ctx.conn.execute(
            t.promo_pools.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                name=name,
                valid_days=valid_days,
                low_stock=low_stock,
                created_at=ctx.now,
            )
            .returning(p.id)
        )
    ).scalar_one()
    await ctx.emit(
        PromoPoolCreated(workspace_id=ctx.actor.workspace_id, pool_id=pool_id, name=name)
    )
    return pool_id


def _insert_new(dialect: str) -> Any:
    """An INSERT into promo_codes that skips codes the workspace holds."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(t.promo_codes).on_conflict_do_nothing(index_elements=["workspace_id", "code"])


async def _pool_size(ctx: ActionContext, pool_id: int) -> int:
    c = t.promo_codes.c
    return int(await ctx.conn.scalar(sa.select(sa.func.count()).where(c.pool_id == pool_id)) or 0)


async def _insert_codes(ctx: ActionContext, pool_id: int, codes: Sequence[str]) -> None:
    stmt = _insert_new(ctx.conn.dialect.name)
    for start in range(0, len(codes), BATCH):
        await ctx.conn.execute(
            stmt,
            [
                {
                    "workspace_id": ctx.actor.workspace_id,
                    "pool_id": pool_id,
                    "code": code,
                    "state": "free",
                }
                for code in codes[start : start + BATCH]
            ],
        )


def _draw(generate: GenerateCodes, count: int) -> list[str]:
    try:
        return generate_codes(
            generate.prefix, count, length=generate.length, randbelow=secrets.randbelow
        )
    except InvalidInput as exc:
        # The domain names the setting; the request has it under `generate`.
        field = f"generate.{exc.field}"
        raise InvalidInput(f"generate.{exc}", field=field) from None


async def do_add_promo_codes(
    ctx: ActionContext,
    *,
    pool_id: int,
    csv: str | None = None,
    generate: GenerateCodes | None = None,
) -> AddedCodes:
    """Codes from `csv` (one a line; a bad line is a 422 naming it) or
    `generate`d, into the pool; codes the workspace holds already are
    skipped. `added` counts the new ones."""
    require_admin(ctx.actor)
    if (csv is None) == (generate is None):
        raise InvalidInput("body: send either csv or generate", field="body")
    # Locked: two uploads into one pool count their own additions.
    await access_promo_pool(ctx.conn, ctx.actor, pool_id, for_update=True)
    before = await _pool_size(ctx, pool_id)
    if csv is not None:
        await _insert_codes(ctx, pool_id, parse_code_csv(csv, "csv"))
    else:
        assert generate is not None
        for _ in range(MAX_DRAWS):
            wanted = generate.count - (await _pool_size(ctx, pool_id) - before)
            if wanted <= 0:
                break
            await _insert_codes(ctx, pool_id, _draw(generate, wanted))
    added = await _pool_size(ctx, pool_id) - before
    free = await free_codes(ctx.conn, pool_id)
    await ctx.emit(
        PromoCodesAdded(
            workspace_id=ctx.actor.workspace_id, pool_id=pool_id, added=added, free=free
        )
    )
    return AddedCodes(added=added, free=free)


async def _end_goal_episode(ctx: ActionContext, decision_id: int) -> None:
    """The issuing decision reached its goal: its episode ends `goal` if
    still active (its pending steps are cancelled with the same reason)."""
    episode_id = await ctx.conn.scalar(
        sa.select(t.decisions.c.episode_id).where(t.decisions.c.id == decision_id)
    )
    if episode_id is not None:
        await end_episode(ctx, episode_id=episode_id, state=EpisodeState.GOAL, reason=REDEEMED_GOAL)


async def _redeem(ctx: ActionContext, row: PromoCode, contact_id: int | None) -> Redeemed:
    c = t.promo_codes.c
    contact = contact_id if contact_id is not None else row.contact_id
    await ctx.conn.execute(
        t.promo_codes.update()
        .where(c.id == row.id)
        .values(state="redeemed", redeemed_at=ctx.now, contact_id=contact)
    )
    await ctx.emit(
        PromoCodeRedeemed(
            workspace_id=ctx.actor.workspace_id,
            code_id=row.id,
            pool_id=row.pool_id,
            contact_id=contact,
            decision_id=row.decision_id,
        )
    )
    if row.decision_id is not None:
        await _end_goal_episode(ctx, row.decision_id)
    return Redeemed(code=row.code, decision_id=row.decision_id)


async def _code_row(ctx: ActionContext, code: str) -> PromoCode | None:
    c = t.promo_codes.c
    found = (
        await ctx.conn.execute(
            sa.select(t.promo_codes)
            .where(c.workspace_id == ctx.actor.workspace_id, c.code == code)
            .with_for_update()
        )
    ).first()
    return None if found is None else load(PromoCode, found)


async def _contact_in_workspace(ctx: ActionContext, contact_id: int) -> None:
    k = t.contacts.c
    found = await ctx.conn.scalar(
        sa.select(k.id).where(k.id == contact_id, k.workspace_id == ctx.actor.workspace_id)
    )
    if found is None:
        raise NotFound("contact not found", field="contact_id")


async def do_redeem_promo_code(
    ctx: ActionContext,
    *,
    code: str,
    contact_id: int | None = None,
) -> Redeemed:
    """The shop says `code` was used (case and spacing as the customer
    typed it): free or issued → redeemed. Unknown: NotFound; redeemed
    already or void: Conflict."""
    normalized = normalize_code(code)[:MAX_CODE_LENGTH]
    if contact_id is not None:
        await _contact_in_workspace(ctx, contact_id)
    row = await _code_row(ctx, normalized)
    if row is None:
        raise NotFound("promo code not found", field="code")
    if row.state == "redeemed":
        raise Conflict("code: redeemed already", field="code")
    if row.state not in ("free", "issued"):
        raise Conflict(f"code: {row.state}, not redeemable", field="code")
    return await _redeem(ctx, row, contact_id)


async def redeem_tracked_code(
    ctx: ActionContext, *, contact_id: int, name: str, properties: dict[str, JsonValue]
) -> Redeemed | None:
    """A tracked `order_placed` carrying `promo_code` redeems it. Called
    in the event's own transaction; a code that is unknown, malformed or
    used already changes nothing (the order is recorded all the same)."""
    raw = properties.get("promo_code")
    if name != TRACKED_ORDER or not isinstance(raw, str):
        return None
    row = await _code_row(ctx, normalize_code(raw)[:MAX_CODE_LENGTH])
    if row is None or row.state not in ("free", "issued"):
        return None
    return await _redeem(ctx, row, contact_id)
