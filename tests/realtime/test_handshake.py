"""Authentication in the handshake (PROTOCOLS.md P2): the same credential
checks as REST, Origin checked against the allow-list for cookies, and a
refusal is a 403 before the socket is accepted."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from server.actions.context import perform
from server.actions.tokens import do_revoke_api_token
from server.auth.callers import authenticate_websocket
from server.clock import FrozenClock
from server.realtime import endpoints
from server.runtime import Runtime
from tests.realtime.live import FOREIGN_ORIGIN, OWN_ORIGIN, LiveServer, login, new_token
from tests.support import Workspace


async def refused(server: LiveServer, path: str = "/ws/agent", **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        await server.open(path, **kwargs)
    return info.value.response.status_code


async def test_cookie_needs_the_apps_own_origin(
    live: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    session = await login(live, ws.agent_email)
    assert await refused(live, cookie=session.cookie, origin=FOREIGN_ORIGIN) == 403
    assert await refused(live, cookie=session.cookie, origin=None) == 403
    # The server's own address is not on the allow-list either: only the
    # configured public origin is.
    assert await refused(live, cookie=session.cookie, origin=live.base_url) == 403
    # A bad credential next to a good cookie is refused, never ignored.
    assert await refused(live, cookie=session.cookie, token="tlp_wrong") == 403
    # The bot socket takes tokens only.
    assert await refused(live, "/ws/bot", cookie=session.cookie) == 403

    sock = await live.open(cookie=session.cookie, origin=OWN_ORIGIN)
    ready = await sock.ready()
    assert ready == {"type": "ready", "last_event_id": ready["last_event_id"], "resumed": False}

    # An expired session no longer opens one.
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(days=runtime.settings.session_days, seconds=1)
    assert await refused(live, cookie=session.cookie) == 403
    await session.http.aclose()


async def test_bearer_token_is_accepted_with_or_without_origin(
    live: LiveServer, agent_token: str
) -> None:
    for path in ("/ws/agent", "/ws/bot"):
        for origin in (None, OWN_ORIGIN, FOREIGN_ORIGIN):
            sock = await live.open(path, token=agent_token, origin=origin)
            ready = await sock.ready()
            assert ready["type"] == "ready" and ready["resumed"] is False
            assert isinstance(ready["last_event_id"], int) and ready["last_event_id"] > 0
    for value in ("abc", "-1", "1.5", "9" * 20):
        assert await refused(live, token=agent_token, last_event_id=value) == 403


async def test_missing_bad_or_revoked_credentials_are_refused_before_accept(
    live: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    for path in ("/ws/agent", "/ws/bot"):
        assert await refused(live, path) == 403
        assert await refused(live, path, origin=None) == 403

    token_id, token = await new_token(runtime, ws.agent)
    sock = await live.open(token=token, origin=None)
    await sock.ready()

    await perform(runtime, ws.agent, do_revoke_api_token, token_id=token_id)
    assert await refused(live, token=token, origin=None) == 403
    assert await refused(live, "/ws/bot", token=token, origin=None) == 403
    assert await refused(live, token="tlp_not-a-token", origin=None) == 403
    # A scheme other than Bearer is a bad credential, never anonymous.
    basic = {"Authorization": "Basic eDp5"}
    assert await refused(live, origin=None, additional_headers=basic) == 403


async def test_credential_revoked_during_the_handshake_is_caught(
    live: LiveServer, runtime: Runtime, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token revoked between the handshake's check and the moment the
    socket starts following the log must not leave a socket open: the
    revocation event is older than the socket's start, so only a second
    check catches it."""
    token_id, token = await new_token(runtime, ws.agent)
    checks = 0
    real = authenticate_websocket

    async def revoke_after_first_check(*args: Any) -> Any:
        nonlocal checks
        checks += 1
        actor = await real(*args)
        if checks == 1:
            await perform(runtime, ws.agent, do_revoke_api_token, token_id=token_id)
        return actor

    monkeypatch.setattr(endpoints, "authenticate_websocket", revoke_after_first_check)
    assert await refused(live, token=token, origin=None) == 403
    assert checks == 2
