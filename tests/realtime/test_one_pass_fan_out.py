"""The fan-out in one pass (server.realtime.hub): under `threadline serve`
an event's frame is written to every socket straight onto its transport,
without ASGI and without waking a task per socket; only a socket whose
transport paused (its client reads slower than events come) has frames
queued, written on when it resumes, and one that stays behind is closed
with 4008 or, taking nothing, dropped within the send timeout. Every
socket gets every event once, in order, whichever way it went out.
Under a server without direct writes, the writer task sends through ASGI
as before."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from server.realtime.hub import Connection, Limits
from server.realtime.visibility import CloseCode
from server.runtime import Runtime
from tests.realtime.conftest import Servers
from tests.realtime.live import LiveServer, Socket, eventually, new_token, say
from tests.support import Workspace


class AsgiSends:
    """Counts the websocket.send messages that go through uvicorn's ASGI
    send, for every socket of the server (Threadline's protocol class
    and uvicorn's own)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = WebSocketsSansIOProtocol.send

        async def counted(protocol: WebSocketsSansIOProtocol, message: Any) -> None:
            if message["type"] == "websocket.send":
                self.count += 1
            await original(protocol, message)

        monkeypatch.setattr(WebSocketsSansIOProtocol, "send", counted)


def server_side(live: LiveServer, ws: Workspace, token_id: int) -> Connection:
    (conn,) = [
        c
        for c in live.connections(ws.id)
        if c.delivery.viewer is not None and c.delivery.viewer.token_id == token_id
    ]
    assert isinstance(conn, Connection)
    return conn


async def open_unread(live: LiveServer, token: str) -> Socket:
    """A client with a tiny receive window that reads nothing unless told:
    the server's writes to it back up at once."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", live.port))
    return await live.open(token=token, sock=raw, max_queue=1, compression=None)


def small_send_buffers(live: LiveServer) -> None:
    # Accepted sockets inherit it: a few dozen KiB back up, not megabytes.
    for listener in live.server.servers[0].sockets:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)


async def test_every_socket_gets_each_event_in_order_without_asgi_sends(
    live: LiveServer,
    runtime: Runtime,
    ws: Workspace,
    admin_token: str,
    agent_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sends = AsgiSends(monkeypatch)
    socks = [await live.open(token=t) for t in [admin_token, agent_token] * 5]
    for sock in socks:
        await sock.ready()
    gone = await live.open(token=agent_token)
    await gone.ready()
    written = []
    for i in range(30):
        written.append((await say(runtime, ws.admin, ws.conversation_id, f"m{i}")).seq)
        if i == 10:
            gone.conn.transport.abort()  # a client vanishing mid-stream harms no one
    for sock in socks:
        await sock.until(lambda f: f.get("seq") == written[-1])
        assert sock.messages() == [(ws.conversation_id, s) for s in written]
    assert sends.count == 0  # every frame, ready included, went straight out


async def test_a_client_that_pauses_reading_gets_the_queued_frames_in_order_once(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str
) -> None:
    small_send_buffers(live)
    slow_token_id, slow_token = await new_token(runtime, ws.agent)
    slow = await open_unread(live, slow_token)
    await slow.ready()
    fast = await live.open(token=admin_token)
    await fast.ready()
    conn = server_side(live, ws, slow_token_id)

    written: list[int] = []

    async def publish(n: int) -> None:
        for _ in range(n):
            text = os.urandom(4096).hex()  # 8 KiB of noise
            written.append((await say(runtime, ws.admin, ws.conversation_id, text)).seq)

    # Written directly until its transport pauses, then queued ...
    while conn.delivery.paused_since is None:
        await publish(1)
        assert len(written) < 500, "the slow client's transport never paused"
    await publish(10)
    assert len(conn.delivery.outbox) == 10
    assert conn.delivery.close_request is None  # well under the 4 MiB limit
    await fast.until(lambda f: f.get("seq") == written[-1], timeout=10)

    # ... and once it reads, written on after the resume, and then directly.
    await slow.until(lambda f: f.get("seq") == written[-1], timeout=10)
    await eventually(lambda: conn.delivery.paused_since is None, what="the transport to resume")
    assert not conn.delivery.outbox
    await publish(3)
    for sock in (slow, fast):
        await sock.until(lambda f: f.get("seq") == written[-1])
        assert sock.messages() == [(ws.conversation_id, s) for s in written]


async def test_a_client_that_never_reads_is_cut_off_within_the_bounds(
    servers: Servers, runtime: Runtime, ws: Workspace, admin_token: str
) -> None:
    limits = Limits(outbox_bytes=64 * 1024, send_timeout=1.0)
    live = await servers.start(limits=limits)
    small_send_buffers(live)
    slow_token_id, slow_token = await new_token(runtime, ws.agent)
    slow = await open_unread(live, slow_token)
    await slow.ready()
    fast = await live.open(token=admin_token)
    await fast.ready()
    conn = server_side(live, ws, slow_token_id)

    written: list[int] = []
    while conn.delivery.close_request is None:
        text = os.urandom(4096).hex()
        written.append((await say(runtime, ws.admin, ws.conversation_id, text)).seq)
        # The kernel's buffers (a few dozen KiB here), the transport's own
        # (64 KiB before it pauses), then 64 KiB pending: about 25 messages.
        assert len(written) < 60, "the slow client was never cut off"
    assert conn.delivery.close_request.code == CloseCode.TOO_SLOW
    paused = conn.delivery.paused_since
    assert paused is not None

    # Its close frame can't get through: it is dropped, within 1.5 send
    # timeouts of the pause (the watchdog looks every half one), and
    # leaves the hub.
    loop = asyncio.get_running_loop()
    await eventually(lambda: conn not in live.connections(ws.id), timeout=5, what="the drop")
    assert loop.time() - paused < limits.send_timeout * 1.5 + 0.5

    # The other client had everything meanwhile, and is served on.
    written.append((await say(runtime, ws.admin, ws.conversation_id, "still here")).seq)
    await fast.until(lambda f: f.get("seq") == written[-1], timeout=10)
    assert fast.messages() == [(ws.conversation_id, s) for s in written]


async def test_a_compressed_socket_gets_its_frames_through_its_extension(
    servers: Servers, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    # Off under `threadline serve`; a server that turns it on still works.
    live = await servers.start(ws_per_message_deflate=True)
    compressed = await live.open(token=agent_token, extensions=[ClientPerMessageDeflateFactory()])
    plain = await live.open(token=admin_token, compression=None)
    for sock in (compressed, plain):
        await sock.ready()
    assert compressed.conn.protocol.extensions
    assert not plain.conn.protocol.extensions
    written = [(await say(runtime, ws.admin, ws.conversation_id, f"m{i}")).seq for i in range(5)]
    for sock in (compressed, plain):
        await sock.until(lambda f: f.get("seq") == written[-1])
        assert sock.messages() == [(ws.conversation_id, s) for s in written]


async def test_without_direct_writes_the_writer_task_sends_through_asgi(
    servers: Servers,
    runtime: Runtime,
    ws: Workspace,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sends = AsgiSends(monkeypatch)
    live = await servers.start(ws="websockets-sansio")  # uvicorn's protocol, as is
    socks = [await live.open(token=admin_token) for _ in range(3)]
    for sock in socks:
        await sock.ready()
    written = [(await say(runtime, ws.admin, ws.conversation_id, f"m{i}")).seq for i in range(10)]
    for sock in socks:
        await sock.until(lambda f: f.get("seq") == written[-1])
        assert sock.messages() == [(ws.conversation_id, s) for s in written]
    assert sends.count >= len(socks) * (1 + len(written))  # ready, then each message
