"""Outbound mail by SMTP (aiosmtplib): `send_message` sends one message
on its own connection; `SmtpPool` keeps a few connections open and sends
one message after another on each, for bulk mail (touchpoints), where a
TCP + TLS + AUTH handshake per mail would be most of the cost.

`send_message` never raises for network or SMTP trouble: every way a send
can end is a `SendOutcome` the delivery consumer records (PROTOCOLS.md P1).
"temporary" is worth retrying later, "permanent" is not (the agent sees
`reason`). The raw bytes go to DATA as given, without re-rendering: only
bare LF becomes CRLF (the wire needs it) and dots are stuffed on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import ssl
from collections.abc import Awaitable, Sequence
from typing import Literal, TypeVar

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import normalize_message_line_endings

Security = Literal["starttls", "tls", "none"]
Status = Literal["sent", "temporary", "permanent"]
Stage = Literal["connect", "starttls", "auth", "mail", "rcpt", "data"]

_QUIT_TIMEOUT = 5.0

R = TypeVar("R")


@dataclasses.dataclass(frozen=True)
class SmtpAccount:
    """Where and how to submit mail.

    security: "starttls" requires STARTTLS (a server that doesn't offer it
    is a temporary failure, never a send in clear text); "tls" is implicit
    TLS (port 465); "none" is plain text, for a local relay only."""

    host: str
    port: int
    security: Security = "starttls"
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = 30.0  # per network step: connect, each reply
    tls_context: ssl.SSLContext | None = None  # None: the system's trusted CAs
    local_hostname: str | None = None  # the EHLO name; None: this machine's FQDN


@dataclasses.dataclass(frozen=True)
class SendOutcome:
    """How one send ended.

    - `code`: the SMTP reply that decided it; None for connection-level
      failures (refused, timeout, TLS, disconnect).
    - `reason`: one line for people, e.g. "550 5.1.1 <x@y>: user unknown".
    - `refused`: recipients the server refused (with others accepted the
      status is still "sent").
    - `maybe_delivered`: the connection failed during DATA, so the server
      may have taken the message; a retry may deliver it twice."""

    status: Status
    code: int | None
    reason: str
    refused: tuple[str, ...] = ()
    maybe_delivered: bool = False


async def send_message(
    account: SmtpAccount, *, raw: bytes, mail_from: str, recipients: Sequence[str]
) -> SendOutcome:
    """Send `raw` (a complete message, CRLF line ends) from `mail_from`
    ("" for the null reverse-path) to `recipients`."""
    if not recipients:
        return SendOutcome("permanent", None, "no recipients")
    for address in (mail_from, *recipients):
        if problem := _address_problem(address):
            return SendOutcome("permanent", None, f"invalid address: {problem}")
    client = _client(account)
    try:
        outcome = await _Transaction(client, account).attempt(raw, mail_from, recipients)
        await _quit(client)
        return outcome
    finally:
        client.close()  # also when cancelled: no QUIT then


def _client(account: SmtpAccount) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=account.host,
        port=account.port,
        use_tls=account.security == "tls",
        start_tls=False,  # "starttls" is done by hand below, to require it
        tls_context=account.tls_context,
        timeout=account.timeout,
        local_hostname=account.local_hostname,
    )


async def _quit(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        # Politely, and briefly: the outcome is decided already.
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await client.quit(timeout=_QUIT_TIMEOUT)


class _Transaction:
    """The steps of one send, remembering which one it is at."""

    def __init__(self, client: aiosmtplib.SMTP, account: SmtpAccount) -> None:
        self.client = client
        self.account = account
        self.stage: Stage = "connect"

    async def attempt(self, raw: bytes, mail_from: str, recipients: Sequence[str]) -> SendOutcome:
        """Connect, then send: the whole of one `send_message`."""
        return await self._guarded(self._open_and_send(raw, mail_from, recipients))

    async def open(self) -> SendOutcome | None:
        """Connect, greet, STARTTLS and log in; None when ready to send,
        else the outcome that stopped it."""
        return await self._guarded(self._open())

    async def send(self, raw: bytes, mail_from: str, recipients: Sequence[str]) -> SendOutcome:
        """Send one message on the open connection (the next one may follow)."""
        return await self._guarded(self._send(raw, mail_from, recipients))

    async def _guarded(self, step: Awaitable[R]) -> R | SendOutcome:
        try:
            return await step
        except aiosmtplib.SMTPResponseException as exc:
            return _refusal(self.stage, exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # An SMTPException that carries no reply: timeouts, disconnects,
            # connect errors, AUTH or SMTPUTF8 not offered.
            return _failure(self.stage, exc, f"{self.account.host}:{self.account.port}")

    async def _open_and_send(
        self, raw: bytes, mail_from: str, recipients: Sequence[str]
    ) -> SendOutcome:
        refused = await self._open()
        return refused or await self._send(raw, mail_from, recipients)

    async def _open(self) -> SendOutcome | None:
        client, account = self.client, self.account
        self.stage = "connect"
        await client.connect()
        await self._greet()
        if account.security == "starttls":
            self.stage = "starttls"
            if not client.supports_extension("starttls"):
                return SendOutcome(
                    "temporary",
                    None,
                    f"{account.host}:{account.port} does not offer STARTTLS, which this "
                    "account requires; not sending in clear text",
                )
            await client.starttls()
            await self._greet()  # RFC 3207 4.2: forget what was said before TLS
        if account.username is not None:
            self.stage = "auth"
            await client.login(account.username, account.password or "")
        return None

    async def _send(self, raw: bytes, mail_from: str, recipients: Sequence[str]) -> SendOutcome:
        client = self.client
        utf8 = not all(address.isascii() for address in (mail_from, *recipients))
        options = self._mail_options(raw, utf8=utf8)
        encoding = "utf-8" if utf8 else "ascii"
        self.stage = "mail"
        await client.mail(mail_from, options=options, encoding=encoding)

        self.stage = "rcpt"
        refusals: dict[str, aiosmtplib.SMTPRecipientRefused] = {}
        for recipient in recipients:
            try:
                await client.rcpt(recipient, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refusals[recipient] = exc
        if len(refusals) == len(recipients):
            return _all_refused(refusals)

        self.stage = "data"
        response = await client.data(raw)
        reply = _one_line(response.code, response.message)
        if not refusals:
            return SendOutcome("sent", response.code, reply)
        return SendOutcome(
            "sent",
            response.code,
            f"sent, but {len(refusals)} of {len(recipients)} recipients refused: "
            + _list_refusals(refusals),
            refused=tuple(refusals),
        )

    async def _greet(self) -> None:
        try:
            await self.client.ehlo()
        except aiosmtplib.SMTPHeloError:
            if not self.client.is_connected:
                raise
            await self.client.helo()  # a server without ESMTP

    def _mail_options(self, raw: bytes, *, utf8: bool) -> list[str]:
        client = self.client
        options = []
        if client.supports_extension("size"):
            # RFC 1870: the size as transmitted (CRLF line ends).
            options.append(f"SIZE={len(normalize_message_line_endings(raw))}")
        if not raw.isascii() and client.supports_extension("8bitmime"):
            # Without 8BITMIME the bytes go as they are: most servers take
            # them, and re-encoding would change what was signed.
            options.append("BODY=8BITMIME")
        if utf8:
            if not client.supports_extension("smtputf8"):
                raise aiosmtplib.SMTPNotSupported(
                    "the server does not support SMTPUTF8, needed for a non-ASCII address"
                )
            options.append("SMTPUTF8")
        return options


def _address_problem(address: str) -> str | None:
    """Why `address` can't go on MAIL / RCPT as given, if it can't.

    aiosmtplib parses addresses leniently ("a@x>\r\nRSET" becomes a@x);
    an envelope address must reach the server exactly as given, or not at
    all."""
    try:
        quoted = quote_address(address)
    except ValueError as exc:
        return str(exc)
    if quoted != f"<{address}>":
        return f"{address!r} is not a bare address"
    return None


def _all_refused(refusals: dict[str, aiosmtplib.SMTPRecipientRefused]) -> SendOutcome:
    # One temporary refusal makes the whole send worth retrying.
    temporary = [exc for exc in refusals.values() if exc.code < 500]
    deciding = (temporary or list(refusals.values()))[0]
    return SendOutcome(
        "temporary" if temporary else "permanent",
        deciding.code,
        "every recipient refused: " + _list_refusals(refusals),
        refused=tuple(refusals),
    )


def _list_refusals(refusals: dict[str, aiosmtplib.SMTPRecipientRefused]) -> str:
    return "; ".join(
        f"{address}: {_one_line(exc.code, exc.message)}" for address, exc in refusals.items()
    )


def _refusal(stage: Stage, code: int, message: str) -> SendOutcome:
    """A reply the server chose: 4xx temporary, 5xx permanent."""
    reply = _one_line(code, message)
    status: Status = "temporary" if code < 500 else "permanent"
    if stage == "auth":
        # 535 is wrong credentials: a configuration problem, not worth
        # retrying; 454 and other 4xx are the server's own trouble.
        return SendOutcome(status, code, f"authentication failed: {reply}")
    if stage == "starttls":
        return SendOutcome(status, code, f"STARTTLS failed: {reply}")
    return SendOutcome(status, code, reply)


def _failure(stage: Stage, exc: BaseException, where: str) -> SendOutcome:
    """A failure with no SMTP reply behind it."""
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return SendOutcome("permanent", None, exc.message)
    if stage == "auth" and not isinstance(exc, OSError | TimeoutError):
        # e.g. no AUTH offered: the account's settings don't fit the server.
        return SendOutcome("permanent", None, f"authentication failed: {exc}")
    cause = _root_cause(exc)
    if isinstance(cause, ConnectionRefusedError):
        reason = f"connection refused ({where})"
    elif isinstance(cause, socket.gaierror):
        reason = f"cannot resolve the host ({where}): {cause.strerror}"
    elif isinstance(cause, ssl.SSLCertVerificationError):
        reason = f"TLS failed ({where}): certificate verify failed: {cause.verify_message}"
    elif isinstance(cause, ssl.SSLError):
        reason = f"TLS failed ({where}): {cause.reason or cause}"
    elif isinstance(exc, TimeoutError):  # aiosmtplib's timeouts are TimeoutErrors
        reason = f"timed out ({where}) during {stage}: {exc}"
    elif isinstance(exc, ConnectionError | aiosmtplib.SMTPServerDisconnected):
        reason = f"connection lost ({where}) during {stage}: {exc}"
    else:
        reason = f"{stage} failed ({where}): {exc}"
    return SendOutcome(
        "temporary",
        None,
        reason,
        maybe_delivered=stage == "data",
    )


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def _one_line(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"


class SmtpPool:
    """Up to `size` open connections to one account, each carrying one
    message after another (RFC 5321 allows any number of mail
    transactions per session). `send` has `send_message`'s contract.

    A connection that ended a send in anything but success is closed, not
    reused: after a refusal the session is mid-transaction, after a
    failure its state is unknown. A reused connection that the server
    dropped while idle fails at MAIL, before anything was sent; that send
    is tried once more on a fresh connection."""

    def __init__(self, account: SmtpAccount, *, size: int = 4) -> None:
        self.account = account
        self._slots = asyncio.Semaphore(size)
        self._idle: list[aiosmtplib.SMTP] = []
        self._closed = False

    async def send(self, *, raw: bytes, mail_from: str, recipients: Sequence[str]) -> SendOutcome:
        if not recipients:
            return SendOutcome("permanent", None, "no recipients")
        for address in (mail_from, *recipients):
            if problem := _address_problem(address):
                return SendOutcome("permanent", None, f"invalid address: {problem}")
        async with self._slots:
            idle = self._idle.pop() if self._idle else None
            outcome, client, stage = await self._send_on(idle, raw, mail_from, recipients)
            if idle is not None and stage == "mail" and outcome.code is None:
                # The server dropped the idle session; MAIL never got through.
                outcome, client, stage = await self._send_on(None, raw, mail_from, recipients)
            if client is not None and outcome.status == "sent" and not self._closed:
                self._idle.append(client)
            elif client is not None:
                client.close()
            return outcome

    async def _send_on(
        self,
        client: aiosmtplib.SMTP | None,
        raw: bytes,
        mail_from: str,
        recipients: Sequence[str],
    ) -> tuple[SendOutcome, aiosmtplib.SMTP | None, Stage]:
        """Send on `client` (None: a new connection); the outcome, the
        connection if still open, and the stage the send ended at."""
        fresh = client is None
        client = client or _client(self.account)
        try:
            if fresh:
                opening = _Transaction(client, self.account)
                refused = await opening.open()
                if refused is not None:
                    client.close()
                    return refused, None, opening.stage
            sending = _Transaction(client, self.account)
            outcome = await sending.send(raw, mail_from, recipients)
            return outcome, client if client.is_connected else None, sending.stage
        except BaseException:
            client.close()  # cancelled mid-send: the session is unusable
            raise

    async def close(self) -> None:
        """QUIT every idle connection; sends still running finish first."""
        self._closed = True
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await _quit(client)
            finally:
                client.close()
