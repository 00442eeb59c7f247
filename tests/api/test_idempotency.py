"""`Idempotency-Key` on every create (PROTOCOLS.md P1, server.actions.
idempotency): a repeat answers the first response and writes nothing, a
different request under the same key is refused, concurrent repeats make
one object. The walk below covers every create of the route table and
fails for a new one that neither honours the key nor is listed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.app import create_app
from server.clock import FrozenClock
from server.http.api import openapi_document
from server.http.routes import API_PREFIX, API_VERSION, ENDPOINTS
from server.runtime import Runtime
from server.storage import tables as t
from server.workers.pruning import prune_idempotency_keys
from tests.support import BASE_URL, PASSWORD, Workspace, fetch_all, login
from tests.touchpoints.support import cart_reminder

API = "/api/v1"
KEY = {"Idempotency-Key": "retry-me-1"}
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40

# One request per create: (url, httpx keyword arguments). `n` makes a
# request that differs from the one made with n=0.
Build = Callable[[Workspace, httpx.AsyncClient, int], Awaitable[tuple[str, dict[str, Any]]]]


async def _conversation(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    subject = f"Subject {n}"
    return f"{API}/conversations", {
        "json": {"inbox_id": ws.inbox_id, "contact_id": ws.contact_id, "subject": subject}
    }


async def _upload(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    return f"{API}/inboxes/{ws.inbox_id}/attachments", {
        "params": {"filename": "shot.png"},
        "content": PNG + bytes([n]),
        "headers": {"content-type": "image/png"},
    }


async def _canned(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    body = {"scope": "workspace", "shortcut": f"hello{n}", "title": "Hi", "body": "Hello!"}
    return f"{API}/canned_responses", {"json": body}


async def _macro(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    body = {"scope": "workspace", "name": f"Close {n}", "actions": [{"type": "resolve"}]}
    return f"{API}/macros", {"json": body}


async def _saved_filter(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    return f"{API}/saved_filters", {"json": {"name": f"Mine {n}", "query": {"mine": True}}}


async def _routing_rule(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    body = {"name": f"Rule {n}", "actions": [{"priority": "high"}]}
    return f"{API}/routing_rules", {"json": body}


async def _segment(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    body = {"name": f"Carts {n}", "filter": {"conditions": [{"event": "cart_updated"}]}}
    return f"{API}/segments", {"json": body}


async def _contact(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    body = {"name": f"Dora {n}", "identities": [{"kind": "email", "value": f"d{n}@x.test"}]}
    return f"{API}/contacts", {"json": body}


async def _identity(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    body = {"kind": "email", "value": f"second{n}@x.test"}
    return f"{API}/contacts/{ws.contact_id}/identities", {"json": body}


async def _merge(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    # The contact to fold in, made without a key.
    made = await c.post(f"{API}/contacts", json={"name": f"Dup {n}"})
    assert made.status_code == 201, made.text
    other = made.json()["id"]
    return f"{API}/contacts/{ws.contact_id}/merge", {"json": {"other_id": other}}


async def _agent(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    body = {"email": f"new{n}@acme.test", "name": f"New {n}", "password": PASSWORD}
    return f"{API}/agents", {"json": body}


async def _team(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    return f"{API}/teams", {"json": {"name": f"Team {n}"}}


async def _inbox(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    return f"{API}/inboxes", {"json": {"name": f"Chat {n}", "kind": "widget"}}


async def _token(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    return f"{API}/tokens", {"json": {"name": f"script {n}"}}


async def _contact_event(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    body = {"name": "order_placed", "properties": {"order_id": f"o-{n}", "total": 12.5}}
    return f"{API}/contacts/{ws.contact_id}/events", {"json": body}


async def _consent(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    body = {"channel": "email", "topic": "marketing", "state": ("granted", "withdrawn")[n]}
    return f"{API}/contacts/{ws.contact_id}/consents", {"json": body}


async def _promo_pool(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    return f"{API}/promo_pools", {"json": {"name": f"Pool {n}", "valid_days": 30}}


async def _touchpoint(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    return f"{API}/touchpoints", {"json": cart_reminder(name=f"Cart {n}")}


async def _seed(ws: Workspace, c: httpx.AsyncClient, n: int) -> tuple[str, dict[str, Any]]:
    return f"{API}/touchpoint_seeds/install", {"json": {"seed": ("abandoned_cart", "welcome")[n]}}


CREATES: dict[tuple[str, str], Build] = {
    ("POST", "/conversations"): _conversation,
    ("POST", "/inboxes/{inbox_id}/attachments"): _upload,
    ("POST", "/canned_responses"): _canned,
    ("POST", "/macros"): _macro,
    ("POST", "/saved_filters"): _saved_filter,
    ("POST", "/segments"): _segment,
    ("POST", "/routing_rules"): _routing_rule,
    ("POST", "/contacts"): _contact,
    ("POST", "/contacts/{contact_id}/identities"): _identity,
    ("POST", "/contacts/{contact_id}/merge"): _merge,
    ("POST", "/contacts/{contact_id}/events"): _contact_event,
    ("POST", "/contacts/{contact_id}/consents"): _consent,
    ("POST", "/promo_pools"): _promo_pool,
    ("POST", "/touchpoints"): _touchpoint,
    ("POST", "/touchpoint_seeds/install"): _seed,
    ("POST", "/agents"): _agent,
    ("POST", "/teams"): _team,
    ("POST", "/inboxes"): _inbox,
    ("POST", "/tokens"): _token,
}
STORED = {(ep.method, ep.path): ep for ep in ENDPOINTS if ep.idempotency == "stored"}


def test_every_create_declares_how_it_honours_the_key() -> None:
    creates = [ep for ep in ENDPOINTS if ep.method == "POST" and ep.status == 201]
    undeclared = [ep.path for ep in creates if ep.auth == "agent" and ep.idempotency is None]
    assert undeclared == []
    # Every stored create is walked below (a new one must be added there).
    assert set(STORED) == set(CREATES)


def test_openapi_documents_the_header_on_those_operations() -> None:
    doc = openapi_document(ENDPOINTS, API_PREFIX, API_VERSION)
    for ep in ENDPOINTS:
        op = doc["paths"][API_PREFIX + ep.path][ep.method.lower()]
        headers = [p["name"] for p in op["parameters"] if p["in"] == "header"]
        assert headers == (["Idempotency-Key"] if ep.idempotency else []), ep.path


async def row_counts(runtime: Runtime) -> dict[str, int]:
    """Rows in every table, and stored files: a replay or a refused repeat
    adds none."""
    files = runtime.settings.data_dir / "attachments"
    out = {"stored files": sum(1 for p in files.rglob("*") if p.is_file())}
    async with runtime.db.read() as conn:
        for table in t.metadata.sorted_tables:
            out[table.name] = int(
                await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            )
    return out


@pytest.mark.parametrize("route", sorted(CREATES), ids=lambda r: f"{r[0]} {r[1]}")
async def test_a_repeated_create_replays_and_writes_nothing(
    route: tuple[str, str], runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    endpoint = STORED[route]
    url, kwargs = await CREATES[route](ws, admin_client, 0)
    headers = {**kwargs.pop("headers", {}), **KEY}
    first = await admin_client.post(url, headers=headers, **kwargs)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    before = await row_counts(runtime)
    again = await admin_client.post(url, headers=headers, **kwargs)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    expected = {k: (None if k in endpoint.shown_once else v) for k, v in first.json().items()}
    assert again.json() == expected
    assert await row_counts(runtime) == before
    # The same key with a different request is refused, and writes nothing.
    url2, kwargs2 = await CREATES[route](ws, admin_client, 1)
    before = await row_counts(runtime)
    other = await admin_client.post(url2, headers={**kwargs2.pop("headers", {}), **KEY}, **kwargs2)
    assert other.status_code == 409, other.text
    assert other.json()["error"]["field"] == "Idempotency-Key"
    assert await row_counts(runtime) == before


async def test_secrets_shown_once_are_not_replayed_or_stored(
    runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    first = await admin_client.post(f"{API}/tokens", json={"name": "ci"}, headers=KEY)
    secret = first.json()["token"]
    assert secret
    again = await admin_client.post(f"{API}/tokens", json={"name": "ci"}, headers=KEY)
    assert again.json()["token"] is None and again.json()["id"] == first.json()["id"]
    rows = await fetch_all(runtime, sa.select(t.idempotency_keys.c.response))
    assert secret not in repr([r.response for r in rows])


async def test_keys_belong_to_one_agent_one_route_and_one_day(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    first = await admin_client.post(f"{API}/teams", json={"name": "Billing"}, headers=KEY)
    assert first.status_code == 201
    # Another route: the key is a different one there.
    res = await admin_client.post(
        f"{API}/saved_filters", json={"name": "A", "query": {}}, headers=KEY
    )
    assert res.status_code == 201 and "idempotent-replayed" not in res.headers
    # Another agent: their own key.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime)), base_url=BASE_URL
    ) as agent:
        await login(agent, ws.agent_email)
        res = await agent.post(f"{API}/saved_filters", json={"name": "A", "query": {}}, headers=KEY)
        assert res.status_code == 201 and "idempotent-replayed" not in res.headers
    # A day later the key is forgotten: it creates (here: a clash by name).
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(hours=25)
    res = await admin_client.post(f"{API}/teams", json={"name": "Billing"}, headers=KEY)
    assert res.status_code == 409 and res.json()["error"]["field"] == "name"
    assert await prune_idempotency_keys(runtime) == 3
    assert await fetch_all(runtime, sa.select(t.idempotency_keys.c.id)) == []


async def test_a_bad_key_is_refused_naming_the_header(admin_client: httpx.AsyncClient) -> None:
    for bad in ("", "x" * 201):
        res = await admin_client.post(
            f"{API}/teams", json={"name": "T"}, headers={"Idempotency-Key": bad}
        )
        assert res.status_code == 422, res.text
        assert res.json()["error"]["field"] == "Idempotency-Key"


async def test_concurrent_repeats_make_one_object(
    runtime: Runtime, admin_client: httpx.AsyncClient
) -> None:
    """Sent at once, all with one key: the UNIQUE constraint lets one
    insert win; the others replay it or are told it is in progress."""
    body = {"name": "Racer", "identities": [{"kind": "email", "value": "race@x.test"}]}
    answers = await asyncio.gather(
        *(admin_client.post(f"{API}/contacts", json=body, headers=KEY) for _ in range(6))
    )
    created = [
        a for a in answers if a.status_code == 201 and "idempotent-replayed" not in a.headers
    ]
    assert len(created) == 1, [a.text for a in answers]
    for a in answers:
        if a.status_code == 201:
            assert a.json()["id"] == created[0].json()["id"]
        else:
            assert a.status_code == 409, a.text
            assert a.json()["error"]["field"] == "Idempotency-Key"
    c = t.contacts.c
    rows = await fetch_all(runtime, sa.select(c.id).where(c.name == "Racer"))
    assert len(rows) == 1
    later = await admin_client.post(f"{API}/contacts", json=body, headers=KEY)
    assert later.status_code == 201 and later.json()["id"] == created[0].json()["id"]
