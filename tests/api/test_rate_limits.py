"""Rate limits of PROTOCOLS.md P7 that ride on one sliding-window mechanism
(server.http.ratelimit): search and the per-conversation message flood,
keyed by account and by IP, with small limits from the settings. Also the
headers every JSON answer of the API carries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.actions.context import perform
from server.actions.inboxes import do_create_inbox
from server.app import create_app
from server.clock import FrozenClock
from server.domain.values import InboxKind
from server.http import search as search_api
from server.runtime import Runtime
from server.settings import Settings
from server.storage import tables as t
from tests.support import BASE_URL, Workspace, fetch_all, login, make_runtime, seed_workspace

API = "/api/v1"


@pytest.fixture
async def limited(migrated_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = make_runtime(
        migrated_url,
        tmp_path / "data",
        THREADLINE_SEARCH_LIMIT="3/60",
        THREADLINE_MESSAGE_LIMIT="3/60",
    )
    yield rt
    await rt.close()


@pytest.fixture
async def lws(limited: Runtime) -> Workspace:
    return await seed_workspace(limited)


@pytest.fixture
def app(limited: Runtime) -> Any:
    # One app: the windows live on its state, shared by every client below.
    return create_app(limited)


def client_from(app: Any, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 40000)), base_url=BASE_URL
    )


async def logged_in(app: Any, ip: str, email: str) -> httpx.AsyncClient:
    c = client_from(app, ip)
    await login(c, email)
    return c


def assert_limited(res: httpx.Response) -> None:
    assert res.status_code == 429, res.text
    assert res.json()["error"]["code"] == "rate_limited"
    assert int(res.headers["retry-after"]) >= 1


async def test_search_is_limited_per_account_and_per_ip(
    app: Any, limited: Runtime, lws: Workspace
) -> None:
    agent = await logged_in(app, "10.0.0.1", lws.agent_email)
    admin_same_ip = await logged_in(app, "10.0.0.1", lws.admin_email)
    admin_elsewhere = await logged_in(app, "10.0.0.2", lws.admin_email)
    agent_elsewhere = await logged_in(app, "10.0.0.3", lws.agent_email)
    for _ in range(3):
        assert (await agent.get(f"{API}/search", params={"q": "order"})).status_code == 200
    assert_limited(await agent.get(f"{API}/search", params={"q": "order"}))
    # The IP is spent, whoever searches from it...
    assert_limited(await admin_same_ip.get(f"{API}/search", params={"q": "order"}))
    # ...and the account is spent, wherever it searches from.
    assert_limited(await agent_elsewhere.get(f"{API}/search", params={"q": "order"}))
    # Another account from another address still searches; refused requests
    # used up nothing of the admin's allowance.
    for _ in range(3):
        res = await admin_elsewhere.get(f"{API}/search", params={"q": "order"})
        assert res.status_code == 200, res.text
    assert isinstance(limited.clock, FrozenClock)
    limited.clock.advance(seconds=61)
    assert (await agent.get(f"{API}/search", params={"q": "order"})).status_code == 200
    for c in (agent, admin_same_ip, admin_elsewhere, agent_elsewhere):
        await c.aclose()


async def message_count(runtime: Runtime, conversation_id: int) -> int:
    m = t.messages.c
    rows = await fetch_all(runtime, sa.select(m.id).where(m.conversation_id == conversation_id))
    return len(rows)


async def test_message_flood_into_one_conversation_is_limited(
    app: Any, limited: Runtime, lws: Workspace
) -> None:
    agent = await logged_in(app, "10.0.0.1", lws.agent_email)
    admin_same_ip = await logged_in(app, "10.0.0.1", lws.admin_email)
    admin_elsewhere = await logged_in(app, "10.0.0.2", lws.admin_email)
    agent_elsewhere = await logged_in(app, "10.0.0.3", lws.agent_email)
    cid = lws.conversation_id
    url = f"{API}/conversations/{cid}/messages"
    before = await message_count(limited, cid)
    # Replies and notes count alike.
    for body in ({"text": "one"}, {"text": "two", "private": True}, {"text": "three"}):
        assert (await agent.post(url, json=body)).status_code == 201
    assert_limited(await agent.post(url, json={"text": "four", "private": True}))
    # The IP is spent here, whoever writes from it, and the account is
    # spent here, wherever it writes from.
    assert_limited(await admin_same_ip.post(url, json={"text": "same address"}))
    assert_limited(await agent_elsewhere.post(url, json={"text": "same account"}))
    assert await message_count(limited, cid) == before + 3
    # Another conversation is another allowance.
    other = await agent.post(
        f"{API}/conversations", json={"inbox_id": lws.inbox_id, "contact_id": lws.contact_id}
    )
    assert other.status_code == 201, other.text
    res = await agent.post(f"{API}/conversations/{other.json()['id']}/messages", json={"text": "x"})
    assert res.status_code == 201, res.text
    # Another account from another address may still write here.
    assert (await admin_elsewhere.post(url, json={"text": "admin"})).status_code == 201
    for c in (agent, admin_same_ip, admin_elsewhere, agent_elsewhere):
        await c.aclose()


async def test_widget_visitor_messages_share_the_flood_limit(
    app: Any, limited: Runtime, lws: Workspace
) -> None:
    widget = await perform(
        limited,
        lws.system,
        do_create_inbox,
        name="Chat",
        kind=InboxKind.WIDGET,
        settings={},
        box=limited.secrets,
    )
    async with client_from(app, "10.0.0.9") as browser:
        res = await browser.post(
            f"{API}/widget/sessions", json={"inbox_token": widget.public_token}
        )
        assert res.status_code == 201, res.text
        headers = {"X-Widget-Session": res.json()["session_token"]}
        for i in range(3):
            res = await browser.post(
                f"{API}/widget/messages", json={"text": "hi", "client_id": f"c{i}"}, headers=headers
            )
            assert res.status_code == 201, res.text
        res = await browser.post(
            f"{API}/widget/messages", json={"text": "hi", "client_id": "c4"}, headers=headers
        )
        assert_limited(res)


def assert_api_headers(res: httpx.Response) -> None:
    assert res.headers["content-type"].startswith("application/json"), res.headers
    assert res.headers["x-content-type-options"] == "nosniff", res.headers
    assert res.headers["cache-control"] == "no-store", res.headers


async def test_api_json_answers_are_not_sniffed_or_stored(app: Any, lws: Workspace) -> None:
    async with client_from(app, "10.0.0.5") as anon:
        assert_api_headers(await anon.get(f"{API}/conversations"))  # 401
        assert_api_headers(await anon.get(f"{API}/no/such/route"))  # 404 from the router
        assert_api_headers(await anon.get(f"{API}/openapi.json"))
        res = await anon.post(f"{API}/auth/login", json={"email": lws.agent_email})
        assert res.status_code == 422
        assert_api_headers(res)
    agent = await logged_in(app, "10.0.0.6", lws.agent_email)
    res = await agent.get(f"{API}/conversations")
    assert res.status_code == 200
    assert_api_headers(res)
    res = await agent.post(
        f"{API}/conversations", content=b"{", headers={"content-type": "application/json"}
    )
    assert res.status_code == 400
    assert_api_headers(res)
    await agent.aclose()


async def test_an_api_server_error_is_not_sniffed_or_stored_either(
    app: Any, lws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The 500 handler runs outside the middleware that adds the headers.
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(search_api, "read", broken)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 40000), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        await login(c, lws.agent_email)
        res = await c.get(f"{API}/search", params={"q": "order"})
    assert res.status_code == 500, res.text
    assert res.json()["error"]["code"] == "internal"
    assert_api_headers(res)


@pytest.mark.parametrize("raw", ["0/60", "10", "ten/60", "10/0", "-1/60"])
def test_a_malformed_limit_setting_is_refused_naming_it(raw: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="THREADLINE_SEARCH_LIMIT"):
        Settings.from_env({}, THREADLINE_DATA_DIR=str(tmp_path), THREADLINE_SEARCH_LIMIT=raw)
    settings = Settings.from_env({}, THREADLINE_DATA_DIR=str(tmp_path))
    assert settings.search_limit == (120, 60) and settings.message_limit == (200, 60)
