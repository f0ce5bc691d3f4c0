"""Shipped market definitions: the recorded ccxt markets plus the BTC-quoted pairs of the
recorded candles (``data/candles``). Bots read the markets cache in the database (see
``market_catalog``); these definitions seed it for the offline demo and stand in for an
exchange the cache has not loaded yet (a fresh database, the tests).

The recorded ``load_markets()`` files hold USDT/USDC markets only, while the candles that
the demo, the tests and the benchmark replay are 2018 BTC-quoted spot markets. Those pairs
get definitions in ccxt's unified shape with Binance's spot filters of the time (step and
tick sizes, 0.0001 BTC minimum notional, 0.1 % fees), so paper orders on them are rounded
and checked by ccxt exactly like the recorded markets. ``SOL/USDT`` (December 2020 candles,
absent from the recorded markets) gets Binance-style filters that fit its recorded prices:
0.01 SOL steps, 0.0001 USDT ticks, 10 USDT minimum notional.
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
# USDT-quoted pairs of the recorded candles the recorded markets lack: base -> (step, tick)
USDT_PAIRS: dict[str, tuple[float, float]] = {"SOL": (0.01, 0.0001)}
MIN_NOTIONAL_USDT = 10.0


def btc_market(
    base: str, step: float, tick: float, quote: str = "BTC", min_cost: float = MIN_NOTIONAL_BTC
) -> dict[str, Any]:
    """A spot ``<base>/<quote>`` market in ccxt's unified shape (tick-size precision)."""
    return {
        "id": f"{base}{quote}",
        "symbol": f"{base}/{quote}",
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
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
            "cost": {"min": min_cost, "max": None},
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
    for base, (step, tick) in USDT_PAIRS.items():
        markets.setdefault(f"{base}/USDT", btc_market(base, step, tick, "USDT", MIN_NOTIONAL_USDT))
    return markets


@cache
def paper_rules(exchange_id: str, markets_dir: Path | None = None) -> MarketRules:
    """Markets of ``exchange_id`` for paper trading from the shipped definitions.

    One instance per process and exchange: every paper bot of the worker shares it.
    """
    return MarketRules.from_markets(exchange_id, offline_markets(exchange_id, markets_dir))
