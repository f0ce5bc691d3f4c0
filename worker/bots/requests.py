"""Requests of a bot's owner (``public.position_requests``): close the position now (at
market, or at a limit price with a timeout), stop the bot closing it, and manual trades.

The worker that leases the bot executes them, between candle closes, under the runner's
lock and through the engine's own paths: client order ids derived from the request (so a
request executed again after a crash finds its order instead of placing a second one),
credit holds for entries (``CreditGate``, fenced by the lease epoch), trades opened and
closed as the bot's own (``engine``), and everything written in one transaction with the
request's outcome (``persist_steps``), fenced by the lease epoch. A write the database
refuses for one bot's rows is written again apart (``isolation``): the other bots' requests
end as without it, and that bot stops with the database's message.

- Closing takes the position's stop-loss and take-profit off the exchange first (they would
  sell the same coins twice, and on spot they lock them); one that filled meanwhile closed
  the position already and is recorded as the exit. A close that does not end the position
  (a part, a limit close cancelled at its timeout) rests them again at once for what is
  left, in the same pass.
- Close at market: a live bot places a market order (reduce-only on contract markets) and
  records the fill; a paper bot fills at once at the latest close (slipped, taker fee).
- Close at a limit: the limit order rests (a paper one fills when a later candle trades
  through it); unless it filled when the timeout ends it is cancelled, then the position is
  closed at market (``on_timeout = 'market'``) or left open (``'cancel'``).
- A part of the position (``p_amount`` or ``p_fraction``, at market or at a limit): the
  order is for that part, rounded to the market's amount step; what fills closes as a
  trade of its own and the rest stays open under the position's trade id, managed as
  before (its protective orders rest again for the rest at once). A limit close
  cancelled after part of it filled records that part; ``on_timeout = 'market'`` then
  closes the rest of the part asked for.
- Stop with close: the bot makes no new decisions; once the position is closed its status
  becomes ``stopped``.
- A pause or error of a live bot while its close works (``bots_pause_settles_close`` keeps
  the bot running with the request marked ``stop_after`` and ``stop_status``): the close is
  cancelled and the stop rests again as for ``stop_bot(…, 'keep')``, then the bot takes
  that status (written with ``persist_steps(settled=…)``, which lets it through).
- The last request wins: an owner who sets the bot running while its stop (or pause) waits
  cancels it (``bots_running_overrides_pause``); the close works on and the bot decides
  again. A worker whose settling write commits after the owner's leaves the bot running,
  and the request then says so (its ``overridden`` reason, picked by the database).
- Manual trade: a market entry of the given amount (or stake) on the bot's market, after
  the credit hold; it becomes the bot's position (its stop-loss, take-profit and exits
  manage it).

A new request is notified on ``tradefleet_position_requests`` (heard by the runner's
listener, which wakes ``loop``); the worker also looks for work every ``POLL_S`` seconds
(limit timeouts, bots it just adopted, a missed notification).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from worker.candles import Candle
from worker.errors import Retryable
from worker.exchanges import Order, OrderStatus, make_client_order_id

from . import credit_gate, multipair, orders, protection
from .credit_gate import HoldRequest
from .model import BotState, InFlight, StepOut, derived_id
from .paper import BotPaperExchange
from .request_outcomes import (
    CLOSE_REASON,
    KEPT,
    OPEN_REASON,
    SETTLED,
    Outcome,
    close_amount,
    hit_outcome,
    keeps,
    protect_rest,
    record_close,
    run_on,
    slipped,
    stopped,
    unprotect,
)
from .store import persist_steps
from .trades import fee_rate, open_trade, order_row, place_market

if TYPE_CHECKING:
    from .runner import BotRunner

log = logging.getLogger("tradefleet.bots.requests")

ONE = Decimal(1)
ZERO = Decimal(0)
POLL_S = 2.0
CHANNEL = "tradefleet_position_requests"
# Open requests are few: read them all (the partial index) and keep this worker's bots'.
LOAD = """
select r.*, b.stop_positions, b.error_message as bot_error_message
  from public.position_requests r
  join public.bots b on b.id = r.bot_id
 where r.status in ('pending', 'working')
 order by r.created_at, r.id
"""
UPDATE = """
update public.position_requests r
   set status = u.status,
       -- settled for a stop (or pause) the owner overrode since (stop_after cleared)
       status_reason = case when u.overridden_reason is not null and not r.stop_after
                            then u.overridden_reason else u.status_reason end,
       client_order_id = coalesce(u.client_order_id, r.client_order_id),
       deadline_at = coalesce(u.deadline_at, r.deadline_at),
       trade_id = coalesce(u.trade_id, r.trade_id),
       completed_at = case when u.status in ('done', 'cancelled', 'failed') then now() end
  from jsonb_to_recordset(%(rows)s) as u(id uuid, bot_id uuid, status text, status_reason text,
                                          overridden_reason text, client_order_id text,
                                          deadline_at timestamptz, trade_id uuid)
 where r.id = u.id and r.status in ('pending', 'working') and not (u.bot_id = any(%(stale)s::uuid[]))
"""


class _Wait(Exception):
    """The request cannot run yet (no price, the bot catching up, an exit in flight)."""


class PositionRequests:
    """Executes the owners' requests of the bots a runner leases."""

    def __init__(self, runner: BotRunner) -> None:
        self.runner = runner
        self._wake = asyncio.Event()
        self._halting: set[str] = set()  # bots halted while a stop (or pause) waits

    # -- the loop -------------------------------------------------------------------------

    async def loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.run()
            except Exception as e:  # the database away: the next poll tries again
                log.warning(
                    "position requests failed",
                    extra={"action": "requests_failed", "error": str(e)},
                )

    def wake(self) -> None:
        """A request was made (the runner's listener heard ``CHANNEL``): look now."""
        self._wake.set()

    # -- one pass -------------------------------------------------------------------------

    async def run(self, now: datetime | None = None) -> int:
        """Execute (or follow up) every open request of the bots this worker runs; returns
        how many changed state."""
        runner = self.runner
        if not runner.bots:
            return 0
        # Read without the runner's lock: a database that is away must not hold up its steps.
        async with runner.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(LOAD)
            rows = await cur.fetchall()
        await self._resume({str(r["bot_id"]) for r in rows if r["stop_after"]})
        if not any(str(r["bot_id"]) in runner.bots for r in rows):
            return 0
        async with runner._lock:
            by_bot: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in rows:
                if str(r["bot_id"]) in runner.bots:  # still leased here
                    by_bot[str(r["bot_id"])].append(r)
            when = now or runner.clock.now()
            steps: list[tuple[BotState, StepOut, datetime | None]] = []
            outcomes: list[Outcome] = []
            touched: set[str] = set()
            settled: set[str] = set()  # stopped, paused or error once their close settled
            try:
                for bot_id, requests in sorted(by_bot.items()):
                    bot = runner.bots[bot_id]
                    touched.add(bot_id)
                    out = StepOut()
                    # the bot stops (or pauses) once every stop_after one ended
                    ended: tuple[Outcome, dict[str, Any]] | None = None
                    pending_stop = False
                    for req in requests:
                        if req["stop_after"]:
                            self._halting.add(bot_id)
                            for leg in bot.legs or [bot]:
                                leg.halted = True  # stopping: no new decisions of its own
                        outcome = await self._one(multipair.leg_for(bot, req), req, when, out)
                        if outcome is not None:
                            run_on(outcome, req)
                            outcomes.append(outcome)
                        if req["stop_after"]:
                            if outcome is None or outcome.status == "working":
                                pending_stop = True
                            elif ended is None or ended[0].status == "done":
                                ended = outcome, req
                    if ended is not None and not pending_stop:
                        stopped(out, *ended)
                        settled.add(bot_id)
                    if out.has_writes or any(o.bot_id == bot_id for o in outcomes):
                        steps.append((bot, out, None))
            except Exception as e:  # the database away mid-pass: memory must not run ahead
                await runner._throw_away(touched, "request", e)
                raise
            if not steps:
                return 0

            written = await self._persist(steps, outcomes, settled, when)
            return sum(1 for o in outcomes if o.bot_id in written)

    async def _persist(
        self,
        steps: list[tuple[BotState, StepOut, datetime | None]],
        outcomes: list[Outcome],
        settled: set[str],
        when: datetime,
    ) -> set[str]:
        """Write the pass's steps with their requests' outcomes in one transaction; returns
        the bots written. Refused for one bot's rows (``worker.db.refused_by_data``), the
        bots are written apart (``isolation``): the others keep their step and outcomes,
        the refused bot stops with the database's message. Any other failure throws every
        bot of the pass away (reloaded, its requests run again) and is raised."""
        runner = self.runner

        async def write(group: Sequence[tuple[BotState, StepOut, datetime | None]]) -> set[str]:
            ids = {b.id for b, _, _ in group}

            async def also(conn: psycopg.AsyncConnection[Any], stale: set[str]) -> None:
                rows = [o.row() for o in outcomes if o.bot_id in ids]
                await conn.execute(UPDATE, {"rows": Jsonb(rows), "stale": sorted(stale)})

            return await persist_steps(runner.pool, group, also=also, settled=settled & ids)

        what = f"this bot's orders and trades of its owner's requests at {when:%Y-%m-%d %H:%M} UTC"
        apart = await runner.persist(steps, what, "request", write)
        if apart.lost:  # nothing of theirs committed: reloaded, their requests run again
            assert apart.failure is not None  # set with every lost bot
            await runner._throw_away(apart.lost, "request", apart.failure)
            raise apart.failure
        return apart.written - apart.stale

    async def _resume(self, waiting: set[str]) -> None:
        """Bots halted while a pause waited for their working close, the pause since
        overridden by their owner setting them running (``bots_running_overrides_pause``,
        also when this worker's settling write came second): they decide again."""
        resumed = self._halting - waiting
        if not resumed:
            return
        async with self.runner._lock:
            for bot_id in resumed:
                self._halting.discard(bot_id)
                bot = self.runner.bots.get(bot_id)
                for leg in (bot.legs or [bot]) if bot is not None else []:
                    leg.halted = False

    async def _one(
        self, bot: BotState, req: dict[str, Any], now: datetime, out: StepOut
    ) -> Outcome | None:
        cfg = bot.config
        rid = str(req["id"])
        try:
            if req["kind"] == "close" and keeps(req):
                return await self._keep(bot, req, now, out)
            if req["kind"] == "close":
                outcome = await self._close(bot, req, now, out)
                if outcome is not None and outcome.status != "working":
                    await protect_rest(bot, now, out)
                return outcome
            return await self._open(bot, req, now, out)
        except _Wait:
            return None
        except (psycopg.Error, OSError):
            raise
        except Retryable as e:
            out.log(
                cfg,
                "warning",
                f"request {rid} waits, the exchange is unavailable: {e}",
                action="request_retry",
                request_id=rid,
            )
            return None
        except Exception as e:  # refused by the exchange or the market rules: say why
            message = str(e) or type(e).__name__
            out.log(
                cfg,
                "warning",
                f"request {rid} failed: {message}",
                action="request_failed",
                request_id=rid,
            )
            return Outcome(rid, bot.id, "failed", message)

    # -- closing --------------------------------------------------------------------------

    async def _close(
        self, bot: BotState, req: dict[str, Any], now: datetime, out: StepOut
    ) -> Outcome | None:
        rid = str(req["id"])
        pos = bot.position
        if pos is None or str(pos.trade_id) != str(req["trade_id"]):
            return Outcome(rid, bot.id, "done", "the position is closed")
        if req["status"] == "working":
            return await self._follow_limit(bot, req, now, out)
        await orders.cancel_entry_rest(bot, now, out)  # what of it filled is closed too
        if (pos := bot.position) is None or str(pos.trade_id) != str(req["trade_id"]):
            return Outcome(rid, bot.id, "done", "the position is closed")
        if any(f.price is None or f.purpose != "exit" for f in bot.in_flight.values()):
            raise _Wait  # an exit (or a reversal) in flight closes it first
        if bot.in_flight and not await orders.cancel_resting_exits(bot, now, out):
            return Outcome(rid, bot.id, "done", "the position is closed")  # by the bot's exit
        if req["order_type"] == "limit":
            return await self._place_limit(bot, req, now, out)
        cid = make_client_order_id(bot.id, "request", rid, "close")
        return await self._close_at_market(bot, req, cid, now, out)

    async def _close_at_market(
        self,
        bot: BotState,
        req: dict[str, Any],
        cid: str,
        now: datetime,
        out: StepOut,
        part: Decimal | None = None,
    ) -> Outcome:
        """Close the position at market: all of it, or ``part`` (else the request's part)."""
        rid = str(req["id"])
        pos = bot.position
        assert pos is not None
        side: Literal["buy", "sell"] = "sell" if pos.long else "buy"
        amount = close_amount(bot, req["amount"] if part is None else part)
        last = self._last_candle(bot)
        decided = last.time if last is not None else now
        if (done := await unprotect(bot, rid, decided, now, out)) is not None:
            return done
        ex = bot.exchange
        if isinstance(ex, BotPaperExchange):
            if last is None:
                raise _Wait
            order = await ex.fill_now(
                bot.config.symbol, side, amount, slipped(ex, side, last.close), cid, now
            )
        else:
            order = await place_market(bot, side, amount, cid, opening=False)
        out.orders.append(order_row(bot, order, cid, CLOSE_REASON, decided))
        if order.status is OrderStatus.CLOSED and order.filled > 0:
            return Outcome(
                rid, bot.id, "done", record_close(bot, order, now, out, "at market"), cid
            )
        if order.is_open:
            bot.in_flight[cid] = InFlight(
                cid, derived_id(cid, "order"), "exit", side, amount, CLOSE_REASON, None, decided
            )
            return Outcome(rid, bot.id, "working", "market order placed", cid)
        return Outcome(rid, bot.id, "failed", f"the close order was {order.status}", cid)

    async def _place_limit(
        self, bot: BotState, req: dict[str, Any], now: datetime, out: StepOut
    ) -> Outcome:
        rid = str(req["id"])
        pos = bot.position
        assert pos is not None
        cfg, ex = bot.config, bot.exchange
        side: Literal["buy", "sell"] = "sell" if pos.long else "buy"
        cid = make_client_order_id(bot.id, "request", rid, "close")
        amount = close_amount(bot, req["amount"])
        price = ex.price_to_precision(cfg.symbol, Decimal(str(req["limit_price"])))
        params = None
        if not isinstance(ex, BotPaperExchange) and ex.market(cfg.symbol).contract:
            params = {"reduceOnly": True}
        last = self._last_candle(bot)
        decided = last.time if last is not None else now
        if (done := await unprotect(bot, rid, decided, now, out)) is not None:
            return done
        order = await ex.place_order_once(
            cfg.symbol, side, "limit", amount, price, client_order_id=cid, params=params
        )
        out.orders.append(order_row(bot, order, cid, CLOSE_REASON, decided))
        if order.status is OrderStatus.CLOSED and order.filled > 0:
            reason = record_close(bot, order, now, out, f"at the limit {price}")
            return Outcome(rid, bot.id, "done", reason, cid)
        if not order.is_open:
            return Outcome(rid, bot.id, "failed", f"the limit order was {order.status}", cid)
        bot.in_flight[cid] = InFlight(
            cid, derived_id(cid, "order"), "exit", side, amount, CLOSE_REASON, None, decided
        )
        deadline = now + timedelta(seconds=int(req["timeout_s"]))
        return Outcome(rid, bot.id, "working", f"limit order at {price} placed", cid, deadline)

    async def _follow_limit(
        self, bot: BotState, req: dict[str, Any], now: datetime, out: StepOut
    ) -> Outcome | None:
        """A resting limit close: filled, still resting, or timed out (cancel, then market
        or nothing)."""
        rid = str(req["id"])
        cid = str(req["client_order_id"])
        cfg, ex = bot.config, bot.exchange
        deadline = req["deadline_at"]
        flight = bot.in_flight.get(cid)
        order: Order | None = None
        filled = ZERO
        if flight is not None:
            order = await ex.fetch_order_by_client_id(cid, cfg.symbol)
            if order is not None and order.is_open and (deadline is None or now < deadline):
                return None  # resting
            if order is not None and order.is_open:
                order = await ex.cancel_order(order.id, cfg.symbol)
            bot.in_flight.pop(cid, None)
            if order is not None:
                out.orders.append(order_row(bot, order, cid, CLOSE_REASON, flight.placed_at))
                if order.filled > 0:  # all of it, or part before the cancel
                    reason = record_close(bot, order, now, out, "at the limit")
                    if order.status is OrderStatus.CLOSED or bot.position is None:
                        return Outcome(rid, bot.id, "done", reason, cid)
                    filled = order.filled
        elif req["amount"] is not None and (got := await self._recorded(bot, cid))[0] > 0:
            # a part's limit close the bot's step found filled (all or part of it)
            if got[1] == "closed" or bot.position is None:
                return Outcome(rid, bot.id, "done", f"closed {got[0]} at the limit", cid)
            filled = got[0]
        elif req["order_type"] == "limit" and deadline is not None and now < deadline:
            raise _Wait  # placed again on adoption, or ended without a fill: wait for the timeout
        if req["order_type"] == "market":
            return Outcome(rid, bot.id, "failed", "the close order ended without a fill", cid)
        what = f"the limit order did not fill within {req['timeout_s']} s"
        if req["on_timeout"] == "market":
            market_cid = make_client_order_id(bot.id, "request", rid, "close-market")
            rest = None if req["amount"] is None else Decimal(str(req["amount"])) - filled
            outcome = await self._close_at_market(bot, req, market_cid, now, out, rest)
            if outcome.reason is not None:
                outcome.reason = f"{what}: {outcome.reason}"
            return outcome
        out.log(cfg, "info", f"{what}: cancelled, the position stays open", action="close_timeout")
        return Outcome(rid, bot.id, "cancelled", f"{what}: cancelled, the position stays open")

    async def _recorded(self, bot: BotState, cid: str) -> tuple[Decimal, str]:
        """What the database holds of an order of the bot: filled amount and status."""
        async with self.runner.pool.connection() as conn:
            row = await (
                await conn.execute(
                    "select filled, status from public.orders"
                    " where bot_id = %s and client_order_id = %s",
                    (bot.id, cid),
                )
            ).fetchone()
        return (ZERO, "") if row is None else (Decimal(row[0]), str(row[1]))

    async def _keep(
        self, bot: BotState, req: dict[str, Any], now: datetime, out: StepOut
    ) -> Outcome:
        """``stop_bot(…, 'keep')`` while this close works: its resting order comes off the
        exchange and the position's stop-loss (and take-profit) rest there again, so the
        kept position is protected while no worker runs the bot. A close that filled first
        closed the position."""
        rid = str(req["id"])
        pos = bot.position
        if pos is None or str(pos.trade_id) != str(req["trade_id"]):
            return Outcome(rid, bot.id, "done", "the position is closed")
        cfg, ex = bot.config, bot.exchange
        cid = None if req["client_order_id"] is None else str(req["client_order_id"])
        decided, finished = now, None
        if cid is not None:
            flight = bot.in_flight.get(cid)
            decided = now if flight is None else flight.placed_at
            order = await ex.fetch_order_by_client_id(cid, cfg.symbol)
            if order is not None and order.is_open:
                order = await ex.cancel_order(order.id, cfg.symbol)
            bot.in_flight.pop(cid, None)
            if order is not None:
                out.orders.append(order_row(bot, order, cid, CLOSE_REASON, decided))
                if order.filled > 0:  # all of it, or part before the cancel
                    reason = record_close(bot, order, now, out, "at the limit before the stop")
                    if bot.position is None:
                        return Outcome(rid, bot.id, "done", reason, cid)
                    if order.status is OrderStatus.CLOSED:  # the part asked for closed
                        finished = reason
        hit = await protection.sync(bot, None, out)  # what is kept rests protected again
        if hit is not None:
            return hit_outcome(bot, rid, hit, decided, now, out)
        if finished is not None:
            return Outcome(rid, bot.id, "done", finished, cid)
        return Outcome(
            rid, bot.id, "cancelled", SETTLED.get(req.get("stop_status") or "", KEPT), cid
        )

    # -- manual entries -------------------------------------------------------------------

    async def _open(
        self, bot: BotState, req: dict[str, Any], now: datetime, out: StepOut
    ) -> Outcome | None:
        rid = str(req["id"])
        cfg, ex = bot.config, bot.exchange
        cid = make_client_order_id(bot.id, "request", rid, "open")
        trade_id = str(derived_id(cid, "trade"))
        if req["status"] == "working":
            if bot.position is not None and str(bot.position.trade_id) == trade_id:
                return Outcome(rid, bot.id, "done", "opened", cid, trade_id=trade_id)
            if cid in bot.in_flight:
                return None
            return Outcome(rid, bot.id, "failed", "the entry order did not fill", cid)
        if bot.position is not None:
            return Outcome(rid, bot.id, "failed", "the bot holds a position: close it first")
        if bot.in_flight:
            raise _Wait
        side: Literal["buy", "sell"] = "buy" if req["side"] == "buy" else "sell"
        if side == "sell" and not bot.can_short:
            return Outcome(
                rid,
                bot.id,
                "failed",
                f"{cfg.symbol} on {cfg.exchange}: this bot cannot hold a short here",
            )
        last = self._last_candle(bot)
        if last is None:
            raise _Wait
        if req["amount"] is not None:
            amount = Decimal(str(req["amount"]))
        else:
            amount = Decimal(str(req["stake"])) / (ONE + fee_rate(bot)) / last.close
        amount = ex.amount_to_precision(cfg.symbol, amount)
        ex.check_order(cfg.symbol, side, "market", amount, last.close)
        holds = await self.runner.credits.hold(
            [HoldRequest(cfg.user_id, bot.id, cid, bot.epoch, now, request_id=rid)]
        )
        if bot.id in holds.stale:
            raise _Wait  # another worker leases the bot now
        hold = holds.results[0]
        if hold is False:
            out.notify(
                cfg,
                "low_credits",
                "Out of credits",
                f"{cfg.name} could not place your trade because your credits ran out.",
            )
            return Outcome(rid, bot.id, "failed", "not enough credits for a trade", cid)
        try:
            if isinstance(ex, BotPaperExchange):
                order = await ex.fill_now(
                    cfg.symbol, side, amount, slipped(ex, side, last.close), cid, now
                )
            else:
                order = await place_market(bot, side, amount, cid, opening=True)
        except Exception:
            if hold is not None:
                out.credits.append(credit_gate.void(cid, hold))
            raise
        hold_id: uuid.UUID | None = hold
        flight = InFlight(
            cid, derived_id(cid, "order"), "entry", side, amount, OPEN_REASON, hold_id, last.time
        )
        out.orders.append(order_row(bot, order, cid, OPEN_REASON, last.time))
        if order.status is OrderStatus.CLOSED and order.filled > 0:
            open_trade(bot, order, now, last.time, out)
            if hold_id is not None:
                out.credits.append(credit_gate.post(cid, hold_id))
            return Outcome(rid, bot.id, "done", "opened", cid, trade_id=trade_id)
        if order.is_open:
            bot.in_flight[cid] = flight
            return Outcome(rid, bot.id, "working", "entry order placed", cid)
        if hold_id is not None:
            out.credits.append(credit_gate.void(cid, hold_id))
        return Outcome(rid, bot.id, "failed", f"the entry order was {order.status}", cid)

    # -- helpers --------------------------------------------------------------------------

    def _last_candle(self, bot: BotState) -> Candle | None:
        """The latest closed candle of the bot's market, if the bot has stepped it (a paper
        fill at an older price while the bot catches up would trade in the past)."""
        window = self.runner.md.windows.get(bot.config.market)
        last = None if window is None else window.last
        if last is None:
            return None
        if isinstance(bot.exchange, BotPaperExchange) and bot.last_candle_at != last.time:
            raise _Wait
        return last
