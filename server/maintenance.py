"""Periodic upkeep run inside `threadline serve`: pruning the event log past
its retention, and idempotency keys past the time they are kept. Every step is an action, so several processes doing it at
once only repeat harmless work."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from server.actions.context import perform
from server.actions.idempotency import KEEP_FOR, do_prune_idempotency_keys
from server.actions.retention import PRUNE_BATCH, do_prune_events
from server.domain.actors import system_actor
from server.queries.events import workspace_ids
from server.queries.reading import read
from server.runtime import Runtime

log = logging.getLogger(__name__)

PRUNE_EVERY = timedelta(hours=1)


async def prune_event_log(runtime: Runtime, *, batch: int = PRUNE_BATCH) -> int:
    """Prune every workspace's events older than the retention; returns
    how many were deleted."""
    before = runtime.clock.now() - timedelta(days=runtime.settings.event_retention_days)
    total = 0
    for workspace_id in await read(runtime, workspace_ids):
        while True:
            deleted = await perform(
                runtime,
                system_actor(workspace_id),
                do_prune_events,
                workspace_id=workspace_id,
                before=before,
            )
            total += deleted
            if deleted < batch:
                break
    return total


async def prune_idempotency_keys(runtime: Runtime) -> int:
    """Forget idempotency keys older than they are honoured for."""
    before = runtime.clock.now() - KEEP_FOR
    return await perform(runtime, system_actor(0), do_prune_idempotency_keys, before=before)


async def run_maintenance(runtime: Runtime) -> None:
    while True:
        try:
            deleted = await prune_event_log(runtime)
            if deleted:
                log.info("pruned %d events past the retention", deleted)
        except Exception:
            log.exception("pruning the event log failed; will retry")
        try:
            await prune_idempotency_keys(runtime)
        except Exception:
            log.exception("pruning idempotency keys failed; will retry")
        await asyncio.sleep(PRUNE_EVERY.total_seconds())
