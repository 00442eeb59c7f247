"""Resume (PROTOCOLS.md P2): a client that reconnects with the last
event_id it saw gets what it missed from the log, in order, then goes
live: no gaps, no duplicates, whatever the timing, across server restarts;
past the retention it is told to resync."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from server.actions.context import perform
from server.actions.retention import do_prune_events
from server.clock import FrozenClock
from server.domain.actors import Actor
from server.queries.events import log_position
from server.queries.reading import read
from server.runtime import Runtime
from tests.realtime.conftest import Servers
from tests.realtime.live import (
    LiveServer,
    Socket,
    assert_in_order_once,
    incoming,
    last_logged_id,
    logged_messages,
    login,
    make_live_runtime,
    say,
)
from tests.support import Workspace, seed_workspace

CLIENTS = 5
CYCLES = 200  # per client: 1,000 disconnect/resume cycles in all
WRITERS = 3  # one per conversation, concurrently
MESSAGES_PER_WRITER = 100


@dataclasses.dataclass
class Resumer:
    """A client that keeps what it read across connections."""

    name: str
    credential: dict[str, str]
    last_event_id: int | None = None
    event_ids: list[int] = dataclasses.field(default_factory=list)
    messages: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    cycles: int = 0

    def keep(self, frame: dict[str, Any]) -> None:
        if "event_id" in frame:
            self.event_ids.append(frame["event_id"])
            self.last_event_id = frame["event_id"]
            if frame["type"] == "message.created":
                self.messages.append((frame["conversation_id"], frame["seq"]))
        elif frame["type"] == "ready":
            self.last_event_id = frame["last_event_id"]


async def test_a_thousand_random_disconnects_lose_and_repeat_nothing(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    conversations = [ws.conversation_id]
    for n in range(WRITERS - 1):
        made = await incoming(runtime, ws.id, ws.inbox_id, f"buyer{n}@acme.test", "hi")
        conversations.append(made.conversation_id)
    session = await login(live, ws.agent_email)
    await session.http.aclose()
    credentials = [
        {"token": admin_token},
        {"token": agent_token},
        {"cookie": session.cookie},
    ]
    clients = [Resumer(f"client{i}", credentials[i % len(credentials)]) for i in range(CLIENTS)]
    for client in clients:  # each starts from "now", before any message
        sock = await live.open(**client.credential)
        client.keep(await sock.ready())
        await sock.dispose()
    start = min(c.last_event_id or 0 for c in clients)
    # One client stays connected throughout and reads everything.
    observer = await live.open(token=admin_token, last_event_id=start)
    await observer.ready()

    cuts: collections.Counter[str] = collections.Counter()
    progress = asyncio.Condition()
    total_cycles = CLIENTS * CYCLES
    done_cycles = 0

    async def cycles_reach(count: int) -> None:
        async with progress:
            await progress.wait_for(lambda: done_cycles >= count)

    async def write(conversation_id: int, index: int) -> None:
        actors: list[Actor] = [ws.agent, ws.admin]
        for k in range(MESSAGES_PER_WRITER):
            # Spread the writes over the whole run of cycles.
            await cycles_reach(k * total_cycles // MESSAGES_PER_WRITER)
            if k % 2 and conversation_id != ws.conversation_id:
                await incoming(runtime, ws.id, ws.inbox_id, f"buyer{index - 1}@acme.test", str(k))
            else:
                await say(runtime, actors[k % 2], conversation_id, f"w{index} m{k}")

    async def cycle(client: Resumer) -> None:
        nonlocal done_cycles
        sock = await live.open(
            **client.credential,
            last_event_id=client.last_event_id,
            max_queue=None,  # a close never waits behind unread frames
            compression=None,
        )
        # Disconnect at a random point: before the replay, inside it,
        # right after `ready`, or a while into the live stream.
        budget = rng.choice([0, 1, 2, 3, 5, 8, 13, 21, 1000])
        live_part = False
        read = 0
        try:
            while read < budget:
                # The replay and `ready` are sure to come; live frames
                # only if something is being written right now.
                frame = await sock.recv(timeout=0.01 if live_part else 5)
                read += 1
                client.keep(frame)
                if live_part:
                    cuts["live frames read"] += 1
                live_part = live_part or frame["type"] == "ready"
        except TimeoutError:
            assert live_part, f"{client.name}: no `ready` (seed {seed})"
        cuts["after ready" if live_part else "inside the replay" if read else "at once"] += 1
        if rng.random() < 0.5:
            sock.conn.transport.abort()  # vanish without a closing handshake
        await sock.dispose()
        live.sockets.remove(sock)
        client.cycles += 1
        async with progress:
            done_cycles += 1
            progress.notify_all()

    async def run(client: Resumer) -> None:
        while client.cycles < CYCLES:
            await cycle(client)

    await asyncio.gather(
        *(write(c, i) for i, c in enumerate(conversations)),
        *(run(c) for c in clients),
    )
    # Every kind of disconnect happened, and live delivery between them.
    assert cuts.total() - cuts["live frames read"] == CLIENTS * CYCLES
    assert min(cuts.values()) >= 20, cuts
    expected = await logged_messages(runtime, ws.id, start)
    assert len(expected) == WRITERS * MESSAGES_PER_WRITER
    await observer.until(lambda f: f.get("event_id") == expected[-1][0], timeout=10)
    assert [f["event_id"] for f in observer.events("message.created")] == [
        i for i, _, _ in expected
    ]
    for client in clients:
        sock = await live.open(**client.credential, last_event_id=client.last_event_id)
        for frame in await sock.until(lambda f: f["type"] == "ready", timeout=10):
            client.keep(frame)
        context = f"{client.name} (seed {seed})"
        assert client.event_ids == sorted(set(client.event_ids)), f"repeat or disorder: {context}"
        assert_in_order_once(client.messages, [(c, s) for _, c, s in expected])
        message_ids = [i for i, _, _ in expected]
        wanted = set(message_ids)
        assert [i for i in client.event_ids if i in wanted] == message_ids, context


async def test_connecting_mid_stream_gets_everything_after_ready_exactly_once(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str
) -> None:
    """Subscribe, then read the position, then go live: every message
    committed after the `ready` frame's last_event_id arrives once, none at
    or before it (those are in the state the client loads)."""
    extra = await incoming(runtime, ws.id, ws.inbox_id, "buyer@acme.test", "hi")
    written = 0
    progress = asyncio.Condition()
    total = 160

    async def write(conversation_id: int) -> None:
        nonlocal written
        for k in range(total // 2):
            await say(runtime, ws.admin, conversation_id, f"m{k}")
            async with progress:
                written += 1
                progress.notify_all()

    async def join_at(count: int) -> tuple[Socket, int]:
        async with progress:
            await progress.wait_for(lambda: written >= count)
        sock = await live.open(token=agent_token)
        first = await sock.recv()
        assert first["type"] == "ready", first  # a fresh connection replays nothing
        return sock, first["last_event_id"]

    joined, *_ = await asyncio.gather(
        asyncio.gather(*(join_at(n) for n in range(0, total, 16))),
        write(ws.conversation_id),
        write(extra.conversation_id),
    )
    marker = await say(runtime, ws.admin, ws.conversation_id, "marker")
    for sock, after in joined:
        expected = await logged_messages(runtime, ws.id, after)
        await sock.until(lambda f: f.get("data", {}).get("message_id") == marker.message_id)
        got = [f["event_id"] for f in sock.events("message.created")]
        assert got == [i for i, _, _ in expected]


async def test_resume_across_a_server_restart(
    servers: Servers,
    runtime: Runtime,
    ws: Workspace,
    agent_token: str,
    migrated_url: str,
    tmp_path: Path,
) -> None:
    first = await servers.start()
    sock = await first.open(token=agent_token)
    await sock.ready()
    for n in range(3):
        await say(runtime, ws.admin, ws.conversation_id, f"before {n}")
    await sock.until(lambda f: f.get("data", {}).get("text") == "before 2")
    await first.stop(close_clients=False)
    assert await sock.closed() == 1001  # "restarting: resume"

    missed = [await say(runtime, ws.admin, ws.conversation_id, f"down {n}") for n in range(5)]

    # A new process on the same database: new app, hub and bus.
    restarted = make_live_runtime(migrated_url, tmp_path / "restarted")
    try:
        second = await servers.start(restarted)
        again = await second.open(token=agent_token, last_event_id=sock.last_event_id)
        frames = await again.until(lambda f: f["type"] == "ready")
        assert frames[-1]["resumed"] is True
        assert again.messages() == [(ws.conversation_id, m.seq) for m in missed]
        live_one = await say(restarted, ws.admin, ws.conversation_id, "after")
        await again.until(lambda f: f.get("seq") == live_one.seq)
        assert again.messages()[-1] == (ws.conversation_id, live_one.seq)
        assert sock.messages() + again.messages() == [
            (ws.conversation_id, seq) for seq in range(2, live_one.seq + 1)
        ]
        await second.stop()
    finally:
        await restarted.close()


async def test_resume_past_the_retention_is_told_to_resync(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str
) -> None:
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    sock = await live.open(token=agent_token)
    await sock.ready()
    old = [await say(runtime, ws.admin, ws.conversation_id, f"old {n}") for n in range(3)]
    await sock.until(lambda f: f.get("seq") == old[-1].seq)
    seen = [f["event_id"] for f in sock.events("message.created")]
    await sock.dispose()

    clock.advance(days=10)
    new = [await say(runtime, ws.admin, ws.conversation_id, f"new {n}") for n in range(2)]
    pruned = await perform(
        runtime,
        ws.system,
        do_prune_events,
        workspace_id=ws.id,
        before=clock.now() - timedelta(days=1),
    )
    assert pruned > 0
    mark = (await read(runtime, log_position, ws.id)).pruned_through
    assert mark >= seen[-1]
    end = await last_logged_id(runtime, ws.id)

    for stale in (seen[0], mark - 1):
        sock = await live.open(token=agent_token, last_event_id=stale)
        frames = await sock.until(lambda f: f["type"] == "ready")
        assert frames == [
            {"type": "resync"},
            {"type": "ready", "last_event_id": end, "resumed": False},
        ]

    # From the mark itself nothing is missing: a plain resume.
    sock = await live.open(token=agent_token, last_event_id=mark)
    frames = await sock.until(lambda f: f["type"] == "ready")
    assert frames[-1] == {"type": "ready", "last_event_id": end, "resumed": True}
    assert sock.messages() == [(ws.conversation_id, m.seq) for m in new]

    # An id beyond the log is not one this workspace handed out: resync.
    sock = await live.open(token=agent_token, last_event_id=end + 1000)
    assert [f["type"] for f in await sock.until(lambda f: f["type"] == "ready")] == [
        "resync",
        "ready",
    ]


async def test_a_fully_pruned_log_still_gives_a_resumable_position(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str
) -> None:
    """A quiet workspace whose every event was pruned: the `ready` position
    must be one the client can resume from without a resync (else every
    reconnect resyncs until something happens)."""
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(days=30)
    # Another workspace's later events hold the highest ids, so this is
    # about the position handed out, not about ids (tested below).
    await seed_workspace(runtime, "Globex")
    assert await perform(
        runtime, ws.system, do_prune_events, workspace_id=ws.id, before=clock.now()
    )
    assert await last_logged_id(runtime, ws.id) == 0

    sock = await live.open(token=agent_token)
    ready = await sock.ready()
    again = await live.open(token=agent_token, last_event_id=ready["last_event_id"])
    assert await again.recv() == {
        "type": "ready",
        "last_event_id": ready["last_event_id"],
        "resumed": True,
    }
    message = await say(runtime, ws.admin, ws.conversation_id, "hello again")
    for s in (sock, again):
        frames = await s.until(lambda f: f["type"] == "message.created")
        assert frames[-1]["seq"] == message.seq


async def test_event_ids_are_not_reused_after_pruning(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str
) -> None:
    """Event ids only grow, even once the newest events were pruned: a
    reused id is at or below what clients already hold, so they would drop
    the event as seen (live) or be told to resync (on resume)."""
    clock = runtime.clock
    assert isinstance(clock, FrozenClock)
    sock = await live.open(token=agent_token)
    held = (await sock.ready())["last_event_id"]
    clock.advance(days=30)
    assert await perform(
        runtime, ws.system, do_prune_events, workspace_id=ws.id, before=clock.now()
    )
    message = await say(runtime, ws.admin, ws.conversation_id, "after the prune")
    assert await last_logged_id(runtime, ws.id) > held
    frames = await sock.until(lambda f: f["type"] == "message.created")
    assert frames[-1]["seq"] == message.seq
