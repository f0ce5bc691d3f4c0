"""Strategies: indicator values, crossing rules, parameter validation, rules engine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.strategies import (
    Candles,
    InvalidParameters,
    UnknownStrategy,
    get_strategy,
    list_strategies,
    validate_params,
)
from worker.strategies import indicators as ta


def candles_from_close(close: list[float] | np.ndarray) -> Candles:
    c = np.asarray(close, dtype=np.float64)
    return Candles.from_arrays(np.arange(len(c)) * 60_000, c, c + 0.5, c - 0.5, c, np.ones(len(c)))


def random_walk(n: int = 600, seed: int = 7) -> Candles:
    rng = np.random.default_rng(seed)
    return candles_from_close(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))))


def test_sma_and_ema_known_values() -> None:
    x = np.array([1.0, 2, 3, 4, 5])
    np.testing.assert_allclose(ta.sma(x, 3), [np.nan, np.nan, 2, 3, 4])
    # EMA(3): seeded with SMA(1,2,3)=2, then alpha = 0.5
    np.testing.assert_allclose(ta.ema(x, 3), [np.nan, np.nan, 2, 3, 4])
    np.testing.assert_allclose(ta.ema(np.array([1.0, 2, 3, 10]), 3)[-1], 6.0)


def test_rsi_uses_wilder_smoothing() -> None:
    # changes +1 +1 -1 +1 +1; first averages gain 1 / loss 0, then Wilder with n = 2
    r = ta.rsi(np.array([1.0, 2, 3, 2, 3, 4]), 2)
    np.testing.assert_allclose(r[2:], [100.0, 50.0, 75.0, 87.5])
    assert np.isnan(r[:2]).all()


def test_bollinger_uses_population_std() -> None:
    up, mid, low = ta.bollinger(np.array([1.0, 2, 3]), 3, 2.0)
    sd = math.sqrt(2 / 3)
    assert mid[-1] == pytest.approx(2.0)
    assert up[-1] == pytest.approx(2 + 2 * sd)
    assert low[-1] == pytest.approx(2 - 2 * sd)


def test_macd_is_difference_of_emas() -> None:
    c = random_walk(400).close
    line, sig, hist = ta.macd(c, 12, 26, 9)
    # TA-Lib seeds both EMAs at the slow one's start; the seed is forgotten after ~200 bars
    np.testing.assert_allclose(line[300:], (ta.ema(c, 12) - ta.ema(c, 26))[300:], rtol=1e-6)
    np.testing.assert_allclose(hist[40:], (line - sig)[40:], rtol=1e-9)


def test_crosses_skip_ties_and_ignore_warmup() -> None:
    a = np.array([np.nan, 0.0, 1.0, 1.0, 2.0, 0.5, 1.0, 2.0])
    b = np.ones(8)
    # below at 1, tie at 2-3, above at 4 -> cross above at 4; below at 5; tie at 6, above at 7
    assert np.flatnonzero(ta.crossed_above(a, b)).tolist() == [4, 7]
    assert np.flatnonzero(ta.crossed_below(a, b)).tolist() == [5]
    # the first valid bar is never a cross, even if it is above
    assert not ta.crossed_above(np.array([np.nan, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])).any()


def test_sma_cross_signals_on_hand_made_series() -> None:
    # fast(2) vs slow(3): falls, then rises
    close = [10, 9, 8, 7, 8, 10, 12, 11, 9, 7]
    sig = get_strategy("sma_cross").signals(candles_from_close(close), {"fast": 2, "slow": 3})
    fast, slow = ta.sma(np.array(close, float), 2), ta.sma(np.array(close, float), 3)
    assert fast[4] < slow[4] and fast[5] > slow[5]
    assert fast[7] > slow[7] and fast[8] < slow[8]
    assert np.flatnonzero(sig.enter_long).tolist() == [5]
    assert np.flatnonzero(sig.exit_long).tolist() == [8]
    assert (sig.enter_short == sig.exit_long).all() and (sig.exit_short == sig.enter_long).all()
    assert np.isnan(sig.stop_loss).all()


def test_every_builtin_runs_and_is_deterministic() -> None:
    c = random_walk()
    for name in list_strategies():
        if name == "rules":
            continue
        a = get_strategy(name).signals(c, {})
        b = get_strategy(name).signals(c, {})
        assert len(a) == len(c)
        assert a.enter_long.any(), name
        assert (a.enter_long == b.enter_long).all()
        assert not (a.enter_long[: get_strategy(name).warmup(validate_params(name, {})) - 1]).any()


def test_live_window_gives_same_last_decision_as_whole_array() -> None:
    c = random_walk(800)
    strategy = get_strategy("ema_cross")
    full = strategy.signals(c, {"fast": 5, "slow": 13})
    for end in range(300, 800, 37):
        window = strategy.signals(c.slice(end - 300, end), {"fast": 5, "slow": 13})
        assert window.at(-1) == full.at(end - 1)


def test_stops_from_params_apply_to_every_candle() -> None:
    sig = get_strategy("rsi").signals(random_walk(), {"stop_loss": 0.05, "take_profit": 0.1})
    assert (sig.stop_loss == 0.05).all() and (sig.take_profit == 0.1).all()
    assert sig.at()["stop_loss"] == 0.05


@pytest.mark.parametrize(
    ("name", "params", "parameter"),
    [
        ("sma_cross", {"fast": 30, "slow": 20}, "slow"),
        ("sma_cross", {"fast": 0}, "fast"),
        ("sma_cross", {"fats": 5}, "fats"),
        ("rsi", {"oversold": 80}, "overbought"),
        ("macd", {"signal": "x"}, "signal"),
        ("bollinger", {"std": -1}, "std"),
        ("rsi", {"stop_loss": 1.5}, "stop_loss"),
    ],
)
def test_invalid_parameters_name_the_parameter(
    name: str, params: dict[str, object], parameter: str
) -> None:
    with pytest.raises(InvalidParameters) as exc:
        validate_params(name, params)
    assert exc.value.parameter == parameter
    assert f"'{parameter}'" in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_unknown_strategy() -> None:
    with pytest.raises(UnknownStrategy, match="sma_cross"):
        get_strategy("nope")


def test_signal_grid_matches_one_by_one() -> None:
    c = random_walk(500)
    sets = [{"fast": f, "slow": s} for f in (3, 5, 8) for s in (13, 21)]
    for name in ("sma_cross", "ema_cross", "rsi"):
        strategy = get_strategy(name)
        use = sets if name != "rsi" else [{"period": p} for p in (7, 14)]
        grid = strategy.signal_grid(c, use)
        for k, p in enumerate(use):
            one = strategy.signals(c, p)
            assert (grid.enter_long[k] == one.enter_long).all()
            assert (grid.exit_long[k] == one.exit_long).all()
            assert (grid.enter_short[k] == one.enter_short).all()


RULES_SMA = {
    "entry_long": {
        "left": {"indicator": "sma", "period": 5},
        "op": "crosses_above",
        "right": {"indicator": "sma", "period": 12},
    },
    "exit_long": {
        "left": {"indicator": "sma", "period": 5},
        "op": "crosses_below",
        "right": {"indicator": "sma", "period": 12},
    },
}


def test_rules_reproduce_sma_cross() -> None:
    c = random_walk()
    rules = get_strategy("rules").signals(c, RULES_SMA)
    builtin = get_strategy("sma_cross").signals(c, {"fast": 5, "slow": 12})
    assert rules.enter_long.any()
    assert (rules.enter_long == builtin.enter_long).all()
    assert (rules.exit_long == builtin.exit_long).all()
    assert not rules.enter_short.any()


def test_rules_groups_comparisons_and_shift() -> None:
    c = random_walk()
    rsi = ta.rsi(c.close, 14)
    params = {
        "entry_long": {
            "all": [
                {"left": {"indicator": "rsi", "period": 14}, "op": "<", "right": 40},
                {
                    "not": {
                        "left": {"indicator": "close"},
                        "op": ">",
                        "right": {"indicator": "close", "shift": 1},
                    }
                },
            ]
        },
        "entry_short": {"any": [{"left": {"indicator": "rsi"}, "op": ">=", "right": 65}]},
    }
    sig = get_strategy("rules").signals(c, params)
    prev = np.r_[np.nan, c.close[:-1]]
    warm = np.arange(len(c)) >= 15  # no decision before the warm-up: RSI(14) and one more
    with np.errstate(invalid="ignore"):
        expected = (rsi < 40) & ~(c.close > prev) & warm
        assert (sig.enter_long == expected).all()
        assert (sig.enter_short == ((rsi >= 65) & warm)).all()
    assert sig.enter_long.any()


@pytest.mark.parametrize(
    ("params", "where"),
    [
        (
            {"entry_long": {"left": {"indicator": "__import__('os')"}, "op": "<", "right": 1}},
            "indicator",
        ),
        ({"entry_long": {"left": {"indicator": "sma"}, "op": "<", "right": 1}}, "left"),
        ({"entry_long": {"left": 1, "op": "eval", "right": 1}}, "op"),
        ({"exit_long": {"left": 1, "op": "<", "right": 2}}, "params"),
        ({"entry_long": {"all": []}}, "all"),
    ],
)
def test_rules_reject_bad_definitions(params: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidParameters) as exc:
        validate_params("rules", params)
    assert where in exc.value.parameter
