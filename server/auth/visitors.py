"""Widget visitors: the session token a visitor's browser got from
`POST /widget/sessions` (PROTOCOLS.md P3: server-issued, random, stored
hashed), sent in a header to REST and as a subprotocol to the socket.

A visitor session works only from its inbox's allowed sites (or from
Threadline's own origin, the widget iframe).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from server.actions.visitors import check_widget_origin
from server.auth.origins import foreign_origin
from server.queries.reading import read
from server.queries.visitors import VisitorSession, visitor_session_for_token
from server.runtime import Runtime

MAX_TOKEN_LENGTH = 200


async def visitor_session(
    conn: HTTPConnection, runtime: Runtime, token: str | None
) -> VisitorSession | None:
    """The session of `token`; None when there is none (each transport
    answers that in its own way), Forbidden from a site the inbox does not
    allow."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    session = await read(runtime, visitor_session_for_token, token)
    if session is not None:
        check_widget_origin(session.inbox_settings, foreign_origin(conn, runtime))
    return session
