"""Units like the market's: the backtester rounds amounts exactly as the paper exchange does."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from worker.backtest import Settings, load_csv, run_backtest, run_grid
from worker.backtest.engine import round_amount
from worker.backtest.jobs import market_units
from worker.backtest.report import header
from worker.cli import main
from worker.exchanges.paper import PaperExchange

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"

# binance's recorded markets: whole units, tenths, thousandths, 1e-5 of the base
SYMBOLS = ["XRP/USDT", "ADA/USDT", "LTC/USDT", "BTC/USDT"]


@pytest.fixture(scope="module")
def paper() -> PaperExchange:
    return PaperExchange("binance", {"USDT": Decimal(1_000_000)})


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("stops", [False, True])
def test_trade_amounts_are_what_the_paper_exchange_fills(
    paper: PaperExchange, symbol: str, stops: bool
) -> None:
    step = paper.market(symbol).amount_precision
    assert step is not None
    series = load_csv(DATA / "SOL_USDT-5m.csv")  # prices about 2 USDT
    settings = Settings(cash=150.0, fee=0.001, shorts=True, amount_step=float(step))
    params = {"fast": 10, "slow": 20, **({"stop_loss": 0.01} if stops else {})}
    run = run_grid(series, "sma_cross", [params], settings).run
    trades = run.trades
    assert len(trades) > 20
    # a bot sizes its order on the close it decides on: the next open is not known yet
    ordered_at = series.candles.close[trades.entry_idx - 1]
    assert (ordered_at != trades.entry_price).any()
    for stake, price, amount in zip(trades.stake, ordered_at, trades.amount, strict=True):
        wanted = Decimal(repr(float(stake) / (1 + settings.fee) / float(price)))
        filled = paper.check_order(symbol, "buy", "market", wanted, Decimal(repr(float(price))))
        assert amount == float(filled.amount)
        assert amount == float(paper.amount_to_precision(symbol, wanted))
    # cash the rounding leaves over stays in the account: equity is still exact
    assert run.equity[0, -1] == pytest.approx(settings.cash + trades.pnl.sum(), rel=1e-12)


def test_whole_unit_lots_trade_whole_units_only() -> None:
    series = load_csv(DATA / "SOL_USDT-5m.csv")
    res = run_backtest(
        series, "sma_cross", {"fast": 10, "slow": 20}, {"cash": 25, "amount_step": 1}
    )
    amounts = [t["amount"] for t in res.trades]
    assert amounts and all(a == int(a) and a >= 1 for a in amounts)
    fractional = run_backtest(series, "sma_cross", {"fast": 10, "slow": 20}, {"cash": 25})
    assert any(t["amount"] != int(t["amount"]) for t in fractional.trades)
    assert res.stats["final_balance"] != fractional.stats["final_balance"]
    # a stake too small for one unit takes no trade
    none = run_backtest(
        series, "sma_cross", {"fast": 10, "slow": 20}, {"cash": 1, "amount_step": 1}
    )
    assert none.stats["total_trades"] == 0 and none.stats["final_balance"] == 1.0


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_rounding_agrees_with_the_paper_exchange_on_awkward_amounts(
    paper: PaperExchange, symbol: str
) -> None:
    step = paper.market(symbol).amount_precision
    assert step is not None
    rng = np.random.default_rng(7)
    awkward = [0.3, 2.9999999999999996, 1.0000000000000002, 123.456789, 0.1 + 0.2]
    for a in [*awkward, *(10 ** rng.uniform(-3, 4, 300))]:
        if a < float(step):
            continue
        assert round_amount(float(a), float(step)) == float(
            paper.amount_to_precision(symbol, Decimal(repr(float(a))))
        ), a


def test_app_runs_take_the_markets_step_unless_they_set_one() -> None:
    assert market_units(Settings(), "binance", "XRP/USDT").amount_step == 1.0
    assert market_units(Settings(), "binance", "LTC/USDT").amount_step == 0.001
    assert market_units(Settings(amount_step=5), "binance", "XRP/USDT").amount_step == 5
    # markets the paper exchange has no definition of trade any fraction
    assert market_units(Settings(), "binance", "ETH/BTC").amount_step is None
    assert market_units(Settings(), "no-such-exchange", "XRP/USDT").amount_step is None


def test_cli_trades_whole_units(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["backtest", "--candles", str(DATA / "SOL_USDT-5m.csv"), "--strategy", "sma_cross",
               "--cash", "100", "--amount-step", "1", "--json"])  # fmt: skip
    assert rc == 0
    trades = json.loads(capsys.readouterr().out)["trades"]
    assert trades and all(t["amount"] == int(t["amount"]) for t in trades)
    assert main(["backtest", "--candles", str(DATA / "SOL_USDT-5m.csv"), "--strategy",
                 "sma_cross", "--amount-step", "0"]) == 2  # fmt: skip
    assert "invalid setting 'amount_step'" in capsys.readouterr().err


def test_the_report_says_amounts_are_whole_units() -> None:
    series = load_csv(DATA / "SOL_USDT-5m.csv")
    res = run_backtest(series, "sma_cross", {"fast": 10, "slow": 20}, {"amount_step": 1})
    assert "amounts in multiples of 1<" in header(res, series)
    plain = run_backtest(series, "sma_cross", {"fast": 10, "slow": 20})
    assert "multiples of" not in header(plain, series)
