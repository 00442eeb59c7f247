"""The widget's REST API (F8, PROTOCOLS.md P3/P7/P8) through the in-process
ASGI client: sessions, messages, identity, allowed sites, rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from server.actions.contacts import IdentityInput, do_add_contact_identity
from server.actions.context import perform
from server.actions.inboxes import NewInbox, do_create_inbox, do_update_inbox
from server.actions.messages import do_receive_message, do_send_message
from server.domain.values import IdentityKind, InboxKind
from server.domain.widget_identity import identity_hash
from server.runtime import Runtime
from tests.domain.test_widget_identity import jwt
from tests.support import T0, Workspace, client

W = "/api/v1/widget"
HEADER = "X-Widget-Session"
EXP = int((T0 + timedelta(minutes=5)).timestamp())


@pytest.fixture
async def widget(runtime: Runtime, ws: Workspace) -> NewInbox:
    return await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name="Shop chat",
        kind=InboxKind.WIDGET,
        settings={"greeting": "Hi there!"},
        box=runtime.secrets,
    )


@pytest.fixture
async def browser(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client(runtime) as c:
        yield c


async def start(c: httpx.AsyncClient, widget: NewInbox, **headers: str) -> dict[str, Any]:
    res = await c.post(f"{W}/sessions", json={"inbox_token": widget.public_token}, headers=headers)
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()
    return body


def auth(session: dict[str, Any]) -> dict[str, str]:
    return {HEADER: session["session_token"]}


def assert_error(res: httpx.Response, status: int, field: str) -> None:
    assert res.status_code == status, res.text
    assert res.json()["error"]["field"] == field, res.text


async def customer(runtime: Runtime, ws: Workspace, widget: NewInbox) -> int:
    """Ann (user-42, ann@shop.test) already talked in the widget inbox and
    got a reply; returns her conversation id."""
    received = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=widget.inbox_id,
        identity=IdentityInput(IdentityKind.EXTERNAL, "user-42", verified=True),
        name="Ann",
        text="where is my parcel?",
    )
    await perform(
        runtime,
        ws.system,
        do_add_contact_identity,
        contact_id=received.contact_id,
        identity=IdentityInput(IdentityKind.EMAIL, "ann@shop.test"),
    )
    return received.conversation_id


async def test_session_message_and_conversation_happy_path(
    runtime: Runtime, ws: Workspace, widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    session = await start(browser, widget)
    assert session["conversation"] is None
    assert session["session_token"].startswith("tlw_")
    assert session["inbox"] == {
        "id": widget.inbox_id,
        "name": "Shop chat",
        "greeting": "Hi there!",
        "color": None,
        "locale": None,
        "require_verification": None,
        "prechat": None,
        "away_message": None,
    }
    assert widget.secret is not None and widget.secret not in str(session)

    res = await browser.post(
        f"{W}/messages", json={"text": "hello", "client_id": "c-1"}, headers=auth(session)
    )
    assert res.status_code == 201, res.text
    sent = res.json()
    assert sent["replayed"] is False and sent["message"]["text"] == "hello"
    conversation_id = sent["message"]["conversation_id"]
    await perform(
        runtime,
        ws.admin,
        do_send_message,
        conversation_id=conversation_id,
        text="secret note",
        private=True,
    )
    await perform(
        runtime, ws.admin, do_send_message, conversation_id=conversation_id, text="How can I help?"
    )

    res = await browser.get(f"{W}/conversation", headers=auth(session))
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["conversation"]["id"] == conversation_id
    assert [(m["sender_kind"], m["text"]) for m in body["messages"]] == [
        ("contact", "hello"),
        ("agent", "How can I help?"),
    ]
    assert "secret note" not in res.text and "private" not in res.text

    res = await browser.post(
        f"{W}/attributes", json={"attributes": {"plan": "pro"}}, headers=auth(session)
    )
    assert res.status_code == 200, res.text
    res = await browser.post(
        f"{W}/events",
        json={"name": "order_placed", "properties": {"total": 3}},
        headers=auth(session),
    )
    assert res.status_code == 201 and res.json()["id"] > 0


async def test_same_client_id_twice_is_one_message(
    widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    session = await start(browser, widget)
    first = await browser.post(
        f"{W}/messages", json={"text": "once", "client_id": "k"}, headers=auth(session)
    )
    again = await browser.post(
        f"{W}/messages", json={"text": "once", "client_id": "k"}, headers=auth(session)
    )
    assert first.json()["message"]["id"] == again.json()["message"]["id"]
    assert again.json()["replayed"] is True
    listed = (await browser.get(f"{W}/conversation", headers=auth(session))).json()
    assert [m["text"] for m in listed["messages"]] == ["once"]


@pytest.mark.parametrize("token", [None, "", "tlw_not-a-session", "x" * 500])
async def test_missing_or_bad_session_token_is_401(
    widget: NewInbox, browser: httpx.AsyncClient, token: str | None
) -> None:
    headers = {} if token is None else {HEADER: token}
    for method, path, body in (
        ("GET", "/conversation", None),
        ("POST", "/messages", {"text": "hi", "client_id": "c"}),
        ("POST", "/identify", {"name": "X"}),
        ("POST", "/attributes", {"attributes": {}}),
        ("POST", "/events", {"name": "x"}),
    ):
        res = await browser.request(method, W + path, json=body, headers=headers)
        assert_error(res, 401, HEADER)


async def test_unknown_or_non_widget_inbox_token_is_404(
    runtime: Runtime, ws: Workspace, browser: httpx.AsyncClient
) -> None:
    res = await browser.post(f"{W}/sessions", json={"inbox_token": "nope"})
    assert_error(res, 404, "inbox_token")
    email_inbox = await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name="Mail",
        kind=InboxKind.EMAIL,
        settings={},
        box=runtime.secrets,
    )
    res = await browser.post(f"{W}/sessions", json={"inbox_token": email_inbox.public_token})
    assert_error(res, 404, "inbox_token")


async def test_unverified_email_claim_sees_no_history_and_does_not_merge(
    runtime: Runtime, ws: Workspace, widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    await customer(runtime, ws, widget)
    session = await start(browser, widget)
    res = await browser.post(
        f"{W}/identify",
        json={"email": "ann@shop.test", "user_id": "user-42", "name": "Ann"},
        headers=auth(session),
    )
    assert res.status_code == 200, res.text
    assert res.json() == {"contact_id": session["contact_id"], "verified": False}
    body = (await browser.get(f"{W}/conversation", headers=auth(session))).json()
    assert (body["conversation"], body["messages"], body["has_more"]) == (None, [], False)


async def test_verified_hmac_and_jwt_see_the_history_on_another_browser(
    runtime: Runtime, ws: Workspace, widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    conversation_id = await customer(runtime, ws, widget)
    assert widget.secret is not None
    proofs: list[dict[str, str]] = [
        {"user_id": "user-42", "identity_hash": identity_hash(widget.secret, "user-42")},
        {
            "identity_token": jwt(
                {"sub": "user-42", "email": "ann@shop.test", "exp": EXP}, secret=widget.secret
            )
        },
    ]
    for proof in proofs:
        session = await start(browser, widget)
        res = await browser.post(f"{W}/identify", json=proof, headers=auth(session))
        assert res.status_code == 200, res.text
        assert res.json()["verified"] is True
        body = (await browser.get(f"{W}/conversation", headers=auth(session))).json()
        assert body["conversation"]["id"] == conversation_id
        assert [m["text"] for m in body["messages"]] == ["where is my parcel?"]


async def test_bad_proofs_are_refused_naming_the_field(
    widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    assert widget.secret is not None
    session = await start(browser, widget)
    good = {"sub": "user-42", "email": "ann@shop.test", "exp": EXP}
    cases = [
        ({"user_id": "user-42", "identity_hash": "ab" * 32}, 403, "identity_hash"),
        ({"identity_hash": identity_hash(widget.secret, "user-42")}, 422, "user_id"),
        (
            {"identity_token": jwt({**good, "exp": EXP - 600}, secret=widget.secret)},
            403,
            "identity_token",
        ),
        ({"identity_token": jwt(good, secret="guessed")}, 403, "identity_token"),
        ({"identity_token": "not.a.jwt"}, 403, "identity_token"),
        ({"email": "not an email"}, 422, "email"),
        ({}, 422, "body"),
    ]
    for body, status, field in cases:
        res = await browser.post(f"{W}/identify", json=body, headers=auth(session))
        assert_error(res, status, field)


async def test_require_verification(
    runtime: Runtime, ws: Workspace, widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    await perform(
        runtime,
        ws.system,
        do_update_inbox,
        inbox_id=widget.inbox_id,
        settings={"require_verification": True},
    )
    session = await start(browser, widget)
    assert session["inbox"]["require_verification"] is True
    res = await browser.post(f"{W}/identify", json={"email": "a@b.test"}, headers=auth(session))
    assert_error(res, 403, "identity_hash")
    assert widget.secret is not None
    res = await browser.post(
        f"{W}/identify",
        json={"user_id": "u1", "identity_hash": identity_hash(widget.secret, "u1")},
        headers=auth(session),
    )
    assert res.status_code == 200 and res.json()["verified"] is True


async def test_allowed_domains(
    runtime: Runtime, ws: Workspace, widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    session = await start(browser, widget, origin="https://evil.example")  # no list yet
    # Set through the REST API as a string (inbox settings there are scalar).
    await perform(
        runtime,
        ws.system,
        do_update_inbox,
        inbox_id=widget.inbox_id,
        settings={"allowed_domains": "https://shop.example https://www.shop.example"},
    )
    res = await browser.post(
        f"{W}/sessions",
        json={"inbox_token": widget.public_token},
        headers={"origin": "https://evil.example"},
    )
    assert_error(res, 403, "Origin")
    res = await browser.get(
        f"{W}/conversation", headers={**auth(session), "origin": "https://evil.example"}
    )
    assert_error(res, 403, "Origin")
    await start(browser, widget, origin="https://www.shop.example")
    await start(browser, widget, origin="http://testserver")  # the widget iframe itself
    await start(browser, widget)  # no browser


async def test_session_creation_is_rate_limited_per_ip(
    widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    for _ in range(20):
        await start(browser, widget)
    res = await browser.post(f"{W}/sessions", json={"inbox_token": widget.public_token})
    assert res.status_code == 429
    assert int(res.headers["retry-after"]) >= 1


async def test_messages_are_rate_limited_per_session(
    widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    session = await start(browser, widget)
    for i in range(30):
        res = await browser.post(
            f"{W}/messages", json={"text": "spam", "client_id": f"c{i}"}, headers=auth(session)
        )
        assert res.status_code == 201, res.text
    res = await browser.post(
        f"{W}/messages", json={"text": "spam", "client_id": "c-last"}, headers=auth(session)
    )
    assert res.status_code == 429
    assert int(res.headers["retry-after"]) >= 1
    other = await start(browser, widget)
    res = await browser.post(
        f"{W}/messages", json={"text": "hi", "client_id": "c0"}, headers=auth(other)
    )
    assert res.status_code == 201


async def test_bad_input_names_the_field(widget: NewInbox, browser: httpx.AsyncClient) -> None:
    session = await start(browser, widget)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/messages", {"text": "   ", "client_id": "c"}, "text"),
        ("/messages", {"text": "hi"}, "client_id"),
        ("/messages", {"text": "hi", "client_id": "x" * 101}, "client_id"),
        (
            "/events",
            {"name": "x", "properties": {"a": {"b": {"c": {"d": {"e": 1}}}}}},
            "properties.a.b.c.d",
        ),
        ("/events", {"name": ""}, "name"),
        ("/attributes", {"attributes": "plan"}, "attributes"),
        ("/sessions", {"inbox_token": 5}, "inbox_token"),
    ]
    for path, body, field in cases:
        res = await browser.post(W + path, json=body, headers=auth(session))
        assert_error(res, 422, field)
