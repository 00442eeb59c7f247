"""REST: the email inbound-parse endpoint (F2), the record of inbound mail
with its quarantine, and the original of a mail ("show original").

`POST /inboxes/{id}/inbound_email` takes one raw RFC 822 message as the
body (`Content-Type: message/rfc822`), from a mail service's
inbound-parse webhook or a script, authenticated with an admin's API
token: it goes through exactly what the SMTP listener and IMAP polling
use. Originals are served as text, never rendered: `text/plain`,
`nosniff` and a sandbox CSP.
"""

from __future__ import annotations

import logging

from starlette.responses import Response

from server.actions.inbound_email import MailOutcome
from server.domain.errors import NotFound
from server.domain.json_types import JsonObject, JsonValue
from server.email.ingest import ingest_mail
from server.email.intake import MailIntake
from server.http.api import Call, Endpoint
from server.queries.access import access_inbox, require_admin
from server.queries.inbound_mails import (
    Original,
    inbound_mail_original,
    list_inbound_mails,
    message_original,
)
from server.queries.pagination import DEFAULT_LIMIT, MAX_LIMIT
from server.queries.reading import read
from server.wire.records import arg, record
from server.wire.schema import Bool, Id, Int, Str

log = logging.getLogger(__name__)

# PROTOCOLS.md P4: the largest message taken in.
MAX_MAIL_BYTES = 25 * 1024 * 1024
STATUSES = ("stored", "duplicate", "bounce", "quarantined")


@record
class OriginalQuery:
    # The UI's Download link asks for the original as a file.
    download: bool = arg(
        Bool(description="as a file (Content-Disposition: attachment)"), default=False
    )


@record
class InboundMailListQuery:
    status: str | None = arg(Str(max_length=16, choices=STATUSES), default=None)
    inbox_id: int | None = arg(Id, default=None)
    cursor: str | None = arg(Str(max_length=500), default=None)
    limit: int = arg(
        Int(minimum=1, maximum=MAX_LIMIT, description=f"default {DEFAULT_LIMIT}"),
        default=DEFAULT_LIMIT,
    )


def outcome_view(outcome: MailOutcome) -> JsonObject:
    return {
        "id": outcome.inbound_mail_id,
        "status": outcome.status,
        "reason": outcome.reason,
        "message_id": outcome.message_id,
        "conversation_id": outcome.conversation_id,
        "replayed": outcome.replayed,
    }


async def receive_inbound_email(call: Call[None, None]) -> JsonValue:
    actor, inbox_id = call.actor, call.path["inbox_id"]
    # Who may post is settled before a byte of the body is read.
    await read(call.runtime, access_inbox, actor, inbox_id)
    require_admin(actor)
    raw = await call.read_raw(MAX_MAIL_BYTES)
    outcome = await ingest_mail(
        MailIntake.of(call.runtime), inbox_id=inbox_id, raw=raw, source="http"
    )
    return {"inbound_mail": outcome_view(outcome)}


async def list_inbound_mails_handler(call: Call[None, InboundMailListQuery]) -> JsonValue:
    q = call.query
    return await read(
        call.runtime,
        list_inbound_mails,
        call.actor,
        status=q.status,
        inbox_id=q.inbox_id,
        cursor=q.cursor,
        limit=q.limit,
    )


async def inbound_mail_raw(call: Call[None, OriginalQuery]) -> Response:
    found = await read(call.runtime, inbound_mail_original, call.actor, call.path["mail_id"])
    return await _original_response(call, found, f"mail-{call.path['mail_id']}.eml")


async def message_original_handler(call: Call[None, OriginalQuery]) -> Response:
    found = await read(call.runtime, message_original, call.actor, call.path["message_id"])
    return await _original_response(call, found, f"message-{call.path['message_id']}.eml")


async def _original_response(
    call: Call[None, OriginalQuery], found: Original, filename: str
) -> Response:
    if not found.storage_key:  # recorded without its bytes (over the size limit)
        raise NotFound("this mail was not kept: it was over the size limit", field="body")
    data = await call.runtime.blobs.get(found.storage_key)
    if data is None:
        log.error("inbound mail %s: its bytes are missing from the blob store", found.sha256)
        raise NotFound("the original is missing", field="body")
    download = call.query.download
    return Response(
        data,
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'{"attachment" if download else "inline"}; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-cache",
        },
    )


ENDPOINTS = [
    Endpoint(
        "POST",
        "/inboxes/{inbox_id}/inbound_email",
        receive_inbound_email,
        "Take in one raw RFC 822 message (inbound-parse webhook; admins' API tokens)",
        "email",
        raw_body="the message, as sent (message/rfc822); at most 25 MiB",
    ),
    Endpoint(
        "GET",
        "/inbound_mails",
        list_inbound_mails_handler,
        "Inbound mail as recorded, newest first; status=quarantined is the quarantine (admins)",
        "email",
        query=InboundMailListQuery,
    ),
    Endpoint(
        "GET",
        "/inbound_mails/{mail_id}/raw",
        inbound_mail_raw,
        "The raw bytes of a recorded inbound mail, as text (admins)",
        "email",
        produces="text/plain",
        response="the message as received",
        query=OriginalQuery,
    ),
    Endpoint(
        "GET",
        "/messages/{message_id}/original",
        message_original_handler,
        "The original mail a message was made from, as text ('show original')",
        "email",
        produces="text/plain",
        response="the message as received",
        query=OriginalQuery,
    ),
]
