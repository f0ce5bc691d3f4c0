"""A local HTTP server that answers like Binance's USDⓈ-M futures REST API (``/fapi``), for
ccxt tests of the futures path: leverage, shorts and reduce-only exits.

Covers what ccxt's ``binanceusdm`` (or ``binance`` on a ``:USDT`` market) calls:
``/fapi/v1/exchangeInfo`` (one perpetual, BTC/USDT:USDT, with Binance's filter shapes),
``time``, ``ping``, ``klines``, ``leverage`` (POST, recorded), ``order`` (POST/GET/DELETE with
``newClientOrderId`` / ``origClientOrderId``, ``reduceOnly``, ``positionSide``),
``openOrders``, ``userTrades``, ``account`` (v2 and v3), ``balance`` (v2) and ``positionRisk``
(v2, v3), and conditional orders through Binance's algo order API (``algoOrder`` POST/GET/DELETE
with ``clientAlgoId``, ``openAlgoOrders``): ``STOP_MARKET`` and ``TAKE_PROFIT_MARKET`` with
``triggerPrice`` and ``reduceOnly``. ``set_price`` moves the market: an algo order whose
trigger the price crossed places its market order (``actualOrderId``) and ends ``FINISHED``;
a reduce-only one with no position left to reduce ends ``EXPIRED``.
The account is in one-way mode (``positionSide`` BOTH); market orders fill at
``prices[symbol]``; margin is ``notional / leverage`` and is checked on orders that open or
add to a position. A reduce-only order that would open or grow a position is rejected
(-2022), as Binance does; one larger than the position is cut to it.

Everything else (spot routes, failure switches ``fail_next``, ``lost_response``) is
inherited from ``FakeBinance``; ``"insufficient"`` answers Binance's futures -2019.

Usage::

    async with FakeBinanceFutures() as fake:
        exchange = LiveExchange("binanceusdm", creds, api_base_url=fake.url)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.fakes.fake_binance import NOT_FOUND, UNKNOWN_ORDER, FakeBinance, _now_ms, default_klines

MARGIN_INSUFFICIENT = (400, {"code": -2019, "msg": "Margin is insufficient."})
REDUCE_ONLY_REJECTED = (400, {"code": -2022, "msg": "ReduceOnly Order is rejected."})
NOTIONAL_TOO_SMALL = (
    400,
    {
        "code": -4164,
        "msg": "Order's notional must be no smaller than 100 (unless you choose reduce only).",
    },
)
DUPLICATE_CLIENT_ID = (400, {"code": -4116, "msg": "ClientOrderId is duplicated."})

BTCUSDT_PERPETUAL: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "pair": "BTCUSDT",
    "contractType": "PERPETUAL",
    "deliveryDate": 4133404800000,
    "onboardDate": 1569398400000,
    "status": "TRADING",
    "maintMarginPercent": "2.5000",
    "requiredMarginPercent": "5.0000",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "marginAsset": "USDT",
    "pricePrecision": 2,
    "quantityPrecision": 3,
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "underlyingType": "COIN",
    "underlyingSubType": ["PoW"],
    "settlePlan": 0,
    "triggerProtect": "0.0500",
    "liquidationFee": "0.012500",
    "marketTakeBound": "0.05",
    "maxMoveOrderLimit": 10000,
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "556.80",
            "maxPrice": "4529764",
            "tickSize": "0.10",
        },
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120", "stepSize": "0.001"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": "100"},
        {
            "filterType": "PERCENT_PRICE",
            "multiplierUp": "1.0500",
            "multiplierDown": "0.9500",
            "multiplierDecimal": "4",
        },
    ],
    "orderTypes": [
        "LIMIT",
        "MARKET",
        "STOP",
        "STOP_MARKET",
        "TAKE_PROFIT",
        "TAKE_PROFIT_MARKET",
        "TRAILING_STOP_MARKET",
    ],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
}
"""Binance's BTCUSDT perpetual as ``/fapi/v1/exchangeInfo`` lists it (filters as documented)."""

MAX_LEVERAGE = 125
TAKER_FEE = Decimal("0.0005")


@dataclass
class Position:
    amount: Decimal = Decimal(0)  # signed: negative is short (one-way mode)
    entry_price: Decimal = Decimal(0)


@dataclass
class FakeBinanceFutures(FakeBinance):
    """``FakeBinance`` plus a USDⓈ-M futures account: one wallet, leverage and positions."""

    wallet: dict[str, Decimal] = field(default_factory=lambda: {"USDT": Decimal("10000")})
    leverage: dict[str, int] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    algo_orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    user_trades: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.futures_symbols = [BTCUSDT_PERPETUAL]

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Move ``symbol``'s price: algo orders whose trigger it crossed fire."""
        super().set_price(symbol, price)
        for algo in list(self.algo_orders.values()):
            if algo["symbol"] != symbol or algo["algoStatus"] != "NEW":
                continue
            trigger, sell = Decimal(algo["triggerPrice"]), algo["side"] == "SELL"
            falling = (algo["orderType"] == "STOP_MARKET") == sell
            if (price > trigger) if falling else (price < trigger):
                continue
            self._fire(algo, price)

    def _fire(self, algo: dict[str, Any], price: Decimal) -> None:
        symbol, now = algo["symbol"], _now_ms()
        pos = self.position(symbol)
        qty = Decimal(algo["quantity"])
        signed = qty if algo["side"] == "BUY" else -qty
        algo.update(triggerTime=now, updateTime=now)
        if algo["reduceOnly"]:
            if pos.amount == 0 or (pos.amount > 0) == (signed > 0):
                algo["algoStatus"] = "EXPIRED"
                return
            qty = min(qty, abs(pos.amount))
            signed = qty if algo["side"] == "BUY" else -qty
        order_id = next(self._ids)
        self.orders[order_id] = {
            "orderId": order_id,
            "symbol": symbol,
            "status": "FILLED",
            "clientOrderId": f"autoclose-{order_id}",
            "price": "0",
            "avgPrice": str(price),
            "origQty": str(qty),
            "executedQty": str(qty),
            "cumQty": str(qty),
            "cumQuote": str(qty * price),
            "timeInForce": "GTC",
            "type": "MARKET",
            "reduceOnly": algo["reduceOnly"],
            "closePosition": False,
            "side": algo["side"],
            "positionSide": "BOTH",
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": algo["orderType"],
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": now,
            "updateTime": now,
            "_leverage": self._leverage_of(symbol),
        }
        self._fill(symbol, signed, price, order_id=order_id, side=algo["side"])
        algo.update(algoStatus="FINISHED", actualOrderId=str(order_id), actualPrice=str(price))

    # -- control --------------------------------------------------------------------------

    def order_posts(self) -> list[Any]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/fapi/v1/order"]

    def leverage_posts(self) -> list[Any]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/fapi/v1/leverage"]

    def position(self, symbol: str = "BTCUSDT") -> Position:
        return self.positions.setdefault(symbol, Position())

    # -- plumbing -------------------------------------------------------------------------

    def _insufficient(self, path: str) -> tuple[int, dict[str, Any]]:
        return MARGIN_INSUFFICIENT if path.startswith("/fapi/") else super()._insufficient(path)

    def _routes(self) -> dict[tuple[str, str], Any]:
        routes = super()._routes()
        routes.update(
            {
                ("GET", "/fapi/v1/ping"): lambda p: self._json(200, {}),
                ("GET", "/fapi/v1/time"): lambda p: self._json(200, {"serverTime": _now_ms()}),
                ("GET", "/fapi/v1/exchangeInfo"): self._futures_exchange_info,
                ("GET", "/fapi/v1/klines"): self._klines,
                ("POST", "/fapi/v1/leverage"): self._set_leverage,
                ("POST", "/fapi/v1/order"): self._new_futures_order,
                ("GET", "/fapi/v1/order"): self._get_futures_order,
                ("DELETE", "/fapi/v1/order"): self._cancel_futures_order,
                ("GET", "/fapi/v1/openOrders"): self._futures_open_orders,
                ("POST", "/fapi/v1/algoOrder"): self._new_algo_order,
                ("GET", "/fapi/v1/algoOrder"): self._get_algo_order,
                ("DELETE", "/fapi/v1/algoOrder"): self._cancel_algo_order,
                ("GET", "/fapi/v1/openAlgoOrders"): self._open_algo_orders,
                ("GET", "/fapi/v1/userTrades"): self._user_trades,
                ("GET", "/fapi/v2/balance"): self._futures_balance,
                ("GET", "/fapi/v2/account"): self._futures_account,
                ("GET", "/fapi/v3/account"): self._futures_account,
                ("GET", "/fapi/v2/positionRisk"): self._position_risk,
                ("GET", "/fapi/v3/positionRisk"): self._position_risk,
            }
        )
        return routes

    # -- market data ----------------------------------------------------------------------

    def _futures_exchange_info(self, params: dict[str, str]) -> web.Response:
        return self._json(
            200,
            {
                "timezone": "UTC",
                "serverTime": _now_ms(),
                "futuresType": "U_MARGINED",
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 2400,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 1200,
                    },
                ],
                "exchangeFilters": [],
                "assets": [
                    {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}
                ],
                "symbols": self.futures_symbols,
            },
        )

    # -- account --------------------------------------------------------------------------

    def _leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, 20)  # Binance's default for a new BTCUSDT account

    def _margin_used(self) -> Decimal:
        return sum(
            (
                abs(p.amount) * p.entry_price / self._leverage_of(s)
                for s, p in self.positions.items()
                if p.amount
            ),
            Decimal(0),
        )

    def _available(self) -> Decimal:
        return self.wallet["USDT"] - self._margin_used()

    def _set_leverage(self, params: dict[str, str]) -> web.Response:
        leverage = int(params["leverage"])
        if not 1 <= leverage <= MAX_LEVERAGE:
            return self._json(400, {"code": -4028, "msg": f"Leverage {leverage} is not valid"})
        self.leverage[params["symbol"]] = leverage
        return self._json(
            200,
            {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": params["symbol"]},
        )

    def _assets(self) -> list[dict[str, Any]]:
        wallet = self.wallet["USDT"]
        used = self._margin_used()
        return [
            {
                "asset": "USDT",
                "walletBalance": str(wallet),
                "unrealizedProfit": "0.00000000",
                "marginBalance": str(wallet),
                "maintMargin": "0.00000000",
                "initialMargin": str(used),
                "positionInitialMargin": str(used),
                "openOrderInitialMargin": "0.00000000",
                "crossWalletBalance": str(wallet),
                "crossUnPnl": "0.00000000",
                "availableBalance": str(wallet - used),
                "maxWithdrawAmount": str(wallet - used),
                "marginAvailable": True,
                "updateTime": _now_ms(),
            }
        ]

    def _futures_account(self, params: dict[str, str]) -> web.Response:
        wallet, used = self.wallet["USDT"], self._margin_used()
        return self._json(
            200,
            {
                "feeTier": 0,
                "canTrade": True,
                "canDeposit": True,
                "canWithdraw": True,
                "updateTime": 0,
                "multiAssetsMargin": False,
                "totalInitialMargin": str(used),
                "totalMaintMargin": "0.00000000",
                "totalWalletBalance": str(wallet),
                "totalUnrealizedProfit": "0.00000000",
                "totalMarginBalance": str(wallet),
                "totalPositionInitialMargin": str(used),
                "totalOpenOrderInitialMargin": "0.00000000",
                "totalCrossWalletBalance": str(wallet),
                "totalCrossUnPnl": "0.00000000",
                "availableBalance": str(wallet - used),
                "maxWithdrawAmount": str(wallet - used),
                "assets": self._assets(),
                "positions": [
                    {
                        "symbol": s,
                        "positionSide": "BOTH",
                        "positionAmt": str(p.amount),
                        "unrealizedProfit": "0.00000000",
                        "isolatedMargin": "0.00000000",
                        "notional": str(p.amount * p.entry_price),
                        "isolatedWallet": "0",
                        "initialMargin": str(abs(p.amount) * p.entry_price / self._leverage_of(s)),
                        "maintMargin": "0",
                        "updateTime": 0,
                    }
                    for s, p in self.positions.items()
                ],
            },
        )

    def _futures_balance(self, params: dict[str, str]) -> web.Response:
        wallet, used = self.wallet["USDT"], self._margin_used()
        return self._json(
            200,
            [
                {
                    "accountAlias": "SgsR",
                    "asset": "USDT",
                    "balance": str(wallet),
                    "crossWalletBalance": str(wallet),
                    "crossUnPnl": "0.00000000",
                    "availableBalance": str(wallet - used),
                    "maxWithdrawAmount": str(wallet - used),
                    "marginAvailable": True,
                    "updateTime": _now_ms(),
                }
            ],
        )

    def _position_risk(self, params: dict[str, str]) -> web.Response:
        symbols = (
            [params["symbol"]]
            if "symbol" in params
            else [s["symbol"] for s in self.futures_symbols]
        )
        rows = []
        for s in symbols:
            p = self.positions.get(s, Position())
            price = self.prices.get(s, Decimal(1))
            rows.append(
                {
                    "symbol": s,
                    "positionAmt": str(p.amount),
                    "entryPrice": str(p.entry_price),
                    "breakEvenPrice": str(p.entry_price),
                    "markPrice": str(price),
                    "unRealizedProfit": str((price - p.entry_price) * p.amount),
                    "liquidationPrice": "0",
                    "leverage": str(self._leverage_of(s)),
                    "maxNotionalValue": "1000000",
                    "marginType": "cross",
                    "isolatedMargin": "0.00000000",
                    "isAutoAddMargin": "false",
                    "positionSide": "BOTH",
                    "notional": str(p.amount * price),
                    "isolatedWallet": "0",
                    "updateTime": _now_ms(),
                    "isolated": False,
                    "adlQuantile": 0,
                }
            )
        return self._json(200, rows)

    # -- trading --------------------------------------------------------------------------

    def _new_futures_order(self, params: dict[str, str]) -> web.Response:
        symbol, side, kind = params["symbol"], params["side"], params["type"]
        if params.get("positionSide", "BOTH") != "BOTH":
            return self._json(
                400, {"code": -4061, "msg": "Order's position side does not match user's setting."}
            )
        qty = Decimal(params["quantity"])
        cid = params.get("newClientOrderId") or f"x-{next(self._ids)}"
        if any(o["clientOrderId"] == cid for o in self.orders.values() if o["symbol"] == symbol):
            return self._json(*DUPLICATE_CLIENT_ID)
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        pos = self.position(symbol)
        signed = qty if side == "BUY" else -qty
        if reduce_only:
            if pos.amount == 0 or (pos.amount > 0) == (signed > 0):
                return self._json(*REDUCE_ONLY_REJECTED)
            qty = min(qty, abs(pos.amount))
            signed = qty if side == "BUY" else -qty
        price = (
            Decimal(params["price"]) if "price" in params else self.prices.get(symbol, Decimal(1))
        )
        if not reduce_only and qty * price < Decimal(100):  # MIN_NOTIONAL
            return self._json(*NOTIONAL_TOO_SMALL)
        opening = pos.amount == 0 or (pos.amount > 0) == (signed > 0)
        if opening and qty * price / self._leverage_of(symbol) > self._available():
            return self._json(*MARGIN_INSUFFICIENT)
        order_id = next(self._ids)
        now = _now_ms()
        order: dict[str, Any] = {
            "orderId": order_id,
            "symbol": symbol,
            "status": "NEW",
            "clientOrderId": cid,
            "price": params.get("price", "0"),
            "avgPrice": "0.00",
            "origQty": str(qty),
            "executedQty": "0",
            "cumQty": "0",
            "cumQuote": "0",
            "timeInForce": params.get("timeInForce", "GTC"),
            "type": kind,
            "reduceOnly": reduce_only,
            "closePosition": False,
            "side": side,
            "positionSide": "BOTH",
            "stopPrice": params.get("stopPrice", "0"),
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": kind,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": now,
            "updateTime": now,
            # not part of Binance's answer: what the account's leverage was at placement
            "_leverage": self._leverage_of(symbol),
        }
        if kind == "MARKET":
            order.update(
                status="FILLED",
                avgPrice=str(price),
                executedQty=str(qty),
                cumQty=str(qty),
                cumQuote=str(qty * price),
            )
            self._fill(symbol, signed, price, order_id=order_id, side=side)
        self.orders[order_id] = order
        if params.get("newOrderRespType", "ACK") == "ACK":
            # Binance's default answer: the order as accepted, before it matched.
            ack = dict(
                order, status="NEW", avgPrice="0.00", executedQty="0", cumQty="0", cumQuote="0"
            )
            return self._json(200, _public(ack))
        return self._json(200, _public(order))

    def _fill(
        self, symbol: str, signed: Decimal, price: Decimal, *, order_id: int, side: str
    ) -> None:
        pos = self.position(symbol)
        fee = abs(signed) * price * TAKER_FEE
        self.wallet["USDT"] -= fee
        self.user_trades.append(
            {
                "buyer": side == "BUY",
                "commission": str(fee),
                "commissionAsset": "USDT",
                "id": next(self._ids),
                "maker": False,
                "orderId": order_id,
                "price": str(price),
                "qty": str(abs(signed)),
                "quoteQty": str(abs(signed) * price),
                "realizedPnl": "0",
                "side": side,
                "positionSide": "BOTH",
                "symbol": symbol,
                "time": _now_ms(),
            }
        )
        new = pos.amount + signed
        if pos.amount == 0 or (pos.amount > 0) == (signed > 0):  # open or add
            pos.entry_price = (pos.amount * pos.entry_price + signed * price) / new
        else:  # reduce: realize the profit of the closed part
            closed = min(abs(signed), abs(pos.amount))
            direction = 1 if pos.amount > 0 else -1
            self.wallet["USDT"] += (price - pos.entry_price) * closed * direction
            if new == 0:
                pos.entry_price = Decimal(0)
        pos.amount = new

    def _get_futures_order(self, params: dict[str, str]) -> web.Response:
        order = self._find(params)
        return self._json(200, _public(order)) if order else self._json(*NOT_FOUND)

    def _cancel_futures_order(self, params: dict[str, str]) -> web.Response:
        order = self._find(params)
        if order is None or order["status"] != "NEW":
            return self._json(*UNKNOWN_ORDER)
        order["status"] = "CANCELED"
        order["updateTime"] = _now_ms()
        return self._json(200, _public(order))

    def _futures_open_orders(self, params: dict[str, str]) -> web.Response:
        symbol = params.get("symbol")
        rows = [
            _public(o)
            for o in self.orders.values()
            if o["status"] == "NEW" and (symbol is None or o["symbol"] == symbol)
        ]
        return self._json(200, rows)

    def _new_algo_order(self, params: dict[str, str]) -> web.Response:
        symbol, kind = params["symbol"], params["type"]
        if params.get("algoType") != "CONDITIONAL" or kind not in (
            "STOP_MARKET",
            "TAKE_PROFIT_MARKET",
        ):
            return self._json(400, {"code": -1116, "msg": "Invalid orderType."})
        cid = params.get("clientAlgoId") or f"x-{next(self._ids)}"
        if any(a["clientAlgoId"] == cid for a in self.algo_orders.values()):
            return self._json(*DUPLICATE_CLIENT_ID)
        if "triggerPrice" not in params or "quantity" not in params:
            return self._json(
                400, {"code": -1102, "msg": "Mandatory parameter was not sent or was empty."}
            )
        algo_id = next(self._ids)
        now = _now_ms()
        algo: dict[str, Any] = {
            "algoId": algo_id,
            "clientAlgoId": cid,
            "algoType": "CONDITIONAL",
            "orderType": kind,
            "symbol": symbol,
            "side": params["side"],
            "positionSide": "BOTH",
            "timeInForce": params.get("timeInForce", "GTC"),
            "quantity": params["quantity"],
            "algoStatus": "NEW",
            "triggerPrice": params["triggerPrice"],
            "price": "0.00",
            "icebergQuantity": None,
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": params.get("workingType", "CONTRACT_PRICE"),
            "priceMatch": "NONE",
            "closePosition": False,
            "priceProtect": False,
            "reduceOnly": params.get("reduceOnly", "false").lower() == "true",
            "activatePrice": "",
            "callbackRate": "",
            "createTime": now,
            "updateTime": now,
            "triggerTime": 0,
            "goodTillDate": 0,
        }
        self.algo_orders[algo_id] = algo
        return self._json(200, algo)

    def _find_algo(self, params: dict[str, str]) -> dict[str, Any] | None:
        if "clientAlgoId" in params:
            matches = [
                a for a in self.algo_orders.values() if a["clientAlgoId"] == params["clientAlgoId"]
            ]
            return matches[-1] if matches else None
        if "algoId" in params:
            return self.algo_orders.get(int(params["algoId"]))
        return None

    def _get_algo_order(self, params: dict[str, str]) -> web.Response:
        algo = self._find_algo(params)
        if algo is None:
            return self._json(*NOT_FOUND)
        return self._json(200, {"actualOrderId": "", "actualPrice": "0.00", **algo})

    def _cancel_algo_order(self, params: dict[str, str]) -> web.Response:
        algo = self._find_algo(params)
        if algo is None or algo["algoStatus"] != "NEW":
            return self._json(*UNKNOWN_ORDER)
        algo.update(algoStatus="CANCELED", updateTime=_now_ms())
        return self._json(
            200,
            {
                "algoId": algo["algoId"],
                "clientAlgoId": algo["clientAlgoId"],
                "code": "200",
                "msg": "success",
            },
        )

    def _open_algo_orders(self, params: dict[str, str]) -> web.Response:
        symbol = params.get("symbol")
        rows = [
            a
            for a in self.algo_orders.values()
            if a["algoStatus"] == "NEW" and (symbol is None or a["symbol"] == symbol)
        ]
        return self._json(200, rows)

    def _user_trades(self, params: dict[str, str]) -> web.Response:
        rows = [
            t
            for t in self.user_trades
            if t["symbol"] == params.get("symbol")
            and ("orderId" not in params or str(t["orderId"]) == params["orderId"])
        ]
        return self._json(200, rows)

    def order_leverage(self, client_order_id: str) -> int:
        """The account's leverage on the order's symbol when the order was placed."""
        [order] = [o for o in self.orders.values() if o["clientOrderId"] == client_order_id]
        return int(order["_leverage"])


def _public(order: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in order.items() if not k.startswith("_")}


__all__ = ["BTCUSDT_PERPETUAL", "FakeBinanceFutures", "Position", "default_klines"]
