"""Garbage collection between bursts of work (candle closes) instead of inside them.

A worker holding thousands of bots keeps about half a million long-lived objects (the
bots' state, candle windows, exchange clients and their markets). CPython's full
collection traverses every one of them (0.22 to 0.34 s at 10,000 bots in the live
benchmark) and starts by itself once enough objects have survived the young generations
since the last one: with the rows a close builds, about every other close, in the middle
of it.

``Collector.between_bursts`` is called when a burst is over (a close persisted): it
collects what the burst left and freezes (``gc.freeze``) what survives, so the automatic
collections of the next burst only traverse what was made since. Every ``full_every``
calls the frozen objects are thawed and collected in full as well, so garbage cycles among
them (a dropped bot's exchange client) are reclaimed within that many bursts. The pauses
move to the idle time between bursts; no collection is skipped.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass


@dataclass
class Collector:
    """Collect and freeze between bursts; thaw and collect everything every ``full_every``."""

    full_every: int = 12
    calls: int = 0
    last_s: float = 0.0  # wall time of the last call's collections

    def __post_init__(self) -> None:
        if self.full_every < 1:
            raise ValueError("full_every must be at least 1")

    def between_bursts(self) -> None:
        """A burst of work is over: collect now, while nothing waits on this process."""
        started = time.perf_counter()
        self.calls += 1
        if self.calls % self.full_every == 0:
            gc.unfreeze()  # the frozen objects go back to the oldest generation
        gc.collect()
        gc.freeze()
        self.last_s = time.perf_counter() - started
