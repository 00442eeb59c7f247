"""IMAP polling against a real IMAP server (pymap, started per test).

Mail arrives the way it does from the server's point of view: an APPEND on
another connection. The store is an in-memory stand-in whose "transaction"
appends the message and moves the checkpoint together, and which can be
told to crash just before or just after that commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from connectors.email.imap_poller import (
    Checkpoint,
    ImapAccount,
    ImapAuthError,
    ImapIngestError,
    ImapPoller,
    ImapTlsError,
    PollResult,
    Security,
    poll_once,
)
from tests.services.imap import PASSWORD, USER, ImapProxy, ImapServer
from tests.services.tls import TestCA

WAIT = 15.0  # upper bound for conditions that should hold within milliseconds


class Crash(Exception):
    """The process "dies" here."""


class MemoryStore:
    """An ImapStore. `crash_before` / `crash_after`: UIDs whose ingest raises
    once, before or after committing."""

    def __init__(self, checkpoint: Checkpoint | None = None) -> None:
        self.messages: list[tuple[int, int, bytes]] = []  # (uidvalidity, uid, raw)
        self.too_big: list[tuple[int, int, int]] = []  # (uidvalidity, uid, size)
        self.committed = checkpoint
        self.checkpoint_reads = 0
        self.crash_before: set[int] = set()
        self.crash_after: set[int] = set()
        self._changed = asyncio.Event()

    async def checkpoint(self) -> Checkpoint | None:
        self.checkpoint_reads += 1
        return self.committed

    async def ingest(self, raw: bytes, *, uidvalidity: int, uid: int) -> None:
        if uid in self.crash_before:
            self.crash_before.discard(uid)
            raise Crash(f"died after fetching {uid}, before committing")
        self.messages.append((uidvalidity, uid, raw))  # one transaction:
        self.committed = Checkpoint(uidvalidity, uid)  # both or neither
        self._changed.set()
        if uid in self.crash_after:
            self.crash_after.discard(uid)
            raise Crash(f"died after committing {uid}")

    async def oversized(self, *, uidvalidity: int, uid: int, size: int) -> None:
        self.too_big.append((uidvalidity, uid, size))
        self.committed = Checkpoint(uidvalidity, uid)

    @property
    def uids(self) -> list[int]:
        return [uid for _, uid, _ in self.messages]

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.messages) < count:
                self._changed.clear()
                await self._changed.wait()


def message(n: int, extra: bytes = b"") -> bytes:
    """A CRLF message with 8-bit bytes, IMAP syntax in its body and no final
    newline: any reframing by the client would show."""
    return (
        (
            b"From: Ann =?utf-8?q?Sch=C3=B6n?= <ann@example.com>\r\n"
            b"To: support@example.com\r\n"
            b"Subject: Caf\xc3\xa9 n\xb0 %d\r\n"
            b"Message-ID: <%d@example.com>\r\n"
            b"Content-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n"
            b"\r\n"
            b"Caf\xe9 cr\xe8me \xff\xfe\x80\r\n"
            b"* 3 EXISTS\r\n"
            b"A1 OK not a reply {5}\r\n"
            b")\r\n"
            b".\r\n"
            b"   \r\n" % (n, n)
        )
        + extra
        + b"no final newline"
    )


def account(
    port: int,
    *,
    security: Security = "none",
    ca: TestCA | None = None,
    password: str = PASSWORD,
    mailbox: str = "INBOX",
) -> ImapAccount:
    """The test user's account; TLS modes name the host as the certificate does."""
    return ImapAccount(
        host="127.0.0.1" if security == "none" else "localhost",
        port=port,
        username=USER,
        password=password,
        security=security,
        mailbox=mailbox,
        timeout=WAIT,
        tls_context=ca.client_context() if ca is not None else None,
    )


# --- Fixtures -------------------------------------------------------------------


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA.create(tmp_path / "ca")


@pytest.fixture
def server() -> Iterator[ImapServer]:
    """pymap speaking plain text (the "none" mode, and behind the TLS proxy)."""
    with ImapServer.start() as running:
        yield running


@pytest.fixture
def starttls_server(ca: TestCA) -> Iterator[ImapServer]:
    """pymap offering STARTTLS with the test CA's certificate."""
    with ImapServer.start(ca) as running:
        yield running


@pytest.fixture
async def imaps(server: ImapServer, ca: TestCA) -> AsyncIterator[ImapProxy]:
    """Implicit TLS (IMAPS) in front of `server`."""
    async with ImapProxy.start(server.port, ca=ca) as proxy:
        yield proxy


@contextlib.asynccontextmanager
async def running(poller: ImapPoller) -> AsyncIterator[asyncio.Event]:
    """Run `poller` in a task; on exit set `stop` and require a prompt end."""
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        async with asyncio.timeout(WAIT):
            await task


# --- poll_once ------------------------------------------------------------------


async def test_poll_over_tls_ingests_in_uid_order_with_exact_bytes(
    server: ImapServer, imaps: ImapProxy, ca: TestCA
) -> None:
    raws = [message(1), message(2, b"x" * 70_000), message(3)]
    uids = [await server.append(raw) for raw in raws]
    store = MemoryStore()
    imaps_account = account(imaps.port, security="tls", ca=ca)

    first = await poll_once(imaps_account, store)

    uidvalidity = first.uidvalidity
    assert first == PollResult(
        ingested=3, uidvalidity=uidvalidity, last_uid=uids[2], idle_supported=True
    )
    assert store.messages == [(uidvalidity, uid, raw) for uid, raw in zip(uids, raws, strict=True)]
    assert store.committed == Checkpoint(uidvalidity, uids[2])

    second = await poll_once(imaps_account, store)
    assert (second.ingested, second.last_uid) == (0, uids[2])

    later = message(4)
    later_uid = await server.append(later)
    third = await poll_once(imaps_account, store)
    assert (third.ingested, third.last_uid) == (1, later_uid)
    assert store.messages[-1] == (uidvalidity, later_uid, later)
    assert len(store.messages) == 4


async def test_tls_refuses_a_certificate_the_client_does_not_trust(
    server: ImapServer, imaps: ImapProxy
) -> None:
    await server.append(message(1))
    store = MemoryStore()
    system_trust = account(imaps.port, security="tls")  # the test CA is not in it

    with pytest.raises(ssl.SSLCertVerificationError):
        await poll_once(system_trust, store)
    assert store.messages == []


async def test_starttls_upgrades_then_logs_in(starttls_server: ImapServer, ca: TestCA) -> None:
    raw = message(1)
    uid = await starttls_server.append(raw)
    store = MemoryStore()

    result = await poll_once(account(starttls_server.port, security="starttls", ca=ca), store)

    assert result.ingested == 1
    assert store.messages == [(result.uidvalidity, uid, raw)]


async def test_starttls_checks_the_certificate(starttls_server: ImapServer, tmp_path: Path) -> None:
    # pymap lets loopback clients LOGIN in clear, so a refused login cannot
    # show that TLS happened; a certificate the client rejects can.
    await starttls_server.append(message(1))
    other_ca = TestCA.create(tmp_path / "other-ca")
    store = MemoryStore()

    with pytest.raises(ssl.SSLCertVerificationError):
        await poll_once(account(starttls_server.port, security="starttls", ca=other_ca), store)
    assert store.messages == []


async def test_starttls_is_required_not_optional(server: ImapServer, ca: TestCA) -> None:
    await server.append(message(1))
    store = MemoryStore()

    with pytest.raises(ImapTlsError, match="does not offer STARTTLS"):
        await poll_once(account(server.port, security="starttls", ca=ca), store)
    assert store.messages == []


async def test_wrong_password_is_an_authentication_error(server: ImapServer) -> None:
    await server.append(message(1))
    store = MemoryStore()

    with pytest.raises(ImapAuthError, match="authentication failed") as caught:
        await poll_once(account(server.port, password="not the password"), store)
    assert "not the password" not in str(caught.value)
    assert store.messages == []
    assert store.checkpoint_reads == 0


async def test_messages_are_read_without_setting_seen(server: ImapServer) -> None:
    uid = await server.append(message(1))

    await poll_once(account(server.port), MemoryStore())

    assert b"\\Seen" not in await server.flags(uid)


async def test_a_round_takes_at_most_batch_messages(server: ImapServer) -> None:
    uids = [await server.append(message(n)) for n in range(3)]
    store = MemoryStore()

    first = await poll_once(account(server.port), store, batch=2)
    assert (first.ingested, first.more) == (2, True)
    second = await poll_once(account(server.port), store, batch=2)
    assert (second.ingested, second.more) == (1, False)
    assert store.uids == uids


async def test_an_oversized_message_is_recorded_not_downloaded_nor_skipped(
    server: ImapServer,
) -> None:
    small, big, small_again = message(1), message(2, b"y" * 5000), message(3)
    uids = [await server.append(raw) for raw in (small, big, small_again)]
    store = MemoryStore()

    result = await poll_once(account(server.port), store, max_message_bytes=len(small) + 100)

    assert (result.ingested, result.oversized, result.last_uid) == (2, 1, uids[2])
    assert store.uids == [uids[0], uids[2]]
    assert store.too_big == [(result.uidvalidity, uids[1], len(big))]


# --- Crashes: nothing lost, nothing twice ----------------------------------------


async def test_crash_between_fetch_and_commit_refetches_that_message(
    server: ImapServer,
) -> None:
    raws = [message(n) for n in range(3)]
    uids = [await server.append(raw) for raw in raws]
    store = MemoryStore()
    store.crash_before.add(uids[1])

    with pytest.raises(ImapIngestError) as caught:
        await poll_once(account(server.port), store)
    assert caught.value.uid == uids[1]
    assert isinstance(caught.value.__cause__, Crash)
    assert store.uids == [uids[0]]
    assert store.committed is not None and store.committed.last_uid == uids[0]

    result = await poll_once(account(server.port), store)

    assert result.ingested == 2
    assert [raw for _, _, raw in store.messages] == raws
    assert store.uids == uids  # each once


async def test_crash_after_commit_does_not_ingest_again(server: ImapServer) -> None:
    uids = [await server.append(message(n)) for n in range(3)]
    store = MemoryStore()
    store.crash_after.add(uids[1])

    with pytest.raises(ImapIngestError):
        await poll_once(account(server.port), store)
    assert store.uids == uids[:2]

    result = await poll_once(account(server.port), store)

    assert result.ingested == 1
    assert store.uids == uids


async def test_the_checkpoint_is_read_afresh_every_round(server: ImapServer) -> None:
    uids = [await server.append(message(n)) for n in range(2)]
    store = MemoryStore()
    await poll_once(account(server.port), store, batch=1)
    assert store.uids == uids[:1]

    # Another worker ingested the second message meanwhile.
    assert store.committed is not None
    store.committed = Checkpoint(store.committed.uidvalidity, uids[1])
    result = await poll_once(account(server.port), store)

    assert result.ingested == 0
    assert store.uids == uids[:1]
    assert store.checkpoint_reads == 2


# --- UIDVALIDITY ------------------------------------------------------------------


async def test_another_uidvalidity_reads_from_the_start(server: ImapServer) -> None:
    uids = [await server.append(message(n)) for n in range(2)]
    store = MemoryStore(Checkpoint(uidvalidity=1, last_uid=uids[-1] + 100))

    result = await poll_once(account(server.port), store)

    assert result.ingested == 2
    assert store.uids == uids
    assert store.committed == Checkpoint(result.uidvalidity, uids[-1])


async def test_a_recreated_mailbox_is_read_again(server: ImapServer) -> None:
    await server.create_mailbox("Support")
    old = [await server.append(message(n), "Support") for n in range(3)]
    store = MemoryStore()
    support = account(server.port, mailbox="Support")
    before = await poll_once(support, store)
    assert store.uids == old

    await server.delete_mailbox("Support")
    await server.create_mailbox("Support")
    new_uid = await server.append(message(9), "Support")
    after = await poll_once(support, store)

    # UIDs start over: without the UIDVALIDITY check this one (<= the old
    # checkpoint) would never be read.
    assert after.uidvalidity != before.uidvalidity
    assert new_uid <= old[-1]
    assert after.ingested == 1
    assert store.messages[-1] == (after.uidvalidity, new_uid, message(9))


# --- ImapPoller.run -----------------------------------------------------------------


async def test_run_with_idle_ingests_new_mail_without_waiting_for_the_interval(
    server: ImapServer,
) -> None:
    errors: list[Exception] = []
    store = MemoryStore()
    await server.append(message(1))
    poller = ImapPoller(account(server.port), store, poll_interval=3600, on_error=errors.append)

    async with running(poller):
        await store.wait_for(1)  # the first round is done; the poller idles
        uid = await server.append(message(2))
        await store.wait_for(2)  # woken by the server, an hour before its interval

    assert store.uids[-1] == uid
    assert errors == []


async def test_run_without_idle_polls_every_interval(server: ImapServer) -> None:
    def hide_idle(data: bytes) -> bytes:
        return data.replace(b" IDLE", b"")

    store = MemoryStore()
    async with ImapProxy.start(server.port, rewrite=hide_idle) as no_idle:
        poller = ImapPoller(account(no_idle.port), store, poll_interval=0.05)
        result = await poll_once(account(no_idle.port), MemoryStore())
        assert result.idle_supported is False

        async with running(poller):
            await server.append(message(1))
            await store.wait_for(1)
            await server.append(message(2))
            await store.wait_for(2)


async def test_run_survives_the_server_going_away(server: ImapServer) -> None:
    errors: list[Exception] = []
    failed = asyncio.Event()

    def on_error(exc: Exception) -> None:
        errors.append(exc)
        failed.set()

    store = MemoryStore()
    await server.append(message(1))
    poller = ImapPoller(
        account(server.port),
        store,
        poll_interval=3600,
        on_error=on_error,
        backoff_initial=0.05,
        backoff_max=0.2,
    )

    async with running(poller):
        await store.wait_for(1)
        await asyncio.to_thread(server.stop)
        async with asyncio.timeout(WAIT):
            await failed.wait()
        await asyncio.to_thread(server.start_again)  # empty, another UIDVALIDITY
        uid = await server.append(message(2))
        await store.wait_for(2)

    assert store.messages[-1][1:] == (uid, message(2))
    assert store.messages[0][0] != store.messages[1][0]


async def test_stop_ends_run_while_it_waits_to_reconnect() -> None:
    errors: list[Exception] = []
    failed = asyncio.Event()

    def on_error(exc: Exception) -> None:
        errors.append(exc)
        failed.set()

    with ImapServer.start() as gone:
        port = gone.port
    poller = ImapPoller(account(port), MemoryStore(), backoff_initial=3600, on_error=on_error)

    async with running(poller):
        async with asyncio.timeout(WAIT):
            await failed.wait()  # refused, now backing off for up to an hour
    assert isinstance(errors[0], ConnectionRefusedError)


# --- Scripted servers: what pymap will not do -------------------------------------


class ScriptedServer:
    """A fake IMAP server answering from a script, recording what it got."""

    def __init__(self, capabilities: bytes, starttls_reply: bytes = b"") -> None:
        self.capabilities = capabilities
        self.starttls_reply = starttls_reply
        self.received: list[bytes] = []
        self._connections: list[tuple[asyncio.Task[None], asyncio.StreamWriter]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.append((task, writer))
        writer.write(b"* OK [CAPABILITY %s] scripted\r\n" % self.capabilities)
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                self.received.append(line)
                tag, _, rest = line.partition(b" ")
                command = rest.split()[0].upper() if rest.split() else b""
                if command == b"CAPABILITY":
                    writer.write(b"* CAPABILITY %s\r\n%s OK done\r\n" % (self.capabilities, tag))
                elif command == b"STARTTLS":
                    writer.write(b"%s OK begin TLS\r\n%s" % (tag, self.starttls_reply))
                else:
                    writer.write(b"%s BAD not scripted\r\n" % tag)
                await writer.drain()
        writer.close()

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[int]:
        server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        async with server:
            yield int(server.sockets[0].getsockname()[1])
            # End the connections ourselves: a handler still reading when
            # the loop closes gets cancelled, which asyncio logs as an error.
            for _, writer in self._connections:
                writer.close()
            await asyncio.gather(*(task for task, _ in self._connections))

    def got(self, command: bytes) -> bool:
        return any(command in line.upper() for line in self.received)


async def test_cleartext_injected_after_starttls_is_refused(ca: TestCA) -> None:
    script = ScriptedServer(
        b"IMAP4rev1 STARTTLS", starttls_reply=b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"
    )
    async with script.listening() as port:
        with pytest.raises(ImapTlsError, match="injection"):
            await poll_once(account(port, security="starttls", ca=ca), MemoryStore())
    assert not script.got(b"LOGIN")


async def test_logindisabled_is_honoured(ca: TestCA) -> None:
    script = ScriptedServer(b"IMAP4rev1 STARTTLS LOGINDISABLED")
    async with script.listening() as port:
        with pytest.raises(ImapAuthError, match="LOGINDISABLED"):
            await poll_once(account(port), MemoryStore())
    assert not script.got(b"LOGIN ")


# --- The account -------------------------------------------------------------------


def test_the_password_stays_out_of_repr() -> None:
    assert PASSWORD not in repr(account(143))


@pytest.mark.parametrize("host", ["mail.example.com", "10.0.0.5"])
def test_cleartext_is_for_loopback_only(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ImapAccount(host, 143, "u", "p", security="none")


def test_unknown_security_is_refused() -> None:
    with pytest.raises(ValueError, match="security"):
        ImapAccount("localhost", 993, "u", "p", security="ssl")  # type: ignore[arg-type]
