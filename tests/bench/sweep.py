"""Benchmark: a ±30 % parameter sweep of every built-in strategy, ours vs vectorbt.

For each built-in strategy, the ±30 % grid around its centre (``grid_around``: every
integer in the span, floats in 7 steps; rsi_macd's six parameters take 3 values each, the
lowest, the centre and the highest, or its grid would hold 628,425 sets), long only, fee
0.001, whole equity staked, over the 11 ``*_BTC-5m.csv`` files of data/candles.

Ours: ``worker.backtest.optimize.optimize`` (every metric of every set, ranked), best of 3.
vectorbt: the same indicators (TA-Lib through ``vbt.IndicatorFactory.from_talib``), its own
crossing function (``crossed_above_nb``) and ``Portfolio.from_signals`` with entries/exits
shifted one bar and filled at the open, plus one extra bar (open = last close) on which any
open trade is closed, so both tools apply the same fill rules. For each strategy vectorbt
runs in a fresh process, timed from its import with an empty numba cache directory, so its
JIT compilation is included (the reference's definition); a second, warm pass is reported
too.

Checks every set's total return on every market against vectorbt's (tolerance 1e-6).
One line per strategy, then the last line:
``sweep: evals_per_s=<(bars x markets x sets)/s, all strategies> ratio_min=<lowest
strategy's ours / vectorbt> ratio=<all strategies' vectorbt time / ours>``.

Run: ``scripts/bench sweep [--markets N] [--strategies a,b]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

# tests/bench holds scripts named like stdlib modules (queue.py): drop the script's own
# directory from the import path so pandas & co. import the real ones
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from worker.backtest import CandleSeries, Settings, load_csv  # noqa: E402
from worker.backtest.optimize import evaluate, expand, grid_around, optimize  # noqa: E402
from worker.strategies.builtin import BUILTINS  # noqa: E402

DATA = ROOT / "data" / "candles"
SETTINGS = Settings(cash=10_000.0, fee=0.001)
TOLERANCE = 1e-6
# centre of each grid (None: the strategy's defaults) and values per parameter (None: all)
GRIDS: dict[str, tuple[dict[str, Any] | None, int | None]] = {
    "sma_cross": ({"fast": 30, "slow": 100}, None),
    "ema_cross": ({"fast": 30, "slow": 100}, None),
    "rsi": (None, None),
    "macd": (None, None),
    "rsi_macd": (None, 3),
    "bollinger": (None, None),
}


def grid(name: str) -> tuple[dict[str, Any] | None, dict[str, list[Any]]]:
    center, at_most = GRIDS[name]
    values = grid_around(name, center)
    if at_most is not None:
        for k, vals in values.items():
            idx = np.unique(np.linspace(0, len(vals) - 1, min(at_most, len(vals))).round())
            values[k] = [vals[int(i)] for i in idx]
    return center, values


def markets(limit: int | None) -> list[CandleSeries]:
    return [load_csv(p) for p in sorted(DATA.glob("*_BTC-5m.csv"))][:limit]


# --- vectorbt, in its own process ------------------------------------------------------------


def _vectorbt_signals(vbt: Any, name: str, close: Any, ps: list[dict[str, Any]]) -> Any:
    """Entries and exits (candles x sets) of the long side, from vectorbt's indicators."""
    import pandas as pd

    above = vbt.generic.nb.crossed_above_nb
    n, sets = len(close), len(ps)
    s = pd.Series(close)

    def col(key: str) -> list[Any]:
        return [p[key] for p in ps]

    def level(key: str) -> Any:
        return np.repeat(np.asarray(col(key), dtype=float)[None, :], n, axis=0)

    def talib(fn: str, **kw: Any) -> Any:
        return vbt.IndicatorFactory.from_talib(fn).run(s, **kw, param_product=False)

    if name in ("sma_cross", "ema_cross"):
        ma = "SMA" if name == "sma_cross" else "EMA"
        fast = talib(ma, timeperiod=col("fast")).real.to_numpy()
        slow = talib(ma, timeperiod=col("slow")).real.to_numpy()
        return above(fast, slow), above(slow, fast)
    if name == "rsi":
        r = talib("RSI", timeperiod=col("period")).real.to_numpy()
        return above(r, level("oversold")), above(r, level("overbought"))
    if name == "bollinger":
        bb = talib("BBANDS", timeperiod=col("period"), nbdevup=col("std"), nbdevdn=col("std"),
                   matype=[0] * sets)  # fmt: skip
        c = np.repeat(np.asarray(close)[:, None], sets, axis=1)
        return above(bb.lowerband.to_numpy(), c), above(c, bb.middleband.to_numpy())
    m = talib("MACD", fastperiod=col("fast"), slowperiod=col("slow"), signalperiod=col("signal"))
    line, sig = m.macd.to_numpy(), m.macdsignal.to_numpy()
    up, down = above(line, sig), above(sig, line)
    if name == "macd":
        return up, down
    r = talib("RSI", timeperiod=col("rsi_period")).real.to_numpy()
    ob = level("overbought")
    with np.errstate(invalid="ignore"):
        return up & (r < ob), down | (r > ob)


def _vectorbt_returns(vbt: Any, name: str, ms: list[CandleSeries], ps: list[dict[str, Any]]) -> Any:
    out = []
    for m in ms:
        c = m.candles
        n = len(c)
        entries, exits = _vectorbt_signals(vbt, name, c.close, ps)
        # decision on bar i's close -> order on bar i + 1 at its open; bar n closes what is open
        ent = np.zeros((n + 1, len(ps)), dtype=bool)
        ext = np.zeros((n + 1, len(ps)), dtype=bool)
        ent[1:n] = entries[: n - 1]
        ext[1:n] = exits[: n - 1]
        ext[n] = True
        price = np.r_[c.open, c.close[-1]]
        close_ext = np.r_[c.close, c.close[-1]]
        pf = vbt.Portfolio.from_signals(
            close_ext[:, None], ent, ext, price=price[:, None], fees=SETTINGS.fee,
            init_cash=SETTINGS.cash, freq="5min",
        )  # fmt: skip
        out.append(np.asarray(pf.total_return(), dtype=float))
    return np.stack(out)


def vectorbt_worker(name: str, limit: int | None, out: str) -> int:
    """Run in a fresh process: vectorbt cold (import + compilation + run), then warm."""
    ms = markets(limit)
    center, values = grid(name)
    ps = [p.model_dump(exclude_none=True) for p in expand(name, center, values)[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        import vectorbt as vbt

        returns = _vectorbt_returns(vbt, name, ms, ps)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        _vectorbt_returns(vbt, name, ms, ps)
        warm = time.perf_counter() - t0
    np.save(out + ".npy", returns)
    Path(out + ".json").write_text(json.dumps({"cold": cold, "warm": warm}))
    return 0


def run_vectorbt(name: str, limit: int | None) -> tuple[Any, float, float]:
    with tempfile.TemporaryDirectory(prefix="sweep-vbt-") as tmp:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(Path(tmp) / "numba")}
        out = str(Path(tmp) / "result")
        cmd = [sys.executable, "-P", __file__, "--vectorbt-worker", name, "--out", out]
        if limit is not None:
            cmd += ["--markets", str(limit)]
        subprocess.run(cmd, check=True, env=env)
        times = json.loads(Path(out + ".json").read_text())
        return np.load(out + ".npy"), float(times["cold"]), float(times["warm"])


# --- the comparison --------------------------------------------------------------------------


def bench(name: str, ms: list[CandleSeries], limit: int | None) -> tuple[int, float, float, int]:
    """Returns (evaluations, our time, vectorbt's cold time, sets off by more than 1e-6)."""
    center, values = grid(name)
    sets, skipped = expand(name, center, values)
    bars = sum(len(m.candles) for m in ms)
    runs = []
    for _ in range(3):  # best of 3: this machine is shared, slower runs measure other work
        t0 = time.perf_counter()
        ranked = optimize(ms, name, values, center, SETTINGS, "total_return_percentage")
        runs.append(time.perf_counter() - t0)
    ours_time = min(runs)
    ours = np.stack([evaluate(m, name, sets, SETTINGS)["total_return"] / SETTINGS.cash for m in ms])
    theirs, cold, warm = run_vectorbt(name, limit)
    diff = np.abs(ours - theirs)
    bad = int((diff > TOLERANCE).sum())
    shape = " x ".join(f"{k} {v[0]}..{v[-1]} ({len(v)})" for k, v in values.items())
    print(f"{name}: {len(sets)} sets ({skipped} skipped) = {shape}")
    print(
        f"  ours {ours_time:.2f}s (best of {', '.join(f'{r:.2f}' for r in runs)}s; best "
        f"{ranked.ranked[0].params}), vectorbt cold {cold:.2f}s warm {warm:.2f}s; returns "
        f"{diff.size - bad}/{diff.size} within {TOLERANCE:g} (max diff {diff.max():.2e})"
    )
    for mk, row in zip(ms, diff, strict=True):
        if (row > TOLERANCE).any():
            k = int(row.argmax())
            print(f"    {mk.name}: {int((row > TOLERANCE).sum())} sets differ, worst "
                  f"{sets[k].model_dump(exclude_none=True)} by {row[k]:.2e}")  # fmt: skip
    print(f"  {name}: evals_per_s={bars * len(sets) / ours_time:.0f} ratio={cold / ours_time:.1f} "
          f"ratio_warm={warm / ours_time:.1f}")  # fmt: skip
    sys.stdout.flush()
    return bars * len(sets), ours_time, cold, bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=None, help="use only the first N markets")
    ap.add_argument("--strategies", default=None, help="comma-separated (default: every one)")
    ap.add_argument("--vectorbt-worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.vectorbt_worker:
        return vectorbt_worker(args.vectorbt_worker, args.markets, args.out)
    names = args.strategies.split(",") if args.strategies else [c.name for c in BUILTINS]
    ms = markets(args.markets)
    print(f"{len(ms)} markets, {sum(len(m.candles) for m in ms):,} bars")
    evals = ours = theirs = 0.0
    ratios, bad = [], 0
    for name in names:
        e, o, t, b = bench(name, ms, args.markets)
        evals, ours, theirs, bad = evals + e, ours + o, theirs + t, bad + b
        ratios.append(t / o)
    print(f"sweep: evals_per_s={evals / ours:.0f} ratio_min={min(ratios):.1f} "
          f"ratio={theirs / ours:.1f}")  # fmt: skip
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
