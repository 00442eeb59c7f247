"""A contact merge never hands a customer to a widget visitor (PROTOCOLS.md
P3, FEATURES.md F3): an agent outside the customer's inbox may not merge
(nor preview, nor act on the suggestion a visitor raised by typing the
customer's address), and even after a merge made by an admin the
visitor's session, started before it, reads and writes only the
conversations opened for the contact it proved."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from server.actions.contact_merges import do_merge_contacts
from server.actions.context import perform
from server.actions.conversations import do_change_conversation_status
from server.actions.inboxes import NewInbox
from server.actions.messages import do_send_message
from server.actions.reads import do_mark_read_by_visitor
from server.domain.errors import NotFound
from server.domain.values import ConversationStatus
from server.queries.merge_suggestions import offered_suggestions
from server.queries.reading import read
from server.runtime import Runtime
from server.storage import tables as t
from tests.api.test_widget_api import W, auth, browser, customer, start, widget
from tests.support import Workspace, client, fetch_one, login

__all__ = ["browser", "widget"]  # fixtures, used by name

API = "/api/v1"


async def chat(c: httpx.AsyncClient, session: dict[str, Any], text: str, key: str) -> int:
    res = await c.post(
        f"{W}/messages", json={"text": text, "client_id": key}, headers=auth(session)
    )
    assert res.status_code == 201, res.text
    conversation_id: int = res.json()["message"]["conversation_id"]
    return conversation_id


async def test_an_agent_outside_the_inbox_cannot_merge_its_visitor_into_a_customer(
    runtime: Runtime, ws: Workspace, widget: NewInbox, browser: httpx.AsyncClient
) -> None:
    """The plain agent is no member of the shop's widget inbox; as a
    visitor of that widget it types the customer's address in."""
    ann_conversation = await customer(runtime, ws, widget)
    session = await start(browser, widget)
    res = await browser.post(
        f"{W}/offline",
        json={"email": "ann@shop.test", "text": "it is me, Ann", "client_id": "o1"},
        headers=auth(session),
    )
    assert res.status_code == 201, res.text
    visitor = session["contact_id"]
    ann = (await browser.get(f"{W}/conversation", headers=auth(session))).json()
    assert ann["conversation"]["id"] != ann_conversation
    [suggestion] = await read(runtime, offered_suggestions, ws.admin, visitor)
    ann_id = suggestion.other_id

    async with client(runtime) as agent:
        await login(agent, ws.agent_email)
        for survivor, other, field in (
            (visitor, ann_id, "contact_id"),
            (ann_id, visitor, "contact_id"),
        ):
            res = await agent.post(f"{API}/contacts/{survivor}/merge", json={"other_id": other})
            assert (res.status_code, res.json()["error"]["field"]) == (403, field), res.text
            res = await agent.get(
                f"{API}/contacts/{survivor}/merge_preview", params={"other_id": other}
            )
            assert res.status_code == 403, res.text
        for contact_id in (visitor, ann_id):
            res = await agent.get(f"{API}/contacts/{contact_id}/merge_suggestions")
            assert res.json() == {"items": []}, res.text
        res = await agent.post(f"{API}/merge_suggestions/{suggestion.suggestion.id}/dismiss")
        assert res.status_code == 403, res.text
        assert (await agent.get(f"{API}/contacts/{visitor}")).json()["merged_into_id"] is None

    body = (await browser.get(f"{W}/conversation", headers=auth(session))).json()
    assert [m["text"] for m in body["messages"]] == ["it is me, Ann"]


@pytest.mark.parametrize("survivor", ["customer", "visitor"])
async def test_a_visitor_session_never_gains_the_other_contacts_conversations(
    runtime: Runtime, ws: Workspace, widget: NewInbox, browser: httpx.AsyncClient, survivor: str
) -> None:
    """Even an admin's merge (say, of a suggestion the visitor raised)
    leaves the session it moved where it was: its own chat, to read,
    write and mark read; never the customer's."""
    ann_conversation = await customer(runtime, ws, widget)
    session = await start(browser, widget)
    own = await chat(browser, session, "hello", "c1")
    conv = t.conversations.c
    ann_contact = (
        await fetch_one(runtime, sa.select(conv.contact_id).where(conv.id == ann_conversation))
    ).contact_id
    visitor = session["contact_id"]
    s = t.visitor_sessions.c
    session_id = (await fetch_one(runtime, sa.select(s.id).where(s.contact_id == visitor))).id
    contact_id, other_id = (
        (ann_contact, visitor) if survivor == "customer" else (visitor, ann_contact)
    )
    await perform(runtime, ws.admin, do_merge_contacts, contact_id=contact_id, other_id=other_id)
    # The customer's conversation is the newest one of the merged contact.
    await perform(
        runtime, ws.admin, do_send_message, conversation_id=ann_conversation, text="order 1234"
    )

    body = (await browser.get(f"{W}/conversation", headers=auth(session))).json()
    assert body["conversation"]["id"] == own
    assert [m["text"] for m in body["messages"]] == ["hello"]
    # Nor is it told the customer's name when it was moved onto her.
    assert body["contact"]["name"] is None
    assert await chat(browser, session, "still me", "c2") == own
    # With its own chat resolved, its next message opens a new one rather
    # than continuing the customer's open conversation.
    await perform(
        runtime,
        ws.admin,
        do_change_conversation_status,
        conversation_id=own,
        status=ConversationStatus.RESOLVED,
    )
    fresh = await chat(browser, session, "one more thing", "c3")
    assert fresh not in (own, ann_conversation)
    body = (await browser.get(f"{W}/conversation", headers=auth(session))).json()
    assert [m["text"] for m in body["messages"]] == ["one more thing"]
    with pytest.raises(NotFound):
        await perform(
            runtime,
            ws.system,
            do_mark_read_by_visitor,
            session_id=session_id,
            conversation_id=ann_conversation,
            seq=1,
        )
