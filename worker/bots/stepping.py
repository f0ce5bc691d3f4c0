"""Stepping the bots of a candle close: each bot's candles (those it missed first), its
fills, stops and decisions (``engine``), the credit holds of the entries decided, then the
entries; the runner persists what this returns.

- The strategy is computed once per (market, strategy, parameters) and candle.
- Most bots on most closes take the fast path: one new candle, nothing in flight, nothing
  to decide; such a bot's progress is written once every ``PROGRESS_EVERY`` candles.
- A bot that missed candles replays each of them: a paper bot with every decision,
  entries included (the backtest's fill rules); a live bot cannot trade in the past, so
  each entry it missed is logged (``missed_entry``).
- One bad bot never stops the others: its error becomes its ``error_message``; a failure
  of the database (or of a credit hold) fails the whole step, for the runner to retry.
- Live bots' exchange calls run concurrently across bots, bounded per exchange account
  and per worker (``lanes``), each bot's in order; results are those of a sequential run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

import psycopg

from worker.candles import Candle, GapReport, MarketData, MarketKey, timeframe_seconds
from worker.errors import Retryable
from worker.strategies import get_strategy

from . import engine, multipair, orders, protection
from .credit_gate import CreditGate, HoldRequest
from .engine import Decision, EntryIntent
from .lanes import LiveLanes
from .model import BotState, StepOut

PROGRESS_EVERY = 12
"""A bot's progress (``last_candle_at``) is written with every step that writes anything,
and otherwise once every this many candles (staggered across bots): a worker taking a
quiet bot over replays at most that many candles, which repeat the same (non-)decisions,
instead of the database rewriting every bot row on every close."""


class CloseStepper:
    """Steps the runner's bots (``bots``, indexed by market in ``markets``: the runner's
    own, shared) at each close."""

    def __init__(
        self,
        market_data: MarketData,
        credits: CreditGate,
        lanes: LiveLanes,
        bots: dict[str, BotState],
        markets: dict[MarketKey, set[str]],
    ) -> None:
        self.md = market_data
        self.credits = credits
        self.lanes = lanes
        self.bots = bots
        self.markets = markets
        self._no_data: set[str] = set()  # bots told once that their market has no candles

    async def step_all(
        self,
        keys: Sequence[MarketKey],
        close: datetime,
        gaps: list[GapReport],
        only: set[str] | None = None,
    ) -> list[tuple[BotState, StepOut, datetime | None]]:
        """The steps of the bots of ``keys`` (or only those of ``only``) at ``close``: each
        bot's with something to write or whose progress is due, with the candle its
        progress reaches (None: none to write)."""
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
        await self.enter(intents)
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
                        await self.enter([(intent, out)])
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
            await self.enter(intents)
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

    async def enter(self, intents: list[tuple[EntryIntent, StepOut]]) -> None:
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
