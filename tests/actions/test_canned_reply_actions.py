"""Sending with a canned response (server.actions.canned_replies) and
previewing one: the rendered text, copies of the response's files, the
usage count bumped in the message's transaction with the exact events,
and nothing left behind when a send is refused or replayed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.attachments import do_upload_attachment, store_file
from server.actions.canned_replies import send_canned_response
from server.actions.canned_responses import do_create_canned_response, do_update_canned_response
from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.messages import do_receive_message
from server.actions.visitors import do_start_visitor_session
from server.domain.actors import Actor
from server.domain.errors import Conflict, InvalidInput, NotFound
from server.domain.values import CannedScope, IdentityKind
from server.queries.api_shapes import message_view
from server.queries.canned_responses import preview_canned_response
from server.queries.reading import read
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import T0, Workspace, events_since, fetch_all, fetch_one, last_event_id

BODY = 'Hi {{contact.first_name|default("there")}}, {{agent.first_name}} from {{inbox.name}} here.'
PDF = b"%PDF-1.7\nprice list"


def blob_count(runtime: Runtime) -> int:
    root: Path = runtime.settings.data_dir / "attachments"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


async def usage(runtime: Runtime, canned_id: int) -> int:
    c = t.canned_responses.c
    row = await fetch_one(runtime, sa.select(c.usage_count).where(c.id == canned_id))
    return int(row.usage_count)


async def canned(
    runtime: Runtime, actor: Actor, *, files: list[int] | None = None, **kw: Any
) -> int:
    fields: dict[str, Any] = {
        "scope": CannedScope.WORKSPACE,
        "shortcut": "greet",
        "title": "Greeting",
        "body": BODY,
        "attachment_ids": files or [],
    }
    canned_id: int = await perform(runtime, actor, do_create_canned_response, **{**fields, **kw})
    return canned_id


async def upload(runtime: Runtime, ws: Workspace, actor: Actor, data: bytes = PDF) -> int:
    file = await store_file(runtime.blobs, data, filename="prices.pdf", declared_type=None)
    result = await perform(runtime, actor, do_upload_attachment, file=file, inbox_id=ws.inbox_id)
    attachment_id: int = result.id
    return attachment_id


async def test_send_renders_carries_copies_and_counts_in_one_transaction(
    runtime: Runtime, ws: Workspace
) -> None:
    source = await upload(runtime, ws, ws.admin)
    canned_id = await canned(runtime, ws.admin, files=[source])
    blobs, before = blob_count(runtime), await last_event_id(runtime)

    result = await send_canned_response(
        runtime, ws.agent, conversation_id=ws.conversation_id, canned_response_id=canned_id
    )

    message = await fetch_one(
        runtime, sa.select(t.messages).where(t.messages.c.id == result.message_id)
    )
    assert message.text == "Hi Cora, Gus from Website here."
    assert (message.sender_kind, message.sender_id, message.private) == (
        "agent",
        ws.agent_id,
        False,
    )
    [copy] = message.attachments
    assert copy["id"] != source
    assert {k: copy[k] for k in ("filename", "content_type", "size")} == {
        "filename": "prices.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
    }
    rows = {
        r.id: r
        for r in await fetch_all(
            runtime, sa.select(t.attachments).where(t.attachments.c.id.in_([source, copy["id"]]))
        )
    }
    # The copy is the message's, with its own bytes; the response keeps its file.
    assert (rows[copy["id"]].message_id, rows[copy["id"]].uploader_id) == (message.id, ws.agent_id)
    assert (rows[source].message_id, rows[source].uploader_kind) == (None, "canned_response")
    assert rows[copy["id"]].storage_key != rows[source].storage_key
    assert await runtime.blobs.get(rows[copy["id"]].storage_key) == PDF
    assert blob_count(runtime) == blobs + 1
    assert await usage(runtime, canned_id) == 1

    events = await events_since(runtime, before)
    assert [kind for kind, _ in events] == ["message.created", "canned_response.used"]
    assert events[0][1]["attachments"] == [copy]
    assert events[1] == (
        "canned_response.used",
        {
            "workspace_id": ws.id,
            "canned_response_id": canned_id,
            "scope": "workspace",
            "team_id": None,
            "inbox_id": ws.inbox_id,
            "agent_id": None,
            "conversation_id": ws.conversation_id,
            "message_id": message.id,
            "private": False,
            "usage_count": 1,
        },
    )


async def test_text_the_agent_edited_is_sent_as_is_and_still_counts(
    runtime: Runtime, ws: Workspace
) -> None:
    canned_id = await canned(runtime, ws.admin)
    for n in (1, 2):
        result = await send_canned_response(
            runtime,
            ws.agent,
            conversation_id=ws.conversation_id,
            canned_response_id=canned_id,
            text="Hi Cora, {{not rendered}} — my own words",
            private=n == 2,
        )
        assert result.message.text == "Hi Cora, {{not rendered}} — my own words"
        assert result.message.private is (n == 2)
        assert await usage(runtime, canned_id) == n


async def test_an_anonymous_visitor_gets_the_default(runtime: Runtime, ws: Workspace) -> None:
    session = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    received = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(IdentityKind.VISITOR, f"visitor-{session.session_id}"),
        name="Visitor abc123",
        text="hello?",
    )
    canned_id = await canned(
        runtime, ws.admin, body='Hi {{contact.first_name|default("there")}} <{{contact.email}}>'
    )
    preview = await read(
        runtime, preview_canned_response, ws.agent, canned_id, received.conversation_id
    )
    assert preview["text"] == "Hi there <>"
    seeded = await read(runtime, preview_canned_response, ws.agent, canned_id, ws.conversation_id)
    assert seeded["text"] == "Hi Cora <customer@acme.test>"


async def test_preview_renders_for_the_caller_and_counts_nothing(
    runtime: Runtime, ws: Workspace
) -> None:
    source = await upload(runtime, ws, ws.admin)
    canned_id = await canned(runtime, ws.admin, files=[source])
    before = await last_event_id(runtime)
    by_admin = await read(runtime, preview_canned_response, ws.admin, canned_id, ws.conversation_id)
    assert by_admin == {
        "canned_response_id": canned_id,
        "conversation_id": ws.conversation_id,
        "text": "Hi Cora, Ada from Website here.",
        "attachments": [
            {
                "id": source,
                "filename": "prices.pdf",
                "content_type": "application/pdf",
                "size": len(PDF),
                "image": False,
            }
        ],
    }
    by_agent = await read(runtime, preview_canned_response, ws.agent, canned_id, ws.conversation_id)
    assert by_agent["text"] == "Hi Cora, Gus from Website here."
    assert await usage(runtime, canned_id) == 0
    assert await events_since(runtime, before) == []


async def test_what_the_caller_cannot_see_is_not_found_and_leaves_nothing(
    runtime: Runtime, ws: Workspace
) -> None:
    source = await upload(runtime, ws, ws.admin)
    visible = await canned(runtime, ws.admin, files=[source])
    hidden = await canned(
        runtime, ws.admin, scope=CannedScope.INBOX, inbox_id=ws.other_inbox_id, shortcut="hidden"
    )
    personal = await canned(runtime, ws.admin, scope=CannedScope.PERSONAL, shortcut="mine")
    other_conv = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "billing@acme.test"),
        name="Bill",
        text="invoice?",
    )
    blobs, before = blob_count(runtime), await last_event_id(runtime)
    for canned_id, conversation_id in (
        (hidden, ws.conversation_id),
        (personal, ws.conversation_id),
        (visible, other_conv.conversation_id),
        (10**9, ws.conversation_id),
    ):
        with pytest.raises(NotFound):
            await send_canned_response(
                runtime, ws.agent, conversation_id=conversation_id, canned_response_id=canned_id
            )
        with pytest.raises(NotFound):
            await read(runtime, preview_canned_response, ws.agent, canned_id, conversation_id)
    assert blob_count(runtime) == blobs  # the copies made before the refusal are gone
    assert await events_since(runtime, before) == []
    assert await usage(runtime, visible) == 0


async def test_an_inbox_response_is_for_its_own_inbox(runtime: Runtime, ws: Workspace) -> None:
    canned_id = await canned(
        runtime, ws.admin, scope=CannedScope.INBOX, inbox_id=ws.other_inbox_id, shortcut="billing"
    )
    with pytest.raises(InvalidInput) as err:
        await send_canned_response(
            runtime, ws.admin, conversation_id=ws.conversation_id, canned_response_id=canned_id
        )
    assert err.value.field == "canned_response_id"
    with pytest.raises(InvalidInput) as err:
        await read(runtime, preview_canned_response, ws.admin, canned_id, ws.conversation_id)
    assert err.value.field == "conversation_id"


async def test_an_idempotent_retry_sends_and_counts_once(runtime: Runtime, ws: Workspace) -> None:
    source = await upload(runtime, ws, ws.admin)
    canned_id = await canned(runtime, ws.admin, files=[source])
    own = await upload(runtime, ws, ws.agent, b"own file")

    async def send(**kw: Any) -> Any:
        fields: dict[str, Any] = {
            "conversation_id": ws.conversation_id,
            "canned_response_id": canned_id,
            "idempotency_key": "k1",
            "attachment_ids": [own],
        }
        return await send_canned_response(runtime, ws.agent, **{**fields, **kw})

    first = await send()
    blobs, before = blob_count(runtime), await last_event_id(runtime)
    again = await send()
    assert (again.replayed, again.message_id) == (True, first.message_id)
    assert message_view(again.message) == message_view(first.message)
    assert blob_count(runtime) == blobs
    assert await events_since(runtime, before) == []
    assert await usage(runtime, canned_id) == 1
    with pytest.raises(Conflict) as err:
        await send(text="something else")
    assert err.value.field == "Idempotency-Key"
    assert blob_count(runtime) == blobs


async def test_files_over_the_message_limit_are_refused(runtime: Runtime, ws: Workspace) -> None:
    sources = [await upload(runtime, ws, ws.admin, b"f%d" % i) for i in range(6)]
    canned_id = await canned(runtime, ws.admin, files=sources)
    own = [await upload(runtime, ws, ws.agent, b"o%d" % i) for i in range(5)]
    blobs = blob_count(runtime)
    with pytest.raises(InvalidInput) as err:
        await send_canned_response(
            runtime,
            ws.agent,
            conversation_id=ws.conversation_id,
            canned_response_id=canned_id,
            attachment_ids=own,
        )
    assert err.value.field == "attachment_ids"
    assert blob_count(runtime) == blobs


async def test_a_body_that_renders_empty_needs_text(runtime: Runtime, ws: Workspace) -> None:
    canned_id = await canned(runtime, ws.admin, body="{{contact.email|lower}}")
    await perform(
        runtime,
        ws.admin,
        do_update_canned_response,
        canned_response_id=canned_id,
        body="{{agent.name|lower}}",
    )
    result = await send_canned_response(
        runtime, ws.agent, conversation_id=ws.conversation_id, canned_response_id=canned_id
    )
    assert result.message.text == "gus agent"
    empty = await canned(runtime, ws.admin, shortcut="empty", body="{{ '' }}")
    with pytest.raises(InvalidInput) as err:
        await send_canned_response(
            runtime, ws.agent, conversation_id=ws.conversation_id, canned_response_id=empty
        )
    assert err.value.field == "text"


async def test_a_stored_body_that_no_longer_parses_is_a_conflict(
    runtime: Runtime, ws: Workspace
) -> None:
    """Bodies are checked on save; one saved under other rules (here:
    written straight to the table) is refused on use, never a 500."""
    canned_id = await canned(runtime, ws.admin)
    async with runtime.db.write() as conn:
        await conn.execute(
            t.canned_responses.update()
            .where(t.canned_responses.c.id == canned_id)
            .values(body="Hi {{contact.name", updated_at=T0)
        )
    with pytest.raises(Conflict) as err:
        await send_canned_response(
            runtime, ws.agent, conversation_id=ws.conversation_id, canned_response_id=canned_id
        )
    assert err.value.field == "canned_response_id"
    assert "tag not closed" in err.value.message
    assert await usage(runtime, canned_id) == 0
