"""Where uploaded bytes live: a small key -> bytes store.

Keys are random (`new_key`), never derived from a file name, so a name
can't steer a write outside the store or collide with another file; the
database row (server.storage.tables.attachments) says what the bytes are
and who may read them. The local implementation keeps one file per key
under `<data dir>/attachments`, sharded by the key's first two characters.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def new_key() -> str:
    """A fresh random storage key (256 bits, URL- and path-safe)."""
    return secrets.token_urlsafe(32)


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`. When this returns the bytes are durable
        and complete; a crash before that leaves nothing under `key`."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under `key`, or None."""
        ...

    async def delete(self, key: str) -> None:
        """Forget `key` (nothing happens if it is unknown)."""
        ...


class LocalBlobStore:
    """Files on the local disk. Writes go to a temporary file in the same
    directory, are fsynced, then renamed into place: rename is atomic, so a
    reader (or a crash) never sees half a file under a valid key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        # Keys come from new_key(); anything else could be a path trick.
        if not _KEY.match(key):
            raise ValueError("not a storage key")
        return self.root / key[:2] / key

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    async def get(self, key: str) -> bytes | None:
        return await asyncio.to_thread(self._get, self._path(key))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # The rename itself is durable only once the directory is synced.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @staticmethod
    def _get(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
