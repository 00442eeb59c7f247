"""A socket whose transport stays paused (its client takes nothing, well
under the outbox limit) is closed with 4008 within the send timeout, not
just dropped: a client that reads on gets a gap-free prefix, then 4008
(server.realtime.hub, "Stalls")."""

from __future__ import annotations

import asyncio
import os

from server.realtime.hub import Limits
from server.realtime.visibility import CloseCode
from server.runtime import Runtime
from tests.realtime.conftest import Servers
from tests.realtime.live import eventually, new_token, say
from tests.realtime.test_one_pass_fan_out import open_unread, server_side, small_send_buffers
from tests.support import Workspace


async def test_a_paused_socket_is_closed_with_4008_within_the_send_timeout(
    servers: Servers, runtime: Runtime, ws: Workspace, admin_token: str
) -> None:
    limits = Limits(send_timeout=2.0)  # the outbox limit (4 MiB) is never reached
    live = await servers.start(limits=limits)
    small_send_buffers(live)
    slow_token_id, slow_token = await new_token(runtime, ws.agent)
    slow = await open_unread(live, slow_token)
    await slow.ready()
    fast = await live.open(token=admin_token)
    await fast.ready()
    conn = server_side(live, ws, slow_token_id)

    written: list[int] = []
    while conn.delivery.paused_since is None:
        text = os.urandom(4096).hex()  # 8 KiB of noise
        written.append((await say(runtime, ws.admin, ws.conversation_id, text)).seq)
        assert len(written) < 500, "the slow client's transport never paused"
    paused = conn.delivery.paused_since
    assert conn.delivery.close_request is None

    # Nothing more is sent; the client takes nothing: at half the send
    # timeout it is closed with 4008 (before the drop at the full one).
    loop = asyncio.get_running_loop()
    await eventually(
        lambda: conn.delivery.close_request is not None,
        timeout=limits.send_timeout,
        what="the close",
    )
    assert loop.time() - paused < limits.send_timeout
    assert conn.delivery.close_request is not None
    assert conn.delivery.close_request.code == CloseCode.TOO_SLOW

    # Reading now, it gets what was written, in order, then the 4008.
    assert await slow.closed(timeout=5) == CloseCode.TOO_SLOW
    prefix = slow.messages()
    assert prefix == [(ws.conversation_id, s) for s in written[: len(prefix)]]
    assert prefix  # it had frames up to the pause
    await eventually(lambda: conn not in live.connections(ws.id), what="it to leave the hub")

    # The other client was served all along.
    await fast.until(lambda f: f.get("seq") == written[-1], timeout=10)
    assert fast.messages() == [(ws.conversation_id, s) for s in written]
