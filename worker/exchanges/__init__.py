"""Exchanges: one async ``Exchange`` interface, live through ccxt and paper over candles.

- ``Exchange`` (base): markets, ccxt-exact rounding and limit checks, orders, balances,
  closed candles, reconciliation by client order id.
- ``LiveExchange`` (live): ccxt ``async_support``, testnet, leverage, error translation.
- ``PaperExchange`` (paper): same interface, real market definitions, candle-driven fills.
- ``Keyring`` / ``ExchangeCredentials`` (keys): AES-256-GCM sealing of API keys.

``live`` imports ccxt's async client; import it from ``worker.exchanges.live`` directly.
"""

from .base import Exchange, make_client_order_id
from .keys import ExchangeCredentials, Keyring, SealError
from .models import Balance, Candle, CheckedOrder, Fee, Market, Order, OrderStatus, OrderType, Side
from .paper import PaperExchange
from .precision import MarketRules, recorded_rules
from .retry import retry

__all__ = [
    "Balance",
    "Candle",
    "CheckedOrder",
    "Exchange",
    "ExchangeCredentials",
    "Fee",
    "Keyring",
    "Market",
    "MarketRules",
    "Order",
    "OrderStatus",
    "OrderType",
    "PaperExchange",
    "SealError",
    "Side",
    "make_client_order_id",
    "recorded_rules",
    "retry",
]
