"""Alpaca: positions of platform-held accounts (``GET /v2/positions``) and latest prices."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from worker.errors import Bug
from worker.holdings.models import (
    AlpacaAccount,
    AlpacaPosition,
    BrokerageAccount,
    Dec,
    PositionsSnapshot,
    mask_number,
    snapshot_from_alpaca,
)
from worker.holdings.provider import ProviderCredentials, Sleep, send_with_retries

TRADING_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"

_positions = TypeAdapter(list[AlpacaPosition])


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    price: Decimal
    previous_close: Decimal | None
    as_of: datetime


class AlpacaClient:
    name = "alpaca"

    def __init__(
        self,
        *,
        base_url: str = TRADING_URL,
        data_url: str = DATA_URL,
        http: httpx.AsyncClient | None = None,
        attempts: int = 4,
        base_delay: float = 0.5,
        sleep: Sleep | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.data_url = data_url.rstrip("/")
        self._http = http or httpx.AsyncClient(timeout=30.0)
        self._retry: dict[str, Any] = {"attempts": attempts, "base_delay": base_delay}
        if sleep is not None:
            self._retry["sleep"] = sleep
        self._clock = clock

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get(
        self, url: str, creds: ProviderCredentials, params: Mapping[str, str] | None = None
    ) -> Any:
        headers = {"APCA-API-KEY-ID": creds.user_id, "APCA-API-SECRET-KEY": creds.secret}

        async def send() -> httpx.Response:
            return await self._http.get(url, headers=headers, params=params)

        response = await send_with_retries("Alpaca", send, **self._retry)
        try:
            return response.json()
        except ValueError as e:
            raise Bug(f"Alpaca {url} answered with a body that is not JSON") from e

    async def accounts(self, creds: ProviderCredentials) -> list[BrokerageAccount]:
        data = await self._get(f"{self.base_url}/v2/account", creds)
        try:
            acc = AlpacaAccount.model_validate(data)
        except ValidationError as e:
            raise Bug(f"Alpaca account did not match its documented shape: {e.errors()[:3]}") from e
        return [
            BrokerageAccount(
                provider_account_id=acc.id,
                provider_connection_id=acc.id,
                name="Alpaca",
                number_masked=mask_number(acc.account_number),
                institution_name="Alpaca",
                currency=acc.currency.upper(),
                total_value=acc.equity,
                cash=acc.cash,
            )
        ]

    async def positions(
        self, creds: ProviderCredentials, provider_account_id: str
    ) -> PositionsSnapshot:
        as_of = self._clock()  # Alpaca's positions are live: their as-of is when we asked.
        data = await self._get(f"{self.base_url}/v2/positions", creds)
        try:
            parsed = _positions.validate_python(data)
        except ValidationError as e:
            raise Bug(
                f"Alpaca positions did not match their documented shape: {e.errors()[:3]}"
            ) from e
        return snapshot_from_alpaca(parsed, as_of=as_of)

    async def latest_quotes(
        self, creds: ProviderCredentials, symbols: Sequence[str]
    ) -> list[Quote]:
        """``GET /v2/stocks/snapshots``: last trade and previous daily close per symbol."""
        quotes: list[Quote] = []
        for start in range(0, len(symbols), 200):
            chunk = symbols[start : start + 200]
            data = await self._get(
                f"{self.data_url}/v2/stocks/snapshots", creds, {"symbols": ",".join(chunk)}
            )
            if not isinstance(data, dict):
                raise Bug("Alpaca snapshots did not answer an object")
            for symbol, raw in data.items():
                try:
                    snap = _Snapshot.model_validate(raw)
                except ValidationError:
                    continue  # an unknown symbol comes back null: nothing to price
                if snap.latestTrade is None or snap.latestTrade.p is None:
                    continue
                prev = snap.prevDailyBar.c if snap.prevDailyBar else None
                quotes.append(
                    Quote(symbol, snap.latestTrade.p, prev, snap.latestTrade.t or self._clock())
                )
        return quotes


class _Trade(BaseModel):
    model_config = ConfigDict(extra="ignore")
    p: Dec = None
    t: datetime | None = None


class _Bar(BaseModel):
    model_config = ConfigDict(extra="ignore")
    c: Dec = None


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="ignore")
    latestTrade: _Trade | None = None
    prevDailyBar: _Bar | None = None
