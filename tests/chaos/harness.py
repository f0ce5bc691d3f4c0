"""The chaos harness: paper bots in a seed database, a fault-free reference run on a copy,
faulted runs of real ``tradefleet worker`` processes on other copies, all over the same
replayed candles, and what each run left behind.

Everything is driven from outside, as an operator would: worker processes and signals,
SQL on the database, ``pg_ctl`` on this checkout's own cluster (``.local/pg``, see scripts/lib.sh).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from tests.chaos.compare import Hold, Observed, Order, RunRows, Trade
from tests.support import db as support
from tests.support.bots import CANDLES, create_bot, grant_credits, subscribe
from tests.support.programs import pg_program

FIVE_MIN = timedelta(minutes=5)
REPLAY_START = datetime(2018, 1, 12, tzinfo=UTC)
TRADEFLEET = str(support.ROOT / ".venv" / "bin" / "tradefleet")
# scripts/lib.sh says where the cluster lives (``.local/pg`` unless root's postgres user
# cannot enter the checkout)
PGHOME = Path(os.environ.get("TRADEFLEET_PG_HOME", support.ROOT / ".local" / "pg"))
PGDATA = PGHOME / "data"
SERVER_LOG = PGHOME / "server.log"

MARKETS = sorted(
    p.stem.removesuffix("-5m").replace("_", "/")
    for p in CANDLES.glob("*-5m.csv")
    if not p.name.startswith("UNITTEST")
)
# Strategies that decide often on 5m candles, so a short replay has trades to compare.
STRATEGIES: list[tuple[str, dict[str, Any]]] = [
    ("sma_cross", {"fast": 3, "slow": 8}),
    ("sma_cross", {"fast": 4, "slow": 10}),
    ("ema_cross", {"fast": 3, "slow": 9}),
    ("rsi", {"period": 7, "oversold": 40, "overbought": 60}),
    ("bollinger", {"period": 10, "std": 1.5}),
]
BOTS_PER_USER = 25


@dataclass(frozen=True)
class Plan:
    """How big and how long every run of one invocation is (the reference and each
    scenario replay the same candles at the same speed)."""

    bots: int
    candles: int  # candle closes each run lasts
    fault_at: int  # the close around which faults start
    recovery: int  # closes a faulted run goes on for once its fault is over
    speed: float = 600.0  # replayed seconds per wall second: a 5m candle every 0.5 s
    lead_s: float = 6.0  # wall seconds from starting workers to the first replayed close
    lease_ttl_s: float = 3.0
    seed: int = 1

    @property
    def last_close(self) -> int:
        """The latest close a faulted run may reach: its recovery comes after the fault is
        over, and a fault (a restart of a busy cluster and the reconnects after it) can take
        several recovery periods."""
        return self.candles + 4 * self.recovery

    @property
    def close_s(self) -> float:
        return FIVE_MIN.total_seconds() / self.speed


STOP_TIMEOUT_S = 20.0
"""How long a stopped worker may drain before it is killed."""
SHORT = Plan(bots=40, candles=36, fault_at=6, recovery=12, speed=1000, lead_s=6, lease_ttl_s=2)
FULL = Plan(bots=300, candles=60, fault_at=12, recovery=20, speed=600, lead_s=8, lease_ttl_s=3)


# --- the cluster -----------------------------------------------------------------------


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.getuid() == 0 else cmd


def own_port() -> str:
    """This checkout's cluster port; refuses to touch any cluster but its own."""
    port = os.environ.get("TRADEFLEET_PG_PORT", "54322")
    conf = (PGDATA / "postgresql.conf").read_text()
    if f"port = {port}" not in conf:
        raise RuntimeError(f"{PGDATA} is not the cluster on port {port}")
    return port


def restart_postgres(mode: str) -> float:
    """``pg_ctl restart -m fast|immediate`` of this checkout's cluster; returns seconds taken."""
    own_port()
    started = time.monotonic()
    subprocess.run(
        _as_postgres(
            [
                pg_program("pg_ctl"),
                "-D",
                str(PGDATA),
                "-l",
                str(SERVER_LOG),
                "-w",
                "-t",
                "60",
                "-m",
                mode,
                "restart",
            ]
        ),
        check=True,
        capture_output=True,
    )
    return time.monotonic() - started


def log_offset() -> int:
    return SERVER_LOG.stat().st_size if SERVER_LOG.exists() else 0


def log_since(offset: int) -> str:
    with SERVER_LOG.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


create_database = support.clone_database
drop_database = support.drop_database


async def query(url: str, text: str, params: Any = None) -> list[tuple[Any, ...]]:
    """One statement on a fresh connection (the cluster may have restarted meanwhile)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        cur = await c.execute(text, params)
        return await cur.fetchall() if cur.description else []


# --- the seed database -------------------------------------------------------------------


async def build_seed(url: str, plan: Plan) -> list[str]:
    """Users on a plan that charges credits per trade, with credits, and ``plan.bots``
    paper bots on the recorded markets, created as their owners' apps would. Returns bot ids."""
    rng = random.Random(plan.seed)
    bot_ids: list[str] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        users = []
        for i in range((plan.bots + BOTS_PER_USER - 1) // BOTS_PER_USER):
            user = await support.create_user(conn, f"chaos{i}@chaos.local")
            await subscribe(conn, user, credits_per_trade="0.2")
            await grant_credits(conn, user, "100000")
            users.append(user)
        for i in range(plan.bots):
            strategy, params = rng.choice(STRATEGIES)
            stops = rng.random() < 0.5
            bot_ids.append(
                await create_bot(
                    conn,
                    users[i // BOTS_PER_USER],
                    name=f"chaos {i}",
                    trading_pair=MARKETS[i % len(MARKETS)],
                    strategy=strategy,
                    parameters=params,
                    stop_loss=rng.choice([1, 2]) if stops else None,
                    take_profit=rng.choice([1, 2, 3]) if stops else None,
                )
            )
        # Every run starts each bot on the same candle, however soon a worker adopts it.
        await conn.execute("update public.bots set last_candle_at = %s", (REPLAY_START,))
    return bot_ids


# --- worker processes ------------------------------------------------------------------


@dataclass
class Fleet:
    """``tradefleet worker`` processes on one database, all on one replay clock."""

    url: str
    logs: Path
    plan: Plan
    anchor: float
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: int = 0
    retired: set[str] = field(default_factory=set)

    def start(self, lease_ttl_s: float | None = None) -> str:
        ttl = lease_ttl_s or self.plan.lease_ttl_s
        name = f"w{self.started}"
        self.started += 1
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "WORKER_NAME": name,
            "LEASE_TTL_S": str(ttl),
            "HEARTBEAT_INTERVAL_S": str(ttl / 6),
            "SWEEP_INTERVAL_S": str(ttl / 6),
            "DRAIN_TIMEOUT_S": "3",
            "LOG_LEVEL": "INFO",
            "TRADEFLEET_REPLAY_DIR": str(CANDLES),
            "TRADEFLEET_REPLAY_START": REPLAY_START.isoformat(),
            "TRADEFLEET_REPLAY_SPEED": str(self.plan.speed),
            "TRADEFLEET_REPLAY_ANCHOR": str(self.anchor),
        }
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [TRADEFLEET, "worker"], env=env, stdout=log, stderr=log, cwd=self.logs
            )
        return name

    def alive(self) -> list[str]:
        """Workers running and not asked to stop, oldest first."""
        return [n for n, p in self.procs.items() if p.poll() is None and n not in self.retired]

    def retire(self, name: str) -> None:
        """SIGTERM: the worker drains and exits on its own (reaped by ``stop_all``)."""
        self.retired.add(name)
        self.signal(name, signal.SIGTERM)

    def by_pid(self, pid: int) -> str | None:
        return next((n for n, p in self.procs.items() if p.pid == pid), None)

    def signal(self, name: str, sig: signal.Signals) -> None:
        p = self.procs[name]
        if p.poll() is None:
            p.send_signal(sig)

    def kill(self, name: str) -> None:
        self.signal(name, signal.SIGKILL)
        self.procs[name].wait()

    async def stop(self, name: str, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (drain), then SIGKILL if it does not exit in time; returns its exit code."""
        p = self.procs[name]
        self.signal(name, signal.SIGCONT)
        self.signal(name, signal.SIGTERM)
        try:
            return await asyncio.to_thread(p.wait, timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            await asyncio.to_thread(p.wait)
            return None

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(n) for n in self.procs))

    def wall(self, close: int) -> float:
        """Wall time at which replayed candle close number ``close`` happens."""
        return self.anchor + close * self.plan.close_s

    def close_now(self) -> int:
        """The number of the latest replayed close (by the wall clock)."""
        return int((time.time() - self.anchor) // self.plan.close_s)

    async def until(self, close: int, offset_s: float = 0.0) -> None:
        """Wait for a point of the replay schedule (the schedule is the test's clock)."""
        await asyncio.sleep(max(0.0, self.wall(close) + offset_s - time.time()))


# --- what a run left behind ----------------------------------------------------------------

ORDERS = """
select id::text, bot_id::text, client_order_id, status, filled
  from public.orders where signal_id is null
"""
TRADES = """
select id::text, bot_id::text, status, entry_time, exit_time, entry_order_id::text,
       exit_order_id::text, amount, price, exit_price, exit_reason
  from public.trades where signal_id is null
"""
HOLDS = """
select t.id::text, coalesce(t.metadata ->> 'bot_id', ''), coalesce(t.reference_id, ''), t.created_at
  from public.credit_transfers t
 where t.phase = 'pending' and t.reference_type = 'order'
   and not exists (select 1 from public.credit_transfers r where r.pending_id = t.id)
"""
LEASED = """
select l.bot_id::text from public.bot_leases l join public.workers w on w.id = l.worker_id
 where l.expires_at > now() and w.status = 'running'
   and w.heartbeat_at > now() - make_interval(secs => %(ttl)s)
"""


async def collect(url: str) -> RunRows:
    orders = [Order(*r) for r in await query(url, ORDERS)]
    trades = [Trade(*r) for r in await query(url, TRADES)]
    (last,) = (await query(url, "select max(last_candle_at) from public.bots"))[0]
    return RunRows(orders, trades, last)


async def observe(url: str, lease_ttl_s: float) -> Observed:
    """The fleet live: unresolved holds, order states and which bots are leased, right now."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        async with c.transaction():
            await c.execute("set transaction isolation level repeatable read")
            (now,) = await (await c.execute("select now()")).fetchone() or (None,)
            holds = [Hold(*r) for r in await (await c.execute(HOLDS)).fetchall()]
            status: dict[str, str] = dict(
                await (
                    await c.execute("select client_order_id, status from public.orders")
                ).fetchall()
            )
            leased = {
                r[0] for r in await (await c.execute(LEASED, {"ttl": lease_ttl_s})).fetchall()
            }
    assert now is not None
    return Observed(now, holds, status, leased)


async def audit_rows(url: str) -> list[tuple[Any, ...]]:
    return await query(url, "select rule, account_id::text, detail from public.credit_audit()")


# --- catching a worker between its hold and its persist ---------------------------------

HELD_NOT_PLACED = """
select t.metadata ->> 'bot_id', t.reference_id, w.pid
  from public.credit_transfers t
  join public.bot_leases l on l.bot_id = (t.metadata ->> 'bot_id')::uuid
  join public.workers w on w.id = l.worker_id
 where t.phase = 'pending' and t.reference_type = 'order' and t.created_at > %(since)s
   and not exists (select 1 from public.orders o where o.client_order_id = t.reference_id)
 limit 1
"""
PLACED = "select 1 from public.orders where client_order_id = %s"


@dataclass(frozen=True)
class Caught:
    worker: str
    bot_id: str
    client_order_id: str
    close: int


async def freeze_mid_close(fleet: Fleet, first: int, tries: int = 8) -> Caught | None:
    """Stop (SIGSTOP) the worker that has just held credits for an entry whose order it has
    not written yet: a worker frozen in the middle of a candle close. Tries from close
    ``first`` on; returns None if no close gave the chance."""
    async with await psycopg.AsyncConnection.connect(fleet.url, autocommit=True) as conn:
        for close in range(first, first + tries):
            await fleet.until(close, -0.05)
            since = datetime.fromtimestamp(fleet.wall(close) - 0.05, UTC)
            deadline = fleet.wall(close) + fleet.plan.close_s * 0.8
            while time.time() < deadline:  # a busy poll: the gap lasts milliseconds
                row = await (await conn.execute(HELD_NOT_PLACED, {"since": since})).fetchone()
                if row is None:
                    continue
                bot_id, cid, pid = row
                name = fleet.by_pid(int(pid))
                if name is None:
                    continue
                fleet.signal(name, signal.SIGSTOP)
                if await (await conn.execute(PLACED, (cid,))).fetchone() is None:
                    return Caught(name, str(bot_id), str(cid), close)
                fleet.signal(name, signal.SIGCONT)  # too late: its close is already written
                break
    return None


Scenario = Callable[[Fleet], Awaitable[str]]
