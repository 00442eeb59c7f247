"""REST: contacts, their identities and their timeline."""

from __future__ import annotations

from typing import ClassVar

from server.actions.agents import check_email
from server.actions.contacts import (
    IdentityInput,
    do_add_contact_identity,
    do_create_contact,
    do_update_contact,
)
from server.actions.context import perform
from server.domain.errors import InvalidInput
from server.domain.json_types import JsonValue
from server.domain.values import IdentityKind, normalize_identity
from server.http.api import Call, Endpoint
from server.queries.contacts import contact_detail, contact_events, contact_timeline, list_contacts
from server.queries.pagination import DEFAULT_LIMIT, MAX_LIMIT
from server.queries.reading import read
from server.wire.records import UNSET, Nested, Unset, arg, given, or_none, record
from server.wire.schema import Int, JsonMap, List, Str

Limit = Int(minimum=1, maximum=MAX_LIMIT, description=f"page size, default {DEFAULT_LIMIT}")
Name = Str(max_length=200, min_length=1)
IdentityValue = Str(max_length=320, min_length=1)
Cursor = Str(max_length=500)


@record
class Identity:
    DOC: ClassVar[str] = "an email address, phone number, visitor id, Slack user id, handle..."

    kind: str = arg(Str.enum(IdentityKind))
    value: str = arg(IdentityValue)


@record
class ContactListQuery:
    q: str | None = arg(
        Str(max_length=200, description="part of the name, case-insensitive"), default=None
    )
    identity_kind: str | None = arg(
        Str.enum(IdentityKind, description="with identity_value"), default=None
    )
    identity_value: str | None = arg(IdentityValue, default=None)
    cursor: str | None = arg(Cursor, default=None)
    limit: int = arg(Limit, default=DEFAULT_LIMIT)


@record
class NewContact:
    name: str = arg(Name)
    attributes: dict[str, JsonValue] = arg(
        JsonMap(description="custom attributes"), default_factory=dict
    )
    identities: list[Identity] = arg(List(Nested(Identity), max_items=20), default_factory=list)


@record
class ContactChange:
    name: str | Unset = arg(Name, default=UNSET)
    attributes: dict[str, JsonValue] | Unset = arg(
        JsonMap(description="keys to set; null removes"), default=UNSET
    )


@record
class PageQuery:
    cursor: str | None = arg(Cursor, default=None)
    limit: int = arg(Limit, default=DEFAULT_LIMIT)


@record
class EventsQuery:
    name: str | None = arg(Str(max_length=100, min_length=1), default=None)
    cursor: str | None = arg(Cursor, default=None)
    limit: int = arg(Limit, default=DEFAULT_LIMIT)


def _identity(sent: Identity, field: str) -> IdentityInput:
    """An identity from the API: checked and normalised, never verified
    (only a channel that proves it, such as a signed widget, verifies)."""
    kind = IdentityKind(sent.kind)
    if kind is IdentityKind.EMAIL:
        value = check_email(sent.value, field=field)
    else:
        value = normalize_identity(kind, sent.value)
        if not value or (kind is IdentityKind.PHONE and not value.lstrip("+")):
            raise InvalidInput(f"{field}: not a valid {kind.value}", field=field)
    return IdentityInput(kind, value, verified=False)


async def list_contacts_handler(call: Call[None, ContactListQuery]) -> JsonValue:
    q = call.query
    kind = q.identity_kind
    return await read(
        call.runtime,
        list_contacts,
        call.actor,
        q=q.q,
        identity_kind=IdentityKind(kind) if kind is not None else None,
        identity_value=q.identity_value,
        cursor=q.cursor,
        limit=q.limit,
    )


async def create_contact(call: Call[NewContact, None]) -> JsonValue:
    b = call.body
    identities: list[IdentityInput] = []
    seen: set[tuple[IdentityKind, str]] = set()
    for i, sent in enumerate(b.identities):
        ident = _identity(sent, f"identities[{i}].value")
        if (ident.kind, ident.value) in seen:
            raise InvalidInput("the same identity is given twice", field=f"identities[{i}]")
        seen.add((ident.kind, ident.value))
        identities.append(ident)
    attributes = {k: v for k, v in b.attributes.items() if v is not None}
    contact_id = await perform(
        call.runtime,
        call.actor,
        do_create_contact,
        name=b.name,
        attributes=attributes,
        identities=identities,
    )
    return await read(call.runtime, contact_detail, call.actor, contact_id)


async def get_contact(call: Call[None, None]) -> JsonValue:
    return await read(call.runtime, contact_detail, call.actor, call.path["contact_id"])


async def update_contact(call: Call[ContactChange, None]) -> JsonValue:
    b, contact_id = call.body, call.path["contact_id"]
    if not given(b):
        raise InvalidInput("body: nothing to change", field="body")
    await perform(
        call.runtime,
        call.actor,
        do_update_contact,
        contact_id=contact_id,
        name=or_none(b.name),
        attributes=or_none(b.attributes),
    )
    return await read(call.runtime, contact_detail, call.actor, contact_id)


async def add_contact_identity(call: Call[Identity, None]) -> JsonValue:
    contact_id = call.path["contact_id"]
    await perform(
        call.runtime,
        call.actor,
        do_add_contact_identity,
        contact_id=contact_id,
        identity=_identity(call.body, "value"),
    )
    return await read(call.runtime, contact_detail, call.actor, contact_id)


async def get_contact_timeline(call: Call[None, PageQuery]) -> JsonValue:
    q = call.query
    return await read(
        call.runtime,
        contact_timeline,
        call.actor,
        call.path["contact_id"],
        cursor=q.cursor,
        limit=q.limit,
    )


async def get_contact_events(call: Call[None, EventsQuery]) -> JsonValue:
    q = call.query
    return await read(
        call.runtime,
        contact_events,
        call.actor,
        call.path["contact_id"],
        name=q.name,
        cursor=q.cursor,
        limit=q.limit,
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/contacts",
        list_contacts_handler,
        "List contacts, newest first; filter by name or find by identity",
        "contacts",
        query=ContactListQuery,
    ),
    Endpoint(
        "POST",
        "/contacts",
        create_contact,
        "Create a contact with its identities (unverified)",
        "contacts",
        body=NewContact,
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
        body=ContactChange,
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
        query=PageQuery,
    ),
    Endpoint(
        "GET",
        "/contacts/{contact_id}/events",
        get_contact_events,
        "What the contact did on the site (tracked events such as cart_updated), newest first",
        "contacts",
        query=EventsQuery,
    ),
]
