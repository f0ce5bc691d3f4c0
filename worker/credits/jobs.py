"""The credit job kinds the fleet runs: usage settlement, hold expiry, monthly grants,
and the API usage rollup (which bills the API calls of closed days)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker.credits import ledger
from worker.fleet.registry import JobContext, NoPayload, Payload, Registry

SETTLE_USAGE = "credits.settle_usage"
EXPIRE_HOLDS = "credits.expire_holds"
MONTHLY_GRANTS = "credits.monthly_grants"
API_USAGE = "credits.api_usage"

EXPIRE_BATCH = 1000
EXPIRE_ROUNDS = 20


class UsageEvent(BaseModel):
    """One usage to charge. ``id`` is the charge's idempotency key; without one it is
    derived from the reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID | None = None
    user_id: uuid.UUID
    usage: ledger.Usage
    quantity: Decimal = Decimal(1)
    reference_type: str | None = None
    reference_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _identified(self) -> UsageEvent:
        if self.id is None and not (self.reference_type and self.reference_id):
            raise ValueError("an event needs an id, or a reference_type and reference_id")
        return self


class SettleUsage(Payload):
    """``{"events": [event, ...]}``, or a single event."""

    events: list[UsageEvent] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _single_event(cls, data: Any) -> Any:
        if isinstance(data, dict) and "events" not in data:
            return {"events": [data]}
        return data


def usage_requests(payload: SettleUsage) -> list[ledger.TransferRequest]:
    """Usage events of a job payload as batch elements."""
    return [
        ledger.TransferRequest(
            action="usage",
            id=event.id
            or ledger.transfer_id("usage", event.usage, event.reference_type, event.reference_id),
            user_id=event.user_id,
            usage=event.usage,
            quantity=event.quantity,
            reference_type=event.reference_type,
            reference_id=event.reference_id,
            metadata=event.metadata,
        )
        for event in payload.events
    ]


async def settle_usage(ctx: JobContext[SettleUsage]) -> dict[str, Any]:
    """Charge a batch of usage events; each is charged once however often the job runs.

    Events the ledger rejects (a user out of credits, an unknown user) are reported in the
    job's result and logged; they do not fail the job, since retrying cannot change them.
    """
    requests = usage_requests(ctx.payload)
    results = await ledger.create_transfers(ctx.pool, requests)
    counts = Counter(r.result for r in results)
    rejected = [r for r in results if not r.accepted and r.result != "free"]
    for r in rejected:
        ctx.log.warning(
            "usage charge rejected",
            extra={"transfer_id": str(r.id), "result": r.result, "action": SETTLE_USAGE},
        )
    return {
        "charged": counts["ok"],
        "already_charged": counts["exists"],
        "free": counts["free"],
        "rejected": {code: n for code, n in counts.items() if code not in ("ok", "exists", "free")},
    }


async def expire_holds(ctx: JobContext[NoPayload]) -> dict[str, Any]:
    """Void every hold whose timeout has passed (in rounds of EXPIRE_BATCH)."""
    total = 0
    for _ in range(EXPIRE_ROUNDS):
        voided = await ledger.expire_holds(ctx.pool, limit=EXPIRE_BATCH)
        total += voided
        if voided < EXPIRE_BATCH:
            break
    if total:
        ctx.log.info("expired credit holds", extra={"voided": total, "action": EXPIRE_HOLDS})
    return {"voided": total}


async def monthly_grants(ctx: JobContext[NoPayload]) -> dict[str, Any]:
    """Grant each current subscription its plan's monthly credits for this cycle, once."""
    return {"results": await ledger.grant_monthly_all(ctx.pool)}


async def api_usage(ctx: JobContext[NoPayload]) -> dict[str, Any]:
    """Roll recorded API calls up per minute and day; bill each key's closed days once."""
    return await ledger.roll_up_api_usage(ctx.pool)


def register(registry: Registry) -> None:
    """Give the fleet the credit job kinds and their schedules."""
    registry.job(
        SETTLE_USAGE, payload=SettleUsage, queue="credits", max_attempts=10, timeout_s=120
    )(settle_usage)
    registry.job(EXPIRE_HOLDS, payload=NoPayload, queue="credits", max_attempts=3, timeout_s=120)(
        expire_holds
    )
    registry.job(MONTHLY_GRANTS, payload=NoPayload, queue="credits", max_attempts=5, timeout_s=600)(
        monthly_grants
    )
    registry.job(API_USAGE, payload=NoPayload, queue="credits", max_attempts=3, timeout_s=120)(
        api_usage
    )
    registry.every(EXPIRE_HOLDS, timedelta(minutes=1), EXPIRE_HOLDS, queue="credits")
    registry.every(API_USAGE, timedelta(minutes=1), API_USAGE, queue="credits")
    registry.every(MONTHLY_GRANTS, timedelta(hours=1), MONTHLY_GRANTS, queue="credits")
