"""Attachments (PROTOCOLS.md P7): uploading a file, and handing uploaded
files to the message that carries them.

An upload is two steps, in this order (`upload_file` does both):
`store_file` puts the bytes in the blob store under a fresh random key,
then `do_upload_attachment` records the row. A crash between the two leaves an orphan blob, which is harmless;
the other order could leave a row that names no bytes.

A file belongs to no message until one claims it: only its uploader (the
same agent, or the same widget session) may, only in the inbox it was
uploaded to, and only once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Protocol

import sqlalchemy as sa

from server.actions.context import ActionContext, Writer, perform
from server.domain.actors import Actor, ActorKind
from server.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from server.domain.events import AttachmentUploaded
from server.domain.sniff import clean_filename, sniff
from server.domain.values import UploaderKind
from server.queries.access import access_inbox
from server.queries.records import Attachment, load
from server.storage import tables as t
from server.storage.blobs import BlobStore, new_key

MAX_PER_MESSAGE = 10


class FileWriter(Writer, Protocol):
    """What a write that stores files first uses: a Writer and the blob
    store (server.runtime.Runtime is one)."""

    @property
    def blobs(self) -> BlobStore: ...


@dataclasses.dataclass(frozen=True)
class StoredFile:
    """Bytes already in the blob store, and what they were found to be."""

    storage_key: str
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class Uploader:
    kind: UploaderKind
    id: int


async def store_file(
    blobs: BlobStore, data: bytes, *, filename: str, declared_type: str | None
) -> StoredFile:
    """Put `data` in the blob store. The type is sniffed from the bytes
    (`declared_type` is only a hint) and the name cleaned; nothing the
    uploader chose ends up in the storage key."""
    if not data:
        raise InvalidInput("an attachment can't be empty", field="body")
    key = new_key()
    await blobs.put(key, data)
    # Hashing and sniffing megabytes would stall every other request.
    content_type, sha256 = await asyncio.to_thread(_facts, data, declared_type)
    return StoredFile(key, clean_filename(filename), content_type, len(data), sha256)


def _facts(data: bytes, declared_type: str | None) -> tuple[str, str]:
    return sniff(data, declared_type), hashlib.sha256(data).hexdigest()


async def upload_file(
    writer: FileWriter,
    actor: Actor,
    data: bytes,
    *,
    filename: str,
    declared_type: str | None,
    inbox_id: int | None = None,
    visitor_session_id: int | None = None,
) -> Attachment:
    """`store_file`, then `do_upload_attachment` in its own transaction.
    When the action refuses (a DomainError: rolled back for certain) the
    bytes are removed again. On any other failure they stay: the commit
    may have happened, and a row without its bytes is the one outcome
    that must not exist (an orphan blob is harmless)."""
    file = await store_file(writer.blobs, data, filename=filename, declared_type=declared_type)
    try:
        return await perform(
            writer,
            actor,
            do_upload_attachment,
            file=file,
            inbox_id=inbox_id,
            visitor_session_id=visitor_session_id,
        )
    except DomainError:
        await writer.blobs.delete(file.storage_key)
        raise


async def do_upload_attachment(
    ctx: ActionContext,
    *,
    file: StoredFile,
    inbox_id: int | None = None,
    visitor_session_id: int | None = None,
) -> Attachment:
    """Record a file `store_file` stored: uploaded by the acting agent to
    `inbox_id`, or by the widget visitor of `visitor_session_id` (to its
    session's inbox; the system actor acts for visitors). Returns the
    attachment as messages list it."""
    if visitor_session_id is not None:
        if ctx.actor.kind is not ActorKind.SYSTEM:
            raise Forbidden("only the widget uploads for a visitor")
        session = (
            await ctx.conn.execute(
                sa.select(t.visitor_sessions.c.id, t.visitor_sessions.c.inbox_id).where(
                    t.visitor_sessions.c.id == visitor_session_id,
                    t.visitor_sessions.c.workspace_id == ctx.actor.workspace_id,
                )
            )
        ).first()
        if session is None:
            raise NotFound("visitor session not found")
        uploader, inbox_id = Uploader(UploaderKind.VISITOR, session.id), session.inbox_id
    else:
        if inbox_id is None:
            raise InvalidInput("inbox_id: is required", field="inbox_id")
        await access_inbox(ctx.conn, ctx.actor, inbox_id)
        if ctx.actor.agent_id is None:
            # Only an uploader can later attach a file; the system is none.
            raise Forbidden("only an agent or a widget visitor uploads files")
        uploader = Uploader(UploaderKind.AGENT, ctx.actor.agent_id)
    row = (
        await ctx.conn.execute(
            t.attachments.insert()
            .values(
                workspace_id=ctx.actor.workspace_id,
                inbox_id=inbox_id,
                uploader_kind=uploader.kind.value,
                uploader_id=uploader.id,
                message_id=None,
                storage_key=file.storage_key,
                filename=file.filename,
                content_type=file.content_type,
                size=file.size,
                sha256=file.sha256,
                created_at=ctx.now,
            )
            .returning(t.attachments)
        )
    ).one()
    await ctx.emit(
        AttachmentUploaded(
            workspace_id=ctx.actor.workspace_id,
            attachment_id=row.id,
            inbox_id=inbox_id,
            uploader_kind=uploader.kind.value,
            uploader_id=uploader.id,
            filename=file.filename,
            content_type=file.content_type,
            size=file.size,
        )
    )
    return load(Attachment, row)


async def claim_attachments(
    ctx: ActionContext, ids: Sequence[int], *, uploader: Uploader | None, inbox_id: int
) -> list[Attachment]:
    """The rows of `ids`, locked, checked to be `uploader`'s own uploads to
    `inbox_id` that no message carries yet; in the order given. A file
    that is someone else's (or another workspace's) is reported missing,
    like any object the caller may not see (PROTOCOLS.md P7)."""
    if not ids:
        return []
    if len(ids) > MAX_PER_MESSAGE:
        raise InvalidInput(
            f"attachment_ids: at most {MAX_PER_MESSAGE} per message", field="attachment_ids"
        )
    if len(set(ids)) != len(ids):
        raise InvalidInput("attachment_ids: an attachment is listed twice", field="attachment_ids")
    a = t.attachments.c
    found = {
        row.id: load(Attachment, row)
        for row in await ctx.conn.execute(
            sa.select(t.attachments)
            .where(a.id.in_(ids), a.workspace_id == ctx.actor.workspace_id)
            .with_for_update()
        )
    }
    rows = []
    for i, attachment_id in enumerate(ids):
        field = f"attachment_ids[{i}]"
        row = found.get(attachment_id)
        if (
            row is None
            or uploader is None
            or row.uploader_kind != uploader.kind.value
            or row.uploader_id != uploader.id
        ):
            raise NotFound(f"{field}: attachment not found", field=field)
        if row.inbox_id != inbox_id:
            raise InvalidInput(f"{field}: was uploaded to another inbox", field=field)
        if row.message_id is not None:
            raise Conflict(f"{field}: already sent with a message", field=field)
        rows.append(row)
    return rows


async def attach(ctx: ActionContext, rows: Sequence[Attachment], message_id: int) -> None:
    """Hand claimed `rows` to `message_id`. The `message_id IS NULL` guard
    makes a concurrent claim of the same file fail instead of stealing it."""
    if not rows:
        return
    a = t.attachments.c
    result = await ctx.conn.execute(
        t.attachments.update()
        .where(a.id.in_([r.id for r in rows]), a.message_id.is_(None))
        .values(message_id=message_id)
    )
    if result.rowcount != len(rows):
        raise Conflict("an attachment was just sent with another message", field="attachment_ids")
