"""Canned responses (F6): saving, changing and deleting them. Sending one
is server.actions.canned_replies.

Who may write (who may read is server.queries.access.canned_response_filter):
- workspace responses: admins;
- team responses: admins and the team's members;
- inbox responses: admins and the inbox's members;
- personal responses: only the agent who owns them (an admin's own too;
  nobody else, admins included, even sees them).
Scope and owner are fixed at creation. Moving a response to another
audience is creating it there and deleting the old one, so each event
about a response reaches exactly the audience that can read it.

The body is a template (server.domain.templates), checked when saved: an
undocumented variable, broken syntax or a template over the limits is
refused as InvalidInput on `body`, naming the line and column.

`attachment_ids` are the caller's own uploads that no message carries yet
(POST /inboxes/{id}/attachments). Saving hands them to the response
(uploader_kind "canned_response"), so no message can take them away; a
message that uses the response carries copies. A file dropped from the
list, or held by a deleted response, loses its row; its bytes stay behind
as an orphan blob, which is harmless (server.actions.attachments).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import sqlalchemy as sa

from server.actions.attachments import MAX_PER_MESSAGE
from server.actions.context import ActionContext
from server.domain.canned_responses import normalize_shortcut, owner_key
from server.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.domain.events import (
    CannedResponseCreated,
    CannedResponseDeleted,
    CannedResponseUpdated,
)
from server.domain.templates import TemplateError, check
from server.domain.values import CannedScope, UploaderKind
from server.queries.access import (
    access_canned_response,
    access_inbox,
    access_team,
    require_admin,
    require_canned_editor,
)
from server.queries.records import CannedResponse, load
from server.storage import tables as t

MAX_TITLE = 200


def _checked_title(title: str) -> str:
    title = title.strip()
    if not title or len(title) > MAX_TITLE:
        raise InvalidInput(f"title: 1 to {MAX_TITLE} characters", field="title")
    return title


def _checked_body(body: str) -> str:
    if not body.strip():
        raise InvalidInput("body: must not be empty", field="body")
    try:
        check(body)
    except TemplateError as exc:
        raise InvalidInput(f"body: {exc}", field="body") from None
    return body


async def _audience(
    ctx: ActionContext, scope: CannedScope, team_id: int | None, inbox_id: int | None
) -> tuple[int | None, int | None, int | None]:
    """(team_id, inbox_id, agent_id) of a new response, once the caller is
    found allowed to share with that audience."""
    actor = ctx.actor
    if team_id is not None and scope is not CannedScope.TEAM:
        raise InvalidInput("team_id: only for a team response", field="team_id")
    if inbox_id is not None and scope is not CannedScope.INBOX:
        raise InvalidInput("inbox_id: only for an inbox response", field="inbox_id")
    if scope is CannedScope.WORKSPACE:
        require_admin(actor)
        return None, None, None
    if scope is CannedScope.TEAM:
        if team_id is None:
            raise InvalidInput("team_id: is required for a team response", field="team_id")
        await access_team(ctx.conn, actor, team_id)
        if not actor.is_admin and not await _team_member(ctx, team_id):
            raise Forbidden("only the team's members may share with it", field="team_id")
        return team_id, None, None
    if scope is CannedScope.INBOX:
        if inbox_id is None:
            raise InvalidInput("inbox_id: is required for an inbox response", field="inbox_id")
        await access_inbox(ctx.conn, actor, inbox_id)  # members and admins only
        return None, inbox_id, None
    if actor.agent_id is None:
        raise Forbidden("only an agent has personal canned responses", field="scope")
    return None, None, actor.agent_id


async def _team_member(ctx: ActionContext, team_id: int) -> bool:
    tm = t.team_members.c
    found = await ctx.conn.scalar(
        sa.select(tm.team_id).where(tm.team_id == team_id, tm.agent_id == ctx.actor.agent_id)
    )
    return found is not None


async def _shortcut_taken(
    ctx: ActionContext, key: str, shortcut: str, *, except_id: int | None = None
) -> None:
    c = t.canned_responses.c
    stmt = sa.select(c.id).where(
        c.workspace_id == ctx.actor.workspace_id, c.owner_key == key, c.shortcut == shortcut
    )
    if except_id is not None:
        stmt = stmt.where(c.id != except_id)
    if await ctx.conn.scalar(stmt) is not None:
        raise Conflict(f"shortcut: /{shortcut} is taken for this audience", field="shortcut")


async def _hold_files(
    ctx: ActionContext, canned_response_id: int, ids: Sequence[int], held: Sequence[int]
) -> list[int]:
    """Make `ids` the files the response holds: new ones must be the
    caller's own unsent uploads (anyone else's is reported missing, like
    any object the caller may not see); files in `held` but not in `ids`
    are deleted."""
    if len(ids) > MAX_PER_MESSAGE:
        raise InvalidInput(f"attachment_ids: at most {MAX_PER_MESSAGE}", field="attachment_ids")
    if len(set(ids)) != len(ids):
        raise InvalidInput("attachment_ids: an attachment is listed twice", field="attachment_ids")
    a = t.attachments.c
    mine = sa.and_(
        a.workspace_id == ctx.actor.workspace_id,
        a.message_id.is_(None),
        a.uploader_kind == UploaderKind.AGENT.value,
        a.uploader_id == ctx.actor.agent_id if ctx.actor.agent_id is not None else sa.false(),
    )
    new = [i for i in ids if i not in held]
    if new:
        found = set(
            (await ctx.conn.execute(sa.select(a.id).where(a.id.in_(new), mine).with_for_update()))
            .scalars()
            .all()
        )
        for i, attachment_id in enumerate(ids):
            if attachment_id in new and attachment_id not in found:
                field = f"attachment_ids[{i}]"
                raise NotFound(f"{field}: attachment not found", field=field)
        taken = await ctx.conn.execute(
            t.attachments.update()
            .where(a.id.in_(new), mine)
            .values(
                uploader_kind=UploaderKind.CANNED_RESPONSE.value, uploader_id=canned_response_id
            )
        )
        if taken.rowcount != len(new):
            raise Conflict("an attachment was just sent with a message", field="attachment_ids")
    dropped = [i for i in held if i not in ids]
    if dropped:
        await ctx.conn.execute(
            t.attachments.delete().where(
                a.id.in_(dropped),
                a.uploader_kind == UploaderKind.CANNED_RESPONSE.value,
                a.uploader_id == canned_response_id,
            )
        )
    return list(ids)


class _Audience(TypedDict):
    """The fields every canned response event carries: who it reaches."""

    workspace_id: int
    canned_response_id: int
    scope: str
    team_id: int | None
    inbox_id: int | None
    agent_id: int | None


def _audience_fields(row: CannedResponse) -> _Audience:
    return {
        "workspace_id": row.workspace_id,
        "canned_response_id": row.id,
        "scope": row.scope,
        "team_id": row.team_id,
        "inbox_id": row.inbox_id,
        "agent_id": row.agent_id,
    }


async def do_create_canned_response(
    ctx: ActionContext,
    *,
    scope: CannedScope,
    shortcut: str,
    title: str,
    body: str,
    team_id: int | None = None,
    inbox_id: int | None = None,
    attachment_ids: Sequence[int] = (),
) -> int:
    """Save a response shared with `scope`'s audience: the team of
    `team_id`, the inbox of `inbox_id`, the caller alone (personal) or the
    workspace. Returns its id."""
    team_id, inbox_id, agent_id = await _audience(ctx, scope, team_id, inbox_id)
    shortcut = normalize_shortcut(shortcut)
    title, body = _checked_title(title), _checked_body(body)
    key = owner_key(scope, team_id=team_id, inbox_id=inbox_id, agent_id=agent_id)
    await _shortcut_taken(ctx, key, shortcut)
    inserted = (
        await ctx.conn.execute(
            t.canned_responses.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                scope=scope.value,
                team_id=team_id,
                inbox_id=inbox_id,
                agent_id=agent_id,
                owner_key=key,
                shortcut=shortcut,
                title=title,
                body=body,
                attachment_ids=[],
                usage_count=0,
                created_by=ctx.actor.agent_id,
                created_at=ctx.now,
                updated_at=ctx.now,
            )
            .returning(t.canned_responses)
        )
    ).one()
    row = load(CannedResponse, inserted)
    if attachment_ids:
        held = await _hold_files(ctx, row.id, attachment_ids, [])
        await ctx.conn.execute(
            t.canned_responses.update()
            .where(t.canned_responses.c.id == row.id)
            .values(attachment_ids=held)
        )
    await ctx.emit(CannedResponseCreated(**_audience_fields(row), shortcut=shortcut, title=title))
    return row.id


async def do_update_canned_response(
    ctx: ActionContext,
    *,
    canned_response_id: int,
    shortcut: str | None = None,
    title: str | None = None,
    body: str | None = None,
    attachment_ids: Sequence[int] | None = None,
) -> None:
    """Change what is given; nothing changed, nothing emitted."""
    row = await access_canned_response(ctx.conn, ctx.actor, canned_response_id, for_update=True)
    require_canned_editor(ctx.actor, row)
    values: dict[str, object] = {}
    new_shortcut, new_title = row.shortcut, row.title
    if shortcut is not None and (shortcut := normalize_shortcut(shortcut)) != row.shortcut:
        await _shortcut_taken(ctx, row.owner_key, shortcut, except_id=row.id)
        values["shortcut"] = new_shortcut = shortcut
    if title is not None and (title := _checked_title(title)) != row.title:
        values["title"] = new_title = title
    if body is not None and _checked_body(body) != row.body:
        values["body"] = body
    if attachment_ids is not None and list(attachment_ids) != row.attachment_ids:
        values["attachment_ids"] = await _hold_files(
            ctx, row.id, attachment_ids, row.attachment_ids
        )
    if not values:
        return
    await ctx.conn.execute(
        t.canned_responses.update()
        .where(t.canned_responses.c.id == row.id)
        .values(**values, updated_at=ctx.now)
    )
    await ctx.emit(
        CannedResponseUpdated(
            **_audience_fields(row),
            shortcut=new_shortcut,
            title=new_title,
            changes=sorted(values),
        )
    )


async def do_delete_canned_response(ctx: ActionContext, *, canned_response_id: int) -> None:
    row = await access_canned_response(ctx.conn, ctx.actor, canned_response_id, for_update=True)
    require_canned_editor(ctx.actor, row)
    await _hold_files(ctx, row.id, [], row.attachment_ids)
    await ctx.conn.execute(t.canned_responses.delete().where(t.canned_responses.c.id == row.id))
    await ctx.emit(CannedResponseDeleted(**_audience_fields(row)))
