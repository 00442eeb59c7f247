"""ActionContext and `perform`: the one door for writes.

An action is an async function `do_<verb>_<noun>(ctx, ...)`. `perform` opens
a write transaction, gives the action a context whose `emit` appends events
to the log *in that transaction*, commits, and only then publishes the
events on the bus — so no listener ever sees a change that rolled back and
no change forgets to notify.

`perform` needs the database, the bus and the clock: it takes any `Writer`
(server.runtime.Runtime is one), so actions never depend on the process
that hosts them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError

from server.actions.action_context import ActionContext
from server.actions.assignment import assign_waiting
from server.actions.idempotency import current_claim, enter_claim, open_claim
from server.actions.routing import route_conversations
from server.actions.touch_triggers import react_to_events
from server.bus.base import SCHEDULER_TOPIC, Bus, failure_text, workspace_topic
from server.clock import Clock
from server.domain.actors import Actor
from server.domain.errors import Conflict
from server.storage.db import Database
from server.storage.events import StoredEvent, append_events

# ActionContext is defined in server.actions.action_context and re-exported:
# every action imports it from here.
__all__ = ["Action", "ActionContext", "Writer", "perform", "publish"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# A unique violation can come from a race with a concurrent writer (two
# requests with one idempotency key, two inbound mails creating one contact);
# the retried action then sees the winner's row. Deadlock/serialization
# failures on PostgreSQL are retried the same way.
_ATTEMPTS = 3


class Writer(Protocol):
    """What writing uses: the database to write in, the clock that dates
    the change, the bus that announces it. Reads need only the database,
    so a Writer is a server.queries.reading.Reader too."""

    @property
    def db(self) -> Database: ...

    @property
    def bus(self) -> Bus: ...

    @property
    def clock(self) -> Clock: ...


Action = Callable[Concatenate[ActionContext, P], Awaitable[T]]


async def perform(
    writer: Writer, actor: Actor, action: Action[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run `action` in its own write transaction and publish what it emitted.

    The first write of a request made with an idempotency key also records
    the key, in this transaction (server.actions.idempotency)."""
    claim = open_claim(current_claim())
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with writer.db.write() as conn:
                ctx = ActionContext(conn, writer.clock.now(), actor)
                if claim is not None:
                    await enter_claim(ctx, claim)
                result = await action(ctx, *args, **kwargs)
                await route_conversations(ctx)
                await assign_waiting(ctx)
                # Touchpoints start and end with what the action did, in its
                # transaction: a rollback takes their episodes with it.
                await react_to_events(ctx)
                stored = await append_events(conn, ctx.pending, ctx.now) if ctx.pending else []
        except IntegrityError as exc:
            if attempt == _ATTEMPTS:
                log.warning("action %s: integrity error after retries: %s", action.__name__, exc)
                raise Conflict("the change conflicts with existing data") from exc
            continue
        except DBAPIError as exc:
            if attempt == _ATTEMPTS or not _is_retryable(exc):
                raise
            continue
        await publish(writer.bus, stored)
        if ctx.added_due_work:
            await nudge_schedulers(writer.bus)
        return result
    raise AssertionError("unreachable")


# PostgreSQL SQLSTATEs for a transaction that lost a race and may simply
# be run again: serialization_failure, deadlock_detected.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}


def _is_retryable(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    text = str(exc.orig).lower()
    return "deadlock" in text or "could not serialize" in text


async def publish(bus: Bus, events: list[StoredEvent]) -> None:
    """Publish committed events. A bus failure never fails the write: the
    events are durable and listeners resume from the log (PROTOCOLS.md P1)."""
    for stored in events:
        try:
            await bus.publish(
                workspace_topic(stored.workspace_id), json.dumps(stored.wire()).encode()
            )
        except Exception as exc:
            # Expected during a Redis outage and handled: listeners catch up
            # from the log. One line, not a traceback per write.
            log.warning(
                "bus publish failed (%s); listeners will catch up from the log", failure_text(exc)
            )
            return


async def nudge_schedulers(bus: Bus) -> None:
    """Tell the schedulers of every process to look for due work now. A
    failure is harmless: they look again within their poll interval."""
    try:
        await bus.publish(SCHEDULER_TOPIC, b"")
    except Exception as exc:
        log.debug("scheduler nudge not published (%s)", failure_text(exc))
