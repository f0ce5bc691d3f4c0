"""Limit entries and exits as a bot places them (no database): where they rest, when they
fill, unfilled timeouts (cancel or re-quote), a cancel that races a fill, partial fills of
entries and exits, fill notifications to owners who opted in, and the equity of a step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from worker.bots import engine, orders
from worker.bots.engine import Decision
from worker.bots.markets import paper_rules
from worker.bots.model import BotConfig, BotState, StepOut
from worker.bots.paper import BotPaperExchange
from worker.candles import Candle
from worker.errors import Fatal
from worker.exchanges import Balance, Exchange, Fee, Market, Order, OrderStatus
from worker.exchanges.models import OrderType, Side

T0 = datetime(2018, 1, 12, tzinfo=UTC)
D = Decimal
HOLD = Decision(False, False)
ENTER = Decision(True, False)
EXIT = Decision(False, True)


def candle(i: int, o: str, h: str, lo: str, c: str) -> Candle:
    return Candle(T0 + timedelta(minutes=5 * i), D(o), D(h), D(lo), D(c), D(1))


FLAT = "0.1"


def flat(i: int) -> Candle:
    return candle(i, FLAT, FLAT, FLAT, FLAT)


def config(**row: Any) -> BotConfig:
    base: dict[str, Any] = {
        "id": "b0700000-0000-4000-8000-00000000000b",
        "user_id": "a11ce000-0000-4000-8000-000000000001",
        "name": "limits",
        "exchange": "binance",
        "trading_pair": "ETH/BTC",
        "timeframe": "5m",
        "strategy": "sma_cross",
        "parameters": {"fast": 3, "slow": 8},
        "stake_amount": "0.1",
        "initial_balance": "1",
        "is_paper_trade": True,
        "metadata": {"paper_fee": "0.001"},
        "entry_order_type": "limit",
        "limit_offset": "1",  # 1 %: a buy rests at 0.099 under a close of 0.1
        "entry_timeout": 2,
    }
    base.update(row)
    return BotConfig.from_row(base)


def paper_bot(**row: Any) -> BotState:
    cfg = config(**row)
    ex = BotPaperExchange(
        "binance",
        {"BTC": D("1")},
        rules=paper_rules("binance"),
        taker_fee=cfg.fee,
        maker_fee=cfg.fee,
        history=0,
    )
    return BotState(cfg, 1, ex)


async def step(b: BotState, c: Candle, d: Decision = HOLD) -> StepOut:
    out = StepOut()
    await engine.apply_fills(b, c, out)
    await engine.apply_stops(b, c, out)
    intent = await engine.plan_decision(b, d, c, out)
    if intent is not None:
        await engine.place_entry(intent, None, out)
    return out


async def test_a_limit_entry_rests_below_the_close_and_fills_at_its_price_when_touched() -> None:
    b = paper_bot()
    out = await step(b, flat(0), ENTER)
    (row,) = out.orders
    assert (row["order_type"], D(row["price"]), row["status"]) == ("limit", D("0.099"), "open")
    out = await step(b, candle(1, "0.1", "0.1", "0.0995", "0.0995"))  # not low enough
    assert b.position is None and not out.trades
    out = await step(b, candle(2, "0.0995", "0.0996", "0.0989", "0.099"))
    assert b.position is not None and b.position.entry_price == D("0.099")
    assert out.trades[0]["order_type"] == "limit"


async def test_a_limit_entry_opened_through_fills_at_the_open() -> None:
    b = paper_bot()
    await step(b, flat(0), ENTER)
    await step(b, candle(1, "0.098", "0.0985", "0.0975", "0.098"))
    assert b.position is not None and b.position.entry_price == D("0.098")


async def test_an_unfilled_limit_entry_is_cancelled_after_its_timeout_and_given_up() -> None:
    b = paper_bot()
    await step(b, flat(0), ENTER)
    await step(b, flat(1))
    assert b.in_flight  # one candle of two
    out = await step(b, flat(2))
    assert not b.in_flight and b.position is None
    assert [o["status"] for o in out.orders] == ["canceled"]
    assert [log["context"]["action"] for log in out.logs] == ["order_timeout"]
    balance = await b.exchange.fetch_balance()
    assert balance["BTC"].free == D("1") and balance["BTC"].used == 0  # funds released
    out = await step(b, candle(3, "0.09", "0.09", "0.08", "0.09"))
    assert b.position is None and not out.orders  # given up: nothing rests any more


async def test_a_timeout_in_minutes_ends_at_the_first_close_after_it() -> None:
    b = paper_bot(order_timeout_unit="minutes", entry_timeout=7)  # 5m candles: two
    await step(b, flat(0), ENTER)
    await step(b, flat(1))
    assert b.in_flight
    await step(b, flat(2))
    assert not b.in_flight


async def test_requote_places_the_entry_again_at_the_latest_close() -> None:
    b = paper_bot(timeout_action="requote")
    await step(b, flat(0), ENTER)
    await step(b, flat(1))
    out = await step(b, candle(2, "0.1", "0.1", "0.1", "0.2"))
    statuses = [(o["status"], o["price"]) for o in out.orders]
    assert statuses[0] == ("canceled", "0.099")
    assert statuses[1][0] == "open" and D(statuses[1][1]) == D("0.198")  # 0.2 less 1 %
    assert len(b.in_flight) == 1


async def test_a_limit_exit_rests_above_the_close_and_the_position_stays_managed() -> None:
    b = paper_bot(entry_order_type="market", exit_order_type="limit", exit_timeout=1, stop_loss="5")
    await step(b, flat(0), ENTER)
    await step(b, flat(1))
    assert b.position is not None
    out = await step(b, flat(2), EXIT)
    assert D(out.orders[0]["price"]) == D("0.101") and b.position is not None
    out = await step(b, flat(3))  # not touched: cancelled, the position stays open
    assert b.position is not None and not b.in_flight
    assert [o["status"] for o in out.orders] == ["canceled"]
    out = await step(b, candle(4, "0.1", "0.1", "0.09", "0.09"))  # the stop still applies
    assert b.position is None and out.trades[-1]["exit_reason"] == "stop_loss"


def test_order_settings_out_of_range_are_refused() -> None:
    with pytest.raises(Fatal, match="limit_offset"):
        config(limit_offset="11")
    with pytest.raises(Fatal, match="entry_order_type"):
        config(entry_order_type="stop")


# --- a live exchange that fills in part, and races cancels --------------------------------------


class Scripted(Exchange):
    """An exchange whose fills the test decides: orders rest until ``fill``; a cancel may
    lose the race to a fill (``race``)."""

    def __init__(self) -> None:
        super().__init__("binance")
        self._rules = paper_rules("binance")
        self.orders: dict[str, Order] = {}
        self.race = False

    async def load_markets(self, reload: bool = False) -> dict[str, Market]:
        return {}

    async def create_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: Decimal,
        price: Decimal | None = None,
        *,
        stop_price: Decimal | None = None,
        client_order_id: str | None = None,
        leverage: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Order:
        cid = client_order_id or f"o{len(self.orders)}"
        order = Order(
            f"x-{cid}", cid, symbol, side, type, OrderStatus.OPEN, amount, D(0), amount,
            price, None, None, D(0), None, T0,
        )  # fmt: skip
        self.orders[cid] = order
        return order

    def fill(self, cid: str, amount: Decimal) -> None:
        o = self.orders[cid]
        assert o.price is not None
        filled = o.filled + amount
        self.orders[cid] = replace(
            o,
            filled=filled,
            remaining=o.amount - filled,
            average=o.price,
            cost=filled * o.price,
            fee=Fee(filled * o.price * D("0.001"), "BTC"),
            status=OrderStatus.CLOSED if filled == o.amount else OrderStatus.OPEN,
        )

    async def cancel_order(self, order_id: str, symbol: str) -> Order:
        cid = order_id.removeprefix("x-")
        if self.race:  # the rest filled before the cancel arrived
            self.fill(cid, self.orders[cid].remaining)
        o = self.orders[cid]
        if o.is_open:
            self.orders[cid] = replace(o, status=OrderStatus.CANCELED)
        return self.orders[cid]

    async def fetch_order_by_client_id(self, client_order_id: str, symbol: str) -> Order | None:
        return self.orders.get(client_order_id)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open]

    async def fetch_balance(self) -> dict[str, Balance]:
        return {"BTC": Balance("BTC", D(1), D(0), D(1))}

    async def fetch_ohlcv(self, *args: Any, **kwargs: Any) -> list[Candle]:
        return []


def live_bot(**row: Any) -> tuple[BotState, Scripted]:
    ex = Scripted()
    return BotState(config(is_paper_trade=False, **row), 1, ex), ex


async def live_step(b: BotState, c: Candle, d: Decision = HOLD, hold: Any = None) -> StepOut:
    out = StepOut()
    await engine.apply_fills(b, c, out)
    await engine.apply_stops(b, c, out)
    intent = await engine.plan_decision(b, d, c, out)
    if intent is not None:
        await engine.place_entry(intent, hold, out)
    return out


HOLD_ID = "0c0c0c0c-0000-4000-8000-000000000001"


async def test_a_partially_filled_entry_opens_the_filled_amount_when_it_times_out() -> None:
    b, ex = live_bot()
    await live_step(b, flat(0), ENTER, hold=HOLD_ID)
    (cid,) = b.in_flight
    amount = ex.orders[cid].amount
    part = (amount * D("0.4")).quantize(D("0.001"))
    ex.fill(cid, part)
    await live_step(b, flat(1))
    assert b.position is None  # still resting, part filled
    out = await live_step(b, flat(2))
    assert b.position is not None and b.position.amount == part
    (order_row,) = out.orders
    assert order_row["status"] == "canceled" and D(order_row["filled"]) == part
    (trade,) = out.trades
    assert D(trade["amount"]) == part and D(trade["price"]) == D("0.099")
    # a trade happened: its credit hold is posted, not voided
    assert [c.pending_id is not None for c in out.credits] == [True]
    assert "post" in repr(out.credits[0]).lower()


async def test_a_cancel_that_races_a_fill_keeps_the_fill() -> None:
    b, ex = live_bot()
    await live_step(b, flat(0), ENTER)
    (cid,) = b.in_flight
    ex.race = True
    await live_step(b, flat(1))
    out = await live_step(b, flat(2))
    assert b.position is not None and b.position.amount == ex.orders[cid].amount
    assert out.orders[0]["status"] == "closed"
    assert not [log for log in out.logs if log["context"]["action"] == "order_timeout"]


async def test_a_partially_filled_exit_closes_that_part_and_leaves_the_rest_open() -> None:
    b, ex = live_bot(exit_order_type="limit", exit_timeout=1)
    await live_step(b, flat(0), ENTER)
    (entry,) = b.in_flight
    ex.fill(entry, ex.orders[entry].amount)
    await live_step(b, flat(1))
    pos = b.position
    assert pos is not None
    await live_step(b, flat(2), EXIT)
    (exit_cid,) = b.in_flight
    assert ex.orders[exit_cid].side == "sell" and ex.orders[exit_cid].price == D("0.101")
    part = (pos.amount * D("0.25")).quantize(D("0.001"))
    ex.fill(exit_cid, part)
    out = await live_step(b, flat(3))
    closed = [t for t in out.trades if t["status"] == "closed"]
    assert len(closed) == 1 and D(closed[0]["amount"]) == part
    assert closed[0]["id"] != str(pos.trade_id)  # the part is a trade of its own
    assert b.position is not None and b.position.amount == pos.amount - part
    assert b.position.trade_id == pos.trade_id
    assert [(r["id"], D(r["amount"])) for r in out.resized] == [
        (str(pos.trade_id), pos.amount - part)
    ]
    # the rest is still managed: the next exit decision closes it
    await live_step(b, flat(4), EXIT)
    (again,) = b.in_flight
    ex.fill(again, ex.orders[again].amount)
    out = await live_step(b, flat(5))
    assert b.position is None
    assert [D(t["amount"]) for t in out.trades] == [pos.amount - part]


async def test_fills_are_notified_to_owners_who_opted_in_only() -> None:
    for opted, expected in ((None, []), (True, ["fill"])):
        b = paper_bot(notify_fills=opted)
        await step(b, flat(0), ENTER)
        out = await step(b, candle(1, "0.098", "0.098", "0.098", "0.098"))
        assert [n["kind"] for n in out.notes] == expected
    assert out.notes[0]["data"]["price"] == "0.098"


async def test_the_equity_of_a_step_marks_the_position_at_the_close() -> None:
    b = paper_bot(entry_order_type="market")
    await step(b, flat(0), ENTER)
    await step(b, flat(1))
    pos = b.position
    assert pos is not None
    row = orders.equity_row(b, candle(2, "0.1", "0.12", "0.1", "0.11"))
    unrealized = pos.amount * D("0.11") - pos.entry_cost - pos.entry_fee
    assert D(row["unrealized_pnl"]) == unrealized
    assert D(row["equity"]) == D(1) + unrealized
    assert D(row["position_amount"]) == pos.amount
