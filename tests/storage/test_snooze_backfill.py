"""Upgrading to the scheduled-jobs revision gives every conversation
snoozed before it its wake-up, the same row a snooze writes now."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic.command import downgrade

from server.clock import FrozenClock
from server.storage import tables as t
from server.storage.migrate import alembic_config, upgrade_to_head
from server.workers.jobs import HANDLERS, JobRunner
from tests.support import T0, fetch_all, make_runtime, seed_workspace, snooze


async def test_conversations_snoozed_before_the_upgrade_wake_after_it(
    migrated_url: str, tmp_path: Path
) -> None:
    until = T0 + timedelta(hours=1)
    runtime = make_runtime(migrated_url, tmp_path / "data")
    try:
        ws = await seed_workspace(runtime)
        await snooze(runtime, ws, ws.conversation_id, until)
        j = t.scheduled_jobs.c
        columns = (j.workspace_id, j.kind, j.subject_id, j.key, j.due_at, j.run_at, j.status)
        written = [tuple(r) for r in await fetch_all(runtime, sa.select(*columns))]
    finally:
        await runtime.close()
    # Back to before the table existed (the snooze stays on the conversation).
    await asyncio.to_thread(downgrade, alembic_config(migrated_url), "0010")
    await upgrade_to_head(migrated_url)

    runtime = make_runtime(migrated_url, tmp_path / "data")
    try:
        assert [tuple(r) for r in await fetch_all(runtime, sa.select(*columns))] == written
        assert isinstance(runtime.clock, FrozenClock)
        runtime.clock.advance(hours=1)
        assert await JobRunner(runtime, HANDLERS).run_due() == 1
    finally:
        await runtime.close()
