"""Limits (PROTOCOLS.md P2): frame size (1009), frame rate (1008), a
bounded send queue per connection (a client that can't keep up is closed
with 4008 and resumes, never slowing the others), and revocations that
close or restrict the affected sockets within a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.realtime.hub import Limits
from server.realtime.protocol import MAX_FRAME_BYTES
from server.realtime.visibility import CloseCode
from server.runtime import Runtime
from tests.realtime.conftest import Servers
from tests.realtime.live import LiveServer, Socket, login, new_token, say
from tests.support import Workspace


def padded_ping(size: int) -> str:
    """A ping frame of exactly `size` bytes."""
    pad = size - len(json.dumps({"type": "ping", "pad": ""}))
    return json.dumps({"type": "ping", "pad": "x" * pad})


async def test_a_frame_over_64_kib_closes_with_1009(servers: Servers, agent_token: str) -> None:
    # As `threadline serve` runs it, uvicorn refuses big frames itself; the
    # app checks too, for a server run without that limit.
    configs: list[dict[str, Any]] = [{}, {"ws_max_size": 1024 * 1024}]
    for config in configs:
        live = await servers.start(**config)
        sock = await live.open(token=agent_token)
        await sock.ready()
        await sock.send(padded_ping(MAX_FRAME_BYTES))  # at the limit: fine
        await sock.until(lambda f: f["type"] == "pong")
        await sock.send(padded_ping(MAX_FRAME_BYTES + 1))
        assert await sock.closed() == CloseCode.TOO_BIG, config

        # Counted in bytes, not characters: half as many 2-byte characters.
        wide = json.dumps({"type": "ping", "pad": "é" * (MAX_FRAME_BYTES // 2)}, ensure_ascii=False)
        assert len(wide) < MAX_FRAME_BYTES < len(wide.encode())
        sock = await live.open(token=agent_token)
        await sock.ready()
        await sock.send(wide)
        assert await sock.closed() == CloseCode.TOO_BIG, config

        sock = await live.open(token=agent_token)
        await sock.ready()
        await sock.send(b"\x00" * (MAX_FRAME_BYTES + 1))
        assert await sock.closed() == CloseCode.TOO_BIG, config
        await live.stop()


async def test_too_many_frames_close_with_1008(live: LiveServer, agent_token: str) -> None:
    sock = await live.open(token=agent_token)
    await sock.ready()
    with contextlib.suppress(ConnectionClosed):  # the close may cut the burst short
        for _ in range(150):
            await sock.send({"type": "ping"})
    assert await sock.closed() == CloseCode.POLICY
    pongs = [f for f in sock.frames if f["type"] == "pong"]
    assert 0 < len(pongs) < 150
    # A socket at a normal pace is not affected.
    other = await live.open(token=agent_token)
    await other.ready()
    for _ in range(10):
        await other.ping()


async def open_unread(live: LiveServer, token: str) -> Socket:
    """A client with a tiny receive window that reads nothing unless told:
    the server's writes to it back up at once."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", live.port))
    return await live.open(token=token, sock=raw, max_queue=1, compression=None)


async def test_a_client_that_does_not_read_is_closed_with_4008_and_resumes(
    servers: Servers, runtime: Runtime, ws: Workspace, admin_token: str
) -> None:
    live = await servers.start(limits=Limits(outbox_bytes=64 * 1024))
    # A small kernel send buffer on the server side too (accepted sockets
    # inherit it), so a few hundred KiB back up rather than megabytes.
    for listener in live.server.servers[0].sockets:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    slow_token_id, slow_token = await new_token(runtime, ws.agent)
    slow = await open_unread(live, slow_token)
    await slow.ready()
    fast = await live.open(token=admin_token)
    await fast.ready()

    def slow_side() -> Any:
        (conn,) = [
            c
            for c in live.connections(ws.id)
            if c.delivery.viewer and c.delivery.viewer.token_id == slow_token_id
        ]
        return conn

    server_side = slow_side()
    written: list[int] = []
    # Publish heavily (8 KiB of noise a message) until the hub gives up on
    # the slow client, and some more.
    extra = 10
    while extra:
        text = os.urandom(4096).hex()
        written.append((await say(runtime, ws.admin, ws.conversation_id, text)).seq)
        if server_side.delivery.close_request is not None:
            extra -= 1
        assert len(written) < 2000, "the slow client was never cut off"
    assert server_side.delivery.close_request.code == CloseCode.TOO_SLOW

    # The fast client was never held up: everything, in order.
    await fast.until(lambda f: f.get("seq") == written[-1], timeout=10)
    assert fast.messages() == [(ws.conversation_id, s) for s in written]

    # The slow one, once it reads, finds a gap-free prefix, then 4008 ...
    assert await slow.closed(timeout=10) == CloseCode.TOO_SLOW
    prefix = slow.messages()
    assert prefix == [(ws.conversation_id, s) for s in written[: len(prefix)]]
    assert len(prefix) < len(written)

    # ... and resuming from what it saw delivers the rest, paced by its
    # reading rather than cut off again.
    again = await live.open(token=slow_token, last_event_id=slow.last_event_id)
    frames = await again.until(lambda f: f["type"] == "ready", timeout=10)
    assert frames[-1]["resumed"] is True
    assert prefix + again.messages() == [(ws.conversation_id, s) for s in written]

    # One event bigger than the whole queue still goes through, live and
    # on resume (else its client would be "too slow" for ever).
    mark = again.last_event_id
    big = await say(runtime, ws.admin, ws.conversation_id, "x" * 100_000)
    await again.until(lambda f: f.get("seq") == big.seq)
    once_more = await live.open(token=slow_token, last_event_id=mark)
    await once_more.ready()
    assert once_more.messages() == [(ws.conversation_id, big.seq)]


async def assert_open(*socks: Socket) -> None:
    for sock in socks:
        await sock.ping()


async def test_ending_a_session_closes_its_sockets_within_a_second(
    live: LiveServer, ws: Workspace, agent_token: str, admin_token: str
) -> None:
    first, second, third = [await login(live, ws.agent_email) for _ in range(3)]
    by_first, by_second, by_third = [
        await live.open(cookie=s.cookie) for s in (first, second, third)
    ]
    by_token = await live.open(token=agent_token)
    admin = await live.open(token=admin_token)
    for sock in (by_first, by_second, by_third, by_token, admin):
        await sock.ready()

    # Logging out ends that session only.
    res = await first.http.post("/api/v1/auth/logout")
    assert res.status_code == 200, res.text
    assert await asyncio.wait_for(by_first.closed(), 1.0) == CloseCode.UNAUTHENTICATED
    await assert_open(by_second, by_third, by_token, admin)
    with pytest.raises(InvalidStatus):
        await live.open(cookie=first.cookie)

    # A password change ends every other session of the agent.
    res = await second.http.post(
        "/api/v1/auth/password",
        json={"current_password": "correct horse battery", "new_password": "a new passphrase"},
    )
    assert res.status_code == 200, res.text
    assert await asyncio.wait_for(by_third.closed(), 1.0) == CloseCode.UNAUTHENTICATED
    await assert_open(by_second, by_token, admin)
    for session in (first, second, third):
        await session.http.aclose()


async def test_token_revocation_closes_its_sockets_within_a_second(
    live: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    revoked_id, revoked = await new_token(runtime, ws.agent, "old")
    _, kept = await new_token(runtime, ws.agent, "new")
    agent_socket = await live.open(token=revoked)
    bot_socket = await live.open("/ws/bot", token=revoked)
    other = await live.open(token=kept)
    for sock in (agent_socket, bot_socket, other):
        await sock.ready()

    async with live.http(authorization=f"Bearer {kept}") as http:
        res = await http.delete(f"/api/v1/tokens/{revoked_id}")
        assert res.status_code == 200, res.text
    closes = asyncio.gather(agent_socket.closed(), bot_socket.closed())
    assert list(await asyncio.wait_for(closes, 1.0)) == [CloseCode.UNAUTHENTICATED] * 2
    await assert_open(other)


async def test_deactivation_closes_every_socket_of_the_agent_within_a_second(
    live: LiveServer, ws: Workspace, agent_token: str, admin_token: str
) -> None:
    session = await login(live, ws.agent_email)
    by_cookie = await live.open(cookie=session.cookie)
    by_token = await live.open(token=agent_token)
    admin = await live.open(token=admin_token)
    for sock in (by_cookie, by_token, admin):
        await sock.ready()

    async with live.http(authorization=f"Bearer {admin_token}") as http:
        res = await http.patch(f"/api/v1/agents/{ws.agent_id}", json={"active": False})
        assert res.status_code == 200, res.text
    closes = asyncio.gather(by_cookie.closed(), by_token.closed())
    assert list(await asyncio.wait_for(closes, 1.0)) == [CloseCode.FORBIDDEN] * 2
    await assert_open(admin)
    with pytest.raises(InvalidStatus):
        await live.open(token=agent_token)
    await session.http.aclose()


async def test_removal_from_the_inbox_restricts_the_socket_within_a_second(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str, admin_token: str
) -> None:
    agent = await live.open(token=agent_token)
    admin = await live.open(token=admin_token)
    await agent.ready()
    await admin.ready()
    before = await say(runtime, ws.admin, ws.conversation_id, "before")
    await agent.until(lambda f: f.get("seq") == before.seq)

    async with live.http(authorization=f"Bearer {admin_token}") as http:
        res = await http.delete(f"/api/v1/inboxes/{ws.inbox_id}/members/{ws.agent_id}")
        assert res.status_code == 200 and res.json() == {"deleted": True}, res.text
    after = await say(runtime, ws.admin, ws.conversation_id, "after")
    async with live.http(authorization=f"Bearer {admin_token}") as http:
        res = await http.post("/api/v1/teams", json={"name": "marker"})
        assert res.status_code == 201, res.text

    got = await asyncio.wait_for(agent.until(lambda f: f["type"] == "team.created"), 1.0)
    assert not [f for f in got if f.get("inbox_id") == ws.inbox_id]
    assert agent.messages() == [(ws.conversation_id, before.seq)]
    await assert_open(agent)
    await admin.until(lambda f: f.get("seq") == after.seq)
    # The restriction holds for what the agent asks for, too.
    await agent.send({"type": "sync", "conversation_id": ws.conversation_id, "after_seq": 0})
    error = (await agent.until(lambda f: f["type"] in ("error", "messages")))[-1]
    assert error["type"] == "error" and error["code"] == "not_found"
    assert [c for c in live.connections(ws.id) if c.delivery.close_request is not None] == []
