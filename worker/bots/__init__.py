"""Bots: the engine that trades every running bot the worker leases, paper or live.

``register(registry, settings)`` adds the bot runner to a worker (``tradefleet worker``).
Where candles come from is set by :class:`BotsSettings`: by default the exchanges' public
APIs under the wall clock; with ``TRADEFLEET_REPLAY_DIR`` and ``TRADEFLEET_REPLAY_START``
(and ``TRADEFLEET_REPLAY_SPEED``, ``TRADEFLEET_REPLAY_ANCHOR``) recorded candles replayed
at any speed. ``TRADEFLEET_MASTER_KEYS`` opens sealed exchange keys for live bots.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .settings import BotsSettings

if TYPE_CHECKING:
    from worker.candles.sources import OhlcvClient
    from worker.fleet.registry import Registry

log = logging.getLogger("tradefleet.bots")

__all__ = ["BotsSettings", "register", "run_bots"]


def register(registry: Registry, settings: BotsSettings | None = None) -> None:
    """Run leased bots in this worker, and keep the markets cache filled (daily)."""
    from datetime import timedelta

    from worker.fleet.registry import JobContext

    from .market_catalog import REFRESH_KIND, RefreshMarkets, public_client, refresh_markets

    config = settings if settings is not None else BotsSettings()

    async def task(leases: Any) -> None:
        await run_bots(leases, config)

    async def refresh(ctx: JobContext[RefreshMarkets]) -> object:
        if not markets_refresh_on(config):
            return {"skipped": "markets refresh is off (TRADEFLEET_MARKETS_REFRESH)"}
        exchanges = None if ctx.payload.exchange is None else [ctx.payload.exchange]
        return await refresh_markets(
            ctx.pool, public_client, exchanges, min_interval_s=ctx.payload.min_interval_s
        )

    registry.lease_task("bots.runner", task)
    registry.job(REFRESH_KIND, payload=RefreshMarkets, max_attempts=3, timeout_s=600)(refresh)
    registry.every(REFRESH_KIND, timedelta(days=1), REFRESH_KIND, {"min_interval_s": 3600})


def markets_refresh_on(settings: BotsSettings) -> bool:
    """Whether this worker refreshes markets from the exchanges (default: unless replaying)."""
    explicit = settings.exchanges.tradefleet_markets_refresh
    return explicit if explicit is not None else settings.tradefleet_replay_dir is None


async def run_bots(leases: Any, settings: BotsSettings) -> None:
    """The lease task: build the runner from the settings and run it until cancelled."""
    from worker.candles import CandleSource, ExchangeSource, MarketData, ReplaySource
    from worker.errors import Fatal
    from worker.fleet.collector import Collector
    from worker.sealing import Keyring

    from .clock import Clock, ReplayClock, WallClock
    from .lanes import LiveLanes
    from .market_catalog import MarketCatalog, public_client
    from .runner import BotRunner

    replay = ReplayClock.from_settings(settings)
    clock: Clock
    source: CandleSource
    if replay is not None and settings.tradefleet_replay_dir is not None:
        clock, source = replay, ReplaySource(settings.tradefleet_replay_dir)
        settle = 0.0
    else:
        clock, source, settle = WallClock(), ExchangeSource(connect=_public_client), 2.0
    keyring: Keyring | None = None
    if settings.sealing.configured:
        try:
            keyring = settings.sealing.keyring()
        except Fatal as e:
            log.error(
                "master keys unusable, live bots will stop with an error",
                extra={"action": "keyring_failed", "error": str(e)},
            )
    market_data = MarketData(source, leases.pool)
    runner = BotRunner(
        leases.pool,
        leases,
        clock,
        market_data,
        keyring=keyring,
        settle_s=settle,
        markets_dir=settings.exchanges.tradefleet_markets_dir,
        live_exchange=redirected_exchanges(settings.exchanges.exchange_urls),
        lanes=LiveLanes(settings.tradefleet_live_concurrency, settings.tradefleet_live_per_account),
        collector=Collector(),
    )
    catalog = MarketCatalog(
        leases.pool,
        public_client if markets_refresh_on(settings) else None,
        settings.exchanges.tradefleet_markets_refresh_min_s,
        settings.exchanges.tradefleet_markets_dir,
    )
    runner.builder.catalog = catalog
    watcher = asyncio.create_task(catalog.watch(), name="bots.markets_cache")
    try:
        await runner.run()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await source_close(source)


def redirected_exchanges(urls: dict[str, str]) -> Any:
    """With ``TRADEFLEET_EXCHANGE_URLS``: open live bots' exchanges at those base URLs (local
    fakes, without ccxt's client-side throttle); otherwise None (the real exchanges)."""
    if not urls:
        return None
    from .adoption import open_live_exchange

    def open_exchange(cfg: Any, credentials: Any, testnet: bool) -> Any:
        url = urls.get(cfg.exchange)
        if url is None:
            return open_live_exchange(cfg, credentials, testnet)
        return open_live_exchange(
            cfg, credentials, testnet, api_base_url=url, enable_rate_limit=False
        )

    return open_exchange


def _public_client(exchange_id: str) -> OhlcvClient:
    """A public (keyless) ccxt client; ccxt is loaded only when candles come from exchanges."""
    from worker.exchanges.live import LiveExchange

    return LiveExchange(exchange_id)


async def source_close(source: object) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        await close()
