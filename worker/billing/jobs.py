"""The billing job kinds: a stored payment webhook becomes invoice state (and, through
``public.billing_apply_invoice_event``, subscriptions and credits); the periodic sweep
expires overdue invoices and lapsed plans."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import ValidationError

from worker import inbox
from worker.errors import Retryable
from worker.fleet.registry import JobContext, Payload

from .disputes import CHARGEBACK
from .events import PARSERS
from .models import PaymentUpdate
from .payouts import process_payout_event
from .renewals import apply_subscription_event, save_payment_method

LOCK_EVENT = """
select id, provider, event_id, event_type, payload, status
  from public.webhook_events where id = %(id)s for update
"""

FIND_INVOICE = """
select i.id from public.invoices i
 where i.id = %(invoice_id)s
    or (i.provider = %(provider)s and (i.provider_invoice_id = any(%(refs)s) or i.reference_id = any(%(refs)s)
                                       or i.transaction_id = any(%(refs)s) or i.provider_refs && %(refs)s::text[]))
 order by (i.id = %(invoice_id)s) desc nulls last
 limit 1
"""

# Has the subscription's first payment been applied (a renewal applies after it)?
SUBSCRIPTION_PAID = """
select exists (select 1 from public.invoices i
                where i.provider = %(provider)s and i.provider_refs @> array[%(subscription)s]::text[]
                  and i.status in ('paid', 'partially_refunded', 'refunded')) as paid
"""

# A subscription in trial: its checkout's invoice, still unpaid, that the first charge at
# the trial's end pays.
TRIAL_INVOICE = """
select i.id from public.invoices i
 where i.provider = %(provider)s and i.provider_refs @> array[%(subscription)s]::text[]
   and i.status in ('pending', 'failed', 'expired')
 order by i.created_at limit 1
"""

# Every reference an applied event named finds the invoice from now on; returns the keys
# events waiting for this invoice may name.
REMEMBER_REFS = """
update public.invoices i
   set provider_refs = array(select distinct r from unnest(i.provider_refs || %(refs)s::text[]) r order by r)
 where i.id = %(invoice_id)s
returning array_remove(i.provider_refs || array[i.id::text, i.provider_invoice_id, i.reference_id, i.transaction_id],
                       null) as keys
"""

# A provider-initiated invoice (a subscription renewal billed by the provider) that we
# have no row for: create it from the metadata we attached when the subscription began.
CREATE_INVOICE = """
insert into public.invoices (user_id, plan_id, provider, provider_invoice_id, amount, currency, credits, description)
values (%(user_id)s, %(plan_id)s, %(provider)s, %(provider_invoice_id)s, %(amount)s, coalesce(%(currency)s, 'USD'),
        coalesce(%(credits)s, 0), 'renewal billed by ' || %(provider)s)
on conflict (provider, provider_invoice_id) do update set updated_at = public.invoices.updated_at
returning id
"""

APPLY = """
select public.billing_apply_invoice_event(%(invoice_id)s, %(status)s, %(amount)s, %(occurred_at)s, %(details)s) as outcome
"""

# A refund of part (or all) of the payment.
APPLY_REFUND = """
select public.billing_apply_refund(%(invoice_id)s, %(refund_ref)s, %(refund_amount)s, %(refund_cumulative)s,
                                   %(occurred_at)s, %(details)s) as outcome
"""

# A dispute decided against us: the invoice is reversed as a chargeback.
APPLY_CHARGEBACK = """
select public.billing_apply_chargeback(%(invoice_id)s, %(dispute)s, %(occurred_at)s) as outcome
"""

EXPIRE_DUE = "select invoices_expired, subscriptions_expired from public.billing_expire_due()"

PROVIDERS = ("stripe", "paystack", "tripay")


async def _find_or_create_invoice(
    cur: psycopg.AsyncCursor[dict[str, Any]], provider: str, update: PaymentUpdate
) -> uuid.UUID | None:
    await cur.execute(
        FIND_INVOICE,
        {"invoice_id": update.invoice_id, "provider": provider, "refs": list(update.references)},
    )
    row = await cur.fetchone()
    if row is not None:
        return uuid.UUID(str(row["id"]))
    if (
        update.status != "paid"
        or update.user_id is None
        or update.amount is None
        or not update.references
        or update.billing_reason == "first"  # its invoice is the checkout's: wait for it
    ):
        return None
    await cur.execute(
        CREATE_INVOICE,
        {
            "user_id": update.user_id,
            "plan_id": update.plan_id,
            "provider": provider,
            "provider_invoice_id": update.references[0],
            "amount": update.amount,
            "currency": update.currency,
            "credits": update.credits,
        },
    )
    created = await cur.fetchone()
    return uuid.UUID(str(created["id"])) if created else None


def _keys(update: PaymentUpdate) -> list[str]:
    """What the event names: events waiting for one another share one of these."""
    return [
        *update.references,
        str(update.invoice_id) if update.invoice_id else "",
        update.subscription or "",
    ]


async def _waits_for(
    cur: psycopg.AsyncCursor[dict[str, Any]], provider: str, update: PaymentUpdate
) -> tuple[list[str], str] | None:
    """What a renewal waits for: its subscription's first payment (which starts the plan
    it renews). ``None``: nothing to wait for."""
    if update.billing_reason != "renewal" or update.subscription is None:
        return None
    await cur.execute(
        SUBSCRIPTION_PAID, {"provider": provider, "subscription": update.subscription}
    )
    row = await cur.fetchone()
    if row is not None and row["paid"]:
        return None
    return (
        [update.subscription],
        f"renewal waits for the first payment of subscription {update.subscription}",
    )


async def _trial_invoice(
    cur: psycopg.AsyncCursor[dict[str, Any]], provider: str, update: PaymentUpdate
) -> uuid.UUID | None:
    """The unpaid checkout invoice of a subscription in trial: the first charge after the
    trial (a renewal to the provider) pays it."""
    if update.billing_reason != "renewal" or update.subscription is None or update.status != "paid":
        return None
    await cur.execute(TRIAL_INVOICE, {"provider": provider, "subscription": update.subscription})
    row = await cur.fetchone()
    return uuid.UUID(str(row["id"])) if row else None


async def _wake_successors(
    cur: psycopg.AsyncCursor[dict[str, Any]],
    provider: str,
    invoice_id: uuid.UUID,
    update: PaymentUpdate,
) -> None:
    """Remember the event's references on its invoice and wake the events waiting for
    this invoice (a refund before its payment, a renewal before the first payment)."""
    refs = [*update.references, *([update.subscription] if update.subscription else [])]
    await cur.execute(REMEMBER_REFS, {"invoice_id": invoice_id, "refs": refs})
    row = await cur.fetchone()
    keys = list(row["keys"]) if row else [str(invoice_id)]
    await inbox.wake(cur.connection, [provider], keys)


async def process_webhook_event(pool: Any, event_id: uuid.UUID | str) -> dict[str, Any]:
    """Apply one stored payment event, in one transaction with its effects. Returns what
    happened; a replayed or already processed event changes nothing."""
    try:
        async with (
            pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cur,
        ):
            await cur.execute(LOCK_EVENT, {"id": event_id})
            event = await cur.fetchone()
            if event is None:
                return {"outcome": "missing"}
            if event["status"] in ("processed", "ignored"):
                return {"outcome": "already_" + event["status"]}
            provider = event["provider"]
            renewal = await apply_subscription_event(cur, provider, event["payload"])
            if renewal is not None:
                return await _finish_renewal_event(conn, event, renewal)
            parse = PARSERS.get(provider)
            outcome, error = "ignored", None
            status: Literal["processed", "ignored"] = "ignored"
            try:
                update = parse(event["payload"]) if parse else None
            except ValidationError as e:
                update, error = (
                    None,
                    f"payload does not match the {provider} schema: {e.error_count()} errors",
                )
            if update is None:
                error = error or f"{event['event_type']} changes no invoice"
            else:
                # Before looking for what it needs: the event that applies it wakes us
                # after we decided to wait, or we see it applied (see inbox.lock_keys).
                await inbox.lock_keys(conn, provider, _keys(update))
                waits = await _waits_for(cur, provider, update)
                invoice_id = await _trial_invoice(cur, provider, update) if waits else None
                if invoice_id is not None:
                    waits = None
                elif waits is None:
                    invoice_id = await _find_or_create_invoice(cur, provider, update)
                if waits is None and invoice_id is None:
                    refs = list(update.references)
                    waits = (
                        [*refs, str(update.invoice_id) if update.invoice_id else ""],
                        f"waits for an invoice matching {provider} references {refs}",
                    )
                if waits is None and invoice_id is not None:
                    chargeback = update.details.get("reason") == CHARGEBACK
                    partial = update.refund_amount is not None and (
                        update.refund_cumulative or update.refund_ref is not None
                    )
                    await cur.execute(
                        APPLY_CHARGEBACK if chargeback else APPLY_REFUND if partial else APPLY,
                        {
                            "invoice_id": invoice_id,
                            "status": update.status,
                            "amount": update.amount,
                            "occurred_at": update.occurred_at,
                            "details": json.dumps(update.details),
                            "dispute": update.details.get("dispute"),
                            "refund_ref": update.refund_ref,
                            "refund_amount": update.refund_amount,
                            "refund_cumulative": update.refund_cumulative,
                        },
                    )
                    applied = await cur.fetchone()
                    outcome = str(applied["outcome"]) if applied else "not_found"
                    status = "processed"
                    if outcome == "amount_mismatch":
                        error = f"{provider} paid {update.amount}, less than invoice {invoice_id}"
                    elif outcome == "not_paid_yet":
                        waits = (
                            [str(invoice_id), *update.references],
                            f"{update.status} waits for the payment of invoice {invoice_id}",
                        )
                    elif outcome in ("applied", "unchanged"):
                        await _wake_successors(cur, provider, invoice_id, update)
                        await save_payment_method(cur, provider, event["payload"], invoice_id)
                if waits is not None:
                    keys, reason = waits
                    await inbox.wait(conn, event_id, keys, reason)
                    return {
                        "outcome": "waiting",
                        "event_type": event["event_type"],
                        "error": reason,
                    }
            await inbox.finish(conn, event_id, status, error)
            return {"outcome": outcome, "event_type": event["event_type"], "error": error}
    except psycopg.errors.SerializationFailure as e:
        raise Retryable(f"payment event {event_id} raced another writer") from e
    except psycopg.errors.LockNotAvailable as e:
        raise Retryable(f"payment event {event_id} is locked") from e
    except psycopg.OperationalError as e:
        raise Retryable(f"database unavailable: {e}") from e


async def _finish_renewal_event(
    conn: psycopg.AsyncConnection[Any], event: dict[str, Any], renewal: tuple[str, str]
) -> dict[str, Any]:
    """A provider's renewal event (see ``renewals.apply_subscription_event``): one naming
    a subscription we do not know yet waits for its first payment."""
    outcome, subscription = renewal
    if outcome == "not_found":
        reason = f"waits for the first payment of subscription {subscription}"
        await inbox.wait(conn, event["id"], [subscription], reason)
        return {"outcome": "waiting", "event_type": event["event_type"], "error": reason}
    await inbox.finish(conn, event["id"], "processed", None)
    return {"outcome": outcome, "event_type": event["event_type"], "error": None}


class WebhookEvent(Payload):
    """``billing.webhook``, enqueued by a trigger on ``webhook_events``."""

    webhook_event_id: uuid.UUID


async def handle_webhook(ctx: JobContext[WebhookEvent]) -> dict[str, Any]:
    result = await process_payout_event(ctx.pool, ctx.payload.webhook_event_id)
    if result is not None:
        ctx.log.info("payout event applied", extra={"action": "billing_payout_event", **result})
        return result
    result = await process_webhook_event(ctx.pool, ctx.payload.webhook_event_id)
    ctx.log.info("payment event applied", extra={"action": "billing_webhook", **result})
    return result


async def sweep(pool: Any, wait_for: timedelta) -> dict[str, Any]:
    """Expire overdue invoices and lapsed plans; retry waiting payment events and end those
    waiting longer than ``wait_for`` as ``ignored``."""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(EXPIRE_DUE)
        row = await cur.fetchone()
        result: dict[str, Any] = dict(row) if row else {}
        result.update(await inbox.sweep_waiting(conn, PROVIDERS, wait_for))
    return result
