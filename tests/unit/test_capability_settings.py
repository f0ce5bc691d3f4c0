"""Each capability reads its settings from the environment variables it always used, and
its code is configured from the settings object alone."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker.backtest.jobs import ROOT, candles_dir
from worker.backtest.settings import BacktestSettings
from worker.bots.clock import ReplayClock
from worker.bots.settings import BotsSettings
from worker.capabilities import parts_off
from worker.exchanges.precision import read_markets_file
from worker.exchanges.settings import ExchangesSettings
from worker.fleet.settings import RetentionSettings
from worker.holdings.jobs import HoldingsDeps
from worker.holdings.settings import HoldingsSettings
from worker.notify import NotifySettings, default_channels
from worker.notify.channels import TelegramChannel
from worker.sealing import SealingSettings

KEY = base64.b64encode(bytes(range(32))).decode()
VARIABLES = (
    "TRADEFLEET_REPLAY_DIR",
    "TRADEFLEET_REPLAY_START",
    "TRADEFLEET_REPLAY_SPEED",
    "TRADEFLEET_REPLAY_ANCHOR",
    "TRADEFLEET_MASTER_KEYS",
    "TRADEFLEET_MARKETS_DIR",
    "TRADEFLEET_MARKETS_REFRESH",
    "TRADEFLEET_MARKETS_REFRESH_MIN_S",
    "TRADEFLEET_CANDLES_DIR",
    "SNAPTRADE_CLIENT_ID",
    "SNAPTRADE_CONSUMER_KEY",
    "ALPACA_DATA_KEY_ID",
    "ALPACA_DATA_SECRET",
    "TELEGRAM_BOT_TOKEN",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_every_setting_says_what_it_is_for() -> None:
    for cls in (
        BotsSettings,
        HoldingsSettings,
        NotifySettings,
        BacktestSettings,
        ExchangesSettings,
        SealingSettings,
        RetentionSettings,
    ):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description"


def test_bots_replay_recorded_candles_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ReplayClock.from_settings(BotsSettings()) is None  # the wall clock by default
    monkeypatch.setenv("TRADEFLEET_REPLAY_DIR", "data/candles")
    monkeypatch.setenv("TRADEFLEET_REPLAY_START", "2018-01-12T00:00:00Z")
    monkeypatch.setenv("TRADEFLEET_REPLAY_SPEED", "")
    monkeypatch.setenv("TRADEFLEET_REPLAY_ANCHOR", "1700000000")
    settings = BotsSettings()
    assert settings.tradefleet_replay_dir == Path("data/candles")
    clock = ReplayClock.from_settings(settings)
    assert clock == ReplayClock(datetime(2018, 1, 12, tzinfo=UTC), 1.0, 1_700_000_000.0)
    monkeypatch.setenv("TRADEFLEET_REPLAY_SPEED", "-2")
    with pytest.raises(ValueError, match="TRADEFLEET_REPLAY_SPEED must be a positive number"):
        ReplayClock.from_settings(BotsSettings())


def test_bots_get_the_master_keys_and_market_definitions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert not BotsSettings().sealing.configured
    monkeypatch.setenv("TRADEFLEET_MASTER_KEYS", f"k1:{KEY}")
    monkeypatch.setenv("TRADEFLEET_MARKETS_DIR", str(tmp_path))
    settings = BotsSettings()
    assert settings.sealing.keyring().current_key_id == "k1"
    assert settings.exchanges.tradefleet_markets_dir == tmp_path
    (tmp_path / "binance.json").write_text('{"ETH/BTC": {"symbol": "ETH/BTC"}}')
    assert read_markets_file("binance", settings.exchanges.tradefleet_markets_dir) == {
        "ETH/BTC": {"symbol": "ETH/BTC"}
    }


def test_holdings_enable_the_providers_that_are_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEFLEET_MASTER_KEYS", f"k1:{KEY}")
    deps = HoldingsDeps.from_settings(HoldingsSettings())
    assert sorted(deps.providers) == ["alpaca"] and deps.snaptrade is None and deps.quotes is None
    monkeypatch.setenv("SNAPTRADE_CLIENT_ID", "partner")
    monkeypatch.setenv("SNAPTRADE_CONSUMER_KEY", "consumer-secret")
    monkeypatch.setenv("ALPACA_DATA_KEY_ID", "key-id")
    monkeypatch.setenv("ALPACA_DATA_SECRET", "data-secret")
    settings = HoldingsSettings()
    assert "consumer-secret" not in repr(settings) and "data-secret" not in repr(settings)
    deps = HoldingsDeps.from_settings(settings)
    assert sorted(deps.providers) == ["alpaca", "snaptrade"] and deps.quotes is not None
    assert deps.keyring.key_ids == ["k1"]


async def test_notify_sends_telegram_with_the_configured_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    channels = default_channels(NotifySettings())
    telegram = channels["telegram"]
    assert isinstance(telegram, TelegramChannel) and telegram.token == "123:abc"
    await telegram.http.aclose()


def test_backtests_read_recorded_candles_from_the_configured_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert candles_dir(BacktestSettings()) == ROOT / "data" / "candles"
    monkeypatch.setenv("TRADEFLEET_CANDLES_DIR", str(tmp_path))
    assert candles_dir(BacktestSettings()) == tmp_path
    monkeypatch.setenv("TRADEFLEET_CANDLES_DIR", "data")
    assert candles_dir(BacktestSettings()) == ROOT / "data"


def test_holdings_without_master_keys_still_price(monkeypatch: pytest.MonkeyPatch) -> None:
    deps = HoldingsDeps.from_settings(HoldingsSettings())  # no TRADEFLEET_MASTER_KEYS
    assert deps.keyring is None and sorted(deps.providers) == ["alpaca"]


def test_parts_off_name_what_is_missing_and_what_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    off = {p.part: p for p in parts_off(HoldingsSettings(), NotifySettings())}
    assert sorted(off) == ["Alpaca market data", "SnapTrade", "Telegram", "master keys"]
    assert off["master keys"].periodic == ("holdings.nightly",)
    assert off["SnapTrade"].message.startswith(
        "SnapTrade is off: SNAPTRADE_CLIENT_ID and SNAPTRADE_CONSUMER_KEY are not set, so "
    )
    monkeypatch.setenv("TRADEFLEET_MASTER_KEYS", f"k1:{KEY}")
    monkeypatch.setenv("SNAPTRADE_CLIENT_ID", "partner")
    monkeypatch.setenv("SNAPTRADE_CONSUMER_KEY", " ")  # blank counts as missing
    monkeypatch.setenv("ALPACA_DATA_KEY_ID", "key-id")
    monkeypatch.setenv("ALPACA_DATA_SECRET", "data-secret")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    off = {p.part: p for p in parts_off(HoldingsSettings(), NotifySettings())}
    assert list(off) == ["SnapTrade"] and off["SnapTrade"].missing == ("SNAPTRADE_CONSUMER_KEY",)
    assert "SNAPTRADE_CONSUMER_KEY is not set" in off["SnapTrade"].message
