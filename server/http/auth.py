"""Who is calling: session cookie (browsers) or bearer token (scripts, bots).

Cookie-authenticated writes must carry the session's CSRF token in the
`X-CSRF-Token` header, and an `Origin`, when the browser sends one, must be
the app's own or an allowed one. Token-authenticated requests need neither:
a bearer token is never sent by a browser on its own.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from starlette.requests import HTTPConnection

from server.actions.context import perform
from server.actions.tokens import do_record_token_use
from server.domain.actors import Actor
from server.domain.errors import Forbidden, Unauthenticated
from server.queries.auth import actor_for_api_token, actor_for_session
from server.queries.reading import read
from server.runtime import Runtime

SESSION_COOKIE = "tl_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


def client_ip(conn: HTTPConnection) -> str:
    """The peer address rate limits are keyed by."""
    return conn.client.host if conn.client else "unknown"


def check_origin(conn: HTTPConnection, runtime: Runtime) -> None:
    """Refuse a browser request from a foreign page. Requests with no Origin
    (curl, server-to-server) pass: CSRF needs a browser, and browsers send
    Origin on every cross-site write."""
    origin = conn.headers.get("origin")
    if origin is None:
        return
    if origin != own_origin(conn) and origin not in allowed_origins(runtime):
        raise Forbidden("this origin may not make authenticated requests", field="Origin")


TOKEN_USE_RESOLUTION = timedelta(minutes=1)


async def _record_token_use(conn: HTTPConnection, runtime: Runtime, actor: Actor) -> None:
    """Keep `last_used_at` current to the minute without a write per request:
    this process remembers when it last stamped each token."""
    assert actor.token_id is not None
    stamps: dict[int, datetime] = conn.app.state.token_use_stamps
    now = runtime.clock.now()
    last = stamps.get(actor.token_id)
    if last is not None and now - last < TOKEN_USE_RESOLUTION:
        return
    if len(stamps) > 100_000:
        stamps.clear()
    stamps[actor.token_id] = now
    await perform(runtime, actor, do_record_token_use, token_id=actor.token_id)


async def authenticate(conn: HTTPConnection, runtime: Runtime, *, method: str) -> Actor | None:
    """The caller's Actor, None if anonymous; Unauthenticated for a bad
    credential (a bad credential is never silently treated as anonymous)."""
    authorization = conn.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
            raise Unauthenticated("Authorization must be 'Bearer <token>'", field="Authorization")
        actor = await read(runtime, actor_for_api_token, token.strip())
        if actor is None:
            raise Unauthenticated("invalid or revoked token", field="Authorization")
        await _record_token_use(conn, runtime, actor)
        return actor
    cookie = conn.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return None
    if len(cookie) > 200:
        raise Unauthenticated("session expired or invalid; log in again")
    found = await read(runtime, actor_for_session, cookie, runtime.clock.now())
    if found is None:
        raise Unauthenticated("session expired or invalid; log in again")
    if method not in SAFE_METHODS:
        check_origin(conn, runtime)
        sent = conn.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), found.csrf_token.encode()):
            raise Forbidden("missing or wrong CSRF token", field="X-CSRF-Token")
    conn.state.csrf_token = found.csrf_token
    return found.actor


async def authenticate_websocket(conn: HTTPConnection, runtime: Runtime) -> Actor:
    """The handshake's caller, by the same credential checks as REST.

    A cookie-authenticated socket must come from an allowed Origin:
    browsers send Origin on every websocket handshake, and without this
    check any site could open a socket with the visitor's cookie
    (cross-site websocket hijacking). A bearer token is never sent by a
    browser on its own, so it needs no Origin.
    """
    if conn.headers.get("authorization") is None:
        origin = conn.headers.get("origin")
        if origin is None or origin not in allowed_origins(runtime):
            raise Forbidden("this origin may not open an authenticated socket", field="Origin")
    actor = await authenticate(conn, runtime, method="GET")
    if actor is None:
        raise Unauthenticated("log in or send an API token")
    return actor
