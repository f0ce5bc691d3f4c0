"""The credit ledger as users and the other capabilities see it: charges priced by the plan,
holds that settle once, idempotent retries, batches, flows, and who may move credits."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.support.db import User, request_as
from worker import credits
from worker.credits import jobs
from worker.errors import Bug, Fatal
from worker.fleet.registry import Job, JobContext, PayloadError, Registry


async def available(pool: AsyncConnectionPool, user: User) -> Decimal:
    b = await credits.balance(pool, user_id=user.id)
    assert b is not None
    return b.available


async def account_id(
    conn: psycopg.AsyncConnection[Any], code_or_user: str | User, kind: str = "user"
) -> uuid.UUID:
    if isinstance(code_or_user, User):
        cur = await conn.execute(
            "select id from credit_accounts where user_id = %s and kind = %s",
            (code_or_user.id, kind),
        )
    else:
        cur = await conn.execute("select id from credit_accounts where code = %s", (code_or_user,))
    row = await cur.fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


async def audit(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    cur = await conn.execute("select rule, account_id, detail from credit_audit()")
    return await cur.fetchall()


async def test_usage_is_charged_at_the_plan_price_and_shows_on_the_statement(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    alice = users["alice"]
    await credits.grant(pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(100))
    # Free plan: 1 credit per trade, 5 per AI request, 0.1 per backtest second.
    await credits.charge_usage(
        pool, id=uuid.uuid4(), user_id=alice.id, usage="trade", quantity=Decimal(3)
    )
    await credits.charge_usage(pool, id=uuid.uuid4(), user_id=alice.id, usage="ai_request")
    charge = await credits.charge_usage(
        pool,
        id=uuid.uuid4(),
        user_id=alice.id,
        usage="backtest_second",
        quantity=Decimal(25),
        reference_type="backtest",
        reference_id="run-1",
    )
    assert charge is not None and charge.amount == Decimal("2.5")
    assert await available(pool, alice) == Decimal("89.5")
    assert await credits.quote(
        pool, user_id=alice.id, usage="trade", quantity=Decimal(2)
    ) == Decimal(2)

    async with request_as(conn, alice) as cur:
        await cur.execute("select amount, kind, reference_id from get_credit_statement()")
        rows = await cur.fetchall()
        assert [r["amount"] for r in rows] == [Decimal("-2.5"), -5, -3, 100]
        assert rows[0]["reference_id"] == "run-1"
        await cur.execute("select balance, held, available from get_credit_balance()")
        assert await cur.fetchone() == {
            "balance": Decimal("89.5"),
            "held": 0,
            "available": Decimal("89.5"),
        }
    assert await audit(conn) == []


async def test_prices_follow_the_plan_not_the_code(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    bob = users["bob"]
    await conn.execute(
        """update plans set features = features || '{"credits_per_trade": 0.25}' where name = 'Free'"""
    )
    await credits.grant(pool, id=uuid.uuid4(), user_id=bob.id, amount=Decimal(1))
    await credits.charge_usage(pool, id=uuid.uuid4(), user_id=bob.id, usage="trade")
    assert await available(pool, bob) == Decimal("0.75")
    await conn.execute(
        """update plans set features = features || '{"credits_per_trade": 0}' where name = 'Free'"""
    )
    assert await credits.charge_usage(pool, id=uuid.uuid4(), user_id=bob.id, usage="trade") is None
    assert await available(pool, bob) == Decimal("0.75")


async def test_a_retried_call_charges_once_and_a_reused_id_is_a_bug(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    alice = users["alice"]
    await credits.grant(pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(10))
    charge_id = credits.transfer_id("trade", "t-1")
    first = await credits.charge_usage(pool, id=charge_id, user_id=alice.id, usage="trade")
    again = await credits.charge_usage(pool, id=charge_id, user_id=alice.id, usage="trade")
    assert first == again
    assert await available(pool, alice) == 9
    with pytest.raises(credits.IdempotencyConflict) as err:
        await credits.charge_usage(
            pool, id=charge_id, user_id=alice.id, usage="trade", quantity=Decimal(2)
        )
    assert isinstance(err.value, Bug) and err.value.code == "exists_with_different_amount"
    assert await available(pool, alice) == 9


async def test_a_hold_settles_once_partially_and_releases_the_rest(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    alice = users["alice"]
    await credits.grant(pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(100))
    held = await credits.hold_usage(
        pool, id=uuid.uuid4(), user_id=alice.id, usage="backtest_second", quantity=Decimal(600)
    )
    assert held is not None and held.amount == 60 and held.phase == "pending"
    b = await credits.balance(pool, user_id=alice.id)
    assert b is not None and (b.balance, b.held, b.available) == (100, 60, 40)

    # The hold blocks spending what it reserved.
    with pytest.raises(credits.InsufficientCredits) as err:
        await credits.charge_usage(
            pool, id=uuid.uuid4(), user_id=alice.id, usage="backtest_second", quantity=Decimal(401)
        )
    assert isinstance(err.value, Fatal) and "insufficient credits" in str(err.value)

    with pytest.raises(credits.TransferRejected) as err:
        await credits.post(pool, id=uuid.uuid4(), pending_id=held.id, amount=Decimal(61))
    assert err.value.code == "exceeds_pending_transfer_amount"

    cost = await credits.quote(
        pool, user_id=alice.id, usage="backtest_second", quantity=Decimal(412)
    )
    posted = await credits.post(pool, id=uuid.uuid4(), pending_id=held.id, amount=cost)
    assert posted.amount == Decimal("41.2") and posted.phase == "post_pending"
    b = await credits.balance(pool, user_id=alice.id)
    assert b is not None and (b.balance, b.held, b.available) == (
        Decimal("58.8"),
        0,
        Decimal("58.8"),
    )

    with pytest.raises(credits.HoldAlreadyResolved):
        await credits.post(pool, id=uuid.uuid4(), pending_id=held.id)
    with pytest.raises(credits.HoldAlreadyResolved):
        await credits.void(pool, id=uuid.uuid4(), pending_id=held.id)
    assert await available(pool, alice) == Decimal("58.8")
    assert await audit(conn) == []


async def test_a_voided_hold_cannot_be_posted_and_costs_nothing(
    pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    bob = users["bob"]
    await credits.grant(pool, id=uuid.uuid4(), user_id=bob.id, amount=Decimal(20))
    held = await credits.hold_usage(
        pool, id=uuid.uuid4(), user_id=bob.id, usage="ai_request", quantity=Decimal(2)
    )
    assert held is not None
    await credits.void(pool, id=uuid.uuid4(), pending_id=held.id)
    with pytest.raises(credits.HoldAlreadyResolved) as err:
        await credits.post(pool, id=uuid.uuid4(), pending_id=held.id)
    assert err.value.code == "pending_transfer_already_voided"
    assert await available(pool, bob) == 20


async def test_holds_expire_by_themselves(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    alice = users["alice"]
    usage = await account_id(conn, "system:usage")
    mine = await account_id(conn, alice)
    await credits.grant(pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(10))
    stale = await credits.hold(
        pool,
        id=uuid.uuid4(),
        debit_account_id=mine,
        credit_account_id=usage,
        amount=Decimal(4),
        expires_after=timedelta(seconds=-1),
    )
    fresh = await credits.hold(
        pool,
        id=uuid.uuid4(),
        debit_account_id=mine,
        credit_account_id=usage,
        amount=Decimal(3),
        expires_after=timedelta(hours=1),
    )
    assert await available(pool, alice) == 3
    with pytest.raises(credits.HoldExpired):
        await credits.post(pool, id=uuid.uuid4(), pending_id=stale.id)

    ctx = job_context(pool, jobs.EXPIRE_HOLDS, {})
    assert await jobs.expire_holds(ctx) == {"voided": 1}
    assert await jobs.expire_holds(ctx) == {"voided": 0}
    assert await available(pool, alice) == 7
    await credits.post(pool, id=uuid.uuid4(), pending_id=fresh.id)
    assert await available(pool, alice) == 7
    assert await audit(conn) == []


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (Decimal(0), "amount_must_be_positive"),
        (Decimal(-5), "amount_must_be_positive"),
        (Decimal(11), "exceeds_credits"),
    ],
)
async def test_bad_transfers_fail_clearly_and_change_nothing(
    conn: psycopg.AsyncConnection[Any],
    pool: AsyncConnectionPool,
    users: dict[str, User],
    amount: Decimal,
    code: str,
) -> None:
    alice, bob = users["alice"], users["bob"]
    await credits.grant(pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(10))
    with pytest.raises(credits.TransferRejected) as err:
        await credits.transfer(
            pool,
            id=uuid.uuid4(),
            debit_account_id=await account_id(conn, alice),
            credit_account_id=await account_id(conn, bob),
            amount=amount,
            kind="correction",
        )
    assert err.value.code == code
    assert (await available(pool, alice), await available(pool, bob)) == (10, 0)


async def test_unknown_accounts_and_holds_are_named_in_the_error(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    nobody = uuid.uuid4()
    with pytest.raises(credits.TransferRejected) as err:
        await credits.transfer(
            pool,
            id=uuid.uuid4(),
            debit_account_id=nobody,
            credit_account_id=await account_id(conn, users["bob"]),
            amount=Decimal(1),
            kind="grant",
        )
    assert err.value.code == "debit_account_not_found" and str(nobody) in str(err.value)
    with pytest.raises(credits.TransferRejected) as err:
        await credits.post(pool, id=uuid.uuid4(), pending_id=uuid.uuid4())
    assert err.value.code == "pending_transfer_not_found"
    async with request_as(conn, "service_role") as cur:
        await cur.execute("select count(*) as n from credit_transfers")
        assert await cur.fetchone() == {"n": 0}


async def test_a_batch_accepts_or_rejects_each_transfer_on_its_own(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    alice, bob = users["alice"], users["bob"]
    grants = await account_id(conn, "system:grants")
    usage = await account_id(conn, "system:usage")
    a = await account_id(conn, alice)
    hold_id, grant_id = uuid.uuid4(), uuid.uuid4()
    results = await credits.create_transfers(
        pool,
        [
            credits.TransferRequest("transfer", grant_id, grants, a, Decimal(10), "grant"),
            credits.TransferRequest(
                "transfer", grant_id, grants, a, Decimal(10), "grant"
            ),  # a retry
            credits.TransferRequest(
                "hold", hold_id, a, usage, Decimal(6), "usage", expires_after=timedelta(minutes=5)
            ),
            credits.TransferRequest(
                "usage", uuid.uuid4(), user_id=alice.id, usage="ai_request"
            ),  # 5 > 4 left
            credits.TransferRequest("post", uuid.uuid4(), pending_id=hold_id, amount=Decimal(2)),
            credits.TransferRequest(
                "usage", uuid.uuid4(), user_id=alice.id, usage="trade", quantity=Decimal(3)
            ),
            credits.TransferRequest(
                "usage", uuid.uuid4(), user_id=bob.id, usage="trade"
            ),  # bob has 0
            credits.TransferRequest("void", uuid.uuid4(), pending_id=hold_id),
        ],
    )
    assert [r.result for r in results] == [
        "ok",
        "exists",
        "ok",
        "exceeds_credits",
        "ok",
        "ok",
        "exceeds_credits",
        "pending_transfer_already_posted",
    ]
    assert [r.index for r in results] == list(range(8))
    assert (await available(pool, alice), await available(pool, bob)) == (5, 0)
    assert isinstance(credits.rejection(results[3].result, "x"), credits.InsufficientCredits)
    assert await audit(conn) == []


async def test_users_read_their_own_credits_and_cannot_move_any(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    alice, bob, admin = users["alice"], users["bob"], users["admin"]
    await credits.grant(pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(10))
    a, b = await account_id(conn, alice), await account_id(conn, bob)

    async with request_as(conn, bob) as cur:
        await cur.execute("select user_id from credit_balances")
        assert [r["user_id"] for r in await cur.fetchall()] == [bob.id]
        await cur.execute("select count(*) as n from credit_statement")
        assert await cur.fetchone() == {"n": 0}
    for sql in (
        "select credit_create_transfer(gen_random_uuid(), %(a)s, %(b)s, 10, 'correction')",
        "select credit_create_transfers('[]')",
        "select credit_correct(gen_random_uuid(), %(a)s, %(b)s, 10, 'mine now')",
        "update credit_accounts set credits_posted = 1000 where id = %(b)s",
        "insert into credit_transfers (id, debit_account_id, credit_account_id, amount, kind) "
        "values (gen_random_uuid(), %(a)s, %(b)s, 10, 'correction')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with request_as(conn, bob) as cur:
                await cur.execute(sql, {"a": a, "b": b})
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, "anon") as cur:
            await cur.execute("select * from get_credit_balance()")

    # An admin corrects mistakes with a new transfer, under the same rules.
    async with request_as(conn, admin) as cur:
        await cur.execute(
            "select amount from credit_correct(gen_random_uuid(), %s, %s, 4, 'duplicate grant')",
            (a, b),
        )
        assert await cur.fetchone() == {"amount": 4}
    assert (await available(pool, alice), await available(pool, bob)) == (6, 4)


async def test_strategy_payments_share_revenue_and_providers_request_payouts(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    alice, provider = users["alice"], users["provider"]
    cur = await conn.execute(
        "insert into strategies (user_id, name, strategy_type, engine, is_public, monthly_price, provider_share) "
        "values (%s, 'Edge', 'marketplace', 'rsi', true, 40, 0.75) returning id",
        (provider.id,),
    )
    strategy = (await cur.fetchone() or [None])[0]
    cur = await conn.execute(
        "insert into strategy_subscriptions (strategy_id, subscriber_id, price) values (%s, %s, 40) returning id",
        (strategy, alice.id),
    )
    subscription = (await cur.fetchone() or [None])[0]
    await credits.grant(pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(100))

    payment = uuid.uuid4()
    for _ in range(2):  # a retried payment pays once
        async with pool.connection() as c:
            await c.execute(
                "select * from credit_pay_strategy_subscription(%s, %s)", (payment, subscription)
            )
    earnings = await credits.balance(pool, user_id=provider.id, kind="provider_earnings")
    assert earnings is not None and earnings.available == 30
    cur = await conn.execute(
        "select balance from credit_accounts where code = 'system:platform_revenue'"
    )
    assert await cur.fetchone() == (10,)
    assert await available(pool, alice) == 60

    async with request_as(conn, provider) as c2:
        await c2.execute("select credit_min_payout() as m")
        assert await c2.fetchone() == {"m": 50}
    with pytest.raises(psycopg.errors.CheckViolation) as err:
        async with request_as(conn, provider) as c2:
            await c2.execute("select * from credit_request_payout()")
    assert err.value.diag.constraint_name == "credit_payouts_minimum"

    async with pool.connection() as c:
        await c.execute(
            "select * from credit_pay_strategy_subscription(%s, %s)", (uuid.uuid4(), subscription)
        )
    async with request_as(conn, provider) as c2:
        await c2.execute("select id, amount, phase from credit_request_payout()")
        payout = await c2.fetchone()
    assert payout is not None and (payout["amount"], payout["phase"]) == (60, "pending")
    await credits.post(pool, id=uuid.uuid4(), pending_id=payout["id"])
    earnings = await credits.balance(pool, user_id=provider.id, kind="provider_earnings")
    assert earnings is not None and (earnings.balance, earnings.available) == (0, 0)
    assert await audit(conn) == []


async def test_paid_invoices_and_monthly_grants_credit_once(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    bob = users["bob"]
    cur = await conn.execute(
        "insert into invoices (user_id, amount, credits) values (%s, 9.99, 500) returning id",
        (bob.id,),
    )
    invoice = (await cur.fetchone() or [None])[0]
    await conn.execute(
        "update invoices set status = 'paid', paid_at = now() where id = %s", (invoice,)
    )
    await conn.execute("update invoices set status = 'paid' where id = %s", (invoice,))
    assert await available(pool, bob) == 500

    first = await credits.grant_monthly_all(pool)
    assert first == {"ok": 4}  # every signed-up user is on the Free plan: 100 a month
    assert await credits.grant_monthly_all(pool) == {}
    assert await available(pool, bob) == 600
    assert await audit(conn) == []


def job_context(pool: AsyncConnectionPool, kind: str, payload: dict[str, Any]) -> JobContext[Any]:
    registry = Registry()
    credits.register(registry)
    return registry.context(Job(1, "credits", kind, payload, 1, 5), pool, "test")


async def test_the_settlement_job_charges_usage_events_once(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    alice, bob = users["alice"], users["bob"]
    await credits.grant(pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(10))
    payload = {
        "events": [
            {
                "user_id": str(alice.id),
                "usage": "trade",
                "quantity": "2",
                "reference_type": "trade",
                "reference_id": "1",
            },
            {
                "user_id": str(alice.id),
                "usage": "ai_request",
                "reference_type": "ai",
                "reference_id": "7",
            },
            {
                "user_id": str(bob.id),
                "usage": "trade",
                "reference_type": "trade",
                "reference_id": "2",
            },
        ]
    }
    ctx = job_context(pool, jobs.SETTLE_USAGE, payload)
    assert await jobs.settle_usage(ctx) == {
        "charged": 2,
        "already_charged": 0,
        "free": 0,
        "rejected": {"exceeds_credits": 1},
    }
    assert await jobs.settle_usage(ctx) == {
        "charged": 0,
        "already_charged": 2,
        "free": 0,
        "rejected": {"exceeds_credits": 1},
    }
    assert await available(pool, alice) == 3
    # An event without a user is refused before anything runs (the job goes to dead).
    with pytest.raises(PayloadError, match="user_id"):
        job_context(pool, jobs.SETTLE_USAGE, {"events": [{"usage": "trade"}]})


def test_register_gives_the_fleet_the_credit_jobs() -> None:
    registry = Registry()
    credits.register(registry)
    assert set(registry.kinds) == {
        jobs.SETTLE_USAGE,
        jobs.EXPIRE_HOLDS,
        jobs.MONTHLY_GRANTS,
        jobs.API_USAGE,
    }
    assert registry.periodic_jobs[jobs.EXPIRE_HOLDS].every == timedelta(minutes=1)


async def test_holds_in_a_batch_then_posts_and_voids_inside_the_callers_transaction(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, users: dict[str, User]
) -> None:
    alice, bob = users["alice"], users["bob"]
    await credits.grant(pool, id=uuid.uuid4(), user_id=alice.id, amount=Decimal(10))
    usage = await credits.system_account(pool, "system:usage")
    assert usage == await account_id(conn, "system:usage")
    assert usage is not None and await credits.system_account(pool, "system:nothing") is None
    account = await account_id(conn, alice)

    def hold(cid: str, amount: str) -> credits.TransferRequest:
        return credits.TransferRequest.hold(
            id=credits.order_transfer_id(cid, "hold"),
            debit_account_id=account,
            credit_account_id=usage,
            amount=Decimal(amount),
            expires_after=timedelta(hours=1),
            reference_type="order",
            reference_id=cid,
        )

    results = await credits.create_transfers(pool, [hold("a1", "3"), hold("a2", "8")])
    assert [r.accepted for r in results] == [True, False]  # 3 + 8 > 10: the second is refused
    first = credits.order_transfer_id("a1", "hold")
    await credits.void(pool, id=uuid.uuid4(), pending_id=first)

    # A post of a hold resolved meanwhile is rejected on its own, and the caller's other
    # writes in the same transaction still commit.
    async with pool.connection() as c, c.transaction():
        await c.execute(
            "update public.profiles set full_name = 'Alice T.' where id = %s", (alice.id,)
        )
        done = await credits.create_transfers(
            c,
            [
                credits.TransferRequest.post(
                    id=credits.order_transfer_id("a1", "post"), pending_id=first
                )
            ],
        )
        assert [r.accepted for r in done] == [False]
    row = await (
        await conn.execute("select full_name from public.profiles where id = %s", (alice.id,))
    ).fetchone()
    assert row == ("Alice T.",)
    overview = {a.email: a for a in await credits.user_accounts(pool)}
    assert overview[alice.email].balance == 10 and overview[alice.email].held == 0
    assert overview[alice.email].spent == 0 and overview[bob.email].balance == 0
