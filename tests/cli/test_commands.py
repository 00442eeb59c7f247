"""The CLI as a new user meets it: real processes, real uvicorn, real
sockets, a fresh data directory."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

THREADLINE = [sys.executable, "-m", "server"]
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def env_for(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
    env.update(
        THREADLINE_DATA_DIR=str(data_dir), THREADLINE_PORT=str(port), THREADLINE_LOG_LEVEL="warning"
    )
    return env


def wait_until_serving(proc: subprocess.Popen[str], base: str) -> None:
    """Poll the health endpoint until it answers (or the process died)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling interval of a condition wait, not a fixed delay
    raise AssertionError("server did not start in time")


def log_in(c: httpx.Client, email: str, password: str) -> None:
    """Log `c` in and send the session's CSRF token with its writes."""
    login = c.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    c.headers["x-csrf-token"] = login.json()["csrf_token"]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """`threadline serve` on a fresh data dir, after `create-admin`."""
    port = free_port()
    env = env_for(tmp_path / "data", port)
    created = subprocess.run(  # noqa: PLW1510 -- the return code is asserted
        [
            *THREADLINE,
            "create-admin",
            "--email",
            "Owner@Example.com",
            "--name",
            "Olga Owner",
            "--workspace",
            "Example Co",
            "--password-stdin",
        ],
        input="a long enough password\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    assert "created admin" in created.stdout
    proc = subprocess.Popen(
        [*THREADLINE, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, base)
        yield proc, base, tmp_path / "data"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def test_serve_uses_the_embedded_default_and_the_admin_can_log_in(
    running: tuple[subprocess.Popen[str], str, Path],
) -> None:
    _proc, base, data_dir = running
    assert (data_dir / "threadline.db").exists()
    key = data_dir / "secret.key"
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"
    with httpx.Client(base_url=base) as c:
        res = c.post(
            "/api/v1/auth/login",
            json={"email": "owner@example.com", "password": "a long enough password"},
        )
        assert res.status_code == 200, res.text
        cookie = res.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert c.get("/api/v1/auth/me").json()["agent"]["name"] == "Olga Owner"
        bad = c.post("/api/v1/auth/login", json={"email": "owner@example.com", "password": "wrong"})
        assert bad.status_code == 401


def test_create_admin_refuses_a_weak_password_with_a_clear_message(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data", free_port())
    res = subprocess.run(  # noqa: PLW1510 -- the return code is asserted
        [
            *THREADLINE,
            "create-admin",
            "--email",
            "a@example.com",
            "--name",
            "A",
            "--password-stdin",
        ],
        input="short\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0
    assert "password" in res.stderr and "Traceback" not in res.stderr


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    env = env_for(tmp_path / "data", free_port())
    for _ in range(2):
        res = subprocess.run(  # noqa: PLW1510 -- the return code is asserted
            [*THREADLINE, "migrate"], env=env, capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 0, res.stderr
        assert "database at head" in res.stdout


def test_demo_prints_a_login_that_works_and_shows_one_timeline_across_channels(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = env_for(tmp_path / "data", port)
    proc = subprocess.Popen(
        [*THREADLINE, "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        banner = ""
        while "Login:" not in banner:
            line = proc.stdout.readline()
            assert line, f"demo exited before printing a login: {banner}"
            banner += line
        login = re.search(r"Login:\s+(\S+) / (\S+)", banner)
        assert login, banner
        email, password = login.groups()
        wait_until_serving(proc, base)
        with httpx.Client(base_url=base) as c:
            assert (
                c.post(
                    "/api/v1/auth/login", json={"email": email, "password": password}
                ).status_code
                == 200
            )
            conversations = c.get("/api/v1/conversations", params={"limit": 100}).json()["items"]
            assert len({conv["inbox_id"] for conv in conversations}) >= 2
            by_contact: dict[int, set[int]] = {}
            for conv in conversations:
                by_contact.setdefault(conv["contact_id"], set()).add(conv["inbox_id"])
            # One customer talked on two channels; the timeline shows both.
            contact_id = next(cid for cid, inboxes in by_contact.items() if len(inboxes) > 1)
            timeline = c.get(
                f"/api/v1/contacts/{contact_id}/timeline", params={"limit": 100}
            ).json()["items"]
            assert {item["channel"] for item in timeline} >= {"widget", "email"}
            times = [item["created_at"] for item in timeline]
            assert times == sorted(times)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
