"""Which database errors refuse the data a write was given (the same rows fail again) and
which may pass on their own: the bot runner splits a refused write, and reloads and steps
again after any other."""

from __future__ import annotations

import psycopg
import pytest

from worker.credits.errors import translate
from worker.db import refused_by_data
from worker.errors import Retryable


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.RaiseException("a trigger refused the row"),
        psycopg.errors.NumericValueOutOfRange("numeric field overflow"),
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.errors.CheckViolation("check constraint"),
        psycopg.errors.NotNullViolation("null value"),
        psycopg.errors.CardinalityViolation("cannot affect row a second time"),
        psycopg.errors.UndefinedColumn("column does not exist"),
    ],
)
def test_errors_of_the_data_given_are_refusals(error: psycopg.Error) -> None:
    assert refused_by_data(error)


@pytest.mark.parametrize(
    "error",
    [
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
        psycopg.errors.AdminShutdown("terminating connection"),
        psycopg.errors.QueryCanceled("canceling statement"),
        psycopg.errors.LockNotAvailable("could not obtain lock"),
        psycopg.errors.TooManyConnections("too many clients"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        OSError("connection reset"),
        Retryable("exchange busy"),
        TimeoutError("pool timeout"),
    ],
)
def test_errors_that_may_pass_are_not_refusals(error: Exception) -> None:
    assert not refused_by_data(error)


def test_a_translated_error_is_judged_by_the_database_error_behind_it() -> None:
    def translated(error: psycopg.Error) -> Exception:
        try:
            raise error
        except psycopg.Error as e:
            try:
                raise translate(e) from e
            except Exception as t:
                return t

    assert refused_by_data(translated(psycopg.errors.CheckViolation("balance")))
    assert not refused_by_data(translated(psycopg.errors.DeadlockDetected("deadlock")))
