"""Property: whatever 8 concurrent clients do to a few hot accounts — grants, usage charges,
holds (some already expired), partial posts, voids, batches, hold expiry, retries of any
of those with the same ids, and replays of other clients' calls that may still be in
flight — the ledger stays exact: no user account below zero, the
ledger sums to zero, every account's balance equals the sum of its transfers, every hold
resolves at most once, a retried call never applies twice, and no deadlock happens."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import db as support
from worker import credits
from worker.errors import Bug, Fatal, Retryable

CLIENTS = 8
HOT_USERS = 3
USAGES = ("trade", "backtest_second", "ai_request")

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(40), places=2)
quantities = st.decimals(min_value=Decimal(1), max_value=Decimal(30), places=0)
user = st.integers(0, HOT_USERS - 1)
hold_ref = st.integers(0, 1_000)

simple_ops = st.one_of(
    st.tuples(st.just("grant"), user, amounts),
    st.tuples(st.just("usage"), user, st.sampled_from(USAGES), quantities),
    st.tuples(
        st.just("hold"), user, amounts, st.sampled_from([False, False, False, True])
    ),  # expired?
    st.tuples(st.just("post"), hold_ref, st.sampled_from(["all", "half", "tiny", "too_much"])),
    st.tuples(st.just("void"), hold_ref),
)
ops = st.one_of(
    simple_ops,
    st.tuples(
        st.just("replay"), hold_ref
    ),  # another client's earlier call again, maybe still in flight
    st.tuples(st.just("batch"), st.lists(simple_ops, min_size=1, max_size=8)),
    st.just(("expire",)),
)
programs = st.lists(
    st.lists(st.tuples(ops, st.booleans()), max_size=8), min_size=CLIENTS, max_size=CLIENTS
)


@dataclass
class World:
    url: str
    users: list[uuid.UUID]
    accounts: list[uuid.UUID]
    usage_account: uuid.UUID
    grants_account: uuid.UUID
    holds: list[tuple[uuid.UUID, Decimal]] = field(default_factory=list)
    sent: list[credits.TransferRequest] = field(default_factory=list)
    accepted: set[uuid.UUID] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def hold(self, ref: int) -> tuple[uuid.UUID, Decimal] | None:
        return self.holds[ref % len(self.holds)] if self.holds else None


def post_amount(kind: str, held: Decimal) -> Decimal | None:
    return {
        "all": None,
        "half": (held / 2).quantize(Decimal("0.00000001")),
        "tiny": Decimal("0.01"),
        "too_much": held + 1,
    }[kind]


def request(world: World, op: tuple[Any, ...]) -> credits.TransferRequest | None:
    new = uuid.uuid4()
    match op:
        case ("grant", u, amount):
            return credits.TransferRequest(
                "transfer", new, world.grants_account, world.accounts[u], amount, "grant"
            )
        case ("usage", u, usage, qty):
            return credits.TransferRequest(
                "usage", new, user_id=world.users[u], usage=usage, quantity=qty
            )
        case ("hold", u, amount, expired):
            world.holds.append((new, amount))
            return credits.TransferRequest(
                "hold",
                new,
                world.accounts[u],
                world.usage_account,
                amount,
                "usage",
                expires_after=timedelta(seconds=-1 if expired else 600),
            )
        case ("post", ref, kind):
            held = world.hold(ref)
            return held and credits.TransferRequest(
                "post", new, pending_id=held[0], amount=post_amount(kind, held[1])
            )
        case ("void", ref):
            held = world.hold(ref)
            return held and credits.TransferRequest("void", new, pending_id=held[0])
    raise AssertionError(op)


async def single(
    conn: psycopg.AsyncConnection[Any], world: World, r: credits.TransferRequest
) -> Any:
    match r.action:
        case "transfer":
            assert r.debit_account_id and r.credit_account_id and r.amount and r.kind
            return await credits.transfer(
                conn,
                id=r.id,
                debit_account_id=r.debit_account_id,
                credit_account_id=r.credit_account_id,
                amount=r.amount,
                kind=r.kind,
            )
        case "usage":
            assert r.user_id and r.usage and r.quantity
            return await credits.charge_usage(
                conn, id=r.id, user_id=r.user_id, usage=r.usage, quantity=r.quantity
            )
        case "hold":
            assert (
                r.debit_account_id
                and r.credit_account_id
                and r.amount
                and r.expires_after is not None
            )
            return await credits.hold(
                conn,
                id=r.id,
                debit_account_id=r.debit_account_id,
                credit_account_id=r.credit_account_id,
                amount=r.amount,
                expires_after=r.expires_after,
            )
        case "post":
            assert r.pending_id
            return await credits.post(conn, id=r.id, pending_id=r.pending_id, amount=r.amount)
        case "void":
            assert r.pending_id
            return await credits.void(conn, id=r.id, pending_id=r.pending_id)
    raise AssertionError(r)


async def client(world: World, program: list[tuple[tuple[Any, ...], bool]]) -> None:
    async with await psycopg.AsyncConnection.connect(world.url, autocommit=True) as conn:
        await conn.execute("set role service_role")
        for op, retry in program:
            try:
                if op[0] == "expire":
                    await credits.expire_holds(conn)
                elif op[0] == "batch":
                    reqs = [r for r in (request(world, o) for o in op[1]) if r is not None]
                    first = await credits.create_transfers(conn, reqs)
                    world.accepted.update(r.id for r in first if r.result == "ok" and r.id)
                    if retry:
                        again = await credits.create_transfers(conn, reqs)
                        for a, b in zip(first, again, strict=True):
                            if a.accepted and b.result != "exists":
                                world.problems.append(
                                    f"batch retry of {a.id}: {a.result} then {b.result}"
                                )
                else:
                    if op[0] == "replay":
                        r = world.sent[op[1] % len(world.sent)] if world.sent else None
                    else:
                        r = request(world, op)
                    if r is None:
                        continue
                    world.sent.append(r)
                    try:
                        made = await single(conn, world, r)
                    except Fatal:
                        continue  # a rejection: changes nothing, which the audit checks
                    if made is not None:
                        world.accepted.add(made.id)
                        if made.id != r.id:
                            world.problems.append(f"call {r.id} returned transfer {made.id}")
                    if retry:
                        again = await single(conn, world, r)
                        if again != made:
                            world.problems.append(f"retry of {r.id} returned {again} after {made}")
            except (Retryable, Bug) as e:  # deadlocks, reused ids: never acceptable here
                world.problems.append(f"{op}: {type(e).__name__}: {e}")


async def setup(url: str) -> World:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        people = [
            await support.create_user(conn, f"hot{i}-{uuid.uuid4().hex[:8]}@test.local")
            for i in range(HOT_USERS)
        ]
        accounts = []
        for p in people:
            cur = await conn.execute("select id from credit_accounts where user_id = %s", (p.id,))
            accounts.append((await cur.fetchone() or [None])[0])
        cur = await conn.execute("select id from credit_accounts where code = 'system:usage'")
        usage = (await cur.fetchone() or [None])[0]
        cur = await conn.execute("select id from credit_accounts where code = 'system:grants'")
        grants = (await cur.fetchone() or [None])[0]
        await conn.execute("set role service_role")
        for p in people:
            await credits.grant(conn, id=uuid.uuid4(), user_id=p.id, amount=Decimal(60))
    return World(url, [p.id for p in people], accounts, usage, grants)


async def check(world: World) -> None:
    async with await psycopg.AsyncConnection.connect(world.url, autocommit=True) as conn:
        cur = await conn.execute("select rule, account_id, detail from credit_audit()")
        violations = await cur.fetchall()
        cur = await conn.execute("select id from credit_transfers")
        stored = {r[0] for r in await cur.fetchall()}
    assert violations == []
    assert world.problems == []
    # Every accepted call is in the ledger; the rest are holds voided by expiry.
    assert world.accepted <= stored


def run(world: World, progs: list[list[tuple[tuple[Any, ...], bool]]]) -> None:
    async def main() -> None:
        await asyncio.gather(*(client(world, p) for p in progs))
        await check(world)

    asyncio.run(main())


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(progs=programs)
def test_concurrent_clients_keep_the_ledger_exact(db_url: str, progs: list[list[Any]]) -> None:
    # One database for all examples, fresh hot accounts for each: the audit covers the
    # whole ledger, so every example also re-checks what the earlier ones left.
    world = asyncio.run(setup(db_url))
    run(world, progs)
