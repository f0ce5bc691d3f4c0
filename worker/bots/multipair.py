"""Multi-pair bots: one bot, one lease, one balance, a position per pair.

A bot whose ``pairs`` list has more than one pair runs as **legs**: one ``BotState`` per
pair (its configuration's ``symbol`` is the pair), all sharing the bot's lease epoch, its
account (one paper account, or one client of the live exchange account: one quote
balance) and its realised profit. The first leg stands for the
bot in the runner (``BotState.legs`` lists them all); every leg's market is indexed under
the bot's id, so the fleet's per-market grouping (one fetch and one strategy computation
per market) is unchanged. Orders, trades and protective orders are per leg, so credits,
position requests and recovery work per position; a leg's client order ids carry its
pair (``BotConfig.order_key``).

A close steps the legs in three phases, the backtester's order (``worker.backtest.multipair``):

1. every leg's fills and stop-loss/take-profit exits, in the order of the pairs list;
2. every leg's decision: exits at once; the entries wanted take the free slots of
   ``max_open_trades`` in the pairs' order with the stake of ``worker.strategies.slots``
   (fixed, or unlimited: the available balance over the free slots); entries beyond the
   cap are logged (``max_open_trades``) and not placed. With ``allow_short`` (a paper
   margin account, or live futures/swap markets) an entry is a long or a short; an entry
   of the other side while a position is open is a reversal: its exit is placed at once
   and frees its slot, and its entry competes for the free slots like any other;
3. each open position's protective orders rest on the exchange (live); the entries are
   placed after their credit holds (batched across bots by the runner), a live bot's with
   their stops. A live bot catching up missed closes logs their entries (``missed_entry``).

A pair that cannot trade (its market inactive or gone) is a **pair error**: its leg takes
no new entries, the reason is logged on the bot (``pair_error``) and notified to its owner,
and the other pairs, and every open position, stay managed. The bot stops (``error``) only
when no pair can trade and no position is open. (A markets refresh that drops a pair also
names it in the bot's ``error_message``: ``public.exchange_markets_store``.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from worker.candles import Candle, GapReport, MarketKey
from worker.errors import Fatal
from worker.exchanges import Exchange, make_client_order_id
from worker.strategies.slots import allocate, stakeable

from . import engine, trades
from .engine import Decision, EntryIntent
from .model import BotConfig, BotState, Position, StepOut, derived_id
from .paper import BotPaperExchange
from .recovery import advance, recover_unrecorded_entries

ZERO = Decimal(0)
ONE = Decimal(1)

Decide = Callable[[BotState, Any, Candle, Candle, dict[Any, Decision]], Decision]
Side = Literal["buy", "sell"]
EnterNow = Callable[[list[tuple[EntryIntent, StepOut]]], Awaitable[None]]


def is_multi(cfg: BotConfig) -> bool:
    return len(cfg.pairs) > 1


def markets_of(bot: BotState) -> list[MarketKey]:
    """The markets a bot (each of its legs) trades."""
    return [leg.config.market for leg in bot.legs] if bot.legs else [bot.config.market]


def leg_for(bot: BotState, request: Mapping[str, Any]) -> BotState:
    """The leg an owner's position request is for: the one holding (or opening) its trade,
    else the leg of the pair it names (``manual_trade``'s ``p_pair``; the first pair for a
    request made before requests named one)."""
    if not bot.legs:
        return bot
    pair = request.get("pair")
    if request.get("kind") == "open" and pair is not None:
        for leg in bot.legs:
            if leg.config.symbol == pair:
                return leg
    trade_id = request.get("trade_id")
    cid = make_client_order_id(bot.id, "request", request["id"], "open")
    for leg in bot.legs:
        pos = leg.position
        if (pos is not None and trade_id is not None and str(pos.trade_id) == str(trade_id)) or (
            cid in leg.in_flight
            or (pos is not None and str(pos.trade_id) == str(derived_id(cid, "trade")))
        ):
            return leg
    return bot.legs[0]


def _position(t: Mapping[str, Any]) -> Position:
    return Position(
        trade_id=t["id"],
        amount=Decimal(t["amount"]),
        entry_price=Decimal(t["price"]),
        entry_cost=Decimal(t["amount"]) * Decimal(t["price"]),
        entry_fee=Decimal(t["fee"]),
        entry_time=t["entry_time"],
        entry_order_id=t["entry_order_id"] or derived_id(t["id"], "order"),
        stop_price=None if t["stop_loss_price"] is None else Decimal(t["stop_loss_price"]),
        take_price=None if t["take_profit_price"] is None else Decimal(t["take_profit_price"]),
        direction="short" if t.get("direction") == "short" else "long",
        decided_at=t.get("decided_at"),
        exit_timeouts=int(t.get("exit_timeouts") or 0),
    )


async def build(
    builder: Any,
    row: dict[str, Any],
    epoch: int,
    open_trades: list[dict[str, Any]],
    orders: list[dict[str, Any]],
) -> BotState:
    """A leased multi-pair bot as the database knows it: a leg per pair on one paper account,
    each leg's position and orders in flight restored (``BotBuilder.reconcile``)."""
    cfg = BotConfig.from_row(row)
    if not cfg.is_paper:
        return await _build_live(builder, cfg, row, epoch, open_trades, orders)
    quote = cfg.symbol.split("/")[1].split(":")[0]
    realized = Decimal(row["realized"])
    positions = {str(t["trading_pair"]): _position(t) for t in open_trades}
    free_quote = cfg.initial_balance + realized
    balances: dict[str, Decimal] = {}
    for pair, pos in positions.items():
        if pos.long:
            free_quote -= pos.entry_cost + pos.entry_fee
            balances[pair.split("/")[0]] = pos.amount
        else:  # a margin short: the proceeds held, the base owed
            free_quote += pos.entry_cost - pos.entry_fee
            balances[pair.split("/")[0]] = -pos.amount
    rules = (
        None
        if builder.catalog is None
        else await builder.catalog.market_rules(cfg.exchange, cfg.symbol)
    )
    if rules is None:
        from .markets import paper_rules

        rules = paper_rules(cfg.exchange, builder.markets_dir)
    account: Exchange = BotPaperExchange(
        cfg.exchange,
        {quote: max(free_quote, ZERO), **balances},
        rules=rules,
        taker_fee=cfg.fee,
        maker_fee=cfg.fee,
        slippage=cfg.slippage,
        volume_share=cfg.orders.paper_volume_share,
        history=0,
        margin=cfg.allow_short,
    )
    legs: list[BotState] = []
    for pair in cfg.pairs:
        leg = BotState(
            replace(cfg, symbol=pair),
            epoch,
            account,
            position=positions.get(pair),
            last_candle_at=row["last_candle_at"],
            realized=realized,
            day_pnl=Decimal(row["day_pnl"]),
            can_short=cfg.allow_short,
        )
        if row["last_candle_at"] is not None:
            leg.day = row["last_candle_at"].date()
        await builder.reconcile(leg, [o for o in orders if o["symbol"] == pair])
        legs.append(leg)
    legs[0].legs = legs
    return legs[0]


async def _build_live(
    builder: Any,
    cfg: BotConfig,
    row: dict[str, Any],
    epoch: int,
    open_trades: list[dict[str, Any]],
    orders: list[dict[str, Any]],
) -> BotState:
    """A live multi-pair bot: a leg per pair on one exchange account (one shared client),
    each leg's orders reconciled by client id and its unrecorded entries recovered."""
    positions = {str(t["trading_pair"]): _position(t) for t in open_trades}
    realized = Decimal(row["realized"])
    legs: list[BotState] = []
    try:
        for pair in cfg.pairs:
            leg_cfg = replace(cfg, symbol=pair)
            exchange = await builder._live(leg_cfg, row)
            leg = BotState(
                leg_cfg,
                epoch,
                exchange,
                position=positions.get(pair),
                last_candle_at=row["last_candle_at"],
                realized=realized,
                day_pnl=Decimal(row["day_pnl"]),
                # live shorts only where the exchange holds them: futures/swap markets
                can_short=cfg.allow_short and exchange.market(pair).contract,
            )
            legs.append(leg)
            if row["last_candle_at"] is not None:
                leg.day = row["last_candle_at"].date()
            await builder.reconcile(leg, [o for o in orders if o["symbol"] == pair])
            pos = leg.position
            advance(leg, pos.decided_at if pos is not None else None)
            await recover_unrecorded_entries(
                builder.credits.pool,
                leg,
                charged=builder._charges(cfg),
                now=builder.clock.now(),
            )
    except BaseException:
        for leg in legs:
            await leg.exchange.close()
        raise
    legs[0].legs = legs
    return legs[0]


def _share(leg: BotState, legs: Sequence[BotState]) -> None:
    """The bot's realised profit, today's result and a pause are one for all legs."""
    for other in legs:
        if other is not leg:
            other.realized, other.day, other.day_pnl = leg.realized, leg.day, leg.day_pnl
            other.halted = other.halted or leg.halted


def _pair_error(bot: BotState, leg: BotState, error: Exception, out: StepOut) -> None:
    """A pair that cannot trade: no new entries on it, logged on the bot and told to its
    owner; the bot stops (``error``) only when no pair can trade and no position is open."""
    cfg = leg.config
    message = f"{cfg.symbol}: {error}"
    leg.pair_error = message
    errors = [g.pair_error for g in bot.legs if g.pair_error]
    if len(errors) == len(bot.legs) and all(g.position is None for g in bot.legs):
        engine.fail(bot, Fatal("; ".join(errors)), out)
        for g in bot.legs:
            g.halted = True
        return
    out.log(cfg, "error", message, action="pair_error", pair=cfg.symbol)
    out.notify(
        cfg,
        "error",
        f"{cfg.name}: {cfg.symbol} stopped",
        f"{message}. The other pairs trade on; open positions stay managed.",
        pair=cfg.symbol,
    )


async def step(
    bot: BotState,
    out: StepOut,
    windows: Mapping[MarketKey, Any],
    gaps: Mapping[MarketKey, Sequence[GapReport]],
    decide: Decide,
    enter_now: EnterNow,
) -> list[EntryIntent]:
    """One close of a multi-pair bot (the candles it missed first), written to ``out``.
    Returns the entries decided at the last candle, to be placed after their credit holds."""
    legs = bot.legs
    todo: dict[datetime, dict[int, Candle]] = {}
    last: dict[int, Candle] = {}
    for n, leg in enumerate(legs):
        key = leg.config.market
        for g in gaps.get(key, ()):
            out.log(leg.config, "warning", g.describe(), action="candle_gap")
        window = windows.get(key)
        if window is None or window.last is None:
            continue
        last[n] = window.last
        for c in window.since(leg.last_candle_at) if leg.last_candle_at else [window.last]:
            todo.setdefault(c.time, {})[n] = c
    caches: dict[int, dict[Any, Decision]] = {n: {} for n in range(len(legs))}
    entries: list[EntryIntent] = []
    times = sorted(todo)
    for t in times:
        candles = todo[t]
        for n, c in sorted(candles.items()):  # 1: fills and stops, in the pairs' order
            leg = legs[n]
            await engine.apply_fills(leg, c, out)
            await engine.apply_stops(leg, c, out)
            _share(leg, legs)
        wanted: list[tuple[BotState, Candle, Side]] = []
        reversing: set[int] = set()
        for n, c in sorted(candles.items()):  # 2: decisions
            leg = legs[n]
            d = decide(leg, windows[leg.config.market], c, last[n], caches[n])
            side: Side | None = "buy" if d.enter_long else "sell" if d.enter_short else None
            if leg.position is not None:
                side = await _exit(leg, d, c, out)
                _share(leg, legs)
                if side is not None:
                    reversing.add(id(leg))
            elif leg.in_flight or leg.halted:
                side = None
            elif d.short_blocked and leg.config.allow_short:
                engine.short_skipped(leg, out)
            if side is not None and not leg.pair_error:
                wanted.append((leg, c, side))
        intents = await _entries(bot, wanted, reversing, out)
        for n in sorted(candles):  # the exchange holds each open position's stop (live)
            await engine.protect(legs[n], candles[n], out)
        if t == times[-1]:
            entries = intents
        elif intents and bot.config.is_paper:  # a missed close replayed: enter now
            await enter_now([(i, out) for i in intents])
        else:
            for i in intents:  # a live bot does not trade in the past
                engine.missed_entry(i, out)
    for leg in legs:
        if times:
            leg.last_candle_at = times[-1]
    return entries


async def _exit(leg: BotState, d: Decision, candle: Candle, out: StepOut) -> Side | None:
    """The decision of a leg holding a position: its exit, placed now. A reversal (an entry
    of the other side) comes back as that side when its exit went out at market on this
    close: its entry then competes for the free slots like any other."""
    pos = leg.position
    assert pos is not None
    flat = not leg.in_flight
    if pos.long:
        reverse = d.enter_short
        d = replace(d, exit_long=d.exit_long or d.enter_short, enter_short=False)
    else:
        reverse = d.enter_long
        d = replace(d, exit_short=d.exit_short or d.enter_long, enter_long=False)
    await engine.plan_decision(leg, d, candle, out)
    if not (reverse and flat and not leg.halted):
        return None
    placed = leg.position is None or any(
        f.purpose == "exit" and f.price is None for f in leg.in_flight.values()
    )
    return ("sell" if pos.long else "buy") if placed else None


async def _entries(
    bot: BotState,
    wanted: list[tuple[BotState, Candle, Side]],
    reversing: set[int],
    out: StepOut,
) -> list[EntryIntent]:
    """The entries of one close: free slots in the pairs' order, the stake split by the
    bot's rule, one shared balance; the others logged. A reversing leg's exit frees its slot."""
    if not wanted:
        return []
    cfg = bot.config
    quote = cfg.symbol.split("/")[1].split(":")[0]
    balance = await bot.exchange.fetch_balance()
    free = balance[quote].free if quote in balance else ZERO
    if cfg.is_paper and cfg.allow_short:  # a margin account holds what its shorts need
        free = stakeable(
            free, [g.position.entry_cost for g in bot.legs if g.position and not g.position.long]
        )
    busy = sum(
        1
        for g in bot.legs
        if (g.position is not None and id(g) not in reversing)
        or any(f.purpose == "entry" for f in g.in_flight.values())
    )
    taken, skipped = allocate(
        [leg.config.symbol for leg, _, _ in wanted],
        cfg.pairs,
        open_trades=busy,
        max_open_trades=cfg.max_open_trades,
        available=free,
        stake_amount=None if cfg.sizing == "unlimited" else cfg.stake_amount,
    )
    by_pair = {leg.config.symbol: (leg, c, side) for leg, c, side in wanted}
    for s in skipped:
        leg, c, _ = by_pair[s.pair]
        why = (
            f"{cfg.max_open_trades} trades open (max_open_trades)"
            if s.reason == "max_open_trades"
            else f"no {quote} left to stake"
        )
        out.log(
            leg.config,
            "info",
            f"entry on {s.pair} skipped: {why}",
            action="entry_skipped",
            reason=s.reason,
            pair=s.pair,
            candle=c.time.isoformat(),
        )
    intents: list[EntryIntent] = []
    for e in taken:
        leg, c, side = by_pair[e.pair]
        lc = leg.config
        try:
            amount = e.stake / (ONE + trades.fee_rate(leg)) / c.close
            amount = leg.exchange.amount_to_precision(lc.symbol, amount)
            leg.exchange.check_order(lc.symbol, side, "market", amount, c.close)
        except Fatal as err:
            _pair_error(bot, leg, err, out)
            continue
        cid = make_client_order_id(lc.order_key, c.time.isoformat(), "entry")
        intents.append(EntryIntent(leg, c, amount, cid, side))
    return intents
