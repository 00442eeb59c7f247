"""What a live, idle socket keeps on the server under `threadline serve`
(bench/RESULTS.md, B3: memory per idle connection): once `ready` is
written, no deque in its delivery, Flags for its wake-ups, the slim
receive queue, and not the handshake's request and response; and it
still talks both ways (a ping is answered, events arrive). And the heap
kept frozen as `threadline serve` runs it (server.heap)."""

from __future__ import annotations

import gc

from server.realtime.flag import Flag
from server.realtime.hub import Connection
from server.runtime import Runtime
from server.serving import ThreadlineServer, WebSocketProtocol, _Inbox
from tests.realtime.live import LiveServer, eventually, say
from tests.support import Workspace


async def test_an_idle_socket_keeps_only_what_it_needs(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str
) -> None:
    sock = await live.open(token=agent_token)
    await sock.ready()
    (conn,) = live.connections(ws.id)
    assert isinstance(conn, Connection)
    assert conn.delivery._outbox is None and conn.delivery._held is None
    assert all(isinstance(f, Flag) for f in (conn._wakeup, conn._room, conn.closed))
    protocol = conn._direct
    assert isinstance(protocol, WebSocketProtocol)
    assert isinstance(protocol.queue, _Inbox) and isinstance(protocol.writable, Flag)
    assert not hasattr(protocol, "request") and not hasattr(protocol, "response")

    await sock.send({"type": "ping"})
    await sock.until(lambda f: f.get("type") == "pong")
    seq = (await say(runtime, ws.admin, ws.conversation_id, "still heard")).seq
    await sock.until(lambda f: f.get("seq") == seq)
    assert conn.delivery._outbox is None  # written straight through, nothing kept


async def test_serve_freezes_the_heap_once_started_and_on_new_sockets(
    runtime: Runtime, agent_token: str
) -> None:
    # As `threadline serve` runs it (manage_heap=True); this test's own
    # process heap is frozen meanwhile, and thawed after.
    live = LiveServer(runtime)
    live.server = ThreadlineServer(
        live.server.config, live.hub, runtime.settings.shutdown_grace, manage_heap=True
    )
    gc.unfreeze()
    try:
        await live.start()
        assert gc.get_freeze_count() > 0  # right after start-up
        heap = live.server.heap
        assert heap is not None
        sock = await live.open(token=agent_token)
        await sock.ready()
        assert live.hub.joined == 1
        await eventually(
            lambda: heap.policy.frozen_opened == live.hub.joined,
            what="the new socket's state frozen",
        )
        (conn,) = [c for channel in live.hub.channels.values() for c in channel.connections]
        tracked = {id(o) for o in gc.get_objects()}
        assert id(conn) not in tracked and id(conn.delivery) not in tracked
    finally:
        await live.stop()
        gc.unfreeze()
    assert live.hub.left == 1


async def test_a_server_sharing_its_process_leaves_the_heap_alone(live: LiveServer) -> None:
    assert live.server.heap is None
