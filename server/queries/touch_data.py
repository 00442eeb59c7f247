"""The data a touchpoint template sees (server.touch_templates documents
its shape), read from the LATEST state: the cart as it is now, not as it
was when the episode started (TOUCHPOINTS.md: Klaviyo's lesson). Used at
send time by the claim and by the editor's preview.

Tracked events are what the shop sent (`track()` or the REST endpoint),
so their properties are read tolerantly: a product is an object with a
`name` and any of `price`, `quantity`, `image_url` (or `image`), `url`
and `product_id` (or `sku`); a cart or an order lists them under `items`.
Anything else is left out rather than failing a send.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.json_types import JsonValue
from server.domain.values import IdentityKind
from server.storage import tables as t

CART_EVENT = "cart_updated"
ORDER_EVENT = "order_placed"
VIEW_EVENT = "product_viewed"
MAX_ITEMS = 50
MAX_VIEWED = 6
MAX_RECOMMENDED = 4
LOOKBACK_EVENTS = 50
# The events a template's data is made of, the latest LOOKBACK_EVENTS of each.
DATA_EVENTS = (CART_EVENT, ORDER_EVENT, VIEW_EVENT)
POPULAR_WINDOW = timedelta(days=90)
POPULAR_ORDERS = 500


def _number(value: Any) -> JsonValue:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def product(raw: Any) -> dict[str, JsonValue] | None:
    """One product as templates see it, or None if it has no name."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        return None
    quantity = _number(raw.get("quantity"))
    return {
        "name": raw["name"],
        "price": _number(raw.get("price")),
        "quantity": quantity if quantity is not None else 1,
        "image_url": _text(raw.get("image_url")) or _text(raw.get("image")),
        "url": _text(raw.get("url")),
        "product_id": _text(raw.get("product_id")) or _text(raw.get("sku")),
    }


def _items(properties: Mapping[str, Any]) -> list[JsonValue]:
    raw = properties.get("items")
    if not isinstance(raw, list):
        return []
    return [p for p in (product(item) for item in raw[:MAX_ITEMS]) if p is not None]


def _basket(properties: Mapping[str, Any], id_key: str) -> dict[str, JsonValue]:
    return {
        id_key: None if properties.get(id_key) is None else str(properties[id_key]),
        "items": _items(properties),
        "total": _number(properties.get("total")),
        "currency": _text(properties.get("currency")),
        # Where the shop shows this cart or order ("Pick up where you left off").
        "url": _text(properties.get("url")),
    }


def _key(item: Mapping[str, JsonValue]) -> str:
    return str(item.get("product_id") or item.get("url") or item.get("name"))


def _shown(item: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    return {k: item.get(k) for k in ("name", "url", "image_url", "price")}


async def _events(
    conn: AsyncConnection, contact_id: int, name: str, limit: int = LOOKBACK_EVENTS
) -> list[Mapping[str, Any]]:
    e = t.contact_events.c
    rows = await conn.execute(
        sa.select(e.properties)
        .where(e.contact_id == contact_id, e.name == name)
        .order_by(e.created_at.desc(), e.id.desc())
        .limit(limit)
    )
    return [p for (p,) in rows if isinstance(p, Mapping)]


async def popular_products(
    conn: AsyncConnection, workspace_id: int, since: datetime | None
) -> list[dict[str, JsonValue]]:
    """The workspace's most ordered products since `since` (its latest
    orders, at most POPULAR_ORDERS of them), most ordered first."""
    e = t.contact_events.c
    recent = sa.true() if since is None else e.created_at >= since
    rows = await conn.execute(
        sa.select(e.properties)
        .where(e.workspace_id == workspace_id, e.name == ORDER_EVENT, recent)
        .order_by(e.created_at.desc())
        .limit(POPULAR_ORDERS)
    )
    counts: Counter[str] = Counter()
    first: dict[str, dict[str, JsonValue]] = {}
    for (props,) in rows:
        if not isinstance(props, Mapping):
            continue
        for item in _items(props):
            assert isinstance(item, dict)
            key = _key(item)
            counts[key] += 1
            first.setdefault(key, item)
    return [first[key] for key, _ in counts.most_common()]


@dataclasses.dataclass(frozen=True)
class ContactFacts:
    """What a template's data is made of for one contact: its name and
    attributes, its email address (a verified one first) and its latest
    events of each of DATA_EVENTS, newest first."""

    id: int
    name: str
    attributes: Mapping[str, JsonValue]
    email: str | None
    events: Mapping[str, Sequence[Mapping[str, Any]]]


async def contacts_facts(
    conn: AsyncConnection, contact_ids: Sequence[int] | set[int]
) -> dict[int, ContactFacts]:
    """The facts of many contacts in three reads (the claim reads a whole
    batch's at once); contacts that don't exist are absent."""
    ids = set(contact_ids)
    if not ids:
        return {}
    c, i, e = t.contacts.c, t.contact_identities.c, t.contact_events.c
    emails: dict[int, str] = {}
    for contact_id, value in await conn.execute(
        sa.select(i.contact_id, i.value)
        .where(i.contact_id.in_(ids), i.kind == IdentityKind.EMAIL.value)
        .order_by(i.verified.desc(), i.id)
    ):
        emails.setdefault(contact_id, value)  # the first: a verified one, the oldest
    rank = (
        sa.func.row_number()
        .over(partition_by=(e.contact_id, e.name), order_by=(e.created_at.desc(), e.id.desc()))
        .label("rank")
    )
    latest = (
        sa.select(e.contact_id, e.name, e.properties, e.created_at, e.id, rank)
        .where(e.contact_id.in_(ids), e.name.in_(DATA_EVENTS))
        .subquery()
    )
    events: dict[int, dict[str, list[Mapping[str, Any]]]] = {}
    for contact_id, name, props in await conn.execute(
        sa.select(latest.c.contact_id, latest.c.name, latest.c.properties)
        .where(latest.c.rank <= LOOKBACK_EVENTS)
        .order_by(latest.c.contact_id, latest.c.name, latest.c.rank)
    ):
        if isinstance(props, Mapping):
            events.setdefault(contact_id, {}).setdefault(name, []).append(props)
    return {
        row.id: ContactFacts(
            id=row.id,
            name=row.name,
            attributes=dict(row.attributes or {}),
            email=emails.get(row.id),
            events=events.get(row.id, {}),
        )
        for row in await conn.execute(sa.select(c.id, c.name, c.attributes).where(c.id.in_(ids)))
    }


async def _contact_facts(conn: AsyncConnection, contact_id: int) -> ContactFacts:
    c = t.contacts.c
    contact = (
        await conn.execute(sa.select(c.id, c.name, c.attributes).where(c.id == contact_id))
    ).one()
    i = t.contact_identities.c
    email = await conn.scalar(
        sa.select(i.value)
        .where(i.contact_id == contact_id, i.kind == IdentityKind.EMAIL.value)
        .order_by(i.verified.desc(), i.id)
        .limit(1)
    )
    return ContactFacts(
        id=contact.id,
        name=contact.name,
        attributes=dict(contact.attributes or {}),
        email=email,
        events={name: await _events(conn, contact_id, name) for name in DATA_EVENTS},
    )


async def touch_data(
    conn: AsyncConnection,
    *,
    workspace_id: int,
    contact_id: int,
    episode_context: Mapping[str, JsonValue],
    promo: Mapping[str, JsonValue] | None,
    links: Mapping[str, JsonValue],
    touchpoint_name: str,
    now: datetime | None = None,
    popular: Sequence[Mapping[str, JsonValue]] | None = None,
    facts: ContactFacts | None = None,
    workspace_name: str | None = None,
) -> dict[str, JsonValue]:
    """The template data for one contact. `now` starts the 90-day window
    of popular products for recommendations (None: the latest orders,
    whenever they were). `popular` is `popular_products` read already
    (the claim reads it once per workspace and batch), `facts` and
    `workspace_name` likewise (`contacts_facts`, once per batch)."""
    if facts is None:
        facts = await _contact_facts(conn, contact_id)
    if workspace_name is None:
        workspace_name = await conn.scalar(
            sa.select(t.workspaces.c.name).where(t.workspaces.c.id == workspace_id)
        )

    carts = facts.events.get(CART_EVENT, [])
    wanted = episode_context.get("cart_id")
    cart_props = next(
        (p for p in carts if wanted is not None and str(p.get("cart_id")) == str(wanted)),
        carts[0] if carts else None,
    )
    orders = facts.events.get(ORDER_EVENT, [])
    viewed: list[dict[str, JsonValue]] = []
    seen: set[str] = set()
    for props in facts.events.get(VIEW_EVENT, []):
        found = product(props.get("product", props))
        if found is None or _key(found) in seen:
            continue
        seen.add(_key(found))
        viewed.append(found)
        if len(viewed) == MAX_VIEWED:
            break

    bought = {_key(item) for props in orders for item in _items(props) if isinstance(item, dict)}
    if popular is None:
        since = None if now is None else now - POPULAR_WINDOW
        popular = await popular_products(conn, workspace_id, since)
    recommended: list[JsonValue] = []
    picked: set[str] = set()
    for candidate in [*viewed, *popular]:
        key = _key(candidate)
        if key in bought or key in picked:
            continue
        picked.add(key)
        recommended.append(_shown(candidate))
        if len(recommended) == MAX_RECOMMENDED:
            break

    return {
        "contact": {
            "id": facts.id,
            "name": facts.name,
            "email": facts.email,
            "attributes": dict(facts.attributes),
        },
        "events": {
            "cart": None if cart_props is None else _basket(cart_props, "cart_id"),
            "last_order": None if not orders else _basket(orders[0], "order_id"),
            "viewed": [_shown(item) for item in viewed],
            "recommendations": recommended,
        },
        "promo": None if promo is None else dict(promo),
        "links": dict(links),
        "workspace": {"name": workspace_name or ""},
        "touchpoint": {"name": touchpoint_name},
    }
