"""Offline chat continuity (FEATURES.md F2): which unseen chat replies to
email a widget visitor, to which address, and what the mail says. Pure:
time is a parameter, the caller gathers the facts.

The rules, as a demanding support team wants them:

- **What counts.** Only public replies by an agent or a bot. Private notes
  never; automatic system messages (greetings, proactive touchpoints)
  never: they are not answers the visitor is waiting for.
- **Seen.** A reply is seen when the visitor's read receipt
  (`conversations.contact_last_read_seq`) reached it, or when the visitor
  *wrote in the chat* after it (whoever types in the widget had the
  thread in front of them). A message that came back by email does not
  count as having seen the chat: it proves only that the visitor read the
  mail, whose replies are already marked as emailed.
- **When.** Once the oldest unseen, not yet emailed reply is
  `continuity_email_after_minutes` old, every unseen, not yet emailed
  reply goes out in *one* mail, in seq order, the younger ones included
  (a visitor gets one mail per burst of answers, not one per line).
  At most `MAX_BATCH` replies go in one mail; the rest follow in the
  next. A reply goes out at most once: the caller records each batch.
- **Not too late.** A reply that fell due more than `STALE_AFTER` ago is
  left alone. It keeps turning the setting on from flooding every
  visitor who ever left a chat unread, and a mail about a chat from days
  ago (after a long outage of the worker) surprises more than it helps.
- **Where.** The contact's verified email identity first; then an
  unverified email identity (an address the contact wrote from, or one
  an agent added); then the `email` the visitor typed (pre-chat form,
  offline form, an unverified `setUser`), stored as the contact's `email`
  attribute. Suppressed addresses (bounces, unsubscribes) are skipped. An
  inbox that sets `require_verification` uses verified addresses only.

Why a typed, unverified address is used at all: most widget visitors are
anonymous, and the address they typed into the pre-chat or offline form
is exactly where they asked to be answered. The risk is that it is not
theirs (a typo, or someone else's on purpose). What limits the harm: the
mail carries only what *our agents* wrote (never the visitor's own text,
so the feature can't be used to send a stranger words of the visitor's
choosing from our domain), at most one mail per burst of replies, an
unverified claim never gives access to the real owner's history
(PROTOCOLS.md P3), and a bounce suppresses the address. The mail tells
the reader why they got it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from server.domain.values import SenderKind

SETTING = "continuity_email_after_minutes"
STALE_AFTER = timedelta(hours=24)
MAX_BATCH = 20
MAX_REPLY_CHARS = 20_000  # of one reply's text in the mail


# Whose public messages count as replies the visitor waits for.
REPLY_SENDER_KINDS = (SenderKind.AGENT, SenderKind.BOT)
# The external id of a message typed in the widget starts with this
# (server.domain.values.widget_external_id): such a message proves the
# visitor had the chat open.
VISITOR_CHAT_PREFIX = "widget:"


@dataclasses.dataclass(frozen=True)
class Reply:
    """A public reply by an agent or a bot, as the decision sees it."""

    message_id: int
    seq: int
    created_at: datetime


class AddressSource(StrEnum):
    IDENTITY = "identity"  # one of the contact's email identities
    ATTRIBUTE = "attribute"  # the `email` attribute the visitor typed


@dataclasses.dataclass(frozen=True)
class AddressOption:
    """An address the contact might be mailed at; `address` normalized
    (lower case, no display name)."""

    address: str
    verified: bool
    source: AddressSource


@dataclasses.dataclass(frozen=True)
class ReplyText:
    """A reply as the mail shows it: who wrote it (None for a bot or a
    deleted agent), its text and the names of the files it carries."""

    sender: str | None
    text: str
    files: tuple[str, ...] = ()


def continuity_delay(settings: Mapping[str, Any]) -> timedelta | None:
    """How long a reply may stay unseen before it is emailed, from a widget
    inbox's settings; None when the feature is off. There is no default:
    absent (or 0, or anything a validator would refuse) is off, because
    mailing visitors is something an operator turns on knowingly."""
    value = settings.get(SETTING)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return timedelta(minutes=value)


def seen_through(read_seq: int, wrote_in_chat: Iterable[int]) -> int:
    """The highest seq the visitor has seen: its read receipt, or the last
    message it wrote in the chat (`wrote_in_chat`: their seqs), whichever
    is later."""
    return max([read_seq, *wrote_in_chat])


def oldest_due(now: datetime, delay: timedelta, stale_after: timedelta = STALE_AFTER) -> datetime:
    """Replies created before this are never emailed (too late)."""
    return now - delay - stale_after


def due_batch(
    replies: Sequence[Reply],
    *,
    seen_seq: int,
    emailed: Collection[int],
    now: datetime,
    delay: timedelta,
    stale_after: timedelta = STALE_AFTER,
    limit: int = MAX_BATCH,
) -> tuple[Reply, ...]:
    """The replies to email now, oldest first, or () when none is due.

    `replies` are the conversation's public agent and bot replies that may
    matter; `seen_seq` is `seen_through(...)`; `emailed` holds the ids of
    replies already in a continuity mail. See the module docstring."""
    due_at_latest = now - delay
    oldest_allowed = oldest_due(now, delay, stale_after)
    pending = [
        r
        for r in sorted(replies, key=lambda r: r.seq)
        if r.seq > seen_seq
        and r.message_id not in emailed
        and oldest_allowed <= r.created_at <= now
    ]
    if not any(r.created_at <= due_at_latest for r in pending):
        return ()
    return tuple(pending[:limit])


def choose_recipient(
    options: Sequence[AddressOption], *, suppressed: Collection[str], verified_only: bool
) -> AddressOption | None:
    """The address to mail: verified before unverified, an identity before
    the typed attribute, the order given within each; suppressed ones
    skipped; only verified ones when `verified_only`. None: nobody to
    mail, so nothing is sent."""
    ranked = sorted(options, key=lambda o: (not o.verified, o.source is not AddressSource.IDENTITY))
    for option in ranked:
        if verified_only and not option.verified:
            continue
        if option.address in suppressed:
            continue
        return option
    return None


def single_sender(replies: Sequence[ReplyText]) -> str | None:
    """The one agent who wrote every reply, if there is one."""
    names = {r.sender for r in replies}
    if len(names) == 1:
        return next(iter(names))
    return None


def continuity_subject(replies: Sequence[ReplyText], team: str) -> str:
    """ "New reply from Ada at Acme", "3 new replies from Acme", ...: who
    answered, so the mail stands out from a newsletter in a busy inbox."""
    who = single_sender(replies)
    source = f"{who} at {team}" if who else team
    if len(replies) == 1:
        return f"New reply from {source}"
    return f"{len(replies)} new replies from {source}"


def continuity_text(replies: Sequence[ReplyText], team: str) -> str:
    """The mail's plain text: the replies in order, each under its
    author's name, then how to answer and why this mail came. Only what
    agents wrote is quoted (see the module docstring)."""
    count = "a new reply" if len(replies) == 1 else f"{len(replies)} new replies"
    parts = [f"You have {count} in your chat with {team}:"]
    for reply in replies:
        text = reply.text.strip()
        if len(text) > MAX_REPLY_CHARS:
            text = text[:MAX_REPLY_CHARS].rstrip() + " [...]"
        lines = [f"{reply.sender or team} wrote:"]
        if text:
            lines.append(text)
        if reply.files:
            lines.append("Attached: " + ", ".join(reply.files))
        parts.append("\n".join(lines))
    parts.append(
        "Reply to this email to answer: your answer goes to the same conversation.\n"
        f"You are getting this email because these replies were not read in the chat"
        f" with {team}, and this address was given there."
    )
    return "\n\n".join(parts)
