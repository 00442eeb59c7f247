"""API tokens: `Authorization: Bearer <token>`, for scripts and bots.

A bearer token is never sent by a browser on its own, so a request that
carries one needs neither a CSRF token nor an allowed Origin.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from starlette.requests import HTTPConnection

from server.actions.context import perform
from server.actions.tokens import do_record_token_use
from server.domain.actors import Actor
from server.domain.errors import Unauthenticated
from server.queries.auth import actor_for_api_token
from server.queries.reading import read
from server.runtime import Runtime

TOKEN_USE_RESOLUTION = timedelta(minutes=1)


async def _record_token_use(conn: HTTPConnection, runtime: Runtime, actor: Actor) -> None:
    """Keep `last_used_at` current to the minute without a write per request:
    this process remembers when it last stamped each token."""
    assert actor.token_id is not None
    stamps: dict[int, datetime] = conn.app.state.token_use_stamps
    now = runtime.clock.now()
    last = stamps.get(actor.token_id)
    if last is not None and now - last < TOKEN_USE_RESOLUTION:
        return
    if len(stamps) > 100_000:
        stamps.clear()
    stamps[actor.token_id] = now
    await perform(runtime, actor, do_record_token_use, token_id=actor.token_id)


async def token_actor(conn: HTTPConnection, runtime: Runtime, authorization: str) -> Actor:
    """The Actor of the `Authorization` header's token; Unauthenticated
    for a malformed, unknown or revoked one."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
        raise Unauthenticated("Authorization must be 'Bearer <token>'", field="Authorization")
    actor = await read(runtime, actor_for_api_token, token.strip())
    if actor is None:
        raise Unauthenticated("invalid or revoked token", field="Authorization")
    await _record_token_use(conn, runtime, actor)
    return actor
