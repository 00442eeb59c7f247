"""Canned-response actions (F6): the rows create / update / delete write,
the exact events they emit, who may do each in each scope, and that a
refused action writes and emits nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.actions.agents import do_create_agent
from server.actions.attachments import do_upload_attachment, store_file
from server.actions.canned_responses import (
    do_create_canned_response,
    do_delete_canned_response,
    do_update_canned_response,
)
from server.actions.context import perform
from server.actions.messages import do_send_message
from server.actions.teams import do_add_team_member, do_create_team, do_delete_team
from server.clock import FrozenClock
from server.domain.actors import Actor
from server.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from server.domain.values import CannedScope
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import (
    PASSWORD,
    T0,
    Workspace,
    agent_actor,
    events_since,
    fetch_all,
    fetch_one,
    last_event_id,
    seed_workspace,
)

BODY = 'Hi {{contact.first_name|default("there")}}, this is {{agent.first_name}}.'


async def canned_row(runtime: Runtime, canned_response_id: int) -> sa.Row[Any]:
    c = t.canned_responses.c
    return await fetch_one(runtime, sa.select(t.canned_responses).where(c.id == canned_response_id))


async def count(runtime: Runtime, table: sa.Table) -> int:
    async with runtime.db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def snapshot(runtime: Runtime) -> tuple[int, int, int]:
    return (
        await count(runtime, t.canned_responses),
        await count(runtime, t.attachments),
        await last_event_id(runtime),
    )


async def create(runtime: Runtime, actor: Actor, **kwargs: Any) -> int:
    fields: dict[str, Any] = {
        "scope": CannedScope.WORKSPACE,
        "shortcut": "hello",
        "title": "Hello",
        "body": BODY,
    }
    canned_response_id: int = await perform(
        runtime, actor, do_create_canned_response, **{**fields, **kwargs}
    )
    return canned_response_id


async def team_with_agent(runtime: Runtime, ws: Workspace, name: str = "Tier 1") -> int:
    team_id: int = await perform(runtime, ws.admin, do_create_team, name=name)
    await perform(runtime, ws.admin, do_add_team_member, team_id=team_id, agent_id=ws.agent_id)
    return team_id


async def second_agent(runtime: Runtime, ws: Workspace) -> Actor:
    agent_id = await perform(
        runtime, ws.system, do_create_agent, email="bo@acme.test", name="Bo", password=PASSWORD
    )
    return agent_actor(ws.id, agent_id)


async def upload(runtime: Runtime, ws: Workspace, actor: Actor, data: bytes = b"%PDF-1.7") -> int:
    file = await store_file(runtime.blobs, data, filename="prices.pdf", declared_type=None)
    result = await perform(runtime, actor, do_upload_attachment, file=file, inbox_id=ws.inbox_id)
    attachment_id: int = result.id
    return attachment_id


# -- create -----------------------------------------------------------------


async def test_admin_creates_a_workspace_response(runtime: Runtime, ws: Workspace) -> None:
    before = await last_event_id(runtime)
    canned_id = await create(
        runtime, ws.admin, shortcut=" /Hello-There ", title=" Hello ", body=BODY
    )
    row = await canned_row(runtime, canned_id)
    assert dict(row._mapping) == {
        "id": canned_id,
        "workspace_id": ws.id,
        "scope": "workspace",
        "team_id": None,
        "inbox_id": None,
        "agent_id": None,
        "owner_key": "workspace",
        "shortcut": "hello-there",
        "title": "Hello",
        "body": BODY,
        "attachment_ids": [],
        "usage_count": 0,
        "created_by": ws.admin_id,
        "created_at": T0,
        "updated_at": T0,
    }
    assert await events_since(runtime, before) == [
        (
            "canned_response.created",
            {
                "workspace_id": ws.id,
                "canned_response_id": canned_id,
                "scope": "workspace",
                "team_id": None,
                "inbox_id": None,
                "agent_id": None,
                "shortcut": "hello-there",
                "title": "Hello",
            },
        )
    ]


async def test_each_scope_names_its_owner(runtime: Runtime, ws: Workspace) -> None:
    team_id = await team_with_agent(runtime, ws)
    before = await last_event_id(runtime)
    team = await create(runtime, ws.agent, scope=CannedScope.TEAM, team_id=team_id)
    inbox = await create(runtime, ws.agent, scope=CannedScope.INBOX, inbox_id=ws.inbox_id)
    personal = await create(runtime, ws.agent, scope=CannedScope.PERSONAL)
    rows = [await canned_row(runtime, i) for i in (team, inbox, personal)]
    assert [(r.scope, r.team_id, r.inbox_id, r.agent_id, r.owner_key) for r in rows] == [
        ("team", team_id, None, None, f"team:{team_id}"),
        ("inbox", None, ws.inbox_id, None, f"inbox:{ws.inbox_id}"),
        ("personal", None, None, ws.agent_id, f"agent:{ws.agent_id}"),
    ]
    events = await events_since(runtime, before)
    assert [
        (kind, p["scope"], p["team_id"], p["inbox_id"], p["agent_id"]) for kind, p in events
    ] == [
        ("canned_response.created", "team", team_id, None, None),
        ("canned_response.created", "inbox", None, ws.inbox_id, None),
        ("canned_response.created", "personal", None, None, ws.agent_id),
    ]


async def test_who_may_create_where(runtime: Runtime, ws: Workspace) -> None:
    """Workspace: admins. Team: admins and members (a visible team the agent
    is not in is a 403). Inbox: admins and members (an inbox the agent is
    not in is a 404, as it can't see it). Personal: any agent, never the
    system. Another workspace's team or inbox is not found."""
    member_team = await team_with_agent(runtime, ws)
    other_team = await perform(runtime, ws.admin, do_create_team, name="Tier 2")
    elsewhere = await seed_workspace(runtime, "Other Co")
    foreign_team = await perform(runtime, elsewhere.admin, do_create_team, name="Foreign")
    before = await snapshot(runtime)
    refused: list[tuple[Actor, dict[str, Any], type[DomainError], str | None]] = [
        (ws.agent, {"scope": CannedScope.WORKSPACE}, Forbidden, None),
        (ws.agent, {"scope": CannedScope.TEAM, "team_id": other_team}, Forbidden, "team_id"),
        (ws.agent, {"scope": CannedScope.INBOX, "inbox_id": ws.other_inbox_id}, NotFound, None),
        (ws.admin, {"scope": CannedScope.TEAM, "team_id": foreign_team}, NotFound, None),
        (ws.admin, {"scope": CannedScope.INBOX, "inbox_id": elsewhere.inbox_id}, NotFound, None),
        (ws.system, {"scope": CannedScope.PERSONAL}, Forbidden, "scope"),
        (ws.admin, {"scope": CannedScope.TEAM}, InvalidInput, "team_id"),
        (ws.admin, {"scope": CannedScope.INBOX}, InvalidInput, "inbox_id"),
        (
            ws.admin,
            {"scope": CannedScope.WORKSPACE, "team_id": member_team},
            InvalidInput,
            "team_id",
        ),
        (
            ws.agent,
            {"scope": CannedScope.PERSONAL, "inbox_id": ws.inbox_id},
            InvalidInput,
            "inbox_id",
        ),
    ]
    for actor, fields, error, field in refused:
        with pytest.raises(error) as err:
            await create(runtime, actor, **fields)
        assert err.value.field == field, fields
    assert await snapshot(runtime) == before
    # The admin, and the system acting for the workspace, may share anywhere.
    await create(runtime, ws.admin, scope=CannedScope.TEAM, team_id=other_team)
    await create(runtime, ws.admin, scope=CannedScope.INBOX, inbox_id=ws.other_inbox_id)
    await create(runtime, ws.system, scope=CannedScope.WORKSPACE, shortcut="from-system")
    assert (await canned_row(runtime, await create(runtime, ws.admin))).created_by == ws.admin_id


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"body": "Hi {{contact.__class__}}"}, "body", "line 1, column 6: unknown variable"),
        ({"body": "ok\nHi {{contact.name"}, "body", "line 2, column 4: tag not closed"),
        ({"body": "{{ {{x}} }}"}, "body", "can't contain another tag"),
        ({"body": "x" * 10_001}, "body", "at most 10000 characters"),
        ({"body": "   "}, "body", "must not be empty"),
        ({"shortcut": "two words"}, "shortcut", "letters a-z"),
        ({"shortcut": ""}, "shortcut", "must not be empty"),
        ({"title": " "}, "title", "1 to 200"),
        ({"title": "t" * 201}, "title", "1 to 200"),
    ],
)
async def test_invalid_input_is_refused_by_field_and_writes_nothing(
    runtime: Runtime, ws: Workspace, fields: dict[str, Any], field: str, words: str
) -> None:
    before = await snapshot(runtime)
    with pytest.raises(InvalidInput) as err:
        await create(runtime, ws.admin, **fields)
    assert err.value.field == field
    assert words in err.value.message
    assert await snapshot(runtime) == before


async def test_shortcuts_are_unique_per_audience(runtime: Runtime, ws: Workspace) -> None:
    bo = await second_agent(runtime, ws)
    team_id = await team_with_agent(runtime, ws)
    await create(runtime, ws.admin, shortcut="refund")
    before = await snapshot(runtime)
    with pytest.raises(Conflict) as err:
        await create(runtime, ws.admin, shortcut="Refund")
    assert err.value.field == "shortcut"
    assert await snapshot(runtime) == before
    # The same shortcut in other audiences is fine: each is its own list.
    await create(runtime, ws.agent, scope=CannedScope.PERSONAL, shortcut="refund")
    await create(runtime, bo, scope=CannedScope.PERSONAL, shortcut="refund")
    await create(runtime, ws.agent, scope=CannedScope.TEAM, team_id=team_id, shortcut="refund")
    await create(
        runtime, ws.agent, scope=CannedScope.INBOX, inbox_id=ws.inbox_id, shortcut="refund"
    )
    with pytest.raises(Conflict):
        await create(runtime, ws.agent, scope=CannedScope.PERSONAL, shortcut="refund")


async def test_the_schema_refuses_an_owner_that_does_not_match_the_scope(
    runtime: Runtime, ws: Workspace
) -> None:
    """Defence in depth below the actions: the CHECK constraint."""
    values = {
        "workspace_id": ws.id,
        "owner_key": "x",
        "shortcut": "x",
        "title": "x",
        "body": "x",
        "attachment_ids": [],
        "usage_count": 0,
        "created_at": T0,
        "updated_at": T0,
    }
    for bad in (
        {"scope": "workspace", "agent_id": ws.agent_id},
        {"scope": "team"},
        {"scope": "personal", "inbox_id": ws.inbox_id},
        {"scope": "everyone"},
    ):
        with pytest.raises(IntegrityError):
            async with runtime.db.write() as conn:
                await conn.execute(t.canned_responses.insert().values(**values, **bad))


# -- update -----------------------------------------------------------------


async def test_update_changes_what_is_given_and_emits_the_changes(
    runtime: Runtime, ws: Workspace
) -> None:
    canned_id = await create(runtime, ws.admin)
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(minutes=1)
    before = await last_event_id(runtime)
    await perform(
        runtime,
        ws.admin,
        do_update_canned_response,
        canned_response_id=canned_id,
        shortcut="HELLO",  # the same once normalised: not a change
        title="Greeting",
        body="Hello {{contact.name}}",
    )
    row = await canned_row(runtime, canned_id)
    assert (row.shortcut, row.title, row.body) == ("hello", "Greeting", "Hello {{contact.name}}")
    assert (row.created_at, row.updated_at) == (T0, T0 + timedelta(minutes=1))
    assert await events_since(runtime, before) == [
        (
            "canned_response.updated",
            {
                "workspace_id": ws.id,
                "canned_response_id": canned_id,
                "scope": "workspace",
                "team_id": None,
                "inbox_id": None,
                "agent_id": None,
                "shortcut": "hello",
                "title": "Greeting",
                "changes": ["body", "title"],
            },
        )
    ]
    # Nothing different: nothing written, nothing emitted.
    before = await last_event_id(runtime)
    await perform(
        runtime, ws.admin, do_update_canned_response, canned_response_id=canned_id, title="Greeting"
    )
    assert await events_since(runtime, before) == []


async def test_update_refuses_a_taken_shortcut_and_a_bad_body(
    runtime: Runtime, ws: Workspace
) -> None:
    await create(runtime, ws.admin, shortcut="taken")
    canned_id = await create(runtime, ws.admin, shortcut="mine")
    before = await snapshot(runtime)
    with pytest.raises(Conflict):
        await perform(
            runtime,
            ws.admin,
            do_update_canned_response,
            canned_response_id=canned_id,
            shortcut="taken",
        )
    with pytest.raises(InvalidInput) as err:
        await perform(
            runtime,
            ws.admin,
            do_update_canned_response,
            canned_response_id=canned_id,
            title="Fine",
            body="{{agent.password}}",
        )
    assert err.value.field == "body"
    assert await snapshot(runtime) == before
    assert (await canned_row(runtime, canned_id)).title == "Hello"


async def test_who_may_change_and_delete(runtime: Runtime, ws: Workspace) -> None:
    """Agents change what they can read except workspace responses (403);
    what they can't read is a 404. Personal responses are their owner's
    alone: even an admin gets a 404."""
    bo = await second_agent(runtime, ws)
    team_id = await team_with_agent(runtime, ws)
    workspace = await create(runtime, ws.admin, shortcut="w")
    team = await create(runtime, ws.admin, scope=CannedScope.TEAM, team_id=team_id, shortcut="t")
    inbox = await create(
        runtime, ws.admin, scope=CannedScope.INBOX, inbox_id=ws.inbox_id, shortcut="i"
    )
    hidden_inbox = await create(
        runtime, ws.admin, scope=CannedScope.INBOX, inbox_id=ws.other_inbox_id, shortcut="h"
    )
    personal = await create(runtime, ws.agent, scope=CannedScope.PERSONAL, shortcut="p")
    before = await snapshot(runtime)
    cases: list[tuple[Actor, int, type[Exception]]] = [
        (ws.agent, workspace, Forbidden),
        (bo, team, NotFound),  # not in the team
        (bo, inbox, NotFound),  # not in the inbox
        (ws.agent, hidden_inbox, NotFound),
        (ws.admin, personal, NotFound),
        (bo, personal, NotFound),
    ]
    for actor, canned_id, error in cases:
        with pytest.raises(error):
            await perform(
                runtime, actor, do_update_canned_response, canned_response_id=canned_id, title="X"
            )
        with pytest.raises(error):
            await perform(runtime, actor, do_delete_canned_response, canned_response_id=canned_id)
    assert await snapshot(runtime) == before
    for canned_id in (team, inbox, personal):
        await perform(
            runtime, ws.agent, do_update_canned_response, canned_response_id=canned_id, title="Y"
        )
        await perform(runtime, ws.agent, do_delete_canned_response, canned_response_id=canned_id)
    await perform(runtime, ws.admin, do_delete_canned_response, canned_response_id=workspace)
    assert await count(runtime, t.canned_responses) == 1  # hidden_inbox


async def test_another_workspace_sees_nothing(runtime: Runtime, ws: Workspace) -> None:
    canned_id = await create(runtime, ws.admin)
    other = await seed_workspace(runtime, "Other Co")
    for action in (do_update_canned_response, do_delete_canned_response):
        with pytest.raises(NotFound):
            await perform(runtime, other.admin, action, canned_response_id=canned_id)


# -- delete -----------------------------------------------------------------


async def test_delete_removes_the_row_and_its_files(runtime: Runtime, ws: Workspace) -> None:
    file_id = await upload(runtime, ws, ws.admin)
    canned_id = await create(runtime, ws.admin, attachment_ids=[file_id])
    before = await last_event_id(runtime)
    await perform(runtime, ws.admin, do_delete_canned_response, canned_response_id=canned_id)
    assert await fetch_all(runtime, sa.select(t.canned_responses)) == []
    assert (
        await fetch_all(runtime, sa.select(t.attachments).where(t.attachments.c.id == file_id))
        == []
    )
    assert await events_since(runtime, before) == [
        (
            "canned_response.deleted",
            {
                "workspace_id": ws.id,
                "canned_response_id": canned_id,
                "scope": "workspace",
                "team_id": None,
                "inbox_id": None,
                "agent_id": None,
            },
        )
    ]


async def test_deleting_a_team_deletes_its_responses(runtime: Runtime, ws: Workspace) -> None:
    team_id = await team_with_agent(runtime, ws)
    await create(runtime, ws.agent, scope=CannedScope.TEAM, team_id=team_id)
    await perform(runtime, ws.admin, do_delete_team, team_id=team_id)
    assert await count(runtime, t.canned_responses) == 0


# -- files --------------------------------------------------------------------


async def test_a_response_holds_its_files_so_no_message_takes_them(
    runtime: Runtime, ws: Workspace
) -> None:
    first, second = await upload(runtime, ws, ws.agent), await upload(runtime, ws, ws.agent, b"x")
    canned_id = await create(
        runtime, ws.agent, scope=CannedScope.PERSONAL, attachment_ids=[second, first]
    )
    assert (await canned_row(runtime, canned_id)).attachment_ids == [second, first]
    rows = await fetch_all(
        runtime, sa.select(t.attachments).where(t.attachments.c.id.in_([first, second]))
    )
    assert {(r.uploader_kind, r.uploader_id, r.message_id) for r in rows} == {
        ("canned_response", canned_id, None)
    }
    with pytest.raises(NotFound) as err:
        await perform(
            runtime,
            ws.agent,
            do_send_message,
            conversation_id=ws.conversation_id,
            text="take it",
            attachment_ids=[first],
        )
    assert err.value.field == "attachment_ids[0]"

    # Dropping a file from the list deletes its row; a new one is taken.
    third = await upload(runtime, ws, ws.agent, b"third")
    before = await last_event_id(runtime)
    await perform(
        runtime,
        ws.agent,
        do_update_canned_response,
        canned_response_id=canned_id,
        attachment_ids=[first, third],
    )
    assert (await canned_row(runtime, canned_id)).attachment_ids == [first, third]
    remaining = await fetch_all(
        runtime, sa.select(t.attachments.c.id).where(t.attachments.c.uploader_id == canned_id)
    )
    assert sorted(r.id for r in remaining) == sorted([first, third])
    [(kind, payload)] = await events_since(runtime, before)
    assert (kind, payload["changes"]) == ("canned_response.updated", ["attachment_ids"])


async def test_only_your_own_unsent_uploads_can_be_held(runtime: Runtime, ws: Workspace) -> None:
    admins = await upload(runtime, ws, ws.admin)
    sent = await upload(runtime, ws, ws.agent)
    await perform(
        runtime,
        ws.agent,
        do_send_message,
        conversation_id=ws.conversation_id,
        text="sent",
        attachment_ids=[sent],
    )
    held_elsewhere = await upload(runtime, ws, ws.agent)
    await create(runtime, ws.agent, scope=CannedScope.PERSONAL, attachment_ids=[held_elsewhere])
    mine = await upload(runtime, ws, ws.agent)
    before = await snapshot(runtime)
    for ids, field in (
        ([mine, admins], "attachment_ids[1]"),
        ([sent], "attachment_ids[0]"),
        ([held_elsewhere], "attachment_ids[0]"),
        ([10**9], "attachment_ids[0]"),
    ):
        with pytest.raises(NotFound) as err:
            await create(
                runtime, ws.agent, scope=CannedScope.PERSONAL, shortcut="b", attachment_ids=ids
            )
        assert err.value.field == field
    with pytest.raises(InvalidInput) as bad:
        await create(
            runtime, ws.agent, scope=CannedScope.PERSONAL, shortcut="b", attachment_ids=[mine, mine]
        )
    assert bad.value.field == "attachment_ids"
    assert await snapshot(runtime) == before
