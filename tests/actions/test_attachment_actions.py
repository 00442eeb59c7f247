"""Attachment actions (PROTOCOLS.md P7): the rows an upload writes and the
exact event it emits; who may hand an upload to a message, and only once."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest
import sqlalchemy as sa

from server.actions.attachments import StoredFile, do_upload_attachment, store_file, upload_file
from server.actions.context import perform
from server.actions.conversations import do_create_conversation
from server.actions.messages import do_send_message
from server.actions.visitors import do_send_visitor_message, do_start_visitor_session
from server.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from server.queries.api_shapes import attachment_view
from server.queries.records import Attachment
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, events_since, fetch_all, fetch_one, last_event_id

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def stored(runtime: Runtime, data: bytes = PNG, name: str = "shot.png") -> StoredFile:
    return await store_file(runtime.blobs, data, filename=name, declared_type="image/png")


async def agent_upload(runtime: Runtime, ws: Workspace, data: bytes = PNG) -> Attachment:
    file = await stored(runtime, data)
    return await perform(runtime, ws.agent, do_upload_attachment, file=file, inbox_id=ws.inbox_id)


async def attachment_row(runtime: Runtime, attachment_id: int) -> sa.Row[Any]:
    return await fetch_one(
        runtime, sa.select(t.attachments).where(t.attachments.c.id == attachment_id)
    )


async def count(runtime: Runtime, table: sa.Table) -> int:
    async with runtime.db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def test_store_file_sniffs_cleans_and_keeps_the_bytes(runtime: Runtime) -> None:
    file = await store_file(
        runtime.blobs,
        b"<html><script>x</script>",
        filename="../../photo.png",
        declared_type="image/png",
    )
    assert (file.filename, file.content_type, file.size) == (
        "photo.png",
        "application/octet-stream",
        24,
    )
    assert "photo" not in file.storage_key and len(file.sha256) == 64
    assert await runtime.blobs.get(file.storage_key) == b"<html><script>x</script>"
    with pytest.raises(InvalidInput) as err:
        await store_file(runtime.blobs, b"", filename="x", declared_type=None)
    assert err.value.field == "body"


async def test_agent_upload_writes_the_row_and_one_event(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    file = await stored(runtime)
    result = await perform(runtime, ws.agent, do_upload_attachment, file=file, inbox_id=ws.inbox_id)
    row = await attachment_row(runtime, result.id)
    assert attachment_view(result) == {
        "id": row.id,
        "filename": "shot.png",
        "content_type": "image/png",
        "size": len(PNG),
        "image": True,
    }
    assert (
        row.workspace_id,
        row.inbox_id,
        row.uploader_kind,
        row.uploader_id,
        row.message_id,
        row.storage_key,
        row.sha256,
        row.created_at,
    ) == (ws.id, ws.inbox_id, "agent", ws.agent_id, None, file.storage_key, file.sha256, T0)
    assert await events_since(runtime, before) == [
        (
            "attachment.uploaded",
            {
                "workspace_id": ws.id,
                "attachment_id": row.id,
                "inbox_id": ws.inbox_id,
                "uploader_kind": "agent",
                "uploader_id": ws.agent_id,
                "filename": "shot.png",
                "content_type": "image/png",
                "size": len(PNG),
            },
        )
    ]


async def test_upload_needs_inbox_access_and_an_uploader(runtime: Runtime, ws: Workspace) -> None:
    file = await stored(runtime)
    before = await last_event_id(runtime)
    with pytest.raises(NotFound):
        await perform(
            runtime, ws.agent, do_upload_attachment, file=file, inbox_id=ws.other_inbox_id
        )
    with pytest.raises(Forbidden):  # the system can't later attach it: nobody owns it
        await perform(runtime, ws.system, do_upload_attachment, file=file, inbox_id=ws.inbox_id)
    with pytest.raises(Forbidden):  # an agent can't pose as a visitor
        await perform(runtime, ws.agent, do_upload_attachment, file=file, visitor_session_id=1)
    assert await count(runtime, t.attachments) == 0
    assert await events_since(runtime, before) == []


async def test_reply_carries_attachments_and_may_have_no_text(
    runtime: Runtime, ws: Workspace
) -> None:
    first = await agent_upload(runtime, ws)
    second = await agent_upload(runtime, ws, b"plain notes\n")
    before = await last_event_id(runtime)
    result = await perform(
        runtime,
        ws.agent,
        do_send_message,
        conversation_id=ws.conversation_id,
        text="",
        attachment_ids=[second.id, first.id],
    )
    carried = [attachment_view(second), attachment_view(first)]
    assert carried[0]["content_type"] == "text/plain" and carried[0]["image"] is False
    [message] = await fetch_all(
        runtime, sa.select(t.messages).where(t.messages.c.id == result.message_id)
    )
    assert (message.text, message.attachments) == ("", carried)
    assert result.message.attachments == carried
    for attachment in (second, first):
        assert (await attachment_row(runtime, attachment.id)).message_id == message.id
    [(kind, payload)] = await events_since(runtime, before)
    assert kind == "message.created"
    assert (payload["message_id"], payload["text"], payload["attachments"]) == (
        message.id,
        "",
        carried,
    )


async def test_a_message_needs_text_or_attachments(runtime: Runtime, ws: Workspace) -> None:
    with pytest.raises(InvalidInput) as err:
        await perform(
            runtime, ws.agent, do_send_message, conversation_id=ws.conversation_id, text="  "
        )
    assert err.value.field == "text"


async def test_someone_elses_upload_cannot_be_attached(runtime: Runtime, ws: Workspace) -> None:
    mine = await agent_upload(runtime, ws)
    messages, before = await count(runtime, t.messages), await last_event_id(runtime)
    for actor in (ws.admin, ws.system):
        with pytest.raises(NotFound) as err:
            await perform(
                runtime,
                actor,
                do_send_message,
                conversation_id=ws.conversation_id,
                text="here you go",
                attachment_ids=[mine.id],
            )
        assert err.value.field == "attachment_ids[0]"
    with pytest.raises(NotFound):  # and a made-up id is no different
        await perform(
            runtime,
            ws.agent,
            do_send_message,
            conversation_id=ws.conversation_id,
            text="x",
            attachment_ids=[10**9],
        )
    assert await count(runtime, t.messages) == messages
    assert await events_since(runtime, before) == []
    assert (await attachment_row(runtime, mine.id)).message_id is None


async def test_an_upload_is_sent_once(runtime: Runtime, ws: Workspace) -> None:
    upload = await agent_upload(runtime, ws)
    await perform(
        runtime,
        ws.agent,
        do_send_message,
        conversation_id=ws.conversation_id,
        text="one",
        attachment_ids=[upload.id],
    )
    with pytest.raises(Conflict) as err:
        await perform(
            runtime,
            ws.agent,
            do_send_message,
            conversation_id=ws.conversation_id,
            text="two",
            attachment_ids=[upload.id],
        )
    assert err.value.field == "attachment_ids[0]"
    other = await agent_upload(runtime, ws)
    with pytest.raises(InvalidInput) as err2:
        await perform(
            runtime,
            ws.agent,
            do_send_message,
            conversation_id=ws.conversation_id,
            text="dup",
            attachment_ids=[other.id, other.id],
        )
    assert err2.value.field == "attachment_ids"


async def test_an_upload_stays_in_its_inbox(runtime: Runtime, ws: Workspace) -> None:
    file = await stored(runtime)
    # The admin uploads to the Website inbox but answers in Billing.
    upload = await perform(runtime, ws.admin, do_upload_attachment, file=file, inbox_id=ws.inbox_id)
    billing = await perform(
        runtime,
        ws.admin,
        do_create_conversation,
        inbox_id=ws.other_inbox_id,
        contact_id=ws.contact_id,
        subject=None,
    )
    with pytest.raises(InvalidInput) as err:
        await perform(
            runtime,
            ws.admin,
            do_send_message,
            conversation_id=billing,
            text="see attached",
            attachment_ids=[upload.id],
        )
    assert err.value.field == "attachment_ids[0]"


class _Send(TypedDict):
    """do_send_message's arguments the retries repeat."""

    conversation_id: int
    text: str
    idempotency_key: str


async def test_idempotent_replay_compares_attachments(runtime: Runtime, ws: Workspace) -> None:
    upload = await agent_upload(runtime, ws)
    send: _Send = {"conversation_id": ws.conversation_id, "text": "a", "idempotency_key": "k1"}
    first = await perform(runtime, ws.agent, do_send_message, **send, attachment_ids=[upload.id])
    again = await perform(runtime, ws.agent, do_send_message, **send, attachment_ids=[upload.id])
    assert (again.replayed, again.message_id) == (True, first.message_id)
    with pytest.raises(Conflict):
        await perform(runtime, ws.agent, do_send_message, **send)


async def test_visitor_upload_and_message(runtime: Runtime, ws: Workspace) -> None:
    session = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    other = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    before = await last_event_id(runtime)
    upload = await perform(
        runtime,
        ws.system,
        do_upload_attachment,
        file=await stored(runtime),
        visitor_session_id=session.session_id,
    )
    row = await attachment_row(runtime, upload.id)
    assert (row.uploader_kind, row.uploader_id, row.inbox_id) == (
        "visitor",
        session.session_id,
        ws.inbox_id,
    )
    assert (await events_since(runtime, before))[0][1]["uploader_kind"] == "visitor"
    # Another visitor of the same inbox can't send it...
    with pytest.raises(NotFound):
        await perform(
            runtime,
            ws.system,
            do_send_visitor_message,
            session_id=other.session_id,
            text="",
            client_id="c-1",
            attachment_ids=[upload.id],
        )
    # ...its uploader can, without text, and a retry is the same message.
    sent = [
        await perform(
            runtime,
            ws.system,
            do_send_visitor_message,
            session_id=session.session_id,
            text="",
            client_id="c-1",
            attachment_ids=[upload.id],
        )
        for _ in range(2)
    ]
    assert [s.replayed for s in sent] == [False, True]
    assert sent[0].message_id == sent[1].message_id
    assert sent[0].message.attachments == [attachment_view(upload)]
    assert (await attachment_row(runtime, upload.id)).message_id == sent[0].message_id
    with pytest.raises(NotFound):  # an agent can't send a visitor's file either
        await perform(
            runtime,
            ws.agent,
            do_send_message,
            conversation_id=sent[0].conversation_id,
            text="x",
            attachment_ids=[upload.id],
        )


async def test_upload_file_removes_the_bytes_when_the_upload_is_refused(
    runtime: Runtime, ws: Workspace
) -> None:
    root = runtime.settings.data_dir / "attachments"

    def files() -> list[str]:
        return [p.name for p in root.rglob("*") if p.is_file()] if root.exists() else []

    with pytest.raises(NotFound):
        await upload_file(
            runtime, ws.agent, PNG, filename="a.png", declared_type=None, inbox_id=ws.other_inbox_id
        )
    assert files() == []
    done = await upload_file(
        runtime, ws.agent, PNG, filename="a.png", declared_type=None, inbox_id=ws.inbox_id
    )
    assert files() == [(await attachment_row(runtime, done.id)).storage_key]
