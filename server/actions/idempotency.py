"""Idempotency keys on creates (PROTOCOLS.md P1): the same key from the same
agent on the same route creates one object, and a repeat answers what the
first request answered.

The transport opens a `Claim` for the request (`claiming`); the first write
the request makes (`perform`) takes it and, in that write's transaction,
either finds the key already used — a replay, `Replayed`, or a `Conflict`
when the request differs — or inserts the key's row. The row thus commits
exactly when the create does, and two concurrent requests with one key meet
at the UNIQUE constraint: the loser's insert fails, `perform` runs it again
and it finds the winner's row. After the commit the transport stores the
answer on the row (`do_record_answer`); until then a repeat is told the
first request is still in progress (a 409). Should the process die in
between, repeats keep getting that 409 until the key expires: never a
second object, which is the promise.

Fields of an answer that are shown only once (a new API token, a widget
inbox's secret) are stored as null: a replay never shows a secret again.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from server.domain.errors import Conflict, DomainError
from server.domain.json_types import JsonValue
from server.queries.records import IdempotencyKey, load_or_none
from server.storage import tables as t

if TYPE_CHECKING:
    # hashlib names the type of its hash objects only in its stubs.
    from _hashlib import HASH

    # Only a type: `perform` (server.actions.context) calls into this module.
    from server.actions.context import ActionContext

HEADER = "Idempotency-Key"
# How long a key is remembered; a repeat after that creates again.
KEEP_FOR = timedelta(hours=24)


class Replayed(DomainError):
    """The key was used before with the same request: answer `status` and
    `response`, nothing was written. A DomainError so that a caller which
    undoes its own side effects on a refused action (a stored upload's
    bytes) does so for a replay too."""

    code = "replayed"

    def __init__(self, status: int, response: JsonValue) -> None:
        super().__init__("replayed")
        self.status = status
        self.response = response


@dataclasses.dataclass
class Claim:
    """One request's key, until a write takes it."""

    agent_id: int
    route: str
    key: str
    digest: HASH = dataclasses.field(default_factory=hashlib.sha256)
    taken: bool = False
    row_id: int | None = None

    def add(self, data: bytes) -> None:
        """Make `data` part of what a repeat must match."""
        self.digest.update(hashlib.sha256(data).digest())

    @property
    def fingerprint(self) -> str:
        return self.digest.hexdigest()


_current: contextvars.ContextVar[Claim | None] = contextvars.ContextVar(
    "idempotency_claim", default=None
)


@contextlib.contextmanager
def claiming(claim: Claim) -> Iterator[Claim]:
    """Make `claim` the current request's, for the first write to take."""
    token = _current.set(claim)
    try:
        yield claim
    finally:
        _current.reset(token)


def current_claim() -> Claim | None:
    """The current request's claim, if no write has taken it yet."""
    claim = _current.get()
    return claim if claim is not None and not claim.taken else None


def open_claim(claim: Claim | None) -> Claim | None:
    """Called by `perform` once per request: hands the claim to this write
    (and to its retries), never to a later one."""
    if claim is not None:
        claim.taken = True
    return claim


async def enter_claim(ctx: ActionContext, claim: Claim) -> None:
    """In the write's transaction, before the action: a used key replays
    (or conflicts); a fresh one is recorded."""
    k = t.idempotency_keys.c
    where = (
        k.workspace_id == ctx.actor.workspace_id,
        k.agent_id == claim.agent_id,
        k.route == claim.route,
        k.key == claim.key,
    )
    earlier = load_or_none(
        IdempotencyKey,
        (await ctx.conn.execute(sa.select(t.idempotency_keys).where(*where))).first(),
    )
    if earlier is not None and earlier.created_at > ctx.now - KEEP_FOR:
        if earlier.fingerprint != claim.fingerprint:
            raise Conflict(f"{HEADER}: this key was used for a different request", field=HEADER)
        if earlier.status is None:
            raise Conflict(
                f"{HEADER}: the first request with this key is still in progress", field=HEADER
            )
        raise Replayed(earlier.status, earlier.response)
    if earlier is not None:
        await ctx.conn.execute(t.idempotency_keys.delete().where(k.id == earlier.id))
    claim.row_id = (
        await ctx.conn.execute(
            t.idempotency_keys.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                agent_id=claim.agent_id,
                route=claim.route,
                key=claim.key,
                fingerprint=claim.fingerprint,
                created_at=ctx.now,
            )
            .returning(k.id)
        )
    ).scalar_one()


async def do_record_answer(
    ctx: ActionContext, *, row_id: int, status: int, response: JsonValue
) -> None:
    """Store the answer a repeat of the claimed request gets."""
    k = t.idempotency_keys.c
    await ctx.conn.execute(
        t.idempotency_keys.update()
        .where(k.id == row_id, k.workspace_id == ctx.actor.workspace_id)
        .values(status=status, response=response)
    )


async def do_prune_idempotency_keys(ctx: ActionContext, *, before: datetime) -> int:
    """Forget keys older than `before` (all workspaces); returns how many."""
    result = await ctx.conn.execute(
        t.idempotency_keys.delete().where(t.idempotency_keys.c.created_at < before)
    )
    return int(result.rowcount or 0)
