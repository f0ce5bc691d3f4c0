"""Backtests requested from the app: the ``backtest.run`` job.

A user inserts a ``backtest_runs`` row through PostgREST; a trigger enqueues one
``backtest.run`` job per run (``supabase/migrations/20261206001000_backtests.sql``).
The handler:

1. starts the run (``queued`` -> ``running``; a cancelled or finished run is left alone);
2. validates the strategy parameters and settings — bad input fails the run with a
   message naming the parameter, and nothing is charged; unless the settings give an
   ``amount_step``, amounts take the market's step from the market definitions the paper
   exchange uses (:func:`market_units`), so a run trades the units a paper bot would;
3. holds credits for the run's compute budget: the longest a run may take
   (``MAX_COMPUTE_SECONDS``), or as many seconds as the user's available credits pay for
   at the plan's ``credits_per_backtest_second`` if that is less; a run that outgrows its
   budget stops, fails saying so, and is charged the budget;
4. checks an optimisation's grid against the plan (``max_optimization_sets``), then loads
   the candles of the run's market (each of a batch's markets) from ``candles``; when the
   table has none for the market and period, reads the recorded CSV (``<BASE>_<QUOTE>-<timeframe>.csv`` under
   ``TRADEFLEET_CANDLES_DIR``, :class:`BacktestSettings`) and caches it in ``candles``. Gaps
   (by the market's calendar: a session market's weekends are none) are reported in the
   result's metadata, never filled;
5. runs the work of the run's mode (:mod:`worker.backtest.app_modes`: a backtest, an
   optimisation or a batch) in a thread, reporting progress through the row (Realtime
   publishes it) and watching for a cancellation;
6. in one transaction posts the actual cost (compute-seconds x price, the rest of the
   hold released) and stores the result rows, the summary and the HTML report with the
   run ``completed``.

A run cancelled by its owner stops at the next progress report and is charged for the
compute-seconds it used until then. A failure voids the hold.

The period is ``start_date <= open_time < end_date`` (either bound may be null).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from worker import credits
from worker.backtest import app_modes
from worker.backtest.engine import Settings
from worker.backtest.results import downsample, result_row
from worker.backtest.settings import BacktestSettings
from worker.candles import (
    CandleDataError,
    CandleSeries,
    csv_name,
    find_gaps,
    iso,
    load_csv,
    period,
    store,
    timeframe_ms,
)
from worker.credits import InsufficientCredits
from worker.errors import Fatal, Retryable
from worker.exchanges import recorded_rules
from worker.fleet.registry import JobContext, Payload, Registry
from worker.strategies.registry import validate_params

KIND = "backtest.run"
MAX_COMPUTE_SECONDS = 600
"""The job's timeout: what a run may use at most."""
MIN_BUDGET_SECONDS = 1
"""A run needs credits for at least this many compute-seconds to start."""
PROGRESS_EVERY_S = 1.0
MS = Decimal("0.001")

ROOT = Path(__file__).resolve().parents[2]

LOAD_RUN = """
select r.*, s.content as strategy_content
  from public.backtest_runs r
  left join public.strategies s on s.id = r.strategy_id
 where r.id = %(run_id)s
"""
START = "select * from public.backtest_run_start(%(run_id)s)"
CHECK_GRID = "select public.backtest_run_check_grid(%(run_id)s, %(sets)s)"
PROGRESS = "select public.backtest_run_progress(%(run_id)s, %(progress)s) as status"
FINISH = """
select public.backtest_run_finish(%(run_id)s, %(status)s, %(compute_seconds)s, %(credits)s,
                                  %(result)s, %(error)s) as result_id
"""


class BudgetExhausted(Exception):
    """The run used every compute-second its credits pay for."""

    def __init__(self, seconds: int) -> None:
        super().__init__(
            f"the run used its whole credit budget of {seconds} compute-seconds; "
            "add credits or narrow the period and run it again"
        )
        self.seconds = seconds


async def _budget_seconds(ctx: JobContext[RunBacktest], user_id: uuid.UUID) -> int:
    """Compute-seconds the run may use: the job's limit, or what the user's available
    credits pay for at their plan's price when that is less (free plans get the limit)."""
    price = await credits.quote(
        ctx.pool, user_id=user_id, usage="backtest_second", quantity=Decimal(1)
    )
    if price <= 0:
        return MAX_COMPUTE_SECONDS
    account = await credits.balance(ctx.pool, user_id=user_id)
    affordable = int(account.available / price) if account is not None else 0
    if affordable < MIN_BUDGET_SECONDS:
        raise InsufficientCredits(
            f"{account.available if account else 0} credits available, "
            f"{price * MIN_BUDGET_SECONDS} needed for {MIN_BUDGET_SECONDS} compute-second(s)",
            "exceeds_credits",
        )
    return min(MAX_COMPUTE_SECONDS, affordable)


class RunCancelled(Exception):
    """The run's owner cancelled it while it was running."""


def candles_dir(settings: BacktestSettings | None = None) -> Path:
    """Where recorded candles live: ``TRADEFLEET_CANDLES_DIR`` or the repository's ``data/candles``."""
    configured = settings.tradefleet_candles_dir if settings is not None else None
    path = configured or Path("data/candles")
    return path if path.is_absolute() else (ROOT / path).resolve()


def csv_path(trading_pair: str, timeframe: str, directory: Path | None = None) -> Path:
    """``ETH/BTC`` ``5m`` -> ``<candles dir>/ETH_BTC-5m.csv``."""
    return (directory or candles_dir()) / csv_name(trading_pair, timeframe)


async def _one(
    pool: AsyncConnectionPool, query: str, params: Mapping[str, Any]
) -> dict[str, Any] | None:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def _finish(
    db: AsyncConnectionPool | psycopg.AsyncConnection[Any],
    run_id: uuid.UUID,
    status: str,
    *,
    compute_seconds: Decimal | None = None,
    credits: Decimal | None = None,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> uuid.UUID | None:
    params = {
        "run_id": run_id,
        "status": status,
        "compute_seconds": compute_seconds,
        "credits": credits,
        "result": None if result is None else Jsonb(result),
        "error": error,
    }
    if isinstance(db, AsyncConnectionPool):
        row = await _one(db, FINISH, params)
    else:
        async with db.cursor(row_factory=dict_row) as cur:
            await cur.execute(FINISH, params)
            row = await cur.fetchone()
    return None if row is None else row["result_id"]


async def _check_grid(pool: AsyncConnectionPool, run_id: uuid.UUID, sets: int) -> None:
    """The plan-limit error, as the run's error, when the grid has too many sets."""
    try:
        await _one(pool, CHECK_GRID, {"run_id": run_id, "sets": sets})
    except psycopg.errors.CheckViolation as e:
        raise Fatal(e.diag.message_primary or str(e)) from e


async def _progress(ctx: JobContext[RunBacktest], run_id: uuid.UUID, progress: float) -> None:
    """Report progress; raise :class:`RunCancelled` if the owner cancelled the run."""
    row = await _one(
        ctx.pool, PROGRESS, {"run_id": run_id, "progress": Decimal(str(round(progress, 4)))}
    )
    if row is None or row["status"] != "running":
        raise RunCancelled()


def _params(run: Mapping[str, Any]) -> dict[str, Any]:
    raw = run.get("parameters") or {}
    content = run.get("strategy_content")
    if run["strategy"] == "rules" and not raw and content:
        try:
            raw = json.loads(str(content))
        except ValueError as e:
            raise Fatal(f"the strategy's rules are not valid JSON: {e}") from e
    return dict(raw)


def _settings(raw: Mapping[str, Any] | None) -> Settings:
    try:
        return Settings.model_validate(dict(raw or {}))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "settings"
        raise Fatal(f"invalid setting '{where}': {err['msg']}") from e


def market_units(settings: Settings, exchange: str, pair: str) -> Settings:
    """``settings`` trading the market's units: its amount step from the market definitions
    the paper exchange uses, unless the run sets one (markets it does not know trade any
    fraction)."""
    if settings.amount_step is not None:
        return settings
    try:
        step = recorded_rules(exchange).market(pair).amount_precision
    except Fatal:
        return settings
    return settings if step is None else settings.model_copy(update={"amount_step": float(step)})


async def load_candles(
    pool: AsyncConnectionPool, run: Mapping[str, Any], directory: Path | None = None
) -> tuple[CandleSeries, str]:
    """The run's candles from ``candles``, else from the recorded CSV (cached in ``candles``).

    Returns the series (gaps found) and where the candles came from.
    """
    market = (str(run["exchange"]), str(run["trading_pair"]), str(run["timeframe"]))
    start, end = run.get("start_date"), run.get("end_date")
    tf = timeframe_ms(str(run["timeframe"]))
    candles = await store.read(pool, market, start, end)
    source = "candles"
    if len(candles) == 0:
        path = csv_path(str(run["trading_pair"]), str(run["timeframe"]), directory)
        if not path.exists():
            raise Fatal(
                f"no candles for {run['exchange']} {run['trading_pair']} {run['timeframe']} in the requested "
                f"period, and no recorded file {path.name}"
            )
        try:
            series = await asyncio.to_thread(load_csv, path, str(run["timeframe"]))
        except CandleDataError as e:
            raise Fatal(f"recorded candles unusable: {e}") from e
        await store.write_arrays(pool, market, series.candles)
        candles = period(series.candles, start, end)
        source = f"csv:{path.name}"
        if len(candles) == 0:
            raise Fatal(
                f"no candles for {run['trading_pair']} {run['timeframe']} in the requested period "
                f"(recorded data covers {iso(int(series.candles.time[0]))} to {iso(int(series.candles.time[-1]))})"
            )
    if len(candles) < 2:
        raise Fatal(
            f"only {len(candles)} candle in the requested period: a backtest needs at least 2"
        )
    try:
        gaps = find_gaps(candles.time, tf)
    except CandleDataError as e:
        raise Fatal(f"candles unusable: {e}") from e
    return CandleSeries(candles, tf, gaps, name=f"{run['trading_pair']} {run['timeframe']}"), source


class RunBacktest(Payload):
    """``backtest.run``, enqueued by a trigger on ``backtest_runs``."""

    run_id: uuid.UUID


async def run_job(
    ctx: JobContext[RunBacktest], config: BacktestSettings | None = None
) -> dict[str, Any]:
    """The ``backtest.run`` handler (see the module docstring)."""
    run_id = ctx.payload.run_id
    started = await _one(ctx.pool, START, {"run_id": run_id})
    if started is None:
        return {"run_id": str(run_id), "status": "skipped"}
    run = await _one(ctx.pool, LOAD_RUN, {"run_id": run_id})
    assert run is not None
    user_id: uuid.UUID = run["user_id"]
    try:
        params = validate_params(str(run["strategy"]), _params(run))
        settings = _settings(run.get("settings"))
    except Fatal as e:
        await _finish(
            ctx.pool, run_id, "failed", error=str(e), compute_seconds=Decimal(0), credits=Decimal(0)
        )
        return {"run_id": str(run_id), "status": "failed", "error": str(e)}

    hold: credits.Transfer | None = None
    try:
        budget_s = await _budget_seconds(ctx, user_id)
        hold = await credits.hold_usage(
            ctx.pool,
            id=credits.transfer_id(KIND, run_id, "hold", ctx.job.attempts),
            user_id=user_id,
            usage="backtest_second",
            quantity=Decimal(budget_s),
            expires_after=timedelta(seconds=MAX_COMPUTE_SECONDS + 300),
            reference_type="backtest_run",
            reference_id=str(run_id),
        )
    except InsufficientCredits as e:
        message = f"not enough credits to start the backtest: {e}"
        await _finish(
            ctx.pool,
            run_id,
            "failed",
            error=message,
            compute_seconds=Decimal(0),
            credits=Decimal(0),
        )
        return {"run_id": str(run_id), "status": "failed", "error": message}

    t0 = time.perf_counter()

    def used() -> Decimal:
        return max(Decimal(repr(time.perf_counter() - t0)).quantize(MS), MS)

    try:
        await _progress(ctx, run_id, 0.05)
        directory = candles_dir(config) if config is not None else None

        async def load(pair: str) -> tuple[CandleSeries, str]:
            return await load_candles(ctx.pool, {**run, "trading_pair": pair}, directory)

        def units(pair: str) -> Settings:
            return market_units(settings, str(run["exchange"]), pair)

        async def check_grid(sets: int) -> None:
            await _check_grid(ctx.pool, run_id, sets)

        work = await app_modes.prepare(
            run, params.model_dump(exclude_none=True), units, load, check_grid
        )
        await _progress(ctx, run_id, 0.3)
        task = asyncio.create_task(asyncio.to_thread(work.run))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=PROGRESS_EVERY_S)
                if done:
                    break
                elapsed = time.perf_counter() - t0
                if elapsed > budget_s:
                    raise BudgetExhausted(budget_s)
                # Work that does not count its steps creeps towards 0.9.
                share = work.fraction()
                if share is None:
                    share = 1 - math.exp(-elapsed / 30)
                await _progress(ctx, run_id, 0.3 + 0.6 * share)
                await ctx.extend_lock(60)
        except BaseException:
            task.cancel()  # the thread finishes on its own; its result is dropped
            raise
        row = task.result()
        await _progress(ctx, run_id, 0.9)
        compute_seconds = used()
        async with ctx.pool.connection() as conn, conn.transaction():
            charged = await _settle(conn, run_id, user_id, hold, compute_seconds)
            result_id = await _finish(
                conn,
                run_id,
                "completed",
                compute_seconds=compute_seconds,
                credits=charged,
                result=row,
            )
        status = "completed" if result_id is not None else "cancelled"
        ctx.log.info(
            "backtest finished",
            extra={
                "action": "backtest_finished",
                "run_id": str(run_id),
                "status": status,
                "compute_seconds": str(compute_seconds),
            },
        )
        return {
            "run_id": str(run_id),
            "status": status,
            "result_id": str(result_id) if result_id else None,
            "compute_seconds": str(compute_seconds),
            "credits_charged": str(charged),
        }
    except BudgetExhausted as e:
        compute_seconds = Decimal(e.seconds)
        async with ctx.pool.connection() as conn, conn.transaction():
            charged = await _settle(conn, run_id, user_id, hold, compute_seconds)
            await _finish(
                conn,
                run_id,
                "failed",
                error=str(e),
                compute_seconds=compute_seconds,
                credits=charged,
            )
        return {
            "run_id": str(run_id),
            "status": "failed",
            "error": str(e),
            "credits_charged": str(charged),
        }
    except RunCancelled:
        compute_seconds = used()
        async with ctx.pool.connection() as conn, conn.transaction():
            charged = await _settle(conn, run_id, user_id, hold, compute_seconds)
            await _finish(
                conn, run_id, "cancelled", compute_seconds=compute_seconds, credits=charged
            )
        return {
            "run_id": str(run_id),
            "status": "cancelled",
            "compute_seconds": str(compute_seconds),
            "credits_charged": str(charged),
        }
    except Fatal as e:
        await _release(ctx, run_id, hold)
        await _finish(
            ctx.pool, run_id, "failed", error=str(e), compute_seconds=Decimal(0), credits=Decimal(0)
        )
        return {"run_id": str(run_id), "status": "failed", "error": str(e)}
    except BaseException as e:
        await _release(ctx, run_id, hold)
        last = ctx.job.attempts >= ctx.job.max_attempts
        if isinstance(e, Exception) and (last or not isinstance(e, Retryable)):
            message = str(e) if isinstance(e, Retryable) else f"internal error: {type(e).__name__}"
            with contextlib.suppress(Exception):
                await _finish(
                    ctx.pool,
                    run_id,
                    "failed",
                    error=message,
                    compute_seconds=Decimal(0),
                    credits=Decimal(0),
                )
        raise


async def _settle(
    conn: psycopg.AsyncConnection[Any],
    run_id: uuid.UUID,
    user_id: uuid.UUID,
    hold: credits.Transfer | None,
    compute_seconds: Decimal,
) -> Decimal:
    """Post the actual cost of ``compute_seconds`` from the hold (the rest is released)."""
    if hold is None:
        return Decimal(0)
    cost = await credits.quote(
        conn, user_id=user_id, usage="backtest_second", quantity=compute_seconds
    )
    cost = min(cost, hold.amount)
    if cost <= 0:
        await credits.void(
            conn, id=credits.transfer_id(KIND, run_id, "void", hold.id), pending_id=hold.id
        )
        return Decimal(0)
    await credits.post(
        conn,
        id=credits.transfer_id(KIND, run_id, "post"),
        pending_id=hold.id,
        amount=cost,
        metadata={"compute_seconds": str(compute_seconds)},
    )
    return cost


async def _release(
    ctx: JobContext[RunBacktest], run_id: uuid.UUID, hold: credits.Transfer | None
) -> None:
    if hold is None:
        return
    try:
        await credits.void(
            ctx.pool, id=credits.transfer_id(KIND, run_id, "void", hold.id), pending_id=hold.id
        )
    except Exception as e:  # the hold expires on its own; never hide the run's own error
        ctx.log.warning(
            "could not void the backtest hold",
            extra={"action": "hold_void_failed", "error": str(e)},
        )


def register(registry: Registry, settings: BacktestSettings | None = None) -> None:
    """``backtest.run``: backtests requested from the app."""
    config = settings if settings is not None else BacktestSettings()

    async def handle(ctx: JobContext[RunBacktest]) -> dict[str, Any]:
        return await run_job(ctx, config)

    registry.job(KIND, payload=RunBacktest, max_attempts=3, timeout_s=MAX_COMPUTE_SECONDS)(handle)


__all__ = [
    "KIND",
    "candles_dir",
    "csv_path",
    "downsample",
    "load_candles",
    "register",
    "result_row",
    "run_job",
]
