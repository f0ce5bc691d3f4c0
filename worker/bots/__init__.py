"""Bots: the engine that trades every running bot the worker leases, paper or live.

``register(registry)`` adds the bot runner to a worker (``tradefleet worker``). Where
candles come from is set by the environment: by default the exchanges' public APIs under
the wall clock; with ``TRADEFLEET_REPLAY_DIR`` and ``TRADEFLEET_REPLAY_START`` (and
``TRADEFLEET_REPLAY_SPEED``, ``TRADEFLEET_REPLAY_ANCHOR``) recorded candles replayed at
any speed. ``TRADEFLEET_MASTER_KEYS`` opens sealed exchange keys for live bots.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.fleet.registry import Registry

log = logging.getLogger("tradefleet.bots")


def register(registry: Registry) -> None:
    """Run leased bots in this worker."""
    registry.lease_task("bots.runner", run_bots)


async def run_bots(leases: Any) -> None:
    """The lease task: build the runner from the environment and run it until cancelled."""
    from worker.errors import Fatal
    from worker.exchanges import Keyring
    from worker.exchanges.keys import MASTER_KEYS_ENV

    from .clock import REPLAY_DIR_ENV, Clock, ReplayClock, WallClock
    from .market_data import CandleSource, LazyExchangeSource, MarketData, ReplaySource
    from .runner import BotRunner

    replay = ReplayClock.from_env()
    clock: Clock
    source: CandleSource
    if replay is not None:
        clock, source = replay, ReplaySource(os.environ[REPLAY_DIR_ENV])
        settle = 0.0
    else:
        clock, source, settle = WallClock(), LazyExchangeSource(), 2.0
    keyring = None
    if os.environ.get(MASTER_KEYS_ENV):
        try:
            keyring = Keyring.from_env()
        except Fatal as e:
            log.error(
                "master keys unusable, live bots will stop with an error",
                extra={"action": "keyring_failed", "error": str(e)},
            )
    market_data = MarketData(source, leases.pool)
    runner = BotRunner(leases.pool, leases, clock, market_data, keyring=keyring, settle_s=settle)
    try:
        await runner.run()
    finally:
        await source_close(source)


async def source_close(source: object) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        await close()
