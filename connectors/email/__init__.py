"""The email channel's pure core: inbound mail parsed, classified and made
safe to store and show (PROTOCOLS.md P4). No I/O and no database here;
transports (SMTP, IMAP, inbound-parse webhooks) hand raw bytes to
`parse_email` and pass the result on."""

from __future__ import annotations

from connectors.email.classify import classify
from connectors.email.errors import MailError, MailRefused, MailUnparseable
from connectors.email.limits import DEFAULT_LIMITS, Limits
from connectors.email.model import (
    Address,
    Attachment,
    AutoKind,
    Bounce,
    Classification,
    ParsedEmail,
)
from connectors.email.parse import parse_email
from connectors.email.render import (
    OutboundAttachment,
    OutboundEmail,
    envelope_recipients,
    render_email,
    text_to_html,
)
from connectors.email.reply_text import extract_reply
from connectors.email.sanitize import sanitize_html
from server.domain.email_address import envelope_address
from server.domain.email_subjects import reply_subject

__all__ = [
    "DEFAULT_LIMITS",
    "Address",
    "Attachment",
    "AutoKind",
    "Bounce",
    "Classification",
    "Limits",
    "MailError",
    "MailRefused",
    "MailUnparseable",
    "OutboundAttachment",
    "OutboundEmail",
    "ParsedEmail",
    "classify",
    "envelope_address",
    "envelope_recipients",
    "extract_reply",
    "parse_email",
    "render_email",
    "reply_subject",
    "sanitize_html",
    "text_to_html",
]
