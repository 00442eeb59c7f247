"""REST: login, logout, the current agent, changing one's password."""

from __future__ import annotations

from datetime import timedelta

from starlette.responses import JSONResponse

from server.actions.agents import do_change_password
from server.actions.context import perform
from server.actions.sessions import (
    NewSession,
    do_end_all_sessions,
    do_end_session,
    do_start_session,
)
from server.auth.origins import check_origin
from server.auth.sessions import SESSION_COOKIE
from server.domain.actors import Actor, ActorKind, system_actor
from server.domain.errors import InvalidInput, Unauthenticated
from server.domain.json_types import JsonObject, JsonValue
from server.http.api import Call, Endpoint
from server.http.ratelimit import SlidingWindow, client_ip
from server.queries.agents import agent_detail
from server.queries.reading import read
from server.wire.records import arg, record
from server.wire.schema import Str

Password = Str(max_length=1024, min_length=1, strip=False)


@record
class Login:
    email: str = arg(Str(max_length=320, min_length=1))
    password: str = arg(Password)


@record
class PasswordChange:
    current_password: str = arg(Password)
    new_password: str = arg(Password)


def _limiter(call: Call[object, object]) -> SlidingWindow:
    limiter: SlidingWindow = call.request.app.state.login_limiter
    return limiter


async def login(call: Call[Login, None]) -> JSONResponse:
    """Failed attempts count against both the client's IP and the account:
    one IP can't try many accounts, many IPs can't hammer one account."""
    check_origin(call.request, call.runtime)
    email = call.body.email.lower()
    ip = client_ip(call.request)
    limiter, now = _limiter(call), call.runtime.clock.now()
    keys = (f"ip:{ip}", f"account:{email}")
    for key in keys:
        limiter.check(key, now)
    try:
        session = await perform(
            call.runtime,
            system_actor(0),
            do_start_session,
            email=email,
            password=call.body.password,
            lifetime=timedelta(days=call.runtime.settings.session_days),
        )
    except Unauthenticated:
        for key in keys:
            limiter.hit(key, now)
        raise
    limiter.reset(f"account:{email}")
    agent = await read(call.runtime, agent_detail, _session_actor(session), session.agent_id)
    response = JSONResponse({"agent": agent, "csrf_token": session.csrf_token})
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=call.runtime.settings.session_days * 86_400,
        httponly=True,
        samesite="lax",
        secure=call.runtime.settings.cookie_secure,
        path="/",
    )
    return response


def _session_actor(session: NewSession) -> Actor:
    return Actor(kind=ActorKind.AGENT, workspace_id=session.workspace_id, agent_id=session.agent_id)


def _cleared(body: JsonObject) -> JSONResponse:
    response = JSONResponse(body)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def logout(call: Call[None, None]) -> JSONResponse:
    if call.actor.session_id is None:
        raise InvalidInput(
            "logout ends a browser session; revoke a token instead", field="Authorization"
        )
    await perform(call.runtime, call.actor, do_end_session, session_id=call.actor.session_id)
    return _cleared({"ended": 1})


async def logout_all(call: Call[None, None]) -> JSONResponse:
    ended = await perform(call.runtime, call.actor, do_end_all_sessions)
    return _cleared({"ended": ended})


async def me(call: Call[None, None]) -> JsonValue:
    agent = await read(call.runtime, agent_detail, call.actor, call.actor.agent_id or 0)
    # Set by authenticate() for cookie sessions: a reloaded page gets its
    # CSRF token here (readable only by same-origin script).
    csrf = getattr(call.request.state, "csrf_token", None)
    return {"agent": agent, "csrf_token": csrf}


async def change_password(call: Call[PasswordChange, None]) -> JsonValue:
    await perform(
        call.runtime,
        call.actor,
        do_change_password,
        agent_id=call.actor.agent_id or 0,
        current_password=call.body.current_password,
        new_password=call.body.new_password,
    )
    return {"changed": True}


ENDPOINTS = [
    Endpoint(
        "POST",
        "/auth/login",
        login,
        "Log in: sets the HttpOnly session cookie and returns the CSRF token",
        "auth",
        auth="public",
        body=Login,
    ),
    Endpoint("POST", "/auth/logout", logout, "End this browser session", "auth"),
    Endpoint("POST", "/auth/logout-all", logout_all, "End every session of this agent", "auth"),
    Endpoint("GET", "/auth/me", me, "The logged-in agent", "auth"),
    Endpoint(
        "POST",
        "/auth/password",
        change_password,
        "Change your password; your other sessions end",
        "auth",
        body=PasswordChange,
    ),
]
