"""Backtests from the app: a PostgREST insert -> a ``backtest.run`` job -> results read through RLS,
credits charged per compute-second through the ledger."""

from __future__ import annotations

import asyncio
import shutil
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tests.support.db import User, request_as
from tests.support.waiting import wait_for
from worker.backtest import app_modes, jobs, load_csv, run_backtest
from worker.backtest.settings import BacktestSettings
from worker.credits import ledger
from worker.fleet.registry import Job, Registry

PERIOD = ("2018-01-12T00:00:00Z", "2018-01-20T00:00:00Z")
DATA = Path(__file__).resolve().parents[2] / "data" / "candles"


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    jobs.register(reg)
    return reg


async def one(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> Any:
    cur = await conn.execute(query, args)
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def fund(pool: AsyncConnectionPool, user: User, amount: str = "100") -> None:
    await ledger.grant(
        pool, id=uuid.uuid4(), user_id=user.id, amount=Decimal(amount), reference_type="test"
    )


async def request_run(conn: psycopg.AsyncConnection[Any], user: User, **fields: Any) -> uuid.UUID:
    """What the app sends: ``POST /rest/v1/backtest_runs`` (return=representation)."""
    row = {
        "strategy": "sma_cross",
        "parameters": '{"fast": 10, "slow": 20}',
        "exchange": "binance",
        "trading_pair": "ETH/BTC",
        "timeframe": "5m",
        "start_date": PERIOD[0],
        "end_date": PERIOD[1],
        "settings": '{"fee": 0.002, "shorts": true}',
    }
    row.update(fields)
    async with request_as(conn, user) as cur:
        await cur.execute(
            "insert into backtest_runs (strategy, parameters, exchange, trading_pair, timeframe, start_date, "
            "end_date, settings) values (%(strategy)s, %(parameters)s, %(exchange)s, %(trading_pair)s, "
            "%(timeframe)s, %(start_date)s, %(end_date)s, %(settings)s) returning id",
            row,
        )
        got = await cur.fetchone()
    assert got is not None
    return uuid.UUID(str(got["id"]))


async def job_for(conn: psycopg.AsyncConnection[Any], run_id: uuid.UUID) -> Job:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select id, queue, kind, payload, attempts, max_attempts from jobs "
            "where idempotency_key = %s",
            (f"backtest.run:{run_id}",),
        )
        rows = await cur.fetchall()
    assert len(rows) == 1, "one job per run"
    return Job(**rows[0])


async def run_it(
    conn: psycopg.AsyncConnection[Any], pool: AsyncConnectionPool, reg: Registry, run_id: uuid.UUID
) -> dict[str, Any]:
    job = await job_for(conn, run_id)
    result: dict[str, Any] = await reg.kinds[job.kind].handler(reg.context(job, pool, "test"))
    return result


async def run_row(conn: psycopg.AsyncConnection[Any], run_id: uuid.UUID) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("select * from backtest_runs where id = %s", (run_id,))
        row = await cur.fetchone()
    assert row is not None
    return row


async def balances(pool: AsyncConnectionPool, user: User) -> ledger.Balance:
    b = await ledger.balance(pool, user_id=user.id)
    assert b is not None
    return b


async def test_a_run_inserted_by_the_app_is_run_stored_readable_and_charged_per_second(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice, bob = users["alice"], users["bob"]
    await fund(pool, alice)
    before = await balances(pool, alice)
    assert await one(conn, "select count(*) from candles where symbol = 'ETH/BTC'") == 0

    run_id = await request_run(conn, alice)
    assert (await run_row(conn, run_id))["status"] == "queued"
    out = await run_it(conn, pool, registry, run_id)
    assert out["status"] == "completed"

    run = await run_row(conn, run_id)
    assert run["status"] == "completed" and run["progress"] == 1 and run["error"] is None
    assert run["compute_seconds"] > 0
    # Exactly the plan's price per compute-second (Free: 0.1), and nothing left on hold.
    assert run["credits_charged"] == (Decimal("0.1") * run["compute_seconds"]).quantize(
        Decimal("1e-8")
    )
    after = await balances(pool, alice)
    assert before.balance - after.balance == run["credits_charged"]
    assert after.held == 0

    # The recorded candles were cached for the next run.
    assert await one(
        conn,
        "select count(*) from candles where exchange = 'binance' and symbol = 'ETH/BTC' "
        "and timeframe = '5m'",
    ) == len(load_csv(jobs.csv_path("ETH/BTC", "5m")).candles)

    async with request_as(conn, alice) as cur:
        await cur.execute(
            "select r.*, b.status as run_status, b.progress from backtest_results r "
            "join backtest_runs b on b.id = r.run_id where r.run_id = %s",
            (run_id,),
        )
        rows = await cur.fetchall()
    assert len(rows) == 1
    res = rows[0]
    assert (
        res["user_id"] == alice.id and res["trading_pair"] == "ETH/BTC" and res["timeframe"] == "5m"
    )
    assert res["metadata"]["source"] == "csv:ETH_BTC-5m.csv"
    assert isinstance(res["metadata"]["gaps"], list)

    # The same backtest run locally on the same period gives the stored trades and figures.
    series = load_csv(jobs.csv_path("ETH/BTC", "5m"))
    t = series.candles.time
    lo = int((t < 1515715200000).sum())
    hi = int((t < 1516406400000).sum())
    local = run_backtest(
        series.candles.slice(lo, hi),
        "sma_cross",
        {"fast": 10, "slow": 20},
        {"fee": 0.002, "shorts": True},
    )
    assert res["trades"] == local.trades and len(local.trades) > 10
    assert res["total_trades"] == local.stats["total_trades"]
    assert res["total_return_percentage"] == Decimal(
        str(local.stats["total_return_percentage"])
    ).quantize(Decimal("0.0001"))
    assert res["stats"]["sharpe_ratio"] == pytest.approx(local.stats["sharpe_ratio"])
    assert 0 < len(res["equity_curve"]) <= 2000
    assert res["equity_curve"][0]["time"] == local.equity[0]["time"]
    assert res["equity_curve"][-1] == local.equity[-1]
    assert res["start_date"].isoformat().startswith("2018-01-12T00:00")

    # Bob sees neither the run nor its result.
    async with request_as(conn, bob) as cur:
        await cur.execute("select count(*) as n from backtest_results where run_id = %s", (run_id,))
        assert (await cur.fetchone() or {})["n"] == 0
        await cur.execute("select count(*) as n from backtest_runs where id = %s", (run_id,))
        assert (await cur.fetchone() or {})["n"] == 0

    # A second run on the same market reads the cached candles and gets the same trades.
    again = await request_run(conn, alice)
    assert (await run_it(conn, pool, registry, again))["status"] == "completed"
    async with request_as(conn, alice) as cur:
        await cur.execute(
            "select trades, metadata from backtest_results where run_id = %s", (again,)
        )
        second = await cur.fetchone()
    assert second is not None
    assert second["metadata"]["source"] == "candles" and second["trades"] == res["trades"]


async def test_bad_parameters_fail_the_run_naming_the_parameter_and_charge_nothing(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    await fund(pool, alice)
    before = await balances(pool, alice)
    run_id = await request_run(conn, alice, parameters='{"fast": 30, "slow": 20}')
    out = await run_it(conn, pool, registry, run_id)
    run = await run_row(conn, run_id)
    assert out["status"] == run["status"] == "failed"
    assert "invalid parameter" in run["error"] and (
        "fast" in run["error"] or "slow" in run["error"]
    )
    assert run["credits_charged"] == 0
    unknown = await request_run(conn, alice, parameters='{"fats": 10}')
    await run_it(conn, pool, registry, unknown)
    assert "fats" in (await run_row(conn, unknown))["error"]
    bad_setting = await request_run(conn, alice, settings='{"fee": -1}')
    await run_it(conn, pool, registry, bad_setting)
    assert "fee" in (await run_row(conn, bad_setting))["error"]
    after = await balances(pool, alice)
    assert after.balance == before.balance and after.held == 0
    assert await one(conn, "select count(*) from backtest_results") == 0


async def test_a_market_without_candles_fails_clearly(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    await fund(pool, alice)
    run_id = await request_run(conn, alice, trading_pair="DOGE/USDT")
    await run_it(conn, pool, registry, run_id)
    run = await run_row(conn, run_id)
    assert (
        run["status"] == "failed"
        and "no candles" in run["error"]
        and "DOGE_USDT-5m.csv" in run["error"]
    )
    assert (await balances(pool, alice)).held == 0


async def test_a_cancelled_run_stops_and_pays_only_what_it_used(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = users["alice"]
    await fund(pool, alice)
    before = await balances(pool, alice)

    # Cancelled before a worker picks it up: nothing runs, nothing is charged.
    early = await request_run(conn, alice)
    async with request_as(conn, alice) as cur:
        await cur.execute("update backtest_runs set status = 'cancelled' where id = %s", (early,))
    assert (await run_it(conn, pool, registry, early))["status"] == "skipped"

    # Cancelled while computing: the worker stops at its next progress report.
    release = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(30)
        return run_backtest(*args, **kwargs)

    monkeypatch.setattr(app_modes, "run_backtest", slow)
    monkeypatch.setattr(jobs, "PROGRESS_EVERY_S", 0.1)
    run_id = await request_run(conn, alice)
    task = asyncio.create_task(run_it(conn, pool, registry, run_id))
    try:

        async def computing() -> bool:
            async with pool.connection() as c:
                cur = await c.execute("select progress from backtest_runs where id = %s", (run_id,))
                row = await cur.fetchone()
            return row is not None and row[0] >= Decimal("0.3")

        await wait_for("the run to compute", computing, limit_s=10.0)
        async with request_as(conn, alice) as cur:
            await cur.execute(
                "update backtest_runs set status = 'cancelled' where id = %s", (run_id,)
            )
        out = await asyncio.wait_for(task, 10)
    finally:
        release.set()
    run = await run_row(conn, run_id)
    assert out["status"] == run["status"] == "cancelled"
    assert run["compute_seconds"] > 0
    assert run["credits_charged"] == (Decimal("0.1") * run["compute_seconds"]).quantize(
        Decimal("1e-8")
    )
    after = await balances(pool, alice)
    assert before.balance - after.balance == run["credits_charged"] and after.held == 0
    assert await one(conn, "select count(*) from backtest_results where run_id = %s", run_id) == 0


async def test_the_plans_backtest_minutes_are_enforced_at_insert(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
) -> None:
    alice = users["alice"]
    first = await request_run(conn, alice)
    # The Free plan's 30 minutes are used up this month.
    await conn.execute(
        "update backtest_runs set status = 'completed', compute_seconds = 1800 where id = %s",
        (first,),
    )
    with pytest.raises(psycopg.errors.CheckViolation, match="backtest_minutes_per_month"):
        await request_run(conn, alice)
    assert await one(conn, "select count(*) from jobs where kind = 'backtest.run'") == 1
    # Another user's plan is untouched.
    await request_run(conn, users["bob"])


async def test_the_equity_curve_is_downsampled_keeping_the_ends_and_the_deepest_drawdown() -> None:
    points = [
        {"time": str(i), "equity": 1.0, "drawdown": 50.0 if i == 4321 else 0.0} for i in range(9000)
    ]
    kept = jobs.downsample(points)
    assert len(kept) <= 2000
    assert kept[0] is points[0] and kept[-1] is points[-1]
    assert points[4321] in kept


async def test_a_run_holds_only_what_the_user_can_pay_and_stops_at_that_budget(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bob = users["bob"]  # Free plan: 0.1 credits per compute-second
    await fund(pool, bob, "0.35")  # pays for 3 compute-seconds, far less than the job's limit

    # A short run fits its budget: it completes and pays what it used.
    quick = await request_run(conn, bob)
    assert (await run_it(conn, pool, registry, quick))["status"] == "completed"
    run = await run_row(conn, quick)
    assert run["credits_charged"] == (Decimal("0.1") * run["compute_seconds"]).quantize(
        Decimal("1e-8")
    )

    # A run that outgrows the budget stops, says why, and is charged exactly the budget.
    release = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(30)
        return run_backtest(*args, **kwargs)

    monkeypatch.setattr(app_modes, "run_backtest", slow)
    monkeypatch.setattr(jobs, "PROGRESS_EVERY_S", 0.1)
    before = await balances(pool, bob)
    budget_s = int(before.available / Decimal("0.1"))
    assert 1 <= budget_s < jobs.MAX_COMPUTE_SECONDS
    long_run = await request_run(conn, bob)
    try:
        out = await asyncio.wait_for(run_it(conn, pool, registry, long_run), 30)
    finally:
        release.set()
    run = await run_row(conn, long_run)
    assert out["status"] == run["status"] == "failed"
    assert f"credit budget of {budget_s} compute-seconds" in run["error"]
    assert run["credits_charged"] == Decimal("0.1") * budget_s
    after = await balances(pool, bob)
    assert before.balance - after.balance == run["credits_charged"] and after.held == 0

    # With less than one compute-second of credits left, a run does not start.
    broke = await request_run(conn, bob)
    assert (await run_it(conn, pool, registry, broke))["status"] == "failed"
    assert "not enough credits" in (await run_row(conn, broke))["error"]


async def test_a_run_trades_the_units_of_its_market(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    tmp_path: Path,
) -> None:
    # XRP/USDT trades whole units on binance: so does its backtest, as a paper bot would
    shutil.copy(DATA / "SOL_USDT-5m.csv", tmp_path / "XRP_USDT-5m.csv")
    reg = Registry()
    jobs.register(reg, BacktestSettings(tradefleet_candles_dir=tmp_path))
    alice = users["alice"]
    await fund(pool, alice)
    run_id = await request_run(
        conn, alice, trading_pair="XRP/USDT", start_date="2020-12-01T00:00:00Z",
        end_date="2020-12-10T00:00:00Z", settings='{"cash": 100}',
    )  # fmt: skip
    assert (await run_it(conn, pool, reg, run_id))["status"] == "completed"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select trades, metadata from backtest_results where run_id = %s", (run_id,)
        )
        res = await cur.fetchone()
    assert res is not None and res["metadata"]["settings"]["amount_step"] == 1.0
    amounts = [t["amount"] for t in res["trades"]]
    assert amounts and all(a == int(a) for a in amounts)
