"""Clocks that decide when candles close: the wall clock, or a replay of recorded time.

The bot runner only asks a clock for ``now()`` and to ``sleep_until()`` a candle's close,
so the same code trades live, replays recorded candles at any speed (demo, e2e tests) or
is stepped candle by candle as fast as the machine allows (benchmark, integration tests).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from .settings import BotsSettings


class Clock(Protocol):
    def now(self) -> datetime:
        """Current (possibly replayed) time, UTC."""

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``."""


class WallClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class ReplayClock:
    """Recorded time running ``speed`` times faster than the wall clock.

    ``anchor`` is the wall time (unix seconds) at which replayed time was ``start``; two
    worker processes given the same anchor agree on the replayed time, so candles close
    for both at the same moment and a bot taken over by the other worker continues on the
    same candle grid.
    """

    start: datetime
    speed: float
    anchor: float

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.anchor) * self.speed)

    async def sleep_until(self, when: datetime) -> None:
        wall = self.anchor + (when - self.start).total_seconds() / self.speed
        delay = wall - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    @classmethod
    def from_settings(cls, settings: BotsSettings) -> ReplayClock | None:
        """The replay clock configured by ``TRADEFLEET_REPLAY_*``, or None (wall clock)."""
        if not settings.replaying or settings.tradefleet_replay_start is None:
            return None
        start = datetime.fromisoformat(settings.tradefleet_replay_start.replace("Z", "+00:00"))
        speed = settings.tradefleet_replay_speed
        if not math.isfinite(speed) or speed <= 0:
            raise ValueError(f"TRADEFLEET_REPLAY_SPEED must be a positive number, got {speed}")
        anchor = settings.tradefleet_replay_anchor
        return cls(
            start=start.astimezone(UTC),
            speed=speed,
            anchor=time.time() if anchor is None else anchor,
        )


class SteppedClock:
    """Time that moves only when told to (``advance_to``): as fast as the code runs."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._changed = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    async def advance_to(self, when: datetime) -> None:
        async with self._changed:
            if when > self._now:
                self._now = when
            self._changed.notify_all()

    async def sleep_until(self, when: datetime) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._now >= when)


def next_close(now: datetime, timeframe_s: int) -> datetime:
    """The first candle close (a multiple of the timeframe since the epoch) after ``now``."""
    ts = now.timestamp()
    return datetime.fromtimestamp((math.floor(ts / timeframe_s) + 1) * timeframe_s, tz=UTC)


def last_close(now: datetime, timeframe_s: int) -> datetime:
    """The latest candle close at or before ``now``."""
    ts = now.timestamp()
    return datetime.fromtimestamp(math.floor(ts / timeframe_s) * timeframe_s, tz=UTC)
