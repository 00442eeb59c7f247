"""One-click unsubscribe (PROTOCOLS.md P4, RFC 8058) at `/u/{token}`.

Mail clients POST `List-Unsubscribe=One-Click` to the link in our
automatic mail's `List-Unsubscribe` header; a person following the link
gets a page that asks first, because link scanners and previews GET every
URL in a mail and must not unsubscribe anyone. No login: the signed token
is the authority, and all it can do is stop automatic mail to the address
it names (agents' replies still go).
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from server.actions.context import perform
from server.actions.email_bounces import do_unsubscribe_email
from server.domain.actors import system_actor
from server.domain.unsubscribe import parse_unsubscribe_token
from server.email.config import mail_identity
from server.runtime import Runtime

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "color:#1f2937}button{font:inherit;padding:.5rem 1rem;border-radius:6px;border:0;"
    "background:#2563eb;color:#fff;cursor:pointer}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def _target(request: Request) -> tuple[int, str] | None:
    runtime: Runtime = request.app.state.runtime
    return parse_unsubscribe_token(
        request.path_params["token"], mail_identity(runtime.settings).keys
    )


def _invalid() -> HTMLResponse:
    return _page("This link is not valid", "<p>Check that the whole link was copied.</p>", 404)


async def confirm(request: Request) -> HTMLResponse:
    target = _target(request)
    if target is None:
        return _invalid()
    address = html.escape(target[1])
    return _page(
        "Unsubscribe?",
        f"<p>Stop automatic emails to <strong>{address}</strong>? Replies from our team"
        " to your own messages will still reach you.</p>"
        '<form method="post"><button type="submit">Unsubscribe</button></form>',
    )


async def unsubscribe(request: Request) -> HTMLResponse:
    target = _target(request)
    if target is None:
        return _invalid()
    workspace_id, address = target
    runtime: Runtime = request.app.state.runtime
    await perform(runtime, system_actor(workspace_id), do_unsubscribe_email, address=address)
    return _page(
        "You are unsubscribed",
        f"<p>No more automatic emails will be sent to <strong>{html.escape(address)}</strong>.</p>",
    )


def unsubscribe_routes() -> list[Route]:
    return [
        Route("/u/{token}", confirm, methods=["GET"]),
        Route("/u/{token}", unsubscribe, methods=["POST"]),
    ]
