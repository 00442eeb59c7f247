"""Which pages a browser request or socket may come from.

A cookie travels with every request a browser makes, whichever page made
it; the `Origin` header says which page that was, so it is what stops
another site from acting with an agent's or a visitor's credentials.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from server.domain.errors import Forbidden
from server.runtime import Runtime


def allowed_origins(runtime: Runtime) -> set[str]:
    return {runtime.settings.public_origin, *runtime.settings.allowed_origins}


def own_origin(conn: HTTPConnection) -> str:
    """This server's origin as the browser saw it (a socket's ws:// and
    wss:// are the page's http:// and https://)."""
    scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
    return f"{scheme}://{conn.url.netloc}"


def foreign_origin(conn: HTTPConnection, runtime: Runtime) -> str | None:
    """The foreign page a browser request or socket came from; None when
    it came from Threadline's own origin (the widget iframe) or from no
    browser at all."""
    origin = conn.headers.get("origin")
    own = {own_origin(conn), runtime.settings.public_origin}
    return None if origin is None or origin in own else origin


def check_origin(conn: HTTPConnection, runtime: Runtime) -> None:
    """Refuse a browser request from a foreign page. Requests with no Origin
    (curl, server-to-server) pass: CSRF needs a browser, and browsers send
    Origin on every cross-site write."""
    origin = conn.headers.get("origin")
    if origin is None:
        return
    if origin != own_origin(conn) and origin not in allowed_origins(runtime):
        raise Forbidden("this origin may not make authenticated requests", field="Origin")
