"""``tradefleet backtest`` and ``tradefleet optimize``.

Examples (candles from the repository's data/candles)::

    tradefleet backtest --candles ETH_BTC-5m.csv --strategy sma_cross \
        --params '{"fast": 10, "slow": 20}' --shorts --fee 0.002 --report out.html
    tradefleet backtest --candles ETH_BTC-5m.csv --strategy rsi --json > run.json
    tradefleet backtest --batch 'candles/*-5m.csv' --strategy macd
    tradefleet optimize --candles 'candles/*-5m.csv' --strategy sma_cross \
        --params '{"fast": 30, "slow": 100}' --metric sharpe_ratio --oos 0.3 --folds 3
    tradefleet optimize --candles ETH_BTC-5m.csv --strategy bollinger \
        --ranges '{"period": {"start": 10, "stop": 40, "step": 5}, "std": [1.5, 2, 2.5]}'

Exit code 0 on success, 2 on bad input (the message names the problem).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from worker.backtest.api import BacktestResult, run_backtest
from worker.backtest.batch import load_many, run_batch
from worker.backtest.engine import Settings
from worker.backtest.optimize import (
    OptimizeResult,
    expand,
    grid_around,
    optimize,
    parse_ranges,
)
from worker.backtest.report import write_report
from worker.candles import CandleDataError, load_csv
from worker.strategies.base import InvalidParameters, UnknownStrategy
from worker.strategies.registry import list_strategies

_SUMMARY = (
    ("total_trades", "trades"),
    ("total_return_percentage", "return %"),
    ("sharpe_ratio", "sharpe"),
    ("max_drawdown", "max dd %"),
    ("win_rate", "win %"),
    ("profit_factor", "PF"),
)


def _num(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}" if isinstance(v, float) else str(v)


def _json_arg(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategy", required=True, help=f"one of: {', '.join(list_strategies())}")
    p.add_argument("--params", type=_json_arg, default={}, help="strategy parameters (JSON)")
    p.add_argument("--shorts", action="store_true", help="trade short as well as long")
    p.add_argument("--fee", type=float, default=0.001, help="fee, fraction of notional per fill")
    p.add_argument("--slippage", type=float, default=0.0, help="slippage, fraction of price")
    p.add_argument("--cash", type=float, default=10_000.0, help="initial balance")
    p.add_argument("--stake-fraction", type=float, default=1.0, help="stake, fraction of equity")
    p.add_argument("--stake-amount", type=float, default=None, help="fixed stake (overrides)")
    p.add_argument("--timeframe", default=None, help="override the timeframe (e.g. 5m)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--report", metavar="OUT.html", help="write a self-contained HTML report")


def add_commands(subparsers: Any) -> None:
    """Register ``backtest`` and ``optimize`` on the ``tradefleet`` parser."""
    bt = subparsers.add_parser("backtest", help="backtest a strategy on candles (CSV)")
    src = bt.add_mutually_exclusive_group(required=True)
    src.add_argument("--candles", metavar="FILE.csv", help="candle file")
    src.add_argument(
        "--batch", nargs="+", metavar="PATH", help="many markets: files, directories or globs"
    )
    _add_common(bt)
    bt.set_defaults(handler=backtest_command)

    op = subparsers.add_parser("optimize", help="sweep a parameter grid and rank the sets")
    op.add_argument("--candles", nargs="+", required=True, metavar="PATH", help="files/dirs/globs")
    op.add_argument("--ranges", type=_json_arg, default=None, help='e.g. {"fast": [5, 8, 13]}')
    op.add_argument("--spread", type=float, default=0.3, help="grid ± fraction (default 0.3)")
    op.add_argument("--steps", type=int, default=7, help="values per float parameter")
    op.add_argument("--metric", default="sharpe_ratio", help="rank by this metric")
    op.add_argument("--top", type=int, default=10, help="rows to show")
    op.add_argument("--oos", type=float, default=None, help="out-of-sample fraction, e.g. 0.3")
    op.add_argument("--folds", type=int, default=None, help="walk-forward folds, e.g. 4")
    _add_common(op)
    op.set_defaults(handler=optimize_command)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        cash=args.cash,
        fee=args.fee,
        slippage=args.slippage,
        stake_fraction=args.stake_fraction,
        stake_amount=args.stake_amount,
        shorts=args.shorts,
    )


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    err = Console(stderr=True)
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda k: bar.advance(task, k)


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (InvalidParameters, UnknownStrategy, CandleDataError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
        except ValidationError as e:
            for err in e.errors():
                where = ".".join(str(p) for p in err["loc"]) or "settings"
                print(f"error: invalid setting '{where}': {err['msg']}", file=sys.stderr)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
        return 2

    return run


def _stats_table(stats: dict[str, Any], title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in stats.items():
        table.add_row(k, _num(v, 4))
    return table


def _print_single(res: BacktestResult, name: str) -> None:
    out = Console()
    params = json.dumps(res.params)
    out.print(_stats_table(res.stats, f"{name} · {res.strategy} {params} · {res.timeframe}"))
    for g in res.gaps[:10]:
        out.print(f"[yellow]gap:[/] {g.describe()}")
    if len(res.gaps) > 10:
        out.print(f"[yellow]… {len(res.gaps) - 10} more gaps[/]")


def _backtest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.batch:
        markets = load_many(args.batch, args.timeframe)
        with _progress(len(markets), "backtest") as tick:
            results = run_batch(markets, args.strategy, args.params, settings, tick)
        if args.json:
            rows = [
                {"market": n, **{k: v for k, v in r.to_dict().items() if k != "equity"}}
                for n, r in results
            ]
            print(json.dumps(rows, allow_nan=False))
        else:
            table = Table(title=f"{args.strategy} {json.dumps(args.params)}")
            table.add_column("market")
            table.add_column("tf")
            for _, label in _SUMMARY:
                table.add_column(label, justify="right")
            table.add_column("gaps", justify="right")
            for n, r in results:
                cells = [_num(r.stats[k]) for k, _ in _SUMMARY]
                table.add_row(n, r.timeframe, *cells, str(len(r.gaps)))
            Console().print(table)
        if args.report and results:
            write_report(results[0][1], args.report, title=results[0][0])
        return 0
    series = load_csv(args.candles, args.timeframe)
    res = run_backtest(series, args.strategy, args.params, settings)
    if args.json:
        print(json.dumps(res.to_dict(), allow_nan=False))
    else:
        _print_single(res, series.name)
    if args.report:
        write_report(res, args.report, title=f"{series.name} · {res.strategy}")
    return 0


def _print_ranking(res: OptimizeResult, top: int) -> None:
    table = Table(title=f"{res.strategy}: {res.evaluated} sets x {len(res.markets)} market(s), "
                  f"ranked by {res.metric}")  # fmt: skip
    table.add_column("#", justify="right")
    table.add_column("params")
    for _, label in _SUMMARY:
        table.add_column(label, justify="right")
    if res.ranked and res.ranked[0].oos_stats is not None:
        table.add_column(f"OOS {res.metric}", justify="right")
    for i, r in enumerate(res.ranked[:top], 1):
        cells = [_num(r.stats[k]) for k, _ in _SUMMARY]
        if r.oos_stats is not None:
            v = r.oos_stats.get(res.metric)
            cells.append(_num(v))
        table.add_row(str(i), " ".join(f"{k}={v}" for k, v in r.params.items()), *cells)
    out = Console()
    out.print(table)
    if res.skipped:
        out.print(f"{res.skipped} invalid combination(s) skipped")
    if res.overfit is not None:
        corr = res.oos_rank_correlation
        verdict = "[red]likely overfit[/]" if res.overfit else "[green]holds out of sample[/]"
        out.print(f"out of sample: {verdict}" + ("" if corr is None else
                  f"; rank correlation in/out of sample: {corr:.2f}"))  # fmt: skip
    for f in res.folds:
        params = " ".join(f"{k}={v}" for k, v in f.params.items())
        out.print(f"fold {f.train_start}-{f.train_end} -> {f.test_start}-{f.test_end}: {params}: "
                  f"{res.metric} {_num(f.in_sample)} in, {_num(f.out_of_sample)} out "
                  f"(beats {f.oos_percentile:.0f}% of sets)")  # fmt: skip
    for note in res.notes:
        out.print(f"  - {note}")


def _optimize(args: argparse.Namespace) -> int:
    settings = _settings(args)
    markets = load_many(args.candles, args.timeframe)
    values = (
        parse_ranges(args.ranges)
        if args.ranges
        else grid_around(args.strategy, args.params, args.spread, args.steps)
    )
    total = len(expand(args.strategy, args.params, values)[0])
    passes = len(markets) * (1 + (1 if args.oos else 0) + 2 * (args.folds or 0))
    with _progress(total * passes, "optimize") as tick:
        res = optimize(
            markets,
            args.strategy,
            values,
            args.params,
            settings,
            args.metric,
            args.oos,
            tick,
            args.folds,
        )
    if args.json:
        print(json.dumps(res.to_dict(args.top), allow_nan=False))
    else:
        _print_ranking(res, args.top)
    if args.report and res.ranked:
        best = run_backtest(markets[0], args.strategy, res.ranked[0].params, settings)
        write_report(best, args.report, title=f"{markets[0].name} · best of {res.evaluated}")
    return 0


backtest_command = _guard(_backtest)
optimize_command = _guard(_optimize)
