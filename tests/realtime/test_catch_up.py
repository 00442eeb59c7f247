"""The bus is only a fast path (PROTOCOLS.md P1): events whose publish
failed or got lost still reach live clients, from the log, in order and
once: by the safety poll, by the gap the next event reveals, or at once
when the bus reports a loss."""

from __future__ import annotations

import asyncio

from server.realtime.hub import Limits
from server.runtime import Runtime
from tests.realtime.conftest import Servers
from tests.realtime.live import ErrorRecords, FlakyBus, say
from tests.support import Workspace

NEVER = 3600.0  # a poll that won't run during the test


async def test_publishes_that_failed_are_caught_up_by_the_poll(
    servers: Servers,
    runtime: Runtime,
    ws: Workspace,
    bus: FlakyBus,
    agent_token: str,
    errors: ErrorRecords,
) -> None:
    errors.expect("server.actions.context", "bus publish failed")
    live = await servers.start(limits=Limits(poll_interval=0.05))
    sock = await live.open(token=agent_token)
    await sock.ready()

    bus.down = True
    missed = [await say(runtime, ws.admin, ws.conversation_id, f"down {n}") for n in range(5)]
    assert bus.failed >= 5
    # Nothing is published after the outage: only the poll can find these.
    await sock.until(lambda f: f.get("seq") == missed[-1].seq)
    bus.down = False
    after = await say(runtime, ws.admin, ws.conversation_id, "back")
    await sock.until(lambda f: f.get("seq") == after.seq)
    assert sock.messages() == [(ws.conversation_id, m.seq) for m in [*missed, after]]
    ids = [f["event_id"] for f in sock.events()]
    assert ids == sorted(set(ids))


async def test_missing_and_reordered_publishes_are_put_in_order_from_the_log(
    servers: Servers,
    runtime: Runtime,
    ws: Workspace,
    bus: FlakyBus,
    admin_token: str,
    agent_token: str,
    errors: ErrorRecords,
) -> None:
    """With no poll to help: publishes that failed are found through the
    gap the next event reveals; publishes that reach the bus out of order
    (concurrent writers) still go out in ws_seq order, so in each
    conversation's seq order."""
    errors.expect("server.actions.context", "bus publish failed")
    live = await servers.start(limits=Limits(poll_interval=NEVER, gap_wait=0.05))
    agent = await live.open(token=agent_token)
    admin = await live.open(token=admin_token)
    await agent.ready()
    await admin.ready()

    bus.down = True
    for n in range(4):
        await say(runtime, ws.agent, ws.conversation_id, f"down {n}")
    bus.down = False
    await say(runtime, ws.agent, ws.conversation_id, "back")

    bus.reorder = True
    written = await asyncio.gather(
        *(say(runtime, ws.admin, ws.conversation_id, f"m{n}") for n in range(20))
    )
    await bus.release()
    last = max(w.seq for w in written)
    for sock in (agent, admin):
        await sock.until(lambda f: f.get("seq") == last)
        assert sock.messages() == [(ws.conversation_id, s) for s in range(2, last + 1)]
        ids = [f["event_id"] for f in sock.events()]
        assert ids == sorted(set(ids))


async def test_a_loss_the_bus_reports_is_caught_up_at_once(
    servers: Servers, runtime: Runtime, ws: Workspace, bus: FlakyBus, agent_token: str
) -> None:
    """A subscription that lost messages (a full buffer, a Redis reconnect)
    is repaired when the loss is reported, not at the next message or poll."""
    live = await servers.start(limits=Limits(poll_interval=NEVER))
    sock = await live.open(token=agent_token)
    await sock.ready()

    bus.lossy = True
    lost = [await say(runtime, ws.admin, ws.conversation_id, f"lost {n}") for n in range(3)]
    await sock.until(lambda f: f.get("seq") == lost[-1].seq)
    bus.lossy = False
    after = await say(runtime, ws.admin, ws.conversation_id, "found")
    await sock.until(lambda f: f.get("seq") == after.seq)
    assert sock.messages() == [(ws.conversation_id, m.seq) for m in [*lost, after]]
