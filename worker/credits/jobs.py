"""The credit job kinds the fleet runs: usage settlement, hold expiry, monthly grants."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from worker.credits import ledger
from worker.errors import Fatal
from worker.fleet.registry import JobContext, Registry

SETTLE_USAGE = "credits.settle_usage"
EXPIRE_HOLDS = "credits.expire_holds"
MONTHLY_GRANTS = "credits.monthly_grants"

USAGES = ("trade", "backtest_second", "ai_request")
EXPIRE_BATCH = 1000
EXPIRE_ROUNDS = 20


def usage_requests(payload: dict[str, Any]) -> list[ledger.TransferRequest]:
    """Usage events of a job payload as batch elements.

    The payload is ``{"events": [event, ...]}`` or a single event; an event is
    ``{"id": uuid, "user_id": uuid, "usage": "trade"|"backtest_second"|"ai_request",
    "quantity": "1", "reference_type": ..., "reference_id": ..., "metadata": {...}}``.
    ``id`` is the charge's idempotency key; without one it is derived from the reference.
    """
    events = payload.get("events", [payload])
    if not isinstance(events, list) or not events:
        raise Fatal("credits.settle_usage needs a non-empty list of usage events")
    requests = []
    for n, event in enumerate(events):
        try:
            usage = event["usage"]
            if usage not in USAGES:
                raise ValueError(f"unknown usage {usage!r}")
            raw_id = event.get("id")
            if raw_id is None:
                if not event.get("reference_type") or not event.get("reference_id"):
                    raise ValueError("an event needs an id, or a reference_type and reference_id")
                event_id = ledger.transfer_id(
                    "usage", usage, event["reference_type"], event["reference_id"]
                )
            else:
                event_id = uuid.UUID(str(raw_id))
            requests.append(
                ledger.TransferRequest(
                    action="usage",
                    id=event_id,
                    user_id=uuid.UUID(str(event["user_id"])),
                    usage=usage,
                    quantity=Decimal(str(event.get("quantity", "1"))),
                    reference_type=event.get("reference_type"),
                    reference_id=event.get("reference_id"),
                    metadata=event.get("metadata") or {},
                )
            )
        except (KeyError, ValueError, TypeError, InvalidOperation) as e:
            raise Fatal(f"usage event {n} is invalid: {e}") from e
    return requests


async def settle_usage(ctx: JobContext) -> dict[str, Any]:
    """Charge a batch of usage events; each is charged once however often the job runs.

    Events the ledger rejects (a user out of credits, an unknown user) are reported in the
    job's result and logged; they do not fail the job, since retrying cannot change them.
    """
    requests = usage_requests(ctx.job.payload)
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


async def expire_holds(ctx: JobContext) -> dict[str, Any]:
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


async def monthly_grants(ctx: JobContext) -> dict[str, Any]:
    """Grant each current subscription its plan's monthly credits for this cycle, once."""
    return {"results": await ledger.grant_monthly_all(ctx.pool)}


def register(registry: Registry) -> None:
    """Give the fleet the credit job kinds and their schedules."""
    registry.job(SETTLE_USAGE, queue="credits", max_attempts=10, timeout_s=120)(settle_usage)
    registry.job(EXPIRE_HOLDS, queue="credits", max_attempts=3, timeout_s=120)(expire_holds)
    registry.job(MONTHLY_GRANTS, queue="credits", max_attempts=5, timeout_s=600)(monthly_grants)
    registry.every(EXPIRE_HOLDS, timedelta(minutes=1), EXPIRE_HOLDS, queue="credits")
    registry.every(MONTHLY_GRANTS, timedelta(hours=1), MONTHLY_GRANTS, queue="credits")
