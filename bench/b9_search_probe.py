"""A probe, not a full BENCHMARKS.md row: how fast the command palette's
search (`GET /api/v1/search`, server/queries/search.py: plain LIKE scans,
no index yet) and the conversation list page (with its contact, channel
and last-message preview) answer on SQLite at B9's size: 10k
conversations, 100k messages, 10k contacts. B7 (search on 1M messages
against raw FTS5) is the real row, for when search gets its index.

What it does:

  fill     a fresh SQLite database in a temp dir, migrated by Alembic; the
           workspace, agents and inboxes through actions, then the bulk
           rows (contacts, identities, conversations, messages) with
           plain inserts in a few transactions: going through the actions
           would take minutes and only the rows matter to a read query.
           Two inboxes; the plain agent is a member of one (half the data),
           the admin sees both. Message text is drawn from a skewed
           vocabulary, so words range from very common to absent.
  time     each query kind `--repeat` times through the query functions
           (the HTTP layer adds the same few hundred microseconds to all),
           for the admin and for the agent; p50 / p95 / max in ms.
  baseline the same database read with the `sqlite3` module directly: a
           bare `LIKE` count over every message (the floor a LIKE scan can
           reach) and an FTS5 MATCH on a contentless copy of the text (what
           an index would give; built here only to compare).

    .venv/bin/python bench/b9_search_probe.py                # ~1 min
    .venv/bin/python bench/b9_search_probe.py --repeat 50 --keep
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import benchlib as bl
import sqlalchemy as sa

from server.actions.agents import do_create_agent
from server.actions.context import perform
from server.actions.inboxes import do_add_inbox_member, do_create_inbox
from server.actions.workspaces import do_create_workspace
from server.domain.actors import Actor, ActorKind, system_actor
from server.domain.values import InboxKind, Role
from server.queries.conversations import list_conversations
from server.queries.search import search
from server.runtime import Runtime
from server.settings import Settings
from server.storage import tables as t
from server.storage.migrate import upgrade_to_head

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FIRST = ["Ada", "Ben", "Cora", "Dan", "Eve", "Finn", "Gia", "Hal", "Ivy", "Jon", "Kai", "Lea"]
LAST = ["Smith", "Jones", "Brown", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Moore"]
SUPPORT = [
    "order",
    "refund",
    "shipping",
    "delivery",
    "invoice",
    "account",
    "password",
    "login",
    "payment",
    "card",
    "package",
    "tracking",
    "return",
    "exchange",
    "size",
    "colour",
    "discount",
    "coupon",
    "subscription",
    "cancel",
    "upgrade",
    "plan",
    "billing",
    "address",
    "email",
    "phone",
    "late",
    "broken",
    "missing",
    "damaged",
]
RARE = "kumquat"  # planted in exactly RARE_COUNT messages
RARE_COUNT = 5


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {"".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(size)}
    return SUPPORT + sorted(words - set(SUPPORT) - {RARE})


def sentence(rng: random.Random, words: list[str], weights: list[float]) -> str:
    n = rng.randint(8, 40)
    return " ".join(rng.choices(words, weights, k=n)).capitalize() + "."


async def fill(
    runtime: Runtime, *, contacts: int, conversations: int, messages: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    ws = await perform(runtime, system_actor(0), do_create_workspace, name="Probe")
    sys_actor = system_actor(ws)
    admin_id = await perform(
        runtime,
        sys_actor,
        do_create_agent,
        email="admin@probe.test",
        name="Ada Admin",
        password=bl.PASSWORD,
        role=Role.ADMIN,
    )
    agent_id = await perform(
        runtime,
        sys_actor,
        do_create_agent,
        email="agent@probe.test",
        name="Gus Agent",
        password=bl.PASSWORD,
    )
    inboxes = []
    for name, kind in (("Website", InboxKind.WIDGET), ("Support mail", InboxKind.EMAIL)):
        made = await perform(
            runtime,
            sys_actor,
            do_create_inbox,
            name=name,
            kind=kind,
            settings={},
            box=runtime.secrets,
        )
        inboxes.append(made.inbox_id)
    await perform(runtime, sys_actor, do_add_inbox_member, inbox_id=inboxes[0], agent_id=agent_id)

    words = vocabulary(rng)
    weights = [1.0 / (rank + 1) for rank in range(len(words))]  # Zipf-like
    contact_rows = []
    identity_rows = []
    for i in range(contacts):
        at = T0 + timedelta(seconds=i)
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}"
        contact_rows.append({"workspace_id": ws, "name": name, "attributes": {}, "created_at": at})
    per_conversation = messages // conversations
    async with runtime.db.write() as conn:
        await conn.execute(t.contacts.insert(), contact_rows)
        contact_ids = [
            r[0]
            for r in await conn.execute(
                sa.select(t.contacts.c.id)
                .where(t.contacts.c.workspace_id == ws)
                .order_by(t.contacts.c.id)
            )
        ]
        for i, cid in enumerate(contact_ids):
            identity_rows.append(
                {
                    "workspace_id": ws,
                    "contact_id": cid,
                    "kind": "email",
                    "value": f"customer{i}@mail{i % 50}.example",
                    "verified": False,
                    "created_at": T0,
                }
            )
            if i % 3 == 0:
                identity_rows.append(
                    {
                        "workspace_id": ws,
                        "contact_id": cid,
                        "kind": "phone",
                        "value": f"+1555{i:07d}",
                        "verified": False,
                        "created_at": T0,
                    }
                )
        await conn.execute(t.contact_identities.insert(), identity_rows)
        conv_rows = []
        for i in range(conversations):
            start = T0 + timedelta(minutes=i)
            inbox = inboxes[i % 2]
            conv_rows.append(
                {
                    "workspace_id": ws,
                    "inbox_id": inbox,
                    "contact_id": contact_ids[i % len(contact_ids)],
                    "subject": sentence(rng, words, weights)[:80] if inbox == inboxes[1] else None,
                    "status": "open",
                    "priority": "none",
                    "last_seq": per_conversation,
                    "created_at": start,
                    "last_activity_at": start + timedelta(seconds=per_conversation),
                }
            )
        await conn.execute(t.conversations.insert(), conv_rows)
        convs = (
            await conn.execute(
                sa.select(
                    t.conversations.c.id,
                    t.conversations.c.inbox_id,
                    t.conversations.c.contact_id,
                    t.conversations.c.created_at,
                )
                .where(t.conversations.c.workspace_id == ws)
                .order_by(t.conversations.c.id)
            )
        ).all()
    rare_at = set(rng.sample(range(conversations * per_conversation), RARE_COUNT))
    batch: list[dict[str, Any]] = []
    n = 0
    for conv in convs:
        for seq in range(1, per_conversation + 1):
            inbound = seq % 2 == 1
            text = " ".join(sentence(rng, words, weights) for _ in range(rng.randint(1, 3)))
            if n in rare_at:
                text = f"{text} {RARE}"
            batch.append(
                {
                    "workspace_id": ws,
                    "conversation_id": conv.id,
                    "contact_id": conv.contact_id,
                    "inbox_id": conv.inbox_id,
                    "seq": seq,
                    "direction": "inbound" if inbound else "outbound",
                    "sender_kind": "contact" if inbound else "agent",
                    "sender_id": conv.contact_id if inbound else agent_id,
                    "private": not inbound and seq % 6 == 0,
                    "text": text,
                    "delivery_status": "received" if inbound else "sent",
                    "attachments": [],
                    "created_at": conv.created_at + timedelta(seconds=seq),
                }
            )
            n += 1
            if len(batch) >= 10_000:
                async with runtime.db.write() as conn:
                    await conn.execute(t.messages.insert(), batch)
                batch = []
    if batch:
        async with runtime.db.write() as conn:
            await conn.execute(t.messages.insert(), batch)
    async with runtime.db.write() as conn:
        await conn.exec_driver_sql("ANALYZE")
    return {
        "admin": Actor(kind=ActorKind.AGENT, workspace_id=ws, agent_id=admin_id, role=Role.ADMIN),
        "agent": Actor(kind=ActorKind.AGENT, workspace_id=ws, agent_id=agent_id, role=Role.AGENT),
        "common": SUPPORT[0],
        "medium": words[300],
        "rare": RARE,
    }


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": round(p95, 2),
        "max": round(ordered[-1], 2),
    }


async def timed(repeat: int, run: Callable[[], Awaitable[Any]]) -> tuple[dict[str, float], Any]:
    result = await run()  # warm the page cache and the statement cache
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = await run()
        samples.append((time.perf_counter() - start) * 1000)
    return stats(samples), result


async def probe(args: argparse.Namespace, data_dir: Path) -> list[dict[str, Any]]:
    settings = Settings.from_env({}, THREADLINE_DATA_DIR=str(data_dir))
    await upgrade_to_head(settings.database_url)
    runtime = Runtime.create(settings)
    rows: list[dict[str, Any]] = []
    try:
        bl.log("filling the database")
        start = time.perf_counter()
        world = await fill(
            runtime,
            contacts=args.contacts,
            conversations=args.conversations,
            messages=args.messages,
            seed=args.seed,
        )
        bl.log(f"filled in {time.perf_counter() - start:.1f} s")
        queries = {
            f"common word ({world['common']})": world["common"],
            f"medium word ({world['medium']})": world["medium"],
            f"rare word ({RARE}, {RARE_COUNT} messages)": RARE,
            "absent word": "zqxjv",
            "contact name (Cora Smith)": "Cora Smith",
            "email fragment (customer123@)": "customer123@",
            "phone digits (555 0000 012)": "555 0000 012",
        }
        for who in ("admin", "agent"):
            actor = world[who]
            for label, q in queries.items():

                async def run(actor: Actor = actor, q: str = q) -> Any:
                    async with runtime.db.read() as conn:
                        return await search(conn, actor, q, limit=20)

                figures, found = await timed(args.repeat, run)
                rows.append(
                    {
                        "what": f"search: {label}",
                        "who": who,
                        **figures,
                        "hits": f"{len(found['contacts'])} contacts, "
                        f"{len(found['conversations'])} conversations",
                    }
                )
                bl.log(f"{who} {label}: {figures}")
            for limit in (25, 100):

                async def page(actor: Actor = actor, limit: int = limit) -> Any:
                    async with runtime.db.read() as conn:
                        return await list_conversations(conn, actor, limit=limit)

                figures, listed = await timed(args.repeat, page)
                rows.append(
                    {
                        "what": f"conversation list, first page of {limit}",
                        "who": who,
                        **figures,
                        "hits": f"{len(listed['items'])} conversations",
                    }
                )
    finally:
        await runtime.close()
    rows += raw_baselines(settings.database_url.split("///", 1)[1], args.repeat)
    return rows


def raw_baselines(path: str, repeat: int) -> list[dict[str, Any]]:
    """The floor for a LIKE scan, and what an FTS5 index would answer, on
    the same rows with the plain sqlite3 module (no pool, no async hop)."""
    db = sqlite3.connect(path)
    out = []

    def measure(label: str, sql: str, *params: Any) -> None:
        db.execute(sql, params).fetchall()
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            found = db.execute(sql, params).fetchall()
            samples.append((time.perf_counter() - start) * 1000)
        out.append({"what": label, "who": "-", **stats(samples), "hits": f"{len(found)} rows"})

    measure(
        "raw: count(*) of messages LIKE '%zqxjv%' (full scan)",
        "SELECT count(*) FROM messages WHERE text LIKE ? ESCAPE '\\'",
        "%zqxjv%",
    )
    measure(
        "raw: count(*) of messages lower(text) LIKE '%zqxjv%'",
        "SELECT count(*) FROM messages WHERE lower(text) LIKE lower(?) ESCAPE '\\'",
        "%zqxjv%",
    )
    bl.log("building an FTS5 copy of the message text (baseline only)")
    start = time.perf_counter()
    db.execute(
        "CREATE VIRTUAL TABLE probe_fts USING fts5(text, content='messages', content_rowid='id')"
    )
    db.execute("INSERT INTO probe_fts(rowid, text) SELECT id, text FROM messages")
    db.commit()
    bl.log(f"FTS5 built in {time.perf_counter() - start:.1f} s")
    measure(
        f"raw FTS5: newest 20 messages MATCH '{RARE}'",
        "SELECT rowid FROM probe_fts WHERE probe_fts MATCH ? ORDER BY rowid DESC LIMIT 20",
        RARE,
    )
    measure(
        f"raw FTS5: newest 20 messages MATCH '{SUPPORT[0]}'",
        "SELECT rowid FROM probe_fts WHERE probe_fts MATCH ? ORDER BY rowid DESC LIMIT 20",
        SUPPORT[0],
    )
    db.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per query")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temp data dir")
    args = parser.parse_args()
    with bl.temp_dir("b9-search-", keep=args.keep) as data_dir:
        rows = asyncio.run(probe(args, data_dir))
    print(f"\n{bl.now_iso()} — {bl.machine()}; {bl.code_version()}")
    print(
        f"{args.contacts:,} contacts, {args.conversations:,} conversations, "
        f"{args.messages:,} messages; {args.repeat} timed runs per row (ms)\n"
    )
    print(
        bl.markdown_table(
            ["query", "as", "p50 ms", "p95 ms", "max ms", "found"],
            [[r["what"], r["who"], r["p50"], r["p95"], r["max"], r["hits"]] for r in rows],
        )
    )
    bl.save_jsonl("b9-search", rows)


if __name__ == "__main__":
    main()
