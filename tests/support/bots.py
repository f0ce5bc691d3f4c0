"""Helpers for bot tests: bots created as their owner would (PostgREST), a registered
worker with its lease manager, and a runner over replayed candles stepped by the test."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.support.db import User, request_as
from worker.bots.clock import SteppedClock
from worker.bots.runner import BotRunner
from worker.candles import MarketData, ReplaySource
from worker.db import open_pool
from worker.fleet.leases import LeaseManager

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"
START = datetime(2018, 1, 12, 0, 0, tzinfo=UTC)
FIVE_MIN = timedelta(minutes=5)


async def create_bot(
    conn: psycopg.AsyncConnection[Any], user: User, *, aal: str | None = None, **fields: Any
) -> str:
    """Insert a bot exactly as the app would through PostgREST; returns its id."""
    row: dict[str, Any] = {
        "name": "test bot",
        "exchange": "binance",
        "trading_pair": "ETH/BTC",
        "timeframe": "5m",
        "strategy": "sma_cross",
        "parameters": {"fast": 3, "slow": 8},
        "status": "running",
        "initial_balance": "1.0",
        "stake_amount": "0.1",
        "is_paper_trade": True,
    }
    row.update(fields)
    values = [json.dumps(v) if isinstance(v, dict) else v for v in row.values()]
    query = sql.SQL("insert into public.bots ({}) values ({}) returning id").format(
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
    )
    async with request_as(conn, user, aal=aal) as cur:
        await cur.execute(query, values)
        got = await cur.fetchone()
    assert got is not None
    return str(got["id"])


async def grant_credits(conn: psycopg.AsyncConnection[Any], user: User, amount: str) -> None:
    async with request_as(conn, "service_role") as cur:
        await cur.execute(
            "select public.credit_create_transfer(%s, (select id from public.credit_accounts where code = 'system:grants'),"
            " (select id from public.credit_accounts where user_id = %s and kind = 'user'), %s, 'grant')",
            (uuid.uuid4(), user.id, Decimal(amount)),
        )


async def bot_status(conn: psycopg.AsyncConnection[Any], bot: Any) -> tuple[str | None, str | None]:
    """The bot's status and error message (both None when it is gone)."""
    cur = await conn.execute("select status, error_message from bots where id = %s", (bot,))
    row = await cur.fetchone()
    return (None, None) if row is None else (row[0], row[1])


async def register_worker(
    conn: psycopg.AsyncConnection[Any], name: str = "test", capacity: int = 10000
) -> str:
    cur = await conn.execute(
        "select public.register_worker(%s, 'localhost', 1, 'test', '{default}', %s, '{\"leases\": true}')::text",
        (name, capacity),
    )
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


@dataclass
class Harness:
    runner: BotRunner
    leases: LeaseManager
    clock: SteppedClock
    now: datetime

    async def sync(self) -> None:
        await self.leases.sync()
        await self.runner.adopt(dict(self.leases.owned))

    async def candles(self, n: int) -> None:
        """Let ``n`` more 5m candles close, each fully processed before the next."""
        for _ in range(n):
            self.now += FIVE_MIN
            await self.clock.advance_to(self.now)
            await self.runner.process_close(self.now)


@asynccontextmanager
async def harness(
    db_url: str,
    worker_id: str,
    start: datetime = START,
    *,
    candles: Path = CANDLES,
    **runner_options: Any,
) -> AsyncIterator[Harness]:
    pool = await open_pool(db_url, max_size=4)
    leases = LeaseManager(pool, worker_id, ttl_s=30)
    clock = SteppedClock(start)
    runner = BotRunner(
        pool, leases, clock, MarketData(ReplaySource(candles), pool), **runner_options
    )
    try:
        yield Harness(runner, leases, clock, start)
    finally:
        await runner.close()
        await pool.close()


async def subscribe(
    conn: psycopg.AsyncConnection[Any],
    user: User,
    *,
    max_bots: int = 20000,
    credits_per_trade: str = "0.2",
    live_trading: bool = True,
) -> None:
    """Put ``user`` on a plan with room for many bots (the Free plan allows two)."""
    plan = f"Fleet test {max_bots}"
    await conn.execute(
        "insert into public.plans (name, price_monthly, max_bots, max_strategies, live_trading, features) "
        "values (%s, 0, %s, 10, %s, %s) on conflict (name) do nothing",
        (plan, max_bots, live_trading, json.dumps({"credits_per_trade": float(credits_per_trade)})),
    )
    await conn.execute(
        "update public.subscriptions set plan_id = (select id from public.plans where name = %s), "
        "status = 'active', expires_at = now() + interval '30 days' where user_id = %s",
        (plan, user.id),
    )
    await conn.execute(
        "insert into public.subscriptions (user_id, plan_id, status, expires_at) "
        "select %s, id, 'active', now() + interval '30 days' from public.plans where name = %s "
        "and not exists (select 1 from public.subscriptions where user_id = %s)",
        (user.id, plan, user.id),
    )
