"""``tradefleet data download``: historical candles from an exchange into the database
(or CSV files)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.errors import Fatal

EXAMPLES = """\
examples:
  tradefleet data download --exchange binance --pairs BTC/USDT,ETH/USDT --timeframes 1h \\
      --since 2024-01-01
  tradefleet data download --exchange binance --pairs BTC/USDT --timeframes 5m \\
      --since 2024-01-01 --until 2024-02-01 --to-files data/candles
"""


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid date {text!r} (expected e.g. 2024-01-01 or 2024-01-01T12:00)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return names


def add_commands(subparsers: Any) -> None:
    data = subparsers.add_parser(
        "data",
        help="historical market data",
        description="Historical market data: download candles from an exchange.",
    )
    sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    dl = sub.add_parser(
        "download",
        help="download candles into the database (or CSV files)",
        description="Download closed candles through the exchange's public API, page by page "
        "within its rate limit, into the candles table (or, with --to-files, CSV files that "
        "backtests read). A download that stopped resumes after the last candle stored; "
        "candles the exchange does not have are reported as gaps.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dl.add_argument("--exchange", required=True, help="ccxt exchange id, e.g. binance")
    dl.add_argument("--pairs", required=True, type=_names, help="e.g. BTC/USDT,ETH/USDT")
    dl.add_argument("--timeframes", required=True, type=_names, help="e.g. 5m,1h")
    dl.add_argument("--since", required=True, type=_when, help="first open time (UTC)")
    dl.add_argument("--until", type=_when, help="end of the period (UTC, excluded; default: now)")
    dl.add_argument("--to-files", type=Path, metavar="DIR", help="write CSV files instead")
    dl.add_argument("--database-url", help="database to store into (default: DATABASE_URL)")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    dl.set_defaults(handler=run_download)


def run_download(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    import psycopg

    from worker.data.sinks import CandleSink, DatabaseSink, FileSink
    from worker.exchanges.live import LiveExchange
    from worker.exchanges.settings import ExchangesSettings
    from worker.fleet.settings import DatabaseSettings, load_settings

    urls = load_settings(ExchangesSettings).exchange_urls
    exchange = LiveExchange(args.exchange, api_base_url=urls.get(args.exchange))
    conn: psycopg.AsyncConnection[Any] | None = None
    try:
        sink: CandleSink
        if args.to_files is not None:
            sink = FileSink(args.to_files)
        else:
            url = args.database_url or (
                load_settings(DatabaseSettings).database_url.get_secret_value()
            )
            conn = await psycopg.AsyncConnection.connect(url)
            sink = DatabaseSink(conn, args.exchange)
        results = await _with_progress(args, exchange.client, sink)
    finally:
        await exchange.close()
        if conn is not None:
            await conn.close()
    for r in results:
        print(r.describe())
        for gap in r.gaps[:10]:
            print(f"  gap: {gap.describe()}")
        if len(r.gaps) > 10:
            print(f"  … and {len(r.gaps) - 10} more gap(s)")
    return 0


async def _with_progress(args: argparse.Namespace, client: Any, sink: Any) -> list[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from worker.data.download import download

    show = not args.no_progress and sys.stderr.isatty()
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not show,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done)

        try:
            return await download(
                client, sink, args.pairs, args.timeframes, args.since, args.until, progress
            )
        except OSError as e:
            raise Fatal(f"download failed: {e}") from e
