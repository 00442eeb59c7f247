"""REST: a contact's consents and tracked events from the shop's backend.

Consents are a history (source and time kept), the latest row per
channel and topic is the current state, the one-click unsubscribe
records a withdrawal for the address's contacts; `POST
/contacts/{id}/events` records a tracked event once per Idempotency-Key,
for an agent's API token too, with names and properties checked."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from server.actions.context import perform
from server.actions.tokens import do_create_api_token
from server.domain.unsubscribe import make_unsubscribe_token
from server.email.config import mail_identity
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, client, fetch_all, login, seed_workspace

API = "/api/v1"


def consents_url(contact_id: int) -> str:
    return f"{API}/contacts/{contact_id}/consents"


async def test_consent_history_and_current_state(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    empty = (await agent_client.get(consents_url(ws.contact_id))).json()
    assert empty == {
        "consents": [],
        "current": {
            "email:marketing": None,
            "email:service": None,
            "widget:marketing": None,
            "widget:service": None,
        },
    }
    granted = await admin_client.post(
        consents_url(ws.contact_id),
        json={"channel": "email", "topic": "marketing", "state": "granted"},
    )
    assert granted.status_code == 201, granted.text
    # A plain agent records what the customer asked for in a chat.
    withdrawn = await agent_client.post(
        consents_url(ws.contact_id),
        json={"channel": "email", "topic": "marketing", "state": "withdrawn"},
    )
    assert withdrawn.status_code == 201, withdrawn.text
    body = withdrawn.json()
    assert body["current"]["email:marketing"] == "withdrawn"
    assert body["current"]["email:service"] is None
    assert body["consents"] == [
        {
            "channel": "email",
            "topic": "marketing",
            "state": "withdrawn",
            "source": f"agent:{ws.agent_id}",
            "at": T0.isoformat(),
        },
        {
            "channel": "email",
            "topic": "marketing",
            "state": "granted",
            "source": f"agent:{ws.admin_id}",
            "at": T0.isoformat(),
        },
    ]
    assert (await admin_client.get(consents_url(ws.contact_id))).json() == body


async def test_consent_refusals_name_the_field_and_seal_the_workspace(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    for field, value in (("state", "maybe"), ("channel", "sms"), ("topic", "spam")):
        sent = {"channel": "email", "topic": "marketing", "state": "granted", field: value}
        res = await admin_client.post(consents_url(ws.contact_id), json=sent)
        assert res.status_code == 422, res.text
        assert res.json()["error"]["field"] == field
    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)
        res = await outsider.post(
            consents_url(ws.contact_id),
            json={"channel": "email", "topic": "marketing", "state": "withdrawn"},
        )
        assert res.status_code == 404
        assert (await outsider.get(consents_url(ws.contact_id))).status_code == 404
    assert await fetch_all(runtime, sa.select(t.consents)) == []


async def test_one_click_unsubscribe_records_the_withdrawal(
    runtime: Runtime, ws: Workspace, anon_client: httpx.AsyncClient
) -> None:
    key = mail_identity(runtime.settings).key
    token = make_unsubscribe_token(ws.id, "Customer@Acme.test", key=key)
    res = await anon_client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click")
    assert res.status_code == 200, res.text
    [row] = await fetch_all(runtime, sa.select(t.consents))
    assert (row.contact_id, row.channel, row.topic, row.state, row.source) == (
        ws.contact_id,
        "email",
        "marketing",
        "withdrawn",
        "unsubscribe link",
    )
    [suppression] = await fetch_all(runtime, sa.select(t.email_suppressions))
    assert suppression.address == "customer@acme.test"
    # A second click is no new withdrawal.
    await anon_client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click")
    assert len(await fetch_all(runtime, sa.select(t.consents))) == 1


def events_url(contact_id: int) -> str:
    return f"{API}/contacts/{contact_id}/events"


async def test_the_shops_backend_tracks_an_event_once_per_key(
    runtime: Runtime, ws: Workspace
) -> None:
    made = await perform(runtime, ws.agent, do_create_api_token, name="shop backend")
    async with client(runtime) as shop:
        shop.headers["authorization"] = f"Bearer {made.token}"
        sent = {"name": "order_placed", "properties": {"order_id": "o-1", "items": [{"sku": 1}]}}
        key = {"Idempotency-Key": "order-o-1"}
        first = await shop.post(events_url(ws.contact_id), json=sent, headers=key)
        assert first.status_code == 201, first.text
        assert first.json() == {
            "id": first.json()["id"],
            "name": "order_placed",
            "properties": sent["properties"],
            "created_at": T0.isoformat(),
        }
        again = await shop.post(events_url(ws.contact_id), json=sent, headers=key)
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        rows = await fetch_all(runtime, sa.select(t.contact_events))
        assert [(r.id, r.name) for r in rows] == [(first.json()["id"], "order_placed")]
        listed = (await shop.get(events_url(ws.contact_id))).json()["items"]
        assert [e["id"] for e in listed] == [first.json()["id"]]


async def test_event_names_and_properties_are_checked(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    for name in ("Order Placed", "1st_order", "order placed", "ordér"):
        res = await admin_client.post(events_url(ws.contact_id), json={"name": name})
        assert res.status_code == 422, name
        assert res.json()["error"]["field"] == "name"
    big = {"blob": "x" * (16 * 1024)}
    res = await admin_client.post(
        events_url(ws.contact_id), json={"name": "cart_updated", "properties": big}
    )
    assert res.status_code == 422 and res.json()["error"]["field"] == "properties"
    res = await admin_client.post(
        events_url(ws.contact_id), json={"name": "cart_updated", "properties": [1]}
    )
    assert res.status_code == 422 and res.json()["error"]["field"] == "properties"
    res = await admin_client.post(events_url(10**12), json={"name": "cart_updated"})
    assert res.status_code == 404
    assert await fetch_all(runtime, sa.select(t.contact_events)) == []
