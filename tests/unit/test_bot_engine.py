"""The bot engine's fill rules on a paper account, candle by candle (no database): the
same rules as the backtester, so a backtest predicts what the bot does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from worker.bots import engine
from worker.bots.engine import Decision
from worker.bots.markets import paper_rules
from worker.bots.model import BotConfig, BotState, StepOut
from worker.bots.paper import BotPaperExchange
from worker.candles import Candle
from worker.errors import Fatal

T0 = datetime(2018, 1, 12, tzinfo=UTC)
D = Decimal


def candle(i: int, o: str, h: str, lo: str, c: str) -> Candle:
    return Candle(T0 + timedelta(minutes=5 * i), D(o), D(h), D(lo), D(c), D(1))


def bot(**row: Any) -> BotState:
    base: dict[str, Any] = {
        "id": "b0700000-0000-4000-8000-00000000000a",
        "user_id": "a11ce000-0000-4000-8000-000000000001",
        "name": "t",
        "exchange": "binance",
        "trading_pair": "ETH/BTC",
        "timeframe": "5m",
        "strategy": "sma_cross",
        "parameters": {"fast": 3, "slow": 8},
        "stake_amount": "0.1",
        "stop_loss": "2",
        "take_profit": "3",
        "initial_balance": "1",
        "is_paper_trade": True,
        "metadata": {"paper_fee": "0.001"},
    }
    base.update(row)
    cfg = BotConfig.from_row(base)
    ex = BotPaperExchange(
        "binance",
        {"BTC": D("1")},
        rules=paper_rules("binance"),
        taker_fee=cfg.fee,
        maker_fee=cfg.fee,
        history=0,
    )
    return BotState(cfg, 1, ex)


HOLD = Decision(False, False)


async def step(b: BotState, c: Candle, d: Decision = HOLD) -> StepOut:
    out = StepOut()
    await engine.apply_fills(b, c, out)
    await engine.apply_stops(b, c, out)
    intent = await engine.plan_decision(b, d, c, out)
    if intent is not None:
        await engine.place_entry(intent, None, out)
    return out


async def enter(b: BotState) -> None:
    await step(b, candle(0, "0.1", "0.1", "0.1", "0.1"), Decision(True, False))
    assert b.in_flight and b.position is None  # a decision on a close fills at the next open


async def test_entry_fills_at_next_open_and_stop_inside_that_candle_at_its_price() -> None:
    b = await _entered()
    out = await step(b, candle(1, "0.101", "0.102", "0.098", "0.099"))
    closed = [t for t in out.trades if t["status"] == "closed"]
    assert len(closed) == 1
    t = closed[0]
    assert D(t["price"]) == D("0.101")
    assert t["exit_reason"] == "stop_loss"
    assert D(t["exit_price"]) == D("0.09898")  # 0.101 * (1 - 2 %), on the tick
    amount = D(t["amount"])
    fees = amount * D("0.101") * D("0.001") + amount * D("0.09898") * D("0.001")
    assert D(t["profit"]) == amount * (D("0.09898") - D("0.101")) - fees
    assert D(t["fee"]) == fees


async def _entered() -> BotState:
    b = bot()
    await enter(b)
    return b


async def test_stop_first_when_stop_and_target_are_touched_in_one_candle() -> None:
    b = await _entered()
    await step(b, candle(1, "0.1", "0.1", "0.1", "0.1"))
    out = await step(b, candle(2, "0.1", "0.2", "0.05", "0.1"))
    assert [t["exit_reason"] for t in out.trades] == ["stop_loss"]


async def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    b = await _entered()
    await step(b, candle(1, "0.1", "0.1", "0.1", "0.1"))
    out = await step(b, candle(2, "0.09", "0.091", "0.089", "0.09"))
    assert D(out.trades[0]["exit_price"]) == D("0.09")


async def test_take_profit_at_its_price_and_signal_exit_at_the_next_open() -> None:
    b = await _entered()
    out = await step(b, candle(1, "0.1", "0.104", "0.0995", "0.1"))
    assert out.trades[-1]["exit_reason"] == "take_profit"
    assert D(out.trades[-1]["exit_price"]) == D("0.103")

    b = bot(stop_loss=None, take_profit=None)
    await enter(b)
    await step(b, candle(1, "0.1", "0.1", "0.1", "0.1"), Decision(False, True))
    assert b.position is not None  # still held until the next open
    out = await step(b, candle(2, "0.105", "0.11", "0.1", "0.1"))
    assert out.trades[-1]["exit_reason"] == "signal"
    assert D(out.trades[-1]["exit_price"]) == D("0.105")


async def test_client_order_ids_are_deterministic_so_a_repeated_step_places_nothing_new() -> None:
    b = bot()
    c = candle(0, "0.1", "0.1", "0.1", "0.1")
    out1 = await step(b, c, Decision(True, False))
    ex = b.exchange
    assert isinstance(ex, BotPaperExchange)
    again = await ex.place_order_once(
        "ETH/BTC", "buy", "market", D("0.5"), client_order_id=out1.orders[0]["client_order_id"]
    )
    assert again.amount == D(out1.orders[0]["amount"])
    assert len(await ex.fetch_open_orders()) == 1


async def test_risk_sizing_stakes_the_risk_over_the_stop_distance() -> None:
    b = bot(metadata={"sizing": "risk", "paper_fee": "0"}, risk_percentage="1", stop_loss="2")
    await step(b, candle(0, "0.1", "0.1", "0.1", "0.1"), Decision(True, False))
    (flight,) = b.in_flight.values()
    # 1 % of 1 BTC at risk with a 2 % stop: a 0.5 BTC position, 5 ETH at 0.1
    assert flight.amount == D("5")


def test_invalid_parameters_name_the_parameter() -> None:
    with pytest.raises(Fatal, match="fast"):
        bot(parameters={"fast": 0, "slow": 8})


# --- shorts (allow_short on a paper margin account) ---------------------------------------

SHORT = Decision(False, False, enter_short=True)


def short_bot(**row: Any) -> BotState:
    b = bot(allow_short=True, **row)
    ex = BotPaperExchange(
        "binance",
        {"BTC": D("1")},
        rules=paper_rules("binance"),
        taker_fee=b.config.fee,
        maker_fee=b.config.fee,
        history=0,
        margin=True,
    )
    return BotState(b.config, 1, ex, can_short=True)


async def test_a_short_sells_borrowed_base_and_its_stop_is_above_the_entry() -> None:
    b = short_bot()
    await step(b, candle(0, "0.1", "0.1", "0.1", "0.1"), SHORT)
    out = await step(b, candle(1, "0.1", "0.1", "0.1", "0.1"))
    pos = b.position
    assert pos is not None and pos.direction == "short"
    assert pos.stop_price == D("0.102") and pos.take_price == D("0.097")
    [opened] = out.trades
    assert (opened["side"], opened["direction"]) == ("sell", "short")
    balance = await b.exchange.fetch_balance()
    assert balance["ETH"].free == -pos.amount  # owed
    assert balance["BTC"].free == D(1) + pos.entry_cost - pos.entry_fee  # the proceeds

    out = await step(b, candle(2, "0.101", "0.1025", "0.1005", "0.101"))
    [t] = out.trades
    assert t["exit_reason"] == "stop_loss" and D(t["exit_price"]) == D("0.102")
    amount = D(t["amount"])
    fees = amount * D("0.1") * D("0.001") + amount * D("0.102") * D("0.001")
    assert D(t["profit"]) == amount * (D("0.1") - D("0.102")) - fees
    balance = await b.exchange.fetch_balance()
    assert balance["ETH"].total == 0 and balance["BTC"].total == D(1) + D(t["profit"])


async def test_a_shorts_target_is_below_and_a_gap_fills_at_the_open() -> None:
    b = short_bot()
    await step(b, candle(0, "0.1", "0.1", "0.1", "0.1"), SHORT)
    await step(b, candle(1, "0.1", "0.1", "0.1", "0.1"))
    out = await step(b, candle(2, "0.095", "0.096", "0.094", "0.095"))
    [t] = out.trades
    assert t["exit_reason"] == "take_profit" and D(t["exit_price"]) == D("0.095")
    assert D(t["profit"]) > 0


async def test_an_opposite_entry_reverses_on_the_same_fill() -> None:
    b = short_bot(stop_loss=None, take_profit=None)
    await enter(b)
    await step(b, candle(1, "0.1", "0.1", "0.1", "0.1"))
    assert b.position is not None and b.position.direction == "long"
    out = await step(b, candle(2, "0.1", "0.1", "0.1", "0.1"), SHORT)
    assert [o["side"] for o in out.orders] == ["sell", "sell"]  # the exit, then the short
    out = await step(b, candle(3, "0.11", "0.11", "0.11", "0.11"))
    closed, opened = out.trades
    assert (closed["status"], closed["direction"], closed["exit_price"]) == (
        "closed",
        "long",
        "0.11",
    )
    assert (opened["status"], opened["direction"], opened["price"]) == ("open", "short", "0.11")
    assert closed["exit_time"] == opened["entry_time"]
    out = await step(b, candle(4, "0.1", "0.1", "0.1", "0.1"), Decision(True, False))
    out = await step(b, candle(5, "0.1", "0.1", "0.1", "0.1"))
    assert [(t["direction"], t["status"]) for t in out.trades] == [
        ("short", "closed"),
        ("long", "open"),
    ]


async def test_without_allow_short_short_entries_are_ignored() -> None:
    b = bot()
    d = Decision.from_signal(
        {"enter_long": False, "exit_long": False, "enter_short": True, "exit_short": False},
        shorts=False,
    )
    out = await step(b, candle(0, "0.1", "0.1", "0.1", "0.1"), d)
    assert not out.orders and not out.logs and not b.in_flight


async def test_a_spot_account_cannot_sell_what_it_does_not_hold() -> None:
    b = bot()
    with pytest.raises(Fatal, match="insufficient funds"):
        await b.exchange.create_order(
            "ETH/BTC", "sell", "market", D("1"), client_order_id="no-margin-1"
        )


async def test_an_allow_short_bot_that_cannot_short_logs_the_skipped_entry() -> None:
    # A live bot on a spot market: can_short is False, its short entries are skipped and logged.
    b = bot(allow_short=True)
    d = Decision.from_signal(
        {"enter_long": False, "exit_long": False, "enter_short": True, "exit_short": False},
        shorts=b.can_short,
    )
    out = await step(b, candle(0, "0.1", "0.1", "0.1", "0.1"), d)
    assert not out.orders and not b.in_flight
    [entry] = out.logs
    assert entry["context"]["action"] == "short_skipped" and "spot market" in entry["message"]


# Levels of the position opened at 0.1 (stop 2 %, target 3 %): a long's stop 0.098 and
# target 0.103, a short's stop 0.102 and target 0.097; candles around, on and through them.
LEVEL_CANDLES = [
    ("0.1", "0.1", "0.1", "0.1"),
    ("0.1", "0.1029", "0.0981", "0.1"),  # inside both levels
    ("0.1", "0.103", "0.099", "0.1"),  # on the long's target
    ("0.1", "0.101", "0.098", "0.1"),  # on the long's stop
    ("0.1", "0.102", "0.099", "0.1"),  # on the short's stop
    ("0.1", "0.101", "0.097", "0.1"),  # on the short's target
    ("0.1", "0.1019", "0.0971", "0.1"),  # inside the short's levels
    ("0.105", "0.106", "0.104", "0.105"),  # a gap through the long's target
    ("0.09", "0.091", "0.089", "0.09"),  # a gap through the long's stop
]


@pytest.mark.parametrize("short", [False, True], ids=["long", "short"])
@pytest.mark.parametrize("ohlc", LEVEL_CANDLES)
async def test_a_position_is_idle_exactly_when_its_step_changes_nothing(
    short: bool, ohlc: tuple[str, str, str, str]
) -> None:
    """The runner skips the step of a bot whose decision and candle are ``idle``: that must
    never skip a stop-loss or take-profit the candle touched."""
    b = short_bot() if short else bot()
    await step(b, candle(0, "0.1", "0.1", "0.1", "0.1"), SHORT if short else Decision(True, False))
    await step(b, candle(1, "0.1", "0.1", "0.1", "0.1"))
    assert b.position is not None and not b.in_flight
    c = candle(2, *ohlc)
    idle = engine.idle(b, HOLD, c)
    out = await step(b, c)
    assert idle == (not out.has_writes and b.position is not None), (ohlc, out.trades)


async def test_a_trailing_stop_or_a_live_level_is_never_idle() -> None:
    """A trailing stop moves with every close and a live bot's levels rest on its exchange:
    their steps always run."""
    trailing = bot(metadata={"paper_fee": "0.001", "trailing_stop": True})
    await enter(trailing)
    await step(trailing, candle(1, "0.1", "0.1", "0.1", "0.1"))
    quiet = candle(2, "0.1", "0.1", "0.1", "0.1")
    assert trailing.position is not None and not engine.idle(trailing, HOLD, quiet)
    plain = bot()
    await enter(plain)
    await step(plain, candle(1, "0.1", "0.1", "0.1", "0.1"))
    assert engine.idle(plain, HOLD, quiet)
    assert not engine.idle(plain, HOLD)  # no candle: the levels cannot be checked
    assert not engine.idle(plain, Decision(False, True), quiet)  # the exit decision
    plain.stops_moved = True
    assert not engine.idle(plain, HOLD, quiet)
