"""A real `threadline serve` process (SQLite, in-process bus) and clients
that misbehave (PROTOCOLS.md P2):

- a websocket client that stops reading is dropped within the send
  timeout (THREADLINE_WS_SEND_TIMEOUT) instead of being kept open for
  ever, megabytes queued in the kernel;
- SIGTERM with such a client connected: healthy sockets are closed with
  1001 (reconnect and resume), a handshake made meanwhile is answered 503
  with Retry-After, and the process exits 0 within the grace period
  (THREADLINE_SHUTDOWN_GRACE).

Every wait is for a condition, under a timeout that says how prompt it
must be.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.multiprocess.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    HOST,
    HTTP_TIMEOUT,
    ServerProcess,
    _create_admin,
    _environment,
    _start_server,
)

GRACE = 3.0  # THREADLINE_SHUTDOWN_GRACE of the SIGTERM test
SEND_TIMEOUT = 1.0  # THREADLINE_WS_SEND_TIMEOUT of the stall test
# How long the process may take past the grace period: handling the
# signal, the lifespan end, closing the database.
EXIT_MARGIN = 3.0
# A message's text (the most allowed), and how many: 10 MB, well past what
# the kernel buffers of a stalled connection (4 MiB at most on the server's
# side) and the transport's own buffer (64 KiB) hold.
TEXT_BYTES = 64_000
FILL_MESSAGES = 160
TCP_ESTABLISHED = 1


@pytest.fixture(scope="module")
def served_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A data directory (SQLite) with an admin, and where logs go."""
    root = tmp_path_factory.mktemp("shutdown")
    data_dir = root / "data"
    _create_admin(_environment(THREADLINE_LOG_LEVEL="warning"), data_dir)
    yield data_dir, root


@contextlib.contextmanager
def serving(data: tuple[Path, Path], name: str, **settings: str) -> Iterator[ServerProcess]:
    data_dir, log_dir = data
    env = _environment(THREADLINE_LOG_LEVEL="info", **settings)
    server = _start_server(name, env, data_dir, log_dir)
    try:
        server.wait_until_serving()
        yield server
    finally:
        # A test that stopped it has checked how it ended.
        problem = server.stop() if server.process.poll() is None else None
        if problem is not None:
            pytest.fail(problem)


class Setup:
    """A logged-in REST client, a conversation to write to, an API token."""

    def __init__(self, http: httpx.AsyncClient, conversation_id: int, token: str) -> None:
        self.http = http
        self.conversation_id = conversation_id
        self.token = token

    async def say(self, text: str) -> int:
        res = await self.http.post(
            f"/api/v1/conversations/{self.conversation_id}/messages", json={"text": text}
        )
        assert res.status_code == 201, res.text
        seq: int = res.json()["seq"]
        return seq


@contextlib.asynccontextmanager
async def set_up(server: ServerProcess) -> AsyncIterator[Setup]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=HTTP_TIMEOUT) as http:
        res = await http.post(
            "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        assert res.status_code == 200, res.text
        http.headers["x-csrf-token"] = res.json()["csrf_token"]

        async def created(path: str, body: dict[str, Any]) -> dict[str, Any]:
            res = await http.post(path, json=body)
            assert res.status_code == 201, res.text
            made: dict[str, Any] = res.json()
            return made

        inbox = await created("/api/v1/inboxes", {"name": "API", "kind": "api"})
        # The database outlives each server: a new address each time.
        identity = {"kind": "email", "value": uuid.uuid4().hex + "@example.com"}
        contact = await created("/api/v1/contacts", {"name": "Cora", "identities": [identity]})
        conversation = await created(
            "/api/v1/conversations", {"inbox_id": inbox["id"], "contact_id": contact["id"]}
        )
        token = await created("/api/v1/tokens", {"name": "sockets"})
        yield Setup(http, conversation["id"], token["token"])


async def open_socket(
    server: ServerProcess, token: str, *, sock: socket.socket | None = None, **options: Any
) -> ClientConnection:
    return await connect(
        f"{server.ws_url}/ws/agent",
        additional_headers={"Authorization": f"Bearer {token}"},
        sock=sock,
        open_timeout=10,
        proxy=None,
        **options,
    )


async def wait_ready(ws: ClientConnection) -> None:
    async with asyncio.timeout(10):
        while json.loads(await ws.recv())["type"] != "ready":
            pass


async def open_stalled(server: ServerProcess, token: str) -> tuple[ClientConnection, socket.socket]:
    """A client with a tiny receive window that reads `ready` and then
    nothing (its library stops taking bytes after one queued message)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (HOST, server.port))
    ws = await open_socket(server, token, sock=raw, max_queue=1, compression=None)
    await wait_ready(ws)
    return ws, raw


def tcp_state(raw: socket.socket) -> int:
    """The kernel's TCP state of the client's socket: ESTABLISHED until the
    server ends the connection (RST: CLOSE, FIN: CLOSE_WAIT)."""
    return raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


class Reader:
    """A healthy client: reads every frame as it comes (in a task), and
    keeps how its socket closed."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seqs: list[int] = []
        self.closed: ConnectionClosed | None = None
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                frame = json.loads(await self.ws.recv())
                if frame.get("type") == "message.created":
                    self.seqs.append(frame["data"]["seq"])
        except ConnectionClosed as exc:
            self.closed = exc

    async def wait_for(self, seq: int) -> None:
        async with asyncio.timeout(30):
            while seq not in self.seqs:
                assert self.closed is None, f"the healthy client was closed: {self.closed}"
                await asyncio.sleep(0.01)  # polling a condition

    async def wait_closed(self, timeout: float) -> ConnectionClosed:
        async with asyncio.timeout(timeout):
            await self.task
        assert self.closed is not None
        return self.closed


async def open_reader(server: ServerProcess, token: str) -> Reader:
    ws = await open_socket(server, token)
    await wait_ready(ws)
    return Reader(ws)


async def fill(setup: Setup, healthy: Reader) -> None:
    """Write FILL_MESSAGES big messages; return once the healthy client has
    them all (so the hub has offered every one to every socket)."""
    last = 0
    for _ in range(FILL_MESSAGES):
        last = await setup.say(os.urandom(TEXT_BYTES // 2).hex())
    await healthy.wait_for(last)


async def test_a_client_that_stops_reading_is_dropped_within_the_send_timeout(
    served_data: tuple[Path, Path],
) -> None:
    with (
        serving(served_data, "stall", THREADLINE_WS_SEND_TIMEOUT=str(SEND_TIMEOUT)) as server,
        contextlib.ExitStack() as cleanup,
    ):
        async with set_up(server) as setup:
            stalled, raw = await open_stalled(server, setup.token)
            cleanup.callback(stalled.transport.abort)
            healthy = await open_reader(server, setup.token)
            cleanup.callback(healthy.ws.transport.abort)
            await fill(setup, healthy)
            filled = time.monotonic()
            # The server's writes to it are stuck from now on at the latest;
            # its watchdog looks every half send timeout.
            bound = SEND_TIMEOUT * 1.5 + 2.0
            while tcp_state(raw) == TCP_ESTABLISHED:
                server.check_alive()
                assert time.monotonic() - filled < bound, (
                    f"a client that reads nothing was still connected {bound} s after its "
                    f"buffers filled; server output:\n{server.output()}"
                )
                await asyncio.sleep(0.05)  # polling a condition
            # Dropped, not closed politely: no close frame could get through.
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await stalled.recv()
            # The healthy one is served on.
            await healthy.wait_for(await setup.say("still here"))
            await healthy.ws.close()


async def test_sigterm_with_a_stalled_client_closes_with_1001_and_exits_0_within_the_grace(
    served_data: tuple[Path, Path],
) -> None:
    # A send timeout longer than the test: only the shutdown can end the stall.
    settings = {"THREADLINE_SHUTDOWN_GRACE": str(GRACE), "THREADLINE_WS_SEND_TIMEOUT": "600"}
    with serving(served_data, "sigterm", **settings) as server, contextlib.ExitStack() as cleanup:
        async with set_up(server) as setup:
            stalled, raw = await open_stalled(server, setup.token)
            cleanup.callback(stalled.transport.abort)
            healthy = await open_reader(server, setup.token)
            cleanup.callback(healthy.ws.transport.abort)
            await fill(setup, healthy)
            assert tcp_state(raw) == TCP_ESTABLISHED
            # Connected before the signal, handshake sent after it.
            late = socket.create_connection((HOST, server.port))
            cleanup.callback(late.close)
            late.setblocking(False)

            signalled = time.monotonic()
            server.process.terminate()
            closed = await healthy.wait_closed(GRACE)
            assert closed.rcvd is not None, "closed without a close frame"
            assert closed.rcvd.code == 1001  # going away: reconnect and resume

            # The stalled socket holds the server in its shutdown meanwhile:
            # a new handshake is refused with 503, to be tried again.
            with pytest.raises(InvalidStatus) as refused:
                await open_socket(server, setup.token, sock=late)
            response = refused.value.response
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "1"
            assert json.loads(response.body)["error"]["code"] == "unavailable"

            code = await asyncio.to_thread(server.process.wait, timeout=GRACE + EXIT_MARGIN + 5.0)
            took = time.monotonic() - signalled
            assert code == 0, server.output()
            assert took < GRACE + EXIT_MARGIN, f"exit took {took:.1f} s:\n{server.output()}"
            assert tcp_state(raw) != TCP_ESTABLISHED
