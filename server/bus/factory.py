"""Pick the bus from the settings: Redis when a URL is set, else in-process."""

from __future__ import annotations

from server.bus.base import Bus
from server.bus.memory import MemoryBus


def make_bus(redis_url: str) -> Bus:
    """`MemoryBus` for an empty URL (the embedded default, which needs no
    redis package), `RedisBus` otherwise. Connects on first use."""
    url = redis_url.strip()
    if not url:
        return MemoryBus()
    try:
        from server.bus.redis import RedisBus  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        if exc.name is None or exc.name.split(".")[0] != "redis":
            raise
        raise RuntimeError(
            "THREADLINE_REDIS_URL is set but the redis package is not installed; "
            "install it with: pip install 'threadline[redis]'"
        ) from exc
    return RedisBus(url)
