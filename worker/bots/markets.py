"""Shipped market definitions: the recorded ccxt markets plus the BTC-quoted pairs of the
recorded candles (``data/candles``). Bots read the markets cache in the database (see
``market_catalog``); these definitions seed it for the offline demo and stand in for an
exchange the cache has not loaded yet (a fresh database, the tests).

The recorded ``load_markets()`` files hold USDT/USDC markets only, while the candles that
the demo, the tests and the benchmark replay are 2018 BTC-quoted spot markets. Those pairs
get definitions in ccxt's unified shape with Binance's spot filters of the time (step and
tick sizes, 0.0001 BTC minimum notional, 0.1 % fees), so paper orders on them are rounded
and checked by ccxt exactly like the recorded markets.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from worker.errors import Fatal
from worker.exchanges.precision import MarketRules, normalize_markets, read_markets_file

# base -> (amount step, price tick)
BTC_PAIRS: dict[str, tuple[float, float]] = {
    "ADA": (1.0, 1e-8),
    "DASH": (0.001, 1e-6),
    "ETC": (0.01, 1e-6),
    "ETH": (0.001, 1e-6),
    "LTC": (0.01, 1e-6),
    "NXT": (1.0, 1e-8),
    "TRX": (1.0, 1e-8),
    "XLM": (1.0, 1e-8),
    "XMR": (0.001, 1e-6),
    "XRP": (1.0, 1e-8),
    "ZEC": (0.001, 1e-6),
    "UNITTEST": (0.001, 1e-8),
}
MIN_NOTIONAL_BTC = 0.0001


def btc_market(base: str, step: float, tick: float) -> dict[str, Any]:
    """A spot ``<base>/BTC`` market in ccxt's unified shape (tick-size precision)."""
    return {
        "id": f"{base}BTC",
        "symbol": f"{base}/BTC",
        "base": base,
        "quote": "BTC",
        "baseId": base,
        "quoteId": "BTC",
        "settle": None,
        "active": True,
        "type": "spot",
        "spot": True,
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "contract": False,
        "linear": None,
        "inverse": None,
        "contractSize": None,
        "taker": 0.001,
        "maker": 0.001,
        "precision": {"amount": step, "price": tick},
        "limits": {
            "amount": {"min": step, "max": 90_000_000.0},
            "price": {"min": tick, "max": 1000.0},
            "cost": {"min": MIN_NOTIONAL_BTC, "max": None},
            "leverage": {},
            "market": {"min": None, "max": None},
        },
        "info": {},
    }


def offline_markets(exchange_id: str, markets_dir: Path | None = None) -> dict[str, Any]:
    """The shipped definitions of ``exchange_id`` (recorded ones plus the BTC pairs): what
    the offline demo seeds the markets cache with, and what paper bots use while the
    exchange is not in the cache yet."""
    try:
        recorded = normalize_markets(read_markets_file(exchange_id, markets_dir))
    except Fatal:
        recorded = {}  # exchanges without a recorded file still trade the BTC pairs on paper
    markets: dict[str, Any] = dict(recorded)
    for base, (step, tick) in BTC_PAIRS.items():
        markets.setdefault(f"{base}/BTC", btc_market(base, step, tick))
    return markets


@cache
def paper_rules(exchange_id: str, markets_dir: Path | None = None) -> MarketRules:
    """Markets of ``exchange_id`` for paper trading from the shipped definitions.

    One instance per process and exchange: every paper bot of the worker shares it.
    """
    return MarketRules.from_markets(exchange_id, offline_markets(exchange_id, markets_dir))
