"""REST: uploading and downloading attachments (PROTOCOLS.md P7).

An upload's body is the file itself (not JSON), with `?filename=`; its
type is sniffed from the bytes and its name cleaned, the uploader's
Content-Type is only a hint. The answer is `{"attachment": {id, filename,
content_type, size, image}}`; the id then goes into a message's (or a
canned response's) `attachment_ids`.

A download is authorized on every request and always answered with
`X-Content-Type-Options: nosniff` and `Content-Security-Policy: sandbox`:
even if a browser were made to render the bytes as a page, the page would
run in a sandbox with no origin. Only PNG, JPEG, GIF and WebP are served
`inline` (so `<img>` can show them); everything else, SVG included, is
`attachment`: saved, never rendered.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.responses import Response

from server.actions.attachments import upload_file
from server.domain.actors import Actor, system_actor
from server.domain.errors import NotFound
from server.domain.json_types import JsonObject
from server.domain.sniff import is_inline_image
from server.http.api import Call, Endpoint
from server.http.ratelimit import client_ip, count
from server.http.widget_api import visitor
from server.queries.access import access_inbox
from server.queries.api_shapes import attachment_view
from server.queries.attachments import AttachmentFile, access_attachment, visitor_attachment
from server.queries.reading import read
from server.wire.records import arg, record
from server.wire.schema import Str

log = logging.getLogger(__name__)

# name on app.state -> (uploads, per seconds). A widget session is cheap to
# start, so widget uploads are limited per IP as well as per session.
UPLOAD_LIMITS = {
    "agent_upload_limiter": (120, 60),
    "widget_upload_limiter": (20, 60),
    "widget_upload_ip_limiter": (60, 60),
}


@record
class FilenameQuery:
    filename: str = arg(Str(max_length=1000, min_length=1, description="the file's name (cleaned)"))


RAW_FILE = "the file's bytes; at most THREADLINE_MAX_UPLOAD_BYTES"
DOWNLOAD = "the file's bytes"


def _count(call: Call[object, object], name: str, key: str) -> None:
    count(call.request.app.state, name, UPLOAD_LIMITS[name], [key], call.runtime.clock.now())


async def _upload(call: Call[None, FilenameQuery], actor: Actor, **owner: int) -> JsonObject:
    data = await call.read_raw(call.runtime.settings.max_upload_bytes)
    attachment = await upload_file(
        call.runtime,
        actor,
        data,
        filename=call.query.filename,
        declared_type=call.request.headers.get("content-type"),
        **owner,
    )
    return {"attachment": attachment_view(attachment)}


async def upload_attachment(call: Call[None, FilenameQuery]) -> JsonObject:
    actor, inbox_id = call.actor, call.path["inbox_id"]
    _count(call, "agent_upload_limiter", f"agent:{actor.agent_id}")
    # Who may upload is settled before a byte of the body is read.
    await read(call.runtime, access_inbox, actor, inbox_id)
    return await _upload(call, actor, inbox_id=inbox_id)


async def download_attachment(call: Call[None, None]) -> Response:
    found = await read(call.runtime, access_attachment, call.actor, call.path["attachment_id"])
    return await file_response(call, found)


async def widget_upload_attachment(call: Call[None, FilenameQuery]) -> JsonObject:
    session = await visitor(call)
    ip = client_ip(call.request)
    _count(call, "widget_upload_ip_limiter", f"ip:{ip}")
    _count(call, "widget_upload_limiter", f"session:{session.session_id}")
    actor = system_actor(session.workspace_id)
    return await _upload(call, actor, visitor_session_id=session.session_id)


async def widget_download_attachment(call: Call[None, None]) -> Response:
    session = await visitor(call)
    found = await read(call.runtime, visitor_attachment, session, call.path["attachment_id"])
    return await file_response(call, found)


def content_disposition(found: AttachmentFile) -> str:
    """`inline` for safe raster images only. The name goes in twice: an
    ASCII fallback, and the exact name percent-encoded (RFC 6266)."""
    kind = "inline" if is_inline_image(found.content_type) else "attachment"
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in found.filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(found.filename, safe='')}"


async def file_response(call: Call[object, object], found: AttachmentFile) -> Response:
    etag = f'"{found.sha256}"'
    media_type = found.content_type
    if media_type.startswith("text/"):
        media_type += "; charset=utf-8"
    headers = {
        "Content-Disposition": content_disposition(found),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cross-Origin-Resource-Policy": "same-origin",
        # Revalidated every time, so a revoked reader stops getting it;
        # the ETag spares the bytes when nothing changed.
        "Cache-Control": "private, no-cache",
        "ETag": etag,
    }
    if call.request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    data = await call.runtime.blobs.get(found.storage_key)
    if data is None:
        log.error("attachment %s: its bytes are missing from the blob store", found.id)
        raise NotFound("attachment not found", field="attachment_id")
    return Response(data, media_type=media_type, headers=headers)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/inboxes/{inbox_id}/attachments",
        upload_attachment,
        "Upload a file (raw body, ?filename=) to send with a reply or note in this inbox",
        "attachments",
        query=FilenameQuery,
        raw_body=RAW_FILE,
        status=201,
        idempotency="stored",
    ),
    Endpoint(
        "GET",
        "/attachments/{attachment_id}",
        download_attachment,
        "Download an attachment (inline only for PNG, JPEG, GIF and WebP images)",
        "attachments",
        produces="application/octet-stream",
        response=DOWNLOAD,
    ),
    Endpoint(
        "POST",
        "/widget/attachments",
        widget_upload_attachment,
        "Upload a file (raw body, ?filename=) to send with a visitor message (X-Widget-Session)",
        "widget",
        auth="public",
        query=FilenameQuery,
        raw_body=RAW_FILE,
        status=201,
    ),
    Endpoint(
        "GET",
        "/widget/attachments/{attachment_id}",
        widget_download_attachment,
        "Download an attachment of the visitor's conversation, or its own upload (X-Widget-Session)",
        "widget",
        auth="public",
        produces="application/octet-stream",
        response=DOWNLOAD,
    ),
]
