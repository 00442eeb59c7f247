"""`threadline worker` as a real process: with no HTTP server anywhere, it
wakes a snoozed conversation at its time by itself, and SIGTERM ends it
with exit code 0."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from server.runtime import Runtime
from server.settings import Settings
from server.storage import tables as t
from server.storage.migrate import upgrade_to_head
from tests.support import fetch_one, seed_workspace, snooze

THREADLINE = [sys.executable, "-m", "server"]
SNOOZE = timedelta(seconds=2)
WAKE_TIMEOUT = 60.0  # the process starts, then reads when the job is due at least once a second
STOP_TIMEOUT = 15.0


async def status(runtime: Runtime, cid: int) -> str:
    c = t.conversations.c
    row = await fetch_one(runtime, sa.select(c.status).where(c.id == cid))
    return str(row.status)


async def test_worker_wakes_a_snoozed_conversation_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update(THREADLINE_DATA_DIR=str(data), THREADLINE_LOG_LEVEL="info")
    settings = Settings.from_env(env)
    await upgrade_to_head(settings.database_url, settings.secret_key)
    runtime = Runtime.create(settings)
    log_path = tmp_path / "worker.log"
    try:
        ws = await seed_workspace(runtime)
        await snooze(runtime, ws, ws.conversation_id, runtime.clock.now() + SNOOZE)
        assert await status(runtime, ws.conversation_id) == "snoozed"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [*THREADLINE, "worker", "--no-migrate"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + WAKE_TIMEOUT
            while await status(runtime, ws.conversation_id) != "open":
                assert proc.poll() is None, f"worker exited: {log_path.read_text()}"
                assert time.monotonic() < deadline, f"not woken: {log_path.read_text()}"
                await asyncio.sleep(0.1)  # polling interval of a condition wait
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, STOP_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        await runtime.close()
    output = log_path.read_text()
    assert code == 0, output
    assert "running workers:" in output and "SMTP listener" not in output
