"""Backtests with limit orders: the candle walk fills by the paper exchange's rule, times
limit orders out (cancel or re-quote), and with market orders makes exactly the trades of
the vectorised engine."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from tests.support.bots import CANDLES
from worker.backtest import load_csv
from worker.backtest.engine import EXIT_END, EXIT_SIGNAL, Settings, simulate
from worker.backtest.limits import trades_with_limits
from worker.strategies import Candles, SignalGrid, get_strategy


def candles(o: list[float], h: list[float], lo: list[float], c: list[float]) -> Candles:
    return Candles.from_arrays(np.arange(len(o)) * 300_000, *(np.array(x) for x in (o, h, lo, c)))


def signals(n: int, enter: tuple[int, ...] = (), exit_: tuple[int, ...] = ()) -> SignalGrid:
    def flags(idx: tuple[int, ...]) -> np.ndarray:
        a = np.zeros((1, n), dtype=bool)
        a[0, list(idx)] = True
        return a

    nan = np.full((1, n), np.nan)
    return SignalGrid(flags(enter), flags(exit_), flags(()), flags(()), nan, nan.copy())


LIMIT = {"entry_order": "limit", "limit_offset": 0.01, "entry_timeout": 2, "fee": 0.0}


def test_a_limit_entry_fills_at_its_price_when_a_low_touches_it() -> None:
    c = candles([10, 10, 10, 10, 10], [10, 10, 10, 10, 10], [10, 9.95, 9.9, 9.5, 10], [10] * 5)
    t = simulate(c, signals(5, enter=(0,)), Settings(**LIMIT)).trades
    assert list(t.entry_idx) == [2] and t.entry_price[0] == pytest.approx(9.9)
    assert list(t.exit_reason) == [EXIT_END]


def test_a_limit_entry_opened_through_fills_at_the_open() -> None:
    c = candles([10, 9.0, 9, 9, 9], [10, 9.2, 9, 9, 9], [10, 8.9, 9, 9, 9], [10, 9, 9, 9, 9])
    t = simulate(c, signals(5, enter=(0,)), Settings(**LIMIT)).trades
    assert list(t.entry_idx) == [1] and t.entry_price[0] == pytest.approx(9.0)


def test_an_unfilled_limit_entry_times_out_then_cancel_gives_up_and_requote_tries_again() -> None:
    o = [10.0, 10, 10, 10.2, 10.2, 10.2]
    hi = [10.0, 10, 10.2, 10.2, 10.2, 10.2]
    c = candles(o, hi, [10, 10, 10, 10.2, 10.05, 10.2], [10, 10, 10.2, 10.2, 10.2, 10.2])
    sig = signals(6, enter=(0,))
    assert len(simulate(c, sig, Settings(**LIMIT)).trades) == 0
    t = simulate(c, sig, Settings(**LIMIT, timeout_action="requote")).trades
    # re-quoted on the close of candle 2 (10.2 less 1 %), touched in candle 4
    assert list(t.entry_idx) == [4] and t.entry_price[0] == pytest.approx(10.098)


def test_a_limit_exit_rests_above_the_close() -> None:
    o = [10.0, 10, 10, 10, 10, 10]
    c = candles(o, [10, 10, 10, 10.05, 10.2, 10], o, o)
    settings = Settings(exit_order="limit", limit_offset=0.01, exit_timeout=3, fee=0.0)
    t = simulate(c, signals(6, enter=(0,), exit_=(2,)), settings).trades
    assert list(t.exit_idx) == [4] and t.exit_price[0] == pytest.approx(10.1)
    assert list(t.exit_reason) == [EXIT_SIGNAL]


def test_a_limit_short_entry_fills_above_the_close_and_buys_back_below() -> None:
    n = 6
    c = candles([10.0] * n, [10, 10.05, 10.1, 10, 10, 10], [10, 10, 10, 9.95, 9.8, 10], [10.0] * n)
    flags = signals(n).enter_long.copy()
    enter, exit_ = flags.copy(), flags.copy()
    enter[0, 0], exit_[0, 2] = True, True
    nan = np.full((1, n), np.nan)
    sig = SignalGrid(flags, flags.copy(), enter, exit_, nan, nan.copy())
    settings = Settings(**LIMIT, exit_order="limit", exit_timeout=3, shorts=True)
    t = simulate(c, sig, settings).trades
    # sold at 10.1 (1 % above the close) in candle 2, bought back at 9.9 in candle 4
    assert list(t.side) == [-1] and list(t.entry_idx) == [2] and list(t.exit_idx) == [4]
    assert t.entry_price[0] == pytest.approx(10.1) and t.exit_price[0] == pytest.approx(9.9)
    assert t.pnl[0] > 0


def test_limit_settings_take_shorts() -> None:
    with pytest.raises(ValidationError):
        Settings(entry_order="stop", shorts=True)  # type: ignore[arg-type]
    assert Settings(entry_order="limit", shorts=True).shorts


@pytest.mark.parametrize("shorts", [False, True], ids=["long-only", "long-and-short"])
@pytest.mark.parametrize("stops", [False, True], ids=["signals", "with-stops"])
def test_with_market_orders_the_walk_makes_the_vectorised_engines_trades(
    stops: bool, shorts: bool
) -> None:
    c = load_csv(CANDLES / "ETH_BTC-5m.csv").candles
    params = {"fast": 10, "slow": 20}
    if stops:
        params |= {"stop_loss": 0.01, "take_profit": 0.02}
    strategy = get_strategy("sma_cross")
    sig = strategy.signal_grid(c, [strategy.validate(params)])
    settings = Settings(fee=0.002, slippage=0.0005, shorts=shorts)
    want = simulate(c, sig, settings).trades
    got = trades_with_limits(c, sig, 0, settings)
    assert len(want) > 100
    if shorts:
        assert set(want.side.tolist()) == {1, -1}
    for k in ("side", "entry_idx", "exit_idx", "exit_reason"):
        assert np.array_equal(getattr(got, k), getattr(want, k)), k
    for k in ("entry_price", "exit_price", "pnl"):
        assert np.allclose(getattr(got, k), getattr(want, k)), k


def test_after_exit_timeout_count_timeouts_a_limit_exit_goes_to_market() -> None:
    o = [10.0, 10, 10, 10, 9.5, 9.5, 9.5]
    closes = [10.0, 10, 10, 10, 9.5, 9.5, 9.5]
    c = candles(o, closes, [9.5] * 7, closes)  # highs never reach 1 % above a close
    sig = signals(7, enter=(0,), exit_=(1,))
    base = {"exit_order": "limit", "limit_offset": 0.01, "exit_timeout": 1, "fee": 0.0}
    # the limit exit 1 % above the close never fills: re-quoted for ever, open at the end
    t = simulate(c, sig, Settings(**base, timeout_action="requote")).trades
    assert list(t.exit_reason) == [EXIT_END]
    # the second timeout (candle 3) exits at market: filled at candle 4's open
    t = simulate(c, sig, Settings(**base, timeout_action="requote", exit_timeout_count=2)).trades
    assert list(t.exit_idx) == [4] and list(t.exit_reason) == [EXIT_SIGNAL]
    assert t.exit_price[0] == pytest.approx(9.5)
    # with cancel, the first timeout gives up; the count still applies per position
    t = simulate(c, sig, Settings(**base, exit_timeout_count=1)).trades
    assert list(t.exit_idx) == [3] and t.exit_price[0] == pytest.approx(10.0)
