"""Two `threadline worker` processes on one PostgreSQL database drain the
same due touch decisions and the mail they queue (issue: the durable
scheduler, "two worker processes claiming the same due rows"): every
decision is claimed once, every mail reaches the SMTP server once, and
each decision has one ledger row and one `decision.sent`.

The rows are written while both workers run, so both find them due at
once. Each worker has its own data directory; they share the database
and the secret key, as a deployment's worker processes do."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.runtime import Runtime
from server.storage import tables as t
from tests.multiprocess.conftest import REPO_ROOT, THREADLINE
from tests.services.postgres import PostgresServer
from tests.services.smtp import SmtpSink
from tests.support import fetch_all, make_runtime, seed_workspace
from tests.touchpoints.claim_support import contact, mail_inbox, make_touchpoint, start

DECISIONS = 240
DRAIN_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as running:
        yield running


def _worker(name: str, env: dict[str, str], root: Path) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = root / f"worker-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*THREADLINE, "worker", "--no-migrate"],
            env={**env, "THREADLINE_DATA_DIR": str(root / f"data-{name}")},
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, log_path


async def _states(runtime: Runtime) -> Counter[str]:
    rows = await fetch_all(runtime, sa.select(t.decisions.c.state))
    return Counter(row.state for row in rows)


async def test_two_worker_processes_send_each_due_touch_once(
    pg_server: PostgresServer, migrated_pg_template: str, sink: SmtpSink, tmp_path: Path
) -> None:
    database_url = await pg_server.create_database(template=migrated_pg_template)
    key = secrets.token_urlsafe(48)
    runtime = make_runtime(database_url, tmp_path / "setup", THREADLINE_SECRET_KEY=key)
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update(
        THREADLINE_DATABASE_URL=database_url,
        THREADLINE_SECRET_KEY=key,
        THREADLINE_LOG_LEVEL="warning",
    )
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        ws = await seed_workspace(runtime)
        await mail_inbox(runtime, ws, sink)
        # A receipt: neither capped nor held for quiet hours, and never
        # too late, so the workers' real clock sends every one of them.
        tp = await make_touchpoint(runtime, ws, kind="transactional", max_lateness=None)
        contacts = [
            await contact(runtime, ws, f"c{i}@shop.test", name=f"C{i}") for i in range(DECISIONS)
        ]
        workers = [_worker(name, env, tmp_path) for name in ("a", "b")]
        due = datetime.now(UTC) - timedelta(seconds=1)
        for i, contact_id in enumerate(contacts):
            await start(runtime, tp, contact_id, key=f"receipt:{i}", due_at=due)

        deadline = time.monotonic() + DRAIN_TIMEOUT
        while (states := await _states(runtime))["sent"] < DECISIONS:
            for process, log_path in workers:
                assert process.poll() is None, f"worker exited: {log_path.read_text()}"
            assert time.monotonic() < deadline, f"{states}; {workers[0][1].read_text()}"
            await asyncio.sleep(0.1)  # polling interval of a condition wait
        assert states == Counter({"sent": DECISIONS})
    finally:
        for process, _ in workers:
            process.terminate()
        for process, log_path in workers:
            try:
                code = process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(f"worker ignored SIGTERM: {log_path.read_text()}") from None
            assert code == 0, f"worker exited with {code}: {log_path.read_text()}"
        await runtime.close()

    recipients = Counter(r for message in sink.received for r in message.rcpt_tos)
    assert recipients == Counter({f"c{i}@shop.test": 1 for i in range(DECISIONS)})
    runtime = make_runtime(database_url, tmp_path / "check", THREADLINE_SECRET_KEY=key)
    try:
        ledger = await fetch_all(runtime, sa.select(t.touch_ledger.c.decision_id))
        assert len(ledger) == len({row.decision_id for row in ledger}) == DECISIONS
        e = t.events.c
        sent = await fetch_all(runtime, sa.select(e.id).where(e.type == "decision.sent"))
        assert len(sent) == DECISIONS
    finally:
        await runtime.close()
