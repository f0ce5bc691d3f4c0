"""A SnapTrade account on a mocked SnapTrade API (respx), its webhooks as snaptrade-webhook
stores them, and the holdings jobs they queue, run the way the fleet would."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import respx
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.support.db import User, request_as
from worker.fleet.registry import Job, Registry
from worker.holdings import HoldingsDeps, register
from worker.holdings.alpaca import Quote
from worker.holdings.provider import HoldingsProvider
from worker.holdings.snaptrade import SnapTradeClient, SnapTradeConfig
from worker.sealing import Keyring

BASE = "https://api.snaptrade.test/api/v1"
KEYRING = Keyring({"k1": base64.b64decode(base64.b64encode(os.urandom(32)))})
AUTH = "auth-1"


async def no_sleep(_: float) -> None:
    return None


class FakeQuotes:
    name = "fake"

    def __init__(self, prices: dict[str, tuple[str, str]]) -> None:
        self.prices = prices

    async def quotes(self, symbols: Sequence[str]) -> list[Quote]:
        now = datetime.now(UTC)
        return [
            Quote(s, Decimal(p), Decimal(c), now)
            for s, (p, c) in self.prices.items()
            if s in symbols
        ]


def holdings_registry() -> Registry:
    """The holdings job kinds over a SnapTrade client of the (mocked) API above."""
    snaptrade = SnapTradeClient(
        SnapTradeConfig("TRADEFLEET", "consumer-key", BASE),
        http=httpx.AsyncClient(),
        sleep=no_sleep,
        attempts=2,
    )
    providers: dict[str, HoldingsProvider] = {"snaptrade": snaptrade}
    reg = Registry()
    register(
        reg,
        HoldingsDeps(
            keyring=KEYRING,
            providers=providers,
            snaptrade=snaptrade,
            quotes=FakeQuotes({"AAPL": ("200", "190"), "MSFT": ("400", "400")}),
        ),
    )
    return reg


async def run_jobs(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, reg: Registry
) -> list[dict[str, Any]]:
    """Run queued holdings jobs the way the fleet would, until none is left."""
    done: list[dict[str, Any]] = []
    while True:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "select id, queue, kind, payload, attempts, max_attempts from jobs "
                "where status = 'queued' and kind like 'holdings.%%' order by id limit 1"
            )
            row = await cur.fetchone()
        if row is None:
            return done
        ctx = reg.context(Job(**row), pool, "test")
        try:
            result = await reg.kinds[row["kind"]].handler(ctx)
            status = "succeeded"
        except Exception as e:  # the fleet records failures; tests look at what users see
            result, status = {"error": str(e)}, "dead"
        await conn.execute(
            "update jobs set status = %s, result = %s where id = %s",
            (status, json.dumps(result), row["id"]),
        )
        done.append({"kind": row["kind"], "status": status, "result": result})


async def link(conn: psycopg.AsyncConnection[Any], user: User) -> None:
    """What brokerage-connect leaves behind: a pending row with the sealed SnapTrade secret."""
    await conn.execute(
        "insert into brokerage_connections (user_id, provider, provider_user_id, sealed_user_secret, status) "
        "values (%s, 'snaptrade', %s, %s, 'pending')",
        (user.id, str(user.id), KEYRING.seal_bytes(f"secret-{user.id}".encode())),
    )


async def webhook(
    conn: psycopg.AsyncConnection[Any],
    user: User,
    event_type: str,
    at: datetime | None = None,
    webhook_id: str | None = None,
    **fields: str,
) -> str:
    """What snaptrade-webhook stores of a SnapTrade webhook (its documented shape) that
    happened ``at`` (default now); returns its webhook id."""
    at = at or datetime.now(UTC)
    payload = {
        "webhookId": webhook_id or str(uuid.uuid4()),
        "eventType": event_type,
        "userId": str(user.id),
        "eventTimestamp": at.isoformat(),
        **fields,
    }
    await conn.execute(
        "insert into webhook_events (provider, event_id, event_type, payload, occurred_at) "
        "values ('snaptrade', %s, %s, %s, %s)",
        (payload["webhookId"], event_type, json.dumps(payload), at),
    )
    return str(payload["webhookId"])


def account(acc_id: str, auth: str = AUTH) -> dict[str, Any]:
    return {
        "id": acc_id,
        "brokerage_authorization": auth,
        "name": f"Account {acc_id}",
        "number": "12345678",
        "institution_name": "Robinhood",
        "created_date": "2024-07-23T22:50:22Z",
        "sync_status": {},
        "balance": {"total": {"amount": 1000, "currency": "USD"}},
        "is_paper": False,
    }


def positions(as_of: datetime, *items: tuple[str, str, str | None, str | None]) -> dict[str, Any]:
    return {
        "results": [
            {
                "instrument": {"kind": "stock", "id": sym, "symbol": sym, "raw_symbol": sym},
                "units": units,
                "price": price,
                "cost_basis": cost,
                "currency": "USD",
            }
            for sym, units, price, cost in items
        ],
        "data_freshness": {"as_of": as_of.isoformat()},
    }


def no_balances() -> None:
    """Full syncs ask for each SnapTrade account's balances (its cash); here none is reported."""
    respx.get(url__regex=rf"{BASE}/accounts/[^/]+/balances").mock(
        return_value=httpx.Response(200, json=[])
    )


async def holdings_of(conn: psycopg.AsyncConnection[Any], user: User) -> dict[str, dict[str, Any]]:
    async with request_as(conn, user) as cur:
        await cur.execute(
            "select symbol, total_units, average_cost, market_value, account_count "
            "from aggregated_holdings order by symbol"
        )
        return {r["symbol"]: r for r in await cur.fetchall()}
