"""The REST API for contacts, the contact timeline, conversations and
messages: filters, cursor pagination, idempotent sends, bad input
(PROTOCOLS.md P8) and sealed workspaces (P7)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from server.actions.agents import do_create_agent
from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import perform
from server.actions.conversations import (
    do_assign_conversation,
    do_change_conversation_labels,
    do_change_conversation_status,
    do_create_conversation,
)
from server.actions.inboxes import do_add_inbox_member
from server.actions.messages import do_receive_message, do_send_message
from server.actions.teams import do_create_team
from server.clock import FrozenClock
from server.domain.values import ConversationStatus, IdentityKind
from server.queries.pagination import encode_cursor
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import (
    PASSWORD,
    T0,
    Workspace,
    client,
    events_since,
    last_event_id,
    login,
    seed_workspace,
)

API = "/api/v1"
EMAIL = IdentityKind.EMAIL


def clock(runtime: Runtime) -> FrozenClock:
    assert isinstance(runtime.clock, FrozenClock)
    return runtime.clock


def iso(minutes: float = 0) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


WRITTEN_TABLES = (
    t.contacts,
    t.contact_identities,
    t.conversations,
    t.conversation_labels,
    t.messages,
    t.events,
)


async def counts(runtime: Runtime) -> dict[str, int]:
    """Rows in every table these endpoints write (events included)."""
    out: dict[str, int] = {}
    async with runtime.db.read() as conn:
        for table in WRITTEN_TABLES:
            out[table.name] = int(
                await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            )
    return out


async def conversation_snapshot(runtime: Runtime) -> list[Any]:
    async with runtime.db.read() as conn:
        rows = await conn.execute(sa.select(t.conversations).order_by(t.conversations.c.id))
        return [tuple(r) for r in rows]


def ok(res: httpx.Response, status: int = 200) -> Any:
    assert res.status_code == status, f"{res.status_code} {res.text}"
    return res.json()


def error_field(res: httpx.Response) -> str | None:
    assert res.headers["content-type"].startswith("application/json"), res.text
    error = res.json()["error"]
    assert set(error) == {"code", "message", "field"}
    field: str | None = error["field"]
    return field


async def walk(c: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Follow next_cursor from the first page to the last."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = ok(await c.get(API + path, params=query))
        assert len(page["items"]) <= params.get("limit", 25)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


# -- contacts -------------------------------------------------------------------


async def test_create_get_update_contact(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    before = await last_event_id(runtime)
    created = ok(
        await agent_client.post(
            f"{API}/contacts",
            json={
                "name": "  Dana Scully ",
                "attributes": {"plan": "pro", "seats": 3, "trial": None},
                "identities": [
                    {"kind": "email", "value": " Dana@Example.COM "},
                    {"kind": "phone", "value": "+1 (555) 010-0000"},
                ],
            },
        ),
        201,
    )
    contact_id = created["id"]
    assert created == {
        "id": contact_id,
        "name": "Dana Scully",
        "attributes": {"plan": "pro", "seats": 3},
        "identities": [
            {"kind": "email", "value": "dana@example.com", "verified": False},
            {"kind": "phone", "value": "+15550100000", "verified": False},
        ],
        "created_at": iso(),
        "last_seen_at": None,
        "merged_into_id": None,
    }
    assert [e[0] for e in await events_since(runtime, before)] == [
        "contact.created",
        "contact.identity_added",
        "contact.identity_added",
    ]
    assert ok(await agent_client.get(f"{API}/contacts/{contact_id}")) == created

    updated = ok(
        await agent_client.patch(
            f"{API}/contacts/{contact_id}",
            json={"name": "Dana K. Scully", "attributes": {"plan": None, "tier": "gold"}},
        )
    )
    assert updated == {
        **created,
        "name": "Dana K. Scully",
        "attributes": {"seats": 3, "tier": "gold"},
    }

    with_visitor = ok(
        await agent_client.post(
            f"{API}/contacts/{contact_id}/identities", json={"kind": "visitor", "value": "v-123"}
        ),
        201,
    )
    assert with_visitor["identities"][-1] == {
        "kind": "visitor",
        "value": "v-123",
        "verified": False,
    }
    assert ok(await agent_client.get(f"{API}/contacts/{contact_id}")) == with_visitor


async def test_contact_identity_conflicts_write_nothing(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    dana = ok(await agent_client.post(f"{API}/contacts", json={"name": "Dana"}), 201)
    before = await counts(runtime)
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        (
            "POST",
            "/contacts",
            {"name": "Impostor", "identities": [{"kind": "email", "value": "CUSTOMER@acme.test"}]},
            409,
            "identities[0]",
        ),
        (
            "POST",
            "/contacts",
            {
                "name": "Twice",
                "identities": [
                    {"kind": "email", "value": "twice@example.com"},
                    {"kind": "email", "value": "TWICE@example.com"},
                ],
            },
            422,
            "identities[1]",
        ),
        (
            "POST",
            "/contacts",
            {"name": "Bad", "identities": [{"kind": "email", "value": "not an email"}]},
            422,
            "identities[0].value",
        ),
        (
            "POST",
            "/contacts",
            {"name": "Bad", "identities": [{"kind": "phone", "value": "call me"}]},
            422,
            "identities[0].value",
        ),
        (
            "POST",
            f"/contacts/{dana['id']}/identities",
            {"kind": "email", "value": "customer@acme.test"},
            409,
            "value",
        ),
        (
            "POST",
            f"/contacts/{dana['id']}/identities",
            {"kind": "email", "value": "x@"},
            422,
            "value",
        ),
    ]
    for method, path, body, status, field in cases:
        res = await agent_client.request(method, API + path, json=body)
        assert (res.status_code, error_field(res)) == (status, field), (path, body, res.text)
    assert await counts(runtime) == before


async def test_list_contacts_search_and_pagination(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    ids: dict[str, int] = {"Cora Customer": ws.contact_id}
    for name, identities in [
        ("Dana Scully", [{"kind": "email", "value": "dana@example.com"}]),
        ("dana white", [{"kind": "phone", "value": "+1 555 010 0000"}]),
        ("50% Off_Club", []),
        ("Walter Skinner", []),
        ("Monica Reyes", []),  # same instant as Walter: the id breaks the tie
    ]:
        if name != "Monica Reyes":
            clock(runtime).advance(minutes=1)
        body = {"name": name, "identities": identities}
        ids[name] = ok(await agent_client.post(f"{API}/contacts", json=body), 201)["id"]

    async def names(**params: Any) -> list[str]:
        page = ok(await agent_client.get(f"{API}/contacts", params=params))
        return [item["name"] for item in page["items"]]

    newest_first = [
        "Monica Reyes",
        "Walter Skinner",
        "50% Off_Club",
        "dana white",
        "Dana Scully",
        "Cora Customer",
    ]
    assert await names() == newest_first
    assert await names(q="DANA") == ["dana white", "Dana Scully"]
    assert await names(q="  scul ") == ["Dana Scully"]
    # LIKE wildcards are literal.
    assert await names(q="%") == ["50% Off_Club"]
    assert await names(q="f_c") == ["50% Off_Club"]
    assert await names(q="n_") == []
    assert await names(q="\\") == []
    assert await names(q="") == newest_first
    # Identity search: exact, after normalisation.
    assert await names(identity_kind="email", identity_value=" DANA@Example.com") == ["Dana Scully"]
    assert await names(identity_kind="phone", identity_value="+1 (555) 0100000") == ["dana white"]
    assert await names(identity_kind="email", identity_value="dana@") == []
    assert await names(identity_kind="phone", identity_value="dana@example.com") == []
    assert await names(identity_kind="email", identity_value="dana@example.com", q="white") == []

    walked = await walk(agent_client, "/contacts", limit=2)
    assert [item["name"] for item in walked] == newest_first
    assert [item["id"] for item in walked] == [ids[n] for n in newest_first]
    walked = await walk(agent_client, "/contacts", limit=1, q="a")
    assert [item["name"] for item in walked] == [n for n in newest_first if "a" in n.lower()]


# -- the timeline -------------------------------------------------------------------


async def test_timeline_across_inboxes(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    customer = IdentityInput(EMAIL, "customer@acme.test")
    widget_conv = ws.conversation_id  # "Hello, my order is late" at T0
    clock(runtime).advance(minutes=1)
    email = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=customer,
        name="Cora Customer",
        text="Where is my invoice?",
        subject="Invoice #42",
    )
    assert email.contact_id == ws.contact_id
    email_conv = email.conversation_id
    clock(runtime).advance(minutes=1)
    await perform(
        runtime, ws.admin, do_send_message, conversation_id=widget_conv, text="It ships today"
    )
    # Another contact's message in the same inbox never shows up.
    await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=IdentityInput(EMAIL, "someone.else@example.com"),
        name="Someone Else",
        text="not Cora's",
    )
    clock(runtime).advance(minutes=1)
    note = await perform(
        runtime,
        ws.admin,
        do_send_message,
        conversation_id=email_conv,
        text="check with finance",
        private=True,
    )
    # Same instant: ordered by id.
    await perform(
        runtime, ws.admin, do_send_message, conversation_id=email_conv, text="Invoice attached"
    )
    clock(runtime).advance(minutes=1)
    await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.inbox_id,
        identity=customer,
        name="Cora Customer",
        text="Thanks!",
    )
    await perform(
        runtime,
        ws.admin,
        do_change_conversation_status,
        conversation_id=email_conv,
        status=ConversationStatus.RESOLVED,
    )

    path = f"{API}/contacts/{ws.contact_id}/timeline"
    page = ok(await admin_client.get(path))
    assert page["next_cursor"] is None
    items = page["items"]
    assert [
        (i["text"], i["channel"], i["inbox_name"], i["created_at"], i["private"]) for i in items
    ] == [
        ("Hello, my order is late", "widget", "Website", iso(0), False),
        ("Where is my invoice?", "email", "Billing", iso(1), False),
        ("It ships today", "widget", "Website", iso(2), False),
        ("check with finance", "email", "Billing", iso(3), True),
        ("Invoice attached", "email", "Billing", iso(3), False),
        ("Thanks!", "widget", "Website", iso(4), False),
    ]
    assert [(i["conversation_id"], i["seq"]) for i in items] == [
        (widget_conv, 1),
        (email_conv, 1),
        (widget_conv, 2),
        (email_conv, 2),
        (email_conv, 3),
        (widget_conv, 3),
    ]
    assert {i["contact_id"] for i in items} == {ws.contact_id}
    assert items[3] == {
        "id": note.message_id,
        "conversation_id": email_conv,
        "contact_id": ws.contact_id,
        "seq": 2,
        "direction": "outbound",
        "sender_kind": "agent",
        "sender_id": ws.admin_id,
        "private": True,
        "text": "check with finance",
        "html": None,
        "external_id": None,
        "delivery_status": "received",
        "delivery_error": None,
        "attachments": [],
        "email": None,
        "created_at": iso(3),
        "inbox_id": ws.other_inbox_id,
        "inbox_name": "Billing",
        "channel": "email",
        "conversation_subject": "Invoice #42",
        "conversation_status": "resolved",
    }
    assert {
        (i["inbox_id"], i["conversation_subject"], i["conversation_status"]) for i in items
    } == {
        (ws.inbox_id, None, "open"),
        (ws.other_inbox_id, "Invoice #42", "resolved"),
    }
    # The same items page by page.
    assert await walk(admin_client, path.removeprefix(API), limit=2) == items
    assert await walk(admin_client, path.removeprefix(API), limit=4) == items

    # The agent is a member of the widget inbox only.
    agent_items = ok(await agent_client.get(path))["items"]
    assert agent_items == [i for i in items if i["channel"] == "widget"]
    assert [i["text"] for i in agent_items] == [
        "Hello, my order is late",
        "It ships today",
        "Thanks!",
    ]
    assert await walk(agent_client, path.removeprefix(API), limit=1) == agent_items

    # Once added to the email inbox it sees everything.
    await perform(
        runtime, ws.system, do_add_inbox_member, inbox_id=ws.other_inbox_id, agent_id=ws.agent_id
    )
    assert ok(await agent_client.get(path))["items"] == items


async def test_timeline_of_a_contact_with_no_visible_conversations(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    hidden = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(EMAIL, "hidden@example.com"),
        name="Hidden",
        text="billing question",
    )
    # The contact itself is visible workspace-wide; its timeline here is empty.
    assert ok(await agent_client.get(f"{API}/contacts/{hidden.contact_id}"))["name"] == "Hidden"
    assert ok(await agent_client.get(f"{API}/contacts/{hidden.contact_id}/timeline")) == {
        "items": [],
        "next_cursor": None,
    }


# -- conversations ----------------------------------------------------------------


async def test_conversation_filters_and_pagination(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    team = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    c0 = ws.conversation_id

    async def conversation(
        inbox_id: int,
        *,
        status: ConversationStatus | None = None,
        labels: list[str] | None = None,
        assignee: int | None = None,
        team_id: int | None = None,
        advance: bool = True,
    ) -> int:
        if advance:
            clock(runtime).advance(minutes=1)
        contact = await perform(runtime, ws.system, do_create_contact, name="Someone")
        cid = await perform(
            runtime, ws.system, do_create_conversation, inbox_id=inbox_id, contact_id=contact
        )
        if status is not None:
            until = clock(runtime).now() + timedelta(days=1)
            await perform(
                runtime,
                ws.system,
                do_change_conversation_status,
                conversation_id=cid,
                status=status,
                snoozed_until=until if status is ConversationStatus.SNOOZED else None,
            )
        if labels:
            await perform(
                runtime, ws.system, do_change_conversation_labels, conversation_id=cid, add=labels
            )
        if assignee is not None or team_id is not None:
            await perform(
                runtime,
                ws.system,
                do_assign_conversation,
                conversation_id=cid,
                assignee_id=assignee,
                team_id=team_id,
            )
        return cid

    pending = ConversationStatus.PENDING
    c1 = await conversation(ws.inbox_id, status=pending, labels=["VIP"], assignee=ws.agent_id)
    c2 = await conversation(ws.inbox_id, assignee=ws.agent_id, team_id=team)
    c3 = await conversation(
        ws.inbox_id, status=ConversationStatus.RESOLVED, labels=["vip", "billing"]
    )
    c4 = await conversation(ws.other_inbox_id, assignee=ws.admin_id, team_id=team)
    c5 = await conversation(
        ws.other_inbox_id, status=ConversationStatus.SNOOZED, labels=["Billing"]
    )
    c6 = await conversation(ws.inbox_id, advance=False)  # same instant as c5

    async def ids(c: httpx.AsyncClient, **params: Any) -> list[int]:
        page = ok(await c.get(f"{API}/conversations", params=params))
        return [item["id"] for item in page["items"]]

    everything = [c6, c5, c4, c3, c2, c1, c0]  # newest activity first, then id
    assert await ids(admin_client) == everything
    assert await ids(admin_client, status="pending") == [c1]
    assert await ids(admin_client, status="open,pending") == [c6, c4, c2, c1, c0]
    assert await ids(admin_client, status="snoozed,resolved") == [c5, c3]
    assert await ids(admin_client, inbox_id=ws.other_inbox_id) == [c5, c4]
    assert await ids(admin_client, team_id=team) == [c4, c2]
    assert await ids(admin_client, assignee_id=ws.agent_id) == [c2, c1]
    assert await ids(admin_client, label="VIP") == [c3, c1]
    assert await ids(admin_client, label="billing") == [c5, c3]
    assert await ids(admin_client, unassigned="true") == [c6, c5, c3, c0]
    assert await ids(admin_client, unassigned="false") == everything
    assert await ids(admin_client, mine="true") == [c4]
    assert await ids(admin_client, status="open", unassigned="true") == [c6, c0]
    assert await ids(admin_client, contact_id=ws.contact_id) == [c0]
    assert await ids(admin_client, label="nope") == []

    # The agent sees the inbox it is a member of only.
    assert await ids(agent_client) == [c6, c3, c2, c1, c0]
    assert await ids(agent_client, mine="true") == [c2, c1]
    assert await ids(agent_client, inbox_id=ws.other_inbox_id) == []
    assert await ids(agent_client, team_id=team) == [c2]
    assert await ids(agent_client, label="billing") == [c3]

    # Cursor pagination visits every conversation exactly once, in order.
    walked = await walk(admin_client, "/conversations", limit=2)
    assert [item["id"] for item in walked] == everything
    walked = await walk(agent_client, "/conversations", limit=2)
    assert [item["id"] for item in walked] == [c6, c3, c2, c1, c0]
    walked = await walk(admin_client, "/conversations", limit=2, status="open,pending")
    assert [item["id"] for item in walked] == [c6, c4, c2, c1, c0]

    # A new message moves a conversation to the top; a walk started before
    # keeps its place (keyset, not offset).
    first = ok(await admin_client.get(f"{API}/conversations", params={"limit": 2}))
    clock(runtime).advance(minutes=1)
    await perform(runtime, ws.admin, do_send_message, conversation_id=c0, text="bump")
    rest = await walk(admin_client, "/conversations", limit=2, cursor=first["next_cursor"])
    assert [item["id"] for item in first["items"] + rest] == [c6, c5, c4, c3, c2, c1]
    assert await ids(admin_client) == [c0, c6, c5, c4, c3, c2, c1]

    detail = ok(await admin_client.get(f"{API}/conversations/{c3}"))
    assert (detail["status"], detail["labels"], detail["resolved_at"]) == (
        "resolved",
        ["billing", "vip"],
        iso(3),
    )


async def test_patch_conversation(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    cid = ws.conversation_id
    before = await last_event_id(runtime)
    body = ok(
        await agent_client.patch(
            f"{API}/conversations/{cid}",
            json={
                "status": "snoozed",
                "snoozed_until": "2026-01-06T09:00:00+02:00",
                "priority": "high",
                "add_labels": ["VIP"],
                "assignee_id": ws.agent_id,
            },
        )
    )
    assert (body["status"], body["snoozed_until"], body["priority"], body["labels"]) == (
        "snoozed",
        "2026-01-06T07:00:00+00:00",
        "high",
        ["vip"],
    )
    assert body["assignee_id"] == ws.agent_id
    assert [e[0] for e in await events_since(runtime, before)] == [
        "conversation.status_changed",
        "conversation.priority_changed",
        "conversation.labels_changed",
        "conversation.assigned",
    ]


async def test_create_conversation_and_message_via_api(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    created = ok(
        await agent_client.post(
            f"{API}/conversations",
            json={"inbox_id": ws.inbox_id, "contact_id": ws.contact_id, "subject": "Follow-up"},
        ),
        201,
    )
    assert (created["inbox_id"], created["contact_id"], created["subject"], created["status"]) == (
        ws.inbox_id,
        ws.contact_id,
        "Follow-up",
        "open",
    )
    sent = ok(
        await agent_client.post(
            f"{API}/conversations/{created['id']}/messages", json={"text": "Hi there"}
        ),
        201,
    )
    assert (sent["seq"], sent["text"], sent["sender_id"], sent["private"]) == (
        1,
        "Hi there",
        ws.agent_id,
        False,
    )
    assert (
        ok(await agent_client.get(f"{API}/conversations/{created['id']}/messages/{sent['id']}"))
        == sent
    )


async def test_idempotency_key_gives_one_message(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    path = f"{API}/conversations/{ws.conversation_id}/messages"
    headers = {"Idempotency-Key": "retry-7f3a"}
    before = await counts(runtime)
    first = ok(await agent_client.post(path, json={"text": "On it"}, headers=headers), 201)
    clock(runtime).advance(minutes=1)
    again = ok(await agent_client.post(path, json={"text": "On it"}, headers=headers), 200)
    assert again == first
    after = await counts(runtime)
    assert after == {**before, "messages": before["messages"] + 1, "events": before["events"] + 1}

    res = await agent_client.post(path, json={"text": "Something else"}, headers=headers)
    assert (res.status_code, error_field(res)) == (409, "Idempotency-Key")
    res = await agent_client.post(
        path, json={"text": "On it"}, headers={"Idempotency-Key": "k" * 201}
    )
    assert (res.status_code, error_field(res)) == (422, "Idempotency-Key")
    assert await counts(runtime) == after

    # Without a key, the same text twice is two messages.
    ok(await agent_client.post(path, json={"text": "On it"}), 201)
    ok(await agent_client.post(path, json={"text": "On it"}), 201)
    assert (await counts(runtime))["messages"] == after["messages"] + 2


async def test_messages_after_and_before_seq(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    cid = ws.conversation_id
    for i in range(2, 7):
        clock(runtime).advance(seconds=1)
        await perform(runtime, ws.agent, do_send_message, conversation_id=cid, text=f"m{i}")
    path = f"{API}/conversations/{cid}/messages"

    async def seqs(**params: Any) -> tuple[list[int], bool]:
        page = ok(await agent_client.get(path, params=params))
        return [m["seq"] for m in page["items"]], page["has_more"]

    assert await seqs() == ([1, 2, 3, 4, 5, 6], False)
    assert await seqs(limit=2) == ([5, 6], True)
    assert await seqs(after_seq=0, limit=2) == ([1, 2], True)
    assert await seqs(after_seq=2, limit=2) == ([3, 4], True)
    assert await seqs(after_seq=4, limit=2) == ([5, 6], False)
    assert await seqs(after_seq=6) == ([], False)
    assert await seqs(before_seq=7, limit=4) == ([3, 4, 5, 6], True)
    assert await seqs(before_seq=3, limit=4) == ([1, 2], False)
    assert await seqs(before_seq=1) == ([], False)
    assert await seqs(before_seq=5, limit=2) == ([3, 4], True)
    res = await agent_client.get(path, params={"after_seq": 1, "before_seq": 5})
    assert (res.status_code, error_field(res)) == (422, "before_seq")


# -- bad input (P8) -------------------------------------------------------------


async def test_malformed_input_is_a_4xx_naming_the_field_and_writes_nothing(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    cid, contact = ws.conversation_id, ws.contact_id
    messages = f"/conversations/{cid}/messages"
    json_type = {"content-type": "application/json"}
    # (method, path, request kwargs, expected status, expected field)
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        # wrong types
        ("POST", "/contacts", {"json": {"name": 5}}, 422, "name"),
        ("POST", "/contacts", {"json": {"name": "x", "attributes": []}}, 422, "attributes"),
        (
            "POST",
            "/contacts",
            {"json": {"name": "x", "attributes": {"a": [1]}}},
            422,
            "attributes.a",
        ),
        ("POST", "/contacts", {"json": {"name": "x", "identities": {}}}, 422, "identities"),
        (
            "POST",
            "/contacts",
            {"json": {"name": "x", "identities": [{"kind": "fax", "value": "1"}]}},
            422,
            "identities[0].kind",
        ),
        (
            "POST",
            "/contacts",
            {"json": {"name": "x", "identities": [{"kind": "email"}]}},
            422,
            "identities[0].value",
        ),
        ("POST", "/contacts", {"json": ["name"]}, 422, "body"),
        ("POST", "/contacts", {"json": {}}, 422, "name"),
        ("POST", messages, {"json": {"text": 5}}, 422, "text"),
        ("POST", messages, {"json": {"text": ["hi"]}}, 422, "text"),
        ("POST", messages, {"json": {"text": "hi", "private": "yes"}}, 422, "private"),
        ("POST", messages, {"json": {"text": "hi", "private": 1}}, 422, "private"),
        (
            "POST",
            "/conversations",
            {"json": {"inbox_id": "1", "contact_id": contact}},
            422,
            "inbox_id",
        ),
        (
            "POST",
            "/conversations",
            {"json": {"inbox_id": 1.5, "contact_id": contact}},
            422,
            "inbox_id",
        ),
        (
            "POST",
            "/conversations",
            {"json": {"inbox_id": True, "contact_id": contact}},
            422,
            "inbox_id",
        ),
        ("POST", "/conversations", {"json": {"inbox_id": ws.inbox_id}}, 422, "contact_id"),
        ("PATCH", f"/conversations/{cid}", {"json": {"priority": 3}}, 422, "priority"),
        ("PATCH", f"/conversations/{cid}", {"json": {"status": "closed"}}, 422, "status"),
        ("PATCH", f"/conversations/{cid}", {"json": {"assignee_id": "2"}}, 422, "assignee_id"),
        ("PATCH", f"/conversations/{cid}", {"json": {"labels": "vip"}}, 422, "labels"),
        ("PATCH", f"/conversations/{cid}", {"json": {"labels": ["a,b"]}}, 422, "labels[0]"),
        ("PATCH", f"/conversations/{cid}", {"json": {}}, 422, "body"),
        (
            "PATCH",
            f"/contacts/{contact}",
            {"json": {"attributes": {"k": {"x": 1}}}},
            422,
            "attributes.k",
        ),
        ("PATCH", f"/contacts/{contact}", {"json": {"name": None}}, 422, "name"),
        ("PATCH", f"/contacts/{contact}", {"json": {}}, 422, "body"),
        # NUL bytes
        ("POST", "/contacts", {"json": {"name": "Eve\x00"}}, 422, "name"),
        ("POST", messages, {"json": {"text": "hi\x00there"}}, 422, "text"),
        (
            "PATCH",
            f"/contacts/{contact}",
            {"json": {"attributes": {"k": "v\x00"}}},
            422,
            "attributes.k",
        ),
        (
            "POST",
            f"/contacts/{contact}/identities",
            {"json": {"kind": "visitor", "value": "v\x00"}},
            422,
            "value",
        ),
        # huge strings
        ("POST", messages, {"json": {"text": "x" * 100_000}}, 422, "text"),
        ("POST", "/contacts", {"json": {"name": "x" * 100_000}}, 422, "name"),
        (
            "PATCH",
            f"/contacts/{contact}",
            {"json": {"attributes": {"k": "x" * 100_000}}},
            422,
            "attributes.k",
        ),
        (
            "POST",
            "/conversations",
            {"json": {"inbox_id": ws.inbox_id, "contact_id": contact, "subject": "s" * 501}},
            422,
            "subject",
        ),
        # blank where text is required
        ("POST", messages, {"json": {"text": "  \n "}}, 422, "text"),
        ("POST", "/contacts", {"json": {"name": "   "}}, 422, "name"),
        # invalid UTF-8, lone surrogates, not JSON at all
        ("POST", messages, {"content": b'{"text": "caf\xe9"}', "headers": json_type}, 400, "body"),
        (
            "POST",
            "/contacts",
            {"content": b'{"name": "\xff\xfe"}', "headers": json_type},
            400,
            "body",
        ),
        (
            "POST",
            "/contacts",
            {"content": b'{"name": "\\ud800"}', "headers": json_type},
            422,
            "name",
        ),
        ("POST", messages, {"content": b'{"text": ', "headers": json_type}, 400, "body"),
        ("POST", messages, {"content": b"[" * 100_000, "headers": json_type}, 400, "body"),
        (
            "POST",
            messages,
            {"content": b'{"text": "hi"}', "headers": {"content-type": "text/plain"}},
            415,
            "body",
        ),
        # unknown fields and query parameters
        ("POST", messages, {"json": {"text": "hi", "txet": "hi"}}, 422, "txet"),
        ("POST", "/contacts", {"json": {"name": "x", "email": "x@example.com"}}, 422, "email"),
        ("PATCH", f"/contacts/{contact}", {"json": {"identities": []}}, 422, "identities"),
        ("GET", "/contacts", {"params": {"name": "x"}}, 422, "name"),
        ("GET", "/conversations", {"params": {"assigned": "true"}}, 422, "assigned"),
        ("GET", f"/contacts/{contact}", {"params": {"x": "1"}}, 422, "x"),
        # bad query values
        ("GET", "/conversations", {"params": {"limit": "0"}}, 422, "limit"),
        ("GET", "/conversations", {"params": {"limit": "101"}}, 422, "limit"),
        ("GET", "/conversations", {"params": {"limit": "ten"}}, 422, "limit"),
        ("GET", "/conversations", {"params": {"status": "open,closed"}}, 422, "status[1]"),
        ("GET", "/conversations", {"params": {"unassigned": "yes"}}, 422, "unassigned"),
        ("GET", "/conversations", {"params": {"inbox_id": "-1"}}, 422, "inbox_id"),
        ("GET", messages, {"params": {"after_seq": "-1"}}, 422, "after_seq"),
        ("GET", "/contacts", {"params": {"limit": "1000"}}, 422, "limit"),
        ("GET", "/contacts", {"params": {"q": "x\x00"}}, 422, "q"),
        ("GET", "/contacts", {"params": {"identity_kind": "email"}}, 422, "identity_value"),
        ("GET", "/contacts", {"params": {"identity_value": "a@b.c"}}, 422, "identity_kind"),
        (
            "GET",
            "/contacts",
            {"params": {"identity_kind": "fax", "identity_value": "1"}},
            422,
            "identity_kind",
        ),
        # bad cursors on the contact list and timeline
        ("GET", "/contacts", {"params": {"cursor": "garbage!"}}, 422, "cursor"),
        ("GET", "/contacts", {"params": {"cursor": encode_cursor("x", 1)}}, 422, "cursor"),
        ("GET", "/contacts", {"params": {"cursor": encode_cursor(iso(), "abc")}}, 422, "cursor"),
        ("GET", "/contacts", {"params": {"cursor": encode_cursor(iso(), 10**30)}}, 422, "cursor"),
        (
            "GET",
            "/contacts",
            {"params": {"cursor": encode_cursor("2026-01-05T09:00:00", 1)}},
            422,
            "cursor",
        ),
        ("GET", "/contacts", {"params": {"cursor": encode_cursor(iso())}}, 422, "cursor"),
        ("GET", "/contacts", {"params": {"cursor": encode_cursor(None, None)}}, 422, "cursor"),
        ("GET", f"/contacts/{contact}/timeline", {"params": {"cursor": "e30"}}, 422, "cursor"),
        (
            "GET",
            f"/contacts/{contact}/timeline",
            {"params": {"cursor": encode_cursor(iso(), True)}},
            422,
            "cursor",
        ),
        ("GET", f"/contacts/{contact}/timeline", {"params": {"cursor": "x" * 501}}, 422, "cursor"),
        # snoozing: a time zone is required and the time must be in the future
        (
            "PATCH",
            f"/conversations/{cid}",
            {"json": {"status": "snoozed", "snoozed_until": "2026-02-01T10:00:00"}},
            422,
            "snoozed_until",
        ),
        (
            "PATCH",
            f"/conversations/{cid}",
            {"json": {"status": "snoozed", "snoozed_until": "next tuesday"}},
            422,
            "snoozed_until",
        ),
        (
            "PATCH",
            f"/conversations/{cid}",
            {"json": {"status": "snoozed", "snoozed_until": "2025-01-01T10:00:00Z"}},
            422,
            "snoozed_until",
        ),
        ("PATCH", f"/conversations/{cid}", {"json": {"status": "snoozed"}}, 422, "snoozed_until"),
        (
            "PATCH",
            f"/conversations/{cid}",
            {"json": {"priority": "high", "labels": ["ok", ""]}},
            422,
            "labels[1]",
        ),
    ]
    before = await counts(runtime)
    conversations_before = await conversation_snapshot(runtime)
    failures = []
    for method, path, kwargs, status, field in cases:
        res = await agent_client.request(method, API + path, **kwargs)
        got = (res.status_code, error_field(res) if res.status_code >= 400 else None)
        if got != (status, field):
            failures.append(f"{method} {path} {kwargs}: got {got}, want {(status, field)}")
    assert not failures, "\n".join(failures)
    assert await counts(runtime) == before
    assert await conversation_snapshot(runtime) == conversations_before


async def test_patch_conversation_is_all_or_nothing(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    """A PATCH whose later part fails (after the schema passed) must not
    leave its earlier parts applied (P8: never a partial write)."""
    outsider = await perform(
        runtime,
        ws.admin,
        do_create_agent,
        email="outsider@acme.test",
        name="Olly Outsider",
        password=PASSWORD,
    )
    cid = ws.conversation_id
    before = await counts(runtime)
    snapshot = await conversation_snapshot(runtime)
    failures = []
    for body, field in [
        ({"priority": "high", "labels": ["a,b"]}, "labels[0]"),
        ({"status": "resolved", "assignee_id": outsider}, "assignee_id"),
        ({"add_labels": ["vip"], "team_id": 10**9}, "team_id"),
    ]:
        res = await agent_client.patch(f"{API}/conversations/{cid}", json=body)
        got = (res.status_code, error_field(res) if res.status_code >= 400 else None)
        if got != (422, field):
            failures.append(f"{body}: got {got}")
        if await counts(runtime) != before or await conversation_snapshot(runtime) != snapshot:
            failures.append(f"{body}: wrote {await counts(runtime)} (was {before})")
            before = await counts(runtime)
            snapshot = await conversation_snapshot(runtime)
    assert not failures, "\n".join(failures)


async def test_conversation_list_rejects_bad_cursors(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    """Every cursor that this API did not hand out is a 422 on `cursor`,
    never a database error."""
    failures = []
    for cursor in [
        "garbage!",
        "e30",  # {}
        encode_cursor("yesterday", 1),
        encode_cursor(iso()),
        encode_cursor(iso(), "abc"),
        encode_cursor(iso(), None),
        encode_cursor(iso(), 10**30),
        encode_cursor("2026-01-05T09:00:00", 1),  # no time zone
    ]:
        try:
            res = await agent_client.get(f"{API}/conversations", params={"cursor": cursor})
        except Exception as exc:  # the in-process transport re-raises a 500's cause
            failures.append(f"{cursor}: 500, {exc!r}")
            continue
        got = (res.status_code, error_field(res) if res.status_code >= 400 else None)
        if got != (422, "cursor"):
            failures.append(f"{cursor}: got {got}")
    assert not failures, "\n".join(failures)


# -- sealed workspaces (P7) ------------------------------------------------------


async def test_ids_from_another_workspace_answer_404(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    other = await seed_workspace(runtime, "Other Co")
    other_message = (
        await perform(
            runtime,
            other.system,
            do_receive_message,
            inbox_id=other.inbox_id,
            identity=IdentityInput(EMAIL, "customer@otherco.test"),
            name="Cora Customer",
            text="second",
        )
    ).message_id
    oc, ocontact = other.conversation_id, other.contact_id
    cases: list[tuple[str, str, dict[str, Any] | None, str | None]] = [
        ("GET", f"/contacts/{ocontact}", None, None),
        ("PATCH", f"/contacts/{ocontact}", {"name": "Hijacked"}, None),
        ("POST", f"/contacts/{ocontact}/identities", {"kind": "visitor", "value": "v-x"}, None),
        ("GET", f"/contacts/{ocontact}/timeline", None, None),
        ("GET", f"/conversations/{oc}", None, None),
        ("PATCH", f"/conversations/{oc}", {"priority": "high"}, None),
        ("PATCH", f"/conversations/{oc}", {"status": "resolved"}, None),
        ("GET", f"/conversations/{oc}/messages", None, None),
        ("POST", f"/conversations/{oc}/messages", {"text": "hi"}, None),
        ("GET", f"/conversations/{oc}/messages/{other_message}", None, None),
        # A message of another workspace under one of ours.
        ("GET", f"/conversations/{ws.conversation_id}/messages/{other_message}", None, None),
        (
            "POST",
            "/conversations",
            {"inbox_id": other.inbox_id, "contact_id": ws.contact_id},
            None,
        ),
        (
            "POST",
            "/conversations",
            {"inbox_id": ws.inbox_id, "contact_id": ocontact},
            None,
        ),
        # Ids that exist nowhere, or are not ids at all.
        ("GET", "/contacts/999999", None, None),
        ("GET", "/contacts/abc", None, "contact_id"),
        ("GET", "/contacts/0", None, "contact_id"),
        ("GET", f"/contacts/{2**70}/timeline", None, "contact_id"),
        ("PATCH", "/contacts/-1", {"name": "x"}, "contact_id"),
    ]
    before = await counts(runtime)
    snapshot = await conversation_snapshot(runtime)
    for method, path, body, field in cases:
        res = await admin_client.request(method, API + path, json=body)
        assert res.status_code == 404, f"{method} {path}: {res.status_code} {res.text}"
        assert res.json()["error"]["code"] == "not_found"
        if field is not None:
            assert error_field(res) == field
    assert await counts(runtime) == before
    assert await conversation_snapshot(runtime) == snapshot

    # Lists are sealed: searching by the other workspace's identity finds nothing.
    page = ok(
        await admin_client.get(
            f"{API}/contacts",
            params={"identity_kind": "email", "identity_value": "customer@otherco.test"},
        )
    )
    assert page == {"items": [], "next_cursor": None}
    contacts = ok(await admin_client.get(f"{API}/contacts"))["items"]
    assert ocontact not in {c["id"] for c in contacts}
    conversations = ok(
        await admin_client.get(f"{API}/conversations", params={"inbox_id": other.inbox_id})
    )
    assert conversations["items"] == []
    # Assigning to an agent of another workspace is refused like a missing one.
    res = await admin_client.patch(
        f"{API}/conversations/{ws.conversation_id}", json={"assignee_id": other.agent_id}
    )
    assert (res.status_code, error_field(res)) == (422, "assignee_id")


async def test_agent_outside_an_inbox_gets_404_on_its_conversations(
    runtime: Runtime, ws: Workspace, agent_client: httpx.AsyncClient
) -> None:
    hidden = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(EMAIL, "customer@acme.test"),
        name="Cora Customer",
        text="billing question",
    )
    before = await counts(runtime)
    for method, path, body in [
        ("GET", f"/conversations/{hidden.conversation_id}", None),
        ("PATCH", f"/conversations/{hidden.conversation_id}", {"priority": "high"}),
        ("GET", f"/conversations/{hidden.conversation_id}/messages", None),
        ("POST", f"/conversations/{hidden.conversation_id}/messages", {"text": "hi"}),
        ("GET", f"/conversations/{hidden.conversation_id}/messages/{hidden.message_id}", None),
        (
            "POST",
            "/conversations",
            {"inbox_id": ws.other_inbox_id, "contact_id": ws.contact_id},
        ),
    ]:
        res = await agent_client.request(method, API + path, json=body)
        assert res.status_code == 404, f"{method} {path}: {res.status_code} {res.text}"
    assert await counts(runtime) == before
    # ...while the contact itself is visible workspace-wide.
    assert ok(await agent_client.get(f"{API}/contacts/{ws.contact_id}"))["id"] == ws.contact_id


async def test_contacts_need_a_login(ws: Workspace, anon_client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/contacts"),
        ("POST", "/contacts"),
        ("GET", f"/contacts/{ws.contact_id}"),
        ("GET", f"/contacts/{ws.contact_id}/timeline"),
    ]:
        res = await anon_client.request(
            method, API + path, json={"name": "x"} if method == "POST" else None
        )
        assert res.status_code == 401, path


async def test_new_agent_sees_contacts_but_no_timeline_until_added(
    runtime: Runtime, ws: Workspace
) -> None:
    await perform(
        runtime,
        ws.admin,
        do_create_agent,
        email="newbie@acme.test",
        name="Nina Newbie",
        password=PASSWORD,
    )
    async with client(runtime) as newbie:
        await login(newbie, "newbie@acme.test")
        assert ws.contact_id in {c["id"] for c in ok(await newbie.get(f"{API}/contacts"))["items"]}
        assert ok(await newbie.get(f"{API}/contacts/{ws.contact_id}/timeline"))["items"] == []
        assert ok(await newbie.get(f"{API}/conversations"))["items"] == []
