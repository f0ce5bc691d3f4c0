"""The faults, one scenario each: what is done to a running fleet and when.

Each scenario starts its workers, injects its fault on the replay schedule and returns a
sentence saying what it did; the harness then lets the run finish and compares it with
the fault-free reference.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from tests.chaos.compare import RunRows
from tests.chaos.harness import (
    FIVE_MIN,
    REPLAY_START,
    Fleet,
    freeze_mid_close,
    query,
    restart_postgres,
)
from tests.support.waiting import wait_for


@dataclass(frozen=True)
class Context:
    fleet: Fleet
    reference: RunRows


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    act: Callable[[Context], Awaitable[str]]
    workers: int = 2
    lease_ttl_s: float | None = None  # default: the plan's


async def _baseline(ctx: Context) -> str:
    return "no fault"


async def _kill9(ctx: Context) -> str:
    f = ctx.fleet
    caught = await freeze_mid_close(f, f.plan.fault_at)
    if caught is None:
        f.kill("w0")
        return "kill -9 w0 (no close caught between hold and persist)"
    f.kill(caught.worker)
    return f"kill -9 {caught.worker} between the hold and the persist of close {caught.close}"


async def _sigstop(ctx: Context) -> str:
    f = ctx.fleet
    caught = await freeze_mid_close(f, f.plan.fault_at)
    name = "w0" if caught is None else caught.worker
    if caught is None:
        f.signal(name, signal.SIGSTOP)
    stopped = 2 * f.plan.lease_ttl_s + 1
    at = (caught.close if caught else f.plan.fault_at) + round(stopped / f.plan.close_s)
    await f.until(at)
    f.signal(name, signal.SIGCONT)
    where = "mid-close" if caught else "between closes"
    return (
        f"SIGSTOP {name} {where} for {stopped:g}s (lease TTL {f.plan.lease_ttl_s:g}s), then SIGCONT"
    )


def _pg_restart(mode: str) -> Callable[[Context], Awaitable[str]]:
    async def act(ctx: Context) -> str:
        f = ctx.fleet
        # A checkpoint first, as an operator would before a planned restart: the restart
        # itself then takes a second or two, not a flush of everything the cluster held.
        await query(f.url, "checkpoint")
        caught = await freeze_mid_close(f, f.plan.fault_at)
        took = restart_postgres(mode)
        if caught is not None:
            f.signal(caught.worker, signal.SIGCONT)
        back = await _leased_again(f)
        if caught is None:
            return f"pg_ctl restart -m {mode} ({took:.1f}s, {back}), no close caught mid-way"
        return (
            f"pg_ctl restart -m {mode} ({took:.1f}s, {back}) while {caught.worker} was "
            f"between the hold and the persist of close {caught.close}"
        )

    return act


ALL_LEASED = """
select (select count(*) from public.bots where status = 'running')
     = (select count(*) from public.bot_leases l join public.workers w on w.id = l.worker_id
         where l.expires_at > now() and w.status = 'running' and l.renewed_at >= %(since)s)
"""


async def _leased_again(f: Fleet, limit_s: float = 60.0) -> str:
    """The fault is over once live workers have renewed the lease of every bot since it
    (the workers' pools reconnect with backoff after a restart); says how long that took."""
    started, since = time.monotonic(), datetime.now(UTC)

    async def leased() -> bool:
        try:
            return bool((await query(f.url, ALL_LEASED, {"since": since}))[0][0])
        except psycopg.OperationalError:
            return False  # still starting up

    try:
        await wait_for("every bot leased again", leased, limit_s=limit_s, every_s=0.1)
    except AssertionError:
        return f"bots not all leased again {limit_s:g}s later"
    return f"every bot leased again {time.monotonic() - started:.1f}s later"


FAULT_FUNCTION = """
create function public.chaos_fail_once() returns trigger language plpgsql as $$
begin
  if nextval('public.chaos_fault') = 1 then  -- a sequence: it counts through rollbacks
    -- A failure that passes (the disk full for a moment): the write is retried whole, as
    -- after a restart; a refusal for the rows' data would be split instead (test_bot_refused_rows).
    raise exception 'chaos: injected failure of a trade write' using errcode = 'disk_full';
  end if;
  return new;
end $$
"""


async def _persist_fail(ctx: Context) -> str:
    """A one-shot trigger fails the next write of the trade of a bot that the reference
    shows trading soon after the fault point: that close's persist fails once."""
    f = ctx.fleet
    after = REPLAY_START + f.plan.fault_at * FIVE_MIN
    events: list[tuple[datetime, str]] = []
    for t in ctx.reference.trades:
        events += [(e, t.bot_id) for e in (t.entry_time, t.exit_time) if e and e > after]
    if not events:
        return "no trade after the fault point in the reference: nothing to fail"
    _, bot_id = min(events)
    async with await psycopg.AsyncConnection.connect(f.url, autocommit=True) as c:
        await f.until(f.plan.fault_at)
        await c.execute("create sequence public.chaos_fault")
        await c.execute(FAULT_FUNCTION)
        await c.execute(
            sql.SQL(
                "create trigger chaos_fail_once before insert or update on public.trades "
                "for each row when (new.bot_id = {}) execute function public.chaos_fail_once()"
            ).format(sql.Literal(bot_id))
        )

        async def fired() -> bool:
            row = await (await c.execute("select last_value from public.chaos_fault")).fetchone()
            return row is not None and int(row[0]) > 1

        try:
            await wait_for("the injected failure", fired, limit_s=f.plan.candles * f.plan.close_s)
        except AssertionError as e:  # the harness failed, not the fleet
            raise RuntimeError(f"the injected failure never fired: {e}") from e
        await c.execute("drop trigger chaos_fail_once on public.trades")
        await c.execute("drop function public.chaos_fail_once()")
        await c.execute("drop sequence public.chaos_fault")
    return f"one failed write of bot {bot_id}'s trade (a trigger raising once)"


async def _restart(ctx: Context) -> str:
    f = ctx.fleet
    await f.until(f.plan.fault_at)
    code = await f.stop("w0")
    f.start()
    return f"SIGTERM w0 (exit {code}) and start w2: a rolling restart"


LEASING = """
select count(*) from public.bot_leases l join public.workers w on w.id = l.worker_id
 where w.name = %s and w.status = 'running' and l.expires_at > now()
"""


async def _lease_churn(ctx: Context) -> str:
    """Very short leases while workers come and go every few candles: a rolling
    replacement, each new worker leasing bots before the oldest one is sent SIGTERM (on
    a loaded machine a worker can take seconds to start; retiring the old one first would
    leave the bots without any worker, which is an outage, not churn)."""
    f = ctx.fleet
    close, churned = f.plan.fault_at, 0
    while close < f.plan.candles - 5:
        await f.until(close)
        oldest = f.alive()[0]
        name = f.start(lease_ttl_s=1.0)

        async def leasing(name: str = name) -> bool:
            return bool((await query(f.url, LEASING, (name,)))[0][0])

        try:
            await wait_for(f"{name} to lease bots", leasing, limit_s=60.0)
        except AssertionError as e:  # the harness failed, not the fleet
            raise RuntimeError(str(e)) from e
        f.retire(oldest)
        churned += 1
        close = max(close + 5, f.close_now() + 1)
    return f"LEASE_TTL_S=1, {churned} workers replaced by SIGTERM once their successor leased bots"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("baseline", "two workers, no fault", _baseline),
        Scenario("restart", "rolling restart: SIGTERM a worker, start another", _restart),
        Scenario("kill9", "kill -9 of a worker mid-close", _kill9),
        Scenario("sigstop", "SIGSTOP past the lease TTL, then SIGCONT", _sigstop),
        Scenario("pg_fast", "pg_ctl restart -m fast mid-close", _pg_restart("fast")),
        Scenario("pg_immediate", "pg_ctl restart -m immediate mid-close", _pg_restart("immediate")),
        Scenario("persist_fail", "one failed persist of a bot's trade", _persist_fail),
        Scenario("lease_churn", "LEASE_TTL_S=1, workers replaced", _lease_churn, 3, 1.0),
    )
}
