"""`threadline demo` started alone sends its mail somewhere a new user can
see it: its own mail sink, in the same process, saving into the data
directory. `threadline mail-sink` saves there too. Real processes."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
from email.message import EmailMessage
from pathlib import Path

import httpx

from tests.cli.test_commands import THREADLINE, env_for, free_port, log_in, wait_until_serving
from tests.cli.test_demo_email import send, wait_for_file


def test_demo_delivers_replies_to_its_own_sink(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    env = env_for(data, port)
    # The default log level, at which Alembic would narrate the migration.
    del env["THREADLINE_LOG_LEVEL"]
    env["THREADLINE_SMTP_LISTEN"] = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [*THREADLINE, "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    output = ""
    try:
        assert proc.stdout is not None
        while "Data in:" not in output:
            line = proc.stdout.readline()
            assert line, f"demo exited early: {output}"
            output += line
        sent_dir = data.resolve() / "sent-mail"
        assert f"Mail out: saved in {sent_dir}/" in output, output
        found = re.search(r"Login:\s+(\S+) / (\S+)", output)
        assert found is not None
        wait_until_serving(proc, base)
        with httpx.Client(base_url=base) as c:
            log_in(c, found[1], found[2])
            hits = c.get("/api/v1/search", params={"q": "INV-2207"}).json()["conversations"]
            [hit] = hits
            reply = c.post(
                f"/api/v1/conversations/{hit['conversation']['id']}/messages",
                json={"text": "Here it is, attached."},
            )
            assert reply.status_code == 201, reply.text
        sent = email.message_from_bytes(
            wait_for_file(sent_dir, "0001.eml"), policy=email.policy.default
        )
        assert sent["To"] == "noah@example.com"
        body = sent.get_body(preferencelist=("plain",))
        assert isinstance(body, EmailMessage)
        assert "Here it is, attached." in body.get_content()
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=30)
        output += rest
    assert "connection refused" not in output.lower()
    assert not [line for line in output.splitlines() if "alembic" in line.lower()], output


def test_demo_help_names_its_ports() -> None:
    shown = subprocess.run(
        [*THREADLINE, "demo", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    flat = " ".join(shown.split())
    for port in ("PORT+1", "PORT+25", "PORT+26", "default 8000"):
        assert port in flat, shown


def test_mail_sink_saves_into_the_data_directory(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    proc = subprocess.Popen(
        [*THREADLINE, "mail-sink", "--mail-port", str(port)],
        env=env_for(data, free_port()),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "mail sink listening" in proc.stdout.readline()
        msg = EmailMessage()
        msg["From"] = "a@example.test"
        msg["To"] = "b@example.test"
        msg["Subject"] = "Kept with the data"
        msg.set_content("hello")
        send(port, msg)
        saved = wait_for_file(data.resolve() / "sent-mail", "0001.eml")
        assert b"Kept with the data" in saved
        assert list(cwd.iterdir()) == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
