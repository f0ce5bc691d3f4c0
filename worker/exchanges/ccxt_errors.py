"""Translate ccxt exceptions into ``Retryable`` / ``Fatal`` with messages a user can act on."""

from __future__ import annotations

import json
import re

import ccxt

from worker.errors import Fatal, Retryable, TradefleetError

_JSON_RE = re.compile(r"\{.*\}", re.DOTALL)

DEFAULT_RATE_LIMIT_WAIT = 2.0
"""Seconds to wait after a rate-limit error when the exchange does not say how long."""


_AUTH_MARKERS = ('"code":-2015', '"code": -2015', "Invalid API-key")
"""Binance answers -2015 for a bad or revoked key; ccxt reports it as DDoSProtection once
the client has authenticated before, but retrying will not fix a revoked key."""


EXACT_CODES: dict[str, dict[str, type[ccxt.BaseError]]] = {
    # "Server is under maintenance" / restarting (ccxt: a generic ExchangeError)
    "bybit": {"10016": ccxt.OnMaintenance},
    # "The matching engine or API is offline" (ccxt: ExchangeNotAvailable)
    "kraken": {"EService:Unavailable": ccxt.OnMaintenance},
    # "Order does not exist." (ccxt: unmapped), "Unknown order sent." (ccxt: BadRequest)
    "mexc": {"-2013": ccxt.OrderNotFound, "-2011": ccxt.OrderNotFound},
}
"""Exchange error codes ccxt maps to a class too generic for a bot to act on: added to the
client's exact-match table (``teach``) so ccxt raises the right class itself. OKX ``50001``,
Bitget ``40200`` and MEXC ``801`` are maintenance in ccxt already."""


def teach(client: ccxt.Exchange, exchange_id: str) -> None:
    """Let ``client`` raise the classes of ``EXACT_CODES`` for ``exchange_id``."""
    extra = EXACT_CODES.get(exchange_id)
    if extra:
        exceptions = client.exceptions
        exceptions["exact"] = {**exceptions.get("exact", {}), **extra}


def exchange_says(error: BaseException, exchange_id: str = "") -> str:
    """The exchange's own words from a ccxt error (the ``msg`` of a JSON body if present)."""
    text = str(error)
    if exchange_id and text.startswith(exchange_id + " "):
        text = text[len(exchange_id) + 1 :]
    match = _JSON_RE.search(text)
    if match:
        try:
            body = json.loads(match.group(0))
        except ValueError:
            body = None
        if isinstance(body, dict):
            for key in ("msg", "message", "retMsg", "error", "error_description"):
                value = body.get(key)
                if isinstance(value, list):  # Kraken: {"error": ["EOrder:Insufficient funds"]}
                    value = "; ".join(str(v) for v in value)
                if value:
                    code = body.get("code", body.get("retCode"))
                    return f"{value} (code {code})" if code is not None else str(value)
    return text.strip() or type(error).__name__


def translate(error: Exception, exchange_id: str, action: str) -> TradefleetError:
    """Map a ccxt error raised during ``action`` to ``Retryable`` or ``Fatal``.

    Use as ``raise translate(e, ...) from e`` so the original stays in ``__cause__``.
    """
    said = exchange_says(error, exchange_id)
    where = f"{exchange_id} {action}"
    if isinstance(error, ccxt.DDoSProtection) and any(m in str(error) for m in _AUTH_MARKERS):
        error = ccxt.AuthenticationError(str(error))
    # Order matters: subclasses before their parents.
    if isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return Retryable(
            f"{where}: rate limited by the exchange, slowing down ({said})",
            retry_after=DEFAULT_RATE_LIMIT_WAIT,
        )
    if isinstance(error, ccxt.OnMaintenance):
        return Retryable(f"{where}: exchange is under maintenance ({said})", retry_after=30.0)
    if isinstance(error, ccxt.ExchangeNotAvailable):
        return Retryable(f"{where}: exchange is unavailable or busy ({said})")
    if isinstance(error, ccxt.RequestTimeout):
        return Retryable(f"{where}: request timed out ({said})")
    if isinstance(error, ccxt.InvalidNonce):
        return Retryable(f"{where}: clock or nonce out of sync with the exchange ({said})")
    if isinstance(error, ccxt.OperationFailed):  # NetworkError, BadResponse, CancelPending
        return Retryable(f"{where}: network error talking to the exchange ({said})")
    if isinstance(error, ccxt.AccountSuspended):
        return Fatal(f"{where}: the exchange account is suspended ({said})")
    if isinstance(error, ccxt.PermissionDenied):
        return Fatal(
            f"{where}: the API key lacks permission for this action; enable trading "
            f"for the key on the exchange ({said})"
        )
    if isinstance(error, ccxt.AuthenticationError):
        return Fatal(
            f"{where}: the exchange rejected the API key; check the key, secret, "
            f"permissions and IP whitelist ({said})"
        )
    if isinstance(error, ccxt.InsufficientFunds):
        return Fatal(f"{where}: insufficient funds on the exchange account ({said})")
    if isinstance(error, ccxt.OrderNotFound):
        return Fatal(f"{where}: order not found ({said})")
    if isinstance(error, ccxt.InvalidOrder):
        return Fatal(f"{where}: the exchange rejected the order ({said})")
    if isinstance(error, ccxt.BadSymbol):
        return Fatal(f"{where}: unknown or delisted market ({said})")
    if isinstance(error, ccxt.BadRequest | ccxt.ArgumentsRequired):
        return Fatal(f"{where}: the exchange rejected the request as invalid ({said})")
    if isinstance(error, ccxt.NotSupported):
        return Fatal(f"{where}: not supported by this exchange ({said})")
    if isinstance(error, ccxt.OperationRejected):
        return Fatal(f"{where}: the exchange refused the operation ({said})")
    if isinstance(error, ccxt.ExchangeError):
        # Unmapped exchange codes: usually transient; bounded retries then escalate.
        return Retryable(f"{where}: unexpected exchange error ({said})")
    return Fatal(f"{where}: {type(error).__name__}: {said}")
