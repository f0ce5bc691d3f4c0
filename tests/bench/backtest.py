"""Benchmark: our backtester vs backtesting.py on the same candles, strategy and settings.

sma_cross fast=10 slow=20, long and short (reversal on the opposite cross), fee 0.002,
decisions on close filled at the next open, over every real 5m file in
data/candles and over 1,000,000 synthetic 5m bars. backtesting.py runs the
equivalent strategy (trade_on_close=False, exclusive_orders=True, commission=0.002,
finalize_trades=True) with the same moving averages and the same crossing rule (ties are
skipped: a cross is a change of side since the last bar where the averages differed).

Compares trade lists (entry time, exit time, side) and speed. Last line:
``backtest: bars_per_s=<x> ratio=<ours / backtesting.py> trades_match=<1|0>``.

Run: ``.venv/bin/python tests/bench/backtest.py [--synthetic N] [--bt-synthetic N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

# tests/bench holds scripts named like stdlib modules (queue.py): drop the script's own
# directory from the import path so pandas & co. import the real ones
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import numpy as np
import pandas as pd

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py progress bars
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from worker.backtest import CandleSeries, GridResult, Settings, load_csv, run_grid  # noqa: E402
from worker.strategies import Candles  # noqa: E402
from worker.strategies import indicators as ta  # noqa: E402

DATA = ROOT / "data" / "candles"
PARAMS = {"fast": 10, "slow": 20}
SETTINGS = Settings(cash=1_000_000.0, fee=0.002, shorts=True)
FIVE_MIN = 300_000


def synthetic(n: int, seed: int = 42) -> CandleSeries:
    """Trending regimes (drift flips sign every ~400 bars) plus noise, 5m bars.

    Regimes keep sma_cross roughly profitable after fees, so equity never falls so low
    that backtesting.py's whole-unit sizing could not open a position any more.
    """
    rng = np.random.default_rng(seed)
    regime = np.where(np.cumsum(rng.random(n) < 1 / 400) % 2 == 0, 1.0, -1.0)
    close = 1e-3 * np.exp(np.cumsum(0.0003 * regime + rng.normal(0, 0.0012, n)))
    open_ = np.r_[1e-3, close[:-1]] * np.exp(rng.normal(0, 0.0003, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.0006, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.0006, n)))
    t0 = 1_514_764_800_000  # 2018-01-01
    candles = Candles.from_arrays(t0 + np.arange(n) * FIVE_MIN, open_, high, low, close,
                                  rng.uniform(1, 100, n))  # fmt: skip
    return CandleSeries(candles, FIVE_MIN, (), f"synthetic-{n}")


def ours(series: CandleSeries) -> GridResult:
    """One backtest with every metric (what ``run_backtest`` does minus JSON formatting)."""
    return run_grid(series, "sma_cross", [PARAMS], SETTINGS)


def trade_keys(series: CandleSeries, res: GridResult) -> list[tuple[int, int, int]]:
    t, tr = series.candles.time, res.run.trades
    return list(
        zip(t[tr.entry_idx].tolist(), t[tr.exit_idx].tolist(), tr.side.tolist(), strict=True)
    )


def backtesting_py(series: CandleSeries) -> list[tuple[int, int, int]]:
    from backtesting import Backtest, Strategy

    class SmaCross(Strategy):  # type: ignore[misc]
        fast = PARAMS["fast"]
        slow = PARAMS["slow"]

        def init(self) -> None:
            self.f = self.I(ta.sma, self.data.Close, self.fast)
            self.s = self.I(ta.sma, self.data.Close, self.slow)
            self.side = 0

        def next(self) -> None:
            f, s = self.f, self.s
            if self.side == 0 and len(f) > 1 and f[-2] == f[-2] and s[-2] == s[-2]:
                self.side = int(f[-2] > s[-2]) - int(f[-2] < s[-2])
            now = int(f[-1] > s[-1]) - int(f[-1] < s[-1])
            if now == 1 and self.side == -1:
                self.buy()
            elif now == -1 and self.side == 1:
                self.sell()
            if now:
                self.side = now

    c = series.candles
    df = pd.DataFrame(
        {"Open": c.open, "High": c.high, "Low": c.low, "Close": c.close, "Volume": c.volume},
        index=pd.to_datetime(c.time, unit="ms"),
    )
    bt = Backtest(df, SmaCross, cash=SETTINGS.cash, commission=SETTINGS.fee,
                  trade_on_close=False, exclusive_orders=True, finalize_trades=True)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    tr = stats["_trades"]
    entry = (tr["EntryTime"].to_numpy().astype("datetime64[ms]").astype(np.int64)).tolist()
    exit_ = (tr["ExitTime"].to_numpy().astype("datetime64[ms]").astype(np.int64)).tolist()
    side = np.sign(tr["Size"].to_numpy()).astype(int).tolist()
    return list(zip(entry, exit_, side, strict=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=int, default=1_000_000, help="synthetic bars (ours)")
    ap.add_argument("--bt-synthetic", type=int, default=None,
                    help="synthetic bars given to backtesting.py (default: all)")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=7, help="timed runs of ours (best counts)")
    ap.add_argument("--bt-repeat", type=int, default=2, help="timed runs of backtesting.py")
    args = ap.parse_args()

    real = [load_csv(p) for p in sorted(DATA.glob("*_BTC-5m.csv"))]
    synth = synthetic(args.synthetic)
    bt_n = args.synthetic if args.bt_synthetic is None else min(args.bt_synthetic, args.synthetic)
    synth_bt = synth if bt_n == args.synthetic else CandleSeries(
        synth.candles.slice(0, bt_n), FIVE_MIN, (), f"synthetic-{bt_n}"
    )  # fmt: skip
    ours(real[0])  # warm-up: imports, TA-Lib init

    datasets = [*real, synth]
    # both tools: best of several runs over all datasets (timeit's rule: slower runs measure
    # other processes on this shared machine, not the code)
    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        results = [ours(s) for s in datasets]
        runs.append(time.perf_counter() - t0)
    our_time = min(runs)
    our_trades = {s.name: trade_keys(s, r) for s, r in zip(datasets, results, strict=True)}
    our_bars = sum(len(s.candles) for s in datasets)

    bt_sets = [*real, synth_bt]
    bt_trades: dict[str, list[tuple[int, int, int]]] = {}
    bt_runs = []
    for _ in range(args.bt_repeat):
        t0 = time.perf_counter()
        for s in bt_sets:
            bt_trades[s.name] = backtesting_py(s)
        bt_runs.append(time.perf_counter() - t0)
    bt_time = min(bt_runs)
    bt_bars = sum(len(s.candles) for s in bt_sets)

    match = True
    print(f"{'market':<22}{'bars':>9}{'ours':>8}{'bt.py':>8}  match")
    for s in bt_sets:
        mine = (
            our_trades[s.name] if s is not synth_bt or synth_bt is synth else trade_keys(s, ours(s))
        )
        theirs = bt_trades[s.name]
        same = mine == theirs
        match &= same
        print(f"{s.name:<22}{len(s.candles):>9}{len(mine):>8}{len(theirs):>8}  {int(same)}")
        if not same:
            diff = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
                        min(len(mine), len(theirs)))  # fmt: skip
            print(f"  first difference at trade {diff}: ours={mine[diff:diff + 1]} "
                  f"bt.py={theirs[diff:diff + 1]}")  # fmt: skip
    ours_bps = our_bars / our_time
    bt_bps = bt_bars / bt_time
    if bt_n != args.synthetic:
        print(f"note: backtesting.py ran on the first {bt_n:,} synthetic bars only")
    print(f"ours: {our_bars:,} bars in {our_time:.3f}s ({ours_bps:,.0f} bars/s; best of "
          f"{', '.join(f'{r:.3f}' for r in runs)}s)")  # fmt: skip
    print(f"backtesting.py: {bt_bars:,} bars in {bt_time:.2f}s ({bt_bps:,.0f} bars/s; best of "
          f"{', '.join(f'{r:.2f}' for r in bt_runs)}s)")  # fmt: skip
    print(
        f"backtest: bars_per_s={ours_bps:.0f} ratio={ours_bps / bt_bps:.1f} trades_match={int(match)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
