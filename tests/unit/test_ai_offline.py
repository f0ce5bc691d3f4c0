"""The offline analyst's documented rules on fixed figures (docs/ai.md)."""

from __future__ import annotations

import pytest

from worker.ai import ANALYSTS, draft_strategy
from worker.ai.offline import NoStrategy
from worker.strategies import validate_params


def titles(answer: object) -> dict[str, str]:
    return {f.title: f.severity for f in answer.findings}  # type: ignore[attr-defined]


def test_a_losing_bot_without_a_stop_is_flagged_and_gets_an_applicable_stop() -> None:
    answer = ANALYSTS["performance"](
        {
            "name": "Bob's RSI",
            "trading_pair": "ETH/USDT",
            "closed_trades": 40,
            "win_rate": 35.0,
            "profit_factor": 0.7,
            "return_pct": -8.5,
            "max_drawdown_pct": 22.0,
            "max_consecutive_losses": 6,
            "stop_loss_pct": None,
        }
    )
    assert titles(answer) == {
        "Losing more than it wins": "high",
        "Low win rate": "medium",
        "Long losing streak": "medium",
        "Deep drawdown": "high",
        "No stop-loss": "high",
    }
    assert answer.suggestions[0].parameters == {"stop_loss": 5}
    assert "40 closed trades" in answer.summary and "-8.50%" in answer.summary


def test_a_healthy_bot_with_few_trades_is_told_so() -> None:
    answer = ANALYSTS["performance"](
        {
            "closed_trades": 12,
            "win_rate": 60.0,
            "profit_factor": 2.1,
            "max_drawdown_pct": 4.0,
            "stop_loss_pct": 3.0,
        }
    )
    assert titles(answer) == {"Healthy profit factor": "info", "Few trades": "low"}


def test_risk_leverage_stake_and_concentration_thresholds() -> None:
    answer = ANALYSTS["risk"](
        {
            "leverage": 5,
            "stake_pct_of_balance": 60,
            "pair_share_pct": 80,
            "stop_loss_pct": 20,
            "trading_pair": "BTC/USDT",
            "max_drawdown_pct": 12,
        }
    )
    assert titles(answer) == {
        "High leverage": "high",
        "Large stake per trade": "high",
        "Concentrated on one market": "medium",
        "Wide stop-loss": "medium",
        "Notable drawdown": "medium",
    }
    assert "overall high" in answer.summary
    calm = ANALYSTS["risk"]({"leverage": 1, "stake_pct_of_balance": 10, "stop_loss_pct": 5})
    assert titles(calm) == {"No risk flags": "info"}


def test_a_backtest_that_fails_out_of_sample_is_warned_as_overfit() -> None:
    answer = ANALYSTS["backtest"](
        {
            "total_trades": 80,
            "total_return_pct": 35.0,
            "sharpe_ratio": 1.4,
            "max_drawdown_pct": 9,
            "in_sample_return_pct": 35.0,
            "out_of_sample_return_pct": -4.0,
        }
    )
    assert titles(answer)["Likely overfit"] == "high"
    held = ANALYSTS["backtest"](
        {
            "total_trades": 80,
            "total_return_pct": 35.0,
            "in_sample_return_pct": 20.0,
            "out_of_sample_return_pct": 15.0,
        }
    )
    assert "Likely overfit" not in titles(held) and "Holds out of sample" in titles(held)
    plain = ANALYSTS["backtest"]({"total_trades": 10, "total_return_pct": -3.0})
    assert titles(plain) == {"Too few trades": "medium", "Lost money": "high"}


def test_portfolio_concentration() -> None:
    answer = ANALYSTS["portfolio"](
        {
            "holdings": 3,
            "market_value": 10000,
            "currency": "USD",
            "top_symbol": "AAPL",
            "top_holding_pct": 62.5,
            "unrealized_pnl_pct": -25,
        }
    )
    assert titles(answer) == {"One holding dominates": "high", "Large unrealised loss": "medium"}
    assert titles(ANALYSTS["portfolio"]({"holdings": 0})) == {"No holdings": "info"}


def test_the_same_figures_give_the_same_answer() -> None:
    figures = {"closed_trades": 40, "win_rate": 35.0, "profit_factor": 0.7}
    assert ANALYSTS["performance"](figures) == ANALYSTS["performance"](figures)


def test_a_description_becomes_valid_rules() -> None:
    draft = draft_strategy("Buy when RSI(10) drops below 25, sell above 75, with a 4% stop loss")
    assert draft.rules["entry_long"] == {
        "left": {"indicator": "rsi", "period": 10},
        "op": "<",
        "right": 25,
    }
    assert draft.rules["exit_long"] == {
        "left": {"indicator": "rsi", "period": 10},
        "op": ">",
        "right": 75,
    }
    assert draft.rules["stop_loss"] == 0.04
    validate_params("rules", draft.rules)
    cross = draft_strategy("golden cross: ema 20/50 crossover, take profit 10%")
    assert cross.rules["entry_long"]["op"] == "crosses_above"  # type: ignore[index]
    assert cross.rules["take_profit"] == 0.1
    validate_params("rules", cross.rules)


def test_a_description_without_a_known_condition_is_a_named_error() -> None:
    with pytest.raises(NoStrategy) as e:
        draft_strategy("make me rich quickly")
    assert e.value.code == "no_valid_strategy"
