"""REST: promo code pools and redemptions (TOUCHPOINTS.md, "one code per
decision"). Admins create pools and fill them (a CSV, one code a line, or
generated: prefix + random characters without look-alikes); every agent
sees the pools with their free / issued / redeemed counts.

A redemption is the shop's backend saying a code was used, with any
agent's API token: `POST /promo_codes/{code}/redeem`, or `POST
/promo_codes/redeem` with the code in the body (for a code that isn't
URL-safe: a file the shop uploaded may hold any characters). A code
redeemed already is a 409, an unknown one a 404.
"""

from __future__ import annotations

from typing import ClassVar

from server.actions.context import perform
from server.actions.promo_codes import (
    MAX_LOW_STOCK,
    MAX_POOL_NAME,
    MAX_VALID_DAYS,
    GenerateCodes,
    do_add_promo_codes,
    do_create_promo_pool,
    do_redeem_promo_code,
)
from server.domain.json_types import JsonValue
from server.domain.promo_codes import MAX_CODE_LENGTH, MAX_CODES, MAX_LENGTH, MAX_PREFIX, MIN_LENGTH
from server.http.api import Call, Endpoint
from server.queries.promo_codes import list_promo_pools, promo_pool_detail
from server.queries.reading import read
from server.wire.records import UNSET, Nested, Unset, arg, record
from server.wire.schema import Id, Int, Nullable, Str

# What fits a JSON body (THREADLINE_MAX_BODY_BYTES, 1 MiB by default):
# about 80k codes of 12 characters a call; more are uploaded in parts or
# generated.
MAX_CSV = 1_000_000


@record
class NewPromoPool:
    name: str = arg(Str(max_length=MAX_POOL_NAME, min_length=1))
    valid_days: int | None = arg(
        Nullable(Int(minimum=1, maximum=MAX_VALID_DAYS, description="days from the send")),
        default=None,
    )
    low_stock: int = arg(
        Int(minimum=0, maximum=MAX_LOW_STOCK, description="warn at this many free codes"),
        default=100,
    )


@record
class Generate:
    DOC: ClassVar[str] = "prefix + `length` random characters without look-alikes"

    prefix: str | Unset = arg(Str(max_length=MAX_PREFIX, description="A-Z, 0-9, -"), default=UNSET)
    count: int | Unset = arg(
        Int(minimum=1, maximum=MAX_CODES, description="default 100"), default=UNSET
    )
    length: int | Unset = arg(
        Int(minimum=MIN_LENGTH, maximum=MAX_LENGTH, description="default 10"), default=UNSET
    )


@record
class NewCodes:
    csv: str | None = arg(
        Str(max_length=MAX_CSV, strip=False, description="one code a line (a header is skipped)"),
        default=None,
    )
    generate: Generate | None = arg(Nested(Generate), default=None)


@record
class Redemption:
    code: str = arg(Str(max_length=MAX_CODE_LENGTH, min_length=1))
    contact_id: int | None = arg(Nullable(Id), default=None)
    order_id: str | None = arg(
        Nullable(Str(max_length=200, description="the shop's order (not stored)")), default=None
    )


@record
class PathRedemption:
    contact_id: int | None = arg(Nullable(Id), default=None)
    order_id: str | None = arg(
        Nullable(Str(max_length=200, description="the shop's order (not stored)")), default=None
    )


async def list_pools(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, list_promo_pools, call.actor)


async def create_pool(call: Call[NewPromoPool, None]) -> JsonValue:
    b = call.body
    pool_id = await perform(
        call.runtime,
        call.actor,
        do_create_promo_pool,
        name=b.name,
        valid_days=b.valid_days,
        low_stock=b.low_stock,
    )
    return await read(call.runtime, promo_pool_detail, call.actor, pool_id)


def _generate(sent: Generate) -> GenerateCodes:
    return GenerateCodes(
        prefix="" if isinstance(sent.prefix, Unset) else sent.prefix,
        count=100 if isinstance(sent.count, Unset) else sent.count,
        length=10 if isinstance(sent.length, Unset) else sent.length,
    )


async def add_codes(call: Call[NewCodes, None]) -> JsonValue:
    b = call.body
    added = await perform(
        call.runtime,
        call.actor,
        do_add_promo_codes,
        pool_id=call.path["pool_id"],
        csv=b.csv,
        generate=None if b.generate is None else _generate(b.generate),
    )
    return {"added": added.added, "free": added.free}


async def redeem_code(call: Call[Redemption, None]) -> JsonValue:
    return await _redeem(call, call.body.code, call.body.contact_id)


async def redeem_code_at(call: Call[PathRedemption, None]) -> JsonValue:
    return await _redeem(call, call.path_text["code"], call.body.contact_id)


async def _redeem(call: Call[object, None], code: str, contact_id: int | None) -> JsonValue:
    # `order_id` is taken for the shop's records; no column holds it.
    redeemed = await perform(
        call.runtime, call.actor, do_redeem_promo_code, code=code, contact_id=contact_id
    )
    return {"code": redeemed.code, "state": "redeemed", "decision_id": redeemed.decision_id}


TAG = "promo codes"

ENDPOINTS = [
    Endpoint(
        "GET",
        "/promo_pools",
        list_pools,
        "Promo code pools with their free, issued and redeemed counts",
        TAG,
    ),
    Endpoint(
        "POST",
        "/promo_pools",
        create_pool,
        "Create a pool of single-use promo codes (admins)",
        TAG,
        body=NewPromoPool,
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "POST",
        "/promo_pools/{pool_id}/codes",
        add_codes,
        "Upload codes (CSV) or generate them into a pool; codes held already are skipped (admins)",
        TAG,
        body=NewCodes,
    ),
    Endpoint(
        "POST",
        "/promo_codes/redeem",
        redeem_code,
        "Record that a promo code was used (the shop's backend); 409 when used already",
        TAG,
        body=Redemption,
    ),
    Endpoint(
        "POST",
        "/promo_codes/{code}/redeem",
        redeem_code_at,
        "Record that the promo code in the path was used; 409 when used already",
        TAG,
        body=PathRedemption,
        text_params=("code",),
    ),
]
