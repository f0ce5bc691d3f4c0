"""The markets refresh is registered with the fleet daily, and is off where candles replay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from worker import bots
from worker.bots.settings import BotsSettings
from worker.exchanges.settings import ExchangesSettings
from worker.fleet.registry import Registry


def test_markets_refresh_runs_daily_for_the_whole_fleet() -> None:
    registry = Registry()
    bots.register(registry, BotsSettings())
    assert "markets.refresh" in registry.kinds
    daily = registry.periodic_jobs["markets.refresh"]
    assert daily.every == timedelta(days=1) and daily.kind == "markets.refresh"


def test_workers_that_replay_candles_never_reach_the_exchanges_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRADEFLEET_MARKETS_REFRESH", raising=False)
    assert bots.markets_refresh_on(BotsSettings(tradefleet_replay_dir=None))
    assert not bots.markets_refresh_on(BotsSettings(tradefleet_replay_dir=tmp_path))
    forced = BotsSettings(
        tradefleet_replay_dir=tmp_path,
        exchanges=ExchangesSettings(tradefleet_markets_refresh=True),
    )
    assert bots.markets_refresh_on(forced)
    off = BotsSettings(exchanges=ExchangesSettings(tradefleet_markets_refresh=False))
    assert not bots.markets_refresh_on(off)
