"""Provider payouts: connecting a destination, sending approved payouts, the monthly run,
and the providers' transfer webhooks that settle them.

The rules live in SQL (``public.request_payout``, ``public.payout_settle``,
``public.payout_request_monthly``); this module talks to Stripe and Paystack
(:mod:`.payout_api`) and records what they answered."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from worker import inbox
from worker.errors import Retryable
from worker.fleet.registry import Payload

from .models import ZERO_DECIMAL
from .payout_api import NotConfigured, PayoutRejected, PaystackTransfers, StripeConnect

# Webhook event types that concern payouts (the rest are payment events).
STRIPE_PAYOUT_EVENTS = frozenset({"transfer.created", "transfer.reversed", "account.updated"})
PAYSTACK_PAYOUT_EVENTS = frozenset({"transfer.success", "transfer.failed", "transfer.reversed"})

LOCK_DESTINATION = """
select d.* from public.payout_destinations d where d.id = %(id)s for update
"""

UPDATE_DESTINATION = """
update public.payout_destinations
   set status = %(status)s, stripe_account_id = coalesce(%(account)s, stripe_account_id),
       onboarding_url = %(url)s, paystack_recipient_code = %(recipient)s,
       account_name = %(name)s, error = %(error)s
 where id = %(id)s
"""

STRIPE_ACCOUNT_READY = """
update public.payout_destinations
   set status = 'ready', onboarding_url = null, error = null
 where provider = 'stripe' and stripe_account_id = %(account)s and status <> 'ready'
"""

PENDING_STRIPE = """
select d.id, d.stripe_account_id from public.payout_destinations d
 where d.provider = 'stripe' and d.status = 'pending' and d.stripe_account_id is not null
 order by d.updated_at
 limit %(limit)s
"""

TO_SEND = """
select p.id, p.amount, d.provider, d.currency, d.stripe_account_id, d.paystack_recipient_code
  from public.payouts p join public.payout_destinations d on d.id = p.destination_id
 where p.status = 'approved'
 order by p.created_at
 limit %(limit)s
 for update of p skip locked
"""

MARK_SENT = "select public.payout_mark_sent(%(id)s, %(transfer)s) as outcome"
SETTLE = "select public.payout_settle(%(id)s, %(outcome)s, %(transfer)s, %(reason)s) as outcome"
MONTHLY = "select public.payout_request_monthly() as requested"

LOCK_EVENT = """
select id, provider, event_type, payload, status from public.webhook_events
 where id = %(id)s for update
"""


@dataclass(frozen=True)
class PayoutClients:
    stripe: StripeConnect
    paystack: PaystackTransfers
    units_per_credit: Decimal
    connect_refresh_url: str
    connect_return_url: str


def minor_units(credits: Decimal, units_per_credit: Decimal, currency: str) -> int:
    """What a payout of ``credits`` sends, in the currency's smallest unit (rounded down)."""
    units = credits * units_per_credit
    if currency.lower() not in ZERO_DECIMAL:
        units *= 100
    return int(units.to_integral_value(rounding=ROUND_DOWN))


# --- destinations -----------------------------------------------------------------------


class ConnectDestination(Payload):
    """``billing.payout_destination``, enqueued by ``connect_payout_destination``."""

    destination_id: uuid.UUID
    account_number: str | None = None


async def connect_destination(
    pool: Any, clients: PayoutClients, payload: ConnectDestination
) -> dict[str, Any]:
    """Create the Stripe account and its onboarding link, or validate the bank details and
    create the Paystack recipient. A refusal leaves the destination ``rejected``."""
    async with (
        pool.connection() as conn,
        conn.transaction(),
        conn.cursor(row_factory=dict_row) as cur,
    ):
        await cur.execute(LOCK_DESTINATION, {"id": payload.destination_id})
        dest = await cur.fetchone()
        if dest is None or dest["status"] != "pending":
            return {"outcome": "unchanged"}
        update: dict[str, Any] = {
            "id": dest["id"],
            "status": "pending",
            "account": None,
            "url": None,
            "recipient": None,
            "name": None,
            "error": None,
        }
        try:
            if dest["provider"] == "stripe":
                account = dest["stripe_account_id"] or await clients.stripe.create_account(
                    str(dest["id"]), str(dest["user_id"]), dest["currency"]
                )
                update["account"] = account
                update["url"] = await clients.stripe.onboarding_link(
                    account,
                    clients.connect_refresh_url,
                    clients.connect_return_url,
                    f"{dest['id']}-{int(dest['updated_at'].timestamp())}",
                )
            else:
                number = payload.account_number or ""
                name = await clients.paystack.resolve_account(number, dest["bank_code"])
                update["name"] = name
                update["recipient"] = await clients.paystack.create_recipient(
                    name, number, dest["bank_code"], dest["currency"]
                )
                update["status"] = "ready"
        except (PayoutRejected, NotConfigured) as e:
            update.update(status="rejected", url=None, recipient=None, error=str(e)[:1000])
        await cur.execute(UPDATE_DESTINATION, update)
        return {"outcome": update["status"], "error": update["error"]}


# --- sending ----------------------------------------------------------------------------


async def send_approved(pool: Any, clients: PayoutClients, limit: int = 5) -> dict[str, int]:
    """Send every approved payout once: the payout id is the idempotency key (Stripe) and
    the reference (Paystack), so a payout sent before a crash is not sent twice."""
    sent = failed = 0
    async with (
        pool.connection() as conn,
        conn.transaction(),
        conn.cursor(row_factory=dict_row) as cur,
    ):
        await cur.execute(TO_SEND, {"limit": limit})
        for row in await cur.fetchall():
            payout_id = str(row["id"])
            minor = minor_units(Decimal(row["amount"]), clients.units_per_credit, row["currency"])
            try:
                if minor <= 0:
                    raise PayoutRejected(f"{row['amount']} credits pay out as nothing")
                if row["provider"] == "stripe":
                    transfer = await clients.stripe.transfer(
                        payout_id, row["stripe_account_id"], minor, row["currency"]
                    )
                else:
                    transfer = await clients.paystack.transfer(
                        payout_id, row["paystack_recipient_code"], minor, row["currency"]
                    )
            except (PayoutRejected, NotConfigured) as e:
                await cur.execute(
                    SETTLE,
                    {"id": row["id"], "outcome": "failed", "transfer": None, "reason": str(e)},
                )
                failed += 1
                continue
            await cur.execute(MARK_SENT, {"id": row["id"], "transfer": transfer.transfer_id})
            sent += 1
    return {"sent": sent, "failed": failed}


async def refresh_stripe_destinations(pool: Any, clients: PayoutClients, limit: int = 20) -> int:
    """Ask Stripe whether pending Connect accounts can receive transfers yet (their
    ``account.updated`` events go to a Connect endpoint); returns how many became ready."""
    ready = 0
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(PENDING_STRIPE, {"limit": limit})
        for row in await cur.fetchall():
            try:
                active = await clients.stripe.transfers_active(row["stripe_account_id"])
            except (PayoutRejected, NotConfigured):
                continue
            if active:
                await cur.execute(STRIPE_ACCOUNT_READY, {"account": row["stripe_account_id"]})
                ready += cur.rowcount
    return ready


async def request_monthly(pool: Any) -> dict[str, Any]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(MONTHLY)
        row = await cur.fetchone()
    return {"requested": row["requested"] if row else 0}


# --- webhooks ---------------------------------------------------------------------------


class StripeTransfer(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    capabilities: dict[str, Any] = Field(default_factory=dict)


class PaystackTransfer(BaseModel):
    model_config = ConfigDict(extra="allow")

    reference: str | None = None
    transfer_code: str | None = None
    reason: str | None = None
    status: str | None = None


def is_payout_event(provider: str, event_type: str) -> bool:
    return (provider == "stripe" and event_type in STRIPE_PAYOUT_EVENTS) or (
        provider == "paystack" and event_type in PAYSTACK_PAYOUT_EVENTS
    )


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def _apply_payout_event(
    cur: psycopg.AsyncCursor[dict[str, Any]], provider: str, event_type: str, payload: Any
) -> tuple[str, str | None]:
    obj = payload.get("data", {}) if isinstance(payload, dict) else {}
    if provider == "stripe":
        obj = obj.get("object", {}) if isinstance(obj, dict) else {}
        stripe_obj = StripeTransfer.model_validate(obj)
        if event_type == "account.updated":
            if stripe_obj.capabilities.get("transfers") != "active":
                return "unchanged", "the account cannot receive transfers yet"
            await cur.execute(STRIPE_ACCOUNT_READY, {"account": stripe_obj.id})
            return ("applied" if cur.rowcount else "unchanged"), None
        payout_id = _uuid(stripe_obj.metadata.get("payout_id"))
        outcome = "paid" if event_type == "transfer.created" else "reversed"
        transfer: str | None = stripe_obj.id
        reason = None if outcome == "paid" else "reversed by stripe"
    else:
        paystack_obj = PaystackTransfer.model_validate(obj)
        payout_id = _uuid(paystack_obj.reference)
        outcome = {"transfer.success": "paid", "transfer.failed": "failed"}.get(
            event_type, "reversed"
        )
        transfer = paystack_obj.transfer_code
        reason = None if outcome == "paid" else f"paystack {event_type}"
    if payout_id is None:
        return "not_found", f"{event_type} names no payout"
    await cur.execute(
        SETTLE, {"id": payout_id, "outcome": outcome, "transfer": transfer, "reason": reason}
    )
    row = await cur.fetchone()
    result = str(row["outcome"]) if row else "not_found"
    return result, (f"no payout {payout_id}" if result == "not_found" else None)


async def process_payout_event(pool: Any, event_id: uuid.UUID | str) -> dict[str, Any] | None:
    """Settle a payout from a stored provider event; ``None`` when the event is not about
    payouts (a payment event: the billing job applies it)."""
    try:
        async with (
            pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(LOCK_EVENT, {"id": event_id})
            event = await cur.fetchone()
            if event is None or not is_payout_event(event["provider"], event["event_type"]):
                return None
            if event["status"] in ("processed", "ignored"):
                return {"outcome": "already_" + event["status"]}
            try:
                outcome, error = await _apply_payout_event(
                    cur, event["provider"], event["event_type"], event["payload"]
                )
            except ValueError as e:  # pydantic's ValidationError is a ValueError
                outcome, error = "ignored", f"payload does not match the schema: {e}"[:500]
            status: Literal["processed", "ignored"] = (
                "processed" if outcome in ("applied", "unchanged") else "ignored"
            )
            await inbox.finish(conn, event_id, status, error)
            return {"outcome": outcome, "event_type": event["event_type"], "error": error}
    except psycopg.errors.SerializationFailure as e:
        raise Retryable(f"payout event {event_id} raced another writer") from e
    except psycopg.OperationalError as e:
        raise Retryable(f"database unavailable: {e}") from e
