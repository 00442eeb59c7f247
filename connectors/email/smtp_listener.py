"""The built-in inbound SMTP listener: the MX of a reply domain.

aiosmtpd's protocol runs here on the *caller's* event loop, not in
aiosmtpd's threaded Controller: the sink stores mail through the server's
database engine, which is bound to the main loop. The listener accepts mail
only for the addresses `check_recipient` accepts (no relay, no AUTH: it is
an MX, not a submission server) and hands each message to `sink` exactly as
received; the sink's `Verdict` is the reply to the final dot. Nothing here
touches the database (ARCHITECTURE.md, connectors).

    listener = SmtpListener(ListenerConfig(port=25), check_recipient=known, sink=store)
    await listener.start()
    ...
    await listener.stop()   # in-flight DATA gets a bounded grace period
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import re
import ssl
from collections.abc import Callable
from typing import Any, AnyStr, Protocol

from aiosmtpd.smtp import SMTP, Session, TLSSetupException
from aiosmtpd.smtp import Envelope as SmtpEnvelope

log = logging.getLogger(__name__)

_ENHANCED_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}(?: |$)")


@dataclasses.dataclass(frozen=True)
class Envelope:
    """The SMTP envelope of one received message.

    `mail_from` is "" for the null reverse-path (bounces, RFC 5321 4.5.5);
    `rcpt_tos` holds only the recipients `check_recipient` accepted, each
    once; `peer` is "ip:port" ("[ip]:port" for IPv6)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    peer: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The sink's answer to a message, sent as the reply to DATA.

    250 accepted; 4xx: the sending server keeps the message and retries;
    5xx: it bounces the message to its sender. `text` is one line; the
    constructors add an RFC 3463 enhanced status code unless it starts
    with one."""

    code: int
    text: str

    def __post_init__(self) -> None:
        if not (self.code == 250 or 400 <= self.code < 600):
            raise ValueError(f"a verdict is 250, 4xx or 5xx, not {self.code}")
        if "\r" in self.text or "\n" in self.text:
            raise ValueError("a verdict's text is one line")

    @classmethod
    def accepted(cls) -> Verdict:
        return cls(250, "2.0.0 Message accepted")

    @classmethod
    def temporary(cls, text: str, *, code: int = 451) -> Verdict:
        if not 400 <= code < 500:
            raise ValueError(f"a temporary failure is 4xx, not {code}")
        return cls(code, _with_status("4.3.0", text))

    @classmethod
    def rejected(cls, text: str, *, code: int = 554) -> Verdict:
        if not 500 <= code < 600:
            raise ValueError(f"a rejection is 5xx, not {code}")
        return cls(code, _with_status("5.7.1", text))

    @property
    def reply(self) -> str:
        return f"{self.code} {self.text}"


def _with_status(default: str, text: str) -> str:
    return text if _ENHANCED_STATUS.match(text) else f"{default} {text}"


class RecipientCheck(Protocol):
    """True if mail for `address` is ours to take (a valid reply address)."""

    async def __call__(self, address: str) -> bool: ...


class MailSink(Protocol):
    """Take one message: `raw` is the DATA exactly as received (dot-stuffing
    undone, CRLF line ends). Raising answers 451: the sender retries."""

    async def __call__(self, envelope: Envelope, raw: bytes) -> Verdict: ...


@dataclasses.dataclass(frozen=True)
class ListenerConfig:
    host: str = "127.0.0.1"
    port: int = 2525  # 0: any free port (see SmtpListener.port)
    hostname: str = "threadline"  # in the banner and the EHLO reply
    max_message_bytes: int = 25 * 1024 * 1024  # PROTOCOLS.md P4; advertised as SIZE
    max_recipients: int = 50
    tls_context: ssl.SSLContext | None = None  # offer STARTTLS when set
    require_starttls: bool = False
    timeout: float = 300.0  # seconds without a command before a connection is dropped

    def __post_init__(self) -> None:
        if self.require_starttls and self.tls_context is None:
            # aiosmtpd would silently not require it.
            raise ValueError("require_starttls needs a tls_context")


# aiosmtpd's own replies that lack an enhanced status code (RFC 3463).
_REPLIES = {
    "552 Error: message size exceeds fixed maximum message size": (
        "552 5.3.4 Message size exceeds fixed maximum message size"
    ),
    "552 Error: Too much mail data": "552 5.3.4 Message size exceeds fixed maximum message size",
    "530 Must issue a STARTTLS command first": "530 5.7.0 Must issue a STARTTLS command first",
}
_TRY_AGAIN = "451 4.3.0 Temporary failure, please try again later"
_SINK_FAILED = Verdict(451, _TRY_AGAIN.removeprefix("451 "))
_SHUTTING_DOWN = b"421 4.3.2 Service shutting down, please try again later\r\n"


class SmtpListener:
    """The listener: `start` binds and serves on the running loop, `stop`
    drains it. Each connection is aiosmtpd's protocol with `_Handler`'s
    hooks."""

    def __init__(
        self, config: ListenerConfig, *, check_recipient: RecipientCheck, sink: MailSink
    ) -> None:
        self.config = config
        self._handler = _Handler(config, check_recipient, sink)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._stopping = False
        self._port = 0

    @property
    def port(self) -> int:
        """The bound port (useful with `port=0`); 0 before `start`."""
        return self._port

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the SMTP listener is already running")
        loop = asyncio.get_running_loop()
        self._stopping = False
        self._server = await loop.create_server(
            lambda: _Connection(
                self._handler, self.config, self._connections, loop, self._is_stopping
            ),
            self.config.host,
            self.config.port,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])

    def _is_stopping(self) -> bool:
        return self._stopping

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting; idle connections get 421 and are closed at once,
        a connection in DATA gets up to `grace` seconds to finish and be
        answered. Whatever is left then is cut off (its sender retries)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.close()
        connections = list(self._connections)
        tasks = [task for conn in connections if (task := conn.handler_task) is not None]
        for conn in connections:
            if not conn.in_data:
                conn.hang_up(_SHUTTING_DOWN)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for conn in list(self._connections):
                conn.hang_up(None, abort=True)  # abort: a client not reading can't hold us
            if late:
                await asyncio.wait(late)
        await self._handler.cancel_deliveries()
        await server.wait_closed()


class _Handler:
    """aiosmtpd's hooks: recipient checks, the sink call, no AUTH."""

    def __init__(
        self, config: ListenerConfig, check_recipient: RecipientCheck, sink: MailSink
    ) -> None:
        self._config = config
        self._check_recipient = check_recipient
        self._sink = sink
        self._deliveries: set[asyncio.Task[Verdict]] = set()

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        # With this hook, recording the client's name is ours to do.
        session.host_name = hostname
        # aiosmtpd advertises AUTH after STARTTLS even with every mechanism
        # excluded; an MX takes no logins.
        return [line for line in responses if not line[4:].upper().startswith("AUTH")]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: SmtpEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if not _well_formed(address):
            return "553 5.1.7 Malformed sender address"
        # The null reverse-path arrives as "<>" (kept: aiosmtpd treats an
        # empty mail_from as "no MAIL yet"); Envelope turns it into "".
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
        if not _well_formed(address):
            return "553 5.1.3 Malformed recipient address"
        if address in envelope.rcpt_tos:
            return "250 2.1.5 OK"  # named twice, delivered once
        if len(envelope.rcpt_tos) >= self._config.max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            ours = await self._check_recipient(address)
        except Exception:
            log.exception("recipient check failed for %r", address)
            return _TRY_AGAIN
        if not ours:
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        # original_content: the bytes as received, dot-stuffing undone and
        # nothing decoded (decode_data=False), CRLF line ends kept.
        raw = envelope.original_content or b""
        mail_from = envelope.mail_from or ""
        received = Envelope(
            mail_from="" if mail_from == "<>" else mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            peer=_peer(session.peer),
        )
        delivery = asyncio.ensure_future(self._deliver(received, raw))
        self._deliveries.add(delivery)
        delivery.add_done_callback(self._deliveries.discard)
        # Shielded: a client hanging up must not cut a store off halfway.
        # The message is then kept, and the client's retry is a duplicate
        # that idempotent ingest absorbs (PROTOCOLS.md P1).
        verdict = await asyncio.shield(delivery)
        return verdict.reply

    async def _deliver(self, envelope: Envelope, raw: bytes) -> Verdict:
        try:
            verdict = await self._sink(envelope, raw)
            if not isinstance(verdict, Verdict):
                raise TypeError(f"the mail sink returned {verdict!r}, not a Verdict")
        except Exception:
            log.exception("mail sink failed for a message from %s", envelope.peer)
            return _SINK_FAILED
        return verdict

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # Scanners and clients with old TLS do this all day long;
            # aiosmtpd then drops the connection.
            log.info("STARTTLS handshake failed: %r", error.__cause__)
        else:
            log.exception("SMTP session failed", exc_info=error)
        # aiosmtpd's default answers "500 Error: (...)": permanent, and it
        # shows our internals to the world.
        return _TRY_AGAIN

    async def cancel_deliveries(self) -> None:
        for delivery in self._deliveries:
            delivery.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)


class _Connection(SMTP):
    """One client connection: aiosmtpd's protocol, tracked for `stop`."""

    def __init__(
        self,
        handler: _Handler,
        config: ListenerConfig,
        registry: set[_Connection],
        loop: asyncio.AbstractEventLoop,
        stopping: Callable[[], bool],
    ) -> None:
        # aiosmtpd keeps these limits in a class-level dict that every
        # connection clears and grows; one per connection stays sane.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        super().__init__(
            handler,
            data_size_limit=config.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=config.hostname,
            ident="ESMTP",
            tls_context=config.tls_context,
            require_starttls=config.require_starttls,
            timeout=config.timeout,
            auth_exclude_mechanism=("LOGIN", "PLAIN"),
            loop=loop,
        )
        self._registry = registry
        self._stopping = stopping
        self.in_data = False

    @property
    def handler_task(self) -> asyncio.Task[None] | None:
        return self._handler_coroutine

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # called again after STARTTLS
        self._registry.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._registry.discard(self)
        super().connection_lost(error)

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            await super().push(_REPLIES.get(status, status))
        else:
            await super().push(status)

    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.in_data = False
            if self._stopping():
                self.hang_up(None)  # answered; now let `stop` finish

    def hang_up(self, farewell: bytes | None, *, abort: bool = False) -> None:
        transport = self.transport
        if transport is None:
            return
        if abort and isinstance(transport, asyncio.Transport):
            transport.abort()
            return
        if transport.is_closing():
            return
        if farewell is not None and isinstance(transport, asyncio.WriteTransport):
            with contextlib.suppress(OSError, RuntimeError):
                transport.write(farewell)
        transport.close()


def _well_formed(address: str) -> bool:
    """aiosmtpd decodes command arguments as UTF-8 with surrogateescape;
    an address that isn't valid UTF-8 could not be stored or answered."""
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _peer(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)
