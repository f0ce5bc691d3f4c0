"""SnapTrade and Alpaca clients against their documented payloads (respx, no network)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from worker.errors import Fatal, Retryable
from worker.holdings.alpaca import AlpacaClient
from worker.holdings.provider import ProviderCredentials, ProviderRejected
from worker.holdings.snaptrade import SnapTradeClient, SnapTradeConfig, sign, sign_payload

BASE = "https://api.snaptrade.test/api/v1"
CREDS = ProviderCredentials("user-1", "s3cret-user")

# AllAccountPositionsResponse as documented, with its awkward parts: string decimals, a
# position with only the required fields, an option, a kind the schema does not list yet,
# and a position whose units are null.
POSITIONS = {
    "results": [
        {
            "instrument": {
                "kind": "stock",
                "id": "1ef3a5d3-4a9b-40b2-b8d1-cc35f74d6324",
                "symbol": "AAPL",
                "raw_symbol": "AAPL",
                "description": "Apple Inc.",
                "currency": "USD",
                "exchange": "XNAS",
                "figi_instrument": None,
            },
            "units": "10.5",
            "price": "123.45",
            "cost_basis": "118.2",
            "currency": "USD",
            "tax_lots": [],
        },
        {"instrument": {"kind": "etf", "id": "2", "symbol": "VTI", "raw_symbol": "VTI"}},
        {
            "instrument": {"kind": "etf", "id": "3", "symbol": "SPY", "raw_symbol": "SPY"},
            "units": "3",
        },
        {
            "instrument": {
                "kind": "option",
                "id": "899e2697-1d38-4c07-91ee-c16a2b1ce5c9",
                "symbol": "AAPL  261218C00240000",
                "option_type": "CALL",
                "strike_price": "240",
                "expiration_date": "2026-12-18",
                "multiplier": "100",
                "underlying": {"kind": "stock", "id": "1", "symbol": "AAPL", "raw_symbol": "AAPL"},
            },
            "units": "-2",
            "price": "5.10",
            "cost_basis": "4.00",
            "currency": None,
        },
        {
            "instrument": {
                "kind": "bond",
                "id": "9",
                "symbol": "US912828XX",
                "raw_symbol": "US912828XX",
                "description": "T-Note",
            },
            "units": "1000",
            "price": "0.991",
        },
        {
            "instrument": {
                "kind": "mutualfund",
                "id": "4",
                "symbol": "VMFXX",
                "raw_symbol": "VMFXX",
            },
            "units": "0.000000000001",
            "price": "1",
            "cash_equivalent": True,
        },
    ],
    "data_freshness": {"as_of": "2026-06-02T14:30:00Z"},
}

ACCOUNTS = [
    {
        "id": "917c8734-8470-4a3e-a18f-57c3f2ee6631",
        "brokerage_authorization": "87b24961-b51e-4db8-9226-f198f6518a89",
        "name": "Robinhood Individual",
        "number": "Q6542138443",
        "institution_account_id": None,
        "institution_name": "Robinhood",
        "created_date": "2024-07-23T22:50:22.761390Z",
        "sync_status": {"transactions": {}, "holdings": {}},
        "balance": {"total": {"amount": 15363.23, "currency": "USD"}},
        "is_paper": False,
        "status": "open",
        "meta": {},
    },
    {
        "id": "acc-2",
        "brokerage_authorization": "auth-2",
        "name": None,
        "number": "1234",
        "institution_name": "Questrade",
        "created_date": "2024-07-23T22:50:22Z",
        "sync_status": {},
        "balance": {"total": None},
        "is_paper": False,
    },
]


async def no_sleep(_: float) -> None:
    return None


def client(**kwargs: Any) -> SnapTradeClient:
    return SnapTradeClient(
        SnapTradeConfig("TRADEFLEET", "consumer-key", BASE),
        http=httpx.AsyncClient(),
        sleep=no_sleep,
        **kwargs,
    )


def assert_signed(request: httpx.Request) -> None:
    query = dict(parse_qsl(request.url.query.decode()))
    assert query["clientId"] == "TRADEFLEET"
    assert abs(int(query["timestamp"]) - datetime.now(UTC).timestamp()) < 60
    content = json.loads(request.content) if request.content else None
    assert request.headers["Signature"] == sign(
        "consumer-key", path=request.url.path, query=request.url.query.decode(), content=content
    )


@respx.mock
async def test_positions_are_signed_and_normalized_to_exact_decimals() -> None:
    route = respx.get(f"{BASE}/accounts/acc-1/positions/all").mock(
        return_value=httpx.Response(200, json=POSITIONS)
    )
    snap = await client().positions(CREDS, "acc-1")
    request = route.calls.last.request
    assert_signed(request)
    assert dict(parse_qsl(request.url.query.decode()))["userSecret"] == "s3cret-user"
    assert snap.as_of == datetime(2026, 6, 2, 14, 30, tzinfo=UTC)
    by_symbol = {h.symbol: h for h in snap.holdings}
    assert by_symbol["AAPL"].units == Decimal("10.5")
    assert by_symbol["AAPL"].price == Decimal("123.45")
    assert by_symbol["AAPL"].average_cost == Decimal("118.2")
    assert (by_symbol["SPY"].units, by_symbol["SPY"].price, by_symbol["SPY"].average_cost) == (
        Decimal(3),
        None,
        None,
    )
    assert by_symbol["AAPL  261218C00240000"].units == Decimal(-2)
    assert by_symbol["AAPL  261218C00240000"].instrument_type == "option"
    assert by_symbol["US912828XX"].instrument_type == "bond"  # unknown kind kept, not dropped
    assert by_symbol["VMFXX"].units == Decimal("0.000000000001")
    assert snap.skipped == ("etf:VTI",)  # no units: cannot be held


@respx.mock
async def test_accounts_list_masks_numbers_and_tolerates_missing_balances() -> None:
    respx.get(f"{BASE}/accounts").mock(return_value=httpx.Response(200, json=ACCOUNTS))
    accounts = await client().accounts(CREDS)
    assert [(a.provider_account_id, a.provider_connection_id) for a in accounts] == [
        ("917c8734-8470-4a3e-a18f-57c3f2ee6631", "87b24961-b51e-4db8-9226-f198f6518a89"),
        ("acc-2", "auth-2"),
    ]
    assert accounts[0].number_masked == "*******8443"
    assert accounts[0].total_value == Decimal("15363.23")
    assert accounts[1].total_value is None and accounts[1].name is None


@respx.mock
async def test_sync_in_progress_and_rate_limits_are_retried_with_backoff() -> None:
    delays: list[float] = []

    async def record(seconds: float) -> None:
        delays.append(seconds)

    route = respx.get(f"{BASE}/accounts/acc-1/positions/all").mock(
        side_effect=[
            httpx.Response(
                503,
                json={
                    "detail": "Unable to sync with brokerage account.",
                    "status_code": 503,
                    "code": 3002,
                },
            ),
            httpx.Response(429, headers={"Retry-After": "3"}, json={"detail": "rate limited"}),
            httpx.Response(200, json=POSITIONS),
        ]
    )
    snap = await SnapTradeClient(
        SnapTradeConfig("TRADEFLEET", "consumer-key", BASE), http=httpx.AsyncClient(), sleep=record
    ).positions(CREDS, "acc-1")
    assert len(snap.holdings) == 5
    assert route.call_count == 3
    assert len(delays) == 2 and delays[1] >= 3  # Retry-After honoured
    # Each try is signed afresh.
    for call in route.calls:
        assert_signed(call.request)


@respx.mock
async def test_persistent_sync_in_progress_becomes_retryable_for_the_job() -> None:
    respx.get(f"{BASE}/accounts/acc-1/positions/all").mock(
        return_value=httpx.Response(503, json={"code": 3002})
    )
    with pytest.raises(Retryable):
        await client(attempts=3).positions(CREDS, "acc-1")


@pytest.mark.parametrize("status", [400, 401, 403, 404])
@respx.mock
async def test_other_client_errors_are_fatal_for_that_connection(status: int) -> None:
    route = respx.get(f"{BASE}/accounts").mock(
        return_value=httpx.Response(
            status, json={"detail": "Invalid userID or userSecret provided", "code": "1083"}
        )
    )
    with pytest.raises(ProviderRejected) as err:
        await client().accounts(CREDS)
    assert isinstance(err.value, Fatal)
    assert err.value.status == status and err.value.code == "1083"
    assert "Invalid userID" in str(err.value)
    assert "s3cret-user" not in str(err.value)
    assert err.value.connection_broken == (status in (401, 403))
    assert route.call_count == 1


@respx.mock
async def test_register_and_login_link() -> None:
    respx.post(f"{BASE}/snapTrade/registerUser").mock(
        return_value=httpx.Response(200, json={"userId": "u-1", "userSecret": "new-secret"})
    )
    login = respx.post(f"{BASE}/snapTrade/login").mock(
        return_value=httpx.Response(
            200,
            json={
                "redirectURI": "https://app.snaptrade.com/snapTrade/redeemToken?token=x",
                "sessionId": "s-1",
            },
        )
    )
    c = client()
    creds = await c.register_user("u-1")
    assert creds.secret == "new-secret" and "new-secret" not in repr(creds)
    link = await c.login_link(creds, custom_redirect="https://app.example/done")
    assert link.redirectURI.startswith("https://app.snaptrade.com/")
    request = login.calls.last.request
    assert_signed(request)
    assert json.loads(request.content) == {
        "connectionType": "read",
        "customRedirect": "https://app.example/done",
    }


@respx.mock
async def test_place_order_sends_the_documented_form() -> None:
    route = respx.post(f"{BASE}/trade/place").mock(
        return_value=httpx.Response(
            200,
            json={
                "brokerage_order_id": "66a033fa-da74-4fcf-b527-feefdec9257e",
                "status": "EXECUTED",
                "action": "BUY",
                "total_quantity": "2.5",
                "filled_quantity": "2.5",
                "execution_price": "123.45",
            },
        )
    )
    record = await client().place_order(
        CREDS,
        account_id="acc-1",
        symbol="AAPL",
        action="buy",
        units=Decimal("2.5"),
        order_type="Limit",
        price=Decimal("120.10"),
    )
    assert record.status == "EXECUTED" and record.filled_quantity == Decimal("2.5")
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "account_id": "acc-1",
        "action": "BUY",
        "symbol": "AAPL",
        "universal_symbol_id": None,
        "order_type": "Limit",
        "time_in_force": "Day",
        "units": 2.5,
        "price": 120.1,
    }
    assert_signed(route.calls.last.request)


def test_webhook_signature_is_over_canonical_json() -> None:
    payload = {
        "userId": "u",
        "eventType": "ACCOUNT_HOLDINGS_UPDATED",
        "details": {"b": 1, "a": "é"},
    }
    reordered = dict(reversed(list(payload.items())))
    assert sign_payload("k", payload) == sign_payload("k", reordered)
    assert sign_payload("k", payload) != sign_payload("other", payload)


ALPACA_POSITIONS = [
    {
        "asset_id": "904837e3-3b76-47ec-b432-046db621571b",
        "symbol": "AAPL",
        "exchange": "NASDAQ",
        "asset_class": "us_equity",
        "avg_entry_price": "100.0",
        "qty": "5",
        "qty_available": "5",
        "side": "long",
        "market_value": "600.0",
        "cost_basis": "500.0",
        "unrealized_pl": "100.0",
        "unrealized_plpc": "0.20",
        "current_price": "120.0",
        "lastday_price": "119.0",
        "change_today": "0.0084",
    },
    {
        "asset_id": "x",
        "symbol": "BTCUSD",
        "asset_class": "crypto",
        "avg_entry_price": "30000.123456789",
        "qty": "0.0123",
        "side": "long",
        "current_price": "65000.5",
    },
    {
        "asset_id": "y",
        "symbol": "TSLA",
        "asset_class": "us_equity",
        "qty": "3",
        "side": "short",
        "avg_entry_price": "250",
    },
]


@respx.mock
async def test_alpaca_positions_string_numbers_and_short_side() -> None:
    route = respx.get("https://paper-api.alpaca.test/v2/positions").mock(
        return_value=httpx.Response(200, json=ALPACA_POSITIONS)
    )
    fixed = datetime(2026, 1, 2, tzinfo=UTC)
    alpaca = AlpacaClient(
        base_url="https://paper-api.alpaca.test",
        http=httpx.AsyncClient(),
        sleep=no_sleep,
        clock=lambda: fixed,
    )
    snap = await alpaca.positions(ProviderCredentials("key-id", "key-secret"), "acct")
    assert route.calls.last.request.headers["APCA-API-KEY-ID"] == "key-id"
    assert snap.as_of == fixed
    by = {h.symbol: h for h in snap.holdings}
    assert by["AAPL"].units == Decimal(5) and by["AAPL"].average_cost == Decimal("100.0")
    assert (
        by["BTCUSD"].average_cost == Decimal("30000.123456789")
        and by["BTCUSD"].instrument_type == "crypto"
    )
    assert by["TSLA"].units == Decimal(-3) and by["TSLA"].price is None
