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
from collections.abc import Iterator

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import HANDLED_SIGNALS
from websockets.datastructures import Headers
from websockets.http11 import Response

from server.realtime.hub import Hub
from server.realtime.transport import ABORT_EXTENSION, restarting_response


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, plus the transport's abort in
    the scope (server.realtime.transport) and 503 for a handshake the
    server stops in the middle of."""

    async def run_asgi(self) -> None:
        extensions = self.scope.get("extensions")
        if extensions is not None:
            extensions[ABORT_EXTENSION] = {"abort": self.drop}
        await super().run_asgi()

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
    within `grace` seconds of the signal, whatever the clients do."""

    def __init__(self, config: uvicorn.Config, hub: Hub, grace: float) -> None:
        super().__init__(config)
        self.hub = hub
        self.grace = grace

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
