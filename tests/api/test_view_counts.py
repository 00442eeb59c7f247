"""Sidebar view counts: Mine, Unassigned, All, per inbox, team and label,
limited to what the caller may see and to the asked statuses."""

from __future__ import annotations

from datetime import timedelta

import httpx

from server.actions.contacts import do_create_contact
from server.actions.context import perform
from server.actions.conversations import (
    do_assign_conversation,
    do_change_conversation_labels,
    do_change_conversation_status,
    do_create_conversation,
)
from server.actions.messages import do_send_message
from server.actions.teams import do_create_team
from server.clock import FrozenClock
from server.domain.values import ConversationStatus
from server.runtime import Runtime
from server.workers.jobs import HANDLERS, JobRunner
from tests.support import T0, Workspace

API = "/api/v1"


async def test_counts_per_view_for_what_the_agent_may_see(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    team = await perform(runtime, ws.admin, do_create_team, name="Tier 2")

    async def conversation(
        inbox_id: int,
        *,
        assignee: int | None = None,
        team_id: int | None = None,
        labels: list[str] | None = None,
        status: ConversationStatus | None = None,
    ) -> int:
        contact = await perform(runtime, ws.system, do_create_contact, name="Someone")
        cid: int = await perform(
            runtime, ws.system, do_create_conversation, inbox_id=inbox_id, contact_id=contact
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
        if labels:
            await perform(
                runtime, ws.system, do_change_conversation_labels, conversation_id=cid, add=labels
            )
        if status is not None:
            await perform(
                runtime,
                ws.system,
                do_change_conversation_status,
                conversation_id=cid,
                status=status,
            )
        return cid

    # The seeded conversation: open, unassigned, in ws.inbox.
    await conversation(ws.inbox_id, assignee=ws.agent_id, labels=["vip"])
    await conversation(ws.inbox_id, assignee=ws.agent_id, team_id=team, labels=["vip", "billing"])
    await conversation(ws.inbox_id, status=ConversationStatus.RESOLVED, labels=["vip"])
    await conversation(ws.other_inbox_id, assignee=ws.admin_id, team_id=team, labels=["billing"])
    await conversation(ws.other_inbox_id, status=ConversationStatus.PENDING)

    admin = (await admin_client.get(f"{API}/views/counts")).json()
    assert admin == {
        "statuses": ["open"],
        "mine": 1,
        "unassigned": 1,
        "all": 4,
        "inboxes": {str(ws.inbox_id): 3, str(ws.other_inbox_id): 1},
        "teams": {str(team): 2},
        "labels": {"billing": 2, "vip": 2},
        "saved_filters": [],
    }
    # The agent sees only its inbox: nothing from the other one leaks.
    agent = (await agent_client.get(f"{API}/views/counts")).json()
    assert agent == {
        "statuses": ["open"],
        "mine": 2,
        "unassigned": 1,
        "all": 3,
        "inboxes": {str(ws.inbox_id): 3},
        "teams": {str(team): 1},
        "labels": {"billing": 1, "vip": 2},
        "saved_filters": [],
    }
    wider = (await admin_client.get(f"{API}/views/counts?status=pending,open")).json()
    assert (wider["statuses"], wider["all"], wider["unassigned"]) == (["open", "pending"], 5, 2)
    bad = await admin_client.get(f"{API}/views/counts?status=closed")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status[0]"


async def test_unread_counts_are_per_agent(
    runtime: Runtime,
    ws: Workspace,
    admin_client: httpx.AsyncClient,
    agent_client: httpx.AsyncClient,
) -> None:
    async def unread(c: httpx.AsyncClient) -> tuple[int, int]:
        listed = (await c.get(f"{API}/conversations")).json()["items"]
        one = (await c.get(f"{API}/conversations/{ws.conversation_id}")).json()
        (item,) = [i for i in listed if i["id"] == ws.conversation_id]
        assert item["unread"] == one["unread"]
        return item["unread"], one["last_seq"]

    for text in ("first", "second"):
        await perform(
            runtime, ws.admin, do_send_message, conversation_id=ws.conversation_id, text=text
        )
    count, last_seq = await unread(agent_client)
    assert count == last_seq >= 2
    res = await agent_client.post(
        f"{API}/conversations/{ws.conversation_id}/read", json={"seq": last_seq - 1}
    )
    assert res.status_code == 200, res.text
    assert (await unread(agent_client))[0] == 1
    # The admin's own position is untouched by the agent's reading.
    assert (await unread(admin_client))[0] == last_seq
    detail = (await agent_client.get(f"{API}/conversations/{ws.conversation_id}")).json()
    assert detail["agent_last_read_seq"] == last_seq - 1


async def test_a_snoozed_conversation_is_counted_as_snoozed_until_it_wakes(
    runtime: Runtime, ws: Workspace, admin_client: httpx.AsyncClient
) -> None:
    async def counts() -> tuple[int, int]:
        open_ = (await admin_client.get(f"{API}/views/counts")).json()["all"]
        snoozed = (await admin_client.get(f"{API}/views/counts?status=snoozed")).json()["all"]
        return open_, snoozed

    assert await counts() == (1, 0)
    await perform(
        runtime,
        ws.admin,
        do_change_conversation_status,
        conversation_id=ws.conversation_id,
        status=ConversationStatus.SNOOZED,
        snoozed_until=T0 + timedelta(hours=1),
    )
    assert await counts() == (0, 1)
    assert isinstance(runtime.clock, FrozenClock)
    runtime.clock.advance(hours=1)
    assert await JobRunner(runtime, HANDLERS).run_due() == 1
    assert await counts() == (1, 0)
