"""Freezing the heap under `threadline serve` (server.heap): once started,
whenever sockets were opened since the last look, and a whole collection
(compaction) only after enough churn."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from server.heap import HeapPolicy, HeapUpkeep, Step


@pytest.fixture
def thawed() -> Iterator[None]:
    """These tests freeze this process's heap: thaw it after each."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_new_sockets_are_frozen_at_the_next_look() -> None:
    policy = HeapPolicy(compact_ratio=4, compact_floor=10)
    assert policy.step(0, 0) is None
    assert policy.step(5, 0) is Step.FREEZE
    assert policy.step(5, 0) is None  # nothing new
    assert policy.step(5, 3) is None  # closes alone: nothing to freeze
    assert policy.step(7, 3) is Step.FREEZE


def test_a_compaction_comes_after_enough_closes() -> None:
    policy = HeapPolicy(compact_ratio=2, compact_floor=10)
    assert policy.step(100, 0) is Step.FREEZE
    # 100 open: a compaction after 2 x 100 closes (the floor is lower).
    assert policy.step(300, 199) is Step.FREEZE
    assert policy.step(300, 200) is Step.COMPACT
    assert policy.step(300, 200) is None  # counted from the compaction on
    assert policy.step(300, 210) is None


def test_the_floor_spares_a_quiet_server_frequent_compactions() -> None:
    policy = HeapPolicy(compact_ratio=4, compact_floor=1000)
    assert policy.step(10, 5) is Step.FREEZE
    assert policy.step(3999, 3995) is Step.FREEZE
    assert policy.step(4005, 4000) is Step.COMPACT


@pytest.mark.usefixtures("thawed")
def test_the_upkeep_freezes_at_start_and_on_new_sockets() -> None:
    counters = [0, 0]
    upkeep = HeapUpkeep(lambda: (counters[0], counters[1]))
    upkeep.start()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert upkeep.tick() is None
    assert gc.get_freeze_count() == frozen

    made = [[i] for i in range(1000)]  # a socket's state, say
    counters[0] = 1
    assert upkeep.tick() is Step.FREEZE
    assert gc.get_freeze_count() >= frozen + len(made)
    tracked = {id(o) for o in gc.get_objects()}
    assert not any(id(m) in tracked for m in made)  # out of the collector's sight


@pytest.mark.usefixtures("thawed")
def test_a_compaction_collects_cycles_that_died_frozen() -> None:
    counters = [1, 0]
    upkeep = HeapUpkeep(lambda: (counters[0], counters[1]), HeapPolicy(1, 1))
    upkeep.start()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    counters[0] = 2
    assert upkeep.tick() is Step.FREEZE
    del a, b  # a cycle, frozen: no collection finds it now
    gc.collect()
    assert _any_node_frozen()
    counters[1] = 2
    assert upkeep.tick() is Step.COMPACT
    assert not _any_node_frozen()


def _any_node() -> bool:
    return any(type(o).__name__ == "Node" for o in gc.get_objects())


def _any_node_frozen() -> bool:
    gc.unfreeze()
    try:
        return _any_node()
    finally:
        gc.freeze()
