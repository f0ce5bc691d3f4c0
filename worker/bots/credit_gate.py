"""The credit ledger as the bot engine sees it: hold credits before an entry order, post
the hold when it fills, void it otherwise.

This is the one seam between bots and credits, and it goes through ``worker.credits``'
typed API: holds of a candle's entries in one batch, posts and voids as batch elements
written with the step's decisions (in their transaction). Prices come from the user's plan
(``plans.features.credits_per_trade``, through ``public.bot_trade_prices``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg_pool import AsyncConnectionPool

from worker import credits
from worker.credits import TransferRequest

PRICES = """
select user_id::text, credits_per_trade, account_id::text, live_trading
  from public.bot_trade_prices(%(user_ids)s::uuid[])
"""
HOLD_TIMEOUT = timedelta(hours=1)


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


def hold_id(client_order_id: str) -> uuid.UUID:
    """The id of the hold for an entry order's trade price."""
    return credits.order_transfer_id(client_order_id, "hold")


def post(client_order_id: str, hold: uuid.UUID | str) -> TransferRequest:
    """Charge the held price: the order filled."""
    return TransferRequest.post(
        id=credits.order_transfer_id(client_order_id, "post"), pending_id=uuid.UUID(str(hold))
    )


def void(client_order_id: str, hold: uuid.UUID | str) -> TransferRequest:
    """Release the held price: the order did not fill (or was never placed)."""
    return TransferRequest.void(
        id=credits.order_transfer_id(client_order_id, "void"), pending_id=uuid.UUID(str(hold))
    )


class CreditGate:
    """Batch holds for entry orders; posts and voids ride along with the decisions."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.terms: dict[str, PlanTerms] = {}
        self._usage_account: uuid.UUID | None = None

    async def load_terms(self, user_ids: Iterable[str]) -> None:
        """Read (or refresh) the plan terms of these users."""
        ids = sorted(set(user_ids))
        if not ids:
            return
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(PRICES, {"user_ids": ids})).fetchall()
            if self._usage_account is None:
                self._usage_account = await credits.system_account(conn, "system:usage")
        for user_id, price, account, live in rows:
            self.terms[str(user_id)] = PlanTerms(Decimal(price or 0), account, bool(live))

    async def hold(
        self, requests: Sequence[HoldRequest]
    ) -> list[uuid.UUID | Literal[False] | None]:
        """Hold one trade's price for each request. Per request: the hold id, ``None`` when
        the plan charges nothing, or ``False`` when the user lacks credits."""
        results: list[uuid.UUID | Literal[False] | None] = []
        batch: list[TransferRequest] = []
        where: list[int] = []
        for i, r in enumerate(requests):
            t = self.terms.get(r.user_id)
            if t is None or t.credits_per_trade <= 0:
                results.append(None)
                continue
            if t.account_id is None or self._usage_account is None:
                results.append(False)
                continue
            held = hold_id(r.client_order_id)
            results.append(held)
            where.append(i)
            batch.append(
                TransferRequest.hold(
                    id=held,
                    debit_account_id=uuid.UUID(t.account_id),
                    credit_account_id=self._usage_account,
                    amount=t.credits_per_trade,
                    kind="usage",
                    expires_after=HOLD_TIMEOUT,
                    reference_type="order",
                    reference_id=r.client_order_id,
                    metadata={"bot_id": r.bot_id, "usage": "trade"},
                )
            )
        for outcome in await credits.create_transfers(self.pool, batch):
            if not outcome.accepted:
                results[where[outcome.index]] = False
        return results

    @staticmethod
    async def settle(
        conn: psycopg.AsyncConnection[Any], requests: Sequence[TransferRequest]
    ) -> None:
        """Post or void holds, inside the caller's transaction (with the decisions); a hold
        resolved meanwhile (expired, voided) is left as it is."""
        await credits.create_transfers(conn, requests)
