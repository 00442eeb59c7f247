"""What the live sockets need from the web server beyond plain ASGI.

Dropping a connection at once. A polite close (a close frame, then the TCP
close) waits for everything queued to reach the client; a client that has
stopped reading never takes it, so the connection would stay open for
ever, megabytes queued in the kernel, and hold up the server's shutdown.
`threadline serve` runs uvicorn with `server.serving.WebSocketProtocol`,
which puts the transport's abort in the scope under ABORT_EXTENSION. Under
another server there is none: the hub then can only stop writing.

Writing frames without ASGI. Sending through ASGI costs, per frame and
socket, an awaited call through Starlette and uvicorn, and the hub's
fan-out would need a task per socket to await it. `WebSocketProtocol`
also puts itself in the scope under DIRECT_EXTENSION as `DirectWrites`:
a synchronous write of a text frame onto the transport, and the
transport's pause and resume (its buffer past its limit, and drained
again), so the fan-out writes each event to every socket in one pass
and queues only for a socket whose transport is paused. Under another
server there is none: the hub's writer task sends through ASGI.

Refusing a handshake while the server stops: 503 with Retry-After (the
client or the load balancer tries again, on this server's successor), in
Threadline's JSON error format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from server.wire.errors import json_error

ABORT_EXTENSION = "threadline.abort"
DIRECT_EXTENSION = "threadline.direct_writes"
RETRY_AFTER_SECONDS = 1


def transport_abort(ws: WebSocket) -> Callable[[], None] | None:
    """The server's way to drop this connection now, if it offers one."""
    extension = (ws.scope.get("extensions") or {}).get(ABORT_EXTENSION)
    abort = extension.get("abort") if isinstance(extension, dict) else None
    return abort if callable(abort) else None


@runtime_checkable
class DirectWrites(Protocol):
    """A websocket's frames written synchronously onto its transport."""

    def send_text(self, text: str) -> bool:
        """Write one text frame now (buffered by the transport if the
        kernel takes it only in part). False, writing nothing, once the
        socket is closing or gone: nothing sent from then on arrives."""
        ...

    def buffered(self) -> int:
        """The bytes the transport holds, not yet taken by the kernel."""
        ...

    @property
    def writing_paused(self) -> bool:
        """Whether the transport's buffer is past its limit."""
        ...

    def watch_writing(
        self, paused: Callable[[], None] | None, resumed: Callable[[], None] | None
    ) -> None:
        """Call `paused` when the transport's buffer goes past its limit and
        `resumed` once it drained (None: stop calling)."""
        ...


def direct_writes(ws: WebSocket) -> DirectWrites | None:
    """The server's synchronous writes for this socket, if it offers them."""
    extension = (ws.scope.get("extensions") or {}).get(DIRECT_EXTENSION)
    writes = extension.get("writes") if isinstance(extension, dict) else None
    return writes if isinstance(writes, DirectWrites) else None


def restarting_response() -> JSONResponse:
    response = json_error(503, "unavailable", "the server is restarting; try again")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
