"""Rows for the claim tests: touchpoints, episodes and due decisions
written straight into their tables (the claim is what is under test, not
how triggers start episodes), and contacts made through actions."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from server.actions.contacts import IdentityInput, do_create_contact
from server.actions.context import perform
from server.actions.inboxes import do_update_inbox
from server.actions.touch_claims import ProcessedBatch, do_process_due_decisions
from server.clock import FrozenClock
from server.domain.actors import system_actor
from server.domain.values import IdentityKind
from server.runtime import Runtime
from server.storage import tables as t
from tests.services.smtp import SmtpSink
from tests.support import Workspace, fetch_all, fetch_one


def clock(runtime: Runtime) -> FrozenClock:
    assert isinstance(runtime.clock, FrozenClock)
    return runtime.clock


def email_step(
    subject: str = "Hello {{ contact.name }}",
    body: str = "Hi {{ contact.name }}, your cart waits.",
    *,
    after: int = 0,
    business_hours: bool = False,
    variants: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "delay": {"after": after},
        "channel": "email",
        "variants": list(variants)
        if variants is not None
        else [{"id": "a", "weight": 1, "subject": subject, "body": body, "html": False}],
        "business_hours": business_hours,
    }


def widget_step(body: str = "Need help with {{ contact.name }}'s cart?") -> dict[str, Any]:
    return {
        "delay": {"after": 0},
        "channel": "widget",
        "variants": [{"id": "a", "weight": 1, "subject": "", "body": body, "html": False}],
        "business_hours": False,
    }


async def make_touchpoint(
    runtime: Runtime,
    ws: Workspace,
    *,
    name: str = "Cart reminder",
    kind: str = "marketing",
    steps: Sequence[dict[str, Any]] | None = None,
    priority: int = 50,
    max_lateness: int | None = 6 * 3600,
    quiet_hours: dict[str, str] | None = None,
    inbox_id: int | None = None,
    exit_rules: Sequence[dict[str, Any]] = (),
    trigger: dict[str, Any] | None = None,
    status: str = "live",
) -> int:
    now = runtime.clock.now()
    async with runtime.db.write() as conn:
        tp_id: int = (
            await conn.execute(
                t.touchpoints.insert()
                .values(
                    workspace_id=ws.id,
                    name=name,
                    description="",
                    kind=kind,
                    status=status,
                    trigger=trigger or {"kind": "contact_event", "name": "cart_updated"},
                    trigger_key="contact_event:cart_updated",
                    episode_key="cart:{cart_id}",
                    exit_rules=list(exit_rules),
                    goal=None,
                    reentry="per_episode",
                    priority=priority,
                    holdout_percent=0,
                    max_lateness_seconds=max_lateness,
                    quiet_hours=quiet_hours,
                    inbox_id=inbox_id if inbox_id is not None else ws.other_inbox_id,
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                .returning(t.touchpoints.c.id)
            )
        ).scalar_one()
        for position, step in enumerate(steps or [email_step()]):
            await conn.execute(
                t.touchpoint_steps.insert().values(
                    workspace_id=ws.id,
                    touchpoint_id=tp_id,
                    version=1,
                    position=position,
                    delay=step["delay"],
                    channel=step["channel"],
                    variants=step["variants"],
                    business_hours=step["business_hours"],
                    created_at=now,
                )
            )
    return tp_id


@dataclasses.dataclass(frozen=True)
class Started:
    episode_id: int
    decision_id: int


async def start(
    runtime: Runtime,
    touchpoint_id: int,
    contact_id: int,
    *,
    key: str = "cart:1",
    due_at: datetime | None = None,
    arm: str = "treatment",
    bucket: int = 0,
    context: dict[str, Any] | None = None,
    conversation_id: int | None = None,
    entered_at: datetime | None = None,
) -> Started:
    """An active episode with its first decision scheduled at `due_at`."""
    now = runtime.clock.now()
    due = due_at or now
    async with runtime.db.write() as conn:
        tp = (
            await conn.execute(sa.select(t.touchpoints).where(t.touchpoints.c.id == touchpoint_id))
        ).one()
        step = (
            await conn.execute(
                sa.select(t.touchpoint_steps).where(
                    t.touchpoint_steps.c.touchpoint_id == touchpoint_id,
                    t.touchpoint_steps.c.position == 0,
                )
            )
        ).one()
        episode_id: int = (
            await conn.execute(
                t.episodes.insert()
                .values(
                    workspace_id=tp.workspace_id,
                    touchpoint_id=touchpoint_id,
                    version=1,
                    contact_id=contact_id,
                    key=key,
                    state="active",
                    arm=arm,
                    bucket=bucket,
                    context=context or {"cart_id": "1"},
                    conversation_id=conversation_id,
                    entered_at=entered_at or now,
                )
                .returning(t.episodes.c.id)
            )
        ).scalar_one()
        decision_id: int = (
            await conn.execute(
                t.decisions.insert()
                .values(
                    workspace_id=tp.workspace_id,
                    episode_id=episode_id,
                    touchpoint_id=touchpoint_id,
                    step_id=step.id,
                    contact_id=contact_id,
                    position=0,
                    channel=step.channel,
                    kind=tp.kind,
                    priority=tp.priority,
                    idempotency_key=f"ep{episode_id}:step0",
                    due_at=due,
                    run_at=due,
                    state="scheduled",
                    attempts=0,
                    created_at=now,
                )
                .returning(t.decisions.c.id)
            )
        ).scalar_one()
    return Started(episode_id, decision_id)


async def contact(
    runtime: Runtime,
    ws: Workspace,
    address: str | None,
    *,
    name: str = "Cora",
    attributes: dict[str, Any] | None = None,
) -> int:
    identities = [IdentityInput(IdentityKind.EMAIL, address)] if address else []
    return await perform(
        runtime,
        ws.system,
        do_create_contact,
        name=name,
        attributes=attributes or {},
        identities=identities,
    )


async def process(runtime: Runtime, limit: int = 100) -> ProcessedBatch:
    return await perform(
        runtime,
        system_actor(0),
        do_process_due_decisions,
        limit=limit,
        unsubscribe_link=lambda ws, address: f"http://testserver/u/{ws}-{address}",
    )


async def decision(runtime: Runtime, decision_id: int) -> sa.Row[Any]:
    return await fetch_one(runtime, sa.select(t.decisions).where(t.decisions.c.id == decision_id))


async def decisions_of(runtime: Runtime, episode_id: int) -> list[sa.Row[Any]]:
    return await fetch_all(
        runtime,
        sa.select(t.decisions)
        .where(t.decisions.c.episode_id == episode_id)
        .order_by(t.decisions.c.position),
    )


async def settings(runtime: Runtime, ws: Workspace, touchpoints: dict[str, Any]) -> None:
    async with runtime.db.write() as conn:
        await conn.execute(
            t.workspaces.update()
            .where(t.workspaces.c.id == ws.id)
            .values(settings={"touchpoints": touchpoints})
        )


async def ledger(
    runtime: Runtime, ws: Workspace, contact_id: int, *, kind: str, channel: str, ago: timedelta
) -> None:
    """A touch the contact got `ago` (from another touchpoint, say): a
    decision row to hang it on, and its ledger row."""
    tp = await make_touchpoint(runtime, ws, name=f"Earlier {kind} {channel} {ago}", kind=kind)
    started = await start(runtime, tp, contact_id, key=f"earlier:{ago}")
    async with runtime.db.write() as conn:
        await conn.execute(
            t.decisions.update()
            .where(t.decisions.c.id == started.decision_id)
            .values(state="sent", settled_at=runtime.clock.now() - ago)
        )
        await conn.execute(
            t.touch_ledger.insert().values(
                workspace_id=ws.id,
                contact_id=contact_id,
                decision_id=started.decision_id,
                channel=channel,
                kind=kind,
                at=runtime.clock.now() - ago,
            )
        )


async def mail_inbox(runtime: Runtime, ws: Workspace, sink: SmtpSink) -> None:
    """The workspace's other inbox sends through `sink` as shop@acme.test
    (make_touchpoint's default inbox)."""
    await perform(
        runtime,
        ws.admin,
        do_update_inbox,
        inbox_id=ws.other_inbox_id,
        settings={
            "address": "shop@acme.test",
            "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
        },
        box=runtime.secrets,
    )
