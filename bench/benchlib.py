"""Plumbing shared by the bench/ scripts: child processes that always die,
ports, /proc readings, a Threadline data dir seeded through actions, the
py-spy profile summary, and Markdown tables.

Benchmarks only: neither the server nor the tests import this, and nothing
in CI runs it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import datetime
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DEFAULT_KIT = ROOT.parent / "shared" / "bench-kit"
PY = sys.executable  # the venv's interpreter: servers and the kit run on it too
RESULTS_DIR = BENCH / "results"  # raw JSON lines; git-ignored
HOST = "127.0.0.1"
PASSWORD = "bench-password-not-secret"  # a throwaway data dir
# Debian's Chromium, as the browser benchmarks (B8, B9) drive it.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # runs as root here
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_CPU = "0"
LOAD_CPU = "1"


# --- child processes --------------------------------------------------------


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if this script dies, so no
    server outlives a benchmark that was itself killed."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _raise_exit(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


class Children:
    """Every process a benchmark starts. `stop_all` (also on leaving the
    `with` block, whatever happened) terminates, then kills, each by pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self._logs: list[TextIO] = []

    def __enter__(self) -> Children:
        # SIGTERM to this script unwinds through the finally blocks too.
        signal.signal(signal.SIGTERM, _raise_exit)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self,
        cmd: Sequence[str],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        pipe_stdout: bool = False,
        pipe_stdin: bool = False,
    ) -> subprocess.Popen[str]:
        """Start `cmd`. Output goes to `log` (never an unread pipe, which
        would stall a chatty server) unless `pipe_stdout`."""
        out: TextIO | int = subprocess.DEVNULL
        if log is not None:
            out = log.open("a")
            self._logs.append(out)
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if pipe_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipe_stdout else out,
            stderr=out,
            text=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 -- only prctl, no locks
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[str], timeout: float = 5.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)
        self.procs.clear()
        for f in self._logs:
            f.close()
        self._logs.clear()


def node_env() -> dict[str, str]:
    """The kit's scripts `require('ws')`: resolve it from bench/node_modules."""
    env = dict(os.environ)
    modules = BENCH / "node_modules"
    if not (modules / "ws").is_dir():
        raise SystemExit(f"{modules} is missing: run `npm install` in {BENCH}")
    env["NODE_PATH"] = str(modules)
    return env


def pinned(cpu: str, cmd: Sequence[str]) -> list[str]:
    return ["taskset", "-c", cpu, *cmd]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            socket.create_connection((HOST, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {HOST}:{port} after {timeout:.0f} s")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def temp_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def run_client(
    proc: subprocess.Popen[str],
    timeout: float,
    on_line: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Read a load generator's stdout until it exits (killed after
    `timeout`); returns its `RESULT {...}` line, echoing progress lines."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    result: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.strip()
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
            elif on_line is not None:
                on_line(line)
        proc.wait(5)
    finally:
        timer.cancel()
    if not result:
        result = {"error": f"load generator ended ({proc.returncode}) without a result"}
    return result


class CpuWindow:
    """CPU seconds of the server and the load generator between two marks."""

    def __init__(self, server_pid: int, client_pid: int) -> None:
        self.pids = (server_pid, client_pid)
        self.start: tuple[float, float, float] | None = None
        self.end: tuple[float, float, float] | None = None

    def _now(self) -> tuple[float, float, float]:
        return (time.monotonic(), cpu_s(self.pids[0]), cpu_s(self.pids[1]))

    def mark_start(self) -> None:
        self.start = self._now()

    def mark_end(self) -> None:
        self.end = self._now()

    def percent(self) -> dict[str, float]:
        if self.start is None or self.end is None:
            return {}
        (t0, s0, c0), (t1, s1, c1) = self.start, self.end
        return {
            "cpu_server_pct": round(100 * (s1 - s0) / (t1 - t0), 1),
            "cpu_client_pct": round(100 * (c1 - c0) / (t1 - t0), 1),
        }


# --- Threadline -------------------------------------------------------------


@contextlib.contextmanager
def profiling(pid: int, out: Path, seconds: float) -> Iterator[None]:
    """Sample `pid` with py-spy (non-blocking, so the server is not paused)
    for `seconds` while the block runs; the collapsed stacks go to `out`."""
    spy = Path(PY).with_name("py-spy")
    if not spy.exists():
        raise SystemExit(f"{spy} missing: `{PY} -m pip install py-spy`")
    cmd = [str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    cmd += ["--rate", "250", "--nonblocking", "--threads", "--format", "raw"]
    cmd += ["--output", str(out)]
    cmd = pinned(LOAD_CPU, cmd)  # on the load generator's core, not the server's
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        try:
            proc.wait(seconds + 15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def summarize_profile(path: Path, top: int = 20) -> str:
    """A py-spy `raw` profile recorded with --threads, as Markdown: the share
    of samples per thread kind, then the top frames by self and by inclusive
    samples (percent of all samples)."""
    if not path.exists():
        return "(no profile was written)\n"
    by_thread: collections.Counter[str] = collections.Counter()
    self_n: collections.Counter[str] = collections.Counter()
    incl_n: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = stack.split(";")
        if frames[0].startswith("thread ("):
            name = frames.pop(0).split(": ", 1)[-1]
            by_thread[
                "event loop (MainThread)" if name == "MainThread" else _thread_kind(name)
            ] += count
        if not frames:
            continue
        short = [_short(f) for f in frames]
        self_n[short[-1]] += count
        for frame in set(short) - _ROOT_FRAMES:
            incl_n[frame] += count
    if not total:
        return "(the profile is empty)\n"

    def table(counter: collections.Counter[str], title: str, limit: int) -> list[str]:
        rows = [f"| {title} | % of samples |", "|---|---|"]
        rows += [f"| `{k}` | {100 * n / total:.1f} |" for k, n in counter.most_common(limit)]
        return rows

    lines = [f"{total} samples (py-spy --threads --nonblocking, 250 Hz).", ""]
    lines += [*table(by_thread, "thread", 10), ""]
    lines += [*table(self_n, "self (where the CPU is)", top), ""]
    lines += [*table(incl_n, "inclusive (what it is doing)", top), ""]
    return "\n".join(lines)


# Frames every stack of a thread starts with: left out of "inclusive".
_ROOT_FRAMES = {
    "<module> (threadline)",
    "<module> (serve_uvloop.py)",
    "main (cli.py)",
    "run (runners.py)",
    "Runner.run (runners.py)",
    "BaseEventLoop.run_until_complete (base_events.py)",
    "BaseEventLoop.run_forever (base_events.py)",
    "BaseEventLoop._run_once (base_events.py)",
    "Handle._run (events.py)",
    "Thread._bootstrap (threading.py)",
    "Thread._bootstrap_inner (threading.py)",
    "Thread.run (threading.py)",
}


def _thread_kind(name: str) -> str:
    if "_connection_worker_thread" in name:
        return "aiosqlite worker threads (SQLite calls, and idle waits on their queue)"
    return "other threads"


def _short(frame: str) -> str:
    """`func (path/to/module.py:12)` -> `func (module.py)`."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({file.rsplit('/', 1)[-1]})" if file else name


def threadline_cmd(port: int, launcher: str | None = None) -> list[str]:
    """`threadline serve`, exactly as installed (server/cli.py), or through
    a what-if/diagnostic launcher in bench/ (serve_uvloop.py, serve_traced.py)
    that runs the same cli.main()."""
    exe = Path(PY).with_name("threadline")
    base = [str(exe)] if exe.exists() else [PY, "-m", "server"]
    if launcher is not None:
        base = [PY, str(BENCH / launcher)]
    return [*base, "serve", "--host", HOST, "--port", str(port)]


def threadline_env(data_dir: Path, log_level: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update(THREADLINE_DATA_DIR=str(data_dir), THREADLINE_LOG_LEVEL=log_level)
    # The publisher posts thousands of messages a minute into one
    # conversation: past the flood limit (200 a minute by default) it would
    # measure 429s, not the fan-out.
    env["THREADLINE_MESSAGE_LIMIT"] = "100000000/60"
    return env


def seed_threadline(data_dir: Path, *, agents: int, conversations: int) -> dict[str, Any]:
    """A fresh database in `data_dir`: one workspace, one widget inbox,
    `agents` member agents with one API token each, a poster agent (also a
    member) with its token, and `conversations` open conversations, each
    opened by a visitor's first message. All through actions."""
    return asyncio.run(_seed(data_dir, agents, conversations))


async def _seed(data_dir: Path, agents: int, conversations: int) -> dict[str, Any]:
    from server.actions.agents import do_create_agent  # noqa: PLC0415
    from server.actions.contacts import IdentityInput  # noqa: PLC0415
    from server.actions.context import perform  # noqa: PLC0415
    from server.actions.inboxes import do_add_inbox_member, do_create_inbox  # noqa: PLC0415
    from server.actions.messages import do_receive_message  # noqa: PLC0415
    from server.actions.tokens import do_create_api_token  # noqa: PLC0415
    from server.actions.workspaces import do_create_workspace  # noqa: PLC0415
    from server.domain.actors import Actor, ActorKind, system_actor  # noqa: PLC0415
    from server.domain.values import IdentityKind, InboxKind, Role  # noqa: PLC0415
    from server.runtime import Runtime  # noqa: PLC0415
    from server.settings import Settings  # noqa: PLC0415
    from server.storage.migrate import upgrade_to_head  # noqa: PLC0415

    settings = Settings.from_env({}, THREADLINE_DATA_DIR=str(data_dir))
    await upgrade_to_head(settings.database_url)
    runtime = Runtime.create(settings)
    try:
        ws = await perform(runtime, system_actor(0), do_create_workspace, name="Bench")
        sys_actor = system_actor(ws)
        inbox = await perform(
            runtime,
            sys_actor,
            do_create_inbox,
            name="Website",
            kind=InboxKind.WIDGET,
            settings={},
            box=runtime.secrets,
        )

        async def member(email: str, name: str) -> str:
            agent_id = await perform(
                runtime, sys_actor, do_create_agent, email=email, name=name, password=PASSWORD
            )
            await perform(
                runtime, sys_actor, do_add_inbox_member, inbox_id=inbox.inbox_id, agent_id=agent_id
            )
            actor = Actor(kind=ActorKind.AGENT, workspace_id=ws, agent_id=agent_id, role=Role.AGENT)
            made = await perform(runtime, actor, do_create_api_token, name="bench")
            return made.token

        poster = await member("poster@bench.test", "Pat Poster")
        tokens = [await member(f"agent{i}@bench.test", f"Agent {i}") for i in range(agents)]
        convs = []
        for i in range(conversations):
            got = await perform(
                runtime,
                sys_actor,
                do_receive_message,
                inbox_id=inbox.inbox_id,
                identity=IdentityInput(IdentityKind.EMAIL, f"visitor{i}@bench.test"),
                name=f"Visitor {i}",
                text="hello",
            )
            convs.append(got.conversation_id)
    finally:
        await runtime.close()
    return {
        "workspace_id": ws,
        "inbox_id": inbox.inbox_id,
        "poster_token": poster,
        "agent_tokens": tokens,
        "conversation_ids": convs,
    }


def read_trace(path: Path) -> dict[str, list[Any]]:
    """What bench/serve_traced.py appended: lock, lag, gc and probe samples."""
    trace: dict[str, list[Any]] = {"lock": [], "lag": [], "gc": [], "probe": []}
    if path.exists():
        for line in path.read_text().splitlines():
            chunk = json.loads(line)
            for key in trace:
                trace[key] += chunk.get(key, [])
    return trace


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile by nearest rank."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(q * len(v)) - 1)]


def verdict(value: float, limit: float) -> str:
    """A ratio to its target, bold, with whether it meets it."""
    return f"**{value:.2f}** ({'meets' if value <= limit else 'misses'} <= {limit:g})"


def pcts(values: list[float]) -> dict[str, float]:
    """mean, p50, p99, max and count of `values`."""
    if not values:
        return {}
    v = sorted(values)

    def at(q: float) -> float:
        return round(v[min(len(v) - 1, int(q * len(v)))], 2)

    return {
        "mean": round(sum(v) / len(v), 2),
        "p50": at(0.5),
        "p99": at(0.99),
        "max": round(v[-1], 2),
        "n": len(v),
    }


def gc_summary(trace: dict[str, list[Any]], t0: float, t1: float) -> dict[str, Any]:
    """Garbage-collector pauses between wall times t0 and t1, by generation."""
    out: dict[str, Any] = {}
    for gen in (0, 1, 2):
        ms = [p * 1000 for t, g, p in trace["gc"] if g == gen and t0 <= t <= t1]
        if ms:
            out[f"gen{gen}"] = {
                "n": len(ms),
                "total_ms": round(sum(ms)),
                "max_ms": round(max(ms), 1),
            }
    return out


# --- reporting ----------------------------------------------------------------


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {mem_gb:.0f} GiB, Linux {platform.release()}"


def versions() -> str:
    import uvicorn  # noqa: PLC0415
    from websockets.version import version as websockets_version  # noqa: PLC0415

    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return (
        f"Python {platform.python_version()}, uvicorn {uvicorn.__version__}, "
        f"websockets {websockets_version}, Node {node.stdout.strip()}"
    )


def code_version() -> str:
    """The commit measured, and which server files differed from it (other
    people's uncommitted work is measured too: the server runs from the tree)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = [f for f in git("diff", "--name-only", "HEAD", "--", "server").splitlines() if f]
    return f"commit {head}" + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else "")


def now_iso() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b:
        return None
    return round(a / b, 2)


def save_jsonl(name: str, records: Sequence[dict[str, Any]]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{name}-{stamp}.jsonl"
    with path.open("w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
