"""Sliding-window limits for abuse-prone requests (PROTOCOLS.md P7): login,
widget sessions and writes, uploads, search, message floods.

Kept in process memory: with several `serve` processes each enforces its
own window, so the effective limit is multiplied by the process count.
Each limit is one named `SlidingWindow` on the app's state, made on first
use by `window`; `count` is how a request spends its allowance.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from datetime import datetime

from starlette.requests import HTTPConnection

from server.domain.errors import RateLimited
from server.runtime import Runtime

_MAX_KEYS = 100_000


def client_ip(conn: HTTPConnection) -> str:
    """The peer address rate limits are keyed by."""
    return conn.client.host if conn.client else "unknown"


class SlidingWindow:
    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = {}

    def check(self, key: str, now: datetime) -> None:
        """Raise RateLimited if `key` already used its allowance."""
        hits = self._prune(key, now.timestamp())
        if len(hits) >= self.limit:
            retry = math.ceil(hits[0] + self.window - now.timestamp())
            raise RateLimited("too many attempts; try again later", retry_after=max(retry, 1))

    def hit(self, key: str, now: datetime) -> None:
        if len(self._hits) >= _MAX_KEYS and key not in self._hits:
            self._evict(now.timestamp())
        self._prune(key, now.timestamp()).append(now.timestamp())

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def _prune(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def _evict(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]


def window(state: object, name: str, size: tuple[int, int]) -> SlidingWindow:
    """The app's window `name` (on `state`, the app's state), made with
    `size` = (requests, per seconds) on first use."""
    found: SlidingWindow | None = getattr(state, name, None)
    if found is None:
        found = SlidingWindow(*size)
        setattr(state, name, found)
    return found


def count(
    state: object, name: str, size: tuple[int, int], keys: Iterable[str], now: datetime
) -> None:
    """Spend one request of every key's allowance, or raise RateLimited.

    Every key is checked before any is counted: when one caller is keyed by
    both its account and its IP, both limits apply, and a refused request
    uses up neither."""
    limiter, keys = window(state, name, size), list(keys)
    for key in keys:
        limiter.check(key, now)
    for key in keys:
        limiter.hit(key, now)


def count_message(conn: HTTPConnection, runtime: Runtime, *, target: str, account: str) -> None:
    """One message into `target` (a conversation, or for a widget visitor
    its contact's conversation) from `account`, within the settings'
    message limit: a flood into one conversation is refused per account and
    per IP alike, and one caller's flood never uses up another caller's
    allowance in the same conversation."""
    keys = [f"{target}:{account}", f"{target}:ip:{client_ip(conn)}"]
    size, now = runtime.settings.message_limit, runtime.clock.now()
    count(conn.app.state, "message_flood_limiter", size, keys, now)
