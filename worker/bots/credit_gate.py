"""The credit ledger as the bot engine sees it: hold credits before an entry order, post
the hold when it fills, void it otherwise.

This is the one seam between bots and credits, and it goes through ``worker.credits``'
typed API: holds of a candle's entries in one batch, posts and voids as batch elements
written with the step's decisions (in their transaction). Prices come from the user's plan
(``plans.features.credits_per_trade``, through ``public.bot_trade_prices``).

Holds are fenced by the lease epoch: the batch is placed in one transaction that first
locks the bots' leases (``public.bot_fence_holds``), so a worker that lost a bot holds
nothing for it. A hold records the candle that decided it (``metadata.decided_at``); one
whose order never happened is voided by the bot's next worker when it adopts the bot
(``public.bot_orphan_holds``, ``void_orphans``). A manual trade's hold names its request
(``metadata.request_id``) and is no orphan while that request is pending or working: the
request's next attempt places that order and charges that hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg_pool import AsyncConnectionPool

from worker import credits
from worker.credits import TransferRequest
from worker.db import jsonb

PRICES = """
select user_id::text, credits_per_trade, account_id::text, live_trading
  from public.bot_trade_prices(%(user_ids)s::uuid[])
"""
FENCE = "select stale_bot_id::text from public.bot_fence_holds(%(bots)s)"
ORPHANS = """
select bot_id::text, hold_id::text, client_order_id from public.bot_orphan_holds(%(bots)s)
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
    epoch: int
    decided_at: datetime  # open time of the candle whose close decided the entry
    request_id: str | None = None  # the owner's request (a manual trade) the entry serves


@dataclass(slots=True)
class Holds:
    """Per request: the hold id, ``None`` when the plan charges nothing, or ``False`` when
    the user lacks credits (or the bot's lease is stale: its id is then in ``stale``)."""

    results: list[uuid.UUID | Literal[False] | None]
    stale: set[str] = field(default_factory=set)


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

    async def hold(self, requests: Sequence[HoldRequest]) -> Holds:
        """Hold one trade's price for each request, in one transaction fenced by the
        requests' lease epochs."""
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
                    metadata={
                        "bot_id": r.bot_id,
                        "usage": "trade",
                        "decided_at": r.decided_at.isoformat(),
                        **({"request_id": r.request_id} if r.request_id else {}),
                    },
                )
            )
        if not batch:
            return Holds(results)
        fence = sorted({(requests[i].bot_id, requests[i].epoch) for i in where})
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                FENCE, {"bots": jsonb([{"bot_id": b, "epoch": e} for b, e in fence])}
            )
            stale = {str(r[0]) for r in await cur.fetchall()}
            keep = [k for k, i in enumerate(where) if requests[i].bot_id not in stale]
            for outcome in await credits.create_transfers(conn, [batch[k] for k in keep]):
                if not outcome.accepted:
                    results[where[keep[outcome.index]]] = False
        for i in where:
            if requests[i].bot_id in stale:
                results[i] = False
        return Holds(results, stale)

    @staticmethod
    async def void_orphans(pool: AsyncConnectionPool, bots: dict[str, int]) -> int:
        """Void the pending holds of these bots (id -> lease epoch) whose order never
        happened and never will (the bot's committed progress is past their candle); fenced
        by the epochs, in one transaction. Returns how many were voided."""
        if not bots:
            return 0
        arg = jsonb([{"bot_id": b, "epoch": e} for b, e in sorted(bots.items())])
        async with pool.connection() as conn, conn.transaction():
            rows = await (await conn.execute(ORPHANS, {"bots": arg})).fetchall()
            outcomes = await credits.create_transfers(
                conn, [void(str(cid), str(hold)) for _bot, hold, cid in rows]
            )
        return sum(1 for o in outcomes if o.accepted)

    @staticmethod
    async def settle(
        conn: psycopg.AsyncConnection[Any], requests: Sequence[TransferRequest]
    ) -> None:
        """Post or void holds, inside the caller's transaction (with the decisions); a hold
        resolved meanwhile (expired, voided) is left as it is."""
        await credits.create_transfers(conn, requests)
