"""GET /search, the command palette: contacts by name and identity,
conversations by subject and message text, only within what the caller
may see (server.queries.search)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from server.actions.contact_merges import do_merge_contacts
from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import perform
from server.actions.conversations import do_create_conversation
from server.actions.messages import do_receive_message, do_send_message
from server.clock import FrozenClock
from server.domain.previews import ELLIPSIS, SNIPPET_CHARS
from server.domain.values import IdentityKind
from server.runtime import Runtime
from tests.support import Workspace, client, login, seed_workspace

API = "/api/v1"
EMAIL, PHONE = IdentityKind.EMAIL, IdentityKind.PHONE


@dataclass
class World:
    dora: int  # a contact with email and phone, in the agent's inbox
    refund: int  # Dora's conversation with subject "Refund for order 42"
    note_seq: int  # a private note in ws.conversation_id
    hidden_contact: int  # writes only to the inbox the agent is not in
    hidden: int  # its conversation
    percent: int  # "100% sure" and "1000 sure"
    underscore: int  # "snake_case" and "snakeXcase"


def advance(runtime: Runtime) -> None:
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(minutes=1)


async def receive(runtime: Runtime, ws: Workspace, inbox_id: int, who: str, text: str) -> Any:
    advance(runtime)
    return await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=inbox_id,
        identity=IdentityInput(EMAIL, f"{who.split(maxsplit=1)[0].lower()}@mail.test"),
        name=who,
        text=text,
    )


@pytest.fixture
async def world(runtime: Runtime, ws: Workspace) -> World:
    dora = await perform(
        runtime,
        ws.system,
        do_create_contact,
        name="Dora Explorer",
        identities=[
            IdentityInput(EMAIL, "dora@example.org"),
            IdentityInput(PHONE, "+15550100"),
        ],
    )
    advance(runtime)
    refund = await perform(
        runtime,
        ws.agent,
        do_create_conversation,
        inbox_id=ws.inbox_id,
        contact_id=dora,
        subject="Refund for order 42",
    )
    advance(runtime)
    await perform(runtime, ws.agent, do_send_message, conversation_id=refund, text="On it")
    advance(runtime)
    note = await perform(
        runtime,
        ws.agent,
        do_send_message,
        conversation_id=ws.conversation_id,
        text="internal: customer is VIP-gold",
        private=True,
    )
    hidden = await receive(
        runtime, ws, ws.other_inbox_id, "Hidden Person", "secret zebra invoice, order late"
    )
    percent = await receive(runtime, ws, ws.inbox_id, "Percy Percent", "I am 100% sure")
    await receive(runtime, ws, ws.inbox_id, "Percy Percent", "or 1000 sure")
    underscore = await receive(runtime, ws, ws.inbox_id, "Sam Snake", "use snake_case here")
    await receive(runtime, ws, ws.inbox_id, "Sam Snake", "not snakeXcase")
    return World(
        dora=dora,
        refund=refund,
        note_seq=note.seq,
        hidden_contact=hidden.contact_id,
        hidden=hidden.conversation_id,
        percent=percent.conversation_id,
        underscore=underscore.conversation_id,
    )


async def search(c: httpx.AsyncClient, q: str, **params: Any) -> dict[str, Any]:
    res = await c.get(f"{API}/search", params={"q": q, **params})
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    assert set(body) == {"contacts", "conversations"}
    return body


def contact_ids(found: dict[str, Any]) -> list[int]:
    return [c["id"] for c in found["contacts"]]


def conversation_ids(found: dict[str, Any]) -> list[int]:
    return [hit["conversation"]["id"] for hit in found["conversations"]]


async def test_finds_contacts_by_name_email_and_phone(
    world: World, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    found = await search(agent_client, "cora")
    assert found["contacts"] == [
        {
            "id": ws.contact_id,
            "name": "Cora Customer",
            "identities": [{"kind": "email", "value": "customer@acme.test"}],
            "conversation_count": 1,
        }
    ]
    # Her conversations are listed with her, found through her.
    [hit] = found["conversations"]
    assert (hit["conversation"]["id"], hit["match"]) == (
        ws.conversation_id,
        {"field": "contact", "message_seq": None, "snippet": "Cora Customer"},
    )
    dora = {
        "id": world.dora,
        "name": "Dora Explorer",
        "identities": [
            {"kind": "email", "value": "dora@example.org"},
            {"kind": "phone", "value": "+15550100"},
        ],
        "conversation_count": 1,
    }
    by_email = await search(agent_client, "DORA@EXAMPLE")
    assert by_email["contacts"] == [dora]
    assert conversation_ids(by_email) == [world.refund]
    assert (await search(agent_client, "555 0100"))["contacts"] == [dora]
    assert (await search(agent_client, "+1 (555) 010"))["contacts"] == [dora]


async def test_names_starting_with_the_query_come_first(
    runtime: Runtime, world: World, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    advance(runtime)
    pandora = await perform(runtime, ws.system, do_create_contact, name="Pandora Box")
    advance(runtime)
    adora = await perform(runtime, ws.system, do_create_contact, name="Adora Newest")
    # Dora is the oldest, but her name starts with the query; then newest.
    assert contact_ids(await search(agent_client, "dora")) == [world.dora, adora, pandora]


async def test_finds_conversations_by_message_note_and_subject(
    world: World, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    found = await search(agent_client, "ORDER IS LATE")
    assert found["contacts"] == []
    [hit] = found["conversations"]
    assert hit["match"] == {
        "field": "message",
        "message_seq": 1,
        "snippet": "Hello, my order is late",
    }
    # The conversation object is the one the list shows.
    listed = (await agent_client.get(f"{API}/conversations")).json()["items"]
    assert hit["conversation"] == next(c for c in listed if c["id"] == ws.conversation_id)
    assert hit["conversation"]["contact"]["name"] == "Cora Customer"

    [hit] = (await search(agent_client, "vip-gold"))["conversations"]
    assert (hit["conversation"]["id"], hit["match"]) == (
        ws.conversation_id,
        {
            "field": "message",
            "message_seq": world.note_seq,
            "snippet": "internal: customer is VIP-gold",
        },
    )

    [hit] = (await search(agent_client, "refund"))["conversations"]
    assert (hit["conversation"]["id"], hit["match"]) == (
        world.refund,
        {"field": "subject", "message_seq": None, "snippet": "Refund for order 42"},
    )
    # "order" is in a subject and in a message: newest activity (the
    # note) first.
    assert conversation_ids(await search(agent_client, "order")) == [
        ws.conversation_id,
        world.refund,
    ]


async def test_long_messages_give_a_snippet_around_the_newest_hit(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    filler = "lorem ipsum " * 40
    first = await receive(runtime, ws, ws.inbox_id, "Long Writer", f"{filler} parcel one {filler}")
    second = await receive(runtime, ws, ws.inbox_id, "Long Writer", f"{filler} parcel two {filler}")
    [hit] = (await search(agent_client, "parcel"))["conversations"]
    assert hit["conversation"]["id"] == first.conversation_id
    assert hit["match"]["message_seq"] == second.seq
    cut = hit["match"]["snippet"]
    assert len(cut) <= SNIPPET_CHARS
    assert "parcel two" in cut
    assert cut.startswith(ELLIPSIS) and cut.endswith(ELLIPSIS)


async def test_never_shows_what_the_agent_may_not_see(
    world: World, ws: Workspace, agent_client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> None:
    # Only in the inbox the agent is not a member of.
    for q in ("zebra", "secret", "invoice"):
        assert await search(agent_client, q) == {"contacts": [], "conversations": []}, q
    # Found by the customer's name, the hidden conversation stays hidden.
    assert world.hidden not in conversation_ids(await search(agent_client, "hidden person"))
    assert conversation_ids(await search(admin_client, "hidden person")) == [world.hidden]
    # "order late" is in the agent's conversation and in the hidden one.
    assert world.hidden not in conversation_ids(await search(agent_client, "order"))
    # The admin sees every inbox.
    assert conversation_ids(await search(admin_client, "zebra")) == [world.hidden]
    # Contacts are visible workspace-wide, as GET /contacts lists them: the
    # hidden customer is found by its own name, but no conversation of it
    # is counted for the agent.
    listed = (await agent_client.get(f"{API}/contacts", params={"q": "hidden"})).json()
    assert [c["id"] for c in listed["items"]] == [world.hidden_contact]
    [agent_view] = (await search(agent_client, "hidden person"))["contacts"]
    [admin_view] = (await search(admin_client, "hidden person"))["contacts"]
    assert (agent_view["id"], agent_view["conversation_count"]) == (world.hidden_contact, 0)
    assert (admin_view["id"], admin_view["conversation_count"]) == (world.hidden_contact, 1)


async def test_another_workspace_finds_nothing(
    runtime: Runtime, world: World, ws: Workspace
) -> None:
    other = await seed_workspace(runtime, "Other Co")
    async with client(runtime) as outsider:
        await login(outsider, other.admin_email)
        for q in ("dora", "zebra", "order is late", "customer@acme.test", "refund"):
            found = await search(outsider, q)
            assert not set(contact_ids(found)) & {world.dora, ws.contact_id}, q
            assert not set(conversation_ids(found)) & {world.hidden, ws.conversation_id}, q


async def test_wildcards_in_the_query_are_literal(
    world: World, agent_client: httpx.AsyncClient
) -> None:
    assert conversation_ids(await search(agent_client, "100%")) == [world.percent]
    [hit] = (await search(agent_client, "0% s"))["conversations"]
    assert hit["match"]["snippet"] == "I am 100% sure"
    assert conversation_ids(await search(agent_client, "snake_case")) == [world.underscore]
    [hit] = (await search(agent_client, "e_c"))["conversations"]
    assert hit["match"]["snippet"] == "use snake_case here"
    for q in ("%%", "__", "%_", "\\%", "a\\"):
        assert await search(agent_client, q) == {"contacts": [], "conversations": []}, q


async def test_limit_applies_per_section(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    made = [
        await receive(runtime, ws, ws.inbox_id, f"Lim{i} Person", f"limited offer {i}")
        for i in range(4)
    ]
    found = await search(agent_client, "lim", limit=2)
    assert len(found["contacts"]) == 2
    assert conversation_ids(found) == [made[3].conversation_id, made[2].conversation_id]
    assert len((await search(agent_client, "lim"))["conversations"]) == 4


async def test_merged_contacts_are_left_out(
    runtime: Runtime, world: World, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    assert contact_ids(await search(agent_client, "dora")) == [world.dora]
    await perform(
        runtime, ws.admin, do_merge_contacts, contact_id=ws.contact_id, other_id=world.dora
    )
    assert contact_ids(await search(agent_client, "explorer")) == []
    # Its identities and conversations moved to the survivor, found instead.
    for q in ("dora@example", "555 0100"):
        [cora] = (await search(agent_client, q))["contacts"]
        assert (cora["id"], cora["conversation_count"]) == (ws.contact_id, 2), q


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": "a"}, "q"),
        ({"q": "  a  "}, "q"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({}, "q"),
        ({"q": "ok", "limit": "0"}, "limit"),
        ({"q": "ok", "limit": "51"}, "limit"),
        ({"q": "ok", "limit": "ten"}, "limit"),
        ({"q": "ok", "page": "2"}, "page"),
    ],
)
async def test_bad_queries_are_422_naming_the_field(
    agent_client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    res = await agent_client.get(f"{API}/search", params=params)
    assert res.status_code == 422, res.text
    assert res.json()["error"]["field"] == field


async def test_bounds_are_accepted(agent_client: httpx.AsyncClient) -> None:
    await search(agent_client, "ab", limit=1)
    await search(agent_client, "x" * 200, limit=50)
