"""Chaos scenarios (``scripts/chaos``, short form) that fail today, each a strict xfail
naming the failure: once it is fixed the test XPASSes, which fails the suite, and the
scenario belongs in the hard check of ``scripts/test`` instead.

One seed database and one fault-free reference run serve every scenario of the module.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import SHORT
from tests.chaos.run import Prepared, cleanup, judge, prepare, run_scenario
from tests.chaos.scenarios import SCENARIOS

pytestmark = pytest.mark.e2e

DROPPED = (
    "entries of an outage are dropped: a bot taken over replays the candles it missed "
    "but keeps the entry of the latest only"
)
HOLDS = "a hold placed just before the worker died or lost its lease stays pending"
FORGOTTEN = "a failed persist is forgotten: the bot trades on in memory past what committed"
KNOWN_FAILURES = {
    "restart": DROPPED,
    "kill9": f"{DROPPED}; {HOLDS}",
    "sigstop": f"{DROPPED}; {HOLDS}",
    "pg_fast": f"{FORGOTTEN}; {DROPPED}; {HOLDS}",
    "pg_immediate": f"{FORGOTTEN}; {DROPPED}; {HOLDS}",
    "persist_fail": FORGOTTEN,
    "lease_churn": DROPPED,
}


@pytest.fixture(scope="module")
def prepared(template_db: str) -> Iterator[Prepared]:
    logs = Path(tempfile.mkdtemp(prefix="tradefleet-chaos-"))
    p = asyncio.run(prepare(SHORT, logs, f"chaos_test_{os.getpid()}"))
    try:
        own = judge("reference", p, p.reference, SHORT.lease_ttl_s, p.reference)
        if own.counts.total():  # the reference must be consistent, or nothing is judged
            raise RuntimeError(own.line())
        yield p
    finally:
        cleanup(p)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=why))
        for n, why in KNOWN_FAILURES.items()
    ],
)
def test_a_faulted_fleet_leaves_what_a_fault_free_one_does(prepared: Prepared, name: str) -> None:
    outcome = asyncio.run(run_scenario(prepared, SCENARIOS[name]))
    assert outcome.counts.total() == 0, "\n".join([outcome.line(), *outcome.report.notes])
