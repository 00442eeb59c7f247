"""Who is calling: session cookie (browsers) or bearer token (scripts, bots),
by the same checks for a REST request and a socket's handshake."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from server.auth.origins import allowed_origins
from server.auth.sessions import SESSION_COOKIE, session_actor
from server.auth.tokens import token_actor
from server.domain.actors import Actor
from server.domain.errors import Forbidden, Unauthenticated
from server.runtime import Runtime


async def authenticate(conn: HTTPConnection, runtime: Runtime, *, method: str) -> Actor | None:
    """The caller's Actor, None if anonymous; Unauthenticated for a bad
    credential (a bad credential is never silently treated as anonymous)."""
    authorization = conn.headers.get("authorization")
    if authorization is not None:
        return await token_actor(conn, runtime, authorization)
    cookie = conn.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return None
    return await session_actor(conn, runtime, cookie, method=method)


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
