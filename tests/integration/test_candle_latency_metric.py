"""The runner reports, per candle close, how long after the close the bots' steps were
stored: the histogram /metrics serves as tradefleet_candle_close_to_persisted_seconds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from tests.support.bots import FIVE_MIN, create_bot, grant_credits, harness, register_worker
from tests.support.db import User
from worker.fleet.metrics import METRICS

NAME = "tradefleet_candle_close_to_persisted_seconds"


def observed() -> tuple[float, float]:
    count = METRICS.registry.get_sample_value(f"{NAME}_count") or 0.0
    total = METRICS.registry.get_sample_value(f"{NAME}_sum") or 0.0
    return count, total


async def test_each_close_with_bots_is_observed_with_its_lateness(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "10")
    await create_bot(conn, alice)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(1)  # the first close loads the market's history
        count, total = observed()
        for lateness_s in (3, 7):
            h.now += FIVE_MIN
            # The bots' clock is already past the close when the runner gets to it.
            await h.clock.advance_to(h.now + timedelta(seconds=lateness_s))
            await h.runner.process_close(h.now)
        assert observed() == (count + 2, total + 10)
