"""The two ways inbound mail is turned away (PROTOCOLS.md P4).

Both carry a `reason` meant for logs and the quarantine view. The caller
keeps the raw bytes of a refused or unparseable message aside and goes on
with the next one; neither is ever retried as is.
"""

from __future__ import annotations


class MailError(Exception):
    """Base class: this message will not become a conversation item."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MailRefused(MailError):
    """The message breaks a limit (size, MIME parts, nesting, header block).

    Refused before any expensive work where the limit can be checked on the
    raw bytes; the message itself may be well formed."""


class MailUnparseable(MailError):
    """The bytes are not a mail message at all (no header fields).

    The caller quarantines them; nothing in them is trusted or shown."""
