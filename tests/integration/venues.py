"""The exchanges a live bot can trade, each with the local fake that speaks its REST API:
what the shared contract (``test_venues.py``) needs to know to drive each of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.fakes.fake_bitget import FakeBitget
from tests.fakes.fake_bybit import FakeBybit
from tests.fakes.fake_kraken import SECRET as KRAKEN_SECRET
from tests.fakes.fake_kraken import FakeKraken
from tests.fakes.fake_mexc import FakeMexc
from tests.fakes.fake_okx import FakeOkx
from tests.fakes.fake_venue import FakeVenue
from worker.exchanges import ExchangeCredentials
from worker.exchanges.live import LiveExchange

CREDENTIALS = ExchangeCredentials("test-key", "test-secret", "test-pass")


def _stop_loss(price: Decimal, contract: bool) -> dict[str, Any]:
    """ccxt's unified stop-loss order: ``stopLossPrice`` (reduce-only on contracts)."""
    params: dict[str, Any] = {"stopLossPrice": float(price)}
    if contract:
        params["reduceOnly"] = True
    return params


def _trigger(price: Decimal, contract: bool) -> dict[str, Any]:
    """A trigger (plan) order: where ccxt's ``stopLossPrice`` applies to contracts only."""
    return {"triggerPrice": float(price)}


def _reduce_only_trigger(price: Decimal, contract: bool) -> dict[str, Any]:
    """A reduce-only trigger (plan) order: a stop that can only close the position."""
    return {"triggerPrice": float(price), "reduceOnly": True}


@dataclass(frozen=True)
class Venue:
    """One exchange and market type under test."""

    name: str
    fake: type[FakeVenue]
    exchange_id: str
    symbol: str
    create_path: str
    default_type: str | None = None
    contract: bool = False
    stop: Callable[[Decimal, bool], dict[str, Any]] | None = _stop_loss
    """ccxt params placing a protective stop; ``None`` where the market has none."""
    stop_cancel: dict[str, Any] = field(default_factory=dict)
    """ccxt params cancelling that stop (OKX/Bitget keep trigger orders apart)."""
    sandbox: str | None = None
    """What marks ccxt's sandbox mode: part of the testnet/demo host, or the header the demo
    account needs (``None``: ccxt has no sandbox for the exchange)."""
    sandbox_header: bool = False
    """The sandbox is the live host with a header (the fake counts requests carrying it)."""
    credentials: ExchangeCredentials = CREDENTIALS
    passphrase: bool = False
    """The exchange's keys come with a passphrase (ccxt ``password``) it checks."""

    def open(self, fake: FakeVenue, credentials: ExchangeCredentials | None = None) -> LiveExchange:
        return LiveExchange(
            self.exchange_id,
            credentials or self.credentials,
            api_base_url=fake.url,
            enable_rate_limit=False,
            default_type=self.default_type,
            timeout_ms=3000,
        )


VENUES = [
    Venue(
        "bybit-spot",
        FakeBybit,
        "bybit",
        "BTC/USDT",
        "/v5/order/create",
        sandbox="api-testnet.",
    ),
    Venue(
        "bybit-linear",
        FakeBybit,
        "bybit",
        "BTC/USDT:USDT",
        "/v5/order/create",
        default_type="swap",
        contract=True,
        sandbox="api-testnet.",
    ),
    Venue(
        "okx-spot",
        FakeOkx,
        "okx",
        "BTC/USDT",
        "/api/v5/trade/batch-orders",
        stop_cancel={"trigger": True},
        sandbox="x-simulated-trading",
        passphrase=True,
        sandbox_header=True,
    ),
    Venue(
        "okx-swap",
        FakeOkx,
        "okx",
        "BTC/USDT:USDT",
        "/api/v5/trade/batch-orders",
        default_type="swap",
        contract=True,
        stop_cancel={"trigger": True},
        sandbox="x-simulated-trading",
        passphrase=True,
        sandbox_header=True,
    ),
    Venue(
        "kraken-spot",
        FakeKraken,
        "kraken",
        "BTC/USDT",
        "/0/private/AddOrder",
        credentials=ExchangeCredentials("test-key", KRAKEN_SECRET),
    ),
    Venue(
        "bitget-spot",
        FakeBitget,
        "bitget",
        "BTC/USDT",
        "/api/v2/spot/trade/place-order",
        stop=_trigger,
        stop_cancel={"trigger": True},
        sandbox="paptrading",
        passphrase=True,
        sandbox_header=True,
    ),
    Venue(
        "mexc-spot",
        FakeMexc,
        "mexc",
        "BTC/USDT",
        "/api/v3/order",
        stop=None,
    ),
    Venue(
        "bitget-swap",
        FakeBitget,
        "bitget",
        "BTC/USDT:USDT",
        "/api/v2/mix/order/place-order",
        default_type="swap",
        contract=True,
        stop=_reduce_only_trigger,
        stop_cancel={"trigger": True},
        sandbox="paptrading",
        sandbox_header=True,
        passphrase=True,
    ),
]
