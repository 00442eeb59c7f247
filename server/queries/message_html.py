"""An email's HTML as a page of its own (PROTOCOLS.md P4, P7): the inbox
shows it in a sandboxed iframe, never in the app's own DOM.

`message_html` finds the message for whoever may read it (a message the
caller may not read is as missing as one that does not exist) and the
inline images its HTML cites by `cid:`: only raster images (PNG, JPEG,
GIF, WebP) the message itself carries, under a per-image and a total
size cap. `email_document` builds the page: the stored HTML is sanitised
again (it was sanitised when the mail came in; this is defence in
depth), `cid:` images become `data:` URLs of those bytes, every other
image source is dropped (remote images would tell the sender the mail was
read; the page's CSP blocks them too), and links open in a new tab with
no opener and no referrer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import nh3
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.actors import Actor
from server.domain.errors import NotFound
from server.domain.html_policy import LINK_REL, URL_SCHEMES, url_filter
from server.domain.sniff import INLINE_IMAGE_TYPES
from server.queries.access import access_message
from server.queries.records import load
from server.sanitize import sanitize_html
from server.storage import tables as t

# The largest inline image put into the page, and the most bytes of inline
# images one page carries (a data: URL is a third larger than its bytes).
MAX_INLINE_IMAGE_BYTES = 2 * 1024 * 1024
MAX_INLINE_TOTAL_BYTES = 8 * 1024 * 1024

# The page's look: readable mail on white, whatever the mail's width.
_STYLE = """
:root { color-scheme: light; }
html { background: #fff; }
body { margin: 12px 14px; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; color: #1d2330; overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; }
table { max-width: 100%; }
pre { white-space: pre-wrap; }
blockquote { margin: 0 0 0 4px; padding-left: 10px; border-left: 3px solid #d6dbe6;
  color: #4b5565; }
a { color: #2f5bea; }
""".strip()


@dataclasses.dataclass(frozen=True)
class InlineImage:
    """An image the HTML may cite as `cid:<content_id>`."""

    content_id: str
    storage_key: str
    content_type: str
    size: int


@dataclasses.dataclass(frozen=True, slots=True)
class _StoredFile:
    """Where an attachment's bytes are, what they are and how many."""

    id: int
    storage_key: str
    content_type: str
    size: int


@dataclasses.dataclass(frozen=True)
class MessageHtml:
    html: str
    images: tuple[InlineImage, ...]


async def message_html(conn: AsyncConnection, actor: Actor, message_id: int) -> MessageHtml:
    """The stored (sanitised) HTML of a message the caller may read, with
    the inline images to put into it (within the size caps)."""
    row = await access_message(conn, actor, message_id)
    if not row.html:
        raise NotFound("this message has no HTML", field="message_id")
    inline = (row.email or {}).get("inline") or {}
    wanted = {
        attachment_id: content_id
        for content_id, attachment_id in inline.items()
        if isinstance(content_id, str) and isinstance(attachment_id, int)
    }
    images: list[InlineImage] = []
    if wanted:
        a = t.attachments.c
        stmt: sa.Select[Any] = sa.select(a.id, a.storage_key, a.content_type, a.size).where(
            a.id.in_(list(wanted)),
            a.message_id == message_id,
            a.workspace_id == actor.workspace_id,
        )
        files = {f.id: f for f in (load(_StoredFile, r) for r in await conn.execute(stmt))}
        total = 0
        # In the mail's order (attachment ids are given in it), which is
        # nearly always the order the HTML shows them in: the first images
        # are the ones kept under the cap.
        for attachment_id in sorted(wanted):
            content_id, f = wanted[attachment_id], files.get(attachment_id)
            if f is None or f.content_type not in INLINE_IMAGE_TYPES:
                continue
            if f.size > MAX_INLINE_IMAGE_BYTES or total + f.size > MAX_INLINE_TOTAL_BYTES:
                continue
            total += f.size
            images.append(InlineImage(content_id, f.storage_key, f.content_type, f.size))
    return MessageHtml(row.html, tuple(images))


def _content_id(src: str) -> str:
    """The Content-ID a `cid:` URL names (RFC 2392: URL-encoded, no <>)."""
    return unquote(src[4:]).strip().strip("<>")


def email_document(html: str, images: Mapping[str, str]) -> str:
    """A complete page for the sandboxed frame: `html` sanitised again,
    `cid:` image sources replaced by `images[content_id]` (a `data:` URL)
    or dropped, every other image source dropped, links in new tabs."""
    lowered = {k.lower(): v for k, v in images.items()}

    def rewrite(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            if value[:4].lower() != "cid:":
                return None  # remote (or anything else): never fetched
            content_id = _content_id(value)
            return images.get(content_id) or lowered.get(content_id.lower())
        return url_filter(tag, attribute, value)

    # The first pass is the stored HTML's own allow-list, again; the second
    # only rewrites what that pass kept. A value `rewrite` returns is not
    # checked against URL_SCHEMES (it is how data: gets in), so only image
    # sources are rewritten, and only to the data: URLs made from our bytes.
    body = nh3.clean(
        sanitize_html(html),
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
        attribute_filter=rewrite,
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
    return (
        "<!doctype html>\n"
        '<html><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        f"<style>{_STYLE}</style></head>\n"
        f"<body>{body}</body></html>\n"
    )
