"""ActionContext: what an action works with (the open transaction, the
time, the actor, the events it has emitted so far).

It lives apart from `perform` (server.actions.context, which re-exports
it) so that code `perform` itself calls into can use it without an import
cycle: `perform` runs the touchpoint triggers (server.actions.
touch_triggers) inside the action's transaction, and those triggers, like
every action, take an ActionContext. A registry that the runtime fills at
startup would break the cycle too, but then an action run without that
startup (a test, a CLI command, a worker) would silently skip the
triggers; importing the one module that defines the context cannot be
forgotten.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.events import Event
from server.storage.events import PendingEvent


class ActionContext:
    """What an action works with: the open transaction, the time, the actor."""

    def __init__(self, conn: AsyncConnection, now: datetime, actor: Actor) -> None:
        self.conn = conn
        self.now = now
        self.actor = actor
        self.pending: list[PendingEvent] = []
        self.added_due_work = False

    def due_work_added(self) -> None:
        """This transaction scheduled work with a due time (a job, a
        decision): the schedulers are nudged after commit, so work due now
        starts now rather than at their next poll."""
        self.added_due_work = True

    async def emit(self, event: Event) -> None:
        """Record `event`; it is written to the log at the end of this
        transaction and published after commit."""
        self.pending.append(
            PendingEvent(
                workspace_id=event.workspace_id,
                type=event.type,
                inbox_id=event.scope_inbox_id,
                conversation_id=event.scope_conversation_id,
                private=event.is_private,
                payload=event.payload(),
            )
        )
