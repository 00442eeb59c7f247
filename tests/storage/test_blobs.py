"""The local blob store: random keys, whole files or nothing, no path
tricks through a key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.storage.blobs import LocalBlobStore, new_key


async def test_put_get_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "attachments")
    key = new_key()
    assert await store.get(key) is None
    await store.put(key, b"bytes")
    assert await store.get(key) == b"bytes"
    [path] = [p for p in (tmp_path / "attachments").rglob("*") if p.is_file()]
    assert path.name == key  # no temporary file left next to it
    await store.delete(key)
    await store.delete(key)  # deleting twice is fine
    assert await store.get(key) is None


def test_keys_are_random_and_path_safe() -> None:
    keys = {new_key() for _ in range(1000)}
    assert len(keys) == 1000
    assert all(len(k) >= 40 and "/" not in k and "." not in k for k in keys)


@pytest.mark.parametrize("key", ["../../etc/passwd", "short", "a" * 30 + "/b", "", "x" * 200])
async def test_a_key_that_is_not_ours_is_refused(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(ValueError):
        await store.put(key, b"x")
    with pytest.raises(ValueError):
        await store.get(key)


async def test_a_failed_write_leaves_nothing_under_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path)
    key = new_key()

    def crash(fd: int) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        await store.put(key, b"half a file")
    monkeypatch.undo()
    assert await store.get(key) is None
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
