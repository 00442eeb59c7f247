"""What a parsed inbound email is: plain frozen values, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple


class Address(NamedTuple):
    """One mailbox from an address header: the display name (decoded,
    control characters removed; "" when absent) and the address (the domain
    lower-cased, the local part as sent)."""

    name: str
    address: str


class AutoKind(StrEnum):
    """What kind of sender wrote a message, for the RFC 3834 rules."""

    NONE = "none"  # a person, as far as the headers tell
    AUTO_REPLY = "auto_reply"  # any machine-written mail: out-of-office, notifications
    LIST = "list"  # mailing-list or bulk mail
    BOUNCE = "bounce"  # a delivery report or a mailer daemon


@dataclass(frozen=True)
class Classification:
    """`kind` with the header that decided it (`reason`, e.g.
    "Auto-Submitted: auto-replied"). `may_auto_respond` is False for every
    kind but NONE, and also for a person's mail that asks for no automatic
    answers (Outlook's `X-Auto-Response-Suppress: OOF`)."""

    kind: AutoKind
    reason: str
    may_auto_respond: bool


@dataclass(frozen=True)
class Bounce:
    """A delivery status notification (RFC 3464), for one recipient.

    `status` is the enhanced status code ("5.1.1"), `action` the report's
    action ("failed", "delayed", ...), `recipient` the Final-Recipient
    address, `original_message_id` the Message-ID of the message that
    bounced (without <>). `permanent` is true for a 5.x.x status (or a
    "failed" action without a status): the address is suppressed; a 4.x.x
    report means the delivery is still being retried. Any field the report
    does not carry is None."""

    status: str | None
    action: str | None
    recipient: str | None
    original_message_id: str | None
    permanent: bool
    diagnostic: str | None = None


@dataclass(frozen=True)
class Attachment:
    """A part that is not the body text.

    `filename` is safe to show and to use as a download name: no directory
    parts, no control or bidirectional-override characters, at most 255
    UTF-8 bytes, never empty. `content_type` is the declared type
    (lower-cased; application/octet-stream when absent or malformed): the
    type served is sniffed from `data` later. `content_id` (without <>)
    is what a `cid:` URL in the HTML body refers to; `inline` is true for
    parts meant to be shown in the body (images of a multipart/related)."""

    filename: str
    content_type: str
    data: bytes
    content_id: str | None
    inline: bool


@dataclass(frozen=True)
class ParsedEmail:
    """One inbound message, decoded and made safe to store and show.

    Message ids are normalised without angle brackets. Text fields never
    contain NUL; header-derived text (subject, names) never contains CR, LF
    or other control characters. `text` is the whole plain-text body (from
    the HTML when the message has no plain-text part); `reply_text` is the
    new part only (quoted history and signatures removed; `text` again when
    nothing would be left). `html` is sanitised with the shared allow-list,
    None when the message has no HTML part. `header_bytes` and
    `header_count` describe the top-level header block, `size` the whole
    raw message. `warnings` lists what was repaired on the way (bad
    charsets, broken base64, duplicate headers). `from_address` is None
    when the From field holds no email address (by the rule replies are
    held to, `server.domain.email_address`); `from_problem` then says why,
    for the quarantine."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_name: str
    from_address: str | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str
    date: datetime | None
    text: str
    html: str | None
    reply_text: str
    attachments: tuple[Attachment, ...]
    auto: Classification
    bounce: Bounce | None
    header_bytes: int
    header_count: int
    size: int
    warnings: tuple[str, ...]
    from_problem: str | None = None
