"""Support for realtime tests: a real uvicorn server in the test's event
loop, websocket clients on real sockets, a bus that can be made to fail,
and the event log read back as the oracle.

    server = LiveServer(runtime)
    await server.start()
    sock = await server.open(token=token)
    ready = await sock.ready()
    ...
    await server.stop()        # closes the clients first, then uvicorn
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.messages import MessageResult, do_receive_message, do_send_message
from server.actions.tokens import do_create_api_token
from server.app import create_app
from server.bus.memory import MemoryBus, MemorySubscription
from server.cli import WEBSOCKET_OPTIONS
from server.clock import FrozenClock
from server.domain.actors import Actor, system_actor
from server.domain.values import IdentityKind
from server.realtime.hub import Hub, Limits
from server.runtime import Runtime
from server.serving import ThreadlineServer
from server.settings import Settings
from server.storage import tables as t
from tests.support import BASE_URL, PASSWORD, T0

# The settings' public origin (THREADLINE_PUBLIC_URL is BASE_URL in tests):
# what a browser on the app's own page sends.
OWN_ORIGIN = BASE_URL
FOREIGN_ORIGIN = "http://evil.example"


async def eventually(
    condition: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition"
) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


# -- the bus -------------------------------------------------------------


class FlakyBus:
    """A MemoryBus whose publishes can fail (`down`: publish raises, as
    with Redis unreachable), vanish (`lossy`: the message is dropped and
    every subscriber is told it lost something, as after a Redis
    reconnect) or arrive out of order (`reorder`: each pair swapped)."""

    def __init__(self) -> None:
        self.inner = MemoryBus()
        self.down = False
        self.lossy = False
        self.reorder = False
        self.failed = 0
        # While set and not yet released, `subscribe` waits for it.
        self.hold_subscribe: asyncio.Event | None = None
        self.subscriptions: list[MemorySubscription] = []
        self._held: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, message: bytes) -> None:
        if self.down:
            self.failed += 1
            raise ConnectionError("bus unreachable (test)")
        if self.lossy:
            for sub in self.subscriptions:
                sub.mark_lost()
            return
        if self.reorder:
            self._held.append((topic, message))
            if len(self._held) == 2:
                second, first = self._held.pop(), self._held.pop()
                await self.inner.publish(*second)
                await self.inner.publish(*first)
            return
        await self.inner.publish(topic, message)

    async def release(self) -> None:
        """Stop reordering; publish what is still held back."""
        self.reorder = False
        held, self._held = self._held, []
        for topic, message in held:
            await self.inner.publish(topic, message)

    async def subscribe(self, topic: str) -> MemorySubscription:
        if self.hold_subscribe is not None:
            await self.hold_subscribe.wait()
        sub = await self.inner.subscribe(topic)
        self.subscriptions.append(sub)
        return sub

    async def ping(self) -> None:
        if self.down:
            raise ConnectionError("bus unreachable (test)")
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


def make_live_runtime(database_url: str, data_dir: Path, bus: FlakyBus | None = None) -> Runtime:
    """Like tests.support.make_runtime, on a FlakyBus."""
    settings = Settings.from_env(
        {},
        THREADLINE_DATA_DIR=str(data_dir),
        THREADLINE_DATABASE_URL=database_url,
        THREADLINE_PUBLIC_URL=BASE_URL,
    )
    return Runtime.create(settings, clock=FrozenClock(T0), bus=bus or FlakyBus())


# -- the server ------------------------------------------------------------


class LiveServer:
    """create_app(runtime) served by uvicorn on 127.0.0.1 and a free port,
    with the websocket options and the server class of `threadline serve`."""

    def __init__(self, runtime: Runtime, limits: Limits | None = None, **config: Any) -> None:
        self.runtime = runtime
        self.app = create_app(runtime)
        if limits is not None:
            # Before any connection exists: channels and connections copy it.
            self.hub.limits = limits
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            **WEBSOCKET_OPTIONS,
            "lifespan": "on",
            "log_level": "warning",
            "log_config": None,  # keep records flowing to the test's handlers
        }
        options.update(config)
        self.server = ThreadlineServer(
            uvicorn.Config(self.app, **options), self.hub, runtime.settings.shutdown_grace
        )
        self.sockets: list[Socket] = []
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.hub
        return hub

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> LiveServer:
        self._task = asyncio.get_running_loop().create_task(self.server.serve())
        task = self._task
        await eventually(
            lambda: self.server.started or task.done(), timeout=10, what="uvicorn to start"
        )
        if task.done():
            await task  # raises what went wrong
            raise AssertionError("uvicorn stopped while starting")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    async def stop(self, *, close_clients: bool = True) -> None:
        """Close the clients (unless the test wants the server to do it),
        then shut uvicorn down: lifespan shutdown closes the hub."""
        if self._task is None:
            return
        if close_clients:
            await asyncio.gather(*(s.dispose() for s in self.sockets))
            # Let the server finish its side of those closes first: the
            # shutdown then has nothing to wait for.
            state = self.server.server_state
            await eventually(
                lambda: not state.connections and not state.tasks,
                what="the server's connections to end",
            )
        self.server.should_exit = True
        await asyncio.wait_for(self._task, 15)
        self._task = None
        await asyncio.gather(*(s.dispose() for s in self.sockets))

    def connections(self, workspace_id: int) -> list[Any]:
        """The hub's live connections of a workspace (white-box checks)."""
        channel = self.hub.channels.get(workspace_id)
        return list(channel.connections) if channel is not None else []

    async def open(
        self,
        path: str = "/ws/agent",
        *,
        token: str | None = None,
        cookie: str | None = None,
        origin: str | None = OWN_ORIGIN,
        last_event_id: int | str | None = None,
        **options: Any,
    ) -> Socket:
        """Open a websocket (raises InvalidStatus if the handshake is
        refused). A bearer token needs no Origin; it is sent anyway unless
        `origin=None`, as a browser would."""
        headers: dict[str, str] = dict(options.pop("additional_headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if cookie is not None:
            headers["Cookie"] = f"tl_session={cookie}"
        url = f"ws://127.0.0.1:{self.port}{path}"
        if last_event_id is not None:
            url += f"?last_event_id={last_event_id}"
        options.setdefault("open_timeout", 10)
        options.setdefault("close_timeout", 2)
        options.setdefault("proxy", None)
        conn = await connect(
            url,
            additional_headers=headers,
            origin=Origin(origin) if origin is not None else None,
            **options,
        )
        sock = Socket(conn)
        self.sockets.append(sock)
        return sock

    def http(self, **headers: str) -> httpx.AsyncClient:
        """A REST client over a real socket to this server."""
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10)


class Session:
    """A browser session made by logging in over REST."""

    def __init__(self, http: httpx.AsyncClient, cookie: str, csrf: str) -> None:
        self.http = http
        self.cookie = cookie
        self.csrf = csrf


async def login(server: LiveServer, email: str, password: str = PASSWORD) -> Session:
    http = server.http()
    res = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert res.status_code == 200, res.text
    csrf: str = res.json()["csrf_token"]
    http.headers["x-csrf-token"] = csrf
    cookie = http.cookies.get("tl_session")
    assert cookie is not None
    return Session(http, cookie, csrf)


# -- the client ------------------------------------------------------------


class Socket:
    """One websocket client. Every frame it reads is kept in `frames`;
    `last_event_id` is what it would resume from."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.frames: list[dict[str, Any]] = []
        self.last_event_id: int | None = None
        self.close_code: int | None = None

    def _keep(self, raw: str | bytes) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(raw)
        self.frames.append(frame)
        if isinstance(frame.get("event_id"), int):
            self.last_event_id = frame["event_id"]
        elif frame.get("type") == "ready":
            self.last_event_id = frame["last_event_id"]
        return frame

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        return self._keep(await asyncio.wait_for(self.conn.recv(), timeout))

    async def until(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Frames read up to and including the first that matches."""
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = self._keep(await self.conn.recv())
                got.append(frame)
                if match(frame):
                    return got

    async def ready(self, timeout: float = 5.0) -> dict[str, Any]:
        """Read through the replay to the `ready` frame and return it."""
        return (await self.until(lambda f: f["type"] == "ready", timeout))[-1]

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.conn.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def ping(self, timeout: float = 5.0) -> None:
        """Round trip: the socket is open and served."""
        await self.send({"type": "ping"})
        await self.until(lambda f: f["type"] == "pong", timeout)

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes the socket; the close code."""
        async with asyncio.timeout(timeout):
            try:
                while True:
                    self._keep(await self.conn.recv())
            except ConnectionClosed as closed:
                self.close_code = closed.rcvd.code if closed.rcvd is not None else None
        return self.close_code

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Durable events read so far (of one type, if given)."""
        return [f for f in self.frames if "event_id" in f and (kind is None or f["type"] == kind)]

    def messages(self) -> list[tuple[int, int]]:
        """(conversation_id, seq) of every message.created read, in order."""
        return [(f["conversation_id"], f["seq"]) for f in self.events("message.created")]

    async def dispose(self) -> None:
        """Close, or drop the connection if the close can't complete."""
        try:
            await asyncio.wait_for(self.conn.close(), 3)
        except (TimeoutError, OSError):
            self.conn.transport.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.conn.wait_closed(), 3)


async def new_token(runtime: Runtime, actor: Actor, name: str = "socket") -> tuple[int, str]:
    """A personal API token of `actor`'s agent: (token_id, token)."""
    made = await perform(runtime, actor, do_create_api_token, name=name)
    return made.token_id, made.token


async def say(runtime: Runtime, actor: Actor, conversation_id: int, text: str) -> MessageResult:
    """An agent's (or the system's) message in a conversation."""
    return await perform(
        runtime, actor, do_send_message, conversation_id=conversation_id, text=text
    )


async def incoming(
    runtime: Runtime, workspace_id: int, inbox_id: int, email: str, text: str
) -> MessageResult:
    """A contact's message into an inbox (opens a conversation if needed)."""
    return await perform(
        runtime,
        system_actor(workspace_id),
        do_receive_message,
        inbox_id=inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, email),
        name=email.split("@", maxsplit=1)[0],
        text=text,
    )


# -- the oracle ------------------------------------------------------------


async def logged_messages(
    runtime: Runtime, workspace_id: int, after_id: int = 0
) -> list[tuple[int, int, int]]:
    """(event_id, conversation_id, seq) of every message.created in the
    log of a workspace after `after_id`, in order."""
    async with runtime.db.read() as conn:
        rows = await conn.execute(
            sa.select(t.events.c.id, t.events.c.conversation_id, t.events.c.payload)
            .where(
                t.events.c.workspace_id == workspace_id,
                t.events.c.type == "message.created",
                t.events.c.id > after_id,
            )
            .order_by(t.events.c.id)
        )
        return [(r.id, r.conversation_id, r.payload["seq"]) for r in rows]


async def last_logged_id(runtime: Runtime, workspace_id: int) -> int:
    async with runtime.db.read() as conn:
        value = await conn.scalar(
            sa.select(sa.func.max(t.events.c.id)).where(t.events.c.workspace_id == workspace_id)
        )
        return int(value or 0)


def assert_in_order_once(messages: list[tuple[int, int]], expected: list[tuple[int, int]]) -> None:
    """Every expected (conversation_id, seq) exactly once, and per
    conversation in seq order."""
    assert len(messages) == len(set(messages)), "a message arrived twice"
    assert sorted(messages) == sorted(expected), "messages missing or unexpected"
    by_conversation: dict[int, list[int]] = {}
    for conversation_id, seq in messages:
        by_conversation.setdefault(conversation_id, []).append(seq)
    for seqs in by_conversation.values():
        assert seqs == sorted(seqs), "messages out of seq order"


# -- log records -------------------------------------------------------------


class ErrorRecords(logging.Handler):
    """Collects ERROR records of the server while a test runs; the fixture
    fails the test on any the test did not declare expected."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.expected: list[Callable[[logging.LogRecord], bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record not in self.records:
            self.records.append(record)

    def expect(self, logger: str, text: str) -> None:
        self.expected.append(lambda r: r.name == logger and text in r.getMessage())

    def unexpected(self) -> list[str]:
        return [
            f"{r.name}: {r.getMessage()}"
            for r in self.records
            if not any(match(r) for match in self.expected)
        ]
