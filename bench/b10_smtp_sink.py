"""The SMTP sink of B10 (bench/b10_touchpoints.py): aiosmtpd on 127.0.0.1,
in its own process, that accepts every mail and counts it and its
Message-ID, so the benchmark can prove that no mail arrived twice.

    python bench/b10_smtp_sink.py --port 2525 --status /tmp/sink.json

Every 0.2 s (and on SIGTERM, before exiting) it rewrites `--status` with
{"count", "unique", "duplicates", "connections", "first", "last"}: mails
accepted, distinct Message-IDs, Message-IDs seen more than once (up to
20 of them), connections opened, and the wall-clock times of the first
and last mail (time.time()).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.ids: dict[bytes, int] = {}
        self.connections = 0
        self.first: float | None = None
        self.last: float | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = time.time()
        self.first = self.first or now
        self.last = now
        self.count += 1
        data = envelope.original_content or b""
        head = data.split(b"\r\n\r\n", 1)[0]
        found = MESSAGE_ID.search(head)
        key = found.group(1) if found else b"(none)"
        self.ids[key] = self.ids.get(key, 0) + 1
        return "250 OK"

    def status(self) -> dict[str, Any]:
        dupes = [k.decode(errors="replace") for k, n in self.ids.items() if n > 1]
        return {
            "count": self.count,
            "unique": len(self.ids),
            "duplicates": dupes[:20],
            "connections": self.connections,
            "first": self.first,
            "last": self.last,
        }


def write_status(path: Path, counter: Counter) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(counter.status()))
    os.replace(tmp, path)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--status", type=Path, required=True)
    a = ap.parse_args()
    counter = Counter()
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        counter.connections += 1
        return SMTP(counter, hostname="sink.bench", decode_data=False)

    server = await loop.create_server(factory, host="127.0.0.1", port=a.port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    write_status(a.status, counter)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
        write_status(a.status, counter)
    server.close()
    write_status(a.status, counter)


if __name__ == "__main__":
    asyncio.run(main())
