"""What a conversation object carries beyond its row: the contact, the
channel and a preview of the last message, the same in the list and the
detail, loaded without a query per row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import perform
from server.actions.conversations import do_create_conversation
from server.actions.messages import do_receive_message, do_send_message
from server.clock import FrozenClock
from server.domain.values import IdentityKind
from server.runtime import Runtime
from tests.support import T0, Workspace

API = "/api/v1"


def ok(res: httpx.Response) -> Any:
    assert res.status_code == 200, res.text
    return res.json()


def advance(runtime: Runtime) -> None:
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(minutes=1)


async def listed(c: httpx.AsyncClient, **params: Any) -> dict[int, dict[str, Any]]:
    page = ok(await c.get(f"{API}/conversations", params=params))
    return {item["id"]: item for item in page["items"]}


async def test_list_and_detail_carry_contact_channel_and_last_message(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    items = await listed(agent_client)
    assert items[ws.conversation_id]["contact"] == {"id": ws.contact_id, "name": "Cora Customer"}
    assert items[ws.conversation_id]["channel"] == "widget"
    assert items[ws.conversation_id]["last_message"] == {
        "seq": 1,
        "text": "Hello, my order is late",
        "sender_kind": "contact",
        "private": False,
        "created_at": T0.isoformat(),
    }

    # A private note is the last message: agents see it in the preview.
    advance(runtime)
    await perform(
        runtime,
        ws.agent,
        do_send_message,
        conversation_id=ws.conversation_id,
        text="Checked  with\nthe warehouse",
        private=True,
    )
    note = (await listed(agent_client))[ws.conversation_id]["last_message"]
    assert note == {
        "seq": 2,
        "text": "Checked with the warehouse",
        "sender_kind": "agent",
        "private": True,
        "created_at": (T0 + timedelta(minutes=1)).isoformat(),
    }

    # HTML only (an email without a text part): its text, tags stripped.
    advance(runtime)
    mail = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "erin@mail.test"),
        name="Erin Emailer",
        text="",
        html="<style>p{color:red}</style><p>Where&nbsp;is <b>my</b></p><p>refund?</p>",
        subject="Refund",
    )
    # Long text: cut to 140 characters.
    advance(runtime)
    long_text = "Please help " + "very " * 100 + "urgently"
    await perform(
        runtime, ws.admin, do_send_message, conversation_id=ws.conversation_id, text=long_text
    )
    # No message yet.
    quiet_contact = await perform(runtime, ws.system, do_create_contact, name="Quinn Quiet")
    advance(runtime)
    quiet = await perform(
        runtime,
        ws.admin,
        do_create_conversation,
        inbox_id=ws.other_inbox_id,
        contact_id=quiet_contact,
    )

    items = await listed(admin_client)
    assert items[mail.conversation_id]["contact"] == {
        "id": mail.contact_id,
        "name": "Erin Emailer",
    }
    assert items[mail.conversation_id]["channel"] == "email"
    assert items[mail.conversation_id]["last_message"]["text"] == "Where is my refund?"
    preview = items[ws.conversation_id]["last_message"]
    assert (preview["seq"], preview["sender_kind"], preview["private"]) == (3, "agent", False)
    assert len(preview["text"]) <= 140
    assert preview["text"].startswith("Please help very very")
    assert preview["text"].endswith("…")
    assert items[quiet]["last_message"] is None
    assert items[quiet]["contact"] == {"id": quiet_contact, "name": "Quinn Quiet"}

    # The detail is the same object as the list item; the fields that
    # were there before are all still there.
    for cid, item in items.items():
        assert ok(await admin_client.get(f"{API}/conversations/{cid}")) == item
    assert set(item) >= {
        "id",
        "inbox_id",
        "contact_id",
        "subject",
        "status",
        "labels",
        "last_seq",
        "unread",
        "last_activity_at",
    }
    agent_items = await listed(agent_client)
    assert set(agent_items) == {ws.conversation_id}  # the agent's inbox only
    detail = ok(await agent_client.get(f"{API}/conversations/{ws.conversation_id}"))
    assert detail == agent_items[ws.conversation_id]


@contextmanager
def counting_statements(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements run while the block runs."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = runtime.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


async def test_a_longer_page_takes_no_more_queries(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    with counting_statements(runtime) as small:
        assert len(await listed(admin_client)) == 1
    for i in range(12):
        advance(runtime)
        await perform(
            runtime,
            ws.system,
            do_receive_message,
            inbox_id=ws.inbox_id if i % 2 else ws.other_inbox_id,
            identity=IdentityInput(IdentityKind.EMAIL, f"c{i}@many.test"),
            name=f"Customer {i}",
            text=f"message {i}",
        )
    with counting_statements(runtime) as large:
        items = await listed(admin_client)
    assert len(items) == 13
    assert {item["last_message"]["text"] for item in items.values()} >= {"message 0", "message 11"}
    assert len(large) == len(small)
