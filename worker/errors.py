"""Exceptions grouped by what the operator (or the fleet) must do about them.

- ``Retryable``: a passing condition (network, rate limit, lock timeout, exchange busy).
  The job or decision is tried again with backoff.
- ``Fatal``: this bot or job cannot go on until someone changes something (bad
  credentials, invalid parameters, insufficient funds). The bot goes to ``error`` with the
  message as its ``error_message``; the job goes to ``dead`` without further retries.
- ``Bug``: our own invariant broke. Logged loudly; treated like ``Fatal`` for the unit of
  work, never allowed to stop the fleet.

Library errors (ccxt, httpx, psycopg) are translated into these at the boundary with
``raise ... from e`` so callers never depend on a third-party exception hierarchy.
"""

from __future__ import annotations


class TradefleetError(Exception):
    """Base class of every error Tradefleet raises on purpose."""


class Retryable(TradefleetError):
    """Try again later: the condition is expected to pass."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Fatal(TradefleetError):
    """Stop this bot or job: retrying will not help until its owner changes something."""


class Bug(TradefleetError):
    """An invariant of Tradefleet itself broke."""


class ConfigError(TradefleetError):
    """The process cannot start: a setting is missing or invalid. The message names the
    environment variable; commands print it as one line and exit non-zero."""
