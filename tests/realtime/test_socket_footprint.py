"""What a live, idle socket keeps on the server under `threadline serve`
(bench/RESULTS.md, B3: memory per idle connection): once `ready` is
written, no deque in its delivery, Flags for its wake-ups, the slim
receive queue, and not the handshake's request and response; and it
still talks both ways (a ping is answered, events arrive)."""

from __future__ import annotations

from server.realtime.flag import Flag
from server.realtime.hub import Connection
from server.runtime import Runtime
from server.serving import WebSocketProtocol, _Inbox
from tests.realtime.live import LiveServer, say
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
