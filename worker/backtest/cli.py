"""``tradefleet backtest`` and ``tradefleet optimize``.

Examples (candles from the repository's data/candles)::

    tradefleet backtest --candles ETH_BTC-5m.csv --strategy sma_cross \
        --params '{"fast": 10, "slow": 20}' --shorts --fee 0.002 --report out.html
    tradefleet backtest --candles ETH_BTC-5m.csv --strategy rsi --timerange 20180110- --json
    tradefleet backtest --batch 'candles/*-5m.csv' --strategy macd --report batch.html
    tradefleet optimize --candles 'candles/*-5m.csv' --strategy sma_cross \
        --params '{"fast": 30, "slow": 100}' --metric sharpe_ratio --oos 0.3 --folds 3
    tradefleet optimize --candles ETH_BTC-5m.csv --strategy bollinger \
        --ranges '{"period": {"start": 10, "stop": 40, "step": 5}, "std": [1.5, 2, 2.5]}'

Exit code 0 on success, 2 on bad input (one line on stderr names the problem). Inputs and
the report's path are checked before any work starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from worker.backtest.api import BacktestResult, run_backtest
from worker.backtest.batch import candle_files, run_batch
from worker.backtest.engine import Settings
from worker.backtest.optimize import (
    OptimizeResult,
    default_axes,
    expand,
    grid_around,
    optimize,
    parse_ranges,
)
from worker.backtest.report import write_batch_report, write_optimize_report, write_report
from worker.backtest.stats_format import (
    format_stat,
    market_label,
    quote_currency,
    stat_label,
    stat_rows,
)
from worker.backtest.timerange import HELP as TIMERANGE_HELP
from worker.backtest.timerange import TimeRange
from worker.candles import CandleDataError, CandleSeries, load_csv
from worker.strategies.base import InvalidParameters, UnknownStrategy
from worker.strategies.registry import list_strategies

_SUMMARY = (
    "total_trades",
    "total_return_percentage",
    "buy_and_hold_return_percentage",
    "sharpe_ratio",
    "max_drawdown",
    "win_rate",
    "profit_factor",
)
_HEADERS = (
    "trades",
    "return",
    "buy & hold",
    "Sharpe",
    "max. drawdown",
    "win rate",
    "profit factor",
)


def console() -> Console:
    """Standard output; wide enough for the tables when it is a file or a pipe."""
    out = Console()
    return out if out.is_terminal else Console(width=160)


class InputError(ValueError):
    """A path or option the command cannot use; the message names it."""


def _json_arg(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def _timerange_arg(text: str) -> TimeRange:
    try:
        return TimeRange.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strategy",
        required=True,
        metavar="NAME",
        help=f"strategy to run, one of: {', '.join(list_strategies())} "
        "(see 'tradefleet strategies')",
    )
    p.add_argument(
        "--params",
        type=_json_arg,
        default={},
        metavar="JSON",
        help='strategy parameters as a JSON object, e.g. \'{"fast": 10, "slow": 20}\'; '
        "unset ones take the strategy's defaults",
    )
    p.add_argument(
        "--timerange",
        type=_timerange_arg,
        metavar="RANGE",
        help=f"only the candles in this UTC date range: {TIMERANGE_HELP} "
        "(the end date is excluded; default: every candle)",
    )
    p.add_argument("--shorts", action="store_true", help="trade short as well as long")
    p.add_argument("--fee", type=float, default=0.001, help="fee per fill, fraction of notional")
    p.add_argument("--slippage", type=float, default=0.0, help="slippage, fraction of price")
    p.add_argument("--cash", type=float, default=10_000.0, help="initial balance, quote currency")
    p.add_argument(
        "--stake-fraction", type=float, default=1.0, help="stake per trade, fraction of equity"
    )
    p.add_argument(
        "--stake-amount",
        type=float,
        default=None,
        help="fixed stake per trade in the quote currency (overrides --stake-fraction)",
    )
    p.add_argument(
        "--amount-step",
        type=float,
        default=None,
        help="trade multiples of this amount of the base, as the market does "
        "(1 for whole shares or lots; default: any fraction)",
    )
    p.add_argument(
        "--timeframe",
        default=None,
        help="candle timeframe, e.g. 5m or 1h (default: from the file name, else the data)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument(
        "--report",
        metavar="OUT.html",
        help="also write a self-contained HTML report (charts, statistics, trades) here",
    )


def add_commands(subparsers: Any) -> None:
    """Register ``backtest`` and ``optimize`` on the ``tradefleet`` parser."""
    bt = subparsers.add_parser(
        "backtest",
        help="backtest a strategy on candles (CSV)",
        description="Replay candles through a strategy with the paper exchange's fill rules and "
        "print the statistics: one market with --candles, many with --batch. Candle files "
        "are CSV with the header date,open,high,low,close,volume; gaps are reported, "
        "never filled.",
    )
    src = bt.add_mutually_exclusive_group(required=True)
    src.add_argument("--candles", metavar="FILE.csv", help="one candle file")
    src.add_argument(
        "--batch",
        nargs="+",
        metavar="PATH",
        help="many markets: candle files, folders (every *.csv in them) or glob patterns",
    )
    _add_common(bt)
    bt.set_defaults(handler=backtest_command)

    op = subparsers.add_parser(
        "optimize",
        help="sweep a parameter grid and rank the sets",
        description="Backtest every combination of a parameter grid and rank the sets by a "
        "metric (averaged over the markets). Without --ranges the grid spans --spread "
        "around each numeric parameter. --oos holds out the last part of the candles to "
        "check the best sets out of sample; --folds runs a walk-forward check.",
    )
    op.add_argument(
        "--candles",
        nargs="+",
        required=True,
        metavar="PATH",
        help="candle files, folders (every *.csv in them) or glob patterns",
    )
    op.add_argument(
        "--ranges",
        type=_json_arg,
        default=None,
        metavar="JSON",
        help='values per parameter, e.g. \'{"fast": [5, 8, 13], "slow": {"start": 20, '
        '"stop": 60, "step": 10}}\' (default: a grid around --params)',
    )
    op.add_argument(
        "--spread", type=float, default=0.3, help="default grid: ± this fraction of each value"
    )
    op.add_argument("--steps", type=int, default=7, help="default grid: values per float parameter")
    op.add_argument("--metric", default="sharpe_ratio", help="rank the sets by this statistic")
    op.add_argument("--top", type=int, default=10, help="how many ranked sets to show")
    op.add_argument(
        "--oos", type=float, default=None, help="out-of-sample fraction of the candles, e.g. 0.3"
    )
    op.add_argument("--folds", type=int, default=None, help="walk-forward folds, e.g. 4")
    op.add_argument(
        "--heatmap",
        metavar="X,Y",
        default=None,
        help="the two parameters of the report's heatmap (default: the first two that vary)",
    )
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
        amount_step=args.amount_step,
    )


def check_candle_file(path: str, option: str = "--candles") -> Path:
    """The path of a readable candle file, or an :class:`InputError` saying what it is."""
    p = Path(path)
    if p.is_dir():
        raise InputError(
            f"{option}: '{path}' is a folder, not a candle file "
            f"(to backtest every CSV in it, use --batch {path})"
        )
    if not p.exists():
        raise InputError(f"{option}: no such file '{path}'")
    if not os.access(p, os.R_OK):
        raise InputError(f"{option}: cannot read '{path}' (permission denied)")
    return p


def check_output(path: str | None, option: str = "--report") -> None:
    """Fail before the work if the report could not be written to ``path``."""
    if not path:
        return
    p = Path(path)
    if p.is_dir():
        raise InputError(
            f"{option}: '{path}' is a folder; give a file name, e.g. {p / 'report.html'}"
        )
    folder = p.parent
    if not folder.is_dir():
        raise InputError(f"{option}: cannot write '{path}': folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise InputError(f"{option}: cannot write '{path}' (permission denied)")


def _load(path: Path, args: argparse.Namespace) -> CandleSeries:
    try:
        series = load_csv(path, args.timeframe)
    except UnicodeDecodeError:
        raise InputError(f"'{path}' is not a text CSV file") from None
    except OSError as e:
        raise InputError(f"cannot read '{path}': {e.strerror or e}") from None
    return args.timerange.apply(series) if args.timerange else series


def _load_many(specs: Sequence[str], args: argparse.Namespace) -> list[CandleSeries]:
    return [_load(p, args) for p in candle_files(specs)]


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    err = Console(stderr=True)
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda k: bar.advance(task, k)


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        where = f"tradefleet {args.command}"
        try:
            return fn(args)
        except (InvalidParameters, UnknownStrategy, CandleDataError, FileNotFoundError) as e:
            print(f"{where}: error: {e}", file=sys.stderr)
        except ValidationError as e:
            err = e.errors()[0]
            name = ".".join(str(p) for p in err["loc"]) or "settings"
            print(f"{where}: error: invalid setting '{name}': {err['msg']}", file=sys.stderr)
        except (ValueError, OSError) as e:
            print(f"{where}: error: {e}", file=sys.stderr)
        return 2

    return run


def stats_table(stats: dict[str, Any], title: str | None, quote: str = "") -> Table:
    """Every statistic with its label and unit."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for label, value in stat_rows(stats, quote):
        table.add_row(label, value)
    return table


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def _print_single(res: BacktestResult, series: CandleSeries) -> None:
    out = console()
    out.print(
        f"[bold]{market_label(series.name)} {res.timeframe}[/] · {res.strategy} "
        f"({_params_text(res.params)}) · {res.start_date} → {res.end_date}"
    )
    out.print(stats_table(res.stats, None, quote_currency(series.name)))
    for g in res.gaps[:10]:
        out.print(f"[yellow]gap:[/] {g.describe()}")
    if len(res.gaps) > 10:
        out.print(f"[yellow]… {len(res.gaps) - 10} more gaps[/]")


def _backtest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    check_output(args.report)
    if args.batch:
        markets = _load_many(args.batch, args)
        with _progress(len(markets), "backtest") as tick:
            results = run_batch(markets, args.strategy, args.params, settings, tick)
        if args.json:
            rows = [
                {"market": n, **{k: v for k, v in r.to_dict().items() if k != "equity"}}
                for n, r in results
            ]
            print(json.dumps(rows, allow_nan=False))
        else:
            table = Table(title=f"{args.strategy} ({_params_text(args.params)})")
            table.add_column("market")
            table.add_column("timeframe")
            for label in _HEADERS:
                table.add_column(label, justify="right")
            table.add_column("gaps", justify="right")
            for (n, r), m in zip(results, markets, strict=True):
                q = quote_currency(m.name)
                cells = [format_stat(k, r.stats.get(k), q) for k in _SUMMARY]
                table.add_row(market_label(n), r.timeframe, *cells, str(len(r.gaps)))
            console().print(table)
        if args.report:
            write_batch_report(
                list(zip(markets, (r for _, r in results), strict=True)), args.report
            )
        return 0
    series = _load(check_candle_file(args.candles), args)
    res = run_backtest(series, args.strategy, args.params, settings)
    if args.json:
        print(json.dumps(res.to_dict(), allow_nan=False))
    else:
        _print_single(res, series)
    if args.report:
        write_report(res, series, args.report)
    return 0


def _print_ranking(res: OptimizeResult, top: int, quote: str) -> None:
    table = Table(
        title=f"{res.strategy}: {res.evaluated} sets x {len(res.markets)} market(s), "
        f"ranked by {res.metric}"
    )
    table.add_column("#", justify="right")
    table.add_column("parameters")
    for label in _HEADERS:
        table.add_column(label, justify="right")
    if res.ranked and res.ranked[0].oos_stats is not None:
        table.add_column(f"{stat_label(res.metric)}, out of sample", justify="right")
    for i, r in enumerate(res.ranked[:top], 1):
        cells = [format_stat(k, r.stats.get(k), quote) for k in _SUMMARY]
        if r.oos_stats is not None:
            cells.append(format_stat(res.metric, r.oos_stats.get(res.metric), quote))
        table.add_row(str(i), _params_text(r.params), *cells)
    out = console()
    out.print(table)
    if res.skipped:
        out.print(f"{res.skipped} invalid combination(s) skipped")
    if res.overfit is not None:
        corr = res.oos_rank_correlation
        verdict = "[red]likely overfit[/]" if res.overfit else "[green]holds out of sample[/]"
        out.print(f"out of sample: {verdict}" + ("" if corr is None else
                  f"; rank correlation in/out of sample: {corr:.2f}"))  # fmt: skip
    for f in res.folds:
        out.print(f"fold {f.train_start}-{f.train_end} -> {f.test_start}-{f.test_end}: "
                  f"{_params_text(f.params)}: {res.metric} "
                  f"{format_stat(res.metric, f.in_sample)} in, "
                  f"{format_stat(res.metric, f.out_of_sample)} out "
                  f"(beats {f.oos_percentile:.0f}% of sets)")  # fmt: skip
    for note in res.notes:
        out.print(f"  - {note}")


def _heatmap_axes(arg: str | None, values: dict[str, list[Any]]) -> tuple[str, str] | None:
    if arg:
        names = [n.strip() for n in arg.split(",")]
        if len(names) != 2 or names[0] == names[1]:
            raise InputError(f"--heatmap: expected two parameter names as X,Y, got '{arg}'")
        for n in names:
            if n not in values:
                raise InputError(
                    f"--heatmap: '{n}' is not in the grid (grid parameters: {', '.join(values)})"
                )
        return names[0], names[1]
    return default_axes(values)


def _optimize(args: argparse.Namespace) -> int:
    settings = _settings(args)
    check_output(args.report)
    markets = _load_many(args.candles, args)
    values = (
        parse_ranges(args.ranges)
        if args.ranges
        else grid_around(args.strategy, args.params, args.spread, args.steps)
    )
    axes = _heatmap_axes(args.heatmap, values)
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
        _print_ranking(res, args.top, quote_currency(markets[0].name))
    if args.report and res.ranked:
        best = run_backtest(markets[0], args.strategy, res.ranked[0].params, settings)
        write_optimize_report(
            res, best, markets[0], args.report, heatmap=axes, top=max(args.top, 20), oos=args.oos
        )
    return 0


backtest_command = _guard(_backtest)
optimize_command = _guard(_optimize)
