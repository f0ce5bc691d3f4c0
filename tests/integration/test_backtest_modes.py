"""Optimisations and batches requested from the app, and the report of every finished run:
ranked sets with in- and out-of-sample figures, per-market results with a summary, the
plan's grid limit as a named error, charged per compute-second, reports readable by
their owner only."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests.integration.test_backtest_jobs import (
    balances,
    fund,
    one,
    registry,
    run_it,
    run_row,
)
from tests.support.db import User, request_as
from worker.ai import figures, offline
from worker.backtest import jobs, load_csv, optimize, run_backtest
from worker.backtest.engine import Settings
from worker.fleet.registry import Registry

__all__ = ["registry"]  # the fixture, shared with the backtest job tests

PERIOD = ("2018-01-12T00:00:00Z", "2018-01-20T00:00:00Z")
LO, HI = 1515715200000, 1516406400000  # the period, in ms
SETTINGS = {"fee": 0.002, "shorts": True}


async def request(conn: psycopg.AsyncConnection[Any], user: User, **fields: Any) -> uuid.UUID:
    """``POST /rest/v1/backtest_runs`` with the given columns."""
    row: dict[str, Any] = {
        "strategy": "sma_cross",
        "parameters": {"fast": 10, "slow": 20},
        "exchange": "binance",
        "timeframe": "5m",
        "start_date": PERIOD[0],
        "end_date": PERIOD[1],
        "settings": SETTINGS,
        **fields,
    }
    cols = ", ".join(row)
    values = ", ".join(f"%({k})s" for k in row)
    params = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
    async with request_as(conn, user) as cur:
        await cur.execute(
            f"insert into backtest_runs ({cols}) values ({values}) returning id", params
        )
        got = await cur.fetchone()
    assert got is not None
    return uuid.UUID(str(got["id"]))


def local_series(pair: str) -> Any:
    series = load_csv(jobs.csv_path(pair, "5m"))
    t = series.candles.time
    lo, hi = int((t < LO).sum()), int((t < HI).sum())
    return type(series)(series.candles.slice(lo, hi), series.timeframe_ms, (), series.name)


async def results_of(
    conn: psycopg.AsyncConnection[Any], user: User, run_id: uuid.UUID
) -> list[dict[str, Any]]:
    async with request_as(conn, user) as cur:
        await cur.execute(
            "select * from backtest_results where run_id = %s order by trading_pair", (run_id,)
        )
        return await cur.fetchall()


async def report_of(conn: psycopg.AsyncConnection[Any], user: User, run_id: uuid.UUID) -> Any:
    async with request_as(conn, user) as cur:
        await cur.execute("select html from backtest_reports where run_id = %s", (run_id,))
        row = await cur.fetchone()
    return None if row is None else row["html"]


async def test_an_optimisation_ranks_the_grid_with_in_and_out_of_sample_figures(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice, bob = users["alice"], users["bob"]
    await fund(pool, alice)
    before = await balances(pool, alice)
    ranges = {"fast": [5, 8, 10, 12], "slow": [20, 30, 40]}
    run_id = await request(
        conn,
        alice,
        trading_pair="ETH/BTC",
        mode="optimize",
        optimization={"ranges": ranges, "metric": "total_return_percentage", "oos_fraction": 0.3},
    )
    out = await run_it(conn, pool, registry, run_id)
    assert out["status"] == "completed", out

    run = await run_row(conn, run_id)
    assert run["status"] == "completed" and run["progress"] == 1
    assert run["credits_charged"] == (Decimal("0.1") * run["compute_seconds"]).quantize(
        Decimal("1e-8")
    )
    after = await balances(pool, alice)
    assert before.balance - after.balance == run["credits_charged"] and after.held == 0

    # The same optimisation run locally ranks the same sets with the same figures.
    series = local_series("ETH/BTC")
    settings = jobs.market_units(Settings(**SETTINGS), "binance", "ETH/BTC")
    local = optimize(
        [series], "sma_cross", ranges, {"fast": 10, "slow": 20}, settings,
        "total_return_percentage", 0.3,
    )  # fmt: skip
    (res,) = await results_of(conn, alice, run_id)
    opt = res["metadata"]["optimization"]
    assert opt["evaluated"] == 12 and len(opt["ranked"]) == 12
    assert [r["params"] for r in opt["ranked"]] == [r.params for r in local.ranked]
    returns = [r["stats"]["total_return_percentage"] for r in opt["ranked"]]
    assert returns == sorted(returns, reverse=True)
    best = local.ranked[0]
    assert best.oos_stats is not None
    assert opt["in_sample"] == best.stats["total_return_percentage"]
    assert opt["out_of_sample"] == best.oos_stats["total_return_percentage"]
    assert opt["overfit"] == local.overfit
    assert all(r["oos_stats"] is not None for r in opt["ranked"])
    # The result row is the best set over the whole period.
    whole = run_backtest(series, "sma_cross", best.params, settings)
    assert res["trades"] == whole.trades and res["metadata"]["params"] == best.params
    assert run["summary"]["best_params"] == best.params
    assert run["summary"]["in_sample"] == opt["in_sample"]

    # The AI's backtest explanation reads the in- and out-of-sample figures.
    f = await figures.load(
        pool, {"analysis_type": "backtest", "user_id": alice.id, "backtest_run_id": run_id}
    )
    assert f["in_sample_return_pct"] == float(Decimal(str(opt["in_sample"])))
    assert f["out_of_sample_return_pct"] == float(Decimal(str(opt["out_of_sample"])))
    analysis = offline.backtest(f)
    assert any(x.figure == "out_of_sample_return_pct" for x in analysis.findings)

    html = await report_of(conn, alice, run_id)
    assert html.startswith("<!doctype html>") and "Optimisation" in html
    assert "In sample and out of sample" in html
    assert await report_of(conn, bob, run_id) is None


async def test_a_grid_over_the_plans_limit_fails_naming_the_plan_that_lifts_it(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice = users["alice"]
    await fund(pool, alice)
    before = await balances(pool, alice)
    await conn.execute(
        "insert into plans (name, price_monthly, max_bots, max_strategies, features, sort_order) "
        """values ('Pro', 29, 10, 25, '{"max_optimization_sets": 5000}', 1)"""
    )
    ranges = {"fast": {"start": 2, "stop": 31}, "slow": {"start": 32, "stop": 61}}  # 900 sets
    run_id = await request(
        conn, alice, trading_pair="ETH/BTC", mode="optimize", optimization={"ranges": ranges}
    )
    out = await run_it(conn, pool, registry, run_id)
    assert out["status"] == "failed"
    run = await run_row(conn, run_id)
    assert run["status"] == "failed"
    assert run["error"] == (
        "plan limit reached: the Free plan allows 500 parameter sets per optimisation "
        "(max_optimization_sets); the Pro plan allows 5000"
    )
    assert run["credits_charged"] == 0
    after = await balances(pool, alice)
    assert after.balance == before.balance and after.held == 0
    assert await one(conn, "select count(*) from backtest_results where run_id = %s", run_id) == 0

    # A bad optimisation setting is named too.
    bad = await request(
        conn, alice, trading_pair="ETH/BTC", mode="optimize", optimization={"folds": 0}
    )
    await run_it(conn, pool, registry, bad)
    assert (await run_row(conn, bad))["error"].startswith("invalid optimization setting 'folds'")


async def test_a_batch_stores_one_result_per_market_and_a_summary(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice, bob = users["alice"], users["bob"]
    await fund(pool, alice)
    pairs = ["LTC/BTC", "ETH/BTC", "XLM/BTC"]
    run_id = await request(conn, alice, mode="batch", trading_pairs=pairs)
    run = await run_row(conn, run_id)
    assert run["trading_pair"] == "LTC/BTC"
    out = await run_it(conn, pool, registry, run_id)
    assert out["status"] == "completed", out

    run = await run_row(conn, run_id)
    assert run["status"] == "completed" and run["credits_charged"] > 0
    rows = await results_of(conn, alice, run_id)
    assert [r["trading_pair"] for r in rows] == sorted(pairs)
    summary = run["summary"]
    assert [m["trading_pair"] for m in summary["markets"]] == pairs
    for r in rows:
        pair = r["trading_pair"]
        settings = jobs.market_units(Settings(**SETTINGS), "binance", pair)
        local = run_backtest(local_series(pair), "sma_cross", {"fast": 10, "slow": 20}, settings)
        assert r["trades"] == local.trades
        (m,) = [m for m in summary["markets"] if m["trading_pair"] == pair]
        assert m["total_return_percentage"] == local.stats["total_return_percentage"]
    returns = [m["total_return_percentage"] for m in summary["markets"]]
    assert summary["mean_return_percentage"] == sum(returns) / 3
    assert summary["profitable_markets"] == sum(1 for x in returns if x > 0)

    html = await report_of(conn, alice, run_id)
    assert "Batch backtest" in html and all(
        p.replace("/", " / ") in html or p in html for p in pairs
    )
    assert await report_of(conn, bob, run_id) is None
    async with request_as(conn, bob) as cur:
        await cur.execute("select count(*) as n from backtest_results where run_id = %s", (run_id,))
        assert (await cur.fetchone() or {})["n"] == 0


async def test_a_batch_names_a_bad_market_list_at_insert(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    alice = users["alice"]
    for pairs, message in (
        (["ETH/BTC", "ETH/BTC"], "names a market twice"),
        (["ETH/BTC", "eth-btc"], "invalid trading pair eth-btc"),
    ):
        try:
            await request(conn, alice, mode="batch", trading_pairs=pairs)
        except psycopg.errors.CheckViolation as e:
            assert message in str(e)
        else:
            raise AssertionError(f"{pairs} was accepted")
    try:
        await request(conn, alice, mode="batch", trading_pair="ETH/BTC")
    except psycopg.errors.CheckViolation as e:
        assert "backtest_runs_batch_pairs" in str(e.diag.constraint_name)
    else:
        raise AssertionError("a batch without markets was accepted")


async def test_a_backtests_report_and_json_keep_equity_drawdown_trades_and_metrics(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    pool: AsyncConnectionPool,
    registry: Registry,
) -> None:
    alice, bob = users["alice"], users["bob"]
    await fund(pool, alice)
    run_id = await request(conn, alice, trading_pair="ETH/BTC")
    assert (await run_it(conn, pool, registry, run_id))["status"] == "completed"
    (res,) = await results_of(conn, alice, run_id)
    assert res["stats"]["sharpe_ratio"] is not None and res["trades"]
    assert all({"time", "equity", "drawdown"} <= p.keys() for p in res["equity_curve"])
    assert max(p["drawdown"] for p in res["equity_curve"]) == pytest.approx(
        res["stats"]["max_drawdown"]
    )

    html = await report_of(conn, alice, run_id)
    assert html.startswith("<!doctype html>") and "Backtest · sma_cross" in html
    assert f"Trades ({len(res['trades'])})" in html
    assert await report_of(conn, bob, run_id) is None
    # Apps read the report, never write it.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, alice) as cur:
            await cur.execute("update backtest_reports set html = 'x' where run_id = %s", (run_id,))
