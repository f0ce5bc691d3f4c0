"""What differs between exchanges behind ccxt's unified API, as ``LiveExchange`` needs it.

Each table names the ccxt exchange ids a quirk applies to; the fakes in ``tests/fakes``
(one per exchange, speaking its documented REST API) prove every entry. See docs/bots.md,
"Supported exchanges".
"""

from __future__ import annotations

import re

CLIENT_ID_PARAM: dict[str, str] = {
    "binance": "newClientOrderId",
    "binanceusdm": "newClientOrderId",
    "binancecoinm": "newClientOrderId",
    "binanceus": "newClientOrderId",
}
"""Exchange-native request parameter for the client order id; others use ccxt's ``clientOrderId``."""

LOOKUP_BY_CLIENT_ID = frozenset(
    {
        "binance",
        "binanceusdm",
        "binancecoinm",
        "binanceus",
        "okx",
        "bitget",
        "mexc",
        "kucoin",
        "gate",
        "htx",
        "bingx",
        "coinbase",
        "kraken",
    }
)
"""Exchanges whose ccxt ``fetch_order`` finds an order by ``params={'clientOrderId': ...}``."""

MARGIN_MODE_WITH_LEVERAGE = frozenset({"okx", "bitget"})
"""Exchanges whose ccxt ``set_margin_mode`` needs the leverage alongside, and whose leverage
and orders name the margin mode they are for (``marginMode``)."""

TRIGGER_ORDERS_APART = frozenset({"okx", "bitget"})
"""Exchanges that keep trigger (stop) orders apart from plain orders: ccxt reads them back
with ``params={"trigger": True}``."""

OPEN_ORDERS_ANY_SYMBOL = frozenset({"binance", "binanceusdm", "binancecoinm", "okx", "kraken"})
"""Exchanges whose open-orders list answers for every market of the account in one query
(ccxt ``fetch_open_orders`` without a symbol); the others are asked per market."""

OPEN_LIST_HOLDS_TRIGGERS = frozenset({"bybit", "kraken"})
"""Exchanges whose open-orders list holds trigger (stop) orders beside plain ones (Bybit's
unified account lists every kind unless filtered; Kraken's OpenOrders has them all)."""

TRIGGER_LIST_PARAMS: dict[str, dict[str, str]] = {"okx": {"ordType": "conditional"}}
"""What an exchange's pending trigger-order list needs besides ccxt's ``trigger`` (OKX
lists one algo order type per query; stops and targets are ``conditional``)."""

TRIGGER_CLIENT_ID_PARAM: dict[str, str] = {"okx": "algoClOrdId"}
"""Exchange-native parameter for the client id of a trigger order, where it differs from
the plain order's (OKX algo orders take ``algoClOrdId``; ccxt sends ``clOrdId``)."""

STOPS_AS_TRIGGERS = frozenset({"bitget"})
"""Exchanges whose protective orders go as plain trigger (plan) orders, ccxt's
``triggerPrice`` (reduce-only on contracts): ccxt's ``stopLossPrice`` is refused on Bitget
spot and asks Bitget futures for a position-bound TP/SL order instead."""

STOPS_UNDECLARED = frozenset({"kraken"})
"""Exchanges whose ccxt ``create_order`` places stop-loss and take-profit orders through
``stopLossPrice`` / ``takeProfitPrice`` though ccxt's ``has`` does not declare
``createStopLossOrder`` (Kraken's AddOrder ``stop-loss-limit``: ``price`` the trigger,
``price2`` the limit)."""

FILLS_UNFILTERED = frozenset({"kraken"})
"""Exchanges whose trade history takes no order filter (Kraken's TradesHistory): the
account's recent trades are read and the order's picked out."""

OCO_SPOT = frozenset({"binance"})
"""Exchanges whose spot markets rest a stop-loss and a take-profit together as one OCO order
list (Binance ``POST /api/v3/orderList/oco``; the market's ``ocoAllowed``)."""

CANCEL_BY_ID = frozenset({"bybit", "okx", "bitget"})
"""Exchanges whose ccxt cancel of a trigger order needs the exchange's order id (not the
client id): the order is looked up first."""

SPOT_WITHOUT_STOPS = frozenset({"mexc"})
"""Exchanges whose spot API has no stop or trigger orders."""

MARKET_BUY_BY_COST = frozenset({"bitget"})
"""Exchanges whose spot market buy spends an amount of the quote currency: the base amount
is sent as ``cost`` = amount x the current ask."""

TRIGGER_BY_LIST = frozenset({"bitget"})
"""Exchanges whose ccxt ``fetch_order`` cannot read a trigger order: read from the lists."""

TRIGGER_PARAMS = frozenset({"triggerPrice", "stopPrice", "stopLossPrice", "takeProfitPrice"})

LIST_BY_CLIENT_ID: dict[str, str] = {"bybit": "orderLinkId", "kraken": "clientOrderId"}
"""Exchanges whose order lists filter by client id (ccxt parameter): their ccxt
``fetch_order`` cannot look an order up by client id (Bybit's unified account answers
``fetch_order`` only by exchange id and passes unknown parameters through; Kraken's
QueryOrders needs the exchange id and takes only an integer ``userref``)."""

LIST_BY_ID = frozenset({"bybit"})
"""Exchanges whose ccxt ``fetch_order`` cannot read one order by id: read from the lists."""

HEADER_SANDBOX = frozenset({"okx", "bitget"})
"""Exchanges whose sandbox is the live host with a header (OKX and Bitget demo trading)."""

NATIVE_CLIENT_ID: dict[str, re.Pattern[str]] = {
    "kraken": re.compile(r"^([0-9a-fA-F]{32}|[0-9a-fA-F-]{36}|[A-Za-z0-9_-]{1,18})$"),
}
"""Client order id forms an exchange accepts, where narrower than ours."""
