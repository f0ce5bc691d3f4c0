"""The ``tradefleet`` command: composition root of the worker fleet."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradefleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    worker_cmd = sub.add_parser(
        "worker", help="run one fleet worker (configured from the environment, see .env.example)"
    )
    worker_cmd.set_defaults(handler=run_worker)

    from worker.backtest import cli as backtest_cli

    backtest_cli.add_commands(sub)

    from worker import summary

    summary.add_commands(sub)

    from worker.sealing import rotate

    rotate.add_commands(sub)
    return parser


def run_worker(args: argparse.Namespace) -> int:
    """Build the registry from every capability and run one worker until SIGTERM."""
    import asyncio

    from worker.capabilities import register_all
    from worker.fleet.logs import setup_logging
    from worker.fleet.registry import Registry
    from worker.fleet.runtime import Worker
    from worker.fleet.settings import FleetSettings, load_settings

    settings = load_settings(FleetSettings)
    setup_logging(settings.log_level)
    registry = Registry()
    register_all(registry, settings)
    return asyncio.run(Worker(settings, registry).run())


def main(argv: Sequence[str] | None = None) -> int:
    from worker.errors import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except ConfigError as e:
        # A configuration mistake is the operator's to fix: one line, no traceback.
        print(f"tradefleet {args.command}: {e}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
