"""REST: an email's HTML as a page for a sandboxed iframe (PROTOCOLS.md P4,
P7).

`GET /messages/{id}/html` answers a small complete HTML document (see
`server.queries.message_html`) for whoever may read the message. The
page can never run anything or reach anything: its CSP allows no script,
no connection and images only as `data:` (the inline `cid:` images, put
in by the server; remote images are blocked), it is sandboxed (no
scripts, no origin: it can't read the app's cookies or DOM, even opened
outside the frame), and only the app's own pages may frame it. Links
open in a new, unsandboxed tab with no opener and no referrer.
"""

from __future__ import annotations

import base64
import logging

from starlette.responses import Response

from server.http.api import Call, Endpoint
from server.queries.message_html import email_document, message_html
from server.queries.reading import read

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox"
)


async def message_html_handler(call: Call[None, None]) -> Response:
    found = await read(call.runtime, message_html, call.actor, call.path["message_id"])
    images: dict[str, str] = {}
    for image in found.images:
        data = await call.runtime.blobs.get(image.storage_key)
        if data is None:
            log.warning("message %s: inline image bytes missing", call.path["message_id"])
            continue
        encoded = base64.b64encode(data).decode("ascii")
        images[image.content_id] = f"data:{image.content_type};base64,{encoded}"
    return Response(
        email_document(found.html, images),
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-cache",
            "Referrer-Policy": "no-referrer",
        },
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/messages/{message_id}/html",
        message_html_handler,
        "A message's HTML as a page for a sandboxed frame (inline images in, remote ones out)",
        "email",
        produces="text/html",
        response="the sanitised HTML as a complete document",
    ),
]
