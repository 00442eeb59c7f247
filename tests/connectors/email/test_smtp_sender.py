"""send_message against a real SMTP server (tests/services/smtp.py): every
way a send ends is a SendOutcome, and the bytes arrive as given."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from connectors.email.smtp_sender import SendOutcome, SmtpAccount, send_message
from tests.services.smtp import Mechanism, SmtpSink, Stage, Tls
from tests.services.tls import TestCA

# Dot-stuffing ("." alone, leading dots), 8-bit UTF-8, CRLF everywhere.
RAW = (
    b"From: Ann <ann@shop.example>\r\n"
    b"To: bob@customer.example\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9?=\r\n"
    b"Message-ID: <t1.abc@shop.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Caf\xc3\xa9 cr\xc3\xa8me\r\n"
    b".\r\n"
    b"..two dots\r\n"
    b".one dot\r\n"
    b"\r\n"
    b"end\r\n"
)
FROM = "ann@shop.example"
TO = "bob@customer.example"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def plain_sink() -> Iterator[SmtpSink]:
    with SmtpSink.start() as sink:
        yield sink


def account_for(sink: SmtpSink, security: Tls = "none", **changes: Any) -> SmtpAccount:
    account = SmtpAccount(
        sink.host,
        sink.port,
        security=security,
        tls_context=sink.client_context() if sink.ca else None,
        timeout=10,
    )
    return dataclasses.replace(account, **changes)


async def send(account: SmtpAccount, recipients: tuple[str, ...] = (TO,)) -> SendOutcome:
    return await send_message(account, raw=RAW, mail_from=FROM, recipients=recipients)


# --- Sent -------------------------------------------------------------------


async def test_plain_delivers_the_exact_bytes(plain_sink: SmtpSink) -> None:
    outcome = await send(account_for(plain_sink))

    assert outcome.status == "sent"
    assert outcome.code == 250
    assert outcome.reason.startswith("250 ")
    [message] = plain_sink.received
    assert message.data == RAW
    assert (message.mail_from, message.rcpt_tos) == (FROM, (TO,))
    # 8-bit body declared; SIZE is the size on the wire (CRLF already).
    assert message.mail_options == (f"SIZE={len(RAW)}", "BODY=8BITMIME")
    assert not message.tls


async def test_starttls_verifies_the_server_certificate(ca: TestCA) -> None:
    with SmtpSink.start(tls="starttls", ca=ca) as sink:
        outcome = await send(account_for(sink, "starttls"))

        assert outcome.status == "sent"
        [message] = sink.received
        assert message.tls
        assert message.data == RAW


async def test_implicit_tls(ca: TestCA) -> None:
    with SmtpSink.start(tls="tls", ca=ca) as sink:
        outcome = await send(account_for(sink, "tls"))

        assert outcome.status == "sent"
        [message] = sink.received
        assert message.tls
        assert message.data == RAW


@pytest.mark.parametrize("tls", ["starttls", "tls"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_login_over_tls(ca: TestCA, tls: Tls, mechanism: Mechanism) -> None:
    with SmtpSink.start(tls=tls, ca=ca, auth=("ann", "s3cret"), mechanisms=(mechanism,)) as sink:
        outcome = await send(account_for(sink, tls, username="ann", password="s3cret"))

        assert outcome.status == "sent"
        [message] = sink.received
        assert message.login == "ann"


async def test_null_reverse_path_for_bounces(plain_sink: SmtpSink) -> None:
    outcome = await send_message(account_for(plain_sink), raw=RAW, mail_from="", recipients=[TO])

    assert outcome.status == "sent"
    assert plain_sink.received[0].mail_from == ""


async def test_non_ascii_address_uses_smtputf8(plain_sink: SmtpSink) -> None:
    outcome = await send(account_for(plain_sink), recipients=("jörg@bücher.example",))

    assert outcome.status == "sent"
    [message] = plain_sink.received
    assert message.rcpt_tos == ("jörg@bücher.example",)
    assert "SMTPUTF8" in message.mail_options


async def test_some_recipients_refused_is_sent_with_the_refused_listed(
    plain_sink: SmtpSink,
) -> None:
    plain_sink.fail_next(
        "rcpt", 550, "5.1.1 <gone@customer.example>: user unknown", address="gone@customer.example"
    )

    outcome = await send(account_for(plain_sink), recipients=(TO, "gone@customer.example"))

    assert outcome.status == "sent"
    assert outcome.code == 250
    assert outcome.refused == ("gone@customer.example",)
    assert "1 of 2 recipients refused" in outcome.reason
    assert (
        "gone@customer.example: 550 5.1.1 <gone@customer.example>: user unknown" in outcome.reason
    )
    [message] = plain_sink.received
    assert message.rcpt_tos == (TO,)


# --- Refused by the server ----------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "code", "text", "status"),
    [
        ("mail", 451, "4.3.0 Try again later", "temporary"),
        ("mail", 550, "5.7.1 Sender rejected", "permanent"),
        ("rcpt", 450, "4.2.1 Mailbox busy", "temporary"),
        ("rcpt", 550, "5.1.1 <bob@customer.example>: user unknown", "permanent"),
        ("data", 452, "4.3.1 Insufficient system storage", "temporary"),
        ("data", 554, "5.7.1 Message rejected as spam", "permanent"),
    ],
)
async def test_replies_decide_the_outcome(
    plain_sink: SmtpSink, stage: Stage, code: int, text: str, status: str
) -> None:
    plain_sink.fail_next(stage, code, text)

    outcome = await send(account_for(plain_sink))

    assert (outcome.status, outcome.code) == (status, code)
    assert f"{code} {text}" in outcome.reason
    assert not outcome.maybe_delivered
    assert plain_sink.received == []


async def test_every_recipient_refused_with_one_temporary_is_temporary(
    plain_sink: SmtpSink,
) -> None:
    plain_sink.fail_next("rcpt", 550, "5.1.1 unknown", address=TO)
    plain_sink.fail_next("rcpt", 451, "4.7.1 greylisted", address="eve@customer.example")

    outcome = await send(account_for(plain_sink), recipients=(TO, "eve@customer.example"))

    assert (outcome.status, outcome.code) == ("temporary", 451)
    assert outcome.refused == (TO, "eve@customer.example")
    assert "every recipient refused" in outcome.reason
    assert plain_sink.received == []


async def test_wrong_password_is_permanent(ca: TestCA) -> None:
    with SmtpSink.start(tls="starttls", ca=ca, auth=("ann", "s3cret")) as sink:
        outcome = await send(account_for(sink, "starttls", username="ann", password="wrong"))

        assert (outcome.status, outcome.code) == ("permanent", 535)
        assert outcome.reason.startswith("authentication failed: 535")
        assert sink.received == []


async def test_temporary_auth_failure_is_temporary(ca: TestCA) -> None:
    with SmtpSink.start(
        tls="starttls", ca=ca, auth=("ann", "s3cret"), mechanisms=("PLAIN",)
    ) as sink:
        sink.fail_next("auth", 454, "4.7.0 Temporary authentication failure")

        outcome = await send(account_for(sink, "starttls", username="ann", password="s3cret"))

        assert (outcome.status, outcome.code) == ("temporary", 454)
        assert "authentication failed" in outcome.reason


# --- Network and TLS trouble ---------------------------------------------------


async def test_starttls_not_offered_is_temporary_and_nothing_goes_in_clear(
    plain_sink: SmtpSink,
) -> None:
    outcome = await send(account_for(plain_sink, "starttls"))

    assert (outcome.status, outcome.code) == ("temporary", None)
    assert "STARTTLS" in outcome.reason
    assert plain_sink.received == []


@pytest.mark.parametrize("tls", ["starttls", "tls"])
async def test_untrusted_certificate_is_a_temporary_tls_failure(ca: TestCA, tls: Tls) -> None:
    with SmtpSink.start(tls=tls, ca=ca) as sink:
        # tls_context=None: the system's trust store, which has never heard
        # of the test CA.
        outcome = await send(account_for(sink, tls, tls_context=None))

        assert (outcome.status, outcome.code) == ("temporary", None)
        assert outcome.reason.startswith("TLS failed")
        assert "certificate verify failed" in outcome.reason
        assert sink.received == []


async def test_connection_refused_is_temporary() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the send: refuses

    outcome = await send(SmtpAccount("127.0.0.1", port, security="none", timeout=10))

    assert outcome == SendOutcome("temporary", None, f"connection refused (127.0.0.1:{port})")


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts TCP connections and never says a word."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    for writer in writers:
        writer.close()
    await server.wait_closed()


async def test_a_server_that_never_greets_times_out(silent_server: int) -> None:
    account = SmtpAccount("127.0.0.1", silent_server, security="none", timeout=0.3)

    outcome = await send(account)

    assert (outcome.status, outcome.code) == ("temporary", None)
    assert outcome.reason.startswith(f"timed out (127.0.0.1:{silent_server}) during connect")


async def test_disconnect_before_data_is_temporary(plain_sink: SmtpSink) -> None:
    plain_sink.drop_next_connection("rcpt")

    outcome = await send(account_for(plain_sink))

    assert (outcome.status, outcome.code) == ("temporary", None)
    assert "connection lost" in outcome.reason
    assert not outcome.maybe_delivered


async def test_disconnect_during_data_may_have_delivered(plain_sink: SmtpSink) -> None:
    plain_sink.drop_next_connection("data")

    outcome = await send(account_for(plain_sink))

    assert (outcome.status, outcome.code) == ("temporary", None)
    assert outcome.maybe_delivered


# --- Bad input ------------------------------------------------------------------


async def test_an_address_that_would_inject_a_command_is_refused_before_connecting(
    plain_sink: SmtpSink,
) -> None:
    outcome = await send(account_for(plain_sink), recipients=("bob@x.example>\r\nRSET",))

    assert outcome.status == "permanent"
    assert outcome.reason.startswith("invalid address")
    assert plain_sink.connections == 0


async def test_no_recipients_is_permanent() -> None:
    outcome = await send(SmtpAccount("127.0.0.1", 1), recipients=())

    assert outcome == SendOutcome("permanent", None, "no recipients")


def test_the_password_stays_out_of_repr() -> None:
    account = SmtpAccount("smtp.example.com", 587, username="ann", password="hunter2-secret")

    assert "hunter2-secret" not in repr(account)
    assert "hunter2-secret" not in str(account)
    assert "ann" in repr(account)
