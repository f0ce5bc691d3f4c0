"""SnapTrade API client: signed requests, users, login links, accounts, positions, orders.

Signing, as SnapTrade documents it: every request carries ``clientId`` and ``timestamp``
in its query; the ``Signature`` header is the base64 HMAC-SHA256, keyed with the consumer
key, of the canonical JSON (sorted keys, no spaces) of
``{"content": <JSON body or null>, "path": <request path>, "query": <query string>}`` —
computed on the path and query exactly as sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from pydantic import TypeAdapter, ValidationError

from worker.errors import Bug
from worker.holdings.models import (
    AccountOrderRecord,
    AllAccountPositionsResponse,
    Balance,
    BrokerageAccount,
    LoginRedirectURI,
    PositionsSnapshot,
    SnapTradeAccount,
    UserIDandSecret,
    mask_number,
    snapshot_from_snaptrade,
)
from worker.holdings.provider import ProviderCredentials, Sleep, send_with_retries
from worker.http_transport import AiohttpTransport

DEFAULT_BASE_URL = "https://api.snaptrade.com/api/v1"

_accounts = TypeAdapter(list[SnapTradeAccount])
_balances = TypeAdapter(list[Balance])


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the text SnapTrade signs."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def sign(consumer_key: str, *, path: str, query: str, content: Any) -> str:
    """``Signature`` for a request (and for a webhook: ``sign_payload``)."""
    message = canonical_json({"content": content, "path": path, "query": query})
    digest = hmac.new(consumer_key.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign_payload(consumer_key: str, payload: Any) -> str:
    """Webhook ``Signature``: base64 HMAC-SHA256 of the canonical JSON of the payload."""
    digest = hmac.new(
        consumer_key.encode(), canonical_json(payload).encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def signed_request(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    client_id: str,
    consumer_key: str,
    timestamp: int,
    json_body: Any = None,
) -> httpx.Request:
    """A request with ``clientId``/``timestamp`` in its query and the ``Signature`` of the
    final URL and body. ``url`` carries the rest of the query already encoded: its text is
    parsed once (httpx's URL parsing was a third of a request's CPU when the auth flow merged
    parameters into a parsed URL twice per request)."""
    extra = urlencode({"clientId": client_id, "timestamp": str(timestamp)}, quote_via=quote)
    request = http.build_request(
        method, f"{url}{'&' if '?' in url else '?'}{extra}", json=json_body
    )
    request.headers["Signature"] = sign(
        consumer_key, path=request.url.path, query=request.url.query.decode(), content=json_body
    )
    return request


@dataclass(frozen=True, slots=True)
class SnapTradeConfig:
    client_id: str
    consumer_key: str
    base_url: str = DEFAULT_BASE_URL

    def __repr__(self) -> str:
        return f"SnapTradeConfig(client_id={self.client_id!r}, base_url={self.base_url!r})"


class SnapTradeClient:
    """One instance per process; an ``httpx.AsyncClient`` may be passed in (tests, pooling).
    The default client sends through aiohttp (:mod:`worker.http_transport`): a sync of
    thousands of accounts is mostly HTTP requests, and httpx's own transport costs several
    times the CPU per request."""

    name = "snaptrade"

    def __init__(
        self,
        config: SnapTradeConfig,
        *,
        http: httpx.AsyncClient | None = None,
        attempts: int = 4,
        base_delay: float = 0.5,
        sleep: Sleep | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._http = http or httpx.AsyncClient(timeout=timeout, transport=AiohttpTransport())
        self._clock = clock
        self._attempts = attempts
        self._base_delay = base_delay
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        creds: ProviderCredentials | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        query: dict[str, str] = dict(params or {})
        if creds is not None:
            query.update({"userId": creds.user_id, "userSecret": creds.secret})
        url = self.config.base_url.rstrip("/") + path
        if query:
            url += "?" + urlencode(query, quote_via=quote)

        async def send() -> httpx.Response:
            # Signed again for every attempt: each carries its own timestamp.
            return await self._http.send(
                signed_request(
                    self._http,
                    method,
                    url,
                    client_id=self.config.client_id,
                    consumer_key=self.config.consumer_key,
                    timestamp=int(self._clock()),
                    json_body=json_body,
                )
            )

        kwargs: dict[str, Any] = {"attempts": self._attempts, "base_delay": self._base_delay}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        response = await send_with_retries("SnapTrade", send, **kwargs)
        try:
            return response.json()
        except ValueError as e:
            raise Bug(
                f"SnapTrade {path} answered {response.status_code} with a body that is not JSON"
            ) from e

    @staticmethod
    def _parse(adapter_or_model: Any, data: Any, what: str) -> Any:
        try:
            if isinstance(adapter_or_model, TypeAdapter):
                return adapter_or_model.validate_python(data)
            return adapter_or_model.model_validate(data)
        except ValidationError as e:
            raise Bug(
                f"SnapTrade {what} did not match its documented shape: {e.errors()[:3]}"
            ) from e

    # --- users and the connection portal -----------------------------------------------

    async def register_user(self, user_id: str) -> ProviderCredentials:
        data = await self._request("POST", "/snapTrade/registerUser", json_body={"userId": user_id})
        parsed: UserIDandSecret = self._parse(UserIDandSecret, data, "registerUser")
        return ProviderCredentials(parsed.userId, parsed.userSecret)

    async def login_link(
        self,
        creds: ProviderCredentials,
        *,
        custom_redirect: str | None = None,
        connection_type: str = "read",
        reconnect: str | None = None,
    ) -> LoginRedirectURI:
        body: dict[str, Any] = {"connectionType": connection_type}
        if custom_redirect:
            body["customRedirect"] = custom_redirect
        if reconnect:
            body["reconnect"] = reconnect
        data = await self._request("POST", "/snapTrade/login", creds=creds, json_body=body)
        result: LoginRedirectURI = self._parse(LoginRedirectURI, data, "login")
        return result

    # --- account information -----------------------------------------------------------

    async def list_accounts(self, creds: ProviderCredentials) -> list[SnapTradeAccount]:
        data = await self._request("GET", "/accounts", creds=creds)
        result: list[SnapTradeAccount] = self._parse(_accounts, data, "accounts")
        return result

    async def account_positions(
        self, creds: ProviderCredentials, account_id: str
    ) -> AllAccountPositionsResponse:
        data = await self._request("GET", f"/accounts/{account_id}/positions/all", creds=creds)
        result: AllAccountPositionsResponse = self._parse(
            AllAccountPositionsResponse, data, "positions"
        )
        return result

    async def account_balances(self, creds: ProviderCredentials, account_id: str) -> list[Balance]:
        data = await self._request("GET", f"/accounts/{account_id}/balances", creds=creds)
        result: list[Balance] = self._parse(_balances, data, "balances")
        return result

    # --- HoldingsProvider ----------------------------------------------------------------

    async def accounts(self, creds: ProviderCredentials) -> list[BrokerageAccount]:
        out: list[BrokerageAccount] = []
        for acc in await self.list_accounts(creds):
            total = acc.balance.total if acc.balance else None
            out.append(
                BrokerageAccount(
                    provider_account_id=acc.id,
                    provider_connection_id=acc.brokerage_authorization,
                    name=acc.name,
                    number_masked=mask_number(acc.number),
                    institution_name=acc.institution_name,
                    currency=(total.currency if total and total.currency else "USD").upper(),
                    total_value=total.amount if total else None,
                )
            )
        return out

    async def positions(
        self, creds: ProviderCredentials, provider_account_id: str
    ) -> PositionsSnapshot:
        return snapshot_from_snaptrade(await self.account_positions(creds, provider_account_id))

    async def account_cash(
        self, creds: ProviderCredentials, provider_account_id: str, currency: str
    ) -> Decimal | None:
        """Cash of the account in its currency (``/accounts/{id}/balances``); None when not reported."""
        amounts = [
            b.cash
            for b in await self.account_balances(creds, provider_account_id)
            if b.cash is not None
            and (
                b.currency is None
                or b.currency.code is None
                or b.currency.code.upper() == currency.upper()
            )
        ]
        return sum(amounts, Decimal(0)) if amounts else None

    # --- trading -------------------------------------------------------------------------

    async def place_order(
        self,
        creds: ProviderCredentials,
        *,
        account_id: str,
        symbol: str,
        action: str,
        units: Decimal,
        order_type: str = "Market",
        time_in_force: str = "Day",
        price: Decimal | None = None,
        client_order_id: str | None = None,
    ) -> AccountOrderRecord:
        """``POST /trade/place`` (place equity order) in one account of the connection."""
        body: dict[str, Any] = {
            "account_id": account_id,
            "action": action.upper(),
            "symbol": symbol,
            "universal_symbol_id": None,
            "order_type": order_type,
            "time_in_force": time_in_force,
            # Units travel as a JSON number (the documented type); str keeps it exact.
            "units": _json_number(units),
        }
        if price is not None:
            body["price"] = _json_number(price)
        if client_order_id:
            body["client_order_id"] = client_order_id
        data = await self._request("POST", "/trade/place", creds=creds, json_body=body)
        result: AccountOrderRecord = self._parse(AccountOrderRecord, data, "trade/place")
        return result


def _json_number(value: Decimal) -> int | float:
    # The API documents numbers; a Decimal with an exact short repr becomes that number.
    integral = value == value.to_integral_value()
    return int(value) if integral else float(str(value))
