"""A stopping server, in process (the real-process side is in
tests/multiprocess/test_shutdown.py): a handshake it stops in the middle
of is refused with 503 and Retry-After, not 500; and, during a bus
outage, a typing signal that can't be published logs one line, as a
stored event's publish does, not a traceback per keystroke."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.exceptions import InvalidStatus

from tests.realtime.conftest import Servers
from tests.realtime.live import FlakyBus, LiveServer, eventually
from tests.support import Workspace


async def test_a_handshake_in_progress_when_the_server_stops_gets_503(
    servers: Servers, bus: FlakyBus, agent_token: str
) -> None:
    live = await servers.start()
    # The first socket of a workspace subscribes to the bus: held there,
    # its handshake is still in progress (not accepted) when the stop comes.
    bus.hold_subscribe = asyncio.Event()
    opening = asyncio.create_task(live.open(token=agent_token))
    state = live.server.server_state
    await eventually(lambda: bool(state.tasks), what="the handshake to reach the app")
    stopping = asyncio.create_task(live.stop(close_clients=False))
    with pytest.raises(InvalidStatus) as refused:
        await opening
    response = refused.value.response
    assert response.status_code == 503  # uvicorn alone answers 500
    assert response.headers["Retry-After"] == "1"
    assert json.loads(response.body)["error"]["code"] == "unavailable"
    # The app then finds the hub closing and gives up quietly.
    bus.hold_subscribe.set()
    await stopping


async def test_a_typing_signal_the_bus_refuses_logs_one_line(
    live: LiveServer,
    bus: FlakyBus,
    ws: Workspace,
    admin_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sock = await live.open(token=admin_token)
    await sock.ready()
    caplog.set_level(logging.WARNING, logger="server.actions.ephemeral")
    bus.down = True
    await sock.send({"type": "typing", "conversation_id": ws.conversation_id, "typing": True})
    await sock.ping()  # frames are answered in order: the typing one is done
    (record,) = [r for r in caplog.records if r.name == "server.actions.ephemeral"]
    assert record.exc_info is None
    assert record.getMessage() == (
        "bus publish of a typing signal failed (ConnectionError: bus unreachable (test))"
    )
