"""Inboxes (one source of conversations each) and who may work in them."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Mapping

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.errors import InvalidInput
from server.domain.events import InboxCreated, InboxMemberAdded, InboxMemberRemoved, InboxUpdated
from server.domain.inbox_settings import split_secrets, validate_settings
from server.domain.values import InboxKind
from server.queries.access import access_agent, access_inbox, require_admin
from server.queries.inbox_secrets import inbox_secrets_of
from server.storage import tables as t
from server.storage.secrets import SecretBox


@dataclasses.dataclass(frozen=True)
class NewInbox:
    """`secret` (the widget's identity-verification key) is shown once."""

    inbox_id: int
    public_token: str
    secret: str | None


async def do_create_inbox(
    ctx: ActionContext,
    *,
    name: str,
    kind: InboxKind,
    settings: Mapping[str, object],
    box: SecretBox,
) -> NewInbox:
    require_admin(ctx.actor)
    settings, changes = split_secrets(kind, settings)
    settings = validate_settings(kind, settings)
    public_token = secrets.token_urlsafe(18)
    # A widget inbox verifies its users' identities with an HMAC key that
    # the site's backend shares (PROTOCOLS.md P3); the server must read it
    # back to check a hash, so it is stored encrypted, not hashed.
    secret = secrets.token_hex(32) if kind is InboxKind.WIDGET else None
    sealed = box.encrypt(secret) if secret else _sealed(box, _merged_secrets({}, changes))
    inbox_id: int = (
        await ctx.conn.execute(
            t.inboxes.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                name=name,
                kind=kind.value,
                public_token=public_token,
                settings=settings,
                secret_encrypted=sealed,
                created_at=ctx.now,
            )
            .returning(t.inboxes.c.id)
        )
    ).scalar_one()
    await ctx.emit(
        InboxCreated(
            workspace_id=ctx.actor.workspace_id, inbox_id=inbox_id, name=name, kind=kind.value
        )
    )
    return NewInbox(inbox_id, public_token, secret)


def _merged_secrets(stored: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    """The inbox's secrets after `changes` (None clears one)."""
    merged = {**stored, **changes}
    return {k: v for k, v in merged.items() if v is not None}


def _sealed(box: SecretBox, found: dict[str, str]) -> str | None:
    """Secrets as stored: one encrypted JSON object, or nothing."""
    return box.encrypt(json.dumps(found, sort_keys=True)) if found else None


async def do_update_inbox(
    ctx: ActionContext,
    *,
    inbox_id: int,
    name: str | None = None,
    settings: Mapping[str, object] | None = None,
    box: SecretBox | None = None,
) -> None:
    """Rename an inbox and/or merge keys into its settings (a key set to
    null is removed). The kind's secrets (mail server passwords, a Slack
    bot token...) are stored encrypted with `box`, never in the settings;
    null clears one."""
    row = await access_inbox(ctx.conn, ctx.actor, inbox_id)
    require_admin(ctx.actor)
    kind = InboxKind(row.kind)
    values: dict[str, object] = {}
    new_name = row.name
    settings, changes = split_secrets(kind, settings or {})
    if changes:
        if box is None:
            raise InvalidInput("settings: secrets can't be stored here", field="settings")
        stored = inbox_secrets_of(box, row.secret_encrypted)
        merged = _merged_secrets(stored, changes)
        if merged != stored:
            values["secret_encrypted"] = _sealed(box, merged)
    if name is not None and name != row.name:
        values["name"] = new_name = name
    if settings:
        merged = {**row.settings, **settings}
        merged = {k: v for k, v in merged.items() if v is not None}
        merged = validate_settings(kind, merged)
        if merged != row.settings:
            values["settings"] = merged
    if not values:
        return
    await ctx.conn.execute(t.inboxes.update().where(t.inboxes.c.id == inbox_id).values(**values))
    await ctx.emit(
        InboxUpdated(
            workspace_id=row.workspace_id,
            inbox_id=inbox_id,
            name=new_name,
            # Names only, never values: the secrets' column shows as "secrets".
            changes=sorted("secrets" if k == "secret_encrypted" else k for k in values),
        )
    )


async def do_add_inbox_member(ctx: ActionContext, *, inbox_id: int, agent_id: int) -> bool:
    inbox = await access_inbox(ctx.conn, ctx.actor, inbox_id)
    await access_agent(ctx.conn, ctx.actor, agent_id)
    require_admin(ctx.actor)
    exists = await ctx.conn.scalar(
        sa.select(t.inbox_members.c.inbox_id).where(
            t.inbox_members.c.inbox_id == inbox_id, t.inbox_members.c.agent_id == agent_id
        )
    )
    if exists is not None:
        return False
    await ctx.conn.execute(
        t.inbox_members.insert().values(
            inbox_id=inbox_id, agent_id=agent_id, workspace_id=inbox.workspace_id
        )
    )
    await ctx.emit(
        InboxMemberAdded(workspace_id=inbox.workspace_id, inbox_id=inbox_id, agent_id=agent_id)
    )
    return True


async def do_remove_inbox_member(ctx: ActionContext, *, inbox_id: int, agent_id: int) -> bool:
    inbox = await access_inbox(ctx.conn, ctx.actor, inbox_id)
    require_admin(ctx.actor)
    result = await ctx.conn.execute(
        t.inbox_members.delete().where(
            t.inbox_members.c.inbox_id == inbox_id, t.inbox_members.c.agent_id == agent_id
        )
    )
    if result.rowcount == 0:
        return False
    await ctx.emit(
        InboxMemberRemoved(workspace_id=inbox.workspace_id, inbox_id=inbox_id, agent_id=agent_id)
    )
    return True
