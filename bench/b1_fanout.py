"""B1 (BENCHMARKS.md): fan-out of one event to N agent sockets.

For each N, side by side on this machine (server on CPU 0, load on CPU 1):

  baseline    shared/bench-kit/server_ws.py --mode bcast (bare `websockets`
              broadcast) under the kit's client_node.js
  Threadline  `threadline serve` on a fresh data dir (one workspace, one
              inbox, one agent who is a member, one conversation) under
              bench/threadline_fanout.js: N /ws/agent sockets with the agent's
              token, messages POSTed to the conversation over the REST API

Both: deliveries/s at saturation (closed loop, the kit's method; Threadline
also steps open-loop rates up to saturation), latency p50/p99 at half that
rate, RSS per idle connection (server RSS after N sockets minus before).
Targets: Threadline >= 0.6 x baseline deliveries/s; p99 at half load <=
1.5 x baseline's.

    .venv/bin/python bench/b1_fanout.py            # N = 1000, 5000
    .venv/bin/python bench/b1_fanout.py --quick    # N = 100, 1000, short phases
    .venv/bin/python bench/b1_fanout.py --profile  # + py-spy on Threadline's closed loop
    .venv/bin/python bench/b1_fanout.py --ws-impls websockets-sansio,websockets,wsproto
                                                   # Threadline once per uvicorn ws implementation
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import benchlib as bl

RAMP = "5000,10000,15000,20000,30000,40000,60000,80000,100000,130000"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: N=100,1000, short phases")
    ap.add_argument("--ns", help="comma-separated N (default 1000,5000; quick 100,1000)")
    ap.add_argument("--only", choices=["baseline", "threadline"], help="run one side only")
    ap.add_argument("--step-s", type=float, help="seconds per ramp step (default 4)")
    ap.add_argument("--sat-s", type=float, help="closed-loop seconds (default 8)")
    ap.add_argument("--half-s", type=float, help="half-load seconds (default 6)")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs per N and server; the table shows the best"
    )
    ap.add_argument("--ramp", default=RAMP, help="Threadline ramp, deliveries/s per step")
    ap.add_argument("--log-level", default="info", help="THREADLINE_LOG_LEVEL (product default)")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="sample Threadline with py-spy during its closed loop (perturbs that run)",
    )
    ap.add_argument(
        "--rss-deflate",
        action="store_true",
        help="also: Threadline RSS/conn when clients offer permessage-deflate (as browsers do)",
    )
    ap.add_argument(
        "--what-if-uvloop",
        action="store_true",
        help="also: Threadline on uvloop (bench/serve_uvloop.py; not how it ships)",
    )
    ap.add_argument(
        "--ws-impls",
        help="comma-separated uvicorn websocket implementations (websockets-sansio, websockets, "
        "wsproto): run Threadline once per implementation through bench/serve_ws_impl.py "
        "instead of once as shipped",
    )
    ap.add_argument(
        "--trace",
        action="store_true",
        help="run Threadline through bench/serve_traced.py: GC pauses and event-loop lag "
        "during the closed loop and the half-load phase (diagnostic)",
    )
    ap.add_argument("--kit", type=Path, default=bl.DEFAULT_KIT, help="the bench kit folder")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (logs, database)")
    a = ap.parse_args()
    quick = a.quick
    a.ws_impls = [x.strip() for x in a.ws_impls.split(",") if x.strip()] if a.ws_impls else []
    a.ns = [int(x) for x in (a.ns or ("100,1000" if quick else "1000,5000")).split(",")]
    a.step_s = a.step_s or (2.0 if quick else 4.0)
    a.sat_s = a.sat_s or (3.0 if quick else 8.0)
    a.half_s = a.half_s or (3.0 if quick else 6.0)
    a.light_s = 1.0 if quick else 5.0
    return a


def run_baseline(kids: bl.Children, n: int, a: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"bench": "B1", "server": "baseline: bare websockets bcast", "n": n}
    port = bl.free_port()
    with bl.temp_dir("tl-b1-base-", a.keep) as tmp:
        srv = kids.start(
            bl.pinned(
                bl.SERVER_CPU,
                [bl.PY, "server_ws.py", "--mode", "bcast", "--port", str(port), "--max-s", "300"],
            ),
            cwd=a.kit,
            log=tmp / "server.log",
        )
        try:
            bl.wait_port(port, srv)
            time.sleep(0.5)
            rss0 = bl.rss_kb(srv.pid)
            cmd = ["node", str(a.kit / "client_node.js"), f"--url=ws://{bl.HOST}:{port}"]
            cmd += ["--subpath=/sub", f"--n={n}", "--waitgo=1", f"--light_s={a.light_s}"]
            cmd += [f"--sat_s={a.sat_s}", f"--half_s={a.half_s}", "--hard_s=200"]
            res.update(_drive(kids, srv, cmd, a.kit, n, rss0, tmp, profile=None))
        finally:
            kids.stop(srv)
    return res


def run_threadline(
    kids: bl.Children,
    n: int,
    a: argparse.Namespace,
    *,
    memonly: bool = False,
    deflate: bool = False,
    uvloop: bool = False,
    ws_impl: str | None = None,
) -> dict[str, Any]:
    label = "Threadline (threadline serve)"
    if uvloop:
        label = "what-if: Threadline on uvloop"
    launcher = "serve_uvloop.py" if uvloop else "serve_traced.py" if a.trace else None
    if ws_impl is not None:
        label = f"Threadline, uvicorn ws={ws_impl}"
        launcher = "serve_ws_impl.py"
    if a.trace and launcher == "serve_traced.py":
        label += " [traced]"
    if deflate:
        label += ", clients offer permessage-deflate"
    res: dict[str, Any] = {"bench": "B1", "server": label, "n": n, "log_level": a.log_level}
    port = bl.free_port()
    with bl.temp_dir("tl-b1-", a.keep) as tmp:
        data = tmp / "data"
        seeded = bl.seed_threadline(data, agents=1, conversations=1)
        env = bl.threadline_env(data, a.log_level)
        trace_file = tmp / "trace.jsonl"
        if launcher == "serve_traced.py":
            env["BENCH_TRACE_FILE"] = str(trace_file)
        if ws_impl is not None:
            env["BENCH_WS_IMPL"] = ws_impl
        srv = kids.start(
            bl.pinned(bl.SERVER_CPU, bl.threadline_cmd(port, launcher)),
            cwd=tmp,
            env=env,
            log=tmp / "server.log",
        )
        try:
            bl.wait_port(port, srv)
            time.sleep(1.0)
            rss0 = bl.rss_kb(srv.pid)
            cmd = [
                "node",
                str(bl.BENCH / "threadline_fanout.js"),
                f"--base=http://{bl.HOST}:{port}",
            ]
            cmd += [f"--token={seeded['agent_tokens'][0]}", f"--pub_token={seeded['poster_token']}"]
            cmd += [f"--conv={seeded['conversation_ids'][0]}", f"--n={n}", "--waitgo=1"]
            cmd += [f"--step_s={a.step_s}", f"--sat_s={a.sat_s}", f"--half_s={a.half_s}"]
            cmd += [f"--ramp={a.ramp}", "--hard_s=280"]
            if deflate:
                cmd.append("--deflate=1")
            profile = tmp / "profile.txt" if a.profile and not memonly else None
            res.update(
                _drive(
                    kids,
                    srv,
                    cmd,
                    bl.BENCH,
                    n,
                    rss0,
                    tmp,
                    profile=profile,
                    profile_s=a.sat_s,
                    memonly=memonly,
                    probe_gc=launcher == "serve_traced.py",
                )
            )
            if profile is not None:
                res["profile_md"] = bl.summarize_profile(profile)
                res["profiled"] = True
            if launcher == "serve_traced.py":
                time.sleep(1.0)  # serve_traced.py flushes every 0.5 s
                res["trace"] = _trace_summary(bl.read_trace(trace_file), res.get("marks", {}))
        finally:
            kids.stop(srv)
        if srv.returncode not in (0, -15, None):
            res["server_exit"] = srv.returncode
        errors = [
            ln
            for ln in (tmp / "server.log").read_text().splitlines()
            if "Traceback" in ln or "ERROR" in ln
        ]
        if errors:
            res["server_errors"] = errors[:5]
    return res


def _drive(
    kids: bl.Children,
    srv: Any,
    cmd: list[str],
    cwd: Path,
    n: int,
    rss0: int,
    tmp: Path,
    *,
    profile: Path | None,
    profile_s: float = 0,
    memonly: bool = False,
    probe_gc: bool = False,
) -> dict[str, Any]:
    """Run a load generator against `srv`: RSS once all N are connected,
    CPU of both sides over the closed loop, the generator's RESULT. With
    `probe_gc` (serve_traced.py), a full collection is also timed then."""
    out: dict[str, Any] = {}
    cl = kids.start(
        bl.pinned(bl.LOAD_CPU, cmd),
        cwd=cwd,
        env=bl.node_env(),
        log=tmp / "client.log",
        pipe_stdout=True,
        pipe_stdin=True,
    )
    cpu = bl.CpuWindow(srv.pid, cl.pid)
    spy = contextlib.ExitStack()
    marks: dict[str, float] = {"CONNECT_START": time.time()}
    out["marks"] = marks

    def on_line(line: str) -> None:
        if line.startswith("CONNECTED"):
            time.sleep(1.5)
            rss1 = bl.rss_kb(srv.pid)
            out.update(
                rss_before_mb=round(rss0 / 1024, 1),
                rss_after_mb=round(rss1 / 1024, 1),
                rss_per_conn_kb=round((rss1 - rss0) / n, 2),
            )
            bl.log(f"  {line}; server RSS {rss0 / 1024:.0f} -> {rss1 / 1024:.0f} MB")
            marks["CONNECTED"] = time.time()
            if probe_gc:
                srv.send_signal(signal.SIGUSR1)  # serve_traced.py times a full collection
                time.sleep(1.0)
            assert cl.stdin is not None
            cl.stdin.write("QUIT\n" if memonly else "GO\n")
            cl.stdin.flush()
        elif line in ("SAT_START", "SAT_END", "HALF_START", "HALF_END"):
            marks[line] = time.time()
        if line == "SAT_START":
            cpu.mark_start()
            if profile is not None:
                spy.enter_context(bl.profiling(srv.pid, profile, profile_s))
        elif line == "SAT_END":
            cpu.mark_end()

    try:
        result = bl.run_client(cl, 300, on_line)
    finally:
        spy.close()
        kids.stop(cl)
    out.update(result)
    out.update(cpu.percent())
    return out


def _trace_summary(trace: dict[str, list[Any]], marks: dict[str, float]) -> dict[str, Any]:
    """GC pauses and event-loop lag during the closed loop and the half load."""
    out: dict[str, Any] = {}
    t0, t1 = marks.get("CONNECT_START"), marks.get("CONNECTED")
    if t0 is not None and t1 is not None:
        out["connect"] = {"seconds": round(t1 - t0, 1), "gc": bl.gc_summary(trace, t0, t1)}
    if trace["probe"]:
        _, ms, tracked, frozen = trace["probe"][-1]
        out["idle_full_gc"] = {"ms": round(ms, 1), "tracked": tracked, "frozen": frozen}
    for phase in ("SAT", "HALF"):
        t0, t1 = marks.get(f"{phase}_START"), marks.get(f"{phase}_END")
        if t0 is None or t1 is None:
            continue
        lags = [lag * 1000 for t, lag in trace["lag"] if t0 <= t <= t1]
        out[phase.lower()] = {
            "seconds": round(t1 - t0, 1),
            "gc": bl.gc_summary(trace, t0, t1),
            "loop_lag_ms": bl.pcts(lags),
        }
    return out


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Of repeated runs, the one with the highest closed-loop rate: on a
    shared machine a run is only ever slowed down by its neighbours."""
    return max(runs, key=lambda r: r.get("sat", {}).get("deliveries_per_s") or 0)


def table(results: list[dict[str, Any]]) -> str:
    rows: list[list[Any]] = []
    for n in sorted({r["n"] for r in results}):
        servers = list(dict.fromkeys(r["server"] for r in results if r["n"] == n))
        servers.sort(key=lambda s: not s.startswith("baseline"))
        best = {s: _best([r for r in results if r["n"] == n and r["server"] == s]) for s in servers}
        for server, r in best.items():
            sat, half = r.get("sat", {}), r.get("half", {})
            lost = half.get("expected", 0) - half.get("delivered", 0) if half else None
            runs = [x for x in results if x["n"] == n and x["server"] == server]
            spread = "; ".join(
                f"{x['sat'].get('deliveries_per_s', 0):,} / {x.get('half', {}).get('p99', 0):.0f}"
                for x in runs
                if "sat" in x
            )
            rows.append(
                [
                    n,
                    server + (" [profiled]" if r.get("profiled") else ""),
                    sat.get("deliveries_per_s"),
                    r.get("ramp_best_deliveries_per_s"),
                    half.get("target_deliv_per_s"),
                    half.get("p50"),
                    half.get("p99"),
                    lost,
                    r.get("rss_per_conn_kb"),
                    r.get("cpu_server_pct"),
                    spread or None,
                    r.get("error"),
                ]
            )
        base = next((r for s, r in best.items() if s.startswith("baseline")), None)
        tl = next((r for s, r in best.items() if s.startswith("Threadline (") and "sat" in r), None)
        if base and tl:
            base_d = base.get("sat", {}).get("deliveries_per_s")
            d = bl.ratio(tl["sat"].get("deliveries_per_s"), base_d)
            ramp = bl.ratio(tl.get("ramp_best_deliveries_per_s"), base_d)
            p99 = bl.ratio(tl.get("half", {}).get("p99"), base.get("half", {}).get("p99"))
            p50 = bl.ratio(tl.get("half", {}).get("p50"), base.get("half", {}).get("p50"))
            rss = bl.ratio(tl.get("rss_per_conn_kb"), base.get("rss_per_conn_kb"))
            rows.append(
                [
                    n,
                    "**ratio Threadline / baseline**",
                    f"**{d}** ({'meets' if d and d >= 0.6 else 'misses'} >= 0.6)",
                    f"{ramp}",
                    None,
                    f"{p50}x",
                    f"**{p99}x** ({'meets' if p99 and p99 <= 1.5 else 'misses'} <= 1.5x)",
                    None,
                    f"{rss}x (B3: <= 2x)",
                    None,
                    None,
                    None,
                ]
            )
    header = [
        "N", "server", "deliveries/s (closed loop)", "ramp best deliveries/s",
        "half load deliveries/s", "p50 ms @half", "p99 ms @half", "lost @half",
        "RSS KB/conn", "server CPU %", "every run: deliveries/s / p99 ms", "error",
    ]  # fmt: skip
    return bl.markdown_table(header, rows)


def ws_impl_table(results: list[dict[str, Any]], impls: list[str]) -> str:
    """One row per uvicorn websocket implementation and N (best run), with
    ratios to the sans-I/O implementation (what server/cli.py ships) and to
    the bare-websockets baseline when it ran."""
    rows: list[list[Any]] = []
    for n in sorted({r["n"] for r in results}):
        at_n = [r for r in results if r["n"] == n]
        base_runs = [r for r in at_n if r["server"].startswith("baseline")]
        base = _best(base_runs) if base_runs else {}
        best: dict[str, dict[str, Any]] = {}
        for impl in impls:
            runs = [r for r in at_n if r["server"] == f"Threadline, uvicorn ws={impl}"]
            if runs:
                best[impl] = _best(runs)
        ref = best.get("websockets-sansio", {})
        for impl, r in best.items():
            d = r.get("sat", {}).get("deliveries_per_s")
            p99 = r.get("half", {}).get("p99")
            rss = r.get("rss_per_conn_kb")
            rows.append(
                [
                    n,
                    impl,
                    d,
                    p99,
                    rss,
                    bl.ratio(d, ref.get("sat", {}).get("deliveries_per_s")),
                    f"{bl.ratio(p99, ref.get('half', {}).get('p99'))}x",
                    f"{bl.ratio(rss, ref.get('rss_per_conn_kb'))}x",
                    bl.ratio(d, base.get("sat", {}).get("deliveries_per_s")) if base else None,
                    r.get("error"),
                ]
            )
    header = [
        "N", "uvicorn ws", "deliveries/s (closed loop)", "p99 ms @half", "RSS KB/conn",
        "deliveries/s vs sans-I/O", "p99 vs sans-I/O", "RSS vs sans-I/O",
        "deliveries/s vs baseline", "error",
    ]  # fmt: skip
    return bl.markdown_table(header, rows)


def main() -> int:
    a = parse_args()
    if not (a.kit / "server_ws.py").exists():
        raise SystemExit(f"bench kit not found at {a.kit} (--kit)")
    started, code = bl.now_iso(), bl.code_version()
    results: list[dict[str, Any]] = []
    with bl.Children() as kids:
        for n, rep in [(n, rep) for n in a.ns for rep in range(a.repeat)]:
            if rep:
                bl.log(f"B1 N={n}: repeat {rep + 1} of {a.repeat}")
            if a.only != "threadline":
                bl.log(f"B1 N={n}: baseline (bare websockets broadcast)")
                results.append(run_baseline(kids, n, a))
                time.sleep(1)
            if a.only != "baseline" and not a.ws_impls:
                bl.log(f"B1 N={n}: Threadline")
                results.append(run_threadline(kids, n, a))
                time.sleep(1)
            for impl in a.ws_impls if a.only != "baseline" else []:
                bl.log(f"B1 N={n}: Threadline, uvicorn ws={impl}")
                results.append(run_threadline(kids, n, a, ws_impl=impl))
                time.sleep(1)
            if a.what_if_uvloop and a.only != "baseline":
                bl.log(f"B1 N={n}: what-if, Threadline on uvloop")
                results.append(run_threadline(kids, n, a, uvloop=True))
                time.sleep(1)
        if a.rss_deflate and a.only != "baseline":
            n = max(a.ns)
            bl.log(f"B1 N={n}: Threadline RSS with permessage-deflate offered")
            results.append(run_threadline(kids, n, a, memonly=True, deflate=True))
    path = bl.save_jsonl("b1", results)
    print(f"## B1 fan-out — {started}\n")
    print(f"Machine: {bl.machine()}; {bl.versions()}.")
    print(f"Code: {code}.")
    print(f"Command: `{' '.join([Path(bl.PY).name, *sys.argv])}`; raw results: {path}\n")
    if a.repeat > 1:
        print(
            f"Each row is the best of {a.repeat} runs (highest closed-loop rate); every run is listed.\n"
        )
    print(table(results))
    if a.ws_impls:
        print("\n### Threadline per uvicorn websocket implementation\n")
        print(ws_impl_table(results, a.ws_impls))
    for r in results:
        if r.get("profile_md"):
            title = f"py-spy, {r['server']}, closed loop, N={r['n']}"
            print(f"\n### {title}\n\n{r['profile_md']}")
        if r.get("trace"):
            print(f"\n{r['server']} N={r['n']} trace (GC pauses, loop lag):")
            print(f"`{json.dumps(r['trace'])}`")
        for key in ("server_errors", "client_stderr", "error"):
            if r.get(key):
                print(f"\n{r['server']} N={r['n']} {key}: {json.dumps(r[key])[:400]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
