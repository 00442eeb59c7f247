"""Reading canned responses (F6): one, a search, a preview rendered for a
conversation, and what rendering or sending one needs.

Who may read which response is decided in server.queries.access
(`canned_response_filter`); a response the caller may not read is as
missing as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.canned_responses import search_term
from server.domain.errors import Conflict, InvalidInput
from server.domain.json_types import JsonObject, JsonValue
from server.domain.templates import TemplateError, first_name, render
from server.domain.values import CannedScope, IdentityKind, UploaderKind
from server.queries.access import (
    access_canned_response,
    access_conversation,
    canned_response_filter,
)
from server.queries.api_shapes import attachment_view, iso
from server.queries.attachments import AttachmentFile
from server.queries.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor
from server.queries.records import Attachment, CannedResponse, Conversation, load
from server.queries.visitor_live import ANONYMOUS_NAME_PREFIX
from server.storage import tables as t

_MAX_ID = 2**63 - 1


def canned_response_view(row: CannedResponse, files: Sequence[JsonObject]) -> dict[str, JsonValue]:
    return {
        "id": row.id,
        "scope": row.scope,
        "team_id": row.team_id,
        "inbox_id": row.inbox_id,
        "agent_id": row.agent_id,
        "shortcut": row.shortcut,
        "title": row.title,
        "body": row.body,
        "attachments": files,
        "usage_count": row.usage_count,
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


async def held_files(
    conn: AsyncConnection, rows: Sequence[CannedResponse]
) -> dict[int, list[Attachment]]:
    """The attachment rows each response holds, in its `attachment_ids`
    order. Only rows held by that very response count, so an id list can
    never point a response at somebody else's file."""
    wanted = {i for row in rows for i in row.attachment_ids}
    found: dict[int, Attachment] = {}
    if wanted:
        a = t.attachments.c
        result = await conn.execute(
            sa.select(t.attachments).where(
                a.id.in_(wanted), a.uploader_kind == UploaderKind.CANNED_RESPONSE.value
            )
        )
        found = {f.id: f for f in (load(Attachment, r) for r in result)}
    return {
        row.id: [
            found[i] for i in row.attachment_ids if i in found and found[i].uploader_id == row.id
        ]
        for row in rows
    }


async def canned_response_detail(
    conn: AsyncConnection, actor: Actor, canned_response_id: int
) -> dict[str, JsonValue]:
    row = await access_canned_response(conn, actor, canned_response_id)
    files = (await held_files(conn, [row]))[row.id]
    return canned_response_view(row, [attachment_view(f) for f in files])


async def canned_files(
    conn: AsyncConnection, actor: Actor, canned_response_id: int
) -> list[AttachmentFile]:
    """Where the bytes of a response's files are, to copy them onto a
    message that uses it (server.actions.canned_replies)."""
    row = await access_canned_response(conn, actor, canned_response_id)
    return [
        AttachmentFile(f.id, f.storage_key, f.filename, f.content_type, f.size, f.sha256)
        for f in (await held_files(conn, [row]))[row.id]
    ]


async def list_canned_responses(
    conn: AsyncConnection,
    actor: Actor,
    *,
    q: str | None = None,
    scope: CannedScope | None = None,
    inbox_id: int | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, JsonValue]:
    """The responses the caller may read. With `q`, those whose shortcut
    starts with it (a leading "/" ignored) come first, then those whose
    title or body contains it, case-insensitively (for ASCII letters on
    SQLite); each group by shortcut. With `inbox_id`, only responses usable
    in that inbox (inbox responses of other inboxes left out)."""
    c = t.canned_responses.c
    stmt = sa.select(t.canned_responses).where(canned_response_filter(actor))
    if scope is not None:
        stmt = stmt.where(c.scope == scope.value)
    if inbox_id is not None:
        stmt = stmt.where(sa.or_(c.scope != CannedScope.INBOX.value, c.inbox_id == inbox_id))
    term = search_term(q or "")
    # Spelled as SQL, not bound: PostgreSQL can't type a bare parameter,
    # and a constant must stay out of ORDER BY (a number there is a column).
    rank: sa.ColumnElement[int] = sa.literal_column("0", sa.Integer)
    order: list[sa.ColumnElement[Any]] = [c.shortcut, c.id]
    if term:
        prefix = c.shortcut.startswith(term, autoescape=True)
        in_text = sa.or_(
            sa.func.lower(c.title).contains(term, autoescape=True),
            sa.func.lower(c.body).contains(term, autoescape=True),
        )
        stmt = stmt.where(sa.or_(prefix, in_text))
        rank = sa.case(
            (prefix, sa.literal_column("0", sa.Integer)), else_=sa.literal_column("1", sa.Integer)
        )
        order.insert(0, rank)
    if cursor is not None:
        after_rank, after_shortcut, after_id = _decode(cursor)
        stmt = stmt.where(
            sa.or_(
                rank > after_rank,
                sa.and_(
                    rank == after_rank,
                    sa.or_(
                        c.shortcut > after_shortcut,
                        sa.and_(c.shortcut == after_shortcut, c.id > after_id),
                    ),
                ),
            )
        )
    stmt = stmt.add_columns(rank.label("rank")).order_by(*order).limit(limit + 1)
    rows = (await conn.execute(stmt)).all()
    more, rows = len(rows) > limit, rows[:limit]
    responses = [load(CannedResponse, r) for r in rows]
    files = await held_files(conn, responses)
    next_cursor = None
    if more and rows:
        last_rank: int = rows[-1].rank
        last = responses[-1]
        next_cursor = encode_cursor(last_rank, last.shortcut, last.id)
    return {
        "items": [
            canned_response_view(r, [attachment_view(f) for f in files[r.id]]) for r in responses
        ],
        "next_cursor": next_cursor,
    }


def _decode(cursor: str) -> tuple[int, str, int]:
    rank, shortcut, last_id = decode_cursor(cursor, 3)
    bad = InvalidInput("cursor: not a cursor this API returned", field="cursor")
    # A float rank (0.0 == 0) has always been taken for its integer.
    if isinstance(rank, bool) or not isinstance(rank, int | float) or rank not in (0, 1):
        raise bad
    if not isinstance(shortcut, str) or len(shortcut) > 50:
        raise bad
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 < last_id <= _MAX_ID:
        raise bad
    return int(rank), shortcut, last_id


# -- rendering for a conversation ------------------------------------------


def check_usable(row: CannedResponse, conversation: Conversation, *, field: str) -> None:
    """An inbox's responses are written for that inbox's conversations."""
    if row.scope == CannedScope.INBOX.value and row.inbox_id != conversation.inbox_id:
        raise InvalidInput(f"{field}: this canned response belongs to another inbox", field=field)


async def template_values(
    conn: AsyncConnection, actor: Actor, conversation: Conversation
) -> dict[str, str]:
    """The values of server.domain.templates.VARIABLES for `conversation`
    and the calling agent. An anonymous visitor's placeholder name counts
    as no name, so `default` applies; the contact's email is a verified
    one if it has one, else the first it gave."""
    contact_name: str | None = await conn.scalar(
        sa.select(t.contacts.c.name).where(t.contacts.c.id == conversation.contact_id)
    )
    if contact_name is None or contact_name.startswith(ANONYMOUS_NAME_PREFIX):
        contact_name = ""
    ci = t.contact_identities.c
    email: str | None = await conn.scalar(
        sa.select(ci.value)
        .where(ci.contact_id == conversation.contact_id, ci.kind == IdentityKind.EMAIL.value)
        .order_by(ci.verified.desc(), ci.id)
        .limit(1)
    )
    agent_name = ""
    if actor.agent_id is not None:
        agent_name = (
            await conn.scalar(sa.select(t.agents.c.name).where(t.agents.c.id == actor.agent_id))
            or ""
        )
    inbox_name: str | None = await conn.scalar(
        sa.select(t.inboxes.c.name).where(t.inboxes.c.id == conversation.inbox_id)
    )
    return {
        "contact.name": contact_name,
        "contact.first_name": first_name(contact_name),
        "contact.email": email or "",
        "agent.name": agent_name,
        "agent.first_name": first_name(agent_name),
        "conversation.id": str(conversation.id),
        "inbox.name": inbox_name or "",
    }


async def rendered_body(
    conn: AsyncConnection, actor: Actor, row: CannedResponse, conversation: Conversation
) -> str:
    """The response's body rendered for `conversation` and the caller.
    Bodies are checked when saved; one that no longer parses (saved under
    other rules) is a conflict to fix by editing it, never a 500."""
    values = await template_values(conn, actor, conversation)
    try:
        return render(row.body, values)
    except TemplateError as exc:
        raise Conflict(
            f"canned_response_id: its body no longer renders ({exc}); edit it",
            field="canned_response_id",
        ) from None


async def preview_canned_response(
    conn: AsyncConnection, actor: Actor, canned_response_id: int, conversation_id: int
) -> dict[str, JsonValue]:
    """What sending the response in `conversation_id` would say, and the
    files it would carry; nothing is written, nothing counted."""
    row = await access_canned_response(conn, actor, canned_response_id)
    conversation = await access_conversation(conn, actor, conversation_id)
    check_usable(row, conversation, field="conversation_id")
    files = (await held_files(conn, [row]))[row.id]
    return {
        "canned_response_id": row.id,
        "conversation_id": conversation.id,
        "text": await rendered_body(conn, actor, row, conversation),
        "attachments": [attachment_view(f) for f in files],
    }
