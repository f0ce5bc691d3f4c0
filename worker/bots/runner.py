"""The bot runner: runs every bot this worker leases, one candle close at a time.

- Leases come from the fleet's ``LeaseManager``: a gained bot is loaded from the
  database (``adoption``: paper account rebuilt, live orders reconciled by client id)
  before anything is placed for it; a lost bot is dropped at once.
- A ``bots.status`` change is notified by the database (``tradefleet_bots``); the runner
  then syncs its leases immediately, so pausing or starting a bot takes effect within a
  second.
- At each candle close, market data is fetched once per market, the strategy is computed
  once per (market, strategy, parameters), every bot steps (``engine``), credits for new
  entries are held in one batch (fenced by the lease epochs), and all decisions are
  persisted in one transaction per chunk, each fenced by its bot's lease epoch.
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
  account and per worker (``lanes``), each bot's in order; results are those of a
  sequential run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from worker.candles import Candle, GapReport, MarketData, MarketKey, timeframe_seconds
from worker.db import refused_by_data
from worker.errors import Retryable
from worker.exchanges import Exchange
from worker.fleet.collector import Collector
from worker.fleet.metrics import METRICS
from worker.sealing import Keyring
from worker.strategies import get_strategy

from . import engine, isolation, loading, multipair, orders, protection
from .adoption import BotBuilder
from .clock import Clock, next_close
from .credit_gate import CreditGate, HoldRequest
from .engine import Decision, EntryIntent
from .lanes import LiveLanes
from .model import BotConfig, BotState, StepOut
from .requests import CHANNEL as REQUESTS_CHANNEL
from .requests import PositionRequests
from .store import persist_steps

log = logging.getLogger("tradefleet.bots.runner")
ZERO = Decimal(0)
CHUNK = 5000
RETRIES = 2
"""Times a failed step is retried at once (reload from the database, step again) before
the bots wait for the next close."""
PROGRESS_EVERY = 12
"""A bot's progress (``last_candle_at``) is written with every step that writes anything,
and otherwise once every this many candles (staggered across bots): a worker taking a
quiet bot over replays at most that many candles, which repeat the same (non-)decisions,
instead of the database rewriting every bot row on every close."""


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
        self.stats = RunnerStats()
        self._lock = asyncio.Lock()
        self._changes: asyncio.Queue[Any] = asyncio.Queue()
        self.processed = asyncio.Condition()
        self._no_data: set[str] = set()
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
            steps = await self._step_all(keys, close, gaps, only)
        except Exception as e:
            await self._throw_away(touched, "step", e)
            return touched
        for i in range(0, len(steps), CHUNK):
            chunk = steps[i : i + CHUNK]
            t0 = time.perf_counter()
            try:
                stale = await persist_steps(self.pool, chunk)
                self.stats.steps += len(chunk)
            except Exception as e:
                stale, lost, failure = set(), {b.id for b, _, _ in chunk}, e
                if refused_by_data(e):  # some bot's rows: write the others without them
                    lost, failure = await self._persist_apart(chunk, e, close)
                if lost:
                    # Nothing of these (or of the chunks after this one) committed.
                    lost |= {b.id for b, _, _ in steps[i + CHUNK :]}
                    await self._throw_away(lost, "persist", failure)
                    return lost
            self._persist_s += time.perf_counter() - t0
            for bot_id in stale:
                self._forget(bot_id)
        return set()

    async def _persist_apart(
        self,
        chunk: Sequence[tuple[BotState, StepOut, datetime | None]],
        error: Exception,
        close: datetime,
    ) -> tuple[set[str], Exception]:
        """Write a chunk the database refused for its data in smaller groups
        (``isolation``): the bots whose rows commit keep their step; a bot whose own rows
        are refused stops with the error, and is reloaded. Returns the bots not written
        (a failure that may pass stopped the splitting, or every bot was refused) and why."""
        apart = await isolation.isolate(self.pool, chunk, error, isolation.of_close(close))
        for bot_id in apart.stale:
            self._forget(bot_id)
        self.stats.steps += len(apart.written)
        if apart.stopped:
            # Their memory is ahead of the database: thrown away; one in ``error`` stays unloaded.
            await self._throw_away(apart.stopped, "persist", error)
        return apart.lost, apart.failure or error

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

    async def _step_all(
        self,
        keys: Sequence[MarketKey],
        close: datetime,
        gaps: list[GapReport],
        only: set[str] | None = None,
    ) -> list[tuple[BotState, StepOut, datetime | None]]:
        gap_by: dict[MarketKey, list[GapReport]] = defaultdict(list)
        for g in gaps:
            gap_by[g.key].append(g)
        results: list[tuple[BotState, StepOut, datetime | None] | None] = []  # None: a job's
        intents: list[tuple[EntryIntent, StepOut]] = []
        jobs: list[tuple[BotState, Callable[[], Awaitable[_Stepped]]]] = []
        due: set[str] = set()
        multi: set[str] = set()  # multi-pair bots: stepped once, all their markets at a time
        for key in keys:
            window = self.md.windows.get(key)
            last = None if window is None else window.last
            if window is None or last is None:
                for bot_id in sorted(self.markets.get(key, ())):
                    if only is not None and bot_id not in only:
                        continue
                    bot = self.bots[bot_id]
                    if bot.legs:
                        multi.add(bot_id)
                    elif bot_id not in self._no_data:
                        self._no_data.add(bot_id)
                        out = StepOut()
                        out.log(
                            bot.config,
                            "warning",
                            f"no candles for {bot.config.symbol} "
                            f"{bot.config.timeframe} on {bot.config.exchange} yet: waiting",
                            action="no_candles",
                        )
                        results.append((bot, out, None))
                continue
            cache: dict[tuple[str, str, datetime, bool], Decision] = {}
            turn = int(last.time.timestamp()) // timeframe_seconds(key[2]) % PROGRESS_EVERY
            previous = window.candles[-2].time if len(window.candles) > 1 else None
            gapless = key not in gap_by
            for bot_id in sorted(self.markets.get(key, ())):
                if only is not None and bot_id not in only:
                    continue
                bot = self.bots[bot_id]
                if bot.legs:
                    multi.add(bot_id)
                    continue
                if (
                    gapless
                    and not bot.in_flight
                    and bot.last_candle_at == previous
                    and previous is not None
                ):
                    # Fast path: one new candle and nothing in flight; most bots stop here.
                    decision = self._decision(bot, window, last, last, cache)
                    if engine.idle(bot, decision, last):
                        bot.last_candle_at = last.time
                        if bot.config.int_id % PROGRESS_EVERY == turn:
                            results.append((bot, StepOut(), last.time))
                            due.add(bot.id)
                        elif bot.position is not None:  # its equity, no progress write
                            results.append((bot, StepOut(), None))
                        continue
                jobs.append((bot, partial(self._step_bot, bot, window, gap_by.get(key, ()), cache)))
                results.append(None)
                if bot.config.int_id % PROGRESS_EVERY == turn:
                    due.add(bot.id)
        for bot_id in sorted(multi):
            jobs.append((self.bots[bot_id], partial(self._step_multi, self.bots[bot_id], gap_by)))
            results.append(None)
            due.add(bot_id)
        # Open orders: one query per account, for single-pair bots and multi-pair legs alike.
        await protection.survey([b for bot, _ in jobs for b in (bot.legs or [bot])], self.lanes)
        stepped = iter(await self.lanes.run(jobs))  # in the order of a sequential run
        done: list[tuple[BotState, StepOut, datetime | None]] = []
        for r in results:
            if r is None:
                bot, out, entries = next(stepped)
                r = (bot, out, bot.last_candle_at)
                for intent in entries if isinstance(entries, list) else [entries]:
                    if intent is not None:
                        intents.append((intent, out))
            done.append(r)
        await self._enter(intents)
        for bot, out, _ in done:
            window = self.md.windows.get(bot.config.market)
            if window is not None and window.last is not None:
                if bot.position is not None or out.trades:
                    out.equity = orders.equity_row(bot, window.last)
        return [r for r in done if r[1].has_writes or r[0].id in due]

    async def _step_bot(
        self,
        bot: BotState,
        window: Any,
        gaps: Sequence[GapReport],
        cache: dict[tuple[str, str, datetime, bool], Decision],
    ) -> _Stepped:
        """One bot's step of this close (the candles it missed first); a live bot's runs
        concurrently with other bots' (``lanes``). Returns the entry decided at the last
        candle, to be placed after the credit hold."""
        last = window.last
        out = StepOut()
        for g in gaps:
            out.log(bot.config, "warning", g.describe(), action="candle_gap")
        todo = window.since(bot.last_candle_at) if bot.last_candle_at else [last]
        entry: EntryIntent | None = None
        try:
            for candle in todo:
                decision = self._decision(bot, window, candle, last, cache)
                intent = await self._step(bot, candle, decision, out)
                if intent is None:
                    continue
                if candle is last:
                    entry = intent
                elif bot.config.is_paper:
                    # A missed candle replayed: enter now, so the next candle fills
                    # the entry as it would have without the gap.
                    try:
                        await self._enter([(intent, out)])
                    except Exception as e:  # the hold failed: not the bot's fault
                        raise _StepAborted(str(e)) from e
                else:
                    engine.missed_entry(intent, out)
        except (psycopg.Error, OSError, _StepAborted):
            raise  # the database, not the bot: the whole step is retried
        except Exception as e:  # one bad bot never stops the others
            if isinstance(e, Retryable):
                out.log(
                    bot.config,
                    "warning",
                    f"exchange unavailable, step skipped: {e}",
                    action="step_retry_exhausted",
                )
            else:
                engine.fail(bot, e, out)
        if todo:
            bot.last_candle_at = todo[-1].time
        return bot, out, entry

    async def _step_multi(self, bot: BotState, gaps: dict[MarketKey, list[GapReport]]) -> _Stepped:
        """A multi-pair bot's step (``multipair.step``), its errors handled as ``_step_bot``'s."""
        out = StepOut()
        try:
            entries = await multipair.step(
                bot, out, self.md.windows, gaps, self._decision, self._enter_replayed
            )
        except (psycopg.Error, OSError, _StepAborted):
            raise  # the database, not the bot: the whole step is retried
        except Exception as e:  # one bad bot never stops the others
            if not isinstance(e, Retryable):
                engine.fail(bot, e, out)
            else:
                out.log(bot.config, "warning", f"exchange unavailable, step skipped: {e}")
            return bot, out, None
        return bot, out, entries

    async def _enter_replayed(self, intents: list[tuple[EntryIntent, StepOut]]) -> None:
        try:
            await self._enter(intents)
        except Exception as e:  # the hold failed: not the bot's fault
            raise _StepAborted(str(e)) from e

    def _decision(
        self,
        bot: BotState,
        window: Any,
        candle: Candle,
        last: Candle,
        cache: dict[tuple[str, str, datetime, bool], Decision],
    ) -> Decision:
        cfg = bot.config
        k = (cfg.strategy, cfg.params_key, candle.time, bot.can_short)
        d = cache.get(k)
        if d is None:
            arrays = window.arrays() if candle is last else window.arrays_until(candle.time)
            strategy = get_strategy(cfg.strategy)
            if len(arrays) < strategy.warmup(cfg.params) + 1:
                d = Decision(False, False)
            else:
                d = Decision.from_signal(strategy.signals(arrays, cfg.params).at(-1), bot.can_short)
            cache[k] = d
        return d

    async def _step(
        self, bot: BotState, candle: Candle, decision: Decision, out: StepOut
    ) -> EntryIntent | None:
        if not bot.in_flight and engine.idle(bot, decision, candle):
            return None  # nothing can fill, trigger or be decided: most bots on most candles
        await engine.apply_fills(bot, candle, out)
        await engine.apply_stops(bot, candle, out)
        intent = await engine.plan_decision(bot, decision, candle, out)
        await engine.protect(bot, candle, out)
        return intent

    async def _enter(self, intents: list[tuple[EntryIntent, StepOut]]) -> None:
        if not intents:
            return
        holds = await self.credits.hold(
            [
                HoldRequest(
                    i.bot.config.user_id, i.bot.id, i.client_order_id, i.bot.epoch, i.candle.time
                )
                for i, _ in intents
            ]
        )
        jobs: list[tuple[BotState, Callable[[], Awaitable[None]]]] = []
        for (intent, out), hold in zip(intents, holds.results, strict=True):
            if intent.bot.id in holds.stale:
                continue  # another worker leases the bot now: its persist is refused too
            if hold is False:
                engine.no_credits(intent, out)
                continue
            jobs.append((intent.bot, partial(engine.enter, intent, hold, out)))
        await self.lanes.run(jobs)  # live bots' entries (and their stops) concurrently


_Stepped = tuple[BotState, StepOut, EntryIntent | list[EntryIntent] | None]


class _StepAborted(Exception):
    """A step that cannot go on for a reason outside the bot (its credit hold failed)."""
