"""The ``tradefleet`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from worker.errors import Fatal

DESCRIPTION = """\
Tradefleet runs the trading side of a Supabase-backed platform: a fleet of workers that
trade users' bots, sync brokerage holdings, settle credits and fan out signals, all
coordinated through the Postgres database. The same command backtests and optimises
strategies on candle files, with no database needed.

Commands that use the database read its URL from --database-url or the DATABASE_URL
environment variable (e.g. postgresql://postgres:PASSWORD@db.PROJECT.supabase.co:5432/postgres).
"""

EPILOG = """\
examples:
  tradefleet strategies
  tradefleet backtest --candles data/candles/ETH_BTC-5m.csv --strategy sma_cross --report run.html
  tradefleet optimize --candles data/candles/ETH_BTC-5m.csv --strategy rsi --oos 0.3
  tradefleet data download --exchange binance --pairs BTC/USDT --timeframes 1h --since 2024-01-01
  DATABASE_URL=postgresql://... tradefleet worker

Run 'tradefleet COMMAND --help' for a command's options.
"""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, when it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        no_default = action.default is None or action.default is False or action.default == ""
        if "default" in text.lower() or no_default or action.default == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


class TopHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """The top-level help keeps the line breaks of its description and examples."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose sub-commands share :class:`HelpFormatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:
        """One line on stderr and exit code 2 (argparse also prints the usage)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _version() -> str:
    try:
        return version("tradefleet")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tradefleet",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=TopHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=None,
        help="how much to log to stderr (default: WARNING for backtests, LOG_LEVEL or INFO "
        "for the worker)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=None,
        help="log more: -v for INFO, -vv for DEBUG",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker_cmd = sub.add_parser(
        "worker",
        help="run one fleet worker until stopped (SIGTERM or Ctrl-C)",
        description="Run one fleet worker: it claims jobs and bots from the database and runs "
        "them until it receives SIGTERM or Ctrl-C, then finishes its running jobs. It is "
        "configured from the environment (or a .env file; see .env.example): DATABASE_URL "
        "is the database it serves, WORKER_QUEUES the job queues it takes work from, "
        "WORKER_CAPACITY the most bots it runs at once. Start as many as you need, on any "
        "number of machines.",
    )
    worker_cmd.set_defaults(handler=run_worker)

    from worker.backtest import cli as backtest_cli
    from worker.backtest import strategies_cli

    backtest_cli.add_commands(sub)
    strategies_cli.add_commands(sub)

    from worker import summary

    summary.add_commands(sub)

    from worker.sealing import rotate

    rotate.add_commands(sub)

    from worker.console import cli as console_cli

    console_cli.add_commands(sub)

    from worker.data import cli as data_cli

    data_cli.add_commands(sub)
    return parser


def log_level(args: argparse.Namespace, default: str | None) -> str | None:
    """The level asked for with ``--log-level`` or ``-v``, else ``default``."""
    if args.log_level:
        level: str = args.log_level
        return level
    if args.verbose:
        return "DEBUG" if args.verbose > 1 else "INFO"
    return default


def run_worker(args: argparse.Namespace) -> int:
    """Build the registry from every capability and run one worker until SIGTERM."""
    import asyncio

    from worker.capabilities import register_all
    from worker.db import wait_for_database
    from worker.fleet.logs import setup_logging
    from worker.fleet.registry import Registry
    from worker.fleet.runtime import Worker
    from worker.fleet.settings import FleetSettings, load_settings

    settings = load_settings(FleetSettings)
    setup_logging(log_level(args, None) or settings.log_level)
    asyncio.run(wait_for_database(settings.database_url.get_secret_value()))
    registry = Registry()
    register_all(registry, settings)
    return asyncio.run(Worker(settings, registry).run())


def _check_database(args: argparse.Namespace) -> None:
    """Commands that use the database fail in one line when it cannot be reached."""
    if not hasattr(args, "database_url") or not getattr(args, "check_database", True):
        return
    import asyncio

    from worker.db import wait_for_database
    from worker.errors import ConfigError
    from worker.fleet.settings import DatabaseSettings, load_settings

    url: str | None = args.database_url
    if not url:
        try:
            url = load_settings(DatabaseSettings).database_url.get_secret_value()
        except ConfigError:
            return  # the command itself says the URL is missing
    asyncio.run(wait_for_database(url))


def main(argv: Sequence[str] | None = None) -> int:
    from worker.errors import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "worker":
        level = log_level(args, None)
        logging.basicConfig(level=level or "WARNING", format="%(levelname)s %(name)s: %(message)s")
    try:
        _check_database(args)
        result: int = args.handler(args)
    except ConfigError as e:
        # A configuration mistake is the operator's to fix: one line, no traceback.
        print(f"tradefleet {args.command}: {e}", file=sys.stderr)
        return 2
    except Fatal as e:
        print(f"tradefleet {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tradefleet {args.command}: interrupted", file=sys.stderr)
        return 130
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
