"""The pruning worker: periodic upkeep, pruning the event log past its
retention and idempotency keys past the time they are kept. Every step is
an action, so several processes doing it at once only repeat harmless
work."""

from __future__ import annotations

import asyncio
import contextlib
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


class Pruning:
    """Prune once at start, then every `PRUNE_EVERY`, until stopped."""

    name = "pruning"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.prune()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PRUNE_EVERY.total_seconds())

    async def prune(self) -> None:
        """One round; a failed step is logged and the next round tries again."""
        try:
            deleted = await prune_event_log(self.runtime)
            if deleted:
                log.info("pruned %d events past the retention", deleted)
        except Exception:
            log.exception("pruning the event log failed; will retry")
        try:
            await prune_idempotency_keys(self.runtime)
        except Exception:
            log.exception("pruning idempotency keys failed; will retry")
