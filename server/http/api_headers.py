"""Headers every JSON answer of the REST API carries, errors included:
`nosniff`, so a browser never reads an answer as another type, and
`no-store`, so no cache (shared or the browser's) keeps a copy of private
data such as a conversation or a just-issued token.

One ASGI middleware adds them, so no handler can forget; the 500 handler,
which runs outside the middleware stack, uses `API_JSON_HEADERS` itself.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_JSON_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
_RAW = [(k.lower().encode(), v.encode()) for k, v in API_JSON_HEADERS.items()]


class ApiJsonHeaders:
    """Adds `API_JSON_HEADERS` to JSON responses under `prefix` (a header
    the handler set itself wins)."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.split(b";")[0].strip() == b"application/json":
                    headers += [(k, v) for k, v in _RAW if k not in names]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
