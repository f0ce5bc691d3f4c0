"""The credit ledger as the bot engine sees it: hold credits before an entry order, post
the hold when it fills, void it otherwise.

This is the one seam between bots and credits. It speaks to the ledger's own SQL
functions (``public.credit_create_transfers``, batch and idempotent by transfer id), the
way capabilities talk to each other through the database; prices come from the user's
plan (``plans.features.credits_per_trade``, through ``public.bot_trade_prices``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from .model import derived_id

PRICES = """
select user_id::text, credits_per_trade, account_id::text, live_trading
  from public.bot_trade_prices(%(user_ids)s::uuid[])
"""
USAGE_ACCOUNT = "select id::text from public.credit_accounts where code = 'system:usage'"
TRANSFERS = "select idx, result from public.credit_create_transfers(%(transfers)s)"
HOLD_TIMEOUT_S = 3600


@dataclass(frozen=True, slots=True)
class PlanTerms:
    credits_per_trade: Decimal
    account_id: str | None
    live_trading: bool


@dataclass(frozen=True, slots=True)
class HoldRequest:
    user_id: str
    bot_id: str
    client_order_id: str


class CreditGate:
    """Batch holds for entry orders; posts and voids ride along with the decisions."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.terms: dict[str, PlanTerms] = {}
        self._usage_account: str | None = None

    async def load_terms(self, user_ids: Iterable[str]) -> None:
        """Read (or refresh) the plan terms of these users."""
        ids = sorted(set(user_ids))
        if not ids:
            return
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(PRICES, {"user_ids": ids})).fetchall()
            if self._usage_account is None:
                row = await (await conn.execute(USAGE_ACCOUNT)).fetchone()
                self._usage_account = None if row is None else str(row[0])
        for user_id, price, account, live in rows:
            self.terms[str(user_id)] = PlanTerms(Decimal(price or 0), account, bool(live))

    async def hold(self, requests: Sequence[HoldRequest]) -> list[str | bool | None]:
        """Hold one trade's price for each request. Per request: the hold id, ``None`` when
        the plan charges nothing, or ``False`` when the user lacks credits."""
        results: list[str | bool | None] = []
        batch: list[dict[str, Any]] = []
        where: list[int] = []
        for i, r in enumerate(requests):
            t = self.terms.get(r.user_id)
            if t is None or t.credits_per_trade <= 0:
                results.append(None)
                continue
            if t.account_id is None or self._usage_account is None:
                results.append(False)
                continue
            hold_id = str(derived_id(r.client_order_id, "hold"))
            results.append(hold_id)
            where.append(i)
            batch.append(
                {
                    "action": "hold",
                    "id": hold_id,
                    "debit_account_id": t.account_id,
                    "credit_account_id": self._usage_account,
                    "amount": str(t.credits_per_trade),
                    "kind": "usage",
                    "timeout_seconds": HOLD_TIMEOUT_S,
                    "reference_type": "order",
                    "reference_id": r.client_order_id,
                    "metadata": {"bot_id": r.bot_id, "usage": "trade"},
                }
            )
        if batch:
            async with self.pool.connection() as conn:
                rows = await (await conn.execute(TRANSFERS, {"transfers": Jsonb(batch)})).fetchall()
            for idx, result in rows:
                if result not in ("ok", "exists"):
                    results[where[int(idx)]] = False
        return results

    @staticmethod
    async def settle(conn: psycopg.AsyncConnection[Any], ops: Sequence[dict[str, Any]]) -> None:
        """Post or void holds, inside the caller's transaction (with the decisions)."""
        if ops:
            await conn.execute(TRANSFERS, {"transfers": Jsonb(json.loads(json.dumps(list(ops))))})
