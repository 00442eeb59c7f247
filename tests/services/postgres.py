"""A throwaway PostgreSQL server: `initdb` on a temp dir, `pg_ctl start` on a
free port on 127.0.0.1, `pg_ctl stop -m immediate` at the end.

Durability is switched off (fsync, synchronous_commit, full_page_writes):
the data is thrown away anyway, and it makes the server start in about a
second. PostgreSQL refuses to run as root, so as root the server runs as
`nobody` in a directory owned by it.

    with PostgresServer.start() as server:
        url = await server.create_database()  # postgresql+asyncpg://...

Missing binaries are an error, never a reason to skip: a test run that
silently skipped the PostgreSQL half would claim more than it checked.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg

HOST = "127.0.0.1"
SUPERUSER = "postgres"
UNPRIVILEGED_USER = "nobody"
_START_ATTEMPTS = 3


class PostgresNotFound(RuntimeError):
    pass


def find_bin_dir() -> Path:
    """The directory holding `initdb` and `pg_ctl`: from PATH, else the
    newest /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = []
    for bin_dir in glob.glob("/usr/lib/postgresql/*/bin"):
        version = Path(bin_dir).parent.name
        if (Path(bin_dir) / "initdb").is_file() and (Path(bin_dir) / "pg_ctl").is_file():
            candidates.append((_version_key(version), Path(bin_dir)))
    if not candidates:
        raise PostgresNotFound(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
            "/usr/lib/postgresql/*/bin. Install them (Debian: apt-get install postgresql); "
            ".ci/run does this."
        )
    return max(candidates)[1]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A running server. Use `PostgresServer.start()` as a context manager."""

    def __init__(self, *, bin_dir: Path, root: Path, port: int, run_as: str | None) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data_dir = root / "data"
        self.log_file = root / "postgres.log"
        self.port = port
        self.run_as = run_as
        self._database_numbers = itertools.count(1)

    @classmethod
    @contextlib.contextmanager
    def start(cls) -> Iterator[PostgresServer]:
        bin_dir = find_bin_dir()
        run_as = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="threadline-pg-"))
        try:
            if run_as is not None:
                _hand_over(root, run_as)
            server = cls(bin_dir=bin_dir, root=root, port=0, run_as=run_as)
            server._initdb()
            try:
                server._start()
                yield server
            finally:
                server._stop_if_running()
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@{HOST}:{self.port}/{database}"

    async def create_database(self, template: str | None = None) -> str:
        """Create a database (empty, or a copy of `template`) and return its
        SQLAlchemy URL."""
        name = f"test_{next(self._database_numbers)}"
        conn = await asyncpg.connect(host=HOST, port=self.port, user=SUPERUSER, database="postgres")
        try:
            clause = f' TEMPLATE "{template}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{clause}')
        finally:
            await conn.close()
        return self.url(name)

    @staticmethod
    def database_name(url: str) -> str:
        return url.rsplit("/", 1)[1]

    def _initdb(self) -> None:
        self._run(
            "initdb",
            f"--pgdata={self.data_dir}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        )

    def _start(self) -> None:
        # The port is free when picked but could be taken before the server
        # binds it; only that failure is retried, with another port.
        for _ in range(_START_ATTEMPTS):
            self.port = free_port()
            self.log_file.unlink(missing_ok=True)
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses={HOST}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                # --wait returns once the server accepts connections.
                self._run(
                    "pg_ctl",
                    f"--pgdata={self.data_dir}",
                    f"--log={self.log_file}",
                    f"--options={options}",
                    "--wait",
                    "start",
                )
                return
            except RuntimeError:
                if "Address already in use" not in self._log():
                    raise
        raise RuntimeError(f"PostgreSQL could not bind a free port:\n{self._log()}")

    def _stop_if_running(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", f"--pgdata={self.data_dir}", "--mode=immediate", "--wait", "stop")

    def _log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        # cwd: the unprivileged user may not be able to enter ours.
        result = subprocess.run(
            command,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed with exit code {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\nlog:\n{self._log()}"
            )


def _hand_over(root: Path, user: str) -> None:
    """Give `root` to `user`, checking the user can reach it at all."""
    entry = pwd.getpwnam(user)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    for parent in root.parents:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            raise RuntimeError(
                f"{parent} is not traversable by other users, so PostgreSQL (running as "
                f"{user}) cannot reach {root}; set TMPDIR to a directory that is (e.g. /tmp)"
            )
