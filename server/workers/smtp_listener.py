"""The SMTP listener worker: the built-in inbound listener
(server.email.listener) open while the worker runs. It binds a port, so
it runs in `threadline serve` only, never in `threadline worker`
(several of those share a host)."""

from __future__ import annotations

import asyncio
import logging

from connectors.email.smtp_listener import ListenerConfig
from server.email.intake import MailIntake
from server.email.listener import make_listener
from server.runtime import Runtime

log = logging.getLogger(__name__)


class SmtpListening:
    name = "SMTP listener"

    def __init__(self, runtime: Runtime, config: ListenerConfig) -> None:
        self.runtime = runtime
        self.config = config

    async def run(self, stop: asyncio.Event) -> None:
        config = self.config
        listener = make_listener(MailIntake.of(self.runtime), config)
        try:
            await listener.start()
        except OSError as exc:  # the port is taken: the other workers still run
            log.error("SMTP listener not started on %s:%s: %s", config.host, config.port, exc)
            return
        log.info("SMTP listener on %s:%s", config.host, listener.port)
        try:
            await stop.wait()
        finally:
            await listener.stop()
