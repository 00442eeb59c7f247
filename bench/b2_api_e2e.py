"""B2 (BENCHMARKS.md), the API-posted part: a message comes in, is
persisted, and is delivered to the M agent sockets of its inbox.

For each (N, M), side by side on this machine (server on CPU 0, load on CPU 1):

  baseline    shared/bench-kit/server_chat.py --stack websockets --persist
              groupcommit under the kit's chat_load.js: N visitor sockets send
              websocket frames, each persisted by one group-commit writer, then
              delivered to M agent sockets and acked to the visitor
  Threadline  `threadline serve` on a fresh data dir (one workspace, one
              inbox, M member agents with a token each, N open conversations)
              under bench/threadline_chat.js: K keep-alive HTTP connections
              POST /api/v1/conversations/{id}/messages to random conversations
              (persisted with its event in one transaction, published, fanned
              out by the hub); the 201 response is the ack

Both step an open-loop message rate up until p99 > 1 s or loss > 1 %. Max
sustained rate = highest step with p99 <= 50 ms, no loss and the rate
actually sent. Targets (for the widget path, which comes later): >= 0.5 x
baseline (stretch 0.75 x); at 1,000 msg/s with N=5,000, M=50, p99 <= 2 x
baseline's. Threadline's input here is an HTTP POST where the baseline's is a
websocket frame, so the ratio is indicative only.

    .venv/bin/python bench/b2_api_e2e.py            # (N, M) = (1000, 10), (5000, 50)
    .venv/bin/python bench/b2_api_e2e.py --quick    # (N, M) = (200, 10), short steps
    .venv/bin/python bench/b2_api_e2e.py --profile  # + py-spy on one Threadline step
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import benchlib as bl

BASE_RATES = "500,1000,2000,3000,4000,5000,6000,8000,10000,12000,14000"
TL_RATES = "25,50,75,100,125,150,200,300,500,1000"
P99_LIMIT_MS = 50.0


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: (N, M) = (200, 10), 2 s steps")
    ap.add_argument("--configs", help="N:M pairs, comma-separated (default 1000:10,5000:50)")
    ap.add_argument("--only", choices=["baseline", "threadline"], help="run one side only")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs per config and server; the table shows the best"
    )
    ap.add_argument("--k", type=int, default=50, help="Threadline: concurrent HTTP posters")
    ap.add_argument("--step-s", type=float, help="seconds per rate step (default 4)")
    ap.add_argument("--base-rates", default=BASE_RATES, help="baseline msg/s steps")
    ap.add_argument("--tl-rates", default=TL_RATES, help="Threadline msg/s steps")
    ap.add_argument("--log-level", default="info", help="THREADLINE_LOG_LEVEL (product default)")
    ap.add_argument(
        "--profile",
        type=float,
        nargs="?",
        const=100.0,
        help="sample Threadline with py-spy during the step at this rate (default 100)",
    )
    ap.add_argument(
        "--trace",
        action="store_true",
        help="run Threadline through bench/serve_traced.py: SQLite write-lock wait/hold "
        "and event-loop lag per step (diagnostic)",
    )
    ap.add_argument("--kit", type=Path, default=bl.DEFAULT_KIT, help="the bench kit folder")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, database)")
    a = ap.parse_args()
    configs = a.configs or ("200:10" if a.quick else "1000:10,5000:50")
    a.configs = [tuple(int(x) for x in c.split(":")) for c in configs.split(",")]
    a.step_s = a.step_s or (2.0 if a.quick else 4.0)
    if a.quick:
        a.base_rates = ",".join(a.base_rates.split(",")[:5])
        a.tl_rates = ",".join(a.tl_rates.split(",")[:8])
    return a


def run_baseline(kids: bl.Children, n: int, m: int, a: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {
        "bench": "B2",
        "server": "baseline: server_chat.py websockets + groupcommit",
        "input": "websocket frame",
        "n": n,
        "m": m,
    }
    port = bl.free_port()
    with bl.temp_dir("tl-b2-base-", a.keep) as tmp:
        cmd = [bl.PY, "server_chat.py", "--stack", "websockets", "--persist", "groupcommit"]
        cmd += ["--port", str(port), "--db", str(tmp / "chat.db"), "--max-s", "400"]
        srv = kids.start(bl.pinned(bl.SERVER_CPU, cmd), cwd=a.kit, log=tmp / "server.log")
        try:
            bl.wait_port(port, srv)
            time.sleep(0.5)
            load = ["node", str(a.kit / "chat_load.js"), f"--url=ws://{bl.HOST}:{port}"]
            load += [f"--n={n}", f"--m={m}", f"--rates={a.base_rates}", f"--step_s={a.step_s}"]
            load += ["--hard_s=300"]
            cl = kids.start(
                bl.pinned(bl.LOAD_CPU, load),
                cwd=a.kit,
                env=bl.node_env(),
                log=tmp / "client.log",
                pipe_stdout=True,
            )
            try:
                res.update(bl.run_client(cl, 320, lambda line: bl.log(f"  {line[:160]}")))
            finally:
                kids.stop(cl)
        finally:
            kids.stop(srv)
    return res


def run_threadline(
    kids: bl.Children, n: int, m: int, a: argparse.Namespace, template: Path
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "bench": "B2",
        "server": "Threadline (threadline serve)",
        "input": "HTTP POST",
        "n": n,
        "m": m,
        "k": a.k,
        "log_level": a.log_level,
    }
    port = bl.free_port()
    with bl.temp_dir("tl-b2-", a.keep) as tmp:
        data = tmp / "data"
        shutil.copytree(template / "data", data)  # a fresh copy of the seeded database
        seed_file = template / "seed.json"
        env = bl.threadline_env(data, a.log_level)
        trace_file = tmp / "trace.json"
        if a.trace:
            env["BENCH_TRACE_FILE"] = str(trace_file)
            res["server"] += " [traced]"
        srv = kids.start(
            bl.pinned(
                bl.SERVER_CPU, bl.threadline_cmd(port, "serve_traced.py" if a.trace else None)
            ),
            cwd=tmp,
            env=env,
            log=tmp / "server.log",
        )
        profile = tmp / "profile.txt" if a.profile else None
        spy = contextlib.ExitStack()
        windows: list[dict[str, float]] = []  # per step: wall times and server CPU

        def on_line(line: str) -> None:
            if line.startswith("STEP_START"):
                rate = float(line.split()[1])
                windows.append({"rate": rate, "t0": time.time(), "cpu0": bl.cpu_s(srv.pid)})
                if profile is not None and not profile.exists() and rate == a.profile:
                    spy.enter_context(bl.profiling(srv.pid, profile, a.step_s))
                    res["profiled_rate"] = a.profile
            elif line.startswith("STEP_END") and windows:
                w = windows[-1]
                w["t1"], w["cpu1"] = time.time(), bl.cpu_s(srv.pid)
                spy.close()

        try:
            bl.wait_port(port, srv)
            time.sleep(1.0)
            load = ["node", str(bl.BENCH / "threadline_chat.js"), f"--base=http://{bl.HOST}:{port}"]
            load += [f"--seed={seed_file}", f"--m={m}", f"--k={a.k}", f"--rates={a.tl_rates}"]
            load += [f"--step_s={a.step_s}", "--hard_s=300"]
            cl = kids.start(
                bl.pinned(bl.LOAD_CPU, load),
                cwd=bl.BENCH,
                env=bl.node_env(),
                log=tmp / "client.log",
                pipe_stdout=True,
            )
            try:
                res.update(bl.run_client(cl, 320, on_line))
            finally:
                spy.close()
                kids.stop(cl)
            if a.trace:
                time.sleep(1.0)  # serve_traced.py flushes every 0.5 s
            if profile is not None:
                res["profile_md"] = bl.summarize_profile(profile)
        finally:
            kids.stop(srv)
        _attach_windows(res, windows, trace_file if a.trace else None)
        log_text = (tmp / "server.log").read_text()
        errors = [ln for ln in log_text.splitlines() if "Traceback" in ln or "ERROR" in ln]
        if errors:
            res["server_errors"] = errors[:5]
    return res


def _attach_windows(
    res: dict[str, Any], windows: list[dict[str, float]], trace_file: Path | None
) -> None:
    """Per step: the server's CPU %, and with a trace the write lock's
    wait/hold times and the event-loop lag inside the step."""
    trace = bl.read_trace(trace_file) if trace_file is not None else None
    by_rate = {}
    for w in windows:
        if "t1" not in w:
            continue
        span = w["t1"] - w["t0"]
        info: dict[str, Any] = {"server_cpu_pct": round(100 * (w["cpu1"] - w["cpu0"]) / span, 1)}
        if trace is not None:
            inside = [(wait, hold) for t, wait, hold in trace["lock"] if w["t0"] <= t <= w["t1"]]
            lags = [lag for t, lag in trace["lag"] if w["t0"] <= t <= w["t1"]]
            holds = [h * 1000 for _, h in inside]
            info.update(
                writes_per_s=round(len(inside) / span, 1),
                lock_wait_ms=bl.pcts([wt * 1000 for wt, _ in inside]),
                lock_hold_ms=bl.pcts(holds),
                write_ceiling_per_s=round(1000 / (sum(holds) / len(holds))) if holds else None,
                loop_lag_ms=bl.pcts([lag * 1000 for lag in lags]),
                gc=bl.gc_summary(trace, w["t0"], w["t1"]),
            )
        by_rate[w["rate"]] = info
    for step in res.get("steps", []):
        step.update(by_rate.get(float(step["rate"]), {}))


def sustained(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The highest step with p99 <= 50 ms, nothing lost, every POST answered
    201 (Threadline) and at least 95 % of the rate actually sent."""
    good = [
        s
        for s in steps
        if s.get("p99") is not None
        and s["p99"] <= P99_LIMIT_MS
        and s.get("loss_pct", 100) <= 0
        and not s.get("post_failed")
        and s.get("achieved_send_per_s", 0) >= 0.95 * s["rate"]
    ]
    return max(good, key=lambda s: s["rate"]) if good else None


def at_rate(steps: list[dict[str, Any]], rate: float) -> dict[str, Any] | None:
    return next((s for s in steps if s["rate"] == rate), None)


def _best(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Of repeated runs, the one with the highest sustained rate (then the
    lowest p99 there): on a shared machine a run is only slowed by others."""

    def key(r: dict[str, Any]) -> tuple[float, float]:
        s = sustained(r.get("steps", [])) or {}
        return (s.get("rate", 0), -(s.get("p99") or 0))

    return max(runs, key=key) if runs else None


def summary_table(results: list[dict[str, Any]]) -> str:
    rows: list[list[Any]] = []
    for n, m in sorted({(r["n"], r["m"]) for r in results}):
        pair = [r for r in results if (r["n"], r["m"]) == (n, m)]
        base = _best([r for r in pair if r["server"].startswith("baseline")])
        tl = _best([r for r in pair if not r["server"].startswith("baseline")])
        best: dict[str, dict[str, Any] | None] = {}
        at1k: dict[str, dict[str, Any] | None] = {}
        for key, r in (("base", base), ("tl", tl)):
            if r is None:
                continue
            steps = r.get("steps", [])
            best[key], at1k[key] = sustained(steps), at_rate(steps, 1000)
            last = steps[-1] if steps else {}
            s = best[key] or {}
            a1 = at1k[key] or {}
            rows.append(
                [
                    f"{n:,} / {m}",
                    r["server"],
                    r["input"],
                    s.get("rate", 0),
                    s.get("p50"),
                    s.get("p99"),
                    (s.get("ack_ms") or {}).get("p99"),
                    a1.get("p99") if a1 else "not reached",
                    f"{last.get('rate')}: p99 {last.get('p99')} ms, loss {last.get('loss_pct')} %",
                    ", ".join(
                        str((sustained(x.get("steps", [])) or {}).get("rate", 0))
                        for x in pair
                        if x["server"] == r["server"]
                    ),
                    r.get("error"),
                ]
            )
        if base and tl:
            rate = bl.ratio(
                (best.get("tl") or {}).get("rate", 0), (best.get("base") or {}).get("rate")
            )
            p1k_tl, p1k_base = (
                (at1k.get("tl") or {}).get("p99"),
                (at1k.get("base") or {}).get("p99"),
            )
            p1k = bl.ratio(p1k_tl, p1k_base)
            verdict = "meets" if rate is not None and rate >= 0.5 else "misses"
            p1k_text = f"{p1k}x" if p1k is not None else "-"
            if n >= 5000 and m >= 50:
                p1k_text += (
                    " (target <= 2x)" if p1k is not None else " (Threadline never ran 1,000 msg/s)"
                )
            rows.append(
                [
                    f"{n:,} / {m}",
                    "**ratio Threadline / baseline** (indicative: different input path)",
                    "",
                    f"**{rate}** ({verdict} >= 0.5; stretch 0.75)",
                    None,
                    None,
                    None,
                    p1k_text,
                    None,
                    None,
                    None,
                ]
            )
    header = [
        "N / M", "server", "input", "max sustained msg/s (p99 <= 50 ms, no loss)",
        "p50 ms there", "p99 ms there", "ack p99 ms there", "p99 ms at 1,000 msg/s",
        "last step", "every run: sustained msg/s", "error",
    ]  # fmt: skip
    return bl.markdown_table(header, rows)


def steps_table(r: dict[str, Any]) -> str:
    rows = [
        [
            s["rate"],
            s.get("achieved_send_per_s"),
            s.get("deliv_per_s"),
            s.get("p50"),
            s.get("p99"),
            s.get("max"),
            (s.get("ack_ms") or {}).get("p99"),
            s.get("loss_pct"),
            s.get("post_failed"),
            s.get("server_cpu_pct"),
        ]
        for s in r.get("steps", [])
    ]
    header = [
        "rate msg/s", "sent/s", "deliveries/s", "p50 ms", "p99 ms", "max ms",
        "ack p99 ms", "loss %", "POST failed", "server CPU %",
    ]  # fmt: skip
    if any("lock_hold_ms" in s for s in r.get("steps", [])):
        for row, s in zip(rows, r["steps"], strict=True):
            hold, wait, lag = (
                s.get("lock_hold_ms", {}),
                s.get("lock_wait_ms", {}),
                s.get("loop_lag_ms", {}),
            )
            row += [s.get("writes_per_s"), hold.get("mean"), hold.get("p99"), wait.get("p99")]
            row += [s.get("write_ceiling_per_s"), lag.get("p50"), lag.get("p99")]
            gcs = s.get("gc", {}).values()
            row += [sum(g["total_ms"] for g in gcs), max((g["max_ms"] for g in gcs), default=0)]
        header += [
            "writes/s", "write-lock hold mean ms", "hold p99 ms", "lock wait p99 ms",
            "1 / mean hold (writes/s)", "loop lag p50 ms", "loop lag p99 ms",
            "GC pauses total ms", "GC longest ms",
        ]  # fmt: skip
    return bl.markdown_table(header, rows)


def main() -> int:
    a = parse_args()
    if not (a.kit / "server_chat.py").exists():
        raise SystemExit(f"bench kit not found at {a.kit} (--kit)")
    started, code = bl.now_iso(), bl.code_version()
    results: list[dict[str, Any]] = []
    with bl.Children() as kids:
        for n, m in a.configs:
            with bl.temp_dir("tl-b2-seed-", a.keep) as template:
                if a.only != "baseline":
                    t0 = time.monotonic()
                    seeded = bl.seed_threadline(template / "data", agents=m, conversations=n)
                    (template / "seed.json").write_text(json.dumps(seeded))
                    bl.log(
                        f"B2 seeded {m} agents, {n} conversations in {time.monotonic() - t0:.0f} s"
                    )
                for rep in range(a.repeat):
                    if a.only != "threadline":
                        bl.log(f"B2 N={n} M={m} run {rep + 1}: baseline (server_chat.py)")
                        results.append(run_baseline(kids, n, m, a))
                        time.sleep(1)
                    if a.only != "baseline":
                        bl.log(f"B2 N={n} M={m} run {rep + 1}: Threadline (K={a.k} posters)")
                        results.append(run_threadline(kids, n, m, a, template))
                        time.sleep(1)
    path = bl.save_jsonl("b2", results)
    print(f"## B2 end-to-end, API-posted — {started}\n")
    print(f"Machine: {bl.machine()}; {bl.versions()}.")
    print(f"Code: {code}.")
    print(f"Command: `{' '.join([Path(bl.PY).name, *sys.argv])}`; raw results: {path}\n")
    if a.repeat > 1:
        print(
            f"Each row is the best of {a.repeat} runs (highest sustained rate); every run is listed.\n"
        )
    print(summary_table(results))
    seen: dict[tuple[str, int, int], int] = {}
    for r in results:
        k = (r["server"], r["n"], r["m"])
        seen[k] = seen.get(k, 0) + 1
        print(f"\n### Steps: {r['server']}, N={r['n']:,}, M={r['m']}, run {seen[k]}\n")
        print(steps_table(r))
        if r.get("profile_md"):
            print(f"\n### py-spy, {r['server']}, step at {r.get('profiled_rate')} msg/s\n")
            print(r["profile_md"])
        for key in ("server_errors", "error", "post_error_codes"):
            if r.get(key):
                print(f"\n{key}: {json.dumps(r[key])[:400]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
