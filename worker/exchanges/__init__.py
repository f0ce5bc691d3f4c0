"""Exchanges: one async ``Exchange`` interface, live through ccxt and paper over candles.

- ``Exchange`` (base): markets, ccxt-exact rounding and limit checks, orders, balances,
  closed candles, reconciliation by client order id.
- ``LiveExchange`` (live): ccxt ``async_support``, testnet, leverage, error translation.
- ``PaperExchange`` (paper): same interface, real market definitions, candle-driven fills.
- ``ExchangeCredentials`` (credentials): API keys, sealed with ``worker.sealing``.

``live`` imports ccxt's async client; import it from ``worker.exchanges.live`` directly.
"""

from .base import Exchange, make_client_order_id
from .credentials import ExchangeCredentials
from .models import Balance, CheckedOrder, Fee, Market, Order, OrderStatus, OrderType, Side
from .paper import PaperExchange
from .precision import MarketRules, recorded_rules

__all__ = [
    "Balance",
    "CheckedOrder",
    "Exchange",
    "ExchangeCredentials",
    "Fee",
    "Market",
    "MarketRules",
    "Order",
    "OrderStatus",
    "OrderType",
    "PaperExchange",
    "Side",
    "make_client_order_id",
    "recorded_rules",
]
