"""The bot runner: runs every bot this worker leases, one candle close at a time.

- Leases come from the fleet's ``LeaseManager``: a gained bot is loaded from the
  database (``adoption``: paper account rebuilt, live orders reconciled by client id)
  before anything is placed for it; a lost bot is dropped at once.
- A ``bots.status`` change is notified by the database (``tradefleet_bots``); the runner
  then syncs its leases immediately, so pausing or starting a bot takes effect within a
  second.
- At each candle close, market data is fetched once per market, every bot steps
  (``stepping``: the strategy computed once per market, strategy and parameters, the
  ``engine``, credits for new entries held in one batch, fenced by the lease epochs), and
  all decisions are persisted in one transaction per chunk, each fenced by its bot's
  lease epoch.
- A bot that missed candles (a takeover, a restart, a failed persist) replays each of
  them on its next close: a paper bot with every decision, entries included, exactly as
  it would have traded them (the backtest's fill rules); a live bot cannot trade in the
  past, so each entry it missed is logged on the bot (``missed_entry``).
- Memory never runs ahead of the database: when a step or its persist fails (any error:
  the database restarting, a deadlock, a failed write), the bots of that step are thrown
  away and reloaded from the database, and the step is retried (now, or on the next
  close if the database is still away).
- One bad bot never stops the others: its error becomes its ``error_message``. A persist
  the database refuses for its data (``worker.db.refused_by_data``) is written again in
  smaller groups (``isolation``): the others keep their step; a bot refused alone stops.
- Live bots' exchange calls of a close run concurrently across bots, bounded per exchange
  account and per worker (``lanes``, in ``stepping``), each bot's in order; results are
  those of a sequential run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from worker.candles import GapReport, MarketData, MarketKey, timeframe_seconds
from worker.db import refused_by_data
from worker.errors import Retryable
from worker.exchanges import Exchange
from worker.fleet.collector import Collector
from worker.fleet.metrics import METRICS
from worker.sealing import Keyring

from . import isolation, loading, protection
from .adoption import BotBuilder
from .clock import Clock, next_close
from .credit_gate import CreditGate
from .lanes import LiveLanes
from .model import BotConfig, BotState, StepOut
from .requests import CHANNEL as REQUESTS_CHANNEL
from .requests import PositionRequests
from .stepping import CloseStepper
from .store import persist_steps

log = logging.getLogger("tradefleet.bots.runner")
CHUNK = 5000
RETRIES = 2
"""Times a failed step is retried at once (reload from the database, step again) before
the bots wait for the next close."""


class Leases(Protocol):
    """What the runner needs of the fleet's ``LeaseManager``."""

    owned: dict[str, int]

    async def sync(self) -> Any: ...

    def changes(self) -> Any: ...

    def before_release(self, hook: Callable[[], Awaitable[None]]) -> None: ...


@dataclass
class RunnerStats:
    closes: int = 0
    steps: int = 0
    last_close: datetime | None = None
    last_duration_s: float = 0.0
    durations: list[float] = field(default_factory=list)
    phases: list[tuple[float, float, float]] = field(default_factory=list)  # fetch, step, persist


class BotRunner:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        leases: Leases,
        clock: Clock,
        market_data: MarketData,
        *,
        keyring: Keyring | None = None,
        live_exchange: Callable[[BotConfig, Any, bool], Exchange] | None = None,
        settle_s: float = 0.0,
        markets_dir: Path | None = None,
        lanes: LiveLanes | None = None,
        collector: Collector | None = None,
    ) -> None:
        self.pool = pool
        self.leases = leases
        self.clock = clock
        self.md = market_data
        self.settle_s = settle_s
        self.lanes = lanes or LiveLanes()  # bounds on live bots' concurrent exchange calls
        self.collector = collector  # garbage collected between closes (None: as CPython does)
        self.credits = CreditGate(pool)
        self.builder = BotBuilder(
            self.credits, market_data, clock, keyring, live_exchange, markets_dir
        )
        self.bots: dict[str, BotState] = {}
        self.markets: dict[MarketKey, set[str]] = defaultdict(set)
        self.stepper = CloseStepper(market_data, self.credits, self.lanes, self.bots, self.markets)
        self.stats = RunnerStats()
        self._lock = asyncio.Lock()
        self._changes: asyncio.Queue[Any] = asyncio.Queue()
        self.processed = asyncio.Condition()
        self._reload: set[str] = set()  # thrown away after a failed step: load again
        self._persist_s = 0.0
        self._stopping = False
        leases.before_release(self.quiesce)  # finish the step in flight before a shutdown
        self.requests = PositionRequests(self)  # owners' closes, stops and manual trades

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._pump_changes(), name="bots.lease_changes"),
            asyncio.create_task(self._apply_changes(), name="bots.apply_changes"),
            asyncio.create_task(self._listen(), name="bots.listen"),
            asyncio.create_task(self._candle_loop(), name="bots.candles"),
            asyncio.create_task(self.requests.loop(), name="bots.requests"),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.close()

    async def quiesce(self) -> None:
        """Finish the close being processed and start no other (the worker is stopping and
        is about to release its leases: a step cut off by that release would leave its
        credit holds for a peer to void)."""
        self._stopping = True
        async with self._lock:
            pass

    async def close(self) -> None:
        for bot in list(self.bots.values()):
            await loading.close(bot)
        self.bots.clear()
        self.markets.clear()

    async def _pump_changes(self) -> None:
        async for change in self.leases.changes():
            self._changes.put_nowait(change)

    async def _apply_changes(self) -> None:
        while True:
            batch = [await self._changes.get()]
            while not self._changes.empty():
                batch.append(self._changes.get_nowait())
            gained: dict[str, int] = {}
            for ch in batch:
                if ch.gained:
                    gained[ch.bot_id] = ch.epoch
                else:
                    gained.pop(ch.bot_id, None)
                    await self.drop(ch.bot_id)
            if gained:
                try:
                    await self.adopt(gained)
                except Exception as e:  # the database or the ledger unavailable
                    self._reload.update(gained)  # tried again on the next close
                    log.warning(
                        "loading bots failed", extra={"action": "adopt_failed", "error": str(e)}
                    )

    async def _listen(self) -> None:
        """Wake up on ``bots.status`` changes and sync leases right away; wake the owners'
        requests up when one is made."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    str(self.pool.conninfo), autocommit=True
                ) as conn:
                    await conn.execute(f"listen {REQUESTS_CHANNEL}")
                    await conn.execute("listen tradefleet_bots")
                    async for note in conn.notifies():
                        if note.channel == REQUESTS_CHANNEL:
                            self.requests.wake()
                        else:
                            await self.leases.sync()
            except (psycopg.Error, OSError) as e:
                log.warning(
                    "bot status listener reconnecting",
                    extra={"action": "listen_failed", "error": str(e)},
                )
                await asyncio.sleep(1.0)

    async def _candle_loop(self) -> None:
        while True:
            tfs = {b.config.timeframe for b in self.bots.values()} or {"1m"}
            now = self.clock.now()
            close = min(next_close(now, timeframe_seconds(tf)) for tf in tfs)
            await self.clock.sleep_until(close)
            if self.settle_s:
                await asyncio.sleep(self.settle_s)  # let the exchange publish the closed candle
            try:
                await self.process_close(close)
            except Exception as e:  # market data or the database unavailable: next close
                if not isinstance(e, psycopg.Error | OSError | Retryable):
                    log.exception("candle close failed", extra={"action": "close_failed"})
                else:
                    log.warning(
                        "candle close failed", extra={"action": "close_failed", "error": str(e)}
                    )
            self.after_close()

    def after_close(self) -> None:
        """A close is over (persisted, or failed): collect its garbage now, before the next
        one, rather than in the middle of it (``worker.fleet.collector``)."""
        if self.collector is not None:
            self.collector.between_bursts()

    # -- leases ---------------------------------------------------------------------------

    async def drop(self, bot_id: str) -> None:
        async with self._lock:
            self._reload.discard(bot_id)
            bot = self.bots.pop(bot_id, None)
            if bot is None:
                return
            loading.unindex(self, bot)
        await loading.close(bot)
        log.info("bot dropped", extra={"bot_id": bot_id, "action": "bot_dropped"})

    async def adopt(self, leased: dict[str, int]) -> None:
        """Load bots this worker now leases; reconcile their orders before they trade."""
        async with self._lock:
            await self._adopt(leased)

    async def _adopt(self, leased: dict[str, int]) -> None:
        """``adopt`` under the runner's lock (``loading.adopt``)."""
        await loading.adopt(self, leased)

    # -- candle closes --------------------------------------------------------------------

    async def process_close(self, close: datetime) -> None:
        """Everything that happens when candles close at ``close``."""
        started = time.perf_counter()
        async with self._lock:
            if self._stopping:
                return
            await self._reload_thrown_away()
            keys = [
                k for k in self.markets if int(close.timestamp()) % timeframe_seconds(k[2]) == 0
            ]
            if keys:
                _added, gaps = await self.md.refresh(keys, close)
                t_fetched = time.perf_counter()
                self._persist_s = 0.0
                failed = await self._step_and_persist(keys, close, gaps, None)
                for _ in range(RETRIES):
                    if not failed:
                        break
                    # Memory was thrown away: load those bots again and step them again.
                    if not await self._reload_thrown_away():
                        break
                    failed = await self._step_and_persist(keys, close, gaps, failed)
                if not failed:
                    METRICS.candle_close_to_persisted.observe(
                        max(0.0, (self.clock.now() - close).total_seconds())
                    )
                stepped = time.perf_counter() - t_fetched - self._persist_s
                self.stats.phases.append((t_fetched - started, stepped, self._persist_s))
        self.stats.closes += 1
        self.stats.last_close = close
        self.stats.last_duration_s = time.perf_counter() - started
        self.stats.durations.append(self.stats.last_duration_s)
        async with self.processed:
            self.processed.notify_all()

    async def _step_and_persist(
        self,
        keys: Sequence[MarketKey],
        close: datetime,
        gaps: list[GapReport],
        only: set[str] | None,
    ) -> set[str]:
        """Step the bots of ``keys`` (or only those of ``only``) and persist their steps.
        A failure throws the bots it touched away (marked for reloading); returns them."""
        touched = {b for k in keys for b in self.markets.get(k, ()) if only is None or b in only}
        try:
            await protection.refresh_settings(
                self.pool, [g for b in sorted(touched) for g in self.bots[b].legs or [self.bots[b]]]
            )
            steps = await self.stepper.step_all(keys, close, gaps, only)
        except Exception as e:
            await self._throw_away(touched, "step", e)
            return touched
        for i in range(0, len(steps), CHUNK):
            chunk = steps[i : i + CHUNK]
            t0 = time.perf_counter()
            apart = await self.persist(chunk, isolation.of_close(close), "persist")
            self.stats.steps += len(apart.written)
            if apart.lost:
                # Nothing of these (or of the chunks after this one) committed.
                lost = apart.lost | {b.id for b, _, _ in steps[i + CHUNK :]}
                assert apart.failure is not None  # set with every lost bot
                await self._throw_away(lost, "persist", apart.failure)
                return lost
            self._persist_s += time.perf_counter() - t0
        return set()

    async def persist(
        self,
        steps: Sequence[tuple[BotState, StepOut, datetime | None]],
        what: str,
        label: str,
        write: isolation.Write | None = None,
    ) -> isolation.Apart:
        """Write ``steps`` in one transaction (``write``: ``persist_steps`` by default) and
        forget the bots another worker leases now. Refused for some bot's rows
        (``worker.db.refused_by_data``), the bots are written apart (``isolation``; ``what``
        names the rows in a refused bot's message), and a bot stopped for its own rows is
        thrown away (``label`` names the write in the log). ``lost``: the bots of which
        nothing committed, with ``failure``, for the caller to throw away or reload."""
        try:
            stale = await (write or partial(persist_steps, self.pool))(steps)
            apart = isolation.Apart(written={b.id for b, _, _ in steps}, stale=stale)
        except Exception as e:
            if not refused_by_data(e):
                every = {b.id for b, _, _ in steps}
                return isolation.Apart(unwritten=every, lost=every, failure=e)
            apart = await isolation.isolate(self.pool, steps, e, what, write)
            if apart.lost:
                apart.failure = apart.failure or e
            if apart.stopped:
                # Their memory is ahead of the database: thrown away; one in ``error`` stays
                # unloaded.
                await self._throw_away(apart.stopped, label, e)
        for bot_id in apart.stale:
            self._forget(bot_id)
        return apart

    async def _throw_away(self, bot_ids: set[str], what: str, error: Exception) -> None:
        """Forget what memory holds of these bots: their step did not commit."""
        log.warning(
            f"{what} failed: reloading the bots from the database",
            extra={"action": f"{what}_failed", "error": str(error), "bots": len(bot_ids)},
        )
        for bot_id in sorted(bot_ids):
            bot = self.bots.pop(bot_id, None)
            if bot is None:
                continue
            loading.unindex(self, bot)
            self._reload.add(bot_id)
            try:
                await loading.close(bot)
            except Exception as e:  # closing a connection must not stop the reload
                log.warning(
                    "closing an exchange failed",
                    extra={"bot_id": bot_id, "action": "exchange_close_failed", "error": str(e)},
                )

    async def _reload_thrown_away(self) -> bool:
        """Load again the bots thrown away after a failed step (those still leased).
        Returns False when the database is still unavailable (they wait for a later close)."""
        owned = self.leases.owned
        self._reload &= set(owned)
        if not self._reload:
            return True
        try:
            await self._adopt({b: owned[b] for b in self._reload})
        except Exception as e:  # the database or the ledger unavailable
            log.warning("reloading bots failed", extra={"action": "reload_failed", "error": str(e)})
            return False
        return True

    def _forget(self, bot_id: str) -> None:
        bot = self.bots.pop(bot_id, None)
        if bot is not None:
            loading.unindex(self, bot)
            log.warning(
                "lease lost while trading", extra={"bot_id": bot_id, "action": "stale_epoch"}
            )
