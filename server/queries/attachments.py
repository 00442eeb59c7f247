"""Who may download an attachment (PROTOCOLS.md P7): checked on every
download, and a file the caller may not read is as missing as one that
does not exist.

An agent reads a file that is on a message of a conversation it can read
(private notes included), its own upload no message carries yet, or a
file held by a canned response it can read. A
widget visitor reads files on public messages of its contact's
conversations in its inbox, or its own session's unsent uploads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.domain.values import UploaderKind
from server.queries.access import access_canned_response, access_conversation
from server.queries.records import Attachment, load
from server.queries.visitors import VisitorSession, conversations_of
from server.storage import tables as t


@dataclasses.dataclass(frozen=True)
class AttachmentFile:
    """What a download needs: where the bytes are and how to label them."""

    id: int
    storage_key: str
    filename: str
    content_type: str
    size: int
    sha256: str


def _file(row: Attachment) -> AttachmentFile:
    return AttachmentFile(
        row.id, row.storage_key, row.filename, row.content_type, row.size, row.sha256
    )


def _not_found() -> NotFound:
    return NotFound("attachment not found", field="attachment_id")


async def access_attachment(
    conn: AsyncConnection, actor: Actor, attachment_id: int
) -> AttachmentFile:
    a, m = t.attachments.c, t.messages.c
    found = (
        await conn.execute(
            sa.select(t.attachments, m.conversation_id)
            .outerjoin(t.messages, m.id == a.message_id)
            .where(a.id == attachment_id, a.workspace_id == actor.workspace_id)
        )
    ).first()
    if found is None:
        raise _not_found()
    row = load(Attachment, found)
    if row.message_id is None:
        if row.uploader_kind == UploaderKind.CANNED_RESPONSE.value:
            if row.uploader_id is None:  # a response's file always names it
                raise _not_found()
            try:
                await access_canned_response(conn, actor, row.uploader_id)
            except NotFound:
                raise _not_found() from None
            return _file(row)
        own = (
            row.uploader_kind == UploaderKind.AGENT.value
            and actor.agent_id is not None
            and row.uploader_id == actor.agent_id
        )
        if not own:
            raise _not_found()
        return _file(row)
    conversation_id: int = found.conversation_id  # the message's: never NULL
    try:
        await access_conversation(conn, actor, conversation_id)
    except NotFound:
        raise _not_found() from None
    return _file(row)


async def visitor_attachment(
    conn: AsyncConnection, session: VisitorSession, attachment_id: int
) -> AttachmentFile:
    a, m, c = t.attachments.c, t.messages.c, t.conversations.c
    own_unsent = sa.and_(
        a.message_id.is_(None),
        a.uploader_kind == UploaderKind.VISITOR.value,
        a.uploader_id == session.session_id,
    )
    on_public_message = sa.and_(m.private.is_(False), *conversations_of(session))
    stmt: sa.Select[Any] = (
        sa.select(t.attachments)
        .outerjoin(t.messages, m.id == a.message_id)
        .outerjoin(t.conversations, c.id == m.conversation_id)
        .where(
            a.id == attachment_id,
            a.workspace_id == session.workspace_id,
            sa.or_(own_unsent, on_public_message),
        )
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise _not_found()
    return _file(load(Attachment, row))
