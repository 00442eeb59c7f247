"""A token's `last_used_at` is kept current to the minute, without a write
per request."""

from __future__ import annotations

import sqlalchemy as sa

from server.clock import FrozenClock
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, token_client


async def stamp(runtime: Runtime) -> object:
    async with runtime.db.read() as conn:
        return await conn.scalar(sa.select(t.api_tokens.c.last_used_at))


async def test_last_used_at_follows_use_at_minute_resolution(
    runtime: Runtime, ws: Workspace
) -> None:
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    async with await token_client(runtime, ws.agent_email) as c:
        assert await stamp(runtime) is None
        assert (await c.get("/api/v1/auth/me")).status_code == 200
        assert await stamp(runtime) == T0
        clock.advance(seconds=30)
        await c.get("/api/v1/auth/me")
        assert await stamp(runtime) == T0  # throttled: no write within the minute
        clock.advance(seconds=31)
        await c.get("/api/v1/auth/me")
        assert await stamp(runtime) == clock.now()
        listed = (await c.get("/api/v1/tokens")).json()["items"]
        assert listed[0]["last_used_at"] == clock.now().isoformat()
