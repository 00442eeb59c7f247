"""The websocket endpoints (PROTOCOLS.md P2)."""

from __future__ import annotations

from starlette.routing import BaseRoute, WebSocketRoute

from server.realtime.endpoints import agent_socket, bot_socket
from server.realtime.widget_socket import widget_socket


def websocket_routes() -> list[BaseRoute]:
    return [
        WebSocketRoute("/ws/agent", agent_socket),
        WebSocketRoute("/ws/bot", bot_socket),
        WebSocketRoute("/ws/widget", widget_socket),
    ]
