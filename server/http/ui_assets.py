"""The agent inbox web app (F4): plain ES modules, CSS and one HTML page in
`server/ui/`, no build step.

    GET /                 the app (it shows the login form to anonymous users)
    GET /ui/<file>        its modules, styles and icons

The page carries a strict Content-Security-Policy: code and styles only
from this origin and never inline, connections only back to this server
(REST and `/ws/agent`), images from here or the blob: URLs of previews,
and no framing by other sites. Every string a user typed reaches the DOM
through `textContent` (server/ui/dom.js), so the policy is a second line
of defence, not the only one.
"""

from __future__ import annotations

import re
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from server.http.static_files import AssetFiles, answer, ws_origin
from server.runtime import Runtime

UI_DIR = Path(__file__).resolve().parents[1] / "ui"

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# A file name under /ui/: lower-case words, one optional folder, a known
# extension; nothing that could climb out of the folder.
_FILE = re.compile(r"^(?:[a-z0-9_-]+/)?[a-z0-9_-]+\.(?:js|css|svg)$")

# Modules change with each release and are small: revalidate every time
# (a 304 costs one round trip), so an upgrade never mixes old and new files.
CACHE = "no-cache"


def app_csp(ws_origins: list[str]) -> str:
    connect = " ".join(["'self'", *dict.fromkeys(ws_origins)])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self' blob: data:; media-src 'self' blob:; font-src 'self'; "
        f"connect-src {connect}; frame-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def ui_routes(directory: Path = UI_DIR) -> list[BaseRoute]:
    files = AssetFiles(directory)

    async def page(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        url = request.url
        public_scheme, _, rest = runtime.settings.public_origin.partition("://")
        sockets = [ws_origin(url.scheme, url.netloc), ws_origin(public_scheme, rest)]
        headers = {
            "Cache-Control": CACHE,
            "Content-Security-Policy": app_csp([o for o in sockets if o]),
            "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        return answer(request, files.get("index.html"), "text/html; charset=utf-8", headers)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if not _FILE.match(name):
            raise HTTPException(404, "no such file")
        media_type = MEDIA_TYPES[Path(name).suffix]
        headers = {"Cache-Control": CACHE}
        if name.endswith(".svg"):
            headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return answer(request, files.get(name), media_type, headers)

    return [
        Route("/", page, methods=["GET"]),
        Route("/ui/{name:path}", asset, methods=["GET"]),
    ]
