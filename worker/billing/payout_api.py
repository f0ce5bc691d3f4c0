"""The payout providers' HTTP APIs, as documented, and nothing else (no database).

Stripe (form-encoded, ``Authorization: Bearer``, ``Idempotency-Key``):
``POST /v1/accounts`` (an Express account able to receive transfers),
``POST /v1/account_links`` (its onboarding link), ``GET /v1/accounts/{id}`` (can it receive
transfers yet), ``POST /v1/transfers`` (a payout).
Paystack (JSON, ``Authorization: Bearer``): ``GET /bank/resolve`` (whose account is it),
``POST /transferrecipient``, ``POST /transfer`` (the payout's reference is its
idempotency key) and ``GET /transfer/verify/{reference}``.

A refusal by the provider (a 4xx other than 429) raises :class:`PayoutRejected` with the
provider's message; a passing condition (network, 429, 5xx) raises ``Retryable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from worker.errors import Retryable


class PayoutRejected(Exception):
    """The provider refused the request; its message says why."""


class NotConfigured(Exception):
    """The provider's secret key is not set: nothing can be sent through it."""


@dataclass(frozen=True)
class SentTransfer:
    """A transfer the provider accepted: its id and what it said about it."""

    transfer_id: str
    status: str


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _check(provider: str, response: httpx.Response) -> dict[str, Any]:
    body = _body(response)
    if response.status_code == 429 or response.status_code >= 500:
        raise Retryable(f"{provider} answered {response.status_code}")
    if response.status_code >= 400:
        error = body.get("error")
        message = (error.get("message") if isinstance(error, dict) else None) or body.get("message")
        raise PayoutRejected(f"{provider}: {message or response.status_code}")
    return body


async def _send(provider: str, call: Any) -> dict[str, Any]:
    try:
        response: httpx.Response = await call
    except httpx.HTTPError as e:
        raise Retryable(f"{provider} unreachable: {e}") from e
    return _check(provider, response)


class StripeConnect:
    def __init__(self, http: httpx.AsyncClient, base_url: str, secret_key: str | None) -> None:
        self.http, self.base, self.key = http, base_url.rstrip("/"), secret_key

    def _headers(self, idempotency_key: str) -> dict[str, str]:
        if not self.key:
            raise NotConfigured("stripe payouts are not configured (STRIPE_SECRET_KEY)")
        return {"authorization": f"Bearer {self.key}", "idempotency-key": idempotency_key}

    async def _post(self, path: str, form: dict[str, str], idempotency_key: str) -> dict[str, Any]:
        headers = self._headers(idempotency_key)
        return await _send(
            "stripe", self.http.post(f"{self.base}{path}", data=form, headers=headers)
        )

    async def create_account(self, destination_id: str, user_id: str, currency: str) -> str:
        body = await self._post(
            "/v1/accounts",
            {
                "type": "express",
                "default_currency": currency.lower(),
                "capabilities[transfers][requested]": "true",
                "metadata[user_id]": user_id,
                "metadata[destination_id]": destination_id,
            },
            f"connect-account-{destination_id}",
        )
        return str(body["id"])

    async def onboarding_link(
        self, account: str, refresh_url: str, return_url: str, key: str
    ) -> str:
        body = await self._post(
            "/v1/account_links",
            {
                "account": account,
                "refresh_url": refresh_url,
                "return_url": return_url,
                "type": "account_onboarding",
            },
            f"account-link-{key}",
        )
        return str(body["url"])

    async def transfers_active(self, account: str) -> bool:
        """Whether the connected account can receive transfers (``GET /v1/accounts/{id}``)."""
        headers = self._headers("")
        del headers["idempotency-key"]
        body = await _send(
            "stripe", self.http.get(f"{self.base}/v1/accounts/{account}", headers=headers)
        )
        capabilities = body.get("capabilities")
        return isinstance(capabilities, dict) and capabilities.get("transfers") == "active"

    async def transfer(
        self, payout_id: str, account: str, amount_minor: int, currency: str
    ) -> SentTransfer:
        body = await self._post(
            "/v1/transfers",
            {
                "amount": str(amount_minor),
                "currency": currency.lower(),
                "destination": account,
                "transfer_group": f"payout-{payout_id}",
                "metadata[payout_id]": payout_id,
            },
            f"payout-{payout_id}",
        )
        return SentTransfer(str(body["id"]), "reversed" if body.get("reversed") else "created")


class PaystackTransfers:
    def __init__(self, http: httpx.AsyncClient, base_url: str, secret_key: str | None) -> None:
        self.http, self.base, self.key = http, base_url.rstrip("/"), secret_key

    def _headers(self) -> dict[str, str]:
        if not self.key:
            raise NotConfigured("paystack payouts are not configured (PAYSTACK_SECRET_KEY)")
        return {"authorization": f"Bearer {self.key}"}

    async def resolve_account(self, account_number: str, bank_code: str) -> str:
        """The account holder's name; ``PayoutRejected`` for details Paystack rejects."""
        body = await _send(
            "paystack",
            self.http.get(
                f"{self.base}/bank/resolve",
                params={"account_number": account_number, "bank_code": bank_code},
                headers=self._headers(),
            ),
        )
        data = body.get("data")
        if not body.get("status") or not isinstance(data, dict) or not data.get("account_name"):
            raise PayoutRejected(f"paystack: {body.get('message') or 'account not resolved'}")
        return str(data["account_name"])

    async def create_recipient(
        self, name: str, account_number: str, bank_code: str, currency: str
    ) -> str:
        body = await _send(
            "paystack",
            self.http.post(
                f"{self.base}/transferrecipient",
                json={
                    "type": "nuban",
                    "name": name,
                    "account_number": account_number,
                    "bank_code": bank_code,
                    "currency": currency,
                },
                headers=self._headers(),
            ),
        )
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("recipient_code"):
            raise PayoutRejected(f"paystack: {body.get('message') or 'no recipient created'}")
        return str(data["recipient_code"])

    async def transfer(
        self, payout_id: str, recipient: str, amount_minor: int, currency: str
    ) -> SentTransfer:
        headers = self._headers()
        try:
            body = await _send(
                "paystack",
                self.http.post(
                    f"{self.base}/transfer",
                    json={
                        "source": "balance",
                        "amount": amount_minor,
                        "recipient": recipient,
                        "reference": payout_id,
                        "currency": currency,
                        "reason": "Tradefleet provider payout",
                    },
                    headers=headers,
                ),
            )
        except PayoutRejected as e:
            if "reference" not in str(e).lower():
                raise
            # Sent before (a retry after a lost answer): the transfer of that reference.
            body = await _send(
                "paystack",
                self.http.get(f"{self.base}/transfer/verify/{payout_id}", headers=headers),
            )
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("transfer_code"):
            raise PayoutRejected(f"paystack: {body.get('message') or 'no transfer created'}")
        return SentTransfer(str(data["transfer_code"]), str(data.get("status") or "pending"))
