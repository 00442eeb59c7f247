"""REST: contacts, their identities and their timeline."""

from __future__ import annotations

from typing import Any

from server.actions.agents import check_email
from server.actions.contacts import (
    IdentityInput,
    do_add_contact_identity,
    do_create_contact,
    do_update_contact,
)
from server.actions.context import perform
from server.domain.errors import InvalidInput
from server.domain.values import IdentityKind, normalize_identity
from server.http.api import Call, Endpoint
from server.queries.contacts import contact_detail, contact_events, contact_timeline, list_contacts
from server.queries.pagination import DEFAULT_LIMIT, MAX_LIMIT
from server.queries.reading import read
from server.wire.schema import Int, JsonMap, List, Str, obj

Limit = Int(minimum=1, maximum=MAX_LIMIT, description=f"page size, default {DEFAULT_LIMIT}")
Name = Str(max_length=200, min_length=1)
IdentityValue = Str(max_length=320, min_length=1)
Identity = obj(
    ("kind", "value"),
    kind=Str.enum(IdentityKind),
    value=IdentityValue,
    doc="an email address, phone number, visitor id, Slack user id, handle...",
)


def _identity(raw: dict[str, Any], field: str) -> IdentityInput:
    """An identity from the API: checked and normalised, never verified
    (only a channel that proves it, such as a signed widget, verifies)."""
    kind = IdentityKind(raw["kind"])
    if kind is IdentityKind.EMAIL:
        value = check_email(raw["value"], field=field)
    else:
        value = normalize_identity(kind, raw["value"])
        if not value or (kind is IdentityKind.PHONE and not value.lstrip("+")):
            raise InvalidInput(f"{field}: not a valid {kind.value}", field=field)
    return IdentityInput(kind, value, verified=False)


async def list_contacts_handler(call: Call[Any, Any]) -> Any:
    q = call.query
    kind = q.get("identity_kind")
    return await read(
        call.runtime,
        list_contacts,
        call.actor,
        q=q.get("q"),
        identity_kind=IdentityKind(kind) if kind is not None else None,
        identity_value=q.get("identity_value"),
        cursor=q.get("cursor"),
        limit=q.get("limit", DEFAULT_LIMIT),
    )


async def create_contact(call: Call[Any, Any]) -> Any:
    b = call.body
    identities: list[IdentityInput] = []
    seen: set[tuple[IdentityKind, str]] = set()
    for i, raw in enumerate(b.get("identities", [])):
        ident = _identity(raw, f"identities[{i}].value")
        if (ident.kind, ident.value) in seen:
            raise InvalidInput("the same identity is given twice", field=f"identities[{i}]")
        seen.add((ident.kind, ident.value))
        identities.append(ident)
    attributes = {k: v for k, v in b.get("attributes", {}).items() if v is not None}
    contact_id = await perform(
        call.runtime,
        call.actor,
        do_create_contact,
        name=b["name"],
        attributes=attributes,
        identities=identities,
    )
    return await read(call.runtime, contact_detail, call.actor, contact_id)


async def get_contact(call: Call[Any, Any]) -> Any:
    return await read(call.runtime, contact_detail, call.actor, call.path["contact_id"])


async def update_contact(call: Call[Any, Any]) -> Any:
    b, contact_id = call.body, call.path["contact_id"]
    if not b:
        raise InvalidInput("body: nothing to change", field="body")
    await perform(
        call.runtime,
        call.actor,
        do_update_contact,
        contact_id=contact_id,
        name=b.get("name"),
        attributes=b.get("attributes"),
    )
    return await read(call.runtime, contact_detail, call.actor, contact_id)


async def add_contact_identity(call: Call[Any, Any]) -> Any:
    contact_id = call.path["contact_id"]
    await perform(
        call.runtime,
        call.actor,
        do_add_contact_identity,
        contact_id=contact_id,
        identity=_identity(call.body, "value"),
    )
    return await read(call.runtime, contact_detail, call.actor, contact_id)


async def get_contact_timeline(call: Call[Any, Any]) -> Any:
    q = call.query
    return await read(
        call.runtime,
        contact_timeline,
        call.actor,
        call.path["contact_id"],
        cursor=q.get("cursor"),
        limit=q.get("limit", DEFAULT_LIMIT),
    )


async def get_contact_events(call: Call[Any, Any]) -> Any:
    q = call.query
    return await read(
        call.runtime,
        contact_events,
        call.actor,
        call.path["contact_id"],
        name=q.get("name"),
        cursor=q.get("cursor"),
        limit=q.get("limit", DEFAULT_LIMIT),
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/contacts",
        list_contacts_handler,
        "List contacts, newest first; filter by name or find by identity",
        "contacts",
        query=obj(
            q=Str(max_length=200, description="part of the name, case-insensitive"),
            identity_kind=Str.enum(IdentityKind, description="with identity_value"),
            identity_value=IdentityValue,
            cursor=Str(max_length=500),
            limit=Limit,
        ),
    ),
    Endpoint(
        "POST",
        "/contacts",
        create_contact,
        "Create a contact with its identities (unverified)",
        "contacts",
        body=obj(
            ("name",),
            name=Name,
            attributes=JsonMap(description="custom attributes"),
            identities=List(Identity, max_items=20),
        ),
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "GET",
        "/contacts/{contact_id}",
        get_contact,
        "Get a contact with its identities",
        "contacts",
    ),
    Endpoint(
        "PATCH",
        "/contacts/{contact_id}",
        update_contact,
        "Rename a contact and/or merge attributes (null removes a key)",
        "contacts",
        body=obj(name=Name, attributes=JsonMap(description="keys to set; null removes")),
    ),
    Endpoint(
        "POST",
        "/contacts/{contact_id}/identities",
        add_contact_identity,
        "Add an identity (unverified) to a contact",
        "contacts",
        body=Identity,
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "GET",
        "/contacts/{contact_id}/timeline",
        get_contact_timeline,
        "Every message of the contact across its conversations and inboxes, oldest first",
        "contacts",
        query=obj(cursor=Str(max_length=500), limit=Limit),
    ),
    Endpoint(
        "GET",
        "/contacts/{contact_id}/events",
        get_contact_events,
        "What the contact did on the site (tracked events such as cart_updated), newest first",
        "contacts",
        query=obj(name=Str(max_length=100, min_length=1), cursor=Str(max_length=500), limit=Limit),
    ),
]
