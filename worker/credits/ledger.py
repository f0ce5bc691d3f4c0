"""The credit ledger as other capabilities use it: hold → post/void, usage, grants, batches.

Every function is a thin call of one ledger function in Postgres (where the rules live:
``supabase/migrations/*_credit_ledger.sql`` and ``*_credit_flows.sql``); this module only types the calls,
keeps amounts ``Decimal`` and translates errors (see ``worker.credits.errors``).

Ids are the idempotency keys: derive them from what the transfer stands for (a job, a
trade, an invoice) — ``transfer_id("trade", trade_id)`` — and a retried call returns the
transfer the first call made instead of charging twice.

``db`` is a pool (each call takes a connection and commits on its own) or a connection
(the call joins the caller's transaction: a rejection then aborts that transaction).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker.credits.errors import translate
from worker.db import jsonb
from worker.errors import Bug

Db = AsyncConnectionPool | psycopg.AsyncConnection[Any]
Kind = Literal["grant", "purchase", "usage", "revenue_share", "payout", "refund", "correction"]
Usage = Literal["trade", "backtest_second", "ai_request"]
Action = Literal["transfer", "hold", "post", "void", "usage"]

_NAMESPACE = uuid.UUID("6f1d1c2e-3c1a-4f3e-9a51-7c2d2b9e4a10")
_ORDER_NAMESPACE = uuid.UUID("6f1d1e7e-3b1c-4c55-9d1a-7b0f1f3a7c11")

TRANSFER = """
select * from public.credit_create_transfer(
  %(id)s, %(debit_account_id)s, %(credit_account_id)s, %(amount)s, %(kind)s,
  %(reference_type)s, %(reference_id)s, %(metadata)s, false, null)
"""
HOLD = """
select * from public.credit_hold(
  %(id)s, %(debit_account_id)s, %(credit_account_id)s, %(amount)s, %(kind)s, %(timeout)s,
  %(reference_type)s, %(reference_id)s, %(metadata)s)
"""
HOLD_USAGE = """
select * from public.credit_hold_usage(
  %(id)s, %(user_id)s, %(usage)s, %(quantity)s, %(timeout)s, %(reference_type)s, %(reference_id)s, %(metadata)s)
"""
POST = "select * from public.credit_post(%(id)s, %(pending_id)s, %(amount)s, %(metadata)s)"
VOID = "select * from public.credit_void(%(id)s, %(pending_id)s, %(metadata)s)"
CHARGE_USAGE = """
select * from public.credit_charge_usage(
  %(id)s, %(user_id)s, %(usage)s, %(quantity)s, %(reference_type)s, %(reference_id)s, %(metadata)s)
"""
GRANT = """
select * from public.credit_grant(
  %(id)s, %(user_id)s, %(amount)s, %(reference_type)s, %(reference_id)s, %(metadata)s)
"""
QUOTE = "select public.credit_quote(%(user_id)s, %(usage)s, %(quantity)s) as amount"
BATCH = "select idx, id, result from public.credit_create_transfers(%(transfers)s) order by idx"
EXPIRE_HOLDS = "select public.credit_expire_holds(%(limit)s) as voided"
GRANT_MONTHLY_ALL = "select result, transfers from public.credit_grant_monthly_all(%(limit)s)"
USER_ACCOUNTS = """
select u.email, a.balance, a.debits_pending as held,
       (select coalesce(sum(t.amount), 0) from public.credit_transfers t
         where t.debit_account_id = a.id and t.kind = 'usage' and t.phase = 'post_pending') as spent
  from public.credit_accounts a join auth.users u on u.id = a.user_id
 where a.kind = 'user' order by u.email
"""
SYSTEM_ACCOUNT = "select id from public.credit_accounts where code = %(code)s"
BALANCE = """
select a.id as account_id, a.balance, a.debits_pending as held,
       a.credits_posted - a.debits_posted - a.debits_pending as available
  from public.credit_accounts a
 where a.user_id = %(user_id)s and a.kind = %(kind)s
"""


def transfer_id(*parts: object) -> uuid.UUID:
    """A deterministic transfer id for what a transfer stands for, e.g. ("trade", trade_id)."""
    return uuid.uuid5(_NAMESPACE, ":".join(str(p) for p in parts))


def order_transfer_id(client_order_id: str, phase: Literal["hold", "post", "void"]) -> uuid.UUID:
    """The id of the hold of an order's price, or of its post or void, from the order's
    client id.

    Derived exactly as bots have derived them since their first hold (their namespace,
    ``<client order id>/<phase>``), so a hold made before keeps matching its post or void.
    """
    return uuid.uuid5(_ORDER_NAMESPACE, f"{client_order_id}/{phase}")


@dataclass(frozen=True)
class Transfer:
    """One immutable row of ``credit_transfers``."""

    id: uuid.UUID
    debit_account_id: uuid.UUID
    credit_account_id: uuid.UUID
    amount: Decimal
    kind: str
    phase: str
    pending_id: uuid.UUID | None
    timeout_at: datetime | None
    reference_type: str | None
    reference_id: str | None
    metadata: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Transfer:
        return cls(
            id=row["id"],
            debit_account_id=row["debit_account_id"],
            credit_account_id=row["credit_account_id"],
            amount=Decimal(row["amount"]),
            kind=row["kind"],
            phase=row["phase"],
            pending_id=row["pending_id"],
            timeout_at=row["timeout_at"],
            reference_type=row["reference_type"],
            reference_id=row["reference_id"],
            metadata=dict(row["metadata"] or {}),
            created_at=row["created_at"],
        )


@dataclass(frozen=True)
class Balance:
    account_id: uuid.UUID
    balance: Decimal
    held: Decimal
    available: Decimal


@dataclass(frozen=True)
class UserAccount:
    """A user's account for operators: posted balance, held, and spent on usage."""

    email: str
    balance: Decimal
    held: Decimal
    spent: Decimal


@dataclass(frozen=True)
class TransferRequest:
    """One element of a batch (see ``create_transfers``)."""

    action: Action
    id: uuid.UUID
    debit_account_id: uuid.UUID | None = None
    credit_account_id: uuid.UUID | None = None
    amount: Decimal | None = None
    kind: Kind | None = None
    pending_id: uuid.UUID | None = None
    expires_after: timedelta | None = None
    user_id: uuid.UUID | None = None
    usage: Usage | None = None
    quantity: Decimal | None = None
    reference_type: str | None = None
    reference_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def hold(
        cls,
        *,
        id: uuid.UUID,
        debit_account_id: uuid.UUID,
        credit_account_id: uuid.UUID,
        amount: Decimal,
        kind: Kind = "usage",
        expires_after: timedelta = timedelta(minutes=15),
        reference_type: str | None = None,
        reference_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TransferRequest:
        """Reserve ``amount`` (see :func:`hold`), as one element of a batch."""
        return cls(
            "hold",
            id,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=amount,
            kind=kind,
            expires_after=expires_after,
            reference_type=reference_type,
            reference_id=reference_id,
            metadata=dict(metadata or {}),
        )

    @classmethod
    def post(
        cls, *, id: uuid.UUID, pending_id: uuid.UUID, amount: Decimal | None = None
    ) -> TransferRequest:
        """Settle a hold (see :func:`post`), as one element of a batch."""
        return cls("post", id, pending_id=pending_id, amount=amount)

    @classmethod
    def void(cls, *, id: uuid.UUID, pending_id: uuid.UUID) -> TransferRequest:
        """Cancel a hold (see :func:`void`), as one element of a batch."""
        return cls("void", id, pending_id=pending_id)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "id": str(self.id)}
        for name in ("debit_account_id", "credit_account_id", "pending_id", "user_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        for name in ("amount", "quantity"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)  # exact: JSON numbers would go through float
        for name in ("kind", "usage", "reference_type", "reference_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.expires_after is not None:
            out["timeout_seconds"] = self.expires_after.total_seconds()
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


@dataclass(frozen=True)
class TransferResult:
    """How the ledger answered one batch element: ``result`` is 'ok', 'exists' or why not."""

    index: int
    id: uuid.UUID | None
    result: str

    @property
    def accepted(self) -> bool:
        """True when the transfer is in the ledger (made now, or by an earlier call)."""
        return self.result in ("ok", "exists")


@contextlib.asynccontextmanager
async def _connection(db: Db) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    if isinstance(db, AsyncConnectionPool):
        async with db.connection() as conn:
            yield conn
    else:
        yield db


async def _one(db: Db, query: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        async with _connection(db) as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchone()
    except psycopg.Error as e:
        raise translate(e) from e


async def _transfer(db: Db, query: str, params: Mapping[str, Any]) -> Transfer | None:
    row = await _one(db, query, params)
    if row is None or row.get("id") is None:
        return None
    return Transfer.from_row(row)


async def _required(db: Db, query: str, params: Mapping[str, Any]) -> Transfer:
    result = await _transfer(db, query, params)
    if result is None:  # pragma: no cover - the ledger returns the row or raises
        raise Bug("the credit ledger returned no transfer")
    return result


async def transfer(
    db: Db,
    *,
    id: uuid.UUID,
    debit_account_id: uuid.UUID,
    credit_account_id: uuid.UUID,
    amount: Decimal,
    kind: Kind,
    reference_type: str | None = None,
    reference_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Transfer:
    """Move ``amount`` at once between two accounts (posted)."""
    return await _required(
        db,
        TRANSFER,
        {
            "id": id,
            "debit_account_id": debit_account_id,
            "credit_account_id": credit_account_id,
            "amount": amount,
            "kind": kind,
            "reference_type": reference_type,
            "reference_id": reference_id,
            "metadata": Jsonb(dict(metadata or {})),
        },
    )


async def hold(
    db: Db,
    *,
    id: uuid.UUID,
    debit_account_id: uuid.UUID,
    credit_account_id: uuid.UUID,
    amount: Decimal,
    kind: Kind = "usage",
    expires_after: timedelta = timedelta(minutes=15),
    reference_type: str | None = None,
    reference_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Transfer:
    """Reserve ``amount`` (a pending transfer) until ``post``, ``void`` or ``expires_after``."""
    return await _required(
        db,
        HOLD,
        {
            "id": id,
            "debit_account_id": debit_account_id,
            "credit_account_id": credit_account_id,
            "amount": amount,
            "kind": kind,
            "timeout": expires_after,
            "reference_type": reference_type,
            "reference_id": reference_id,
            "metadata": Jsonb(dict(metadata or {})),
        },
    )


async def hold_usage(
    db: Db,
    *,
    id: uuid.UUID,
    user_id: uuid.UUID,
    usage: Usage,
    quantity: Decimal = Decimal(1),
    expires_after: timedelta = timedelta(minutes=15),
    reference_type: str | None = None,
    reference_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Transfer | None:
    """Hold the plan price of ``quantity`` units of ``usage``; None when the plan makes it free."""
    return await _transfer(
        db,
        HOLD_USAGE,
        {
            "id": id,
            "user_id": user_id,
            "usage": usage,
            "quantity": quantity,
            "timeout": expires_after,
            "reference_type": reference_type,
            "reference_id": reference_id,
            "metadata": Jsonb(dict(metadata or {})),
        },
    )


async def post(
    db: Db,
    *,
    id: uuid.UUID,
    pending_id: uuid.UUID,
    amount: Decimal | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Transfer:
    """Settle a hold: charge ``amount`` (all of it when None; never more) and release the rest."""
    return await _required(
        db,
        POST,
        {
            "id": id,
            "pending_id": pending_id,
            "amount": amount,
            "metadata": Jsonb(dict(metadata or {})),
        },
    )


async def void(
    db: Db,
    *,
    id: uuid.UUID,
    pending_id: uuid.UUID,
    metadata: Mapping[str, Any] | None = None,
) -> Transfer:
    """Cancel a hold: nothing is charged, the held credits are available again."""
    return await _required(
        db, VOID, {"id": id, "pending_id": pending_id, "metadata": Jsonb(dict(metadata or {}))}
    )


async def charge_usage(
    db: Db,
    *,
    id: uuid.UUID,
    user_id: uuid.UUID,
    usage: Usage,
    quantity: Decimal = Decimal(1),
    reference_type: str | None = None,
    reference_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Transfer | None:
    """Charge the user's plan price for usage that happened; None when the plan makes it free."""
    return await _transfer(
        db,
        CHARGE_USAGE,
        {
            "id": id,
            "user_id": user_id,
            "usage": usage,
            "quantity": quantity,
            "reference_type": reference_type,
            "reference_id": reference_id,
            "metadata": Jsonb(dict(metadata or {})),
        },
    )


async def grant(
    db: Db,
    *,
    id: uuid.UUID,
    user_id: uuid.UUID,
    amount: Decimal,
    reference_type: str | None = None,
    reference_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Transfer:
    """Give the user credits from ``system:grants``."""
    return await _required(
        db,
        GRANT,
        {
            "id": id,
            "user_id": user_id,
            "amount": amount,
            "reference_type": reference_type,
            "reference_id": reference_id,
            "metadata": Jsonb(dict(metadata or {})),
        },
    )


async def quote(db: Db, *, user_id: uuid.UUID, usage: Usage, quantity: Decimal) -> Decimal:
    """What ``quantity`` units of ``usage`` cost the user on their current plan."""
    row = await _one(db, QUOTE, {"user_id": user_id, "usage": usage, "quantity": quantity})
    assert row is not None
    return Decimal(row["amount"])


async def balance(
    db: Db, *, user_id: uuid.UUID, kind: Literal["user", "provider_earnings"] = "user"
) -> Balance | None:
    """The user's account: posted balance, credits held, and what is still available."""
    row = await _one(db, BALANCE, {"user_id": user_id, "kind": kind})
    if row is None:
        return None
    return Balance(
        row["account_id"], Decimal(row["balance"]), Decimal(row["held"]), Decimal(row["available"])
    )


async def create_transfers(db: Db, requests: Sequence[TransferRequest]) -> list[TransferResult]:
    """Apply many transfers in one round trip and one transaction, each on its own.

    Every element is accepted ('ok', or 'exists' for a repeated id) or rejected with its
    reason (``TransferResult.result``; ``worker.credits.errors.rejection`` turns one into
    an exception) — a rejected element never stops the others. On a connection the batch
    joins the caller's transaction: holds settle with the writes they belong to, and a
    rejected post or void (a hold that expired meanwhile) does not abort them.
    """
    if not requests:
        return []
    try:
        async with _connection(db) as conn, conn.cursor() as cur:
            await cur.execute(BATCH, {"transfers": jsonb([r.to_json() for r in requests])})
            rows = await cur.fetchall()
    except psycopg.Error as e:
        raise translate(e) from e
    return [TransferResult(int(r[0]), r[1], str(r[2])) for r in rows]


async def system_account(db: Db, code: str) -> uuid.UUID | None:
    """The id of a system account (``system:usage``, ``system:grants``, ...), if it exists."""
    row = await _one(db, SYSTEM_ACCOUNT, {"code": code})
    return None if row is None else uuid.UUID(str(row["id"]))


async def user_accounts(db: Db) -> list[UserAccount]:
    """Every user's account, by email (the operator's overview)."""
    try:
        async with _connection(db) as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(USER_ACCOUNTS)
            rows = await cur.fetchall()
    except psycopg.Error as e:
        raise translate(e) from e
    return [
        UserAccount(str(r["email"]), Decimal(r["balance"]), Decimal(r["held"]), Decimal(r["spent"]))
        for r in rows
    ]


async def expire_holds(db: Db, *, limit: int = 1000) -> int:
    """Void up to ``limit`` holds past their timeout; returns how many were voided."""
    row = await _one(db, EXPIRE_HOLDS, {"limit": limit})
    return int(row["voided"]) if row else 0


async def roll_up_api_usage(db: Db) -> dict[str, int]:
    """Move recorded API calls into the per-minute and per-day rollups and bill the days
    that closed; returns ``{"calls": moved, "days_billed": n}``."""
    row = await _one(db, "select public.api_usage_rollup() as r", {})
    result = row["r"] if row else {}
    return {"calls": int(result.get("calls", 0)), "days_billed": int(result.get("days_billed", 0))}


async def grant_monthly_all(db: Db, *, limit: int = 5000) -> dict[str, int]:
    """Grant every current subscription its monthly credits for this cycle (once)."""
    try:
        async with _connection(db) as conn, conn.cursor() as cur:
            await cur.execute(GRANT_MONTHLY_ALL, {"limit": limit})
            return {str(r[0]): int(r[1]) for r in await cur.fetchall()}
    except psycopg.Error as e:
        raise translate(e) from e
