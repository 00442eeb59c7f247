"""Delivery reports about our own mail (RFC 3464 bounces, PROTOCOLS.md P4):
the message that bounced is marked failed, and a permanent failure
(5.x.x) suppresses the address so nothing is sent to it again."""

from __future__ import annotations

import sqlalchemy as sa

from connectors.email import Bounce
from server.actions.consents import withdraw_for_address
from server.actions.context import ActionContext
from server.actions.touch_outcomes import touch_bounced
from server.domain.consents import UNSUBSCRIBE_SOURCE
from server.domain.email_threading import normalize_address, normalize_message_id
from server.domain.events import EmailSuppressed, MessageDeliveryChanged
from server.domain.values import DeliveryStatus, Direction
from server.queries.records import Inbox, Message, load_or_none
from server.storage import tables as t

MAX_ERROR = 1000


async def record_bounce(
    ctx: ActionContext, *, inbox: Inbox, inbound_mail_id: int, bounce: Bounce | None
) -> str:
    """Act on a bounce that reached `inbox`; returns what was done, for the
    inbound mail's record."""
    if bounce is None:
        return "a delivery report without a machine-readable status: nothing changed"
    status = bounce.status or ("5.0.0" if bounce.permanent else "4.0.0")
    said = " ".join(f"{status} {bounce.diagnostic or bounce.action or ''}".split())
    done: list[str] = []
    message = await _bounced_message(ctx, inbox.workspace_id, bounce.original_message_id)
    if message is None:
        done.append("it names no message of ours")
    elif not bounce.permanent:
        done.append(f"message {message.id}: delayed ({said}); the sending server retries")
    elif message.delivery_status != DeliveryStatus.FAILED.value:
        error = f"bounced: {said}"[:MAX_ERROR]
        await ctx.conn.execute(
            t.messages.update()
            .where(t.messages.c.id == message.id)
            .values(delivery_status=DeliveryStatus.FAILED.value, delivery_error=error)
        )
        await ctx.emit(
            MessageDeliveryChanged(
                workspace_id=message.workspace_id,
                message_id=message.id,
                conversation_id=message.conversation_id,
                inbox_id=message.inbox_id,
                delivery_status=DeliveryStatus.FAILED.value,
                delivery_error=error,
            )
        )
        done.append(f"message {message.id} marked failed")
        if await touch_bounced(ctx, message_id=message.id, reason=error):
            done.append("its touch marked failed")
    if bounce.permanent and bounce.recipient:
        address = normalize_address(bounce.recipient)
        if await suppress_address(
            ctx,
            inbox_id=inbox.id,
            address=address,
            reason=f"permanent bounce: {said}",
            inbound_mail_id=inbound_mail_id,
        ):
            done.append(f"{address} suppressed")
    return f"bounce {said}: " + "; ".join(done) if done else f"bounce {said}"


async def _bounced_message(
    ctx: ActionContext, workspace_id: int, original_message_id: str | None
) -> Message | None:
    msgid = normalize_message_id(original_message_id or "")
    if msgid is None:
        return None
    m = t.messages.c
    found = (
        await ctx.conn.execute(
            sa.select(t.messages)
            .where(
                m.workspace_id == workspace_id,
                m.email_message_id == msgid,
                m.direction == Direction.OUTBOUND.value,
            )
            .order_by(m.id)
            .limit(1)
            .with_for_update()
        )
    ).first()
    return load_or_none(Message, found)


async def suppress_address(
    ctx: ActionContext,
    *,
    inbox_id: int | None,
    address: str,
    reason: str,
    inbound_mail_id: int | None = None,
    scope: str = "all",
) -> bool:
    """Add `address` to the workspace's suppression list: `scope` "all"
    (no mail at all) or "automated" (no automatic mail). False when it was
    suppressed that widely already."""
    s = t.email_suppressions.c
    existing = (
        await ctx.conn.execute(
            sa.select(s.id, s.scope)
            .where(s.workspace_id == ctx.actor.workspace_id, s.address == address)
            .with_for_update()
        )
    ).first()
    if existing is not None and (existing.scope == "all" or scope == "automated"):
        return False
    if existing is not None:  # an unsubscribed address now bounces: widen it
        await ctx.conn.execute(
            t.email_suppressions.update()
            .where(s.id == existing.id)
            .values(scope=scope, reason=reason[:MAX_ERROR], inbound_mail_id=inbound_mail_id)
        )
    else:
        await ctx.conn.execute(
            t.email_suppressions.insert().values(
                workspace_id=ctx.actor.workspace_id,
                address=address[:320],
                reason=reason[:MAX_ERROR],
                scope=scope,
                inbound_mail_id=inbound_mail_id,
                created_at=ctx.now,
            )
        )
    await ctx.emit(
        EmailSuppressed(
            workspace_id=ctx.actor.workspace_id,
            inbox_id=inbox_id,
            address=address,
            reason=reason[:MAX_ERROR],
            scope=scope,
        )
    )
    return True


async def do_unsubscribe_email(ctx: ActionContext, *, address: str) -> bool:
    """A one-click unsubscribe (RFC 8058): no more automatic mail to
    `address` in this workspace, and email marketing withdrawn (with the
    link as its source) for the contacts holding it, in this transaction.
    False when it was unsubscribed already."""
    address = normalize_address(address)
    await withdraw_for_address(ctx, address=address, source=UNSUBSCRIBE_SOURCE)
    return await suppress_address(
        ctx,
        inbox_id=None,
        address=address,
        reason="unsubscribed from automatic mail (one-click)",
        scope="automated",
    )
