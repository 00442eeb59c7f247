"""Keeping full garbage collections short in a server holding thousands
of long-lived sockets (bench/RESULTS.md, "B3 memory and GC pauses").

CPython's full (generation 2) collection walks every tracked object: at
5,000 live sockets, ~150 objects each, that is ~0.6 s with the event loop
stopped, and under steady traffic one comes every so often. Objects moved
to the permanent generation by `gc.freeze()` are never walked again (they
are still freed by reference counting), so:

- at start-up, once everything the server loads is loaded, it is frozen;
- while serving, each time sockets have been opened since the last look
  (twice a second), the heap is collected (only what is not frozen yet:
  what came since, a fraction of the whole) and frozen again, so the
  sockets' state moves out of the collector's sight soon after it is made;
- what was frozen and then became garbage in a reference cycle is only
  found by a collection of everything: after as many sockets closed as
  `compact_ratio` times those open (and at least `compact_floor`), the
  heap is unfrozen, collected whole and frozen again. A socket's own
  teardown leaves next to no cycles (server.serving breaks them), so this
  bounds the leftovers of the rest; it is the one long pause left, rare
  and proportional to churn, not to traffic.

`HeapPolicy` decides (pure, counters in); `HeapUpkeep` does it.
"""

from __future__ import annotations

import enum
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Step(enum.Enum):
    FREEZE = "freeze"  # collect what is not frozen, then freeze it
    COMPACT = "compact"  # unfreeze, collect everything, freeze again


class HeapPolicy:
    """When to freeze and when to compact, from the sockets opened and
    closed so far (both only ever grow)."""

    def __init__(self, compact_ratio: int = 4, compact_floor: int = 1000) -> None:
        self.compact_ratio = compact_ratio
        self.compact_floor = compact_floor
        self.frozen_opened = 0  # sockets opened as of the last freeze
        self._closed = 0  # closed as of the last compaction

    def step(self, opened: int, closed: int) -> Step | None:
        live = opened - closed
        if closed - self._closed >= self.compact_ratio * max(live, self.compact_floor):
            self.frozen_opened, self._closed = opened, closed
            return Step.COMPACT
        if opened != self.frozen_opened:
            self.frozen_opened = opened
            return Step.FREEZE
        return None


def freeze() -> None:
    """Collect what is not frozen yet, then freeze all that is left."""
    gc.collect()
    gc.freeze()


def compact() -> None:
    gc.unfreeze()
    freeze()


class HeapUpkeep:
    """Runs `HeapPolicy` against the counters `sockets` returns (opened,
    closed); `tick` is called twice a second by the server."""

    def __init__(self, sockets: Callable[[], tuple[int, int]], policy: HeapPolicy | None = None):
        self.sockets = sockets
        self.policy = policy or HeapPolicy()

    def start(self) -> None:
        """Once start-up is over: freeze everything it made."""
        freeze()

    def tick(self) -> Step | None:
        step = self.policy.step(*self.sockets())
        if step is None:
            return None
        started = time.perf_counter()
        if step is Step.COMPACT:
            compact()
        else:
            freeze()
        log.debug(
            "heap %s in %.1f ms, %d objects frozen",
            step.value,
            (time.perf_counter() - started) * 1000,
            gc.get_freeze_count(),
        )
        return step
