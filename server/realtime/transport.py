"""What the live sockets need from the web server beyond plain ASGI.

Dropping a connection at once. A polite close (a close frame, then the TCP
close) waits for everything queued to reach the client; a client that has
stopped reading never takes it, so the connection would stay open for
ever, megabytes queued in the kernel, and hold up the server's shutdown.
`threadline serve` runs uvicorn with `server.serving.WebSocketProtocol`,
which puts the transport's abort in the scope under ABORT_EXTENSION. Under
another server there is none: the hub then can only stop writing.

Refusing a handshake while the server stops: 503 with Retry-After (the
client or the load balancer tries again, on this server's successor), in
Threadline's JSON error format.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from server.wire.errors import json_error

ABORT_EXTENSION = "threadline.abort"
RETRY_AFTER_SECONDS = 1


def transport_abort(ws: WebSocket) -> Callable[[], None] | None:
    """The server's way to drop this connection now, if it offers one."""
    extension = (ws.scope.get("extensions") or {}).get(ABORT_EXTENSION)
    abort = extension.get("abort") if isinstance(extension, dict) else None
    return abort if callable(abort) else None


def restarting_response() -> JSONResponse:
    response = json_error(503, "unavailable", "the server is restarting; try again")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
