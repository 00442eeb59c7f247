"""Agent sessions: the `tl_session` cookie of a logged-in browser.

Cookie-authenticated writes must carry the session's CSRF token in the
`X-CSRF-Token` header, and an `Origin`, when the browser sends one, must be
the app's own or an allowed one.
"""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection

from server.auth.origins import check_origin
from server.domain.actors import Actor
from server.domain.errors import Forbidden, Unauthenticated
from server.queries.auth import actor_for_session
from server.queries.reading import read
from server.runtime import Runtime

SESSION_COOKIE = "tl_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def session_actor(
    conn: HTTPConnection, runtime: Runtime, cookie: str, *, method: str
) -> Actor:
    """The Actor of the session cookie; Unauthenticated for an expired or
    unknown session, Forbidden for a write without its CSRF token or from
    a foreign page. Leaves the CSRF token on `conn.state` for the answer."""
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
