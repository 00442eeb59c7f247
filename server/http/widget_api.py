"""REST for the chat widget (F8): what a visitor's browser talks to.

Every endpoint is `auth="public"` for the wrapper (a visitor is no agent
and has no cookie); all but session creation are authenticated by the
widget session token, sent in the `X-Widget-Session` header (PROTOCOLS.md
P3: server-issued, random, stored hashed). A missing or unknown token is a
401 naming that header.

No CORS headers: the widget's chat runs in an iframe served by Threadline
itself, on the same origin as this API, so the browser never makes a
cross-origin request here. An inbox's `allowed_domains` is checked against
the request's `Origin` when it names a foreign page (Threadline's own origin
is the iframe and passes; the iframe page itself is what must be limited to
those sites, with `frame-ancestors`).

Rate limits (PROTOCOLS.md P7), per process like the login limiter: session
creation per IP, messages per session, other writes per session.
"""

from __future__ import annotations

from typing import Protocol

from server.actions.agents import check_email
from server.actions.context import perform
from server.actions.messages import MessageResult
from server.actions.visitors import (
    do_identify_visitor,
    do_leave_offline_message,
    do_send_visitor_message,
    do_set_visitor_attributes,
    do_start_visitor_session,
    do_track_contact_event,
)
from server.auth.origins import foreign_origin
from server.auth.visitors import visitor_session
from server.domain.actors import system_actor
from server.domain.errors import InvalidInput, NotFound, RateLimited, Unauthenticated
from server.domain.json_types import JsonValue
from server.domain.widget_settings import availability
from server.http.api import Call, Endpoint
from server.http.ratelimit import SlidingWindow, client_ip, count, count_message, window
from server.queries.api_shapes import message_view
from server.queries.reading import read
from server.queries.visitor_live import has_open_conversation, widget_state
from server.queries.visitors import (
    VisitorSession,
    public_inbox_view,
    visitor_conversation,
    visitor_view,
    widget_inbox_by_token,
)
from server.wire.records import UNSET, Unset, arg, given, or_none, record
from server.wire.schema import Id, JsonMap, List, Str


class AgentsOnline(Protocol):
    """Who has a live socket is the realtime hub's to know; server.app
    wires it in as `app.state.agents_online`, so REST asks without
    importing the sockets' side."""

    def any_online(self, workspace_id: int, agent_ids: set[int]) -> bool: ...


SESSION_HEADER = "X-Widget-Session"

# name on app.state -> (requests, per seconds)
LIMITS = {
    "widget_session_limiter": (20, 60),  # new sessions per IP
    "widget_message_limiter": (30, 60),  # messages per session
    "widget_write_limiter": (60, 60),  # identify / attributes / events per session
    "widget_conversation_limiter": (10, 3600),  # new conversations per IP
}


ClientId = Str(max_length=100, min_length=1, description="the widget's idempotency key")
Email = Str(max_length=320, min_length=1)
PersonName = Str(max_length=200, min_length=1)


@record
class SessionStart:
    inbox_token: str = arg(Str(max_length=64, min_length=1))


@record
class VisitorMessage:
    text: str = arg(
        Str(max_length=65_536, description="may be empty when attachment_ids is not"), default=""
    )
    client_id: str = arg(ClientId)
    attachment_ids: list[int] = arg(
        List(Id, max_items=10, description="this session's unsent uploads"), default_factory=list
    )


@record
class OfflineMessage:
    email: str = arg(Email)
    name: str | None = arg(PersonName, default=None)
    text: str = arg(Str(max_length=65_536, min_length=1))
    client_id: str = arg(ClientId)


@record
class Identification:
    user_id: str | Unset = arg(Str(max_length=200, min_length=1), default=UNSET)
    email: str | Unset = arg(Email, default=UNSET)
    name: str | Unset = arg(PersonName, default=UNSET)
    identity_hash: str | Unset = arg(
        Str(max_length=128, min_length=1, description="hex HMAC-SHA256"), default=UNSET
    )
    identity_token: str | Unset = arg(
        Str(max_length=4096, min_length=1, description="HS256 JWT"), default=UNSET
    )


@record
class VisitorAttributes:
    attributes: dict[str, JsonValue] = arg(JsonMap(description="keys to set; null removes"))


@record
class VisitorEvent:
    name: str = arg(Str(max_length=100, min_length=1))
    properties: dict[str, JsonValue] = arg(
        JsonMap(description="event properties; lists and objects nest up to 3 deep", max_depth=3),
        default_factory=dict,
    )


def limiter(call: Call[object, object], name: str) -> SlidingWindow:
    """The SlidingWindow `name` of this app, created on first use."""
    return window(call.request.app.state, name, LIMITS[name])


def _count(call: Call[object, object], name: str, key: str) -> None:
    count(call.request.app.state, name, LIMITS[name], [key], call.runtime.clock.now())


def _count_message(call: Call[object, object], session: VisitorSession) -> None:
    """A visitor's messages: per session, and into its conversation by the
    flood limit agents' messages share."""
    _count(call, "widget_message_limiter", f"session:{session.session_id}")
    count_message(
        call.request,
        call.runtime,
        target=f"contact:{session.contact_id}",
        account=f"session:{session.session_id}",
    )


async def visitor(call: Call[object, object]) -> VisitorSession:
    """The session named by the X-Widget-Session header, from an allowed
    site; 401 otherwise."""
    token = call.request.headers.get(SESSION_HEADER)
    session = await visitor_session(call.request, call.runtime, token)
    if session is None:
        raise Unauthenticated(
            f"{SESSION_HEADER}: start a widget session first", field=SESSION_HEADER
        )
    return session


async def widget_start_session(call: Call[SessionStart, None]) -> JsonValue:
    _count(call, "widget_session_limiter", f"ip:{client_ip(call.request)}")
    inbox = await read(call.runtime, widget_inbox_by_token, call.body.inbox_token)
    if inbox is None:
        raise NotFound("inbox_token: no widget inbox has this token", field="inbox_token")
    new = await perform(
        call.runtime,
        system_actor(inbox.workspace_id),
        do_start_visitor_session,
        inbox_id=inbox.id,
        origin=foreign_origin(call.request, call.runtime),
    )
    session = VisitorSession(
        new.session_id,
        inbox.workspace_id,
        inbox.id,
        new.contact_id,
        False,
        inbox.settings,
        new.contact_id,
    )
    current = await read(call.runtime, visitor_conversation, session)
    return {
        "session_token": new.token,
        "contact_id": new.contact_id,
        "conversation": current["conversation"],
        "inbox": public_inbox_view(inbox),
    }


async def widget_get_conversation(call: Call[None, None]) -> JsonValue:
    session = await visitor(call)
    state, agent_ids = await read(call.runtime, widget_state, session)
    online: AgentsOnline = call.request.app.state.agents_online
    state["availability"] = availability(
        session.inbox_settings,
        call.runtime.clock.now(),
        agents_online=online.any_online(session.workspace_id, agent_ids),
    )
    return state


async def _check_new_conversation(
    call: Call[object, object], session: VisitorSession
) -> str | None:
    """Refuse (429) a message that would open yet another conversation from
    an address over its limit; messages into an open one always pass. The
    key to count on if the message does open one."""
    key = f"ip:{client_ip(call.request)}"
    try:
        limiter(call, "widget_conversation_limiter").check(key, call.runtime.clock.now())
    except RateLimited:
        if not await read(call.runtime, has_open_conversation, session):
            raise
    return key


def _opened(call: Call[object, object], key: str | None, result: MessageResult) -> None:
    if key is not None and result.created_conversation:
        limiter(call, "widget_conversation_limiter").hit(key, call.runtime.clock.now())


async def widget_send_message(call: Call[VisitorMessage, None]) -> JsonValue:
    session = await visitor(call)
    _count_message(call, session)
    new_conversation = await _check_new_conversation(call, session)
    result = await perform(
        call.runtime,
        system_actor(session.workspace_id),
        do_send_visitor_message,
        session_id=session.session_id,
        text=call.body.text,
        client_id=call.body.client_id,
        attachment_ids=call.body.attachment_ids,
    )
    _opened(call, new_conversation, result)
    return {"message": visitor_view(message_view(result.message)), "replayed": result.replayed}


async def widget_leave_offline_message(call: Call[OfflineMessage, None]) -> JsonValue:
    session = await visitor(call)
    _count_message(call, session)
    new_conversation = await _check_new_conversation(call, session)
    b = call.body
    result = await perform(
        call.runtime,
        system_actor(session.workspace_id),
        do_leave_offline_message,
        session_id=session.session_id,
        email=check_email(b.email, field="email"),
        name=b.name,
        text=b.text,
        client_id=b.client_id,
    )
    _opened(call, new_conversation, result)
    return {"message": visitor_view(message_view(result.message)), "replayed": result.replayed}


async def widget_identify(call: Call[Identification, None]) -> JsonValue:
    session = await visitor(call)
    b = call.body
    if not given(b):
        raise InvalidInput("body: give user_id, email, name or identity_token", field="body")
    _count(call, "widget_write_limiter", f"session:{session.session_id}")
    email = check_email(b.email, field="email") if b.email is not UNSET else None
    identified = await perform(
        call.runtime,
        system_actor(session.workspace_id),
        do_identify_visitor,
        session_id=session.session_id,
        box=call.runtime.secrets,
        user_id=or_none(b.user_id),
        email=email,
        name=or_none(b.name),
        identity_hash=or_none(b.identity_hash),
        identity_token=or_none(b.identity_token),
    )
    return {"contact_id": identified.contact_id, "verified": identified.verified}


async def widget_set_attributes(call: Call[VisitorAttributes, None]) -> JsonValue:
    session = await visitor(call)
    _count(call, "widget_write_limiter", f"session:{session.session_id}")
    await perform(
        call.runtime,
        system_actor(session.workspace_id),
        do_set_visitor_attributes,
        session_id=session.session_id,
        attributes=call.body.attributes,
    )
    return {"ok": True}


async def widget_track_event(call: Call[VisitorEvent, None]) -> JsonValue:
    session = await visitor(call)
    _count(call, "widget_write_limiter", f"session:{session.session_id}")
    event_id = await perform(
        call.runtime,
        system_actor(session.workspace_id),
        do_track_contact_event,
        contact_id=session.contact_id,
        name=call.body.name,
        properties=call.body.properties,
    )
    return {"id": event_id}


ENDPOINTS = [
    Endpoint(
        "POST",
        "/widget/sessions",
        widget_start_session,
        "Start a widget session as a new anonymous visitor (the token is shown once)",
        "widget",
        auth="public",
        body=SessionStart,
        status=201,
    ),
    Endpoint(
        "GET",
        "/widget/conversation",
        widget_get_conversation,
        "The visitor's open conversation and its public messages (X-Widget-Session)",
        "widget",
        auth="public",
    ),
    Endpoint(
        "POST",
        "/widget/messages",
        widget_send_message,
        "Send a message as the visitor; client_id makes it exactly-once (X-Widget-Session)",
        "widget",
        auth="public",
        body=VisitorMessage,
        status=201,
    ),
    Endpoint(
        "POST",
        "/widget/offline",
        widget_leave_offline_message,
        "Leave a message with an email to answer by, when no agent is online (X-Widget-Session)",
        "widget",
        auth="public",
        body=OfflineMessage,
        status=201,
    ),
    Endpoint(
        "POST",
        "/widget/identify",
        widget_identify,
        "Say who the visitor is; verified with identity_hash or identity_token (X-Widget-Session)",
        "widget",
        auth="public",
        body=Identification,
    ),
    Endpoint(
        "POST",
        "/widget/attributes",
        widget_set_attributes,
        "Merge custom attributes into the visitor's contact (X-Widget-Session)",
        "widget",
        auth="public",
        body=VisitorAttributes,
    ),
    Endpoint(
        "POST",
        "/widget/events",
        widget_track_event,
        "Record an event the visitor did, such as order_placed (X-Widget-Session)",
        "widget",
        auth="public",
        body=VisitorEvent,
        status=201,
    ),
]
