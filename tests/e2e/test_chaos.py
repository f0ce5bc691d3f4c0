"""Chaos scenarios (``scripts/chaos``, short form) that ``scripts/test`` does not run as
its hard check: those run here, so every scenario runs once per full test run. A scenario
that fails for a known reason is a strict xfail naming it (``KNOWN_FAILURES``): once it is
fixed the test XPASSes, which fails the suite, and the entry goes.

One seed database and one fault-free reference run serve every scenario of the module.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.harness import SHORT
from tests.chaos.run import Prepared, cleanup, judge, prepare, run_scenario
from tests.chaos.scenarios import SCENARIOS
from tests.support import db as support

pytestmark = pytest.mark.e2e

KNOWN_FAILURES: dict[str, str] = {}


def hard_in_scripts_test() -> set[str]:
    """The scenarios ``scripts/test`` runs as its hard check (``--scenarios a,b``)."""
    text = (support.ROOT / "scripts" / "test").read_text()
    found = re.search(r"scripts/chaos\" --short --scenarios ([a-z0-9_,]+)", text)
    assert found, "scripts/test no longer runs scripts/chaos --short --scenarios ..."
    names = set(found.group(1).split(","))
    assert names <= set(SCENARIOS), names - set(SCENARIOS)
    return names


HERE = [n for n in SCENARIOS if n not in hard_in_scripts_test()]


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
        pytest.param(
            n,
            marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=KNOWN_FAILURES[n]),
        )
        if n in KNOWN_FAILURES
        else n
        for n in HERE
    ],
)
def test_a_faulted_fleet_leaves_what_a_fault_free_one_does(prepared: Prepared, name: str) -> None:
    outcome = asyncio.run(run_scenario(prepared, SCENARIOS[name]))
    assert outcome.counts.total() == 0, "\n".join([outcome.line(), *outcome.report.notes])
