"""How `threadline serve` runs uvicorn: its websocket protocol and its
server, each with what a restart needs (PROTOCOLS.md P2).

On SIGTERM, in this order:
1. stop accepting connections;
2. the hub closes every live socket with 1001 (going away: reconnect and
   resume) and refuses handshakes still in the app with 503; sockets that
   can't take their close frame in time are dropped (Hub.shutdown);
3. uvicorn's own shutdown: requests in flight finish, a handshake not yet
   answered gets 503 with Retry-After (uvicorn would answer 500), and what
   is still running when the grace period ends is cancelled;
4. the process exits 0 (uvicorn re-raises the signal, which would end it
   with -15, counted a crash by process managers, and skip `serve`'s own
   cleanup).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import HANDLED_SIGNALS
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State

from server.heap import HeapUpkeep
from server.realtime.flag import Flag
from server.realtime.hub import Hub
from server.realtime.transport import (
    ABORT_EXTENSION,
    DIRECT_EXTENSION,
    restarting_response,
)


class _LastFrame:
    """The wire bytes of the text frame written last. The fan-out writes
    one event's frame to every socket in turn: it is serialized once, not
    once a socket (a server's frames are not masked, so they are the same
    bytes for every socket without an extension)."""

    text = ""
    data = Frame(Opcode.TEXT, b"").serialize(mask=False)

    @classmethod
    def of(cls, text: str) -> bytes:
        # Identity, not equality: comparing frames would cost as much as
        # serializing them; the str is kept alive here, so `is` is exact.
        if text is not cls.text:
            cls.data = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
            cls.text = text
        return cls.data


class _Inbox:
    """What uvicorn's protocol needs of its asyncio.Queue of ASGI receive
    events (put_nowait, get, empty), without the Queue's three deques
    (~2.3 KB a socket): uvicorn stops reading after each client message
    until the app takes it, so this holds one or two events at most, and
    ASGI allows one `receive` at a time, so one waiter at most."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, plus in the scope the
    transport's abort and synchronous frame writes (DirectWrites, both in
    server.realtime.transport), and 503 for a handshake the server stops
    in the middle of.

    Lighter per socket than uvicorn's own (bench/RESULTS.md, B3: memory
    per idle socket): its receive queue and `writable` event are slim
    equivalents (`_Inbox`, server.realtime.flag.Flag), and the handshake's
    request and response (their headers) are let go once accepted."""

    _writing_watch: tuple[Callable[[], None], Callable[[], None]] | None = None

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        self.writable.set()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # uvicorn reads them only to answer the handshake, done now
            # (the app has the headers in its scope). The websockets parser
            # keeps the request object to the end: its headers are emptied.
            self.request.headers.clear()
            del self.request, self.response

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # Break the socket's reference cycles, so that it is freed as soon
        # as the app lets go of it, not by a full collection (which, with
        # the long-lived state frozen, may not come for a long time): the
        # websockets parser (a generator holding its protocol) is done,
        # and the scope no longer points back at this protocol (the hub
        # read both entries when the socket was accepted).
        self.conn.parser.close()
        extensions = getattr(self, "scope", {}).get("extensions")
        if extensions is not None:
            extensions.pop(ABORT_EXTENSION, None)
            extensions.pop(DIRECT_EXTENSION, None)

    async def run_asgi(self) -> None:
        extensions = self.scope.get("extensions")
        if extensions is not None:
            extensions[ABORT_EXTENSION] = {"abort": self.drop}
            extensions[DIRECT_EXTENSION] = {"writes": self}
        await super().run_asgi()

    # -- DirectWrites ---------------------------------------------------------

    def send_text(self, text: str) -> bool:
        """A text frame onto the transport now, as uvicorn's ASGI send would
        write it, without the await. uvicorn hands everything websockets
        queues to the transport at once, so no partial frame is ever
        pending here and frames of both paths never interleave; a socket's
        frames keep their order as long as each goes through one path at a
        time (the hub sends none through ASGI while it writes directly)."""
        conn = self.conn
        if (
            conn.state is not State.OPEN
            or self.close_sent
            or self.disconnected
            or self.transport.is_closing()
        ):
            return False
        if conn.extensions:  # compressed per socket, if ever enabled
            conn.send_text(text.encode())
            self.transport.write(b"".join(conn.data_to_send()))
        else:
            self.transport.write(_LastFrame.of(text))
        return True

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    @property
    def writing_paused(self) -> bool:
        return not self.writable.is_set()

    def watch_writing(
        self, paused: Callable[[], None] | None, resumed: Callable[[], None] | None
    ) -> None:
        self._writing_watch = None if paused is None or resumed is None else (paused, resumed)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._writing_watch is not None:
            self._writing_watch[0]()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._writing_watch is not None:
            self._writing_watch[1]()

    def drop(self) -> None:
        """Reset the connection. A plain abort closes the socket, and the
        kernel then keeps the unsent data and its FIN behind it, retrying
        for minutes a client that takes nothing; zero linger sends a
        reset and frees the buffers at once."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def shutdown(self) -> None:
        if self.handshake_complete or self.initial_response is not None:
            super().shutdown()  # an open socket (1012, unless the hub closed it) or a response
            return
        self.stop_keepalive()
        refusal = restarting_response()
        headers = Headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in refusal.raw_headers]
        )
        headers["Connection"] = "close"
        self.conn.send_response(
            Response(refusal.status_code, "Service Unavailable", headers, bytes(refusal.body))
        )
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()


class ThreadlineServer(uvicorn.Server):
    """uvicorn.Server that closes the hub's sockets first and finishes
    within `grace` seconds of the signal, whatever the clients do. With
    `manage_heap` (as `threadline serve` runs it) it also freezes the heap
    once started and keeps the sockets' state frozen (server.heap), for
    short full collections; off for a server sharing its process (tests)."""

    def __init__(
        self, config: uvicorn.Config, hub: Hub, grace: float, *, manage_heap: bool = False
    ) -> None:
        super().__init__(config)
        self.hub = hub
        self.grace = grace
        self.heap = HeapUpkeep(lambda: (hub.joined, hub.left)) if manage_heap else None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.heap is not None:
            self.heap.start()

    async def on_tick(self, counter: int) -> bool:
        if self.heap is not None and counter % 5 == 0:  # a tick is 0.1 s
            self.heap.tick()
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        for server in self.servers:
            server.close()  # no new connections while the hub closes its sockets
        await self.hub.shutdown(min(self.hub.limits.close_timeout, self.grace))
        # uvicorn waits for what is in flight this long (whole seconds:
        # rounded down, to stay within the grace), then cancels it.
        self.config.timeout_graceful_shutdown = max(0, int(deadline - loop.time()))
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's, without raising the captured signal again at the end.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
