"""Sending a message with a canned response (F6).

A reply that uses a canned response is an ordinary message (the same
`message.created`, idempotency and attachment rules) plus, in the same
transaction, the response's `usage_count` going up by one and a
`canned_response.used` event naming the message. So the count never
includes a message that rolled back and never misses one that committed;
a preview (server.queries.canned_responses) counts nothing.

The text: with none, the server renders the response's body for the
conversation's contact and the sending agent (what the preview showed);
with text, that text is the message (the agent edited the preview in the
composer) and the use still counts.

The files: a message owns its attachment rows, so the response's own
files can't go out with every message that uses it. Each send carries
copies. `send_canned_response` copies the bytes to fresh storage keys
before the transaction (like an upload: bytes first, then the row), and
the action records the copies as the sender's files for this message once
it has checked that they are still the response's current files. When the
action refuses, or the send replays an earlier one (same Idempotency-Key),
the copies are removed again. Copies are not uploads: they appear in the
message's `message.created`, not as `attachment.uploaded`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import sqlalchemy as sa

from server.actions.attachments import MAX_PER_MESSAGE, FileWriter, StoredFile
from server.actions.context import ActionContext, perform
from server.actions.messages import MessageResult, do_send_message
from server.domain.actors import Actor
from server.domain.errors import Conflict, DomainError, InvalidInput
from server.domain.events import CannedResponseUsed
from server.domain.values import UploaderKind
from server.queries.access import access_canned_response, access_conversation
from server.queries.attachments import AttachmentFile
from server.queries.canned_responses import (
    canned_files,
    check_usable,
    held_files,
    rendered_body,
)
from server.queries.message_records import message_record
from server.queries.reading import read
from server.queries.records import Attachment, Conversation, Message, load
from server.storage import tables as t
from server.storage.blobs import BlobStore, new_key


@dataclasses.dataclass(frozen=True)
class CopiedFile:
    """A copy of the response's file `source_id`, already in the blob store."""

    source_id: int
    file: StoredFile


async def send_canned_response(
    writer: FileWriter,
    actor: Actor,
    *,
    conversation_id: int,
    canned_response_id: int,
    text: str | None = None,
    private: bool = False,
    idempotency_key: str | None = None,
    attachment_ids: Sequence[int] = (),
    email_to: Sequence[str] | None = None,
    email_cc: Sequence[str] | None = None,
) -> MessageResult:
    """Copy the response's files, then `do_send_canned_response` in its own
    transaction; the copies are removed if it refuses or replays. (After
    any other failure they stay: the commit may have happened, and an
    orphan blob is harmless where a row without bytes is not.)"""
    copies = await copy_canned_files(writer, actor, canned_response_id)
    try:
        result = await perform(
            writer,
            actor,
            do_send_canned_response,
            conversation_id=conversation_id,
            canned_response_id=canned_response_id,
            copies=copies,
            text=text,
            private=private,
            idempotency_key=idempotency_key,
            attachment_ids=attachment_ids,
            email_to=email_to,
            email_cc=email_cc,
        )
    except DomainError:
        await forget_copies(writer.blobs, copies)
        raise
    if result.replayed:
        await forget_copies(writer.blobs, copies)
    return result


async def copy_canned_files(
    writer: FileWriter, actor: Actor, canned_response_id: int
) -> list[CopiedFile]:
    """Copies of the response's files under fresh storage keys, made before
    the transaction that sends it (here, and for each reply a macro run
    sends); `forget_copies` removes them when that send does not happen."""
    sources = await read(writer, canned_files, actor, canned_response_id)
    return await _copy(writer.blobs, sources)


async def _copy(blobs: BlobStore, sources: Sequence[AttachmentFile]) -> list[CopiedFile]:
    copies: list[CopiedFile] = []
    for source in sources:
        data = await blobs.get(source.storage_key)
        if data is None:
            await forget_copies(blobs, copies)
            raise Conflict(
                f"canned_response_id: its file {source.filename!r} is missing from storage;"
                " remove it from the response",
                field="canned_response_id",
            )
        key = new_key()
        await blobs.put(key, data)
        file = StoredFile(key, source.filename, source.content_type, source.size, source.sha256)
        copies.append(CopiedFile(source.id, file))
    return copies


async def forget_copies(blobs: BlobStore, copies: Sequence[CopiedFile]) -> None:
    for copy in copies:
        await blobs.delete(copy.file.storage_key)


async def do_send_canned_response(
    ctx: ActionContext,
    *,
    conversation_id: int,
    canned_response_id: int,
    copies: Sequence[CopiedFile],
    text: str | None = None,
    private: bool = False,
    idempotency_key: str | None = None,
    attachment_ids: Sequence[int] = (),
    email_to: Sequence[str] | None = None,
    email_cc: Sequence[str] | None = None,
) -> MessageResult:
    """Send `text` (or, when it is empty, the response's body rendered for
    this conversation) with the response's files (`copies`, made by
    `send_canned_response`) and the caller's own `attachment_ids`, and
    count the use. An inbox's responses are only used in its conversations."""
    row = await access_canned_response(ctx.conn, ctx.actor, canned_response_id, for_update=True)
    conversation = await access_conversation(ctx.conn, ctx.actor, conversation_id)
    check_usable(row, conversation, field="canned_response_id")
    current = [f.id for f in (await held_files(ctx.conn, [row]))[row.id]]
    if [c.source_id for c in copies] != current:
        raise Conflict(
            "canned_response_id: its files changed while sending; send again",
            field="canned_response_id",
        )
    if len(attachment_ids) + len(copies) > MAX_PER_MESSAGE:
        raise InvalidInput(
            f"attachment_ids: with the response's {len(copies)} files, at most"
            f" {MAX_PER_MESSAGE} per message",
            field="attachment_ids",
        )
    if text is None or not text.strip():
        text = await rendered_body(ctx.conn, ctx.actor, row, conversation)
    if idempotency_key is not None:
        earlier = await _replay(
            ctx,
            conversation,
            idempotency_key=idempotency_key,
            text=text,
            private=private,
            attachment_ids=attachment_ids,
            copies=copies,
        )
        if earlier is not None:
            return earlier
    result = await do_send_message(
        ctx,
        conversation_id=conversation_id,
        text=text,
        private=private,
        idempotency_key=idempotency_key,
        attachment_ids=attachment_ids,
        carried=await _record(ctx, conversation, copies),
        email_to=email_to,
        email_cc=email_cc,
    )
    usage_count: int = (
        await ctx.conn.execute(
            t.canned_responses.update()
            .where(t.canned_responses.c.id == row.id)
            .values(usage_count=t.canned_responses.c.usage_count + 1)
            .returning(t.canned_responses.c.usage_count)
        )
    ).scalar_one()
    await ctx.emit(
        CannedResponseUsed(
            workspace_id=row.workspace_id,
            canned_response_id=row.id,
            scope=row.scope,
            team_id=row.team_id,
            inbox_id=conversation.inbox_id,
            agent_id=row.agent_id,
            conversation_id=conversation.id,
            message_id=result.message_id,
            private=private,
            usage_count=usage_count,
        )
    )
    return result


async def _replay(
    ctx: ActionContext,
    conversation: Conversation,
    *,
    idempotency_key: str,
    text: str,
    private: bool,
    attachment_ids: Sequence[int],
    copies: Sequence[CopiedFile],
) -> MessageResult | None:
    """The earlier message sent with this key, when this send repeats it
    (same text, privacy and own files, as many of the response's files);
    a different message under the same key is a conflict, as for any send."""
    earlier = (
        await ctx.conn.execute(
            sa.select(t.messages).where(
                t.messages.c.conversation_id == conversation.id,
                t.messages.c.idempotency_key == idempotency_key,
            )
        )
    ).first()
    if earlier is None:
        return None
    sent_with = [a["id"] for a in earlier.attachments]
    same = (
        earlier.text == text
        and earlier.private == private
        and sent_with[: len(attachment_ids)] == [*attachment_ids]
        and len(sent_with) == len(attachment_ids) + len(copies)
    )
    if not same:
        raise Conflict(
            "this idempotency key was used for a different message", field="Idempotency-Key"
        )
    return MessageResult(
        earlier.id,
        conversation.id,
        conversation.contact_id,
        earlier.seq,
        True,
        message=message_record(load(Message, earlier)),
    )


async def _record(
    ctx: ActionContext, conversation: Conversation, copies: Sequence[CopiedFile]
) -> list[Attachment]:
    """Rows for the copies: the sender's files in this conversation's
    inbox, about to be carried by the message."""
    rows = []
    for copy in copies:
        f = copy.file
        row = (
            await ctx.conn.execute(
                t.attachments.insert()
                .values(
                    workspace_id=conversation.workspace_id,
                    inbox_id=conversation.inbox_id,
                    uploader_kind=UploaderKind.AGENT.value,
                    uploader_id=ctx.actor.agent_id,
                    message_id=None,
                    storage_key=f.storage_key,
                    filename=f.filename,
                    content_type=f.content_type,
                    size=f.size,
                    sha256=f.sha256,
                    created_at=ctx.now,
                )
                .returning(t.attachments)
            )
        ).one()
        rows.append(load(Attachment, row))
    return rows
