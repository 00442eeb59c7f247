"""Mail headers as messages and outbox rows store them (JSON), read back
into values where they are used.

`EmailHeaders`: what an outgoing mail is sent with, stored in its
message's `email` (server.actions.outbound_email, for an agent's reply)
or a chat continuity mail's outbox payload (server.actions.
chat_continuity); the delivery worker reads them back to render the
mail. `ContinuityMail`: the rest of that payload. `ReceivedHeaders`: what
replying reads of a received mail's `email` (server.queries.
email_replies).

Pure: no storage, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from server.domain.json_types import JsonValue


@dataclasses.dataclass(frozen=True)
class MailAddress:
    name: str
    address: str


@dataclasses.dataclass(frozen=True)
class EmailHeaders:
    subject: str | None
    to: tuple[MailAddress, ...]
    cc: tuple[MailAddress, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()

    def stored(self) -> dict[str, JsonValue]:
        """As stored in the JSON column (and shown in the message's `email`)."""
        return {
            "subject": self.subject,
            "to": [{"name": a.name, "address": a.address} for a in self.to],
            "cc": [{"name": a.name, "address": a.address} for a in self.cc],
            "in_reply_to": [self.in_reply_to] if self.in_reply_to else [],
            "references": list(self.references),
        }


def addressed_to(addresses: Sequence[str]) -> tuple[MailAddress, ...]:
    """Recipients by address alone (no display name)."""
    return tuple(MailAddress("", a) for a in addresses)


def stored_headers(stored: Mapping[str, Any]) -> EmailHeaders:
    """`EmailHeaders.stored` read back. A recipient without an address
    raises KeyError: the mail can't be built (the worker fails it)."""
    return EmailHeaders(
        subject=stored.get("subject") or None,
        to=_addresses(stored.get("to", [])),
        cc=_addresses(stored.get("cc", [])),
        in_reply_to=(stored.get("in_reply_to") or [None])[0],
        references=tuple(stored.get("references", [])),
    )


def _addresses(stored: list[Mapping[str, Any]]) -> tuple[MailAddress, ...]:
    return tuple(MailAddress(a.get("name", ""), a["address"]) for a in stored)


@dataclasses.dataclass(frozen=True)
class ContinuityMail:
    """What is read back of a chat continuity mail's outbox payload
    (written by server.actions.chat_continuity): the replies it carries,
    its text and headers (`email`, read by `stored_headers` when the mail
    is built), and the Message-ID it went out with once sent."""

    message_ids: tuple[int, ...]
    text: str
    sender_name: str | None
    email: Mapping[str, Any]
    sent_message_id: str | None

    @property
    def address(self) -> str:
        """The address it goes to ("" if it names none)."""
        to = self.email.get("to") or [{}]
        return str(to[0].get("address", ""))


def continuity_mail(payload: Mapping[str, Any]) -> ContinuityMail:
    sent = payload.get("sent_message_id")
    return ContinuityMail(
        message_ids=tuple(int(i) for i in payload.get("message_ids", [])),
        text=str(payload.get("text") or ""),
        sender_name=payload.get("sender_name"),
        email=payload.get("email") or {},
        sent_message_id=str(sent) if sent else None,
    )


@dataclasses.dataclass(frozen=True)
class ReceivedHeaders:
    """What replying reads back of a received mail's stored `email`
    (written by server.actions.inbound_email): addresses as they came,
    None where one had no address, and how threading placed it."""

    subject: str | None
    sender: str | None  # From
    to: tuple[str | None, ...]
    cc: tuple[str | None, ...]
    reply_to: tuple[str | None, ...]
    message_id: str | None
    references: tuple[str, ...]
    thread_reason: str | None
    thread_flags: tuple[str, ...]


def received_headers(stored: Mapping[str, Any]) -> ReceivedHeaders:
    thread = stored.get("thread") or {}
    return ReceivedHeaders(
        subject=stored.get("subject") or None,
        sender=(stored.get("from") or {}).get("address"),
        to=tuple(a.get("address") for a in stored.get("to", [])),
        cc=tuple(a.get("address") for a in stored.get("cc", [])),
        reply_to=tuple(a.get("address") for a in stored.get("reply_to") or []),
        message_id=stored.get("message_id") or None,
        references=tuple(stored.get("references", [])),
        thread_reason=thread.get("reason"),
        thread_flags=tuple(thread.get("flags") or []),
    )
