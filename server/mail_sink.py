"""`threadline mail-sink`: a local SMTP server that takes every mail and
shows it, for trying outbound email without a real mail server (point
THREADLINE_SMTP_URL at it: smtp://127.0.0.1:1025?security=none). Each
mail is printed (envelope, threading headers, the plain text) and saved
as an .eml file, by default in the data directory's `sent-mail/`."""

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


# Where sent mail is saved unless told otherwise: inside the data directory,
# next to the database, so a demo or a trial never litters the directory
# it happened to be started from.
SINK_DIR_NAME = "sent-mail"


def default_sink_dir(data_dir: Path) -> Path:
    return data_dir / SINK_DIR_NAME


def _prepare(directory: Path) -> int:
    """Make the directory; the number the next saved mail gets."""
    directory.mkdir(parents=True, exist_ok=True)
    return len(list(directory.glob("*.eml"))) + 1


class MailSink:
    """An SMTP server on the running loop that accepts every mail, saves
    it as `NNNN.eml` in `directory` and prints it. `threadline mail-sink`
    runs one on its own; `threadline demo` runs one next to the server so
    its replies have somewhere to go."""

    def __init__(self, host: str, port: int, directory: Path) -> None:
        self.directory = directory
        self._counter = itertools.count(1)
        self._listener = SmtpListener(
            ListenerConfig(host=host, port=port, hostname="mail-sink"),
            check_recipient=self._accept,
            sink=self._save,
        )

    @property
    def port(self) -> int:
        return self._listener.port

    async def start(self) -> None:
        self._counter = itertools.count(await asyncio.to_thread(_prepare, self.directory))
        await self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def _accept(self, address: str) -> bool:
        return True

    async def _save(self, envelope: Envelope, raw: bytes) -> Verdict:
        path = self.directory / f"{next(self._counter):04d}.eml"
        await asyncio.to_thread(path.write_bytes, raw)
        print(describe(envelope, raw, path), flush=True)
        return Verdict.accepted()


async def run_mail_sink(host: str, port: int, directory: Path) -> None:
    sink = MailSink(host, port, directory)
    await sink.start()
    print(f"mail sink listening on {host}:{sink.port}, saving to {directory}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sink.stop()


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
