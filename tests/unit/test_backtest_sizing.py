"""Sizing and fills as a bot orders them: risk sizing, the deciding close, reversals, ticks,
and no decision before the strategy's warm-up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worker.backtest import Settings, load_csv, run_backtest, run_grid
from worker.strategies import get_strategy

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
PARAMS = {"fast": 10, "slow": 20, "stop_loss": 0.01, "take_profit": 0.02}


@pytest.fixture(scope="module")
def series():  # type: ignore[no-untyped-def]
    s = load_csv(DATA / "ETH_BTC-5m.csv")
    return s.candles.slice(0, 1500)


def test_risk_sizing_stakes_what_the_stop_would_lose(series) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(cash=10.0, fee=0.002, risk_percentage=0.25)
    trades = run_grid(series, "sma_cross", [PARAMS], settings).run.trades
    assert len(trades) > 10
    # a stop 1 % away losing 0.25 % of the equity: a stake of a quarter of it
    np.testing.assert_allclose(trades.stake, trades.equity_before * 0.25, rtol=1e-12)
    capped = run_grid(series, "sma_cross", [PARAMS], Settings(cash=10.0, risk_percentage=5))
    np.testing.assert_allclose(capped.run.trades.stake, capped.run.trades.equity_before)


def test_risk_sizing_needs_a_stop(series) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="stop_loss"):
        run_backtest(series, "sma_cross", {"fast": 10, "slow": 20}, {"risk_percentage": 1})
    with pytest.raises(ValueError, match="two sizings"):
        Settings(risk_percentage=1, stake_amount=1)


def test_a_reversal_is_sized_on_the_equity_before_the_trade_it_reverses(series) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(cash=10.0, fee=0.002, shorts=True, amount_step=0.001)
    t = run_grid(series, "sma_cross", [{"fast": 10, "slow": 20}], settings).run.trades
    assert len(t) > 10
    for i in range(1, len(t)):
        # every entry but the first reverses the trade before it, ordered on the same close
        assert t.entry_idx[i] == t.exit_idx[i - 1]
        assert t.stake[i] == t.equity_before[i - 1]
        assert t.equity_before[i] == t.equity_before[i - 1] + t.pnl[i - 1]


def test_stops_and_targets_fill_on_the_tick(series) -> None:  # type: ignore[no-untyped-def]
    tick = 1e-6
    settings = Settings(cash=10.0, fee=0.002, slippage=0.0005, price_tick=tick)
    trades = run_backtest(series, "sma_cross", PARAMS, settings).trades
    protective = [t for t in trades if t["exit_reason"] in ("stop_loss", "take_profit")]
    assert {t["exit_reason"] for t in protective} == {"stop_loss", "take_profit"}
    for t in protective:
        assert abs(t["exit_price"] / tick - round(t["exit_price"] / tick)) < 1e-6
    unrounded = run_backtest(
        series, "sma_cross", PARAMS, {**settings.model_dump(), "price_tick": None}
    )
    assert any(
        abs(u["exit_price"] / tick - round(u["exit_price"] / tick)) > 1e-3
        for u in unrounded.trades
        if u["exit_reason"] in ("stop_loss", "take_profit")
    )


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("macd", {}),
        ("rsi_macd", {"oversold": 45, "overbought": 55}),
        ("rules", {"entry_long": {"left": {"indicator": "rsi"}, "op": "<", "right": 50}}),
    ],
)
def test_no_decision_before_the_warmup_a_bot_waits_for(series, name, params) -> None:  # type: ignore[no-untyped-def]
    strategy = get_strategy(name)
    p = strategy.validate(params)
    w = strategy.warmup(p)
    sig = strategy.signals(series, p)
    decided = sig.enter_long | sig.exit_long | sig.enter_short | sig.exit_short
    assert not decided[:w].any()
    # a bot with warmup + 1 candles decides as the backtest does on its last one
    for i in range(w, w + 60):
        last = strategy.signals(series.slice(0, i + 1), p).at(-1)
        assert last["enter_long"] == sig.enter_long[i] and last["exit_long"] == sig.exit_long[i]
    grid = strategy.signal_grid(series, [p])
    assert (grid.enter_long[0] == sig.enter_long).all()
