"""B10 (BENCHMARKS.md): follow-ups. N due decisions claimed, guarded
(lateness, consent, reachability, quiet hours, frequency caps counted over
the touch ledger), rendered and sent to a local SMTP sink, on SQLite and
on PostgreSQL.

For each backend, in one run, on one database:

  data        a workspace and an email inbox (through actions), then, in
              bulk (a fixture, not what is measured): N + M contacts with an
              email identity, one live marketing touchpoint (one email step,
              quiet hours that are not now), caps of 3 marketing touches in
              7 days, every tenth contact with an earlier touch in the
              ledger, and N episodes with their first decision due now
  baseline    a plain claim loop on the same rows: `UPDATE decisions SET
              state = … WHERE id IN (SELECT … due … ORDER BY run_at, id
              LIMIT 100 [FOR UPDATE SKIP LOCKED]) RETURNING id`, one
              transaction per batch, until none are due; rows/s. The rows
              are then put back as they were.
  throughput  Threadline's DecisionRunner (the worker `threadline serve`
              runs) on this process's event loop: decisions/s until all N
              are claimed; then EmailDelivery, with the N mails waiting in
              the outbox: mails/s into the sink (bench/b10_smtp_sink.py,
              aiosmtpd, in its own process), each measured alone
  latency     M = rate x seconds more decisions (for fresh contacts), due
              at `--rate` per second from a moment just ahead, with both
              workers running: due → claimed (the commit of the batch that
              claimed it), p50/p99
  duplicates  the sink counts every mail and its Message-ID: every decision
              sent once, none twice; the outbox rows' outcomes

Targets: decisions/s ≥ 0.5 x the claim loop's rows/s; ≥ 500 mails/s into
the sink; p99 due→claimed ≤ 2 s at 1,000 due/s; 0 duplicates.

This process (the workers, the baseline loop) runs on CPU 0; the sink and
PostgreSQL's server processes on CPU 1.

    .venv/bin/python bench/b10_touchpoints.py                    # N = 100,000, both backends
    .venv/bin/python bench/b10_touchpoints.py --decisions 5000 --latency-s 5 --backends sqlite
    .venv/bin/python bench/b10_touchpoints.py --decisions 2000 --profile   # + cProfile top
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import cProfile
import io
import json
import os
import pstats
import sys
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import benchlib as bl
import sqlalchemy as sa

sys.path.insert(0, str(bl.ROOT))

from server.actions.context import perform
from server.actions.inboxes import do_create_inbox
from server.actions.touch_claims import ProcessedBatch
from server.actions.workspaces import do_create_workspace
from server.domain.actors import system_actor
from server.domain.values import InboxKind
from server.runtime import Runtime
from server.settings import Settings
from server.storage import tables as t
from server.storage.migrate import upgrade_to_head
from server.workers.email_delivery import EmailDelivery
from server.workers.touch_decisions import DecisionRunner

CLAIMED_BY_LOOP = "bench_loop"  # the baseline's mark; put back to "scheduled" after
INSERT_CHUNK = 2000
BASELINE_BATCH = 100


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--decisions", type=int, default=100_000, help="N, the due decisions")
    ap.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres or both")
    ap.add_argument("--rate", type=float, default=1000.0, help="latency phase: due decisions/s")
    ap.add_argument("--latency-s", type=float, default=10.0, help="latency phase: seconds of due")
    ap.add_argument("--batch", type=int, help="DecisionRunner batch (default: the product's)")
    ap.add_argument("--timeout-s", type=float, default=1800.0, help="per phase, at most")
    ap.add_argument("--profile", action="store_true", help="cProfile the throughput phase")
    ap.add_argument(
        "--profile-dump",
        metavar="PATH",
        help="with --profile: write the pstats to PATH (and PATH.decisions: the claims alone)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs")
    return ap.parse_args()


# --- the database ------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(backend: str, tmp: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / 'threadline.db'}"
        return
    from tests.services.postgres import PostgresServer  # noqa: PLC0415

    with PostgresServer.start() as server:
        pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
        # Backends fork from the postmaster and inherit its CPU.
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {int(bl.LOAD_CPU)})
        yield await server.create_database()


def settings_for(url: str, data_dir: Path, sink_port: int) -> Settings:
    return Settings.from_env(
        {},
        THREADLINE_DATA_DIR=str(data_dir),
        THREADLINE_DATABASE_URL=url,
        THREADLINE_PUBLIC_URL="http://bench.test",
        THREADLINE_SMTP_URL=f"smtp://{bl.HOST}:{sink_port}?security=none",
    )


def quiet_hours_not_now(now: datetime) -> dict[str, str]:
    """Two quiet hours that start six hours from now (UTC): checked, never hit."""
    start = (now.hour + 6) % 24
    return {"start": f"{start:02d}:00", "end": f"{(start + 2) % 24:02d}:00"}


async def chunked_insert(conn: Any, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    for i in range(0, len(rows), INSERT_CHUNK):
        await conn.execute(table.insert(), list(rows[i : i + INSERT_CHUNK]))


async def seed(runtime: Runtime, n: int, m: int) -> dict[str, Any]:
    now = runtime.clock.now()
    ws = await perform(runtime, system_actor(0), do_create_workspace, name="Bench")
    inbox = await perform(
        runtime,
        system_actor(ws),
        do_create_inbox,
        name="Shop",
        kind=InboxKind.EMAIL,
        settings={},
        box=runtime.secrets,
    )
    variants = [
        {
            "id": "a",
            "weight": 1,
            "subject": "{{ contact.name }}, your cart is waiting",
            "body": "Hi {{ contact.name }},\n\nyou left something in your cart.\n\n"
            "{% if links.unsubscribe %}Unsubscribe: {{ links.unsubscribe }}{% endif %}",
            "html": False,
        }
    ]
    async with runtime.db.write() as conn:
        await conn.execute(
            t.workspaces.update()
            .where(t.workspaces.c.id == ws)
            .values(
                settings={
                    "touchpoints": {
                        "timezone": "UTC",
                        "caps": {"marketing": [{"count": 3, "window": "7d"}]},
                        "quiet_hours": quiet_hours_not_now(now),
                    }
                }
            )
        )
        tp_id = (
            await conn.execute(
                t.touchpoints.insert()
                .values(
                    workspace_id=ws,
                    name="Cart reminder",
                    description="",
                    kind="marketing",
                    status="live",
                    trigger={"kind": "contact_event", "name": "cart_updated"},
                    trigger_key="contact_event:cart_updated",
                    episode_key="cart:{cart_id}",
                    exit_rules=[],
                    goal=None,
                    reentry="per_episode",
                    priority=50,
                    holdout_percent=0,
                    max_lateness_seconds=6 * 3600,
                    quiet_hours=quiet_hours_not_now(now),
                    inbox_id=inbox.inbox_id,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                .returning(t.touchpoints.c.id)
            )
        ).scalar_one()
        step_id = (
            await conn.execute(
                t.touchpoint_steps.insert()
                .values(
                    workspace_id=ws,
                    touchpoint_id=tp_id,
                    version=1,
                    position=0,
                    delay={"after": 0},
                    channel="email",
                    variants=variants,
                    business_hours=False,
                    created_at=now,
                )
                .returning(t.touchpoint_steps.c.id)
            )
        ).scalar_one()
        first = (await conn.scalar(sa.select(sa.func.max(t.contacts.c.id)))) or 0
        ids = list(range(first + 1, first + 1 + n + m))
        await chunked_insert(
            conn,
            t.contacts,
            [
                {
                    "id": cid,
                    "workspace_id": ws,
                    "name": f"Customer {cid}",
                    "attributes": {},
                    "created_at": now,
                }
                for cid in ids
            ],
        )
        await chunked_insert(
            conn,
            t.contact_identities,
            [
                {
                    "workspace_id": ws,
                    "contact_id": cid,
                    "kind": "email",
                    "value": f"customer{cid}@bench.test",
                    "verified": True,
                    "created_at": now,
                }
                for cid in ids
            ],
        )
    meta = {"workspace_id": ws, "touchpoint_id": tp_id, "step_id": step_id, "contacts": ids}
    # Every tenth contact got an earlier touch yesterday: caps have rows to count.
    earlier = ids[:n:10]
    await add_decisions(runtime, meta, earlier, [now - timedelta(days=1)] * len(earlier), "past")
    async with runtime.db.write() as conn:
        past = (
            await conn.execute(
                sa.select(t.decisions.c.id, t.decisions.c.contact_id).where(
                    t.decisions.c.idempotency_key.like("past:%")
                )
            )
        ).all()
        await conn.execute(
            t.decisions.update()
            .where(t.decisions.c.idempotency_key.like("past:%"))
            .values(state="sent", settled_at=now - timedelta(days=1))
        )
        await conn.execute(
            t.episodes.update().where(t.episodes.c.key.like("past:%")).values(state="completed")
        )
        await chunked_insert(
            conn,
            t.touch_ledger,
            [
                {
                    "workspace_id": ws,
                    "contact_id": cid,
                    "decision_id": did,
                    "channel": "email",
                    "kind": "marketing",
                    "at": now - timedelta(days=1),
                }
                for did, cid in past
            ],
        )
    await add_decisions(runtime, meta, ids[:n], [now] * n, "now")
    return meta


async def add_decisions(
    runtime: Runtime,
    meta: dict[str, Any],
    contacts: Sequence[int],
    due: Sequence[datetime],
    tag: str,
) -> None:
    """An active episode per contact, with its first decision due at `due`."""
    now = runtime.clock.now()
    ws, tp_id, step_id = meta["workspace_id"], meta["touchpoint_id"], meta["step_id"]
    async with runtime.db.write() as conn:
        first_ep = (await conn.scalar(sa.select(sa.func.max(t.episodes.c.id)))) or 0
        first_dec = (await conn.scalar(sa.select(sa.func.max(t.decisions.c.id)))) or 0
        episodes, decisions = [], []
        for i, (cid, at) in enumerate(zip(contacts, due, strict=True)):
            ep_id = first_ep + 1 + i
            episodes.append(
                {
                    "id": ep_id,
                    "workspace_id": ws,
                    "touchpoint_id": tp_id,
                    "version": 1,
                    "contact_id": cid,
                    "key": f"{tag}:{cid}",
                    "state": "active",
                    "arm": "treatment",
                    "bucket": cid % 100,
                    "context": {"cart_id": str(cid)},
                    "entered_at": now,
                }
            )
            decisions.append(
                {
                    "id": first_dec + 1 + i,
                    "workspace_id": ws,
                    "episode_id": ep_id,
                    "touchpoint_id": tp_id,
                    "step_id": step_id,
                    "contact_id": cid,
                    "position": 0,
                    "channel": "email",
                    "kind": "marketing",
                    "priority": 50,
                    "idempotency_key": f"{tag}:{cid}:step0",
                    "due_at": at,
                    "run_at": at,
                    "state": "scheduled",
                    "attempts": 0,
                    "created_at": now,
                }
            )
        await chunked_insert(conn, t.episodes, episodes)
        await chunked_insert(conn, t.decisions, decisions)
    if runtime.settings.database_url.startswith("postgresql"):
        async with runtime.db.write() as conn:
            # Explicit ids were inserted: move the sequences past them.
            for table in ("contacts", "contact_identities", "episodes", "decisions"):
                await conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        async with runtime.db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("ANALYZE"))


# --- the baseline ------------------------------------------------------------


async def claim_loop(runtime: Runtime) -> dict[str, Any]:
    """The bare claim: due rows marked taken, one batch per transaction."""
    pg = runtime.settings.database_url.startswith("postgresql")
    lock = " FOR UPDATE SKIP LOCKED" if pg else ""
    claim = sa.text(
        "UPDATE decisions SET state = :taken WHERE id IN ("
        "SELECT id FROM decisions WHERE state = 'scheduled' AND run_at <= :now "
        f"ORDER BY run_at, id LIMIT :limit{lock}) RETURNING id"
    )
    total = 0
    t0 = time.perf_counter()
    while True:
        async with runtime.db.write() as conn:
            got = (
                await conn.execute(
                    claim,
                    {"taken": CLAIMED_BY_LOOP, "now": runtime.clock.now(), "limit": BASELINE_BATCH},
                )
            ).all()
        if not got:
            break
        total += len(got)
    elapsed = time.perf_counter() - t0
    async with runtime.db.write() as conn:
        await conn.execute(
            t.decisions.update()
            .where(t.decisions.c.state == CLAIMED_BY_LOOP)
            .values(state="scheduled")
        )
    return {"rows": total, "seconds": round(elapsed, 3), "rows_per_s": round(total / elapsed, 1)}


# --- Threadline --------------------------------------------------------------


class TimedRunner(DecisionRunner):
    """The product's runner, noting when each batch began and committed."""

    def __init__(self, runtime: Runtime, **kw: Any) -> None:
        super().__init__(runtime, **kw)
        self.batches: list[tuple[datetime, float, int]] = []  # (its now, committed at, claimed)

    async def process_batch(self) -> ProcessedBatch:
        began = self.runtime.clock.now()
        batch = await super().process_batch()
        if batch.claimed:
            self.batches.append((began, time.time(), batch.claimed))
        return batch


class Sink:
    def __init__(self, status: Path) -> None:
        self.path = status

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return {"count": 0, "unique": 0, "duplicates": [], "first": None, "last": None}

    async def wait_for(self, count: int, limit_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + limit_s
        # The sink is another process: its status file is all there is to watch.
        while self.status()["count"] < count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.3)  # the sink rewrites its status every 0.2 s
        return self.status()


class Workers:
    """The product's two workers as tasks on this loop, started one by one."""

    def __init__(self, runtime: Runtime, a: argparse.Namespace) -> None:
        self.runner = TimedRunner(runtime, **({"batch": a.batch} if a.batch else {}))
        self.delivery = EmailDelivery(runtime)
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start_decisions(self) -> None:
        self.tasks.append(asyncio.create_task(self.runner.run(self.stop), name="decisions"))

    def start_delivery(self) -> None:
        self.tasks.append(asyncio.create_task(self.delivery.run(self.stop), name="delivery"))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 60)


@contextlib.asynccontextmanager
async def workers(runtime: Runtime, a: argparse.Namespace) -> AsyncIterator[Workers]:
    running = Workers(runtime, a)
    try:
        yield running
    finally:
        await running.close()


async def wait_until(predicate: Any, limit_s: float, every: float = 0.02) -> bool:
    """Poll `predicate` (a counter the workers bump) until true or `limit_s`."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)
    return True


def claimed_at(runner: TimedRunner, ledger_at: datetime) -> float | None:
    """The commit time of the batch whose claim began at `ledger_at`."""
    starts = [b[0] for b in runner.batches]
    i = bisect.bisect_right(starts, ledger_at) - 1
    return None if i < 0 else runner.batches[i][1]


async def run_backend(backend: str, a: argparse.Namespace, kids: bl.Children) -> dict[str, Any]:
    n = a.decisions
    m = int(a.rate * a.latency_s)
    res: dict[str, Any] = {"bench": "B10", "backend": backend, "decisions": n, "latency_m": m}
    with bl.temp_dir(f"tl-b10-{backend}-", a.keep) as tmp:
        async with database(backend, tmp) as url:
            port = bl.free_port()
            sink_cmd = [bl.PY, str(bl.BENCH / "b10_smtp_sink.py"), "--port", str(port)]
            sink_cmd += ["--status", str(tmp / "sink.json")]
            srv = kids.start(bl.pinned(bl.LOAD_CPU, sink_cmd), cwd=tmp, log=tmp / "sink.log")
            bl.wait_port(port, srv)
            sink = Sink(tmp / "sink.json")
            res.update(await measure(url, tmp, port, sink, n, m, a))
            kids.stop(srv)
            res["sink"] = sink.status()
    return res


async def measure(
    url: str, tmp: Path, port: int, sink: Sink, n: int, m: int, a: argparse.Namespace
) -> dict[str, Any]:
    res: dict[str, Any] = {}
    settings = settings_for(url, tmp / "data", port)
    await upgrade_to_head(settings.database_url, settings.secret_key)
    runtime = Runtime.create(settings)
    try:
        bl.log(f"{url.split(':', maxsplit=1)[0]}: seeding {n:,} + {m:,} contacts")
        meta = await seed(runtime, n, m)
        bl.log("baseline: the bare claim loop")
        res["baseline"] = await claim_loop(runtime)
        bl.log(f"  {res['baseline']}")

        bl.log("throughput: DecisionRunner alone, then EmailDelivery alone")
        profiler = cProfile.Profile() if a.profile else None
        async with workers(runtime, a) as running:
            runner = running.runner
            t0 = time.time()
            if profiler:
                profiler.enable()
            running.start_decisions()
            done = await wait_until(lambda: runner.processed >= n, a.timeout_s)
            t_claimed = time.time()
            if profiler and a.profile_dump:
                profiler.dump_stats(a.profile_dump + ".decisions")
            running.start_delivery()
            got = await sink.wait_for(n, a.timeout_s)
            t_mailed = time.time()
            if profiler:
                profiler.disable()
            res["throughput"] = {
                "all_claimed": done,
                "claimed": runner.processed,
                "decisions_s": round(t_claimed - t0, 2),
                "decisions_per_s": round(runner.processed / (t_claimed - t0), 1),
                "mails": got["count"],
                "mails_s": round(t_mailed - t_claimed, 2),
                # From the workers' start to the sink's last mail (the sink
                # reports its status every 0.2 s, so the end is its own).
                "mails_per_s": round(got["count"] / max(got["last"] - t_claimed, 1e-9), 1)
                if got["last"]
                else None,
                "smtp_connections": got.get("connections"),
                "batches": len(runner.batches),
            }
            bl.log(f"  {res['throughput']}")
            if profiler:
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("tottime").print_stats(45)
                if a.profile_dump:
                    profiler.dump_stats(a.profile_dump)
                (tmp / "profile.txt").write_text(out.getvalue())
                res["profile_top"] = out.getvalue()[:16000]
                print(out.getvalue()[:16000], file=sys.stderr)

            if m:
                res["latency"] = await latency_phase(runtime, runner, meta, n, m, a)
                bl.log(f"  {res['latency']}")
            await sink.wait_for(n + m, min(a.timeout_s, 120))
        res["outcomes"] = await outcomes(runtime)
    finally:
        await runtime.close()
    return res


async def latency_phase(
    runtime: Runtime,
    runner: TimedRunner,
    meta: dict[str, Any],
    n: int,
    m: int,
    a: argparse.Namespace,
) -> dict[str, Any]:
    bl.log(f"latency: {m:,} decisions due at {a.rate:,.0f}/s")
    start = runtime.clock.now() + timedelta(seconds=2)
    due = [start + timedelta(seconds=i / a.rate) for i in range(m)]
    contacts = meta["contacts"][n : n + m]
    await add_decisions(runtime, meta, contacts, due, "paced")
    before = runner.processed
    done = await wait_until(
        lambda: runner.processed >= before + m, a.latency_s + 2 + min(a.timeout_s, 300), 0.05
    )
    d, lg = t.decisions.c, t.touch_ledger.c
    async with runtime.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(d.due_at, lg.at)
                .join(t.touch_ledger, lg.decision_id == d.id)
                .where(d.idempotency_key.like("paced:%"))
            )
        ).all()
    lags = []
    for due_at, at in rows:
        committed = claimed_at(runner, at)
        if committed is not None:
            lags.append(committed - due_at.timestamp())
    return {
        "rate": a.rate,
        "all_claimed": done,
        "claimed": len(lags),
        "p50_s": None if not lags else round(bl.pct(lags, 0.50) or 0, 3),
        "p99_s": None if not lags else round(bl.pct(lags, 0.99) or 0, 3),
        "max_s": None if not lags else round(max(lags), 3),
    }


async def outcomes(runtime: Runtime) -> dict[str, Any]:
    async with runtime.db.read() as conn:
        decisions: dict[str, int] = dict(
            (
                await conn.execute(
                    sa.select(t.decisions.c.state, sa.func.count())
                    .where(t.decisions.c.idempotency_key.not_like("past:%"))
                    .group_by(t.decisions.c.state)
                )
            ).all()
        )
        outbox: dict[str, int] = dict(
            (
                await conn.execute(
                    sa.select(t.outbox.c.status, sa.func.count()).group_by(t.outbox.c.status)
                )
            ).all()
        )
    return {"decisions": decisions, "outbox": outbox}


# --- the report --------------------------------------------------------------


def report(results: Sequence[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        base = r["baseline"]["rows_per_s"]
        thr, lat, sink = r["throughput"], r.get("latency", {}), r["sink"]
        dupes = sink["count"] - sink["unique"]
        rows.append(
            [
                r["backend"],
                r["decisions"],
                base,
                thr["decisions_per_s"],
                # Four places: the ratio is far below 0.01 today.
                f"{thr['decisions_per_s'] / base:.4f}" if base else None,
                thr["mails_per_s"],
                lat.get("p99_s"),
                f"{lat.get('claimed')}/{r['latency_m']}",
                sink["count"],
                dupes,
                r["outcomes"]["outbox"].get("unknown", 0),
            ]
        )
    header = [
        "backend",
        "N",
        "claim loop rows/s",
        "decisions/s",
        "ratio (≥ 0.5)",
        "mails/s (≥ 500)",
        "p99 due→claimed s (≤ 2)",
        "paced claimed",
        "mails in sink",
        "duplicates (0)",
        "unknown",
    ]
    return bl.markdown_table(header, rows)


def main() -> None:
    a = parse_args()
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(bl.SERVER_CPU)})
    results = []
    with bl.Children() as kids:
        for backend in [b.strip() for b in a.backends.split(",") if b.strip()]:
            res = asyncio.run(run_backend(backend, a, kids))
            res.update(machine=bl.machine(), code=bl.code_version(), at=bl.now_iso())
            results.append(res)
    path = bl.save_jsonl("b10", results)
    print(f"\nB10, {bl.now_iso()}, {bl.code_version()}, {bl.machine()}\n")
    print(report(results))
    print(f"\nraw: {path}")


if __name__ == "__main__":
    main()
