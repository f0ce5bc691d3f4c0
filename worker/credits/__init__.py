"""Credits: the typed way other capabilities use the credit ledger, and its job kinds.

Hold before work that costs credits, then post (the actual cost) or void::

    held = await credits.hold_usage(pool, id=credits.transfer_id("backtest", run_id),
                                    user_id=user_id, usage="backtest_second", quantity=Decimal(600))
    ...
    cost = await credits.quote(pool, user_id=user_id, usage="backtest_second", quantity=seconds)
    await credits.post(pool, id=credits.transfer_id("backtest", run_id, "post"),
                       pending_id=held.id, amount=min(cost, held.amount))

Errors: ``InsufficientCredits`` (a ``Fatal``) when the user cannot pay; other rejections
are ``TransferRejected`` (``Fatal``) with the ledger's ``code``; a reused id with other
fields is an ``IdempotencyConflict`` (a ``Bug``); a busy or unreachable database is
``Retryable``.
"""

from __future__ import annotations

from worker.credits.errors import (
    HoldAlreadyResolved,
    HoldExpired,
    IdempotencyConflict,
    InsufficientCredits,
    TransferRejected,
    rejection,
)
from worker.credits.jobs import register
from worker.credits.ledger import (
    Balance,
    Transfer,
    TransferRequest,
    TransferResult,
    UserAccount,
    balance,
    charge_usage,
    create_transfers,
    expire_holds,
    grant,
    grant_monthly_all,
    hold,
    hold_usage,
    order_transfer_id,
    post,
    quote,
    system_account,
    transfer,
    transfer_id,
    user_accounts,
    void,
)

__all__ = [
    "Balance",
    "HoldAlreadyResolved",
    "HoldExpired",
    "IdempotencyConflict",
    "InsufficientCredits",
    "Transfer",
    "TransferRejected",
    "TransferRequest",
    "TransferResult",
    "UserAccount",
    "balance",
    "charge_usage",
    "create_transfers",
    "expire_holds",
    "grant",
    "grant_monthly_all",
    "hold",
    "hold_usage",
    "order_transfer_id",
    "post",
    "quote",
    "register",
    "rejection",
    "system_account",
    "transfer",
    "transfer_id",
    "user_accounts",
    "void",
]
