"""One chaos invocation: build the seed database, run the fault-free reference on a copy,
then each scenario on its own copy, and compare."""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.chaos.compare import (
    Counts,
    Decisions,
    Observed,
    Report,
    RunRows,
    candle_grid,
    compare,
    count_deadlocks,
    window_of,
)
from tests.chaos.harness import (
    FIVE_MIN,
    REPLAY_START,
    STOP_TIMEOUT_S,
    Fleet,
    Plan,
    audit_rows,
    build_seed,
    collect,
    create_database,
    drop_database,
    log_offset,
    log_since,
    observe,
    query,
)
from tests.chaos.scenarios import SCENARIOS, Context, Scenario
from tests.support import db as support
from tests.support.waiting import wait_for

LIVE_LEASES = (
    "select count(*), count(distinct worker_id) from public.bot_leases"
    " where expires_at > now() and worker_id is not null"
)


@dataclass
class Finished:
    """A run after its workers stopped: what it did, saw and left."""

    what: str
    seconds: float
    rows: RunRows
    observed: Observed
    deadlocks: int
    audit: list[tuple[Any, ...]]


@dataclass
class Outcome:
    name: str
    what: str
    seconds: float
    compared_trades: int
    report: Report = field(default_factory=Report)

    @property
    def counts(self) -> Counts:
        return self.report.counts

    def line(self) -> str:
        return (
            f"chaos: scenario={self.name} seconds={self.seconds:.1f} trades={self.compared_trades} "
            f"{self.counts.line()} | {self.what}"
        )


@dataclass
class Prepared:
    plan: Plan
    prefix: str
    seed_db: str
    logs: Path
    decisions: Decisions
    reference: Finished
    databases: list[str] = field(default_factory=list)


class NotReady(Exception):
    """The workers had not spread every bot between them by the first replayed close."""


async def run_fleet(
    plan: Plan,
    url: str,
    logs: Path,
    workers: int,
    lease_ttl_s: float,
    act: Callable[[Fleet], Awaitable[str]],
    reference: bool = False,
) -> Finished:
    """Workers on ``url`` over the plan's replay while ``act`` does its worst; the fleet is
    observed live at the last close, then stopped. A faulted run goes on for
    ``plan.recovery`` closes after its fault is over (the reference lasts as long as the
    longest faulted run may)."""
    started, offset = time.monotonic(), log_offset()
    fleet = Fleet(url, logs, plan, anchor=time.time() + plan.lead_s)
    try:
        for _ in range(workers):
            fleet.start(lease_ttl_s)
        n_bots = (await query(url, "select count(*) from public.bots"))[0][0]

        async def spread() -> bool:
            leased, holders = (await query(url, LIVE_LEASES))[0]
            return bool(leased == n_bots and holders == workers)

        try:
            await wait_for("every bot leased", spread, plan.lead_s - 3 * plan.close_s)
        except AssertionError as e:
            raise NotReady(str(e)) from e
        what = await act(fleet)
        longest = plan.candles + plan.recovery
        # A faulted run gets its recovery closes after the fault is over, even when the
        # fault itself took long (a restart of a busy cluster can take ten seconds, and the
        # workers' reconnects as long again): it is compared with the reference up to the
        # candle both reached.
        end = (
            longest
            if reference
            else min(plan.last_close, max(plan.candles, fleet.close_now() + plan.recovery))
        )
        await fleet.until(end)
        observed = await observe(url, lease_ttl_s)
    finally:
        await fleet.stop_all()
    return Finished(
        what,
        time.monotonic() - started,
        await collect(url),
        observed,
        count_deadlocks(log_since(offset)),
        await audit_rows(url),
    )


async def fresh_run(
    plan: Plan,
    db: str,
    source: str,
    logs: Path,
    workers: int,
    lease_ttl_s: float,
    act: Callable[[Fleet], Awaitable[str]],
    reference: bool = False,
) -> Finished:
    """``run_fleet`` on a fresh copy ``db`` of ``source``: every bot must start on the same
    candle as in every other run, so a run whose workers were not ready in time is run
    again on a new copy with a longer lead."""
    for attempt in range(3):
        url = create_database(db, source)
        lead = replace(plan, lead_s=plan.lead_s * (1 + attempt))
        try:
            done = await run_fleet(
                lead, url, logs / f"attempt{attempt}", workers, lease_ttl_s, act, reference
            )
        except NotReady:
            continue
        if attempt:
            done.what += f" (run {attempt + 1} times: workers were late for the first close)"
        return done
    raise RuntimeError(f"{db}: workers never leased every bot before the first close")


def judge(
    name: str, prepared: Prepared, got: Finished, lease_ttl_s: float, ref: Finished | None = None
) -> Outcome:
    """Compare a run with the reference (or the reference with itself: its own consistency)."""
    ref = ref or prepared.reference
    window = window_of(ref.rows, got.rows, FIVE_MIN)
    if window is None:
        raise RuntimeError(f"{name}: no bot processed any candle")
    report = compare(
        ref.rows,
        got.rows,
        window,
        prepared.decisions,
        got.observed,
        timedelta(seconds=lease_ttl_s),
    )
    report.counts.deadlocks = got.deadlocks
    report.counts.audit = len(got.audit)
    for rule, account, detail in got.audit[:3]:
        report.note(f"credit_audit: {rule} {account or ''} {detail}")
    compared = sum(1 for t in ref.rows.trades if t.entry_time <= window)
    theirs, mine = ref.rows.last_candle_at, got.rows.last_candle_at
    # A run may end up to ``recovery`` closes before the reference; more means it stalled.
    late = prepared.plan.recovery + 2
    if theirs is not None and mine is not None and (theirs - mine) // FIVE_MIN > late:
        report.notes.insert(
            0,
            f"compared up to {window:%m-%d %H:%M}: the run's progress stopped "
            f"{(theirs - mine) // FIVE_MIN} candles short of the reference's",
        )
    return Outcome(name, got.what, got.seconds, compared, report)


async def prepare(plan: Plan, logs: Path, prefix: str) -> Prepared:
    """The seed database with its bots, and the reference run on a copy of it."""
    support.ensure_platform()
    template = support.ensure_template()
    seed_db = f"{prefix}_seed"
    bot_ids = await build_seed(create_database(seed_db, template), plan)
    # Workers go on closing candles while they drain at the end of a run (up to the stop's
    # timeout), so the grid reaches that far past the last planned close: every order a
    # run writes is then known by its candle and leg.
    drain = math.ceil(STOP_TIMEOUT_S / plan.close_s)
    grid = candle_grid(
        REPLAY_START,
        REPLAY_START + (plan.last_close + 4 + drain) * FIVE_MIN,
        FIVE_MIN,
    )
    ref_db = f"{prefix}_reference"

    async def no_fault(fleet: Fleet) -> str:
        return "one worker, no fault"

    reference = await fresh_run(
        plan, ref_db, seed_db, logs / "reference", 1, plan.lease_ttl_s, no_fault, reference=True
    )
    return Prepared(
        plan, prefix, seed_db, logs, Decisions(bot_ids, grid), reference, [seed_db, ref_db]
    )


async def run_scenario(prepared: Prepared, scenario: Scenario) -> Outcome:
    """The scenario on its own copy of the seed, compared with the reference."""
    db = f"{prepared.prefix}_{scenario.name}"
    prepared.databases.append(db)
    ttl = scenario.lease_ttl_s or prepared.plan.lease_ttl_s

    async def act(fleet: Fleet) -> str:
        return await scenario.act(Context(fleet, prepared.reference.rows))

    got = await fresh_run(
        prepared.plan,
        db,
        prepared.seed_db,
        prepared.logs / scenario.name,
        scenario.workers,
        ttl,
        act,
    )
    return judge(scenario.name, prepared, got, ttl)


def cleanup(prepared: Prepared) -> None:
    for db in prepared.databases:
        drop_database(db)
    shutil.rmtree(prepared.logs, ignore_errors=True)


async def chaos(
    plan: Plan, names: list[str], keep: bool = False, echo: Callable[[str], None] = print
) -> tuple[Outcome, list[Outcome]]:
    """Run the named scenarios; returns the reference's self-check and each outcome."""
    logs = Path(tempfile.mkdtemp(prefix="tradefleet-chaos-"))
    prefix = f"chaos_{int(time.time())}"
    prepared = await prepare(plan, logs, prefix)
    try:
        ref = judge("reference", prepared, prepared.reference, plan.lease_ttl_s, prepared.reference)
        echo(ref.line())
        for n in ref.report.notes:
            echo(f"  - {n}")
        outcomes = []
        for name in names:
            outcome = await run_scenario(prepared, SCENARIOS[name])
            outcomes.append(outcome)
            echo(outcome.line())
            for n in outcome.report.notes:
                echo(f"  - {n}")
    finally:
        if keep:
            echo(f"kept databases {', '.join(prepared.databases)} and worker logs in {logs}")
        else:
            cleanup(prepared)
    return ref, outcomes


def summary(outcomes: list[Outcome]) -> tuple[str, Counts]:
    total = Counts()
    for o in outcomes:
        total.add(o.counts)
    return f"chaos: scenarios={len(outcomes)} {total.line()}", total
