"""A sliding-window limiter for rare, abuse-prone requests (login).

Kept in process memory: with several `serve` processes each enforces its
own window, so the effective limit is multiplied by the process count.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime

from server.domain.errors import RateLimited

_MAX_KEYS = 100_000


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
