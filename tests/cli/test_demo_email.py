"""The email channel as a new user tries it: `threadline mail-sink` in one
process, `threadline demo` in another, a mail sent with Python's smtplib
to the demo's SMTP listener, a reply from the API arriving at the sink
with headers that continue the thread, and the customer's answer joining
the same conversation. Real processes, real sockets."""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
import subprocess
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.cli.test_commands import THREADLINE, env_for, free_port, log_in, wait_until_serving

DEADLINE = 60.0


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    port, directory = free_port(), tmp_path / "mail"
    proc = subprocess.Popen(
        [*THREADLINE, "mail-sink", "--mail-port", str(port), "--dir", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "mail sink listening" in proc.stdout.readline()
        yield port, directory
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()


def wait_for_file(directory: Path, name: str) -> bytes:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        path = directory / name
        if path.exists():
            return path.read_bytes()
        time.sleep(0.05)  # polling interval of a condition wait
    raise AssertionError(f"no {name} in {directory}")


def send(port: int, msg: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(msg)


def wait_for_messages(c: httpx.Client, conversation_id: int, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        items: list[dict[str, object]] = c.get(
            f"/api/v1/conversations/{conversation_id}/messages"
        ).json()["items"]
        if len(items) >= count:
            return items
        time.sleep(0.05)
    raise AssertionError(f"conversation {conversation_id} never had {count} messages")


def test_mail_in_reply_out_and_the_answer_threads(tmp_path: Path, sink: tuple[int, Path]) -> None:
    sink_port, mail_dir = sink
    port, smtp_port = free_port(), free_port()
    env = env_for(tmp_path / "data", port)
    env["THREADLINE_SMTP_LISTEN"] = f"127.0.0.1:{smtp_port}"
    env["THREADLINE_SMTP_URL"] = f"smtp://127.0.0.1:{sink_port}?security=none"
    proc = subprocess.Popen(
        [*THREADLINE, "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        banner = ""
        while "Login:" not in banner:
            line = proc.stdout.readline()
            assert line, f"demo exited early: {banner}"
            banner += line
        assert f"Mail in:  SMTP 127.0.0.1:{smtp_port}, to support@demo-shop.test" in banner
        found_login = re.search(r"Login:\s+(\S+) / (\S+)", banner)
        assert found_login is not None
        login_email, password = found_login.groups()
        wait_until_serving(proc, base)

        first = EmailMessage()
        first["From"] = "Robin Test <robin@customer.test>"
        first["To"] = "support@demo-shop.test"
        first["Subject"] = "Gift wrapping?"
        first["Message-ID"] = "<robin-1@customer.test>"
        first.set_content("Hi! Can you gift-wrap order #2001?")
        send(smtp_port, first)

        with httpx.Client(base_url=base) as c:
            log_in(c, login_email, password)
            found = c.get("/api/v1/search", params={"q": "gift-wrap"}).json()["conversations"]
            [conversation] = found
            conversation_id = conversation["conversation"]["id"]
            reply = c.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"text": "Of course, free of charge."},
            )
            assert reply.status_code == 201, reply.text

            sent = email.message_from_bytes(
                wait_for_file(mail_dir, "0001.eml"), policy=email.policy.default
            )
            assert sent["To"] == "robin@customer.test"
            assert sent["Subject"] == "Re: Gift wrapping?"
            assert sent["In-Reply-To"] == "<robin-1@customer.test>"
            assert sent["References"] == "<robin-1@customer.test>"
            reply_to = sent["Reply-To"].addresses[0].addr_spec
            assert reply_to.startswith("reply+")

            answer = EmailMessage()
            answer["From"] = "robin@customer.test"
            answer["To"] = reply_to
            answer["Subject"] = "Re: Gift wrapping?"
            answer["Message-ID"] = "<robin-2@customer.test>"
            answer["In-Reply-To"] = sent["Message-ID"]
            answer["References"] = f"<robin-1@customer.test> {sent['Message-ID']}"
            answer.set_content("Wonderful, thank you!\n\nOn Monday you wrote:\n> Of course")
            send(smtp_port, answer)
            items = wait_for_messages(c, conversation_id, 3)
            assert [m["text"] for m in items] == [
                "Hi! Can you gift-wrap order #2001?",
                "Of course, free of charge.",
                "Wonderful, thank you!",
            ]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
