"""Ephemeral signals (typing, presence, viewing): sent on the bus, never
written to the log. They leave through here so that `server.actions`
stays the only place anything is published."""

from __future__ import annotations

import json
import logging
from typing import Any

from server.bus.base import Bus, failure_text, workspace_topic

log = logging.getLogger(__name__)


async def broadcast_ephemeral(bus: Bus, workspace_id: int, signal: dict[str, Any]) -> None:
    """Best effort: a lost typing indicator is not worth an error."""
    message = {**signal, "workspace_id": workspace_id, "ephemeral": True}
    try:
        await bus.publish(workspace_topic(workspace_id), json.dumps(message).encode())
    except Exception as exc:
        log.warning("bus publish of a %s signal failed (%s)", signal.get("type"), failure_text(exc))
