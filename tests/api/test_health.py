"""/healthz (liveness) and /readyz (readiness: database, schema revision,
bus) against real databases and a real Redis (server.http.health)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic.command import upgrade

from server.bus.redis import RedisBus
from server.runtime import Runtime
from server.storage.migrate import alembic_config, head_revision
from tests.services.redis import RedisServer, free_port
from tests.support import client, make_runtime


async def ready(runtime: Runtime) -> httpx.Response:
    async with client(runtime) as c:
        res = await c.get("/readyz")
    assert res.headers["cache-control"] == "no-store"
    return res


async def test_a_migrated_database_is_ready(runtime: Runtime) -> None:
    res = await ready(runtime)
    assert res.status_code == 200, res.text
    assert res.json() == {
        "status": "ready",
        "checks": {
            "database": {"status": "ok"},
            "migrations": {"status": "ok", "current": head_revision(), "head": head_revision()},
            "bus": {"status": "ok"},
        },
    }
    async with client(runtime) as c:
        live = await c.get("/healthz")
    assert live.status_code == 200 and live.json() == {"status": "ok"}


async def test_a_database_behind_the_code_is_not_ready(database_url: str, tmp_path: Path) -> None:
    rt = make_runtime(database_url, tmp_path / "data")
    try:
        # Never migrated at all.
        res = await ready(rt)
        assert res.status_code == 503, res.text
        assert res.json()["checks"]["database"] == {"status": "ok"}
        assert res.json()["checks"]["migrations"]["current"] is None
        # At an older revision.
        await asyncio.to_thread(upgrade, alembic_config(database_url), "0007")
        res = await ready(rt)
        assert res.status_code == 503, res.text
        body = res.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["migrations"] == {
            "status": "fail",
            "current": "0007",
            "head": head_revision(),
        }
        assert head_revision() != "0007"
    finally:
        await rt.close()


async def test_an_unreachable_database_is_not_ready_but_the_process_is_alive(
    tmp_path: Path,
) -> None:
    # A PostgreSQL address nobody listens on.
    url = f"postgresql+asyncpg://threadline:secret@127.0.0.1:{free_port()}/threadline"
    rt = make_runtime(url, tmp_path / "data")
    try:
        res = await ready(rt)
        assert res.status_code == 503, res.text
        checks = res.json()["checks"]
        assert checks["database"]["status"] == "fail"
        assert checks["migrations"] == {"status": "unknown"}
        assert checks["bus"] == {"status": "ok"}
        async with client(rt) as c:
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await rt.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with RedisServer.start() as server:
        yield server


async def test_redis_down_degrades_without_failing_readiness(
    migrated_url: str, tmp_path: Path, own_redis: RedisServer
) -> None:
    rt = make_runtime(migrated_url, tmp_path / "data")
    await rt.bus.close()
    rt.bus = RedisBus(own_redis.url, timeout=1.0)
    try:
        res = await ready(rt)
        assert res.status_code == 200 and res.json()["checks"]["bus"] == {"status": "ok"}
        own_redis.stop()
        res = await ready(rt)
        assert res.status_code == 200, res.text
        assert res.json()["status"] == "ready"
        assert res.json()["checks"]["bus"]["status"] == "degraded"
    finally:
        await rt.close()
