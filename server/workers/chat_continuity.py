"""The chat continuity worker (FEATURES.md F2): every `interval` seconds,
queue the mails of widget replies their visitors have not seen in time
(server.actions.chat_continuity decides; server.workers.email_delivery
sends).

It keeps no state: each round reads what is due from the database and
queues each conversation's mail in its own short transaction, which
decides again under the conversation's lock, so several workers (or
several `serve` processes) can run this at once and a crash between
rounds loses and duplicates nothing. A conversation that fails is logged
and retried in the next round; the others still go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.actions.chat_continuity import (
    continuity_inbox_ids,
    do_queue_continuity_email,
    due_conversations,
)
from server.actions.context import perform
from server.domain.actors import system_actor
from server.queries.reading import read
from server.runtime import Runtime

log = logging.getLogger(__name__)


async def queue_continuity_emails(runtime: Runtime) -> int:
    """One round over every widget inbox with continuity on; returns how
    many mails were queued."""
    now = runtime.clock.now()
    queued = 0
    for inbox_id in await read(runtime, continuity_inbox_ids):
        after: int | None = 0
        while after is not None:
            page = await read(
                runtime, due_conversations, inbox_id=inbox_id, now=now, after_id=after
            )
            for workspace_id, conversation_id in page.due:
                try:
                    done = await perform(
                        runtime,
                        system_actor(workspace_id),
                        do_queue_continuity_email,
                        conversation_id=conversation_id,
                    )
                except Exception:
                    log.exception("chat continuity: conversation %s failed", conversation_id)
                    continue
                if done is not None:
                    queued += 1
            after = page.next_after
    return queued


class ChatContinuity:
    name = "chat continuity"

    def __init__(self, runtime: Runtime, *, interval: float = 60.0) -> None:
        self.runtime = runtime
        self.interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        """Queue continuity mail every `interval` seconds until `stop` is
        set; a failed round is logged and the next one tries again."""
        while not stop.is_set():
            try:
                queued = await queue_continuity_emails(self.runtime)
            except Exception:
                log.exception("chat continuity round failed")
            else:
                if queued:
                    log.info("chat continuity: %s mail(s) queued", queued)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
