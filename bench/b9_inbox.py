"""B9 (BENCHMARKS.md): the inbox web app with 10k conversations, in Chromium.

  first load  navigation start of `GET /#/v/all` (already logged in: the
              session cookie is in the browser context) to the moment the
              conversation list shows its 50 rows and the sidebar's counts
              are drawn (`.view-count`). The whole boot is in it: the page
              and its modules, /auth/me, the agent socket's `ready` frame
              (the app loads nothing before it), the directory, counts and
              list requests, and the drawing.
                cold  a fresh browser context per run, logged in through the
                      API just before (no HTTP cache: a first visit)
                warm  a new tab in one context that has loaded the app
                      before (cache and session kept; the modules are
                      revalidated, `Cache-Control: no-cache`)
              Target: <= 1 s (checked on p95).
  switch      with the list shown and one conversation open, a click on
              another row (dispatched inside the page) to the moment the new
              conversation is fully shown: its last message is rendered
              (`.message[data-id=...] .message-text` in the pane), the
              pane's heading reads the new contact's name and the contact
              column too (`.contact-column .contact-name`). Each switch goes
              to a different row, and starts once the page is idle (no
              request in flight for 300 ms: the previous switch's read
              marker and the live refreshes it causes are done).
              Target: <= 100 ms (checked on p95).

Every time is taken inside the page with `performance.now()` (ms since the
navigation started): a MutationObserver notes the first moment the DOM holds
what is waited for; "painted" is the end of the next frame after that
(requestAnimationFrame, then a message-channel hop), which is what the
verdict uses. Where the time goes:
  steps     the page's resource timings (each API request's start, wait for
            the server's first byte, and end) and the probe's marks
  CPU       per load and per switch, the renderer main thread's CPU time in
            tasks, scripts, layout and style (CDP Performance.getMetrics,
            thread ticks); the CPU time of the server and of Chromium's
            processes, and how long their threads waited in the run queue
            for a CPU (/proc/<pid>/task/*/schedstat). On a shared machine a
            large wait means the figure measured the neighbours too.
  alone     each API request the app made, replayed from a plain HTTP
            client on a keep-alive connection with the session cookie

The data: a fresh SQLite data dir with one workspace, one widget inbox and
one admin agent (through actions, as the other scripts do), then 10,000
contacts (distinct names, an email identity each), 10,000 open
conversations (one per contact, every tenth assigned to the admin, spread
over 30 days) and 3 to 7 messages each (~50k, alternating customer and
agent) inserted in bulk with SQLAlchemy Core into the tables of
server/storage/tables.py. Bulk seeding bypasses the actions, so these rows
have no events: B9 reads lists and threads, which don't look at events.
No ANALYZE is run (the server never runs one; `--analyze` to compare).

    .venv/bin/python bench/b9_inbox.py            # 30 cold + 30 warm loads, 30 switches
    .venv/bin/python bench/b9_inbox.py --quick    # 5 + 5 loads, 10 switches
    .venv/bin/python bench/b9_inbox.py --no-pin   # let Chromium use both cores
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.metadata
import os
import platform
import random
import re
import sys
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchlib as bl

LOAD_TARGET_MS = 1000.0
SWITCH_TARGET_MS = 100.0
PAGE_ROWS = 50  # the app asks for 50 conversations per page
RUN_TIMEOUT_MS = 30_000
IDLE_MS = 300  # a switch starts after this long with no request in flight
ADMIN_EMAIL = "admin@bench.test"

FIRST = [
    "Ada", "Ben", "Cora", "Dan", "Eve", "Finn", "Gia", "Hal", "Ivy", "Jon", "Kai", "Lea",
    "Mia", "Noor", "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tess", "Uma", "Vik", "Wen", "Yara",
]  # fmt: skip
LAST = [
    "Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Moore",
    "Taylor", "Clark", "Lewis", "Walker", "Young", "King", "Wright", "Scott", "Green",
]  # fmt: skip
WORDS = [
    "order", "refund", "shipping", "delivery", "invoice", "account", "password", "login",
    "payment", "card", "package", "tracking", "return", "exchange", "size", "colour",
    "discount", "coupon", "subscription", "cancel", "upgrade", "plan", "billing", "address",
    "email", "phone", "late", "broken", "missing", "damaged", "the", "a", "my", "your", "is",
    "was", "not", "when", "can", "could", "please", "thanks", "today", "yesterday", "week",
    "still", "again", "help", "need", "want", "check", "arrived",
]  # fmt: skip

# Runs at document start in every page of a context (only the app's page):
# notes when the agent socket's `ready` frame comes, counts requests in
# flight, and watches the DOM for a first load's end and for a switch's.
PROBE = """(() => {
  if (location.pathname !== '/') return;
  performance.setResourceTimingBufferSize(100000);
  const now = () => performance.now();
  const b9 = window.__b9 = {socket: null, rows: null, counts: null, ready: null, painted: null,
                            inflight: 0, lastFetchEnd: 0, switch: null};
  let waiters = [];
  const afterPaint = (fn) => requestAnimationFrame(() => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      fn();
      const called = waiters;
      waiters = [];
      called.forEach(w => w());
    };
    channel.port2.postMessage(0);
  });
  // Resolves once a first load (or the current switch) is painted: no polling.
  window.__b9Painted = (what) => new Promise(resolve => {
    const done = () => (what === 'switch' ? b9.switch.painted : b9.painted) !== null;
    if (done()) { resolve(); return; }
    const wait = () => { if (done()) resolve(); else waiters.push(wait); };
    waiters.push(wait);
  });
  const checkSwitch = (s) => {
    const pane = document.querySelector('main.pane');
    if (s.thread === null && pane && pane.querySelector(s.message)) s.thread = now();
    if (s.header === null && pane) {
      const h = pane.querySelector('.pane-header h1');
      if (h && h.textContent === s.name) s.header = now();
    }
    if (s.contact === null) {
      const c = document.querySelector('.contact-column .contact-name');
      if (c && c.textContent === s.name) s.contact = now();
    }
    if (s.done === null && s.thread !== null && s.header !== null && s.contact !== null) {
      s.done = now();
      afterPaint(() => { s.painted = now(); });
    }
  };
  const check = () => {
    if (b9.rows === null
        && document.querySelectorAll('.conversation-list .conversation-row').length >= __ROWS__) {
      b9.rows = now();
    }
    if (b9.counts === null && document.querySelector('.sidebar .view-count')) b9.counts = now();
    if (b9.ready === null && b9.rows !== null && b9.counts !== null) {
      b9.ready = now();
      afterPaint(() => { b9.painted = now(); });
    }
    if (b9.switch !== null && b9.switch.done === null) checkSwitch(b9.switch);
  };
  new MutationObserver(check).observe(document, {childList: true, subtree: true,
                                                 characterData: true});
  const NativeSocket = window.WebSocket;
  function ProbedSocket(url, protocols) {
    const sock = new NativeSocket(url, protocols);
    sock.addEventListener('message', e => {
      if (b9.socket !== null || typeof e.data !== 'string') return;
      try { if (JSON.parse(e.data).type !== 'ready') return; } catch (x) { return; }
      b9.socket = now();
    });
    return sock;
  }
  ProbedSocket.prototype = NativeSocket.prototype;
  Object.setPrototypeOf(ProbedSocket, NativeSocket);
  window.WebSocket = ProbedSocket;
  const nativeFetch = window.fetch;
  window.fetch = function () {
    b9.inflight += 1;
    const done = () => { b9.inflight -= 1; b9.lastFetchEnd = now(); };
    const answer = nativeFetch.apply(this, arguments);
    answer.then(r => r.clone().arrayBuffer().then(done, done), done);
    return answer;
  };
  // Click a row of the list (by conversation id) and watch for the result.
  window.__b9Switch = (id, name, messageId) => {
    const row = document.querySelector(`.conversation-row[data-id="${id}"]`);
    if (!row) return null;
    const s = b9.switch = {id, name, message: `.message[data-id="${messageId}"] .message-text`,
                           t0: now(), thread: null, header: null, contact: null, done: null,
                           painted: null};
    row.click();
    check();
    return s.t0;
  };
})();"""

IDLE = (
    "() => window.__b9 && window.__b9.inflight === 0"
    f" && performance.now() - window.__b9.lastFetchEnd > {IDLE_MS}"
)

# The page's API requests (resource timings) since a moment, ms since
# navigation start.
REQUESTS = """(since) => performance.getEntriesByType('resource')
  .filter(e => e.startTime >= since && e.name.includes('/api/v1/'))
  .map(e => ({url: e.name.slice(e.name.indexOf('/api/v1/')), start: e.startTime,
              requestStart: e.requestStart, responseStart: e.responseStart,
              end: e.responseEnd}))"""


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 5 + 5 loads, 10 switches")
    ap.add_argument("--runs", type=int, help="cold first loads (default 30; quick 5)")
    ap.add_argument("--warm", type=int, help="warm first loads (default: as many as cold)")
    ap.add_argument("--switches", type=int, help="conversation switches (default 30; quick 10)")
    ap.add_argument("--replays", type=int, help="times each API request is replayed alone")
    ap.add_argument("--conversations", type=int, default=10_000, help="default 10,000")
    ap.add_argument("--analyze", action="store_true", help="run ANALYZE after seeding")
    ap.add_argument(
        "--no-pin",
        action="store_true",
        help="don't pin: by default the server runs on CPU 0, Chromium on CPU 1",
    )
    ap.add_argument("--log-level", default="info", help="THREADLINE_LOG_LEVEL (product default)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    a = ap.parse_args()
    a.runs = a.runs or (5 if a.quick else 30)
    a.warm = a.warm if a.warm is not None else a.runs
    a.switches = a.switches or (10 if a.quick else 30)
    a.replays = a.replays or (10 if a.quick else 30)
    if a.switches > PAGE_ROWS - 1:
        raise SystemExit(f"--switches: at most {PAGE_ROWS - 1} (the rows of the first page)")
    return a


# --- setup ------------------------------------------------------------------------


def seed(data_dir: Path, conversations: int, analyze: bool) -> dict[str, Any]:
    """A fresh database: workspace, inbox and admin through actions, then
    the bulk rows with Core inserts (see the module's docstring)."""
    return asyncio.run(_seed(data_dir, conversations, analyze))


async def _seed(data_dir: Path, conversations: int, analyze: bool) -> dict[str, Any]:
    import sqlalchemy as sa  # noqa: PLC0415

    from server.actions.agents import do_create_agent  # noqa: PLC0415
    from server.actions.context import perform  # noqa: PLC0415
    from server.actions.inboxes import do_add_inbox_member, do_create_inbox  # noqa: PLC0415
    from server.actions.workspaces import do_create_workspace  # noqa: PLC0415
    from server.domain.actors import system_actor  # noqa: PLC0415
    from server.domain.values import InboxKind, Role  # noqa: PLC0415
    from server.runtime import Runtime  # noqa: PLC0415
    from server.settings import Settings  # noqa: PLC0415
    from server.storage import tables as t  # noqa: PLC0415
    from server.storage.migrate import upgrade_to_head  # noqa: PLC0415

    rng = random.Random(9)
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
        admin_id = await perform(
            runtime,
            sys_actor,
            do_create_agent,
            email=ADMIN_EMAIL,
            name="Ada Admin",
            password=bl.PASSWORD,
            role=Role.ADMIN,
        )
        await perform(
            runtime, sys_actor, do_add_inbox_member, inbox_id=inbox.inbox_id, agent_id=admin_id
        )

        async def next_id(table: sa.Table) -> int:
            async with runtime.db.read() as conn:
                return int(await conn.scalar(sa.select(sa.func.max(table.c.id))) or 0) + 1

        now = datetime.now(UTC).replace(microsecond=0)
        window = timedelta(days=30)
        contacts: list[dict[str, Any]] = []
        identities: list[dict[str, Any]] = []
        convs: list[dict[str, Any]] = []
        msgs: list[dict[str, Any]] = []
        last_message: dict[int, int] = {}
        contact_id, identity_id = await next_id(t.contacts), await next_id(t.contact_identities)
        conv_id, msg_id = await next_id(t.conversations), await next_id(t.messages)
        for i in range(conversations):
            name = f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]} {i + 1}"
            start = now - window + timedelta(seconds=rng.uniform(0, window.total_seconds() - 7200))
            contacts.append(
                {
                    "id": contact_id,
                    "workspace_id": ws,
                    "name": name,
                    "attributes": {"plan": rng.choice(["free", "pro", "team"])},
                    "created_at": start,
                    "last_seen_at": None,
                    "merged_into_id": None,
                }
            )
            identities.append(
                {
                    "id": identity_id,
                    "workspace_id": ws,
                    "contact_id": contact_id,
                    "kind": "email",
                    "value": f"customer{i + 1}@example.com",
                    "verified": False,
                    "created_at": start,
                }
            )
            count = rng.randint(3, 7)
            at = start
            first_reply = waiting = None
            for seq in range(1, count + 1):
                inbound = seq % 2 == 1
                at += timedelta(seconds=rng.randint(20, 900))
                text = " ".join(rng.choices(WORDS, k=rng.randint(6, 30))).capitalize() + "."
                msgs.append(
                    {
                        "id": msg_id,
                        "workspace_id": ws,
                        "conversation_id": conv_id,
                        "contact_id": contact_id,
                        "inbox_id": inbox.inbox_id,
                        "seq": seq,
                        "direction": "inbound" if inbound else "outbound",
                        "sender_kind": "contact" if inbound else "agent",
                        "sender_id": contact_id if inbound else admin_id,
                        "private": False,
                        "text": text,
                        "html": None,
                        "external_id": None,
                        "idempotency_key": None,
                        "delivery_status": "received" if inbound else "sent",
                        "delivery_error": None,
                        "attachments": [],
                        "created_at": at,
                    }
                )
                if inbound:
                    waiting = waiting or at
                else:
                    waiting, first_reply = None, first_reply or at
                msg_id += 1
            last_message[conv_id] = msg_id - 1
            convs.append(
                {
                    "id": conv_id,
                    "workspace_id": ws,
                    "inbox_id": inbox.inbox_id,
                    "contact_id": contact_id,
                    "subject": None,
                    "status": "open",
                    "snoozed_until": None,
                    "priority": "none",
                    "assignee_id": admin_id if i % 10 == 0 else None,
                    "team_id": None,
                    "last_seq": count,
                    "created_at": start,
                    "first_reply_at": first_reply,
                    "waiting_since": waiting,
                    "resolved_at": None,
                    "last_activity_at": at,
                    "contact_last_read_seq": 0,
                    "agent_last_read_seq": 0,
                    "merged_into_id": None,
                }
            )
            contact_id, identity_id, conv_id = contact_id + 1, identity_id + 1, conv_id + 1
        for table, rows in (
            (t.contacts, contacts),
            (t.contact_identities, identities),
            (t.conversations, convs),
            (t.messages, msgs),
        ):
            for chunk in range(0, len(rows), 5000):
                async with runtime.db.write() as conn:
                    await conn.execute(table.insert(), rows[chunk : chunk + 5000])
        if analyze:
            async with runtime.db.write() as conn:
                await conn.exec_driver_sql("ANALYZE")
    finally:
        await runtime.close()
    return {
        "conversations": len(convs),
        "messages": len(msgs),
        "last_message": last_message,
    }


# --- the browser --------------------------------------------------------------------


async def login(context: Any, base: str) -> None:
    """Log the context in through the API: its session cookie, nothing cached."""
    answer = await context.request.post(
        f"{base}/api/v1/auth/login", data={"email": ADMIN_EMAIL, "password": bl.PASSWORD}
    )
    if answer.status != 200:
        raise RuntimeError(f"login answered {answer.status}: {await answer.text()}")


class CpuMeter:
    """CPU time and run-queue wait (/proc/<pid>/task/*/schedstat, ns) of the
    server and of everything else this script started (Chromium's
    processes and Playwright's driver): on a shared machine, how long each
    side waited for a CPU says whether a figure measured the app or its
    neighbours."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    @staticmethod
    def _sched(pid: int) -> tuple[float, float]:
        run = wait = 0
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with (
                    contextlib.suppress(OSError, ValueError),
                    open(f"/proc/{pid}/task/{task}/schedstat") as f,
                ):
                    r, w, _ = f.read().split()
                    run, wait = run + int(r), wait + int(w)
        return run / 1e6, wait / 1e6

    def _browser_pids(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError), open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry))
        out, todo = [], list(parents.get(os.getpid(), []))
        while todo:
            pid = todo.pop()
            if pid != self.server_pid:
                out.append(pid)
                todo += parents.get(pid, [])
        return out

    def read(self) -> dict[str, Any]:
        return {
            "server": self._sched(self.server_pid),
            "browser": {pid: self._sched(pid) for pid in self._browser_pids()},
        }

    @staticmethod
    def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        """ms of CPU and of waiting for one, between two readings (a process
        started in between counts from zero)."""
        b_run = sum(
            r - before["browser"].get(p, (0, 0))[0] for p, (r, _) in after["browser"].items()
        )
        b_wait = sum(
            w - before["browser"].get(p, (0, 0))[1] for p, (_, w) in after["browser"].items()
        )
        return {
            "server_cpu": round(after["server"][0] - before["server"][0], 1),
            "server_wait": round(after["server"][1] - before["server"][1], 1),
            "browser_cpu": round(b_run, 1),
            "browser_wait": round(b_wait, 1),
        }


# The renderer's own accounting (CDP Performance.getMetrics, thread time):
# CPU seconds of its main thread in tasks, scripts, layout and style.
RENDERER_METRICS = {
    "TaskDuration": "main_cpu",
    "ScriptDuration": "script",
    "LayoutDuration": "layout",
    "RecalcStyleDuration": "style",
}


async def renderer_metrics(cdp: Any) -> dict[str, float]:
    got = (await cdp.send("Performance.getMetrics"))["metrics"]
    return {
        RENDERER_METRICS[m["name"]]: m["value"] * 1000 for m in got if m["name"] in RENDERER_METRICS
    }


async def watch(page: Any) -> Any:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
    return cdp


async def first_load(page: Any, url: str, meter: CpuMeter) -> dict[str, Any]:
    """Open the app on `url` in a fresh tab, wait for the list and counts."""
    cdp = await watch(page)
    before = meter.read()
    await page.goto(url)
    await page.evaluate("() => window.__b9Painted('load')")
    cpu = meter.delta(before, meter.read())
    # The page's renderer counts from its start (a new one for a new site).
    cpu.update({k: round(v, 1) for k, v in (await renderer_metrics(cdp)).items()})
    await cdp.detach()
    marks = await page.evaluate("() => window.__b9")
    nav = await page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {document: n.responseEnd, dcl: n.domContentLoadedEventEnd}; }"
    )
    requests = await page.evaluate(REQUESTS, 0)
    modules = await page.evaluate(
        "() => Math.max(0, ...performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes('/ui/') && e.name.endsWith('.js')).map(e => e.responseEnd))"
    )
    first = {
        "document": nav["document"],
        "modules": modules,
        "me": _end(requests, "/api/v1/auth/me"),
        "socket": marks["socket"],
        "counts_answer": _end(requests, "/api/v1/views/counts"),
        "list_answer": _end(requests, "/api/v1/conversations?", f"limit={PAGE_ROWS}"),
        "rows": marks["rows"],
        "counts": marks["counts"],
        "ready": marks["ready"],
        "painted": marks["painted"],
    }
    return {
        "load_ms": round(marks["painted"], 1),
        "load_dom_ms": round(marks["ready"], 1),
        "marks_ms": {k: round(v, 1) if v is not None else None for k, v in first.items()},
        "cpu_ms": cpu,
        "requests": _rounded(requests),
    }


def _end(
    requests: list[dict[str, Any]], prefix: str, has: str = "", *, exact: bool = False
) -> float | None:
    """When the last request whose URL starts with `prefix` (or is it) and
    holds `has` ended."""
    ends = [
        r["end"]
        for r in requests
        if (r["url"] == prefix if exact else r["url"].startswith(prefix)) and has in r["url"]
    ]
    return max(ends) if ends else None


def _rounded(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()} for r in requests]


async def switches(
    page: Any, n: int, last_message: dict[int, int], meter: CpuMeter
) -> list[dict[str, Any]]:
    """Click `n` different rows of the list in turn; time each switch."""
    cdp = await watch(page)
    rows = await page.eval_on_selector_all(
        ".conversation-list .conversation-row",
        "els => els.map(e => [Number(e.dataset.id), e.querySelector('.row-contact').textContent,"
        " e.classList.contains('open')])",
    )
    targets = [(cid, name) for cid, name, is_open in rows if not is_open]
    order = [targets[(k * 17 + 3) % len(targets)] for k in range(min(n, len(targets)))]
    out = []
    for cid, name in order:
        await page.wait_for_function(IDLE, timeout=RUN_TIMEOUT_MS, polling=50)
        before, metrics = meter.read(), await renderer_metrics(cdp)
        t0 = await page.evaluate(
            "([id, name, m]) => window.__b9Switch(id, name, m)", [cid, name, last_message[cid]]
        )
        if t0 is None:
            raise RuntimeError(f"no row for conversation {cid}")
        await asyncio.wait_for(
            page.evaluate("() => window.__b9Painted('switch')"), RUN_TIMEOUT_MS / 1000
        )
        cpu = meter.delta(before, meter.read())
        after = await renderer_metrics(cdp)
        cpu.update({k: round(after[k] - metrics[k], 1) for k in after})
        s = await page.evaluate("() => window.__b9.switch")
        requests = [
            {k: v - t0 if isinstance(v, float | int) else v for k, v in r.items()}
            for r in await page.evaluate(REQUESTS, t0)
        ]
        since = _switch_marks(cid, s, t0, requests)
        out.append(
            {
                "conversation_id": cid,
                "switch_ms": since["painted"],
                "switch_dom_ms": since["done"],
                "marks_since_click_ms": since,
                "cpu_ms": cpu,
                "requests": _rounded(requests),
            }
        )
    await cdp.detach()
    return out


def _switch_marks(
    cid: int, s: dict[str, Any], t0: float, requests: list[dict[str, Any]]
) -> dict[str, float | None]:
    """A switch's marks, ms after the click (`requests` already are)."""
    early = [r for r in requests if r["start"] <= s["done"] - t0]
    contact = [r["end"] for r in early if "/contacts/" in r["url"] or "contact_id=" in r["url"]]
    marks = {
        "first_request": min(r["start"] for r in early) if early else None,
        "conversation_answer": _end(early, f"/api/v1/conversations/{cid}", "", exact=True),
        "messages_answer": _end(early, f"/api/v1/conversations/{cid}/messages"),
        "thread": s["thread"] - t0,
        "contact_answers": max(contact) if contact else None,
        "header": s["header"] - t0,
        "contact": s["contact"] - t0,
        "done": s["done"] - t0,
        "painted": s["painted"] - t0,
    }
    return {k: round(v, 1) if v is not None else None for k, v in marks.items()}


async def browse(a: argparse.Namespace, base: str, seeded: dict[str, Any], meter: CpuMeter) -> Any:
    from playwright.async_api import async_playwright  # noqa: PLC0415

    url = f"{base}/#/v/all"
    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    errors: list[str] = []

    async def context(browser: Any) -> Any:
        made = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        rows = min(PAGE_ROWS, seeded["conversations"])  # a first page is full
        await made.add_init_script(PROBE.replace("__ROWS__", str(rows)))
        await login(made, base)
        return made

    async def run(kind: str, ctx: Any) -> None:
        page = await ctx.new_page()
        try:
            result = await asyncio.wait_for(first_load(page, url, meter), RUN_TIMEOUT_MS / 1000)
        except Exception as e:  # a run that times out is reported, not fatal
            errors.append(f"{kind}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
            bl.log(f"  {kind} run failed: {errors[-1]}")
            return
        finally:
            await page.close()
        if kind != "prime":
            (cold if kind == "cold" else warm).append(result)

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=bl.CHROMIUM, args=bl.CHROMIUM_ARGS)
        try:
            version = browser.version
            warm_context = await context(browser)
            await run("prime", warm_context)  # the first visit: fills the cache
            for i in range(max(a.runs, a.warm)):
                if i < a.runs:
                    fresh = await context(browser)
                    try:
                        await run("cold", fresh)
                    finally:
                        await fresh.close()
                if i < a.warm:
                    await run("warm", warm_context)
            bl.log(f"B9: {a.switches} conversation switches")
            page = await warm_context.new_page()
            await first_load(page, url, meter)
            first_id = int(
                await page.eval_on_selector(".conversation-row", "e => e.dataset.id")
            )  # fmt: skip
            await page.evaluate("id => { location.hash = `#/v/all/c/${id}`; }", first_id)
            await page.wait_for_selector(
                f'.message[data-id="{seeded["last_message"][first_id]}"]', timeout=RUN_TIMEOUT_MS
            )
            switched = await switches(page, a.switches, seeded["last_message"], meter)
            # The exact requests the app made, for the replay.
            app_requests = [r["url"] for r in cold[-1]["requests"]] if cold else []
            app_requests += [r["url"] for r in switched[-1]["requests"]] if switched else []
            cookies = await warm_context.cookies()
            await warm_context.close()
        finally:
            await browser.close()
    return cold, warm, switched, errors, version, app_requests, cookies


# --- API requests alone -------------------------------------------------------------


def _ms(values: list[float], q: float) -> float | None:
    """The q-quantile of `values` to 0.1 ms, or None when there are none."""
    got = bl.pct(values, q)
    return None if got is None else round(got, 1)


def replay(base: str, cookies: list[dict[str, Any]], urls: list[str], n: int) -> list[Any]:
    """Each distinct GET the app made, `n` times in a row over one
    keep-alive connection with the browser's session cookie: the server's
    time for it with nothing else going on."""
    host = urllib.parse.urlsplit(base)
    header = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    conn = http.client.HTTPConnection(host.netloc, timeout=30)
    out = []
    seen: set[str] = set()
    for url in urls:
        if url in seen or url.endswith("/read"):  # the read marker is a POST
            continue
        seen.add(url)
        times = []
        size = status = 0
        for _ in range(n + 1):  # the first one is a warm-up
            start = time.perf_counter()
            conn.request("GET", url, headers={"Cookie": header})
            answer = conn.getresponse()
            body = answer.read()
            times.append((time.perf_counter() - start) * 1000)
            size, status = len(body), answer.status
        out.append({"url": url, "status": status, "bytes": size, "ms": times[1:]})
    conn.close()
    return out


# --- reporting ----------------------------------------------------------------------


def summary_table(
    cold: list[dict[str, Any]], warm: list[dict[str, Any]], switched: list[dict[str, Any]]
) -> str:
    rows: list[list[Any]] = []
    for label, runs, key, target in (
        ("first load, cold (new context)", cold, "load_ms", LOAD_TARGET_MS),
        ("first load, warm (same context, new tab)", warm, "load_ms", LOAD_TARGET_MS),
        ("switch conversation", switched, "switch_ms", SWITCH_TARGET_MS),
    ):
        v = [r[key] for r in runs]
        p95 = bl.pct(v, 0.95)
        rows.append(
            [
                label,
                len(v),
                bl.pct(v, 0.5),
                p95,
                max(v) if v else None,
                f"{target:g}",
                round(p95 / target, 2) if p95 is not None else None,
                bl.verdict(p95 / target, 1.0) if p95 is not None else "-",
            ]
        )
    header = ["measure (to painted)", "runs", "p50 ms", "p95 ms", "max ms", "target ms",
              "p95 / target", "verdict"]  # fmt: skip
    return bl.markdown_table(header, rows)


def load_steps_table(cold: list[dict[str, Any]], warm: list[dict[str, Any]]) -> str:
    steps = [
        ("page received (GET /)", "document"),
        ("last module received (/ui/*.js)", "modules"),
        ("GET /api/v1/auth/me answered", "me"),
        ("agent socket's `ready` frame (/ws/agent)", "socket"),
        ("GET /api/v1/views/counts answered", "counts_answer"),
        (f"GET /api/v1/conversations (limit={PAGE_ROWS}) answered", "list_answer"),
        (f"{PAGE_ROWS} rows in the list (or all, if fewer)", "rows"),
        ("sidebar counts drawn", "counts"),
        ("both (in the DOM)", "ready"),
        ("painted", "painted"),
    ]
    rows = []
    for label, key in steps:
        row: list[Any] = [label]
        for runs in (cold, warm):
            v = [r["marks_ms"][key] for r in runs if r["marks_ms"][key] is not None]
            row += [bl.pct(v, 0.5), bl.pct(v, 0.95)]
        rows.append(row)
    header = ["first load, step (ms since navigation start)", "cold p50", "cold p95",
              "warm p50", "warm p95"]  # fmt: skip
    return bl.markdown_table(header, rows)


def switch_steps_table(switched: list[dict[str, Any]]) -> str:
    steps = [
        ("first request sent", "first_request"),
        ("GET /conversations/{id} answered", "conversation_answer"),
        ("GET /conversations/{id}/messages answered", "messages_answer"),
        ("new thread in the pane", "thread"),
        ("contact requests answered (3 GETs)", "contact_answers"),
        ("pane heading shows the new name", "header"),
        ("contact column shows the new name", "contact"),
        ("all of it (in the DOM)", "done"),
        ("painted", "painted"),
    ]
    rows = []
    for label, key in steps:
        v = [s["marks_since_click_ms"][key] for s in switched]
        v = [x for x in v if x is not None]
        rows.append([label, bl.pct(v, 0.5), bl.pct(v, 0.95)])
    return bl.markdown_table(["switch, step", "p50 ms after the click", "p95 ms"], rows)


def cpu_table(
    cold: list[dict[str, Any]], warm: list[dict[str, Any]], switched: list[dict[str, Any]]
) -> str:
    """CPU spent and CPU waited for, per first load and per switch (p50)."""
    rows: list[list[Any]] = []
    for label, runs, key in (
        ("first load, cold", cold, "load_ms"),
        ("first load, warm", warm, "load_ms"),
        ("switch", switched, "switch_ms"),
    ):

        def p50(field: str, runs: list[dict[str, Any]] = runs) -> float | None:
            v = [r["cpu_ms"][field] for r in runs if r["cpu_ms"].get(field) is not None]
            return bl.pct(v, 0.5)

        layout = [r["cpu_ms"].get("layout", 0) + r["cpu_ms"].get("style", 0) for r in runs]
        rows.append(
            [
                label,
                bl.pct([r[key] for r in runs], 0.5),
                p50("main_cpu"),
                p50("script"),
                bl.pct(layout, 0.5),
                p50("browser_cpu"),
                p50("browser_wait"),
                p50("server_cpu"),
                p50("server_wait"),
            ]
        )
    header = ["p50, ms", "to painted", "renderer main thread CPU", "of it script",
              "of it layout + style", "Chromium + driver CPU", "... waiting for a CPU",
              "server CPU", "server waiting for a CPU"]  # fmt: skip
    return bl.markdown_table(header, rows)


def _kind(url: str) -> str:
    """A request's URL with ids replaced, to group requests of one kind."""
    path, _, query = url.partition("?")
    path = "/".join("{id}" if p.isdigit() else p for p in path.split("/"))
    query = re.sub(r"=\d+", "={id}", query)
    name = path.removeprefix("/api/v1") + (f"?{query}" if query else "")
    return f"POST {name}" if name.endswith("/read") else f"GET {name}"


def requests_table(
    cold: list[dict[str, Any]], switched: list[dict[str, Any]], replayed: list[dict[str, Any]]
) -> str:
    """Each API request: its time in the browser (start to end, and the wait
    for the server's first byte) during cold loads and switches, and alone."""
    in_browser: dict[str, dict[str, list[float]]] = {}
    for runs in (cold, switched):
        for run in runs:
            for r in run["requests"]:
                key = _kind(r["url"])
                got = in_browser.setdefault(key, {"total": [], "wait": []})
                got["total"].append(r["end"] - r["start"])
                got["wait"].append(r["responseStart"] - r["requestStart"])
    alone: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    for r in replayed:
        key = _kind(r["url"])
        alone.setdefault(key, []).extend(r["ms"])
        sizes[key] = r["bytes"]
    rows = []
    for key, got in in_browser.items():
        rows.append(
            [
                f"`{key}`",
                len(got["total"]),
                round(bl.pct(got["total"], 0.5) or 0, 1),
                round(bl.pct(got["wait"], 0.5) or 0, 1),
                round(bl.pct(got["total"], 0.95) or 0, 1),
                _ms(alone.get(key, []), 0.5),
                _ms(alone.get(key, []), 0.95),
                sizes.get(key),
            ]
        )
    header = ["request (as the app sends it)", "n in browser", "browser p50 ms",
              "of which server wait p50", "browser p95 ms", "alone p50 ms", "alone p95 ms",
              "body bytes"]  # fmt: skip
    return bl.markdown_table(header, rows)


def versions(chromium: str) -> str:
    def v(pkg: str) -> str:
        return importlib.metadata.version(pkg)

    return (
        f"Python {platform.python_version()}, uvicorn {v('uvicorn')}, SQLAlchemy "
        f"{v('sqlalchemy')}, Playwright {v('playwright')}, Chromium {chromium}"
    )


def main() -> int:
    a = parse_args()
    if not Path(bl.CHROMIUM).exists():
        raise SystemExit(f"{bl.CHROMIUM} is missing (apt-get install chromium)")
    started, code = bl.now_iso(), bl.code_version()
    load = [os.getloadavg()[0]]
    server_port = bl.free_port()
    base = f"http://{bl.HOST}:{server_port}"
    with bl.temp_dir("tl-b9-", a.keep) as tmp, bl.Children() as kids:
        data = tmp / "data"
        bl.log(f"B9: seeding a fresh data dir ({a.conversations:,} conversations)")
        t_seed = time.monotonic()
        seeded = seed(data, a.conversations, a.analyze)
        bl.log(
            f"B9: seeded {seeded['conversations']:,} conversations and "
            f"{seeded['messages']:,} messages in {time.monotonic() - t_seed:.1f} s"
        )
        server_cmd = bl.threadline_cmd(server_port)
        if not a.no_pin:
            server_cmd = bl.pinned(bl.SERVER_CPU, server_cmd)
            # Chromium (and Playwright's driver) inherit this process's CPU.
            os.sched_setaffinity(0, {int(bl.LOAD_CPU)})
        srv = kids.start(
            server_cmd,
            cwd=tmp,
            env=bl.threadline_env(data, a.log_level),
            log=tmp / "server.log",
        )
        bl.wait_port(server_port, srv)
        meter = CpuMeter(srv.pid)
        bl.log(f"B9: Chromium, {a.runs} cold and {a.warm} warm first loads")
        cold, warm, switched, errors, chromium, app_requests, cookies = asyncio.run(
            browse(a, base, seeded, meter)
        )
        bl.log(f"B9: each API request alone, {a.replays} times")
        replayed = replay(base, cookies, app_requests, a.replays)
        load.append(os.getloadavg()[0])
        server_errors = [
            line
            for line in (tmp / "server.log").read_text().splitlines()
            if "Traceback" in line or "ERROR" in line
        ]
    record = {
        "bench": "B9",
        "started": started,
        "code": code,
        "pinned": not a.no_pin,
        "analyze": a.analyze,
        "loadavg": load,
        "conversations": seeded["conversations"],
        "messages": seeded["messages"],
        "cold": cold,
        "warm": warm,
        "switches": switched,
        "replayed": replayed,
        "errors": errors,
        "server_errors": server_errors[:5],
    }
    path = bl.save_jsonl("b9", [record])
    pinning = (
        "not pinned"
        if a.no_pin
        else f"server on CPU {bl.SERVER_CPU}; Chromium and Playwright on CPU {bl.LOAD_CPU}"
    )
    print(f"## B9 inbox UI — {started}\n")
    print(f"Machine: {bl.machine()}; {versions(chromium)}; {pinning}.")
    print(f"Load average (1 min) at the start {load[0]:.1f}, at the end {load[1]:.1f}.")
    print(f"Code: {code}.")
    print(
        f"Data: {seeded['conversations']:,} open conversations, {seeded['messages']:,} "
        f"messages{', ANALYZE run' if a.analyze else ''}."
    )
    print(f"Command: `{' '.join([Path(bl.PY).name, *sys.argv])}`; raw results: {path}\n")
    print(summary_table(cold, warm, switched))
    print()
    print(load_steps_table(cold, warm))
    print()
    print(switch_steps_table(switched))
    print()
    print(cpu_table(cold, warm, switched))
    print()
    print(requests_table(cold, switched, replayed))
    for label, found in (("run errors", errors), ("server errors", server_errors)):
        if found:
            print(f"\n{label}: {found[:5]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
