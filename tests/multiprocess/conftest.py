"""Several real `threadline serve` processes on one PostgreSQL database and
one Redis, as a deployment runs them behind a load balancer.

`cluster` starts, for the module: a Redis of its own (the tests stop and
restart it), a fresh database on the session's PostgreSQL server, an admin
made with `create-admin`, then servers A and B on free ports, sharing the
database, the Redis and the secret key, each with its own data directory.
Setup goes through the REST API of A: login, an inbox, a contact, an API
token.

Every server's output goes to a file. A server that dies, or that does
not stop when asked, fails the test with that output.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.services.postgres import PostgresServer
from tests.services.redis import RedisServer

T = TypeVar("T")

THREADLINE = [sys.executable, "-m", "server"]
REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "a long enough password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _run_apart(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on its own thread and loop (fixtures may be set up
    while a test's loop is running)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclasses.dataclass
class ServerProcess:
    """One `threadline serve`, its output in `log_path`."""

    name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise AssertionError(
                f"server {self.name} exited with code {code}; its output:\n{self.output()}"
            )

    def wait_until_serving(self) -> None:
        """Poll /healthz until it answers (or the process died)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling interval of a condition wait, not a fixed delay
        raise AssertionError(
            f"server {self.name} did not answer /healthz within {STARTUP_TIMEOUT} s; "
            f"its output:\n{self.output()}"
        )

    def stop(self) -> str | None:
        """Terminate (SIGTERM, then SIGKILL after STOP_TIMEOUT) and reap.
        Returns what went wrong, if anything: the process had died before,
        or it ignored SIGTERM."""
        died = self.process.poll()
        if died is not None:
            return f"server {self.name} had died (code {died}); its output:\n{self.output()}"
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return (
                f"server {self.name} did not exit within {STOP_TIMEOUT} s of SIGTERM "
                f"and was killed; its output:\n{self.output()}"
            )
        return None


@dataclasses.dataclass
class Cluster:
    redis: RedisServer
    database_url: str
    a: ServerProcess
    b: ServerProcess
    session_cookie: str
    csrf_token: str
    api_token: str
    inbox_id: int
    contact_id: int

    @property
    def servers(self) -> tuple[ServerProcess, ServerProcess]:
        return (self.a, self.b)

    def check_alive(self) -> None:
        for server in self.servers:
            server.check_alive()

    def agent_client(self, server: ServerProcess) -> httpx.AsyncClient:
        """An HTTP client logged in as the admin (session cookie + CSRF
        token, as the browser UI sends them) on `server`."""
        return httpx.AsyncClient(
            base_url=server.base_url,
            cookies={"tl_session": self.session_cookie},
            headers={"x-csrf-token": self.csrf_token},
            timeout=HTTP_TIMEOUT,
        )

    def bearer_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}


def _environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update(settings)
    return env


def _start_server(name: str, env: dict[str, str], data_dir: Path, log_dir: Path) -> ServerProcess:
    port = _free_port()
    log_path = log_dir / f"server-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*THREADLINE, "serve"],
            env={**env, "THREADLINE_DATA_DIR": str(data_dir), "THREADLINE_PORT": str(port)},
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(name=name, port=port, log_path=log_path, process=process)


def _create_admin(env: dict[str, str], data_dir: Path) -> None:
    made = subprocess.run(  # noqa: PLW1510 -- the return code is asserted
        [
            *THREADLINE,
            "create-admin",
            "--email",
            ADMIN_EMAIL,
            "--name",
            "Ada Admin",
            "--workspace",
            "Two Processes",
            "--password-stdin",
        ],
        input=ADMIN_PASSWORD + "\n",
        env={**env, "THREADLINE_DATA_DIR": str(data_dir)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, f"create-admin failed:\n{made.stdout}\n{made.stderr}"


def _created(res: httpx.Response) -> dict[str, Any]:
    assert res.status_code == 201, f"{res.request.method} {res.request.url}: {res.text}"
    body: dict[str, Any] = res.json()
    return body


@pytest.fixture(scope="module")
def cluster(
    pg_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    database_url = _run_apart(pg_server.create_database())
    with RedisServer.start() as redis, contextlib.ExitStack() as stack:
        env = _environment(
            THREADLINE_DATABASE_URL=database_url,
            THREADLINE_REDIS_URL=redis.url,
            THREADLINE_SECRET_KEY=secrets.token_urlsafe(48),
            THREADLINE_LOG_LEVEL="warning",
        )
        _create_admin(env, root / "data-a")
        servers: list[ServerProcess] = []
        problems: list[str] = []

        def stop_all() -> None:
            problems.extend(p for p in (s.stop() for s in servers) if p is not None)

        stack.callback(stop_all)
        for name in ("A", "B"):
            servers.append(_start_server(name, env, root / f"data-{name.lower()}", root))
        a, b = servers
        for server in servers:
            server.wait_until_serving()

        with httpx.Client(base_url=a.base_url, timeout=HTTP_TIMEOUT) as http:
            res = http.post(
                "/api/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            assert res.status_code == 200, res.text
            csrf = res.json()["csrf_token"]
            cookie = http.cookies["tl_session"]
            http.headers["x-csrf-token"] = csrf
            inbox = _created(http.post("/api/v1/inboxes", json={"name": "API", "kind": "api"}))
            contact = _created(
                http.post(
                    "/api/v1/contacts",
                    json={
                        "name": "Cora Customer",
                        "identities": [{"kind": "email", "value": "cora@example.com"}],
                    },
                )
            )
            token = _created(http.post("/api/v1/tokens", json={"name": "socket on B"}))

        yield Cluster(
            redis=redis,
            database_url=database_url,
            a=a,
            b=b,
            session_cookie=cookie,
            csrf_token=csrf,
            api_token=token["token"],
            inbox_id=inbox["id"],
            contact_id=contact["id"],
        )
        stack.close()
        if problems:
            pytest.fail("\n\n".join(problems))
