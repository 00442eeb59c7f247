"""PROTOCOLS.md P2 as `threadline serve` configures uvicorn: 64 KiB frames,
a ping every 20 s, no per-message compression (BENCHMARKS.md: it costs
~35 KB per connection)."""

from __future__ import annotations

from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from server.cli import WEBSOCKET_OPTIONS
from server.realtime.protocol import MAX_FRAME_BYTES
from tests.realtime.live import LiveServer


def test_serve_runs_websockets_as_the_protocol_says() -> None:
    assert WEBSOCKET_OPTIONS["ws_max_size"] == MAX_FRAME_BYTES == 64 * 1024
    assert WEBSOCKET_OPTIONS["ws_ping_interval"] == 20.0
    assert WEBSOCKET_OPTIONS["ws_per_message_deflate"] is False


async def test_compression_offered_by_a_client_is_declined(
    live: LiveServer, agent_token: str
) -> None:
    sock = await live.open(token=agent_token, extensions=[ClientPerMessageDeflateFactory()])
    await sock.ready()
    assert sock.conn.response is not None
    assert "Sec-WebSocket-Extensions" not in sock.conn.response.headers
    assert sock.conn.protocol.extensions == []
