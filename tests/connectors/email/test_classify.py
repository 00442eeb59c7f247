"""classify (RFC 3834, PROTOCOLS.md P4) and reading delivery reports."""

from __future__ import annotations

import base64

import pytest

from connectors.email import AutoKind, Bounce, classify, parse_email

PERSON = [("From", "Ann <ann@example.com>"), ("To", "support@acme.example"), ("Subject", "Hi")]

NONE, AUTO, LIST, BOUNCE = AutoKind.NONE, AutoKind.AUTO_REPLY, AutoKind.LIST, AutoKind.BOUNCE

# (extra headers, report-type) -> (kind, reason, may_auto_respond)
CASES: dict[str, tuple[list[tuple[str, str]], str | None, tuple[AutoKind, str, bool]]] = {
    "a person": ([], None, (NONE, "", True)),
    "Auto-Submitted: no": ([("Auto-Submitted", "no")], None, (NONE, "", True)),
    "Auto-Submitted: auto-replied": (
        [("Auto-Submitted", "auto-replied")],
        None,
        (AUTO, "Auto-Submitted: auto-replied", False),
    ),
    "Auto-Submitted with parameters, comment and case": (
        [("AUTO-SUBMITTED", "Auto-Generated (vacation); owner-email=x@example.com")],
        None,
        (AUTO, "Auto-Submitted: auto-generated", False),
    ),
    "Auto-Submitted: auto-notified (any value but no)": (
        [("Auto-Submitted", "auto-notified")],
        None,
        (AUTO, "Auto-Submitted: auto-notified", False),
    ),
    "X-Autoreply": ([("X-Autoreply", "yes")], None, (AUTO, "X-Autoreply header", False)),
    "X-Autorespond": ([("X-Autorespond", "Vacation")], None, (AUTO, "X-Autorespond header", False)),
    "X-Autoreply: no": ([("X-Autoreply", "no")], None, (NONE, "", True)),
    "Precedence: bulk": ([("Precedence", "bulk")], None, (LIST, "Precedence: bulk", False)),
    "Precedence: list": ([("Precedence", "List")], None, (LIST, "Precedence: list", False)),
    "Precedence: junk": ([("Precedence", "junk")], None, (AUTO, "Precedence: junk", False)),
    "Precedence: auto_reply": (
        [("Precedence", "auto_reply")],
        None,
        (AUTO, "Precedence: auto_reply", False),
    ),
    "X-Auto-Response-Suppress: All": (
        [("X-Auto-Response-Suppress", "All")],
        None,
        (AUTO, "X-Auto-Response-Suppress: All", False),
    ),
    "X-Auto-Response-Suppress: OOF on a person's mail": (
        [("X-Auto-Response-Suppress", "OOF, AutoReply")],
        None,
        (NONE, "X-Auto-Response-Suppress asks for no automatic answer", False),
    ),
    "X-Auto-Response-Suppress: DR, RN, NRN on a person's mail": (
        [("X-Auto-Response-Suppress", "DR, RN, NRN")],
        None,
        (NONE, "", True),
    ),
    "List-Id": ([("List-Id", "<users.lists.example.org>")], None, (LIST, "List-Id header", False)),
    "List-Unsubscribe": (
        [("List-Unsubscribe", "<https://example.com/u/1>")],
        None,
        (LIST, "List-Unsubscribe header", False),
    ),
    "empty Return-Path": ([("Return-Path", "<>")], None, (AUTO, "empty Return-Path", False)),
    "empty Return-Path with spaces and a comment": (
        [("Return-Path", " < > (null sender)")],
        None,
        (AUTO, "empty Return-Path", False),
    ),
    "a real Return-Path": ([("Return-Path", "<ann@example.com>")], None, (NONE, "", True)),
    "delivery report": (
        [],
        "delivery-status",
        (BOUNCE, "delivery status notification (multipart/report)", False),
    ),
    "read receipt": (
        [],
        "disposition-notification",
        (AUTO, "read receipt (multipart/report)", False),
    ),
    "another report": ([], "feedback-report", (AUTO, "report (feedback-report)", False)),
    "bounce outranks Auto-Submitted": (
        [("Auto-Submitted", "auto-replied")],
        "delivery-status",
        (BOUNCE, "delivery status notification (multipart/report)", False),
    ),
    "auto-reply outranks list headers": (
        [("Precedence", "bulk"), ("Auto-Submitted", "auto-replied"), ("List-Id", "<l>")],
        None,
        (AUTO, "Auto-Submitted: auto-replied", False),
    ),
    "folded value": (
        [("Auto-Submitted", "\r\n auto-replied")],
        None,
        (AUTO, "Auto-Submitted: auto-replied", False),
    ),
}


@pytest.mark.parametrize(("extra", "report", "expected"), list(CASES.values()), ids=list(CASES))
def test_classify(
    extra: list[tuple[str, str]], report: str | None, expected: tuple[AutoKind, str, bool]
) -> None:
    found = classify([*PERSON, *extra], report_type=report)
    assert (found.kind, found.reason, found.may_auto_respond) == expected


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example.com",
        "Mail Delivery System <MAILER-DAEMON@mx.example.com>",
        "postmaster@example.com",
        "MAILER-DAEMON (Mail Delivery System)",
    ],
)
def test_daemon_senders_are_bounces(sender: str) -> None:
    found = classify([("From", sender)])
    assert found.kind is BOUNCE
    assert not found.may_auto_respond


@pytest.mark.parametrize("sender", ["postmaster-team@example.com", "daemon@example.com", ""])
def test_other_senders_are_not_daemons(sender: str) -> None:
    assert classify([("From", sender)]).kind is NONE


def test_no_headers_at_all_is_a_person() -> None:
    assert classify([]).kind is NONE


# --- Delivery reports ---------------------------------------------------------


def dsn(
    status_blocks: str,
    *,
    original: str = "",
    report_type: str = "delivery-status",
    sender: str = "MAILER-DAEMON@mx.example.com",
) -> bytes:
    text = (
        f"From: {sender}\nTo: bounces@acme.example\n"
        f"Content-Type: multipart/report; report-type={report_type}; boundary=R\n\n"
        "--R\nContent-Type: text/plain\n\nDelivery failed.\n"
        f"--R\nContent-Type: message/delivery-status\n\n{status_blocks}\n"
        f"{original}--R--\n"
    )
    return text.encode()


PER_MESSAGE = "Reporting-MTA: dns; mx.example.com\n\n"


def test_the_first_failed_recipient_is_reported() -> None:
    blocks = PER_MESSAGE + (
        "Final-Recipient: rfc822; ok@example.com\nAction: delivered\nStatus: 2.0.0\n\n"
        "Final-Recipient: rfc822; <Gone@Example.COM>\nAction: failed\nStatus: 5.2.1 (disabled)\n"
    )
    bounce = parse_email(dsn(blocks)).bounce
    assert bounce == Bounce(
        status="5.2.1",
        action="failed",
        recipient="Gone@example.com",
        original_message_id=None,
        permanent=True,
    )


def test_a_failed_action_without_a_status_is_permanent() -> None:
    bounce = parse_email(
        dsn(PER_MESSAGE + "Final-Recipient: rfc822; x@example.com\nAction: failed\n")
    ).bounce
    assert bounce is not None
    assert (bounce.status, bounce.permanent) == (None, True)


def test_the_status_falls_back_to_the_diagnostic_code() -> None:
    blocks = PER_MESSAGE + (
        "Final-Recipient: rfc822; x@example.com\nAction: failed\n"
        "Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\n"
    )
    bounce = parse_email(dsn(blocks)).bounce
    assert bounce is not None
    assert (bounce.status, bounce.permanent, bounce.diagnostic) == (
        "5.2.2",
        True,
        "552 5.2.2 Mailbox full",
    )


def test_a_delayed_report_is_not_permanent() -> None:
    blocks = (
        PER_MESSAGE + "Final-Recipient: rfc822; x@example.com\nAction: delayed\nStatus: 4.2.2\n"
    )
    bounce = parse_email(dsn(blocks)).bounce
    assert bounce is not None and not bounce.permanent


def test_the_original_message_id_comes_from_the_attached_message() -> None:
    original = (
        "--R\nContent-Type: message/rfc822\n\n"
        "Message-ID: <tl.c1.abc@acme.example>\nSubject: hi\n\nbody\n"
    )
    blocks = PER_MESSAGE + "Final-Recipient: rfc822; x@example.com\nAction: failed\nStatus: 5.1.1\n"
    bounce = parse_email(dsn(blocks, original=original)).bounce
    assert bounce is not None and bounce.original_message_id == "tl.c1.abc@acme.example"


def test_the_original_message_id_comes_from_encoded_rfc822_headers() -> None:
    headers = "Message-ID: <tl.c2.def@acme.example>\nSubject: hi\n"
    original = (
        "--R\nContent-Type: text/rfc822-headers\nContent-Transfer-Encoding: base64\n\n"
        + base64.b64encode(headers.encode()).decode()
        + "\n"
    )
    blocks = PER_MESSAGE + "Final-Recipient: rfc822; x@example.com\nAction: failed\nStatus: 5.1.1\n"
    bounce = parse_email(dsn(blocks, original=original)).bounce
    assert bounce is not None and bounce.original_message_id == "tl.c2.def@acme.example"


def test_a_report_with_an_unreadable_status_part_still_bounces() -> None:
    parsed = parse_email(dsn("this is not a field block at all"))
    assert parsed.auto.kind is BOUNCE
    assert parsed.bounce == Bounce(None, None, None, None, permanent=False)


def test_a_report_without_a_status_part_has_no_bounce_details() -> None:
    raw = (
        b"From: x@example.com\nContent-Type: multipart/report; report-type=delivery-status; boundary=R\n\n"
        b"--R\nContent-Type: text/plain\n\nfailed\n--R--\n"
    )
    parsed = parse_email(raw)
    assert parsed.auto.kind is BOUNCE
    assert parsed.bounce is None


def test_a_read_receipt_has_no_bounce() -> None:
    raw = dsn(PER_MESSAGE, report_type="disposition-notification", sender="ann@example.com")
    parsed = parse_email(raw)
    assert parsed.auto.kind is AUTO
    assert parsed.bounce is None
