"""`threadline mail-sink`: a local SMTP server that takes every mail and
shows it, for trying outbound email without a real mail server (point
THREADLINE_SMTP_URL at it: smtp://127.0.0.1:1025?security=none). Each
mail is printed (envelope, threading headers, the plain text) and saved
as an .eml file."""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import signal
from pathlib import Path

from connectors.email.smtp_listener import Envelope, ListenerConfig, SmtpListener, Verdict

SHOWN_HEADERS = (
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
)


def _prepare(directory: Path) -> int:
    """Make the directory; the number the next saved mail gets."""
    directory.mkdir(parents=True, exist_ok=True)
    return len(list(directory.glob("*.eml"))) + 1


async def run_mail_sink(host: str, port: int, directory: Path) -> None:
    counter = itertools.count(await asyncio.to_thread(_prepare, directory))

    async def accept(address: str) -> bool:
        return True

    async def sink(envelope: Envelope, raw: bytes) -> Verdict:
        path = directory / f"{next(counter):04d}.eml"
        await asyncio.to_thread(path.write_bytes, raw)
        print(describe(envelope, raw, path), flush=True)
        return Verdict.accepted()

    listener = SmtpListener(
        ListenerConfig(host=host, port=port, hostname="mail-sink"),
        check_recipient=accept,
        sink=sink,
    )
    await listener.start()
    print(f"mail sink listening on {host}:{listener.port}, saving to {directory}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await listener.stop()


def describe(envelope: Envelope, raw: bytes, path: Path) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    lines = [f"--- mail {path.name}: MAIL FROM <{envelope.mail_from}> RCPT TO {envelope.rcpt_tos}"]
    for name in SHOWN_HEADERS:
        value = message.get(name)
        if value is not None:
            lines.append(f"{name}: {value}")
    body = message.get_body(preferencelist=("plain",))
    if isinstance(body, email.message.EmailMessage):
        lines.append("")
        lines.append(body.get_content().rstrip())
    return "\n".join(lines)
