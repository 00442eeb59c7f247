"""Contacts and their identities (F3)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.errors import Conflict, InvalidInput
from server.domain.events import ContactCreated, ContactIdentityAdded, ContactUpdated
from server.domain.json_types import JsonValue
from server.domain.values import IdentityKind, normalize_identity
from server.queries.access import access_contact
from server.storage import tables as t


@dataclasses.dataclass(frozen=True)
class IdentityInput:
    kind: IdentityKind
    value: str
    verified: bool = False


async def do_create_contact(
    ctx: ActionContext,
    *,
    name: str,
    attributes: Mapping[str, JsonValue] | None = None,
    identities: list[IdentityInput] | None = None,
) -> int:
    """Create a contact with its identities. An identity already held by
    another contact is a conflict naming that identity's position."""
    identities = identities or []
    seen: set[tuple[IdentityKind, str]] = set()
    for i, ident in enumerate(identities):
        key = (ident.kind, check_identity(ident, field=f"identities[{i}].value"))
        if key in seen:
            raise InvalidInput("the same identity is given twice", field=f"identities[{i}]")
        seen.add(key)
        if await _identity_owner(ctx, ident.kind, ident.value) is not None:
            raise Conflict("this identity belongs to another contact", field=f"identities[{i}]")
    return await _insert_contact(ctx, name=name, attributes=attributes, identities=identities)


async def _insert_contact(
    ctx: ActionContext,
    *,
    name: str,
    attributes: Mapping[str, JsonValue] | None,
    identities: list[IdentityInput],
) -> int:
    """Insert without checking identities: a concurrent insert of the same
    identity fails on its UNIQUE constraint and `perform` retries the
    action, which then finds the winner's contact."""
    contact_id: int = (
        await ctx.conn.execute(
            t.contacts.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                name=name,
                attributes=attributes or {},
                created_at=ctx.now,
            )
            .returning(t.contacts.c.id)
        )
    ).scalar_one()
    await ctx.emit(
        ContactCreated(workspace_id=ctx.actor.workspace_id, contact_id=contact_id, name=name)
    )
    for ident in identities:
        await add_identity(ctx, contact_id, ident)
    return contact_id


async def do_update_contact(
    ctx: ActionContext,
    *,
    contact_id: int,
    name: str | None = None,
    attributes: Mapping[str, JsonValue] | None = None,
) -> None:
    """Rename and/or merge attributes (a key set to null is removed)."""
    row = await access_contact(ctx.conn, ctx.actor, contact_id)
    values: dict[str, object] = {}
    if name is not None and name != row.name:
        values["name"] = name
    if attributes:
        merged = {k: v for k, v in {**row.attributes, **attributes}.items() if v is not None}
        if merged != row.attributes:
            values["attributes"] = merged
    if not values:
        return
    await ctx.conn.execute(
        t.contacts.update().where(t.contacts.c.id == contact_id).values(**values)
    )
    await ctx.emit(
        ContactUpdated(workspace_id=row.workspace_id, contact_id=contact_id, changes=sorted(values))
    )


async def do_add_contact_identity(
    ctx: ActionContext, *, contact_id: int, identity: IdentityInput
) -> None:
    await access_contact(ctx.conn, ctx.actor, contact_id)
    owner = await _identity_owner(ctx, identity.kind, identity.value)
    if owner == contact_id:
        return
    if owner is not None:
        raise Conflict("this identity belongs to another contact", field="value")
    await add_identity(ctx, contact_id, identity)


async def _identity_owner(ctx: ActionContext, kind: IdentityKind, value: str) -> int | None:
    owner: int | None = await ctx.conn.scalar(
        sa.select(t.contact_identities.c.contact_id).where(
            t.contact_identities.c.workspace_id == ctx.actor.workspace_id,
            t.contact_identities.c.kind == kind.value,
            t.contact_identities.c.value == normalize_identity(kind, value),
        )
    )
    return owner


def check_identity(ident: IdentityInput, *, field: str = "value") -> str:
    """The normalised value; an identity that normalises to nothing (a
    phone number without digits) is refused."""
    value = normalize_identity(ident.kind, ident.value)
    if not value.lstrip("+"):
        raise InvalidInput(f"not a usable {ident.kind.value} identity", field=field)
    return value


async def add_identity(ctx: ActionContext, contact_id: int, ident: IdentityInput) -> None:
    value = check_identity(ident)
    await ctx.conn.execute(
        t.contact_identities.insert().values(
            workspace_id=ctx.actor.workspace_id,
            contact_id=contact_id,
            kind=ident.kind.value,
            value=value,
            verified=ident.verified,
            created_at=ctx.now,
        )
    )
    await ctx.emit(
        ContactIdentityAdded(
            workspace_id=ctx.actor.workspace_id,
            contact_id=contact_id,
            kind=ident.kind.value,
            value=value,
            verified=ident.verified,
        )
    )


async def find_or_create_contact(
    ctx: ActionContext, *, identity: IdentityInput, name: str
) -> tuple[int, bool]:
    """The contact holding `identity`, or a new one with it. Returns
    (contact_id, created). Used by inbound messages."""
    owner = await _identity_owner(ctx, identity.kind, identity.value)
    if owner is not None:
        return owner, False
    contact_id = await _insert_contact(ctx, name=name, attributes=None, identities=[identity])
    return contact_id, True
