"""Personal API tokens: a bearer credential that acts as its agent."""

from __future__ import annotations

import dataclasses

from server.actions.context import ActionContext
from server.domain.errors import Unauthenticated
from server.domain.events import ApiTokenCreated, ApiTokenRevoked
from server.queries.access import access_api_token
from server.storage import tables as t
from server.storage.secrets import hash_token, new_token

TOKEN_PREFIX = "tlp"  # noqa: S105 -- a label, not a secret


@dataclasses.dataclass(frozen=True)
class NewApiToken:
    """`token` is shown once, at creation; only its hash is stored."""

    token_id: int
    token: str
    prefix: str


async def do_create_api_token(ctx: ActionContext, *, name: str) -> NewApiToken:
    """Issue a token for the acting agent."""
    if ctx.actor.agent_id is None:
        raise Unauthenticated("only an agent can own a token")
    token = new_token(TOKEN_PREFIX)
    prefix = token[: len(TOKEN_PREFIX) + 7]
    token_id: int = (
        await ctx.conn.execute(
            t.api_tokens.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                agent_id=ctx.actor.agent_id,
                name=name,
                token_hash=hash_token(token),
                prefix=prefix,
                created_at=ctx.now,
            )
            .returning(t.api_tokens.c.id)
        )
    ).scalar_one()
    await ctx.emit(
        ApiTokenCreated(
            workspace_id=ctx.actor.workspace_id,
            token_id=token_id,
            agent_id=ctx.actor.agent_id,
            name=name,
        )
    )
    return NewApiToken(token_id, token, prefix)


async def do_revoke_api_token(ctx: ActionContext, *, token_id: int) -> None:
    """Revoke a token (its owner or an admin). Revoking twice is a no-op."""
    row = await access_api_token(ctx.conn, ctx.actor, token_id)
    if row.revoked_at is not None:
        return
    await ctx.conn.execute(
        t.api_tokens.update().where(t.api_tokens.c.id == token_id).values(revoked_at=ctx.now)
    )
    await ctx.emit(
        ApiTokenRevoked(workspace_id=row.workspace_id, token_id=token_id, agent_id=row.agent_id)
    )


async def do_record_token_use(ctx: ActionContext, *, token_id: int) -> None:
    """Stamp when a token was last used (shown in the token list, so an
    admin can spot a stale or leaked one). Bookkeeping only: no event.
    Callers throttle it; it never moves the stamp backwards."""
    await ctx.conn.execute(
        t.api_tokens.update()
        .where(
            t.api_tokens.c.id == token_id,
            (t.api_tokens.c.last_used_at.is_(None)) | (t.api_tokens.c.last_used_at < ctx.now),
        )
        .values(last_used_at=ctx.now)
    )
