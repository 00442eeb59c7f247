"""Merge events on live sockets (PROTOCOLS.md P2): agents hear
`contact.merged` / `contact.merge_undone` (told only of moved
conversations in inboxes they can see, live and on resume) and
`conversation.merged`; a visitor whose contact a merge changed reloads
(`resync`) and still follows only the conversations opened for the
contact it proved (PROTOCOLS.md P3: a merge widens no widget session),
without ever being sent the merge events themselves."""

from __future__ import annotations

import dataclasses
from typing import Any

from server.actions.contact_merges import do_merge_contacts, do_undo_contact_merge
from server.actions.contacts import IdentityInput, do_add_contact_identity
from server.actions.context import perform
from server.actions.conversation_merges import do_merge_conversations
from server.actions.conversations import do_create_conversation
from server.actions.messages import do_receive_message, do_send_message
from server.actions.visitors import do_send_visitor_message, do_start_visitor_session
from server.domain.values import IdentityKind
from server.runtime import Runtime
from tests.realtime.live import LiveServer, Socket
from tests.support import Workspace

MERGE_EVENTS = {"contact.merged", "contact.merge_undone", "conversation.merged"}


@dataclasses.dataclass
class Visitor:
    """A widget visitor of the seeded inbox: its own contact, one chat in
    that inbox and one email conversation in the other inbox."""

    token: str
    contact_id: int
    chat_id: int
    email_id: int


async def visitor(runtime: Runtime, ws: Workspace) -> Visitor:
    session = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    chat = await perform(
        runtime,
        ws.system,
        do_send_visitor_message,
        session_id=session.session_id,
        text="hello from the widget",
        client_id="c1",
    )
    await perform(
        runtime,
        ws.admin,
        do_add_contact_identity,
        contact_id=session.contact_id,
        identity=IdentityInput(IdentityKind.EMAIL, "ann@mail.test"),
    )
    mail = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "ann@mail.test"),
        name="Ann",
        text="invoice?",
    )
    return Visitor(session.token, session.contact_id, chat.conversation_id, mail.conversation_id)


async def open_widget(live: LiveServer, token: str) -> Socket:
    sock = await live.open(
        "/ws/widget", origin=live.base_url, subprotocols=["threadline.widget", token]
    )
    await sock.ready()
    return sock


async def reply(runtime: Runtime, ws: Workspace, conversation_id: int, text: str) -> None:
    await perform(runtime, ws.admin, do_send_message, conversation_id=conversation_id, text=text)


def of_type(kind: str) -> Any:
    return lambda frame: frame["type"] == kind


def says(text: str) -> Any:
    return lambda frame: frame["type"] == "message" and frame["message"]["text"] == text


async def test_contact_merge_and_undo_reach_agents_and_reload_visitors(
    live: LiveServer, runtime: Runtime, ws: Workspace, admin_token: str, agent_token: str
) -> None:
    ann = await visitor(runtime, ws)
    agent, admin = await live.open(token=agent_token), await live.open(token=admin_token)
    start = (await agent.ready())["last_event_id"]
    await admin.ready()
    widget = await open_widget(live, ann.token)

    merge_id = await perform(
        runtime, ws.admin, do_merge_contacts, contact_id=ws.contact_id, other_id=ann.contact_id
    )
    both = [
        {"id": ann.chat_id, "inbox_id": ws.inbox_id},
        {"id": ann.email_id, "inbox_id": ws.other_inbox_id},
    ]
    heard = (await admin.until(of_type("contact.merged")))[-1]["data"]
    assert (heard["survivor_id"], heard["merged_id"], heard["merge_id"]) == (
        ws.contact_id,
        ann.contact_id,
        merge_id,
    )
    assert heard["conversations"] == both
    # The agent is no member of the email inbox: that conversation is not
    # named to it.
    narrowed = (await agent.until(of_type("contact.merged")))[-1]["data"]
    assert narrowed["conversations"] == both[:1]

    # The visitor's session now belongs to the survivor: it reloads, and
    # keeps following its own chat only, never the survivor's conversation.
    await widget.until(of_type("resync"))
    await reply(runtime, ws, ws.conversation_id, "the survivor's private order")
    await reply(runtime, ws, ann.chat_id, "still your chat")
    got = await widget.until(says("still your chat"))
    assert not any(f["type"] == "message" and "private" in f["message"]["text"] for f in got)

    await perform(runtime, ws.admin, do_undo_contact_merge, merge_id=merge_id)
    undone = (await agent.until(of_type("contact.merge_undone")))[-1]["data"]
    assert (undone["merge_id"], undone["conversations"]) == (merge_id, both[:1])
    await widget.until(of_type("resync"))
    await reply(runtime, ws, ws.conversation_id, "not for the visitor")
    await reply(runtime, ws, ann.chat_id, "back to your own chat")
    got = await widget.until(says("back to your own chat"))
    assert not any(f["type"] == "message" and "not for" in f["message"]["text"] for f in got)
    assert not any(f["type"] in MERGE_EVENTS for f in widget.frames)

    # A resuming agent is narrowed the same way.
    resumed = await live.open(token=agent_token, last_event_id=start)
    frames = await resumed.until(of_type("ready"))
    replayed = [f["data"]["conversations"] for f in frames if f["type"] in MERGE_EVENTS]
    assert replayed == [both[:1], both[:1]]


async def test_survivor_visitor_reloads_too(
    live: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    """The survivor's own widget sessions reload, and do not follow the
    merged contact's conversations: they never proved to be that contact."""
    ann, bea = await visitor(runtime, ws), await visitor_without_mail(runtime, ws)
    widget = await open_widget(live, bea.token)
    await perform(
        runtime, ws.admin, do_merge_contacts, contact_id=bea.contact_id, other_id=ann.contact_id
    )
    await widget.until(of_type("resync"))
    await reply(runtime, ws, ann.chat_id, "for ann only")
    await reply(runtime, ws, bea.chat_id, "for bea")
    got = await widget.until(says("for bea"))
    assert not any(f["type"] == "message" and "ann" in f["message"]["text"] for f in got)


async def visitor_without_mail(runtime: Runtime, ws: Workspace) -> Visitor:
    session = await perform(
        runtime, ws.system, do_start_visitor_session, inbox_id=ws.inbox_id, origin=None
    )
    chat = await perform(
        runtime,
        ws.system,
        do_send_visitor_message,
        session_id=session.session_id,
        text="hi",
        client_id="b1",
    )
    return Visitor(session.token, session.contact_id, chat.conversation_id, 0)


async def test_conversation_merge_reaches_agents_and_reloads_its_visitor(
    live: LiveServer, runtime: Runtime, ws: Workspace, agent_token: str
) -> None:
    ann = await visitor(runtime, ws)
    second = await perform(
        runtime, ws.admin, do_create_conversation, inbox_id=ws.inbox_id, contact_id=ann.contact_id
    )
    await reply(runtime, ws, second, "from the second thread")
    agent = await live.open(token=agent_token)
    await agent.ready()
    widget = await open_widget(live, ann.token)

    await perform(
        runtime, ws.admin, do_merge_conversations, conversation_id=ann.chat_id, source_id=second
    )
    merged = (await agent.until(of_type("conversation.merged")))[-1]
    assert (merged["conversation_id"], merged["inbox_id"]) == (ann.chat_id, ws.inbox_id)
    assert (merged["data"]["source_id"], merged["data"]["moved_messages"]) == (second, 1)
    await widget.until(of_type("resync"))
    await reply(runtime, ws, ann.chat_id, "all in one place")
    last = (await widget.until(says("all in one place")))[-1]
    assert (last["conversation_id"], last["seq"]) == (ann.chat_id, 3)
    assert not any(f["type"] in MERGE_EVENTS for f in widget.frames)


async def test_a_merged_visitor_resuming_is_not_replayed_the_other_contacts_conversation(
    live: LiveServer, runtime: Runtime, ws: Workspace
) -> None:
    """A visitor whose session a merge moved onto the customer reconnects
    with the position it had before: the replay brings its own chat's
    news only, and it can't type into the customer's conversation."""
    ann = await visitor_without_mail(runtime, ws)
    widget = await open_widget(live, ann.token)
    start = widget.last_event_id
    await widget.conn.close()
    await perform(
        runtime, ws.admin, do_merge_contacts, contact_id=ws.contact_id, other_id=ann.contact_id
    )
    await reply(runtime, ws, ws.conversation_id, "the customer's private order")
    await reply(runtime, ws, ann.chat_id, "your own chat")

    resumed = await live.open(
        "/ws/widget",
        origin=live.base_url,
        subprotocols=["threadline.widget", ann.token],
        last_event_id=start,
    )
    frames = await resumed.until(of_type("ready"))
    texts = [f["message"]["text"] for f in frames if f["type"] == "message"]
    assert texts == ["your own chat"]
    assert all(f.get("conversation_id") in (None, ann.chat_id) for f in frames), frames
    await resumed.send({"type": "typing", "conversation_id": ws.conversation_id, "typing": True})
    refused = (await resumed.until(of_type("error")))[-1]
    assert refused["code"] == "not_found", refused
