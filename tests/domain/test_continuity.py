"""Chat continuity decisions (server.domain.continuity): which unseen
replies are emailed when, to which address, and what the mail says. Pure,
with the time as a parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.domain.continuity import (
    MAX_BATCH,
    STALE_AFTER,
    AddressOption,
    AddressSource,
    Reply,
    ReplyText,
    choose_recipient,
    continuity_delay,
    continuity_subject,
    continuity_text,
    due_batch,
    seen_through,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TEN = timedelta(minutes=10)


def reply(seq: int, minutes_ago: float, message_id: int | None = None) -> Reply:
    return Reply(message_id or 100 + seq, seq, T0 - timedelta(minutes=minutes_ago))


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, None),
        ({"continuity_email_after_minutes": 0}, None),
        ({"continuity_email_after_minutes": -5}, None),
        ({"continuity_email_after_minutes": True}, None),
        ({"continuity_email_after_minutes": "10"}, None),
        ({"continuity_email_after_minutes": 2.5}, None),
        ({"continuity_email_after_minutes": 15}, timedelta(minutes=15)),
    ],
)
def test_the_setting_turns_it_on_and_absent_means_off(
    settings: dict[str, object], expected: timedelta | None
) -> None:
    assert continuity_delay(settings) == expected


def test_nothing_is_due_until_the_oldest_unseen_reply_is_old_enough() -> None:
    young = [reply(2, 9), reply(3, 1)]
    assert due_batch(young, seen_seq=1, emailed=(), now=T0, delay=TEN) == ()
    # Ten minutes exactly is due; the younger reply rides along in one mail.
    batch = due_batch([reply(2, 10), reply(3, 1)], seen_seq=1, emailed=(), now=T0, delay=TEN)
    assert [r.seq for r in batch] == [2, 3]


def test_seen_and_already_emailed_replies_are_left_out() -> None:
    replies = [reply(2, 30), reply(3, 20), reply(5, 15)]
    batch = due_batch(replies, seen_seq=2, emailed={103}, now=T0, delay=TEN)
    assert [r.seq for r in batch] == [5]
    assert due_batch(replies, seen_seq=5, emailed=(), now=T0, delay=TEN) == ()
    assert due_batch(replies, seen_seq=0, emailed={102, 103, 105}, now=T0, delay=TEN) == ()


def test_writing_in_the_chat_counts_as_having_seen_what_came_before() -> None:
    assert seen_through(2, []) == 2
    assert seen_through(2, [4, 1]) == 4
    assert seen_through(7, [4]) == 7


def test_replies_too_late_to_mail_are_never_sent() -> None:
    limit = TEN + STALE_AFTER
    stale = Reply(101, 1, T0 - limit - timedelta(seconds=1))
    edge = Reply(102, 2, T0 - limit)
    assert due_batch([stale], seen_seq=0, emailed=(), now=T0, delay=TEN) == ()
    assert due_batch([stale, edge], seen_seq=0, emailed=(), now=T0, delay=TEN) == (edge,)


def test_one_mail_carries_at_most_max_batch_replies_oldest_first() -> None:
    replies = [reply(seq, 60 - seq) for seq in range(1, MAX_BATCH + 6)]
    batch = due_batch(list(reversed(replies)), seen_seq=0, emailed=(), now=T0, delay=TEN)
    assert [r.seq for r in batch] == list(range(1, MAX_BATCH + 1))
    rest = due_batch(replies, seen_seq=0, emailed={r.message_id for r in batch}, now=T0, delay=TEN)
    assert [r.seq for r in rest] == list(range(MAX_BATCH + 1, MAX_BATCH + 6))


def test_a_reply_from_the_future_of_the_clock_is_not_sent() -> None:
    # created_at after `now` (clock skew between processes): not yet.
    future = Reply(102, 2, T0 + timedelta(seconds=5))
    due = reply(1, 30)
    assert due_batch([due, future], seen_seq=0, emailed=(), now=T0, delay=TEN) == (due,)


def option(address: str, verified: bool, source: AddressSource) -> AddressOption:
    return AddressOption(address, verified, source)


VERIFIED = option("ann@shop.test", True, AddressSource.IDENTITY)
UNVERIFIED_IDENTITY = option("ann@old.test", False, AddressSource.IDENTITY)
TYPED = option("ann@typed.test", False, AddressSource.ATTRIBUTE)


def test_verified_identity_then_unverified_identity_then_the_typed_address() -> None:
    everything = [TYPED, UNVERIFIED_IDENTITY, VERIFIED]
    assert choose_recipient(everything, suppressed=(), verified_only=False) == VERIFIED
    rest = [TYPED, UNVERIFIED_IDENTITY]
    assert choose_recipient(rest, suppressed=(), verified_only=False) == UNVERIFIED_IDENTITY
    assert choose_recipient([TYPED], suppressed=(), verified_only=False) == TYPED
    assert choose_recipient([], suppressed=(), verified_only=False) is None


def test_suppressed_addresses_are_skipped() -> None:
    everything = [TYPED, VERIFIED]
    assert choose_recipient(everything, suppressed={"ann@shop.test"}, verified_only=False) == TYPED
    both = {"ann@shop.test", "ann@typed.test"}
    assert choose_recipient(everything, suppressed=both, verified_only=False) is None


def test_an_inbox_that_requires_verification_mails_verified_addresses_only() -> None:
    assert choose_recipient([TYPED, VERIFIED], suppressed=(), verified_only=True) == VERIFIED
    assert choose_recipient([TYPED, UNVERIFIED_IDENTITY], suppressed=(), verified_only=True) is None


def test_subject_names_the_agent_when_one_answered() -> None:
    ada = ReplyText("Ada", "Hi")
    assert continuity_subject([ada], "Acme") == "New reply from Ada at Acme"
    assert continuity_subject([ada, ada], "Acme") == "2 new replies from Ada at Acme"
    gus = ReplyText("Gus", "Also")
    assert continuity_subject([ada, gus], "Acme") == "2 new replies from Acme"
    assert continuity_subject([ReplyText(None, "beep")], "Acme") == "New reply from Acme"


def test_the_text_quotes_the_replies_in_order_and_says_why_it_came() -> None:
    text = continuity_text(
        [
            ReplyText("Ada", "  It ships today.\n\nTracking below.  "),
            ReplyText("Gus", "", ("label.pdf", "photo.png")),
            ReplyText(None, "Anything else?"),
        ],
        "Acme",
    )
    assert text == (
        "You have 3 new replies in your chat with Acme:\n\n"
        "Ada wrote:\nIt ships today.\n\nTracking below.\n\n"
        "Gus wrote:\nAttached: label.pdf, photo.png\n\n"
        "Acme wrote:\nAnything else?\n\n"
        "Reply to this email to answer: your answer goes to the same conversation.\n"
        "You are getting this email because these replies were not read in the chat"
        " with Acme, and this address was given there."
    )
    one = continuity_text([ReplyText("Ada", "x" * 30_000)], "Acme")
    assert one.startswith("You have a new reply in your chat with Acme:")
    assert "x" * 20_000 + " [...]" in one and "x" * 20_001 not in one
