"""What a rejected credit transfer means for the caller, and psycopg errors translated.

The ledger functions raise every rejection with ``DETAIL: result: <code>`` (the codes of
``public.credit_create_transfers``, TigerBeetle's result names in snake_case). Here they
become exceptions grouped by what the caller must do:

- ``InsufficientCredits`` (a ``Fatal``): the user cannot pay; retrying will not help until
  they get credits. Bots stop with this message; jobs go to ``dead``.
- ``HoldAlreadyResolved`` / ``HoldExpired`` / other ``TransferRejected`` (``Fatal``): the
  request itself is wrong for the ledger's current state.
- ``IdempotencyConflict`` (a ``Bug``): the same transfer id was reused with other fields;
  ids must be derived from what the transfer stands for.
- lock timeouts, deadlocks, serialization failures and lost connections: ``Retryable``.
"""

from __future__ import annotations

import psycopg
import psycopg.errors

from worker.errors import Bug, Fatal, Retryable, TradefleetError


class TransferRejected(Fatal):
    """The ledger refused the transfer; nothing changed. ``code`` says why."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class InsufficientCredits(TransferRejected):
    """The debit account's available credits (balance minus holds) are too few."""


class HoldAlreadyResolved(TransferRejected):
    """The hold was posted or voided (or expired) already; a hold resolves once."""


class HoldExpired(TransferRejected):
    """The hold timed out before it was posted; its credits are released."""


class IdempotencyConflict(Bug):
    """A transfer id was reused for a different transfer."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


_RETRYABLE = (
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.LockNotAvailable,
    psycopg.errors.QueryCanceled,
    psycopg.errors.AdminShutdown,
    psycopg.OperationalError,
)


def result_code(error: psycopg.Error) -> str | None:
    """The ledger's result code carried by ``error`` (``DETAIL: result: <code>``), if any."""
    detail = error.diag.message_detail or ""
    if detail.startswith("result: "):
        return detail.removeprefix("result: ").strip()
    return None


def rejection(code: str, message: str) -> TradefleetError:
    """The exception for a ledger result code (as the batch call reports them)."""
    if code == "exceeds_credits":
        return InsufficientCredits(message, code)
    if code.startswith("pending_transfer_already_"):
        return HoldAlreadyResolved(message, code)
    if code == "pending_transfer_expired":
        return HoldExpired(message, code)
    if code.startswith("exists_with_different_"):
        return IdempotencyConflict(message, code)
    return TransferRejected(message, code)


def translate(error: psycopg.Error) -> TradefleetError:
    """Map a psycopg error raised by a ledger call to a Tradefleet error."""
    message = error.diag.message_primary or str(error)
    code = result_code(error)
    if code is not None:
        return rejection(code, message)
    if isinstance(error, _RETRYABLE):
        return Retryable(f"credit ledger busy or unreachable: {message}")
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        return Bug(f"the credit ledger refused the caller: {message}")
    if isinstance(
        error,
        psycopg.errors.IntegrityError
        | psycopg.errors.DataError
        | psycopg.errors.InvalidParameterValue
        | psycopg.errors.NoDataFound,
    ):
        return TransferRejected(message, error.diag.constraint_name or error.sqlstate or "rejected")
    return Bug(f"unexpected credit ledger error: {message}")
