"""Garbage collection between bursts: what survives a burst is left out of the next one's
collections, and garbage among it is still reclaimed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from worker.fleet.collector import Collector


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> Node:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run collects as usual


def in_oldest_generation(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects(generation=2))


def test_what_survives_a_burst_is_left_out_of_the_next_bursts_collections() -> None:
    kept = cycle()
    gc.collect()
    assert in_oldest_generation(kept)  # without the collector: traversed by every full one
    Collector().between_bursts()
    assert not in_oldest_generation(kept)
    assert gc.get_freeze_count() > 0


def test_garbage_left_by_a_burst_is_collected_when_it_ends() -> None:
    ref = weakref.ref(cycle())  # a cycle: only a collection frees it
    assert ref() is not None
    Collector().between_bursts()
    assert ref() is None


def test_frozen_garbage_is_reclaimed_within_full_every_bursts() -> None:
    collector = Collector(full_every=3)
    node = cycle()
    ref = weakref.ref(node)
    collector.between_bursts()  # frozen while still in use
    del node  # then dropped (a bot let go): garbage among the frozen objects
    collector.between_bursts()
    assert ref() is not None  # not traversed yet
    collector.between_bursts()
    assert ref() is None


def test_full_every_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Collector(full_every=0)
