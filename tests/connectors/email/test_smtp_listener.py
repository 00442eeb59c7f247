"""The inbound SMTP listener, on the test's own event loop, driven by real
clients: the stdlib's smtplib (in a thread) and aiosmtplib."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from collections.abc import AsyncIterator

import aiosmtplib
import pytest

from connectors.email.smtp_listener import (
    Envelope,
    ListenerConfig,
    MailSink,
    RecipientCheck,
    SmtpListener,
    Verdict,
)
from tests.services.tls import TestCA

REPLY = "reply+t0k3n@reply.example"
OTHER_REPLY = "reply+other@reply.example"
SENDER = "bob@customer.example"

# Dot-stuffing ("." alone, leading dots), 8-bit UTF-8, CRLF everywhere.
RAW = (
    b"From: Bob <bob@customer.example>\r\n"
    b"To: reply+t0k3n@reply.example\r\n"
    b"Subject: Re: your order\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Merci, \xc3\xa7a marche \xe2\x9c\x93\r\n"
    b".\r\n"
    b"..two dots\r\n"
    b".one dot\r\n"
    b"\r\n"
    b"Bob\r\n"
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA.create(tmp_path_factory.mktemp("ca"))


class Store:
    """A sink that keeps what it gets and answers `verdict` (or raises)."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, bytes]] = []
        self.verdict = Verdict.accepted()
        self.error: Exception | None = None

    async def __call__(self, envelope: Envelope, raw: bytes) -> Verdict:
        if self.error is not None:
            error, self.error = self.error, None  # once: the next message goes through
            raise error
        self.messages.append((envelope, raw))
        return self.verdict


async def ours(address: str) -> bool:
    return address.endswith("@reply.example")


@pytest.fixture
def store() -> Store:
    return Store()


@contextlib.asynccontextmanager
async def listening(
    sink: MailSink, config: ListenerConfig | None = None, check: RecipientCheck = ours
) -> AsyncIterator[SmtpListener]:
    listener = SmtpListener(config or ListenerConfig(port=0), check_recipient=check, sink=sink)
    await listener.start()
    try:
        yield listener
    finally:
        await listener.stop(grace=5)


@contextlib.asynccontextmanager
async def client(listener: SmtpListener) -> AsyncIterator[aiosmtplib.SMTP]:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, start_tls=False, timeout=10)
    await smtp.connect()
    try:
        yield smtp
    finally:
        smtp.close()


@pytest.fixture
async def listener(store: Store) -> AsyncIterator[SmtpListener]:
    async with listening(store) as running:
        yield running


# --- Accepted mail ------------------------------------------------------------------


async def test_the_sink_gets_exactly_the_bytes_sent(listener: SmtpListener, store: Store) -> None:
    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", listener.port, timeout=10) as smtp:
            return smtp.sendmail(SENDER, [REPLY], RAW)

    refused = await asyncio.to_thread(send)

    assert refused == {}
    [(envelope, raw)] = store.messages
    assert raw == RAW
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == (REPLY,)
    host, port = envelope.peer.rsplit(":", 1)
    assert host == "127.0.0.1"
    assert port.isdigit()


async def test_ehlo_advertises_size_8bitmime_smtputf8_and_no_auth(
    listener: SmtpListener,
) -> None:
    async with client(listener) as smtp:
        await smtp.ehlo()

        assert smtp.esmtp_extensions["size"] == str(25 * 1024 * 1024)
        assert smtp.supports_extension("8bitmime")
        assert smtp.supports_extension("smtputf8")
        assert not smtp.supports_extension("auth")
        assert not smtp.supports_extension("starttls")  # no tls_context


async def test_null_reverse_path_is_accepted(listener: SmtpListener, store: Store) -> None:
    async with client(listener) as smtp:
        await smtp.sendmail("", [REPLY], RAW)

    [(envelope, _)] = store.messages
    assert envelope.mail_from == ""


async def test_a_utf8_sender_address(listener: SmtpListener, store: Store) -> None:
    async with client(listener) as smtp:
        await smtp.sendmail("jörg@bücher.example", [REPLY], RAW, mail_options=["SMTPUTF8"])

    [(envelope, _)] = store.messages
    assert envelope.mail_from == "jörg@bücher.example"


async def test_a_sender_address_that_is_not_utf8_is_refused(
    listener: SmtpListener, store: Store
) -> None:
    async with client(listener) as smtp:
        await smtp.ehlo()
        reply = await smtp.execute_command(b"MAIL", b"FROM:<b\xffb@customer.example>")

    assert (reply.code, reply.message) == (553, "5.1.7 Malformed sender address")


async def test_a_recipient_named_twice_is_delivered_once(
    listener: SmtpListener, store: Store
) -> None:
    async with client(listener) as smtp:
        await smtp.sendmail(SENDER, [REPLY, REPLY], RAW)

    [(envelope, _)] = store.messages
    assert envelope.rcpt_tos == (REPLY,)


# --- Recipients -------------------------------------------------------------------------


async def test_an_unknown_recipient_is_refused_and_the_sink_not_called(
    listener: SmtpListener, store: Store
) -> None:
    async with client(listener) as smtp:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await smtp.sendmail(SENDER, ["someone@elsewhere.example"], RAW)

    [error] = refused.value.recipients
    assert error.code == 550
    assert error.message.startswith("5.1.1 ")
    assert store.messages == []


async def test_only_accepted_recipients_reach_the_envelope(
    listener: SmtpListener, store: Store
) -> None:
    async with client(listener) as smtp:
        errors, _ = await smtp.sendmail(
            SENDER, [REPLY, "relay@elsewhere.example", OTHER_REPLY], RAW
        )

    assert list(errors) == ["relay@elsewhere.example"]
    [(envelope, _)] = store.messages
    assert envelope.rcpt_tos == (REPLY, OTHER_REPLY)


async def test_too_many_recipients(store: Store) -> None:
    config = ListenerConfig(port=0, max_recipients=2)
    async with listening(store, config) as listener, client(listener) as smtp:
        await smtp.mail(SENDER)
        await smtp.rcpt("a@reply.example")
        await smtp.rcpt("b@reply.example")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await smtp.rcpt("c@reply.example")
        await smtp.data(RAW)

    assert (refused.value.code, refused.value.message) == (452, "4.5.3 Too many recipients")
    [(envelope, _)] = store.messages
    assert envelope.rcpt_tos == ("a@reply.example", "b@reply.example")


async def test_a_failing_recipient_check_is_temporary(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(address: str) -> bool:
        raise RuntimeError("database unavailable")

    async with listening(store, check=broken) as listener, client(listener) as smtp:
        await smtp.mail(SENDER)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await smtp.rcpt(REPLY)

    assert refused.value.code == 451
    assert refused.value.message.startswith("4.3.0 ")
    assert "database unavailable" in caplog.text


# --- Size ------------------------------------------------------------------------------------


async def test_a_declared_size_over_the_limit_is_refused_at_mail(store: Store) -> None:
    config = ListenerConfig(port=0, max_message_bytes=1000)
    async with listening(store, config) as listener, client(listener) as smtp:
        await smtp.ehlo()
        assert smtp.esmtp_extensions["size"] == "1000"
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.mail(SENDER, options=["SIZE=1001"])

    assert refused.value.code == 552
    assert refused.value.message.startswith("5.3.4 ")
    assert store.messages == []


async def test_data_over_the_limit_is_refused_and_the_next_message_goes_through(
    store: Store,
) -> None:
    config = ListenerConfig(port=0, max_message_bytes=1000)
    async with listening(store, config) as listener, client(listener) as smtp:
        # No SIZE declared: the limit is enforced on what arrives.
        await smtp.mail(SENDER)
        await smtp.rcpt(REPLY)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await smtp.data(RAW + (b"x" * 70 + b"\r\n") * 20)
        await smtp.sendmail(SENDER, [REPLY], RAW)

    assert refused.value.code == 552
    assert refused.value.message.startswith("5.3.4 ")
    assert [raw for _, raw in store.messages] == [RAW]


# --- The sink's verdict ------------------------------------------------------------------------


async def test_a_sink_that_raises_answers_451_and_the_next_message_goes_through(
    listener: SmtpListener, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.error = RuntimeError("disk full")
    async with client(listener) as smtp:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await smtp.sendmail(SENDER, [REPLY], RAW)
        await smtp.sendmail(SENDER, [REPLY], RAW)

    assert refused.value.code == 451
    assert refused.value.message.startswith("4.3.0 ")
    assert "disk full" in caplog.text
    assert any(record.levelno == logging.ERROR for record in caplog.records)
    assert len(store.messages) == 1


@pytest.mark.parametrize(
    ("verdict", "code", "text"),
    [
        (Verdict.rejected("Message refused"), 554, "5.7.1 Message refused"),
        (Verdict.rejected("5.3.4 Too many MIME parts", code=552), 552, "5.3.4 Too many MIME parts"),
        (Verdict.temporary("Try again later"), 451, "4.3.0 Try again later"),
    ],
)
async def test_the_sink_verdict_is_the_reply(
    listener: SmtpListener, store: Store, verdict: Verdict, code: int, text: str
) -> None:
    store.verdict = verdict
    async with client(listener) as smtp:
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await smtp.sendmail(SENDER, [REPLY], RAW)

    assert (refused.value.code, refused.value.message) == (code, text)


def test_verdicts_are_one_line_and_a_real_smtp_code() -> None:
    assert Verdict.accepted().reply == "250 2.0.0 Message accepted"
    with pytest.raises(ValueError, match="one line"):
        Verdict.rejected("spam\r\n250 OK")
    with pytest.raises(ValueError, match="not 354"):
        Verdict(354, "go on")
    with pytest.raises(ValueError, match="5xx"):
        Verdict.rejected("nope", code=451)
    with pytest.raises(ValueError, match="4xx"):
        Verdict.temporary("later", code=550)


class Gate:
    """A sink that holds each message until released."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.done = asyncio.Event()
        self.finished: list[bytes] = []
        self.cancelled = False

    async def __call__(self, envelope: Envelope, raw: bytes) -> Verdict:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished.append(raw)
        self.done.set()
        return Verdict.accepted()


async def test_a_client_hanging_up_does_not_cut_the_sink_off() -> None:
    gate = Gate()
    async with listening(gate) as listener:
        async with client(listener) as smtp:
            sending = asyncio.ensure_future(smtp.sendmail(SENDER, [REPLY], RAW))
            await asyncio.wait_for(gate.started.wait(), 10)
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await sending
        gate.release.set()  # only now, with the client gone
        await asyncio.wait_for(gate.done.wait(), 10)

    assert gate.finished == [RAW]
    assert not gate.cancelled


# --- TLS ---------------------------------------------------------------------------------------


async def test_starttls_with_a_verified_certificate(ca: TestCA, store: Store) -> None:
    config = ListenerConfig(port=0, tls_context=ca.server_context())
    async with listening(store, config) as listener, client(listener) as smtp:
        await smtp.ehlo()
        assert smtp.supports_extension("starttls")
        await smtp.starttls(tls_context=ca.client_context())  # checks chain and host
        await smtp.ehlo()
        assert not smtp.supports_extension("auth")  # not even over TLS
        await smtp.sendmail(SENDER, [REPLY], RAW)

    assert [raw for _, raw in store.messages] == [RAW]


async def test_a_failed_tls_handshake_leaves_the_listener_serving(ca: TestCA, store: Store) -> None:
    config = ListenerConfig(port=0, tls_context=ca.server_context())
    async with listening(store, config) as listener:
        async with client(listener) as smtp:
            with pytest.raises(ssl.SSLCertVerificationError):
                # The system's trust store has never heard of the test CA.
                await smtp.starttls(tls_context=ssl.create_default_context())
        async with client(listener) as smtp:
            await smtp.sendmail(SENDER, [REPLY], RAW)

    assert len(store.messages) == 1


async def test_require_starttls_refuses_mail_before_it(ca: TestCA, store: Store) -> None:
    config = ListenerConfig(port=0, tls_context=ca.server_context(), require_starttls=True)
    async with listening(store, config) as listener, client(listener) as smtp:
        await smtp.ehlo()
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await smtp.mail(SENDER)
        await smtp.starttls(tls_context=ca.client_context())
        await smtp.sendmail(SENDER, [REPLY], RAW)

    assert refused.value.code == 530
    assert refused.value.message.startswith("5.7.0 ")
    assert len(store.messages) == 1


def test_require_starttls_needs_a_certificate() -> None:
    with pytest.raises(ValueError, match="tls_context"):
        ListenerConfig(require_starttls=True)


# --- Stopping ----------------------------------------------------------------------------------


async def test_stop_while_idle_says_goodbye_and_closes(store: Store) -> None:
    listener = SmtpListener(ListenerConfig(port=0), check_recipient=ours, sink=store)
    await listener.start()
    port = listener.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await reader.readline()).startswith(b"220 threadline ")

        await asyncio.wait_for(listener.stop(), 10)

        assert (
            await reader.readline()
            == b"421 4.3.2 Service shutting down, please try again later\r\n"
        )
        assert await reader.read() == b""  # closed
    finally:
        writer.close()
        await writer.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_stop_lets_a_message_in_flight_finish() -> None:
    gate = Gate()
    listener = SmtpListener(ListenerConfig(port=0), check_recipient=ours, sink=gate)
    await listener.start()
    async with client(listener) as smtp:
        sending = asyncio.ensure_future(smtp.sendmail(SENDER, [REPLY], RAW))
        await asyncio.wait_for(gate.started.wait(), 10)
        stopping = asyncio.ensure_future(listener.stop(grace=10))
        await asyncio.sleep(0)  # let stop() close the listening socket
        assert not stopping.done()

        gate.release.set()
        errors, reply = await asyncio.wait_for(sending, 10)
        await asyncio.wait_for(stopping, 10)

    assert errors == {}
    assert reply.startswith("2.0.0 ")
    assert gate.finished == [RAW]


async def test_stop_cuts_off_what_outlasts_the_grace_period() -> None:
    gate = Gate()  # never released
    listener = SmtpListener(ListenerConfig(port=0), check_recipient=ours, sink=gate)
    await listener.start()
    async with client(listener) as smtp:
        sending = asyncio.ensure_future(smtp.sendmail(SENDER, [REPLY], RAW))
        await asyncio.wait_for(gate.started.wait(), 10)

        await asyncio.wait_for(listener.stop(grace=0.2), 10)

        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await asyncio.wait_for(sending, 10)
    assert gate.cancelled
    assert gate.finished == []
