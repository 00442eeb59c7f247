"""What the widget loads (GET /widget/conversation), the offline form and
the limit on opening conversations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import perform
from server.actions.inboxes import NewInbox, do_create_inbox
from server.actions.messages import do_send_message
from server.actions.reads import do_mark_read
from server.domain.values import IdentityKind, InboxKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import Workspace, client, fetch_all, fetch_one

W = "/api/v1/widget"


@pytest.fixture
async def widget(runtime: Runtime, ws: Workspace) -> NewInbox:
    return await perform(
        runtime,
        ws.system,
        do_create_inbox,
        name="Shop chat",
        kind=InboxKind.WIDGET,
        settings={
            "greeting": "Hi there!",
            "away_message": "We answer within a day.",
            "prechat": {"enabled": True, "name": "optional", "email": "required"},
            "allowed_domains": ["https://shop.example"],
        },
        box=runtime.secrets,
    )


@pytest.fixture
async def browser(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client(runtime) as c:
        yield c


async def start(c: httpx.AsyncClient, widget: NewInbox) -> dict[str, str]:
    res = await c.post(f"{W}/sessions", json={"inbox_token": widget.public_token})
    assert res.status_code == 201, res.text
    return {"X-Widget-Session": res.json()["session_token"]}


async def test_state_shows_the_inbox_face_the_visitor_and_read_positions(
    runtime: Runtime, ws: Workspace, widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    headers = await start(browser, widget)
    state = (await browser.get(f"{W}/conversation", headers=headers)).json()
    assert state["conversation"] is None
    assert state["inbox"] == {
        "id": widget.inbox_id,
        "name": "Shop chat",
        "greeting": "Hi there!",
        "color": None,
        "locale": None,
        "require_verification": None,
        "prechat": {"enabled": True, "name": "optional", "email": "required"},
        "away_message": "We answer within a day.",
    }
    assert "allowed_domains" not in str(state)
    assert state["contact"] == {"name": None, "verified": False, "has_email": False}
    assert state["availability"]["agents_online"] is False
    assert state["availability"]["open_now"] is True

    sent = await browser.post(
        f"{W}/messages", json={"text": "hello", "client_id": "c1"}, headers=headers
    )
    conversation_id = sent.json()["message"]["conversation_id"]
    await perform(runtime, ws.admin, do_send_message, conversation_id=conversation_id, text="hi!")
    await perform(runtime, ws.admin, do_mark_read, conversation_id=conversation_id, seq=1)
    state = (await browser.get(f"{W}/conversation", headers=headers)).json()
    assert state["conversation"]["agent_last_read_seq"] == 1
    assert state["conversation"]["contact_last_read_seq"] == 0
    assert [m["text"] for m in state["messages"]] == ["hello", "hi!"]


async def test_offline_form_keeps_the_email_as_a_claim_and_labels_the_conversation(
    runtime: Runtime, ws: Workspace, widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    owner = await perform(
        runtime,
        ws.system,
        do_create_contact,
        name="Real Ann",
        identities=[IdentityInput(IdentityKind.EMAIL, "ann@shop.test")],
    )
    headers = await start(browser, widget)
    body: dict[str, Any] = {
        "email": "Ann@Shop.test",
        "name": "Ann",
        "text": "Do you ship to Norway?",
        "client_id": "off-1",
    }
    first = await browser.post(f"{W}/offline", json=body, headers=headers)
    again = await browser.post(f"{W}/offline", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.json()["replayed"] is True
    message = first.json()["message"]
    conv = await fetch_one(
        runtime,
        sa.select(t.conversations).where(t.conversations.c.id == message["conversation_id"]),
    )
    # Not merged into the contact owning that address: a claim on the
    # visitor's own contact, which the agents can answer by email.
    assert conv.contact_id != owner
    contact = await fetch_one(
        runtime, sa.select(t.contacts).where(t.contacts.c.id == conv.contact_id)
    )
    assert contact.name == "Ann"
    assert contact.attributes["email"] == "ann@shop.test"
    labels = await fetch_all(
        runtime,
        sa.select(t.conversation_labels.c.label).where(
            t.conversation_labels.c.conversation_id == conv.id
        ),
    )
    assert [row.label for row in labels] == ["offline"]
    messages = await fetch_all(
        runtime, sa.select(t.messages).where(t.messages.c.conversation_id == conv.id)
    )
    assert len(messages) == 1
    state = (await browser.get(f"{W}/conversation", headers=headers)).json()
    assert state["contact"] == {"name": "Ann", "verified": False, "has_email": True}

    bad = await browser.post(
        f"{W}/offline", json={**body, "email": "not-an-email"}, headers=headers
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "email"


async def test_opening_conversations_is_limited_per_address_but_talking_is_not(
    runtime: Runtime, ws: Workspace, widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    sessions = [await start(browser, widget) for _ in range(11)]
    for i, headers in enumerate(sessions[:10]):
        res = await browser.post(
            f"{W}/messages", json={"text": "new", "client_id": f"c{i}"}, headers=headers
        )
        assert res.status_code == 201, res.text
    refused = await browser.post(
        f"{W}/messages", json={"text": "one more", "client_id": "c-x"}, headers=sessions[10]
    )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    # A visitor with an open conversation keeps talking.
    res = await browser.post(
        f"{W}/messages", json={"text": "still me", "client_id": "c-y"}, headers=sessions[0]
    )
    assert res.status_code == 201, res.text
    opened = await fetch_all(
        runtime,
        sa.select(t.conversations.c.id).where(t.conversations.c.inbox_id == widget.inbox_id),
    )
    assert len(opened) == 10


async def test_tracked_events_reach_the_contact_for_agents(
    runtime: Runtime,
    ws: Workspace,
    widget: NewInbox,
    browser: httpx.AsyncClient,
    admin_client: httpx.AsyncClient,
) -> None:
    headers = await start(browser, widget)
    cart = {"items": [{"sku": "trail-runner", "qty": 1}], "total": 89, "currency": "EUR"}
    for name, props in (("cart_updated", cart), ("page_viewed", {"path": "/shoes"})):
        res = await browser.post(
            f"{W}/events", json={"name": name, "properties": props}, headers=headers
        )
        assert res.status_code == 201, res.text
    too_deep = {"a": {"b": {"c": {"d": {"e": 1}}}}}
    res = await browser.post(
        f"{W}/events", json={"name": "x", "properties": too_deep}, headers=headers
    )
    assert res.status_code == 422 and res.json()["error"]["field"].startswith("properties.a")

    rows = await fetch_all(runtime, sa.select(t.contact_events.c.contact_id))
    contact_id = rows[0].contact_id
    listed = (await admin_client.get(f"/api/v1/contacts/{contact_id}/events")).json()
    assert [(e["name"], e["properties"]) for e in listed["items"]] == [
        ("page_viewed", {"path": "/shoes"}),
        ("cart_updated", cart),
    ]
    only = (
        await admin_client.get(f"/api/v1/contacts/{contact_id}/events?name=cart_updated")
    ).json()
    assert [e["name"] for e in only["items"]] == ["cart_updated"]
