"""create_app: routes, middleware and lifespan wiring for one process."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from server.http.api_headers import API_JSON_HEADERS, ApiJsonHeaders
from server.http.ratelimit import SlidingWindow
from server.http.routes import API_PREFIX, api_routes
from server.http.ui_assets import ui_routes
from server.http.unsubscribe import unsubscribe_routes
from server.http.widget_api import AgentsOnline
from server.http.widget_assets import widget_asset_routes
from server.realtime.hub import Hub
from server.realtime.routes import websocket_routes
from server.runtime import Runtime
from server.wire.errors import json_error

log = logging.getLogger(__name__)


def create_app(runtime: Runtime) -> Starlette:
    """The ASGI app. The caller owns `runtime` (migrations, closing)."""

    hub = Hub(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # Liveness says so from now on (server.http.health).
            app.state.stopping = True
            await hub.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith(API_PREFIX):
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
            return json_error(exc.status_code, code, str(exc.detail))
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": {"code": "internal", "message": "internal error", "field": None}},
            status_code=500,
            # Outside the middleware stack: ApiJsonHeaders never sees it.
            headers=API_JSON_HEADERS if request.url.path.startswith(API_PREFIX) else None,
        )

    app = Starlette(
        routes=[
            *api_routes(),
            *websocket_routes(),
            *widget_asset_routes(),
            *unsubscribe_routes(),
            *ui_routes(),
        ],
        lifespan=lifespan,
        middleware=[Middleware(ApiJsonHeaders, prefix=API_PREFIX)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.runtime = runtime
    app.state.hub = hub
    agents_online: AgentsOnline = hub  # what widget REST asks the hub
    app.state.agents_online = agents_online
    app.state.token_use_stamps = {}
    app.state.login_limiter = SlidingWindow(
        runtime.settings.login_limit, runtime.settings.login_window_seconds
    )
    return app
