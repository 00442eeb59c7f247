"""A real SMTP server for tests: aiosmtpd on a free port on 127.0.0.1, on
its own event loop in a background thread, so sync and async tests alike
can send to it. It records every message it accepts: the envelope and the
DATA bytes exactly as received (dot-stuffing undone, nothing decoded).

    with SmtpSink.start(tls="starttls", auth=("ann", "secret")) as sink:
        account = SmtpAccount(sink.host, sink.port, tls_context=sink.client_context(), ...)
        [message] = sink.wait_for(1)      # from async code: asyncio.to_thread
        sink.fail_next("rcpt", 450, "4.2.1 Mailbox busy", address="b@example.com")
        sink.drop_next_connection("data")  # hang up once DATA has arrived

TLS: "starttls" offers STARTTLS, "tls" is implicit TLS (port 465 style);
the certificate comes from `ca` (a TestCA; a throwaway one when None), for
`localhost` and 127.0.0.1. With `auth`, MAIL needs a login first, and
logins are only taken over TLS (like any sane submission server).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import ssl
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from aiosmtpd.smtp import MISSING, SMTP, AuthCallbackType, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope

from tests.services.tls import TestCA

HOST = "127.0.0.1"
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0

Tls = Literal["none", "starttls", "tls"]
Stage = Literal["auth", "mail", "rcpt", "data"]
Mechanism = Literal["PLAIN", "LOGIN"]


@dataclasses.dataclass(frozen=True)
class Received:
    mail_from: str  # "" for the null reverse-path
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...]  # upper-cased, e.g. ("SIZE=1234", "BODY=8BITMIME")
    tls: bool  # the message came over TLS (STARTTLS or implicit)
    login: str | None  # the user that logged in, if any


@dataclasses.dataclass
class _Failure:
    stage: Stage
    code: int
    text: str
    times: int
    address: str | None


_DROP = object()


class SmtpSink:
    """A running server. Use `SmtpSink.start()` as a context manager."""

    def __init__(
        self,
        *,
        tls: Tls,
        ca: TestCA | None,
        auth: tuple[str, str] | None,
        mechanisms: tuple[Mechanism, ...],
    ) -> None:
        self.host = HOST
        self.port = 0
        self.tls = tls
        self.ca = ca
        self.connections = 0  # accepted so far
        self._auth = auth
        self._mechanisms = mechanisms
        self._received: list[Received] = []
        self._failures: list[_Failure] = []
        self._drops: list[Stage] = []
        self._condition = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._live: set[_SinkSMTP] = set()

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        *,
        tls: Tls = "none",
        ca: TestCA | None = None,
        auth: tuple[str, str] | None = None,
        mechanisms: tuple[Mechanism, ...] = ("PLAIN", "LOGIN"),
    ) -> Iterator[SmtpSink]:
        with contextlib.ExitStack() as stack:
            if tls != "none" and ca is None:
                directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="smtp-ca-"))
                ca = TestCA.create(Path(directory))
            sink = cls(tls=tls, ca=ca, auth=auth, mechanisms=mechanisms)
            sink._start()
            try:
                yield sink
            finally:
                sink._stop()

    # --- What tests use --------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        with self._condition:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until `count` messages have arrived; all received so far."""
        with self._condition:
            if not self._condition.wait_for(lambda: len(self._received) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} message(s) within {timeout} s, got {len(self._received)}"
                )
            return list(self._received)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's CA."""
        if self.ca is None:
            raise RuntimeError("this sink has no TLS")
        return self.ca.client_context()

    def fail_next(
        self, stage: Stage, code: int, text: str, times: int = 1, *, address: str | None = None
    ) -> None:
        """Answer `code text` to the next `times` AUTH / MAIL / RCPT (only
        for `address`, if given) / end of DATA, instead of going on."""
        with self._condition:
            self._failures.append(_Failure(stage, code, text, times, address))

    def drop_next_connection(self, stage: Stage) -> None:
        """At the next AUTH / MAIL / RCPT / end of DATA, close the
        connection without a reply (a dropped DATA is not recorded)."""
        with self._condition:
            self._drops.append(stage)

    # --- The server thread --------------------------------------------------------

    def _start(self) -> None:
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(started),), name="smtp-sink", daemon=True
        )
        self._thread.start()
        self.port = started.result(timeout=_START_TIMEOUT)

    def _stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(_STOP_TIMEOUT)
        if self._thread.is_alive():
            raise RuntimeError(f"the SMTP sink did not stop within {_STOP_TIMEOUT} s")
        self._thread = None

    async def _serve(self, started: concurrent.futures.Future[int]) -> None:
        try:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            implicit = self.ca.server_context() if self.tls == "tls" and self.ca else None
            server = await self._loop.create_server(self._connection, HOST, 0, ssl=implicit)
        except Exception as exc:
            started.set_exception(exc)  # raised again in _start
            return
        started.set_result(int(server.sockets[0].getsockname()[1]))
        await self._stopping.wait()
        server.close()
        for conn in list(self._live):
            if isinstance(conn.transport, asyncio.Transport):
                conn.transport.abort()
        await server.wait_closed()
        # asyncio.run then cancels and awaits the connections' tasks.

    def _connection(self) -> _SinkSMTP:
        self.connections += 1
        builtin = {"PLAIN", "LOGIN"}
        return _SinkSMTP(
            _Handler(self),
            self._live,
            tls_context=self.ca.server_context() if self.tls == "starttls" and self.ca else None,
            # aiosmtpd counts only STARTTLS as TLS; over implicit TLS a
            # login is as safe. MAIL checks the login (see _Handler), since
            # aiosmtpd's auth_required without auth_require_tls warns.
            auth_require_tls=self.tls != "tls",
            auth_callback=self._check_login,
            auth_exclude_mechanism=sorted(builtin - set(self._mechanisms)),
        )

    def _check_login(self, mechanism: str, login: bytes, password: bytes) -> bool:
        return self._auth is not None and (login, password) == (
            self._auth[0].encode(),
            self._auth[1].encode(),
        )

    def _take(self, stage: Stage, address: str | None) -> _Failure | object | None:
        """The drop or failure planned for this step, if any (used up)."""
        with self._condition:
            if stage in self._drops:
                self._drops.remove(stage)
                return _DROP
            for failure in self._failures:
                if failure.stage == stage and failure.address in (None, address):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    return failure
            return None

    def _record(self, message: Received) -> None:
        with self._condition:
            self._received.append(message)
            self._condition.notify_all()


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # with this hook, ours to record
        if self.sink._auth is None:
            return [line for line in responses if not line[4:].upper().startswith("AUTH")]
        return responses

    async def handle_AUTH(
        self, server: SMTP, session: Session, envelope: SmtpEnvelope, args: list[str]
    ) -> object:
        reply = await self._planned(server, "auth", None)
        return MISSING if reply is None else reply  # MISSING: aiosmtpd checks the login

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self.sink._auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if reply := await self._planned(server, "mail", address):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if reply := await self._planned(server, "rcpt", address):
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        if reply := await self._planned(server, "data", None):
            return reply
        # aiosmtpd's auth_data is a LoginPassword (typed as None there).
        login_bytes = getattr(session.auth_data, "login", None) if session.authenticated else None
        login = login_bytes.decode() if isinstance(login_bytes, bytes) else None
        mail_from = envelope.mail_from or ""
        self.sink._record(
            Received(
                mail_from="" if mail_from == "<>" else mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=envelope.original_content or b"",
                mail_options=tuple(envelope.mail_options),
                tls=server.transport is not None
                and server.transport.get_extra_info("sslcontext") is not None,
                login=login,
            )
        )
        return f"250 2.0.0 OK: queued as {len(self.sink.received)}"

    async def _planned(self, server: SMTP, stage: Stage, address: str | None) -> str | None:
        planned = self.sink._take(stage, address)
        if planned is _DROP:
            if isinstance(server.transport, asyncio.Transport):
                server.transport.abort()
            # connection_lost cancels this handler's task: no reply is sent.
            await asyncio.get_running_loop().create_future()
        if isinstance(planned, _Failure):
            return f"{planned.code} {planned.text}"
        return None


class _SinkSMTP(SMTP):
    def __init__(
        self,
        handler: _Handler,
        live: set[_SinkSMTP],
        *,
        tls_context: ssl.SSLContext | None,
        auth_require_tls: bool,
        auth_callback: AuthCallbackType,
        auth_exclude_mechanism: list[str],
    ) -> None:
        # aiosmtpd keeps these limits in a class-level dict shared by every
        # connection (and by the listener under test); one of our own.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        super().__init__(
            handler,
            hostname="localhost",
            enable_SMTPUTF8=True,
            decode_data=False,
            tls_context=tls_context,
            auth_require_tls=auth_require_tls,
            auth_callback=auth_callback,
            auth_exclude_mechanism=auth_exclude_mechanism,
            loop=asyncio.get_running_loop(),
        )
        self._live = live

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._live.discard(self)
        super().connection_lost(error)
