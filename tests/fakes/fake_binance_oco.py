"""Binance spot order lists (OCO) for ``FakeBinance``, as Binance documents them
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints):

- ``POST /api/v3/orderList/oco``: ``symbol``, ``side``, ``quantity``, ``listClientOrderId``;
  the ``above`` leg (``aboveType`` ``LIMIT_MAKER``, ``abovePrice``, ``aboveClientOrderId``)
  and the ``below`` leg (``belowType`` ``STOP_LOSS_LIMIT``, ``belowStopPrice``,
  ``belowPrice``, ``belowTimeInForce``, ``belowClientOrderId``). For a sell the above leg
  must sit over the price and the below leg's stop under it (-2010 otherwise). The answer
  carries ``orderListId``, ``contingencyType`` ``OCO``, ``listStatusType``
  ``EXEC_STARTED``, ``orders`` (ids of both legs) and ``orderReports`` (both legs).
- ``GET /api/v3/orderList`` and ``DELETE /api/v3/orderList`` by ``orderListId`` or
  ``origClientOrderId`` (the list's client id).

The list locks its quantity once. Each leg is an order of its own (``GET /api/v3/order``
finds it, ``openOrders`` lists it); cancelling one leg cancels the list; when one leg fills
the other expires (``EXPIRED``) and the list is ``ALL_DONE``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.fake_binance import FakeBinance

BAD_PRICES = (
    400,
    {"code": -2010, "msg": "The relationship of the prices for the orders is not correct."},
)
UNKNOWN_LIST = (400, {"code": -2011, "msg": "Order list does not exist."})


def _leg(
    fake: FakeBinance, params: dict[str, str], list_id: int, where: str, now: int
) -> dict[str, Any]:
    kind = params[f"{where}Type"]
    return {
        "symbol": params["symbol"],
        "orderId": next(fake._ids),
        "orderListId": list_id,
        "clientOrderId": params.get(f"{where}ClientOrderId") or f"x-{next(fake._ids)}",
        "transactTime": now,
        "time": now,
        "updateTime": now,
        "workingTime": now,
        "price": params.get(f"{where}Price", "0.00000000"),
        "origQty": params["quantity"],
        "executedQty": "0.00000000",
        "cummulativeQuoteQty": "0.00000000",
        "status": "NEW",
        "timeInForce": params.get(f"{where}TimeInForce", "GTC"),
        "type": kind,
        "side": params["side"],
        "stopPrice": params.get(f"{where}StopPrice", "0.00000000"),
        "isWorking": kind == "LIMIT_MAKER",
        "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "fills": [],
    }


def _answer(fake: FakeBinance, listed: dict[str, Any]) -> dict[str, Any]:
    legs = [fake.orders[i] for i in listed["legs"]]
    return {
        "orderListId": listed["orderListId"],
        "contingencyType": "OCO",
        "listStatusType": listed["listStatusType"],
        "listOrderStatus": listed["listOrderStatus"],
        "listClientOrderId": listed["listClientOrderId"],
        "transactionTime": listed["transactionTime"],
        "symbol": listed["symbol"],
        "orders": [
            {"symbol": o["symbol"], "orderId": o["orderId"], "clientOrderId": o["clientOrderId"]}
            for o in legs
        ],
        "orderReports": [
            {k: v for k, v in o.items() if k not in {"fills", "time", "isWorking"}} for o in legs
        ],
    }


def new_oco(fake: FakeBinance, params: dict[str, str]) -> web.Response:
    symbol, side = params["symbol"], params["side"]
    qty = Decimal(params["quantity"])
    market = next(s for s in fake.symbols if s["symbol"] == symbol)
    if not market.get("ocoAllowed", True) or params.get("aboveType") != "LIMIT_MAKER":
        return fake._json(400, {"code": -1116, "msg": "Invalid orderType."})
    if params.get("belowType") != "STOP_LOSS_LIMIT":
        return fake._json(400, {"code": -1116, "msg": "Invalid orderType."})
    price = fake.prices.get(symbol, Decimal(1))
    above, below = Decimal(params["abovePrice"]), Decimal(params["belowStopPrice"])
    if side != "SELL" or not below < price < above:
        return fake._json(*BAD_PRICES)
    cids = {params.get("aboveClientOrderId"), params.get("belowClientOrderId")} - {None}
    if any(o["clientOrderId"] in cids and o["status"] == "NEW" for o in fake.orders.values()):
        return fake._json(400, {"code": -2010, "msg": "Duplicate order sent."})
    free = fake.balances.setdefault(market["baseAsset"], [Decimal(0), Decimal(0)])
    if free[0] < qty:
        return fake._json(
            400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}
        )
    free[0] -= qty
    free[1] += qty
    list_id = next(fake._ids)
    now = fake_now()
    legs = [_leg(fake, params, list_id, "below", now), _leg(fake, params, list_id, "above", now)]
    for leg in legs:
        fake.orders[leg["orderId"]] = leg
    listed = {
        "orderListId": list_id,
        "listStatusType": "EXEC_STARTED",
        "listOrderStatus": "EXECUTING",
        "listClientOrderId": params.get("listClientOrderId") or f"x-{list_id}",
        "transactionTime": now,
        "symbol": symbol,
        "legs": [leg["orderId"] for leg in legs],
    }
    fake.order_lists[list_id] = listed
    return fake._json(200, _answer(fake, listed))


def _find(fake: FakeBinance, params: dict[str, str]) -> dict[str, Any] | None:
    if "orderListId" in params:
        return fake.order_lists.get(int(params["orderListId"]))
    cid = params.get("origClientOrderId") or params.get("listClientOrderId")
    found = [v for v in fake.order_lists.values() if v["listClientOrderId"] == cid]
    return found[-1] if found else None


def get_list(fake: FakeBinance, params: dict[str, str]) -> web.Response:
    listed = _find(fake, params)
    return fake._json(200, _answer(fake, listed)) if listed else fake._json(*UNKNOWN_LIST)


def cancel(fake: FakeBinance, listed: dict[str, Any]) -> bool:
    """Cancel the list (both legs) and unlock its quantity; False if it is done already."""
    legs = [fake.orders[i] for i in listed["legs"]]
    if listed["listOrderStatus"] != "EXECUTING" or any(o["status"] != "NEW" for o in legs):
        return False
    market = next(s for s in fake.symbols if s["symbol"] == listed["symbol"])
    qty = Decimal(legs[0]["origQty"])
    fake.balances[market["baseAsset"]][0] += qty
    fake.balances[market["baseAsset"]][1] -= qty
    now = fake_now()
    for o in legs:
        o.update(status="CANCELED", updateTime=now)
    listed.update(listStatusType="ALL_DONE", listOrderStatus="ALL_DONE")
    return True


def cancel_list(fake: FakeBinance, params: dict[str, str]) -> web.Response:
    listed = _find(fake, params)
    if listed is None or not cancel(fake, listed):
        return fake._json(*UNKNOWN_LIST)
    return fake._json(200, _answer(fake, listed))


def filled(fake: FakeBinance, leg: dict[str, Any]) -> None:
    """A leg filled: the other leg expires and the list is done."""
    listed = fake.order_lists[leg["orderListId"]]
    for i in listed["legs"]:
        other = fake.orders[i]
        if other is not leg and other["status"] == "NEW":
            other.update(status="EXPIRED", updateTime=fake_now())
    listed.update(listStatusType="ALL_DONE", listOrderStatus="ALL_DONE")


def fake_now() -> int:
    from tests.fakes.fake_binance import _now_ms

    return _now_ms()
