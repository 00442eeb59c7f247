"""Liveness and readiness for process supervisors and load balancers.

`/healthz` (liveness) says the process is serving requests; it touches no
dependency, on purpose: a database outage must not get every process
restarted. It answers 503 once the app is shutting down.

`/readyz` (readiness) says whether this process can do its work: the
database answers, its schema is at the revision this code needs (a process
started against an older schema must not take traffic), and the bus is
reachable. A bus that is down is reported `degraded` without failing
readiness: Redis is only a fast path (PROTOCOLS.md P1), writes still
succeed and live clients catch up from the database.

Both are unauthenticated, so an error is reported by its kind only (the
detail, which may name hosts, goes to the log).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from server.domain.json_types import JsonObject
from server.queries.health import schema_state
from server.queries.reading import read
from server.runtime import Runtime

log = logging.getLogger(__name__)

# Longest a readiness check waits on one dependency.
CHECK_TIMEOUT = 3.0
_NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> JSONResponse:
    if getattr(request.app.state, "stopping", False):
        return JSONResponse({"status": "stopping"}, status_code=503, headers=_NO_STORE)
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


async def _database(runtime: Runtime) -> tuple[JsonObject, JsonObject]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            state = await read(runtime, schema_state)
    except Exception as exc:
        log.warning("readiness: the database did not answer: %r", exc)
        failed = {"status": "fail", "error": type(exc).__name__}
        return failed, {"status": "unknown"}
    migrations = {
        "status": "ok" if state.at_head else "fail",
        "current": state.current,
        "head": state.head,
    }
    return {"status": "ok"}, migrations


async def _bus(runtime: Runtime) -> JsonObject:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await runtime.bus.ping()
    except Exception as exc:
        log.warning("readiness: the bus did not answer: %r", exc)
        return {"status": "degraded", "error": type(exc).__name__}
    return {"status": "ok"}


async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    (database, migrations), bus = await asyncio.gather(_database(runtime), _bus(runtime))
    ready = database["status"] == "ok" and migrations["status"] == "ok"
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {"database": database, "migrations": migrations, "bus": bus},
    }
    return JSONResponse(body, status_code=200 if ready else 503, headers=_NO_STORE)
