"""A throwaway IMAP server: pymap's in-memory `dict` backend on a free port
on 127.0.0.1, with one user whose name and password we choose.

    with ImapServer.start(ca) as server:      # STARTTLS offered (CAPABILITY lists it)
    with ImapServer.start() as server:        # plain text only (pymap --no-tls)
        uid = await server.append(raw)        # mail arrives: an APPEND over IMAP
        server.stop(); server.start_again()   # an outage; the mailbox comes back empty

    async with ImapProxy.start(server.port, ca=ca) as proxy:   # implicit TLS (IMAPS)

pymap has no implicit-TLS listener, so `ImapProxy` terminates TLS in the
test's event loop and forwards to a plain-text pymap, as a TLS-terminating
load balancer would. pymap also lets a client on a loopback address LOGIN
before STARTTLS (it trusts local connections), so "the client really used
TLS" is shown by certificate checks, not by a refused plain-text LOGIN.

Messages go in the way mail really arrives from the server's point of view:
an IMAP APPEND on a separate connection, with the standard library's imaplib
(not the client under test) in a worker thread. imaplib turns a lone CR or LF
into CRLF, so messages written with CRLF arrive byte for byte.

Missing binaries are an error, never a reason to skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from tests.services.tls import TestCA

HOST = "127.0.0.1"
USER = "support@example.com"
PASSWORD = 'correct horse "battery" staple'  # a space and quotes: quoting is exercised
_READY_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0
_START_ATTEMPTS = 3
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


class ImapServerNotFound(RuntimeError):
    pass


def find_pymap() -> Path:
    """The `pymap` script next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "pymap"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    on_path = shutil.which("pymap")
    if on_path:
        return Path(on_path)
    raise ImapServerNotFound(
        "pymap not found next to the Python interpreter or on PATH. Install the test "
        "extras (pip install -e '.[test]'), which include pymap."
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class ImapServer:
    """A running pymap. Use `ImapServer.start()` as a context manager."""

    def __init__(self, *, binary: Path, root: Path, ca: TestCA | None) -> None:
        self.binary = binary
        self.root = root
        self.ca = ca
        self.log_file = root / "pymap.log"
        self.host = HOST
        self.port = 0
        self.user = USER
        self.password = PASSWORD
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    @contextlib.contextmanager
    def start(cls, ca: TestCA | None = None) -> Iterator[ImapServer]:
        """With `ca`, pymap offers STARTTLS with `ca`'s server certificate;
        without, it speaks plain text only."""
        binary = find_pymap()
        root = Path(tempfile.mkdtemp(prefix="threadline-imap-"))
        try:
            server = cls(binary=binary, root=root, ca=ca)
            try:
                server._start_on_free_port()
                yield server
            finally:
                server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)

    @property
    def starttls(self) -> bool:
        return self.ca is not None

    def stop(self) -> None:
        """Shut the server down and wait for it; connections drop, the port refuses."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def start_again(self) -> None:
        """Start the stopped server on the same port. The dict backend keeps
        nothing: the mailbox is new (another UIDVALIDITY) and empty."""
        if self._process is not None:
            raise RuntimeError("the IMAP server is running")
        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            try:
                self._launch()
                return
            except _PortTaken:
                # Ours to get back (a socket in TIME_WAIT, say): wait, don't move.
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"port {self.port} stayed taken; pymap could not start again:\n"
                        f"{self._log()}"
                    ) from None
                time.sleep(0.05)

    # --- Putting mail in -----------------------------------------------------

    async def append(self, raw: bytes, mailbox: str = "INBOX") -> int:
        """APPEND `raw` to `mailbox` as the test user; returns the new UID."""
        return await asyncio.to_thread(self._append, raw, mailbox)

    async def flags(self, uid: int, mailbox: str = "INBOX") -> bytes:
        """The message's FLAGS, read without changing them (EXAMINE)."""
        return await asyncio.to_thread(self._flags, uid, mailbox)

    async def create_mailbox(self, mailbox: str) -> None:
        await asyncio.to_thread(self._simple, "create", mailbox)

    async def delete_mailbox(self, mailbox: str) -> None:
        await asyncio.to_thread(self._simple, "delete", mailbox)

    def _append(self, raw: bytes, mailbox: str) -> int:
        with self._imaplib() as conn:
            typ, data = conn.append(mailbox, None, None, raw)
            reply = b" ".join(part for part in data if isinstance(part, bytes))
            match = _APPENDUID.search(reply)
            if typ != "OK" or match is None:
                raise RuntimeError(f"APPEND to {mailbox} failed: {typ} {data!r}")
            return int(match.group(2))

    def _flags(self, uid: int, mailbox: str) -> bytes:
        with self._imaplib() as conn:
            conn.select(mailbox, readonly=True)
            typ, data = conn.uid("FETCH", str(uid), "(FLAGS)")
            if typ != "OK" or not isinstance(data[0], bytes):
                raise RuntimeError(f"FETCH FLAGS of {uid} failed: {typ} {data!r}")
            match = re.search(rb"FLAGS \(([^)]*)\)", data[0])
            if match is None:
                raise RuntimeError(f"no FLAGS in {data!r}")
            return match.group(1)

    def _simple(self, command: str, mailbox: str) -> None:
        with self._imaplib() as conn:
            typ, data = getattr(conn, command)(mailbox)
            if typ != "OK":
                raise RuntimeError(f"{command.upper()} {mailbox} failed: {typ} {data!r}")

    @contextlib.contextmanager
    def _imaplib(self) -> Iterator[imaplib.IMAP4]:
        conn = imaplib.IMAP4(self.host, self.port, timeout=_READY_TIMEOUT)
        try:
            if self.ca is not None:
                conn.starttls(ssl_context=self.ca.client_context())
            conn.login(self.user, self.password)  # imaplib quotes the password
            yield conn
        finally:
            conn.logout()  # shuts the socket down even when LOGOUT fails

    # --- Process -------------------------------------------------------------

    def _start_on_free_port(self) -> None:
        # The port is free when picked but could be taken before pymap binds
        # it; only that failure is retried, with another port.
        for _ in range(_START_ATTEMPTS):
            self.port = free_port()
            try:
                self._launch()
                return
            except _PortTaken:
                continue
        raise RuntimeError(f"pymap could not bind a free port:\n{self._log()}")

    def _launch(self) -> None:
        """Start pymap on `self.port`, and wait until it sends its greeting."""
        tls = (
            ["--cert", str(self.ca.cert), "--key", str(self.ca.key)]
            if self.ca is not None
            else ["--no-tls"]
        )
        command = [
            str(self.binary),
            "--host",
            HOST,
            "--port",
            str(self.port),
            *tls,
            "dict",
            "--demo-user",
            self.user,
            "--demo-password",
            self.password,
        ]
        self.log_file.unlink(missing_ok=True)
        # FQDN: pymap names the host in its greeting, and would otherwise ask
        # DNS (socket.getfqdn), which can hang without a network.
        env = {**os.environ, "FQDN": "localhost"}
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + _READY_TIMEOUT
        # Exited first: another server on the port would greet us too.
        while process.poll() is not None or not _greets(self.port):
            if process.poll() is not None:
                log_text = self._log()
                if "address already in use" in log_text.lower():
                    raise _PortTaken
                raise RuntimeError(f"pymap exited with code {process.returncode}:\n{log_text}")
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise RuntimeError(f"pymap did not greet within {_READY_TIMEOUT} s:\n{self._log()}")
            time.sleep(0.01)
        self._process = process

    def _log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class _PortTaken(Exception):
    pass


def _greets(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


class ImapProxy:
    """A TCP proxy to `target_port` on 127.0.0.1, in the test's event loop.

    With `ca` it accepts TLS with the test CA's server certificate (implicit
    TLS, as a TLS-terminating load balancer would). `rewrite` edits what the
    server sends (say, to hide a capability); it sees whole reads, which is
    enough for the short lines it is meant for."""

    def __init__(self, target_port: int, rewrite: Callable[[bytes], bytes] | None) -> None:
        self.target_port = target_port
        self.rewrite = rewrite
        self.host = HOST
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._connections: set[asyncio.Task[Any]] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        target_port: int,
        *,
        ca: TestCA | None = None,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> AsyncIterator[ImapProxy]:
        proxy = cls(target_port, rewrite)
        context = ca.server_context() if ca is not None else None
        server = await asyncio.start_server(proxy._serve, HOST, 0, ssl=context)
        proxy.port = int(server.sockets[0].getsockname()[1])
        async with server:
            try:
                yield proxy
            finally:
                server.close()
                # Closing every socket ends every pipe; nothing is cancelled
                # (asyncio logs a cancelled connection callback as an error).
                for writer in proxy._writers:
                    writer.close()
                await asyncio.gather(*proxy._connections, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(client_w)
        writers = [client_w]
        try:
            server_r, server_w = await asyncio.open_connection(HOST, self.target_port)
            writers.append(server_w)
            self._writers.add(server_w)
            await asyncio.gather(
                _pipe(client_r, server_w, None), _pipe(server_r, client_w, self.rewrite)
            )
        except OSError:
            pass  # the target is down: the client sees its connection close
        finally:
            for writer in writers:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                    await asyncio.wait_for(writer.wait_closed(), _STOP_TIMEOUT)
                self._writers.discard(writer)
            self._connections.discard(task)


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    rewrite: Callable[[bytes], bytes] | None,
) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(rewrite(data) if rewrite else data)
            await writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        # One side ended: end the other, so the pair winds down together.
        writer.close()
