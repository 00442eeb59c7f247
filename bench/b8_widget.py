"""B8 (BENCHMARKS.md): the chat widget's weight, and how fast it opens.

  bytes    every widget file as `threadline serve` ships it to a browser
           that accepts gzip: the loader, the chat page (/widget/frame),
           the chat app's modules (app/*.js), frame.css. Budget: loader <= 3 KB gz, whole widget
           <= 40 KB gz (1 KB = 1,024 bytes; bodies only, no headers).
  browser  Debian's Chromium (Playwright) on the demo shop page, served on
           another origin with the README's snippet, and one agent online
           over /ws/agent (so the chat shows, not the offline form):
             page load -> ready  navigation start to the loader's `ready`
                                 event (`Threadline.on('ready')`)
             open -> ready       `Threadline.open()` to a usable chat: the
                                 frame got `open`, its socket got its `ready`
                                 frame, the conversation is loaded, and the
                                 composer is shown with text box and Send
                                 enabled (timed inside the iframe)
           cold: a fresh browser context per run (no HTTP cache, no visitor
           session: a first visit); warm: one context, the page loaded
           again (cache and session kept: a returning visitor). Both clocks
           are `performance.timeOrigin + now()` of the page and the iframe.
           Target: open -> ready <= 300 ms locally (checked on p95).

The server allows 20 new widget sessions a minute per address (LIMITS in
server/http/widget_api.py) and every cold run starts one, so cold runs are
paced to stay under it; warm runs fill the waits.

    .venv/bin/python bench/b8_widget.py            # 30 cold + 30 warm runs (~2 min)
    .venv/bin/python bench/b8_widget.py --quick    # 8 cold + 8 warm runs (~20 s)
    .venv/bin/python bench/b8_widget.py --no-pin   # let Chromium use both cores
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gzip
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import benchlib as bl

KB = 1024
LOADER_BUDGET = 3 * KB
WIDGET_BUDGET = 40 * KB
TARGET_MS = 300.0
RUN_TIMEOUT_MS = 15_000

# Timing probes. In the shop page: the public API, as a site would use it
# (added right after the queue stub, before the loader arrives). In the
# iframe: an init script that notes when the frame hears `open`, when its
# socket gets `ready`, when the visitor session is answered and when the
# conversation has been rendered (#log's aria-busy goes), and the first
# moment all of that holds with the composer usable.
PAGE_PROBE = (
    "<script>Threadline.on('ready', function () { window.__b8Ready = performance.now(); });"
    "</script>\n"
)
FRAME_PROBE = """(() => {
  if (location.pathname !== '/widget/frame') return;
  const now = () => performance.timeOrigin + performance.now();
  const b8 = window.__b8 = {opened: null, session: null, socket: null, loaded: null, readyAt: null};
  const check = () => {
    if (b8.readyAt !== null || b8.opened === null || b8.socket === null || b8.loaded === null) return;
    const composer = document.getElementById('composer');
    const text = document.getElementById('text'), send = document.getElementById('send');
    if (!composer || composer.hidden || text.disabled || send.disabled) return;
    b8.readyAt = now();
  };
  const NativeSocket = window.WebSocket;
  function ProbedSocket(url, protocols) {
    const sock = new NativeSocket(url, protocols);
    sock.addEventListener('message', e => {
      if (b8.socket !== null || typeof e.data !== 'string') return;
      try { if (JSON.parse(e.data).type !== 'ready') return; } catch (x) { return; }
      b8.socket = now();
      setTimeout(check);
    });
    return sock;
  }
  ProbedSocket.prototype = NativeSocket.prototype;
  Object.setPrototypeOf(ProbedSocket, NativeSocket);
  window.WebSocket = ProbedSocket;
  const nativeFetch = window.fetch;
  window.fetch = function (url) {
    const answer = nativeFetch.apply(this, arguments);
    if (String(url).endsWith('/sessions')) {
      answer.then(() => { if (b8.session === null) b8.session = now(); }, () => {});
    }
    return answer;
  };
  window.addEventListener('message', e => {
    if (b8.opened === null && e.data && e.data.threadline === 1 && e.data.type === 'open') {
      b8.opened = now();
      setTimeout(check);
    }
  });
  document.addEventListener('DOMContentLoaded', () => {
    const log = document.getElementById('log');
    new MutationObserver(() => {
      if (!log.hasAttribute('aria-busy') && b8.loaded === null) b8.loaded = now();
      check();
    }).observe(log, {attributes: true, attributeFilter: ['aria-busy']});
    new MutationObserver(check).observe(document.getElementById('panel'),
      {attributes: true, subtree: true, attributeFilter: ['hidden', 'disabled']});
  });
})();"""

OPEN = (
    "() => { const t = performance.timeOrigin + performance.now(); Threadline.open(); return t; }"
)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 8 cold and 8 warm runs")
    ap.add_argument("--runs", type=int, help="cold runs (default 30; quick 8)")
    ap.add_argument("--warm", type=int, help="warm runs (default: as many as cold)")
    ap.add_argument(
        "--no-pin",
        action="store_true",
        help="don't pin: by default the server runs on CPU 0, Chromium and the shop on CPU 1",
    )
    ap.add_argument("--log-level", default="info", help="THREADLINE_LOG_LEVEL (product default)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    a = ap.parse_args()
    a.runs = a.runs or (8 if a.quick else 30)
    a.warm = a.warm if a.warm is not None else a.runs
    return a


# --- setup ------------------------------------------------------------------------


def seed(data_dir: Path, shop_origin: str) -> dict[str, str]:
    """A fresh database: one workspace, a widget inbox the shop may embed,
    one member agent with an API token. All through actions."""
    return asyncio.run(_seed(data_dir, shop_origin))


async def _seed(data_dir: Path, shop_origin: str) -> dict[str, str]:
    from server.actions.agents import do_create_agent  # noqa: PLC0415
    from server.actions.context import perform  # noqa: PLC0415
    from server.actions.inboxes import do_add_inbox_member, do_create_inbox  # noqa: PLC0415
    from server.actions.tokens import do_create_api_token  # noqa: PLC0415
    from server.actions.workspaces import do_create_workspace  # noqa: PLC0415
    from server.domain.actors import Actor, ActorKind, system_actor  # noqa: PLC0415
    from server.domain.values import InboxKind, Role  # noqa: PLC0415
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
            name="Demo Shop",
            kind=InboxKind.WIDGET,
            settings={
                "greeting": "Hi! How can we help?",
                "color": "#0f766e",
                "allowed_domains": [shop_origin],
            },
            box=runtime.secrets,
        )
        agent_id = await perform(
            runtime,
            sys_actor,
            do_create_agent,
            email="agent@bench.test",
            name="Ada Agent",
            password=bl.PASSWORD,
        )
        await perform(
            runtime, sys_actor, do_add_inbox_member, inbox_id=inbox.inbox_id, agent_id=agent_id
        )
        actor = Actor(kind=ActorKind.AGENT, workspace_id=ws, agent_id=agent_id, role=Role.AGENT)
        token = (await perform(runtime, actor, do_create_api_token, name="bench")).token
    finally:
        await runtime.close()
    return {"public_token": inbox.public_token, "agent_token": token}


def write_shop(folder: Path, threadline_url: str, public_token: str) -> None:
    """The demo shop's page (server/demo_shop.py) with the timing probe."""
    from server.demo_shop import shop_page  # noqa: PLC0415

    page = shop_page(threadline_url, public_token)
    loader_tag = "<script async src="
    assert page.count(loader_tag) == 1
    folder.mkdir()
    (folder / "index.html").write_text(page.replace(loader_tag, PAGE_PROBE + loader_tag))


def session_limit() -> tuple[int, float]:
    """New widget sessions the server allows per address: (count, seconds)."""
    from server.http.widget_api import LIMITS  # noqa: PLC0415

    count, seconds = LIMITS["widget_session_limiter"]
    return count, float(seconds)


# --- bytes ------------------------------------------------------------------------


def shipped(base: str, public_token: str) -> list[dict[str, Any]]:
    """Each widget file as the server sends it to a browser accepting gzip."""
    from server.http.widget_assets import app_modules  # noqa: PLC0415

    files = [
        ("loader.js", "/widget/loader.js"),
        ("chat page (/widget/frame)", f"/widget/frame?inbox={public_token}"),
        *[(name, f"/widget/{name}") for name in app_modules()],
        ("frame.css", "/widget/frame.css"),
    ]
    out = []
    for name, path in files:
        request = urllib.request.Request(base + path, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=10) as r:
            body = r.read()
            encoding = r.headers.get("Content-Encoding")
        raw = gzip.decompress(body) if encoding == "gzip" else body
        out.append({"file": name, "bytes": len(raw), "gz": len(body), "encoding": encoding})
    return out


# --- the browser --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def agent_online(base: str, token: str) -> AsyncIterator[None]:
    """An agent's /ws/agent socket for the whole run, read as it goes."""
    from websockets.asyncio.client import connect  # noqa: PLC0415

    url = base.replace("http", "ws", 1) + "/ws/agent"
    async with connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, proxy=None
    ) as sock:
        while '"ready"' not in str(await sock.recv()):
            pass

        async def drain() -> None:
            async for _ in sock:
                pass

        reader = asyncio.create_task(drain())
        try:
            yield
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


async def one_run(page: Any, shop_url: str) -> dict[str, Any]:
    """Load the shop page, wait for `ready`, open the chat, time it."""
    await page.goto(shop_url)
    await page.wait_for_function(
        "() => window.__b8Ready !== undefined", timeout=RUN_TIMEOUT_MS, polling=10
    )
    load_to_ready = await page.evaluate("() => window.__b8Ready")
    frame = next(f for f in page.frames if "/widget/frame?" in f.url)
    opened_at = await page.evaluate(OPEN)
    await frame.wait_for_function(
        "() => window.__b8 && window.__b8.readyAt !== null", timeout=RUN_TIMEOUT_MS, polling=10
    )
    marks = await frame.evaluate("() => window.__b8")
    since_open = {k: round(v - opened_at, 1) if v is not None else None for k, v in marks.items()}
    return {
        "load_to_ready_ms": round(load_to_ready, 1),
        "open_to_ready_ms": since_open["readyAt"],
        "marks_since_open_ms": since_open,
    }


async def browse(a: argparse.Namespace, base: str, shop_url: str, agent_token: str) -> Any:
    from playwright.async_api import async_playwright  # noqa: PLC0415

    per_window, window_s = session_limit()
    budget = per_window - 2  # the warm context's own session, and a margin
    started: collections.deque[float] = collections.deque()  # cold runs' sessions
    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    errors: list[str] = []

    async def context(browser: Any) -> Any:
        made = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        await made.add_init_script(FRAME_PROBE)
        return made

    tried = {"cold": 0, "warm": 0}

    async def run(kind: str, page: Any) -> None:
        tried[kind] += 1
        try:
            result = await one_run(page, shop_url)
        except Exception as e:  # a run that times out is reported, not fatal
            errors.append(f"{kind}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
            bl.log(f"  {kind} run failed: {errors[-1]}")
            return
        (cold if kind == "cold" else warm).append(result)

    async with agent_online(base, agent_token), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=bl.CHROMIUM, args=bl.CHROMIUM_ARGS)
        try:
            version = browser.version
            warm_context = await context(browser)
            warm_page = await warm_context.new_page()
            await one_run(warm_page, shop_url)  # the first visit: primes cache and session
            last = ""
            while tried["cold"] < a.runs or tried["warm"] < a.warm:
                while started and time.monotonic() - started[0] > window_s + 1:
                    started.popleft()
                can_cold = tried["cold"] < a.runs and len(started) < budget
                want_warm = tried["warm"] < a.warm
                if can_cold and (last != "cold" or not want_warm):
                    fresh = await context(browser)
                    try:
                        await run("cold", await fresh.new_page())
                    finally:
                        started.append(time.monotonic())
                        await fresh.close()
                    last = "cold"
                elif want_warm:
                    await run("warm", warm_page)
                    last = "warm"
                else:
                    wait = window_s + 1 - (time.monotonic() - started[0])
                    if wait >= 1:
                        bl.log(
                            f"  {len(cold)}/{a.runs} cold runs; waiting {wait:.0f} s "
                            f"(the server takes {per_window} new widget sessions a minute)"
                        )
                    await asyncio.sleep(max(wait, 0.1))
            await warm_context.close()
        finally:
            await browser.close()
    return cold, warm, errors, version


# --- reporting ----------------------------------------------------------------------


def kb(n: int) -> str:
    return f"{n:,} B ({n / KB:.2f} KB)"


def bytes_table(files: list[dict[str, Any]]) -> str:
    total_raw = sum(f["bytes"] for f in files)
    total_gz = sum(f["gz"] for f in files)
    loader = next(f for f in files if f["file"] == "loader.js")
    rows: list[list[Any]] = []
    for f in files:
        is_loader = f is loader
        rows.append(
            [
                f["file"],
                f["bytes"],
                kb(f["gz"]),
                f"{f['gz'] / f['bytes']:.2f}",
                "3 KB" if is_loader else "-",
                bl.verdict(f["gz"] / LOADER_BUDGET, 1.0) if is_loader else "-",
            ]
        )
    rows.append(
        [
            "**whole widget**",
            total_raw,
            kb(total_gz),
            f"{total_gz / total_raw:.2f}",
            "40 KB",
            bl.verdict(total_gz / WIDGET_BUDGET, 1.0),
        ]
    )
    header = ["file", "bytes", "gzipped (as served)", "gz / raw", "budget", "gz / budget"]
    return bl.markdown_table(header, rows)


def timing_table(cold: list[dict[str, Any]], warm: list[dict[str, Any]]) -> str:
    rows: list[list[Any]] = []
    for series, runs in (("cold (first visit)", cold), ("warm (returning visitor)", warm)):
        for metric, key, target in (
            ("open -> ready", "open_to_ready_ms", TARGET_MS),
            ("page load -> ready", "load_to_ready_ms", None),
        ):
            v = [r[key] for r in runs]
            p95 = bl.pct(v, 0.95)
            rows.append(
                [
                    series,
                    len(v),
                    metric,
                    bl.pct(v, 0.5),
                    p95,
                    max(v) if v else None,
                    round(sum(v) / len(v), 1) if v else None,
                    f"{target:g}" if target else "-",
                    bl.verdict(p95 / target, 1.0) if target and p95 is not None else "-",
                ]
            )
    header = [
        "series", "runs", "metric", "p50 ms", "p95 ms", "max ms", "mean ms", "target ms",
        "p95 / target",
    ]  # fmt: skip
    return bl.markdown_table(header, rows)


def steps_table(cold: list[dict[str, Any]]) -> str:
    """Where a cold open's time goes: medians of each mark, ms after open()."""
    steps = [
        ("the frame hears `open` (postMessage)", "opened"),
        ("visitor session answered (POST /api/v1/widget/sessions)", "session"),
        ("socket's `ready` frame (/ws/widget)", "socket"),
        ("conversation rendered (GET /api/v1/widget/conversation)", "loaded"),
        ("ready (composer usable)", "readyAt"),
    ]
    rows = []
    for label, key in steps:
        v = [
            r["marks_since_open_ms"][key] for r in cold if r["marks_since_open_ms"][key] is not None
        ]
        rows.append([label, bl.pct(v, 0.5), bl.pct(v, 0.95)])
    return bl.markdown_table(["cold open, step", "p50 ms after open()", "p95 ms"], rows)


def versions(chromium: str) -> str:
    def v(pkg: str) -> str:
        return importlib.metadata.version(pkg)

    return (
        f"Python {platform.python_version()}, uvicorn {v('uvicorn')}, websockets "
        f"{v('websockets')}, Playwright {v('playwright')}, Chromium {chromium}"
    )


def widget_changes() -> str:
    done = subprocess.run(
        ["git", "status", "--porcelain", "--", "widget"],
        cwd=bl.ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    changed = [line[3:] for line in done.stdout.splitlines() if line.strip()]
    return f"; uncommitted changes in {', '.join(changed)}" if changed else ""


def main() -> int:
    a = parse_args()
    if not Path(bl.CHROMIUM).exists():
        raise SystemExit(f"{bl.CHROMIUM} is missing (apt-get install chromium)")
    started, code = bl.now_iso(), bl.code_version() + widget_changes()
    server_port, shop_port = bl.free_port(), bl.free_port()
    base = f"http://{bl.HOST}:{server_port}"
    shop_url = f"http://{bl.HOST}:{shop_port}/"
    with bl.temp_dir("tl-b8-", a.keep) as tmp, bl.Children() as kids:
        data = tmp / "data"
        bl.log("B8: seeding a fresh data dir (one widget inbox, one agent)")
        seeded = seed(data, shop_url.rstrip("/"))
        write_shop(tmp / "shop", base, seeded["public_token"])
        server_cmd = bl.threadline_cmd(server_port)
        shop_cmd = [bl.PY, "-m", "http.server", str(shop_port), "--bind", bl.HOST]
        shop_cmd += ["--directory", str(tmp / "shop")]
        if not a.no_pin:
            server_cmd = bl.pinned(bl.SERVER_CPU, server_cmd)
            shop_cmd = bl.pinned(bl.LOAD_CPU, shop_cmd)
            # Chromium (and Playwright's driver) inherit this process's CPU.
            os.sched_setaffinity(0, {int(bl.LOAD_CPU)})
        srv = kids.start(
            server_cmd,
            cwd=tmp,
            env=bl.threadline_env(data, a.log_level),
            log=tmp / "server.log",
        )
        shop = kids.start(shop_cmd, cwd=tmp, log=tmp / "shop.log")
        bl.wait_port(server_port, srv)
        bl.wait_port(shop_port, shop)
        bl.log("B8: bytes shipped")
        files = shipped(base, seeded["public_token"])
        bl.log(f"B8: Chromium, {a.runs} cold and {a.warm} warm runs")
        cold, warm, errors, chromium = asyncio.run(browse(a, base, shop_url, seeded["agent_token"]))
        server_errors = [
            line
            for line in (tmp / "server.log").read_text().splitlines()
            if "Traceback" in line or "ERROR" in line
        ]
    record = {
        "bench": "B8",
        "started": started,
        "code": code,
        "pinned": not a.no_pin,
        "files": files,
        "cold": cold,
        "warm": warm,
        "errors": errors,
        "server_errors": server_errors[:5],
    }
    path = bl.save_jsonl("b8", [record])
    pinning = (
        "not pinned"
        if a.no_pin
        else f"server on CPU {bl.SERVER_CPU}; Chromium, Playwright and the shop on CPU {bl.LOAD_CPU}"
    )
    print(f"## B8 widget — {started}\n")
    print(f"Machine: {bl.machine()}; {versions(chromium)}; {pinning}.")
    print(f"Code: {code}.")
    print(f"Command: `{' '.join([Path(bl.PY).name, *sys.argv])}`; raw results: {path}\n")
    print(bytes_table(files))
    print()
    print(timing_table(cold, warm))
    print()
    print(steps_table(cold))
    for label, found in (("run errors", errors), ("server errors", server_errors)):
        if found:
            print(f"\n{label}: {found[:5]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
