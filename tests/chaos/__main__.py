"""``python -m tests.chaos``: what ``scripts/chaos`` runs. The last line is
``chaos: scenarios=K missing=N extra=N double_open=N mismatches=N orphan_holds=N deadlocks=N audit=N``
and the exit status is non-zero if any count is."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

from tests.chaos.harness import FULL, SHORT
from tests.chaos.run import chaos, summary
from tests.chaos.scenarios import SCENARIOS


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__)
    p.add_argument("--short", action="store_true", help="few bots and a short replay")
    p.add_argument("--bots", type=int, help="paper bots (default 300, 40 with --short)")
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, run one after another (default: all of {', '.join(SCENARIOS)})",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the bot mix")
    p.add_argument("--keep", action="store_true", help="keep the databases and worker logs")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    plan = SHORT if args.short else FULL
    plan = dataclasses.replace(plan, bots=args.bots or plan.bots, seed=args.seed)
    ref, outcomes = asyncio.run(
        chaos(plan, names, keep=args.keep, echo=lambda s: print(s, flush=True))
    )
    last, total = summary(outcomes)
    print(last, flush=True)
    return 1 if total.total() or ref.counts.total() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
