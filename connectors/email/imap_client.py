"""A typed IMAP session on top of aioimaplib: connect (implicit TLS, required
STARTTLS, or plain on loopback), LOGIN, SELECT, UID SEARCH / FETCH and IDLE.

Only what the poller needs, with the aioimaplib quirks handled here:

- aioimaplib has no STARTTLS; `_starttls` upgrades the connection itself
  with `loop.start_tls` and refuses a reply with cleartext bytes after it
  (the STARTTLS command-injection class of attacks).
- A dropped connection never fails aioimaplib's pending commands (IDLE would
  hang until its timeout), so every command here races the protocol's
  `connection_lost`.
- aioimaplib drops untagged `EXISTS` lines sent during other commands, so the
  protocol remembers them (`exists_seen`): the poller searches again instead
  of idling past a message announced during its SEARCH.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import re
import ssl
from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

import aioimaplib  # type: ignore[import-untyped]

T = TypeVar("T")
Security = Literal["tls", "starttls", "none"]

_SECURITY: frozenset[str] = frozenset({"tls", "starttls", "none"})
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_FETCH_START = re.compile(rb"^\d+ FETCH \(", re.IGNORECASE)
_FETCH_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_FETCH_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.IGNORECASE)
_FETCH_BODY = re.compile(rb"\bBODY\[\](<\d+>)? \{\d+\}$", re.IGNORECASE)
_EXISTS = re.compile(rb"^\d+ EXISTS", re.IGNORECASE)
# A graceful LOGOUT must not hold up a shutdown or a reconnect for long.
_LOGOUT_TIMEOUT = 5.0


@dataclasses.dataclass(frozen=True)
class ImapAccount:
    """Where to read mail from. `password` never shows in repr or logs.

    `security`: "tls" is implicit TLS (port 993); "starttls" upgrades a
    plain connection and refuses to log in if the server does not offer
    STARTTLS; "none" sends the password in clear and is allowed only to a
    loopback address. `tls_context` None means the system's trust store
    with host name checking."""

    host: str
    port: int
    username: str
    password: str = dataclasses.field(repr=False)
    security: Security = "tls"
    mailbox: str = "INBOX"
    timeout: float = 30.0
    tls_context: ssl.SSLContext | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.security not in _SECURITY:
            raise ValueError(f"security must be one of {sorted(_SECURITY)}, not {self.security!r}")
        if self.security == "none" and not _is_loopback(self.host):
            raise ValueError(
                f"security='none' sends the password in clear; it is allowed only to a "
                f"loopback address, not {self.host!r} (use 'tls' or 'starttls')"
            )
        if not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        # Non-ASCII names need modified UTF-7 (RFC 3501 5.1.3), not done here.
        if not self.mailbox or not self.mailbox.isascii() or not self.mailbox.isprintable():
            raise ValueError(f"mailbox must be a non-empty printable ASCII name: {self.mailbox!r}")
        for name in ("host", "username", "password"):
            if re.search(r"[\x00\r\n]", getattr(self, name)):
                raise ValueError(f"{name} must not contain NUL, CR or LF")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ImapError(Exception):
    """Base class for IMAP failures the poller reports."""


class ImapAuthError(ImapError):
    """The server refused authentication (wrong user name or password, or
    LOGIN not allowed on this connection)."""


class ImapTlsError(ImapError):
    """TLS was required but could not be had: STARTTLS not offered or
    refused, or cleartext injected after the STARTTLS reply."""


class ImapProtocolError(ImapError):
    """The server answered a command with NO / BAD, or with something this
    client cannot read."""


class ImapConnectionError(ImapError):
    """The connection dropped or a command timed out."""


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol plus the three things it lacks (module doc)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop, None)
        self.lost = asyncio.Event()
        self.exists_seen = False
        self.cleartext_after_starttls = False

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.lost.set()

    def data_received(self, d: bytes) -> None:
        command = self.pending_sync_command
        if command is not None and command.name == "STARTTLS":
            self._check_starttls_reply(self.incomplete_line + d, command.tag.encode())
        super().data_received(d)

    def _check_starttls_reply(self, data: bytes, tag: bytes) -> None:
        # The TLS handshake must follow the tagged reply immediately; bytes
        # after it were sent in clear and must not be read as if protected.
        start = 0 if data.startswith(tag + b" ") else data.find(b"\r\n" + tag + b" ")
        if start < 0:
            return
        end = data.find(b"\r\n", start + 2 if start else 0)
        if end >= 0 and end + 2 < len(data):
            self.cleartext_after_starttls = True

    def _untagged_response(self, line: bytes) -> Any:
        if _EXISTS.match(line.removeprefix(b"* ")):
            self.exists_seen = True
        return super()._untagged_response(line)


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]
    """aioimaplib.IMAP4 with our protocol (implicit TLS when given a context)."""

    protocol: _Protocol

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Any = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop or asyncio.get_running_loop()
        self.protocol = _Protocol(local_loop)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


@dataclasses.dataclass(frozen=True)
class _FetchItem:
    uid: int | None
    text: bytes  # the response without literals
    literal: bytes | None  # the BODY[] literal, when there is one


class ImapSession:
    """One logged-in connection with the account's mailbox selected.

    Open it with `ImapSession.open(account)`, always `close()` it."""

    def __init__(self, account: ImapAccount, client: _Client) -> None:
        self.account = account
        self._client = client
        self.uidvalidity = 0

    @property
    def _protocol(self) -> _Protocol:
        return self._client.protocol

    @classmethod
    async def open(cls, account: ImapAccount) -> ImapSession:
        """Connect, secure, log in and SELECT; raises ImapError or OSError."""
        context = account.tls_context or ssl.create_default_context()
        implicit = context if account.security == "tls" else None
        client = _Client(account.host, account.port, timeout=account.timeout, ssl_context=implicit)
        session = cls(account, client)
        try:
            await session._call("greeting", client.wait_hello_from_server())
            if account.security == "starttls":
                await session._starttls(context)
            await session._login()
            await session._select()
        except BaseException:
            session.close()
            raise
        return session

    @property
    def idle_supported(self) -> bool:
        return bool(self._client.has_capability("IDLE"))

    @property
    def exists_seen(self) -> bool:
        """An EXISTS arrived since `search_after` last started."""
        return self._protocol.exists_seen

    async def search_after(self, last_uid: int) -> list[int]:
        """UIDs above `last_uid`, ascending. `n:*` always matches the highest
        UID, even one below n, hence the filter."""
        self._protocol.exists_seen = False
        response = await self._call(
            "UID SEARCH", self._client.uid_search(f"UID {last_uid + 1}:*", charset=None)
        )
        lines = _ok(response, "UID SEARCH")
        uids: set[int] = set()
        for line in lines:
            for word in bytes(line).split():
                if not word.isdigit():
                    raise ImapProtocolError(f"UID SEARCH: unreadable reply {bytes(line)[:200]!r}")
                uids.add(int(word))
        return sorted(uid for uid in uids if uid > last_uid)

    async def fetch_size(self, uid: int) -> int | None:
        """RFC822.SIZE of the message, None if it is gone (expunged)."""
        item = await self._fetch(uid, "(RFC822.SIZE)")
        if item is None:
            return None
        match = _FETCH_SIZE.search(item.text)
        if match is None:
            raise ImapProtocolError(f"UID FETCH {uid}: no RFC822.SIZE in {item.text[:200]!r}")
        return int(match.group(1))

    async def fetch_raw(self, uid: int, *, limit: int) -> bytes | None:
        """The message's exact bytes, at most `limit` of them (a partial
        fetch, so a server whose SIZE was wrong cannot push more); PEEK so
        \\Seen stays as it was. None if the message is gone."""
        item = await self._fetch(uid, f"(BODY.PEEK[]<0.{limit}>)")
        if item is None:
            return None
        if item.literal is None:
            raise ImapProtocolError(f"UID FETCH {uid}: no BODY[] literal in {item.text[:200]!r}")
        return item.literal

    async def idle(self, stop: asyncio.Event, *, max_wait: float) -> None:
        """IDLE until the server pushes anything, `stop` is set or `max_wait`
        seconds pass (servers drop idle clients after 30 min: RFC 2177)."""
        client = self._client
        queue: asyncio.Queue[Any] = self._protocol.idle_queue
        while not queue.empty():  # pushes left over from the last IDLE's end
            queue.get_nowait()
        started = asyncio.wait_for(client.idle_start(timeout=max_wait), self.account.timeout)
        idle_command = await self._call("IDLE", started)
        push = asyncio.ensure_future(queue.get())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await self._call(
                "IDLE",
                asyncio.wait(
                    {push, stopped}, timeout=max_wait, return_when=asyncio.FIRST_COMPLETED
                ),
            )
        finally:
            push.cancel()
            stopped.cancel()
        client.idle_done()
        done = asyncio.wait_for(idle_command, self.account.timeout)
        _ok(await self._call("IDLE", done), "IDLE")

    def close(self) -> None:
        """Drop the connection. Graceful closing is `logout()`; this is the
        part that must happen even when that fails."""
        for task in (*self._client.tasks, *self._protocol.tasks):
            task.cancel()
        self._client._client_task.cancel()  # still connecting, if it is
        transport = self._protocol.transport
        if transport is not None:
            transport.close()

    async def logout(self) -> None:
        """LOGOUT then close; errors are ignored (the session is over)."""
        if not self._protocol.lost.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.logout(), _LOGOUT_TIMEOUT)
        self.close()

    async def _starttls(self, context: ssl.SSLContext) -> None:
        protocol = self._protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapTlsError(
                f"{self.account.host}:{self.account.port} does not offer STARTTLS; "
                "refusing to log in in clear text"
            )
        command = aioimaplib.Command(
            "STARTTLS", protocol.new_tag(), loop=protocol.loop, timeout=self.account.timeout
        )
        response = await self._call("STARTTLS", protocol.execute(command))
        if response.result != "OK":
            raise ImapTlsError(f"STARTTLS refused: {_text(response)}")
        if protocol.cleartext_after_starttls:
            raise ImapTlsError("cleartext data after the STARTTLS reply (possible injection)")
        transport = await self._call(
            "TLS handshake",
            asyncio.get_running_loop().start_tls(
                protocol.transport,
                protocol,
                context,
                server_hostname=self.account.host,
                ssl_handshake_timeout=self.account.timeout,
            ),
        )
        protocol.transport = transport
        protocol.incomplete_line = b""
        # RFC 3501 6.2.1: forget what was learnt before TLS, ask again.
        await self._call("CAPABILITY", protocol.capability())

    async def _login(self) -> None:
        account = self.account
        protocol = self._protocol
        where = f"{account.username!r} at {self._where}"
        if "LOGINDISABLED" in protocol.capabilities:
            raise ImapAuthError(
                f"IMAP authentication impossible for {where}: the server disables LOGIN on this "
                "connection (LOGINDISABLED: it wants TLS first; use security='starttls' or 'tls')"
            )
        # By hand rather than aioimaplib's login(): it leaves the user name
        # unquoted and scrubs the unquoted password from its debug log.
        secret = aioimaplib.quoted(account.password)
        command = aioimaplib.Command(
            "LOGIN",
            protocol.new_tag(),
            aioimaplib.quoted(account.username),
            secret,
            loop=protocol.loop,
        )
        response = await self._call(
            "LOGIN",
            asyncio.wait_for(protocol.execute(command, scrub=secret), account.timeout),
            secret=True,
        )
        if response.result == "NO":
            raise ImapAuthError(f"IMAP authentication failed for {where}: {_text(response)}")
        _ok(response, "LOGIN")
        protocol.state = aioimaplib.AUTH
        # Capabilities change after login (IDLE is often only listed now);
        # aioimaplib's reading of the LOGIN reply's list is unreliable.
        await self._call("CAPABILITY", protocol.capability())

    async def _select(self) -> None:
        mailbox = self.account.mailbox
        response = await self._call("SELECT", self._client.select(aioimaplib.quoted(mailbox)))
        lines = _ok(response, f"SELECT {mailbox}")
        for line in lines:
            match = _UIDVALIDITY.search(bytes(line))
            if match:
                self.uidvalidity = int(match.group(1))
                return
        raise ImapProtocolError(f"SELECT {mailbox}: no UIDVALIDITY in the reply")

    async def _fetch(self, uid: int, items: str) -> _FetchItem | None:
        response = await self._call("UID FETCH", self._client.uid("fetch", str(uid), items))
        for item in _fetch_items(_ok(response, f"UID FETCH {uid}")):
            if item.uid == uid:
                return item
        return None

    async def _call(self, what: str, awaitable: Awaitable[T], *, secret: bool = False) -> T:
        """Await a command, failing fast if the connection drops meanwhile.

        `secret`: aioimaplib's errors can quote the command (the LOGIN
        password included), so they are neither shown nor chained."""
        command = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self._protocol.lost.wait())
        try:
            await asyncio.wait({command, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if not command.done():
            command.cancel()
            raise ImapConnectionError(f"{what}: connection to {self._where} lost")
        error: ImapError
        try:
            return command.result()
        except (aioimaplib.CommandTimeout, TimeoutError) as exc:
            error = ImapConnectionError(f"{what}: {self._where} did not answer in time")
            cause: BaseException = exc
        except aioimaplib.AioImapException as exc:
            error = ImapProtocolError(f"{what}: " + ("unexpected reply" if secret else str(exc)))
            cause = exc
        if secret:
            raise error from None
        raise error from cause

    @property
    def _where(self) -> str:
        return f"{self.account.host}:{self.account.port}"


def _ok(response: Any, what: str) -> list[Any]:
    """The untagged lines of an OK reply; the last line is the tagged one."""
    if response.result != "OK":
        raise ImapProtocolError(f"{what}: {response.result} {_text(response)}")
    lines: list[Any] = list(response.lines[:-1])
    return lines


def _text(response: Any) -> str:
    lines = response.lines
    last = bytes(lines[-1]) if lines else b""
    return last.decode("utf-8", "replace")[:200]


def _fetch_items(lines: list[Any]) -> list[_FetchItem]:
    """Group aioimaplib's FETCH lines: a `n FETCH (` line, then literals
    (bytearray, exactly the bytes received) and continuation lines."""
    items: list[_FetchItem] = []
    text = b""
    literal: bytes | None = None
    started = False
    for line in lines:
        if isinstance(line, bytearray):
            if started and _FETCH_BODY.search(text):
                literal = bytes(line)
            text += b" {literal}"  # other literals are not ours to read
            continue
        if _FETCH_START.match(line):
            if started:
                items.append(_fetch_item(text, literal))
            text, literal, started = bytes(line), None, True
        elif started:
            text += bytes(line)
    if started:
        items.append(_fetch_item(text, literal))
    return items


def _fetch_item(text: bytes, literal: bytes | None) -> _FetchItem:
    match = _FETCH_UID.search(text)
    return _FetchItem(int(match.group(1)) if match else None, text, literal)
