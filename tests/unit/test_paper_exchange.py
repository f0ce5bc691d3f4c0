"""The paper exchange fills as documented: next open, touches, fees, one order per client id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from worker.candles import Candle
from worker.errors import Fatal
from worker.exchanges import OrderStatus, PaperExchange, make_client_order_id

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FIVE = timedelta(minutes=5)


def candle(i: int, o: str, h: str, lo: str, c: str) -> Candle:
    return Candle(T0 + i * FIVE, D(o), D(h), D(lo), D(c), D("10"))


def paper(**kwargs: object) -> PaperExchange:
    ex = PaperExchange("binance", {"USDT": D("10000"), "BTC": D("0")}, **kwargs)  # type: ignore[arg-type]
    ex.on_candle("BTC/USDT", "5m", candle(0, "42000", "42100", "41900", "42050"))
    return ex


async def test_market_buy_fills_at_next_candle_open_with_taker_fee() -> None:
    ex = paper()
    order = await ex.create_order("BTC/USDT", "buy", "market", D("0.1"))
    assert order.status is OrderStatus.OPEN  # nothing fills before the next candle

    filled = ex.on_candle("BTC/USDT", "5m", candle(1, "42200", "42500", "42100", "42400"))

    assert [o.id for o in filled] == [order.id]
    fill = filled[0]
    assert fill.status is OrderStatus.CLOSED
    assert fill.average == D("42200")  # next candle's open, not the last close
    assert fill.cost == D("4220.0")
    assert fill.fee is not None and fill.fee.cost == D("4.22000") and fill.fee.currency == "USDT"
    balance = await ex.fetch_balance()
    assert balance["BTC"].free == D("0.1")
    assert balance["USDT"].free == D("10000") - D("4220") - D("4.22")
    assert balance["USDT"].used == 0


async def test_slippage_moves_market_fills_against_the_trader() -> None:
    ex = paper(slippage=D("0.001"))
    buy = await ex.create_order("BTC/USDT", "buy", "market", D("0.1"))
    [fill] = ex.on_candle("BTC/USDT", "5m", candle(1, "42000", "42500", "41900", "42400"))
    assert fill.id == buy.id and fill.average == D("42042.000")
    await ex.create_order("BTC/USDT", "sell", "market", D("0.1"))
    [sell] = ex.on_candle("BTC/USDT", "5m", candle(2, "43000", "43100", "42900", "43000"))
    assert sell.average == D("42957.000")


async def test_amount_is_rounded_to_the_real_binance_step() -> None:
    ex = paper()
    order = await ex.create_order("BTC/USDT", "buy", "limit", D("0.0123456789"), D("41000.009"))
    assert order.amount == D("0.01234")
    assert order.price == D("41000.01")


async def test_order_below_min_cost_is_rejected_naming_the_limit() -> None:
    ex = paper()
    with pytest.raises(Fatal, match=r"limits\.cost\.min"):
        await ex.create_order("BTC/USDT", "buy", "market", D("0.0001"))


async def test_limit_buy_fills_only_when_low_touches_the_price_with_maker_fee() -> None:
    ex = paper(maker_fee=D("0.0002"))
    order = await ex.create_order("BTC/USDT", "buy", "limit", D("0.1"), D("41500"))
    assert ex.on_candle("BTC/USDT", "5m", candle(1, "42000", "42300", "41600", "42000")) == []
    assert (await ex.fetch_balance())["USDT"].used > 0

    [fill] = ex.on_candle("BTC/USDT", "5m", candle(2, "42000", "42100", "41400", "41800"))
    assert fill.id == order.id and fill.average == D("41500")
    assert fill.fee is not None and fill.fee.cost == D("4150.0") * D("0.0002")
    assert await ex.fetch_open_orders() == []


async def test_limit_sell_fills_when_high_touches() -> None:
    ex = PaperExchange("binance", {"BTC": D("1")})
    ex.on_candle("BTC/USDT", "5m", candle(0, "42000", "42100", "41900", "42050"))
    await ex.create_order("BTC/USDT", "sell", "limit", D("0.5"), D("42500"))
    [fill] = ex.on_candle("BTC/USDT", "5m", candle(1, "42100", "42600", "42000", "42200"))
    assert fill.average == D("42500")
    balance = await ex.fetch_balance()
    assert balance["BTC"].total == D("0.5")
    assert balance["USDT"].free == D("21250") - D("21250") * D("0.001")


async def test_stop_sell_triggers_when_low_touches_the_stop() -> None:
    ex = PaperExchange("binance", {"BTC": D("1")})
    ex.on_candle("BTC/USDT", "5m", candle(0, "42000", "42100", "41900", "42050"))
    stop = await ex.create_order("BTC/USDT", "sell", "stop", D("1"), stop_price=D("41000"))
    assert ex.on_candle("BTC/USDT", "5m", candle(1, "42000", "42100", "41500", "41600")) == []
    [fill] = ex.on_candle("BTC/USDT", "5m", candle(2, "41600", "41700", "40500", "40800"))
    assert fill.id == stop.id and fill.average == D("41000")


async def test_stop_that_gaps_through_fills_at_the_open() -> None:
    ex = PaperExchange("binance", {"BTC": D("1")})
    ex.on_candle("BTC/USDT", "5m", candle(0, "42000", "42100", "41900", "42050"))
    await ex.create_order("BTC/USDT", "sell", "stop", D("1"), stop_price=D("41000"))
    [fill] = ex.on_candle("BTC/USDT", "5m", candle(1, "40000", "40100", "39500", "39800"))
    assert fill.average == D("40000")


async def test_same_client_order_id_twice_gives_one_order() -> None:
    ex = paper()
    cid = make_client_order_id("bot-1", "2024-01-01T00:05", "entry")
    first = await ex.create_order(
        "BTC/USDT", "buy", "limit", D("0.1"), D("41000"), client_order_id=cid
    )
    again = await ex.create_order(
        "BTC/USDT", "buy", "limit", D("0.1"), D("41000"), client_order_id=cid
    )
    assert again == first
    assert len(await ex.fetch_open_orders("BTC/USDT")) == 1
    assert (await ex.fetch_balance())["USDT"].used == D("0.1") * D("41000") * D("1.001")
    assert await ex.reconcile([cid, "tfunknown"], "BTC/USDT") == {cid: first}


async def test_place_order_once_returns_the_filled_order_after_a_retry() -> None:
    ex = paper()
    cid = make_client_order_id("bot-1", "decision-7")
    await ex.place_order_once("BTC/USDT", "buy", "market", D("0.1"), client_order_id=cid)
    ex.on_candle("BTC/USDT", "5m", candle(1, "42200", "42500", "42100", "42400"))
    retried = await ex.place_order_once("BTC/USDT", "buy", "market", D("0.1"), client_order_id=cid)
    assert retried.status is OrderStatus.CLOSED
    assert (await ex.fetch_balance())["BTC"].free == D("0.1")


async def test_insufficient_funds_is_fatal_and_names_the_shortfall() -> None:
    ex = paper()
    with pytest.raises(Fatal, match=r"insufficient funds.*USDT free"):
        await ex.create_order("BTC/USDT", "buy", "limit", D("1"), D("42000"))


async def test_cancel_releases_reserved_funds() -> None:
    ex = paper()
    order = await ex.create_order("BTC/USDT", "buy", "limit", D("0.1"), D("41000"))
    canceled = await ex.cancel_order(order.id, "BTC/USDT")
    assert canceled.status is OrderStatus.CANCELED
    balance = await ex.fetch_balance()
    assert balance["USDT"].free == D("10000") and balance["USDT"].used == 0


async def test_a_replayed_candle_does_not_fill_twice() -> None:
    ex = paper()
    await ex.create_order("BTC/USDT", "buy", "market", D("0.1"))
    c1 = candle(1, "42200", "42500", "42100", "42400")
    assert len(ex.on_candle("BTC/USDT", "5m", c1)) == 1
    assert ex.on_candle("BTC/USDT", "5m", c1) == []
    assert (await ex.fetch_balance())["BTC"].free == D("0.1")


async def test_fetch_ohlcv_returns_the_closed_candles_seen() -> None:
    ex = paper()
    ex.on_candle("BTC/USDT", "5m", candle(1, "42200", "42500", "42100", "42400"))
    candles = await ex.fetch_ohlcv("BTC/USDT", "5m", limit=1)
    assert [c.time for c in candles] == [T0 + FIVE]


async def test_runs_are_deterministic() -> None:
    async def run() -> list[object]:
        ex = paper(slippage=D("0.0005"))
        await ex.create_order("BTC/USDT", "buy", "market", D("0.1"), client_order_id="tfa")
        out: list[object] = ex.on_candle(
            "BTC/USDT", "5m", candle(1, "42200", "42300", "42100", "42250")
        )
        await ex.create_order(
            "BTC/USDT", "sell", "limit", D("0.05"), D("42450"), client_order_id="tfb"
        )
        out += ex.on_candle("BTC/USDT", "5m", candle(2, "42250", "42500", "42200", "42400"))
        assert len(out) == 2
        out.append(await ex.fetch_balance())
        return out

    assert await run() == await run()


async def test_contract_markets_are_refused_with_a_reason() -> None:
    ex = paper()
    with pytest.raises(Fatal, match="spot markets only"):
        await ex.create_order("BTC/USDT:USDT", "buy", "market", D("0.01"), leverage=5)


async def test_a_margin_account_shorts_against_quote_collateral_and_buys_back() -> None:
    ex = paper(margin=True, taker_fee=D("0.001"), maker_fee=D("0.001"))
    short = await ex.create_order("BTC/USDT", "sell", "market", D("0.1"))
    balance = await ex.fetch_balance()
    assert balance["USDT"].used == D("0.1") * D("42050") * D("1.001")  # collateral, like a buy
    [fill] = ex.on_candle("BTC/USDT", "5m", candle(1, "42000", "42100", "41900", "42000"))
    assert fill.id == short.id and fill.status is OrderStatus.CLOSED
    balance = await ex.fetch_balance()
    assert balance["BTC"].free == D("-0.1")  # owed
    assert balance["USDT"].free == D("10000") + D("4200") - D("4.2") and balance["USDT"].used == 0
    await ex.create_order("BTC/USDT", "buy", "market", D("0.1"))
    ex.on_candle("BTC/USDT", "5m", candle(2, "41000", "41100", "40900", "41000"))
    balance = await ex.fetch_balance()
    assert balance["BTC"].total == 0
    assert balance["USDT"].total == D("10000") + D("4200") - D("4.2") - D("4100") - D("4.1")
    # a short the quote cannot cover is refused, naming what is missing
    with pytest.raises(Fatal, match="insufficient funds"):
        await ex.create_order("BTC/USDT", "sell", "market", D("1"))


async def test_a_bot_paper_limit_order_fills_its_share_of_each_candles_volume() -> None:
    from worker.bots.paper import BotPaperExchange

    ex = BotPaperExchange("binance", {"USDT": D("20000")}, volume_share=D("0.01"))
    ex.on_candle("BTC/USDT", "5m", candle(0, "42000", "42100", "41900", "42050"))
    order = await ex.create_order("BTC/USDT", "buy", "limit", D("0.25"), D("41950"))
    # touched: 1 % of the candle's 10 BTC fills (0.1), the rest rests and is not reported
    assert ex.on_candle("BTC/USDT", "5m", candle(1, "42000", "42000", "41900", "41950")) == []
    part = await ex.fetch_order(order.id)
    assert part is not None and part.is_open
    assert (part.filled, part.remaining, part.average) == (D("0.1"), D("0.15"), D("41950"))
    # not touched: nothing more
    assert ex.on_candle("BTC/USDT", "5m", candle(2, "42000", "42100", "41990", "42000")) == []
    # touched again: another 0.1; then the timeout cancels what is left
    ex.on_candle("BTC/USDT", "5m", candle(3, "42000", "42000", "41900", "41950"))
    final = await ex.cancel_order(order.id, "BTC/USDT")
    assert final.status is OrderStatus.CANCELED and final.filled == D("0.2")
    assert final.fee is not None and final.fee.cost == D("0.2") * D("41950") * D("0.001")
    balance = await ex.fetch_balance()
    assert balance["BTC"].free == D("0.2")
    assert balance["USDT"].used == 0
    assert balance["USDT"].free == D("20000") - D("0.2") * D("41950") * D("1.001")
    # an order within the share fills whole, and reported, as without a share
    small = await ex.create_order("BTC/USDT", "sell", "limit", D("0.05"), D("41960"))
    [done] = ex.on_candle("BTC/USDT", "5m", candle(4, "41950", "42000", "41900", "41990"))
    assert done.id == small.id and done.status is OrderStatus.CLOSED and done.filled == D("0.05")


async def test_a_bot_paper_account_forgets_orders_closed_before_the_previous_close() -> None:
    # A worker keeps its bots' accounts for as long as it runs: a bot trading on every
    # candle must not make its account grow with every order it ever placed.
    from worker.bots.paper import BotPaperExchange

    ex = BotPaperExchange("binance", {"USDT": D("100000")})
    ex.on_candle("BTC/USDT", "5m", candle(0, "42000", "42100", "41900", "42050"))
    ids: list[tuple[str, str]] = []
    for i in range(1, 200):
        side = "buy" if i % 2 else "sell"
        cid = make_client_order_id("bot-1", str(i), "entry")
        order = await ex.create_order("BTC/USDT", side, "market", D("0.01"), client_order_id=cid)
        ids.append((order.id, cid))
        [filled] = ex.on_candle("BTC/USDT", "5m", candle(i, "42000", "42100", "41900", "42050"))
        assert filled.id == order.id
        # the order the step just saw fill, and the one before it, are still known by id
        # and client order id: a retry within the close places nothing again
        again = await ex.create_order("BTC/USDT", side, "market", D("0.01"), client_order_id=cid)
        assert again.id == order.id and again.status is OrderStatus.CLOSED
        if len(ids) > 1:
            previous_id, previous_cid = ids[-2]
            assert await ex.fetch_order(previous_id) is not None
            assert await ex.fetch_order_by_client_id(previous_cid, "BTC/USDT") is not None
    remembered = [oid for oid, _ in ids if await ex.fetch_order(oid) is not None]
    assert len(remembered) <= 3
    oldest_cid = ids[0][1]
    assert await ex.fetch_order_by_client_id(oldest_cid, "BTC/USDT") is None
    # the balances are those of every fill: 100 buys and 99 sells of 0.01 BTC
    balance = await ex.fetch_balance()
    assert balance["BTC"].total == D("0.01")
