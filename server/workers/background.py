"""Which workers a process runs: `threadline serve` runs them all,
`threadline worker` all but the SMTP listener, which binds a port (only
one process on a host can hold it; the others are safe to run several
times over: each claims or decides its work in the database)."""

from __future__ import annotations

from server.email.listener import listener_config
from server.runtime import Runtime
from server.workers.chat_continuity import ChatContinuity
from server.workers.email_delivery import EmailDelivery
from server.workers.imap_polling import ImapPolling
from server.workers.jobs import HANDLERS, JobRunner
from server.workers.pruning import Pruning
from server.workers.runner import Worker
from server.workers.smtp_listener import SmtpListening
from server.workers.touch_decisions import DecisionRunner


def background_workers(runtime: Runtime, *, smtp_listener: bool) -> list[Worker]:
    """Every worker; the SMTP listener too if `smtp_listener` and
    THREADLINE_SMTP_LISTEN names an address (a malformed one raises
    ValueError here, before anything starts)."""
    workers: list[Worker] = [
        Pruning(runtime),
        EmailDelivery(runtime),
        ChatContinuity(runtime),
        ImapPolling(runtime),
        JobRunner(runtime, HANDLERS),
        DecisionRunner(runtime),
    ]
    config = listener_config(runtime.settings) if smtp_listener else None
    if config is not None:
        workers.append(SmtpListening(runtime, config))
    return workers
