"""Exactly-once live trading with real processes: the worker is killed with SIGKILL after the
exchange accepted an order and before the database recorded it, another worker takes the
bot over, and the database matches the exchange (``tests/e2e/exactly_once.py``; its long
form runs each scenario many times)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.exactly_once import SCENARIOS, run_scenario

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_a_live_order_accepted_but_not_recorded_is_recorded_once_after_takeover(
    db_url: str, tmp_path: Path, scenario: str
) -> None:
    result = await run_scenario(db_url, tmp_path, scenario)
    assert result["orders"] >= 2 and result["trades"] >= 1
