"""What became of a touch the outbox sent (TOUCHPOINTS.md rule 4): the
delivery worker records each attempt (server.actions.outbound_email.
do_record_delivery), and in that same transaction the decision whose
mail it is moves on from `sending`:

- the server took the mail → `sent`, with the Message-ID as
  `channel_message_id`;
- the attempt may have delivered it (the worker died with the mail at the
  server, or the connection broke during DATA) → `unknown`: shown to
  admins, never sent again by itself (server.actions.touch_settlement
  settles it);
- refused for good (5xx), or too many temporary failures → `failed`
  ("bounced: ...").

A temporary failure that will be retried leaves the decision `sending`.
A bounce that comes back later (server.actions.email_bounces) fails the
decision of the mail it names too, even one already `sent`: the server
took it, the mailbox did not (`touch_bounced`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from server.actions.context import ActionContext
from server.domain.events import DecisionFailed, DecisionSent, DecisionUnknown, Event
from server.domain.touchpoints import DecisionState
from server.queries.records import Decision, load_or_none
from server.storage import tables as t
from server.storage.updates import RowWrites

# `payload.kind` of an outbox row that sends a touch (and its stable_id's
# prefix); `payload.decision_id` names the decision.
TOUCH = "touch"
MAX_REASON = 200


def touch_decision_id(payload: object) -> int | None:
    """The decision an outbox row's payload sends, if it is a touch."""
    if not isinstance(payload, dict) or payload.get("kind") != TOUCH:
        return None
    value = payload.get("decision_id")
    return value if isinstance(value, int) else None


async def touch_delivery_recorded(
    ctx: ActionContext,
    *,
    decision_id: int,
    outbox_status: str,
    error: str | None,
    email_message_id: str | None,
    known: dict[int, Decision] | None = None,
    writes: RowWrites | None = None,
) -> None:
    """Move decision `decision_id` on from `sending` after its mail's
    outbox row became `outbox_status` (sent, unknown, failed; pending:
    nothing to do yet). A batch passes the decisions it read and locked
    already (`known`, kept up to date here) and gathers the writes
    (`writes`)."""
    decision = None if known is None else known.get(decision_id)
    if decision is None:
        d = t.decisions.c
        decision = load_or_none(
            Decision,
            (
                await ctx.conn.execute(
                    sa.select(t.decisions).where(d.id == decision_id).with_for_update()
                )
            ).first(),
        )
    if decision is None or decision.state != DecisionState.SENDING.value:
        return
    state = await _move(ctx, decision, outbox_status, error, email_message_id, writes=writes)
    if known is not None:
        known[decision_id] = dataclasses.replace(decision, state=state)


async def touch_bounced(ctx: ActionContext, *, message_id: int, reason: str) -> bool:
    """A permanent bounce of message `message_id`: its touch's decision,
    if it has one that went out (or may have), becomes `failed` with the
    bounce as its reason. False when the message is no touch's."""
    d = t.decisions.c
    decision = load_or_none(
        Decision,
        (
            await ctx.conn.execute(
                sa.select(t.decisions)
                .where(
                    d.message_id == message_id,
                    d.state.in_(
                        [
                            DecisionState.SENDING.value,
                            DecisionState.SENT.value,
                            DecisionState.UNKNOWN.value,
                        ]
                    ),
                )
                .with_for_update()
            )
        ).first(),
    )
    if decision is None:
        return False
    said = reason.removeprefix("bounced: ")
    await _move(ctx, decision, "failed", said, None)
    return True


async def _move(
    ctx: ActionContext,
    decision: Decision,
    outbox_status: str,
    error: str | None,
    email_message_id: str | None,
    *,
    writes: RowWrites | None = None,
) -> str:
    """Write and announce the decision's state after its mail's outcome;
    the new state."""
    facts: dict[str, Any] = {
        "workspace_id": decision.workspace_id,
        "decision_id": decision.id,
        "episode_id": decision.episode_id,
        "touchpoint_id": decision.touchpoint_id,
        "contact_id": decision.contact_id,
        "position": decision.position,
        "channel": decision.channel,
    }
    if outbox_status == "sent":
        values: dict[str, Any] = {
            "state": DecisionState.SENT.value,
            "reason": None,
            "channel_message_id": email_message_id,
            "settled_at": ctx.now,
        }
        event: Event = DecisionSent(**facts, reason=None, channel_message_id=email_message_id)
    elif outbox_status == "unknown":
        reason = (error or "delivery unknown")[:MAX_REASON]
        values = {"state": DecisionState.UNKNOWN.value, "reason": reason, "settled_at": ctx.now}
        event = DecisionUnknown(**facts, reason=reason)
    elif outbox_status == "failed":
        reason = f"bounced: {error or 'refused'}"[:MAX_REASON]
        values = {"state": DecisionState.FAILED.value, "reason": reason, "settled_at": ctx.now}
        event = DecisionFailed(**facts, reason=reason)
    else:
        return decision.state
    if writes is not None:
        writes.set(t.decisions, decision.id, values)
    else:
        await ctx.conn.execute(
            t.decisions.update().where(t.decisions.c.id == decision.id).values(**values)
        )
    await ctx.emit(event)
    return str(values["state"])
