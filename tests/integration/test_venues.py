"""Every supported exchange passes the same contract through ``LiveExchange``, against a
local fake that speaks its REST API (ccxt's own signing and parsing run unchanged): markets,
balance, market and limit orders, a protective stop, cancel, lookup by client id, leverage
and margin mode on contracts, and the exchange's error codes as clear bot errors."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from tests.integration.venues import CREDENTIALS, VENUES, Venue
from worker.errors import Fatal, Retryable
from worker.exchanges import ExchangeCredentials
from worker.exchanges import protective as xp
from worker.exchanges.base import make_client_order_id
from worker.exchanges.live import LiveExchange
from worker.exchanges.models import OrderStatus
from worker.exchanges.venues import TRIGGER_CLIENT_ID_PARAM

pytestmark = pytest.mark.parametrize("venue", VENUES, ids=[v.name for v in VENUES])

AMOUNT = Decimal("0.01")


def cid(name: str) -> str:
    """A client order id as bots make them (32 characters)."""
    return make_client_order_id("bot", name)


async def test_markets_and_balance(venue: Venue) -> None:
    async with venue.fake() as fake, venue.open(fake) as ex:
        markets = await ex.load_markets()
        market = markets[venue.symbol]
        assert market.contract is venue.contract
        assert market.active
        balance = await ex.fetch_balance()
    assert balance["USDT"].free == Decimal("10000")
    if not venue.contract:  # a futures wallet (Bitget's) holds only its margin coin
        assert balance["BTC"].total == Decimal("1")


async def test_market_and_limit_orders_cancel_and_lookup_by_client_id(venue: Venue) -> None:
    async with venue.fake() as fake, venue.open(fake) as ex:
        bought = await ex.create_order(
            venue.symbol, "buy", "market", AMOUNT, client_order_id=cid("tfentry1")
        )
        assert bought.status is OrderStatus.CLOSED
        assert bought.filled == AMOUNT and bought.average == Decimal("43000")
        assert bought.client_order_id == cid("tfentry1")
        contract_size = Decimal(str(ex.client.market(venue.symbol).get("contractSize") or 1))
        (sent,) = [o for o in fake.orders.values() if o.id == bought.id]
        assert sent.amount == AMOUNT / contract_size  # OKX counts contracts of 0.01 BTC

        resting = await ex.create_order(
            venue.symbol, "buy", "limit", AMOUNT, Decimal("40000"), client_order_id=cid("tfentry2")
        )
        assert resting.status is OrderStatus.OPEN and resting.price == Decimal("40000")

        found = await ex.fetch_order_by_client_id(cid("tfentry2"), venue.symbol)
        assert found is not None and (found.id, found.status) == (resting.id, OrderStatus.OPEN)
        found = await ex.fetch_order_by_client_id(cid("tfentry1"), venue.symbol)
        assert found is not None and (found.id, found.status) == (bought.id, OrderStatus.CLOSED)
        assert await ex.fetch_order_by_client_id(cid("tfneversent"), venue.symbol) is None
        assert [o.id for o in await ex.fetch_open_orders(venue.symbol)] == [resting.id]

        canceled = await ex.cancel_order(resting.id, venue.symbol)
        assert canceled.status is OrderStatus.CANCELED
        assert await ex.fetch_open_orders(venue.symbol) == []
        # cancelling again reports the order as it ended
        again = await ex.cancel_order(resting.id, venue.symbol)
        assert again.status is OrderStatus.CANCELED


async def test_a_protective_stop_is_accepted_and_reported(venue: Venue) -> None:
    async with venue.fake() as fake, venue.open(fake) as ex:
        await ex.create_order(venue.symbol, "buy", "market", AMOUNT, client_order_id=cid("tfin"))
        if venue.stop is None:
            with pytest.raises(Fatal, match="not supported"):
                await ex.create_order(
                    venue.symbol,
                    "sell",
                    "market",
                    AMOUNT,
                    client_order_id=cid("tfstop"),
                    params=_stop_loss_params(Decimal("41000"), venue.contract),
                )
            return
        stop = await ex.create_order(
            venue.symbol,
            "sell",
            "market",
            AMOUNT,
            client_order_id=cid("tfstop"),
            params=venue.stop(Decimal("41000"), venue.contract),
        )
        assert stop.stop_price == Decimal("41000")
        assert stop.status is OrderStatus.OPEN and stop.filled == 0
        (resting,) = fake.open_orders()
        assert resting.trigger == Decimal("41000") and resting.side == "sell"
        assert resting.reduce_only or not venue.contract  # a contract stop only closes
        canceled = await ex.cancel_order(stop.id, venue.symbol, params=venue.stop_cancel)
        assert canceled.status is OrderStatus.CANCELED
        assert fake.open_orders() == []


def _stop_loss_params(price: Decimal, contract: bool) -> dict[str, object]:
    return {"stopLossPrice": float(price), **({"reduceOnly": True} if contract else {})}


async def test_leverage_and_margin_mode_on_contracts(venue: Venue) -> None:
    async with venue.fake() as fake, venue.open(fake) as ex:
        await ex.load_markets()
        if not venue.contract:
            with pytest.raises(Fatal, match="spot"):
                await ex.set_leverage(venue.symbol, 5)
            return
        await ex.set_leverage(venue.symbol, 5)
        await ex.set_leverage(venue.symbol, 5)  # unchanged: no second request
        await ex.set_margin_mode(venue.symbol, "isolated")
        order = await ex.create_order(
            venue.symbol, "sell", "market", AMOUNT, leverage=3, client_order_id=cid("tfshort")
        )
    assert order.status is OrderStatus.CLOSED
    assert set(fake.leverage.values()) == {3}
    assert "isolated" in str(fake.margin_mode).lower()


ERRORS = [
    ("insufficient", Fatal, "insufficient funds"),
    ("invalid", Fatal, "rejected the order"),
    ("rate_limit", Retryable, "rate limited"),
    ("maintenance", Retryable, "under maintenance"),
]


@pytest.mark.parametrize(("kind", "error", "says"), ERRORS, ids=[e[0] for e in ERRORS])
async def test_error_codes_become_clear_bot_errors(
    venue: Venue, kind: str, error: type[Exception], says: str
) -> None:
    async with venue.fake() as fake, venue.open(fake) as ex:
        await ex.load_markets()
        fake.fail_next(kind, path=venue.create_path)
        with pytest.raises(error, match=says) as raised:
            await ex.create_order(venue.symbol, "buy", "limit", AMOUNT, Decimal("40000"))
    assert type(raised.value) is error
    assert fake.open_orders() == []


async def test_an_order_the_account_cannot_fund_is_refused_as_insufficient(venue: Venue) -> None:
    async with venue.fake() as fake, venue.open(fake) as ex:
        fake.balances["USDT"] = [Decimal("5"), Decimal(0)]
        with pytest.raises(Fatal, match="insufficient funds"):
            await ex.create_order(venue.symbol, "buy", "limit", AMOUNT, Decimal("40000"))


async def test_a_wrong_secret_is_refused_by_the_signature_check(venue: Venue) -> None:
    right = venue.credentials
    wrong = ExchangeCredentials(
        right.api_key, base64.b64encode(b"not-the-secret").decode(), right.password
    )
    async with venue.fake() as fake, venue.open(fake, wrong) as ex:
        with pytest.raises(Fatal, match="rejected the API key"):
            await ex.fetch_balance()


async def test_a_wrong_passphrase_is_refused_where_the_exchange_has_one(venue: Venue) -> None:
    right = venue.credentials
    wrong = ExchangeCredentials(right.api_key, right.secret, "not-the-passphrase")
    async with venue.fake() as fake, venue.open(fake, wrong) as ex:
        if venue.passphrase:
            with pytest.raises(Fatal, match="rejected the API key"):
                await ex.fetch_balance()
        else:  # no passphrase on this exchange: nothing to get wrong
            assert (await ex.fetch_balance())["USDT"].free == Decimal("10000")


async def test_sandbox_mode_points_at_the_exchange_testnet(venue: Venue) -> None:
    if venue.sandbox is None:
        with pytest.raises(Fatal, match="no testnet"):
            LiveExchange(venue.exchange_id, CREDENTIALS, sandbox=True)
        return
    if not venue.sandbox_header:
        ex = LiveExchange(venue.exchange_id, CREDENTIALS, sandbox=True)
        try:
            assert venue.sandbox in str(ex.client.urls["api"])
        finally:
            await ex.close()
    # the testnet speaks the same API: signing and parsing still hold
    async with venue.fake() as fake:
        ex = LiveExchange(
            venue.exchange_id,
            venue.credentials,
            sandbox=True,
            api_base_url=fake.url,
            enable_rate_limit=False,
            default_type=venue.default_type,
        )
        async with ex:
            assert (await ex.fetch_balance())["USDT"].free == Decimal("10000")
        assert fake.sandbox_requests() > 0


async def test_resting_stops_are_listed_by_one_open_orders_query(venue: Venue) -> None:
    """What a bot's close reads instead of asking about each stop: the account's open
    orders list its resting stop (and its plain orders), and no longer once it is gone."""
    if venue.stop is None:
        pytest.skip("the market holds no stop orders")
    async with venue.fake() as fake, venue.open(fake) as ex:
        await ex.create_order(venue.symbol, "buy", "market", AMOUNT, client_order_id=cid("tfin"))
        native = TRIGGER_CLIENT_ID_PARAM.get(ex.id)  # OKX algo orders: algoClOrdId
        stop = await ex.create_order(
            venue.symbol,
            "sell",
            "market",
            AMOUNT,
            client_order_id=cid("tfstop"),
            params={
                **venue.stop(Decimal("41000"), venue.contract),
                **({native: cid("tfstop")} if native else {}),
            },
        )
        wanted = [cid("tfstop"), cid("tfother")]
        before = len(fake.requests)
        listed = await xp.open_protective(ex, [venue.symbol], wanted)
        assert listed == {cid("tfstop")}
        assert len(fake.requests) - before == 1  # one query, however many stops rest
        await ex.cancel_order(stop.id, venue.symbol, params=venue.stop_cancel)
        assert await xp.open_protective(ex, [venue.symbol], wanted) == set()
