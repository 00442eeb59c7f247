"""An admin settles an `unknown` decision (TOUCHPOINTS.md rule 4): the
engine never resends a touch that may have gone out, so a person who
checked (the customer's mailbox, the mail server's log) says what
happened — `sent` (it did arrive) or `resend` (send it again, knowingly:
a new outbox row for the same message, under a new stable id, and the
decision is `sending` again until the delivery worker records it)."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.actions.outbound_email import enqueue_touch_email
from server.domain.errors import Conflict, InvalidInput, NotFound
from server.domain.events import DecisionSettled
from server.domain.touchpoints import Channel, DecisionState
from server.queries.access import require_admin
from server.queries.records import Decision, load_or_none
from server.storage import tables as t

Outcome = Literal["sent", "resend"]
OUTCOMES = ("sent", "resend")


async def do_settle_decision(ctx: ActionContext, *, decision_id: int, outcome: Outcome) -> Decision:
    """Settle `unknown` decision `decision_id` of the actor's workspace as
    `outcome`; returns the decision as it is now. Admins only."""
    require_admin(ctx.actor)
    if outcome not in OUTCOMES:
        raise InvalidInput("outcome: must be sent or resend", field="outcome")
    d = t.decisions.c
    decision = load_or_none(
        Decision,
        (
            await ctx.conn.execute(
                sa.select(t.decisions)
                .where(d.id == decision_id, d.workspace_id == ctx.actor.workspace_id)
                .with_for_update()
            )
        ).first(),
    )
    if decision is None:
        raise NotFound("decision not found")
    if decision.state != DecisionState.UNKNOWN.value:
        raise Conflict(
            f"only an unknown decision can be settled; this one is {decision.state}",
            field="outcome",
        )
    if outcome == "sent":
        values: dict[str, object] = {
            "state": DecisionState.SENT.value,
            "reason": "settled as sent",
            "settled_at": ctx.now,
        }
    else:
        if decision.channel != Channel.EMAIL.value or decision.message_id is None:
            raise InvalidInput("outcome: only an email touch can be resent", field="outcome")
        inbox_id = await ctx.conn.scalar(
            sa.select(t.messages.c.inbox_id).where(t.messages.c.id == decision.message_id)
        )
        if inbox_id is None:
            raise Conflict("the message of this touch no longer exists", field="outcome")
        outbox_id = await enqueue_touch_email(
            ctx,
            message_id=decision.message_id,
            workspace_id=decision.workspace_id,
            inbox_id=inbox_id,
            decision_id=decision.id,
            resend=decision.attempts + 1,
        )
        values = {
            "state": DecisionState.SENDING.value,
            "reason": "resent by an admin",
            "outbox_id": outbox_id,
            "attempts": decision.attempts + 1,
            "settled_at": None,
        }
    row = (
        await ctx.conn.execute(
            t.decisions.update().where(d.id == decision.id).values(**values).returning(t.decisions)
        )
    ).one()
    await ctx.emit(
        DecisionSettled(
            workspace_id=decision.workspace_id,
            decision_id=decision.id,
            episode_id=decision.episode_id,
            touchpoint_id=decision.touchpoint_id,
            contact_id=decision.contact_id,
            position=decision.position,
            channel=decision.channel,
            reason=str(values["reason"]),
            outcome=outcome,
            settled_by=ctx.actor.agent_id,
        )
    )
    found = load_or_none(Decision, row)
    assert found is not None
    return found
