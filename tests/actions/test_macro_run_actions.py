"""Running a macro (server.actions.macro_runs): every step applied in one
transaction with each step's own events then `macro.used`; a refused step
applies, emits, counts and stores nothing; a retry with the same
Idempotency-Key sends nothing twice; access to the macro and the
conversation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.actions.agents import do_create_agent
from server.actions.attachments import do_upload_attachment, store_file
from server.actions.canned_responses import do_create_canned_response, do_delete_canned_response
from server.actions.contacts import IdentityInput
from server.actions.context import perform
from server.actions.conversations import do_change_conversation_labels
from server.actions.macro_runs import do_run_macro, run_macro
from server.actions.macros import do_create_macro
from server.actions.messages import do_receive_message
from server.actions.teams import do_create_team
from server.domain.actors import Actor
from server.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from server.domain.macros import MacroScope
from server.domain.values import CannedScope, IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.support import PASSWORD, T0, Workspace, events_since, fetch_all, fetch_one, last_event_id

BODY = "Hi {{contact.first_name}}, {{agent.first_name}} here: refunded."
PDF = b"%PDF-1.7\nreceipt"


def blob_count(runtime: Runtime) -> int:
    root: Path = runtime.settings.data_dir / "attachments"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


async def canned(runtime: Runtime, ws: Workspace, *, files: bool = False, **kw: Any) -> int:
    attachment_ids = []
    if files:
        file = await store_file(runtime.blobs, PDF, filename="receipt.pdf", declared_type=None)
        upload = await perform(
            runtime, ws.admin, do_upload_attachment, file=file, inbox_id=ws.inbox_id
        )
        attachment_ids.append(upload.id)
    fields: dict[str, Any] = {
        "scope": CannedScope.WORKSPACE,
        "shortcut": "refunded",
        "title": "Refunded",
        "body": BODY,
        "attachment_ids": attachment_ids,
    }
    canned_id: int = await perform(runtime, ws.admin, do_create_canned_response, **{**fields, **kw})
    return canned_id


async def macro(runtime: Runtime, actor: Actor, steps: list[dict[str, Any]], **kw: Any) -> int:
    fields: dict[str, Any] = {"scope": MacroScope.WORKSPACE, "name": "Refund", "actions": steps}
    macro_id: int = await perform(runtime, actor, do_create_macro, **{**fields, **kw})
    return macro_id


async def state(
    runtime: Runtime, ws: Workspace, conversation_id: int | None = None
) -> dict[str, Any]:
    """Everything a run may change, to compare before and after."""
    cid = conversation_id or ws.conversation_id
    conversation = await fetch_one(
        runtime, sa.select(t.conversations).where(t.conversations.c.id == cid)
    )
    labels = await fetch_all(
        runtime,
        sa.select(t.conversation_labels.c.label).where(
            t.conversation_labels.c.conversation_id == cid
        ),
    )
    return {
        "conversation": dict(conversation._mapping),
        "labels": sorted(r.label for r in labels),
        "messages": len(await fetch_all(runtime, sa.select(t.messages.c.id))),
        "attachments": len(await fetch_all(runtime, sa.select(t.attachments.c.id))),
        "macro_uses": [
            r.usage_count
            for r in await fetch_all(runtime, sa.select(t.macros).order_by(t.macros.c.id))
        ],
        "canned_uses": [
            r.usage_count
            for r in await fetch_all(
                runtime, sa.select(t.canned_responses).order_by(t.canned_responses.c.id)
            )
        ],
        "last_event": await last_event_id(runtime),
        "blobs": blob_count(runtime),
    }


async def test_every_step_applies_in_order_with_its_events(runtime: Runtime, ws: Workspace) -> None:
    team = await perform(runtime, ws.admin, do_create_team, name="Refunds")
    canned_id = await canned(runtime, ws, files=True)
    await perform(
        runtime,
        ws.system,
        do_change_conversation_labels,
        conversation_id=ws.conversation_id,
        add=["new"],
    )
    macro_id = await macro(
        runtime,
        ws.admin,
        [
            {"type": "send_canned_response", "canned_response_id": canned_id},
            {"type": "add_label", "label": "Refund"},
            {"type": "remove_label", "label": "new"},
            {"type": "assign_team", "team_id": team},
            {"type": "assign_agent", "agent_id": "me"},
            {"type": "set_priority", "priority": "high"},
            {"type": "resolve"},
        ],
    )
    before = await last_event_id(runtime)

    result = await run_macro(
        runtime, ws.agent, macro_id=macro_id, conversation_id=ws.conversation_id
    )

    [message_id] = result.message_ids
    assert (result.macro_id, result.conversation_id, result.usage_count, result.replayed) == (
        macro_id,
        ws.conversation_id,
        1,
        False,
    )
    message = await fetch_one(runtime, sa.select(t.messages).where(t.messages.c.id == message_id))
    assert (message.text, message.sender_id, message.private) == (
        "Hi Cora, Gus here: refunded.",
        ws.agent_id,
        False,
    )
    assert [a["filename"] for a in message.attachments] == ["receipt.pdf"]
    after = await state(runtime, ws)
    conversation = after["conversation"]
    assert (
        conversation["status"],
        conversation["priority"],
        conversation["team_id"],
        conversation["assignee_id"],
        conversation["resolved_at"],
    ) == ("resolved", "high", team, ws.agent_id, T0)
    assert after["labels"] == ["refund"]
    assert (after["macro_uses"], after["canned_uses"]) == ([1], [1])

    events = await events_since(runtime, before)
    assert [kind for kind, _ in events] == [
        "message.created",
        "canned_response.used",
        "conversation.labels_changed",
        "conversation.labels_changed",
        "conversation.assigned",
        "conversation.assigned",
        "conversation.priority_changed",
        "conversation.status_changed",
        "macro.used",
    ]
    assert events[-1][1] == {
        "workspace_id": ws.id,
        "macro_id": macro_id,
        "scope": "workspace",
        "agent_id": None,
        "conversation_id": ws.conversation_id,
        "inbox_id": ws.inbox_id,
        "message_ids": [message_id],
        "usage_count": 1,
    }
    # One transaction: the events were appended together, in one ws_seq run.
    seqs = [
        r.ws_seq
        for r in await fetch_all(
            runtime,
            sa.select(t.events.c.ws_seq).where(t.events.c.id > before).order_by(t.events.c.id),
        )
    ]
    assert seqs == list(range(seqs[0], seqs[0] + len(events)))


async def test_snooze_reopen_and_unassign(runtime: Runtime, ws: Workspace) -> None:
    macro_id = await macro(
        runtime,
        ws.admin,
        [
            {"type": "assign_agent", "agent_id": ws.agent_id},
            {"type": "snooze", "minutes": 90},
        ],
    )
    await run_macro(runtime, ws.admin, macro_id=macro_id, conversation_id=ws.conversation_id)
    conversation = (await state(runtime, ws))["conversation"]
    assert (conversation["status"], conversation["snoozed_until"], conversation["assignee_id"]) == (
        "snoozed",
        T0 + timedelta(minutes=90),
        ws.agent_id,
    )
    undo = await macro(
        runtime,
        ws.admin,
        [{"type": "reopen"}, {"type": "assign_agent", "agent_id": None}],
        name="Undo",
    )
    result = await run_macro(runtime, ws.agent, macro_id=undo, conversation_id=ws.conversation_id)
    assert result.message_ids == []
    conversation = (await state(runtime, ws))["conversation"]
    assert (conversation["status"], conversation["snoozed_until"], conversation["assignee_id"]) == (
        "open",
        None,
        None,
    )


async def refused_run(
    runtime: Runtime,
    ws: Workspace,
    actor: Actor,
    kind: type[DomainError],
    field: str | None,
    **run: Any,
) -> DomainError:
    """The run is refused with `kind` naming `field`, and nothing at all
    changed: no row, no event, no count, no file copy left behind."""
    run.setdefault("conversation_id", ws.conversation_id)
    before = await state(runtime, ws, run["conversation_id"])
    with pytest.raises(kind) as caught:
        await run_macro(runtime, actor, **run)
    assert caught.value.field == field
    assert await state(runtime, ws, run["conversation_id"]) == before
    return caught.value


async def test_a_failing_step_applies_nothing(runtime: Runtime, ws: Workspace) -> None:
    canned_id = await canned(runtime, ws, files=True)
    # An agent who is no member of the conversation's inbox can't be its
    # assignee: the fourth step fails, after three that succeeded.
    outsider = await perform(
        runtime, ws.system, do_create_agent, email="out@acme.test", name="Out", password=PASSWORD
    )
    macro_id = await macro(
        runtime,
        ws.admin,
        [
            {"type": "add_label", "label": "refund"},
            {"type": "send_canned_response", "canned_response_id": canned_id},
            {"type": "set_priority", "priority": "urgent"},
            {"type": "assign_agent", "agent_id": outsider},
            {"type": "resolve"},
        ],
    )
    error = await refused_run(
        runtime, ws, ws.agent, InvalidInput, "actions[3].agent_id", macro_id=macro_id
    )
    assert error.message.startswith("actions[3] (assign_agent): ")


async def test_a_step_whose_response_is_gone_is_a_conflict(runtime: Runtime, ws: Workspace) -> None:
    canned_id = await canned(runtime, ws)
    macro_id = await macro(
        runtime,
        ws.admin,
        [{"type": "resolve"}, {"type": "send_canned_response", "canned_response_id": canned_id}],
    )
    await perform(runtime, ws.admin, do_delete_canned_response, canned_response_id=canned_id)
    await refused_run(
        runtime, ws, ws.agent, Conflict, "actions[1].canned_response_id", macro_id=macro_id
    )


async def test_an_inbox_response_only_runs_in_its_inbox(runtime: Runtime, ws: Workspace) -> None:
    canned_id = await canned(runtime, ws, scope=CannedScope.INBOX, inbox_id=ws.inbox_id)
    macro_id = await macro(
        runtime,
        ws.admin,
        [{"type": "send_canned_response", "canned_response_id": canned_id}],
        scope=MacroScope.PERSONAL,
    )
    other = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "billing@acme.test"),
        name="Bill",
        text="invoice?",
    )
    await refused_run(
        runtime,
        ws,
        ws.admin,
        InvalidInput,
        "actions[0].canned_response_id",
        macro_id=macro_id,
        conversation_id=other.conversation_id,
    )


async def test_who_may_run_what(runtime: Runtime, ws: Workspace) -> None:
    admins_own = await macro(runtime, ws.admin, [{"type": "resolve"}], scope=MacroScope.PERSONAL)
    shared = await macro(runtime, ws.admin, [{"type": "resolve"}], name="Shared")
    hidden = await perform(
        runtime,
        ws.system,
        do_receive_message,
        inbox_id=ws.other_inbox_id,
        identity=IdentityInput(IdentityKind.EMAIL, "hidden@acme.test"),
        name="Hidden",
        text="hi",
    )
    # Someone else's personal macro, or a conversation it can't see: 404.
    await refused_run(runtime, ws, ws.agent, NotFound, None, macro_id=admins_own)
    await refused_run(
        runtime,
        ws,
        ws.agent,
        NotFound,
        None,
        macro_id=shared,
        conversation_id=hidden.conversation_id,
    )
    await refused_run(runtime, ws, ws.agent, NotFound, None, macro_id=10**9)
    # Any agent runs a workspace macro where it can see the conversation.
    await run_macro(runtime, ws.agent, macro_id=shared, conversation_id=ws.conversation_id)


async def test_a_retry_with_the_same_key_sends_nothing_twice(
    runtime: Runtime, ws: Workspace
) -> None:
    canned_id = await canned(runtime, ws, files=True)
    steps: list[dict[str, Any]] = [
        {"type": "send_canned_response", "canned_response_id": canned_id},
        {"type": "add_label", "label": "refund"},
        {"type": "send_canned_response", "canned_response_id": canned_id},
    ]
    macro_id = await macro(runtime, ws.admin, steps)
    first = await run_macro(
        runtime,
        ws.agent,
        macro_id=macro_id,
        conversation_id=ws.conversation_id,
        idempotency_key="k1",
    )
    assert len(first.message_ids) == 2 and not first.replayed
    after_first = await state(runtime, ws)

    again = await run_macro(
        runtime,
        ws.agent,
        macro_id=macro_id,
        conversation_id=ws.conversation_id,
        idempotency_key="k1",
    )
    assert (again.message_ids, again.usage_count, again.replayed) == (first.message_ids, 1, True)
    # Nothing sent, applied, counted or emitted; the file copies made for
    # the retry were removed again.
    assert await state(runtime, ws) == after_first

    # The same key for another macro's run is a conflict, not a replay.
    other = await macro(runtime, ws.admin, steps[:1], name="Other")
    after_first = await state(runtime, ws)
    with pytest.raises(Conflict) as caught:
        await run_macro(
            runtime,
            ws.agent,
            macro_id=other,
            conversation_id=ws.conversation_id,
            idempotency_key="k1",
        )
    assert caught.value.field == "Idempotency-Key"
    assert await state(runtime, ws) == after_first

    # Another key is another run.
    fresh = await run_macro(
        runtime,
        ws.agent,
        macro_id=macro_id,
        conversation_id=ws.conversation_id,
        idempotency_key="k2",
    )
    assert not fresh.replayed and set(fresh.message_ids).isdisjoint(first.message_ids)
    assert (await state(runtime, ws))["macro_uses"] == [2, 0]


async def test_racing_retries_send_once(runtime: Runtime, ws: Workspace) -> None:
    canned_id = await canned(runtime, ws)
    macro_id = await macro(
        runtime, ws.admin, [{"type": "send_canned_response", "canned_response_id": canned_id}]
    )
    before = await state(runtime, ws)
    runs = await asyncio.gather(
        *(
            run_macro(
                runtime,
                ws.agent,
                macro_id=macro_id,
                conversation_id=ws.conversation_id,
                idempotency_key="double-click",
            )
            for _ in range(3)
        )
    )
    assert sorted(r.replayed for r in runs) == [False, True, True]
    assert len({tuple(r.message_ids) for r in runs}) == 1
    after = await state(runtime, ws)
    assert after["messages"] == before["messages"] + 1
    assert (after["macro_uses"], after["canned_uses"]) == ([1], [1])


async def test_do_run_macro_counts_each_run(runtime: Runtime, ws: Workspace) -> None:
    """Without a key every run is a run (as every POST of a message is)."""
    macro_id = await macro(runtime, ws.admin, [{"type": "add_label", "label": "seen"}])
    for expected in (1, 2):
        result = await perform(
            runtime, ws.agent, do_run_macro, macro_id=macro_id, conversation_id=ws.conversation_id
        )
        assert result.usage_count == expected
    assert (await state(runtime, ws))["labels"] == ["seen"]
