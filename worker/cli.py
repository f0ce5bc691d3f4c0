"""The ``tradefleet`` command: composition root of the worker fleet."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tradefleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from worker.backtest import cli as backtest_cli

    backtest_cli.add_commands(sub)

    from worker import summary

    summary.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
