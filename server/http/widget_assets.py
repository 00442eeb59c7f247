"""The chat widget's files (F8): the loader a site embeds with one script
tag, and the chat page that runs in the loader's iframe.

    GET /widget/loader.js     the launcher; any site may load it
    GET /widget/frame         the chat page, ?inbox=PUBLIC_TOKEN&origin=PAGE
    GET /widget/app/*.js      the chat app, as ES modules (app/main.js first)
    GET /widget/frame.css

The files live in the repository's top-level `widget/` folder (plain
JavaScript, no build step: the browser loads the modules as they are). Each answer carries an ETag and a short cache
lifetime; a client that names the current ETag gets 304. Clients that
accept gzip get the bytes compressed once, at level 9 (what BENCHMARKS.md
B8 budgets).

The chat page is served with a strict Content-Security-Policy: scripts and
styles only from this origin (no inline code), connections only back to
this server (REST and `/ws/widget`), and `frame-ancestors` limited to the
inbox's `allowed_domains` (any site when it has none). That is why the
page route looks the inbox up: an unknown token is a 404.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from server.domain.widget_identity import allowed_origins
from server.http.static_files import AssetFiles, answer, ws_origin
from server.queries.reading import read
from server.queries.visitors import widget_inbox_by_token
from server.runtime import Runtime

# server/http/widget_assets.py -> the repository root (an editable install
# runs from the checkout, so the folder sits next to the package).
WIDGET_DIR = Path(__file__).resolve().parents[2] / "widget"

JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
HTML = "text/html; charset=utf-8"

# Sites embed the loader by a fixed URL: a short lifetime lets a new
# version reach them within minutes; the ETag makes revalidation cheap.
ASSET_CACHE = "public, max-age=300"
# The chat page carries its inbox's frame-ancestors: always revalidated, so
# a change to allowed_domains applies at once.
PAGE_CACHE = "no-cache"


def app_modules(directory: Path = WIDGET_DIR) -> list[str]:
    """The chat app's modules, as paths relative to the widget folder."""
    return sorted(p.relative_to(directory).as_posix() for p in (directory / "app").rglob("*.js"))


def assets(directory: Path) -> dict[str, tuple[str, str]]:
    """(file, content type) by path: the loader, the styles and every module
    of the chat app (what is in the folder when the server starts)."""
    files = {"loader.js": JS, "frame.css": CSS} | dict.fromkeys(app_modules(directory), JS)
    return {f"/widget/{name}": (name, media_type) for name, media_type in files.items()}


# An origin as it may appear in a CSP source list: scheme, host, port.
_CSP_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")


def frame_ancestors(allowed_domains: object) -> str:
    """The CSP frame-ancestors sources for an inbox's `allowed_domains`:
    `*` when it names none; otherwise those origins (entries that are not
    a plain scheme://host[:port] are dropped) and Threadline itself."""
    origins = allowed_origins(allowed_domains)
    if not origins:
        return "*"
    kept = [o for o in dict.fromkeys(origins) if _CSP_ORIGIN.match(o)]
    return " ".join(["'self'", *kept])


def frame_csp(allowed_domains: object, ws_origins: list[str]) -> str:
    connect = " ".join(["'self'", *dict.fromkeys(ws_origins)])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self' blob: data:; "
        f"connect-src {connect}; media-src 'self' blob:; "
        "base-uri 'none'; form-action 'none'; "
        f"frame-ancestors {frame_ancestors(allowed_domains)}"
    )


def widget_asset_routes(directory: Path = WIDGET_DIR) -> list[BaseRoute]:
    files = AssetFiles(directory)
    served = assets(directory)

    async def asset(request: Request) -> Response:
        name, media_type = served[request.url.path]
        headers = {"Cache-Control": ASSET_CACHE}
        if name == "loader.js":
            # Loaded by any site, including ones that isolate themselves (COEP).
            headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        return answer(request, files.get(name), media_type, headers)

    async def frame(request: Request) -> Response:
        token = request.query_params.get("inbox", "")
        runtime: Runtime = request.app.state.runtime
        inbox = None
        if 0 < len(token) <= 64:
            inbox = await read(runtime, widget_inbox_by_token, token)
        if inbox is None:
            raise HTTPException(404, "no widget inbox has this token")
        url = request.url
        public_scheme, _, rest = runtime.settings.public_origin.partition("://")
        sockets = [ws_origin(url.scheme, url.netloc), ws_origin(public_scheme, rest)]
        csp = frame_csp(inbox.settings.get("allowed_domains"), [o for o in sockets if o])
        page = files.get("frame.html")
        # The ETag covers the policy too: a new allowed_domains is a new page.
        tagged = dataclasses.replace(
            page, etag=hashlib.sha256(f"{page.etag} {csp}".encode()).hexdigest()[:20]
        )
        headers = {
            "Cache-Control": PAGE_CACHE,
            "Content-Security-Policy": csp,
            "Referrer-Policy": "no-referrer",
        }
        return answer(request, tagged, HTML, headers)

    routes: list[BaseRoute] = [Route(path, asset, methods=["GET"]) for path in served]
    routes.append(Route("/widget/frame", frame, methods=["GET"]))
    return routes
