"""The main demo: two ``tradefleet worker`` processes trade the seeded users' paper bots
over replayed real candles, with a live terminal view, one worker killed halfway, and a
summary at the end.

Called by the demo command as ``await run_demo(database_url)`` (or ``demo(url)`` from
synchronous code) against a freshly seeded database (``scripts/db reset``). It finishes
by itself after ``duration_s`` seconds (about 80 by default).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from worker import credits
from worker.exchanges.market_cache import unified_markets

from .markets import offline_markets

CANDLES_DIR = Path(__file__).resolve().parents[2] / "data" / "candles"
REPLAY_START = "2018-01-12T00:00:00Z"

# Extra paper bots for Carol (Enterprise) on every recorded market, a mix of strategies.
DEMO_BOTS: list[tuple[str, str, str, dict[str, Any], int | None, int | None]] = [
    ("demo ETC ema", "ETC/BTC", "ema_cross", {"fast": 9, "slow": 21}, 3, 4),
    ("demo XMR rsi", "XMR/BTC", "rsi", {"period": 14, "oversold": 35, "overbought": 65}, 4, None),
    ("demo DASH macd", "DASH/BTC", "macd", {}, 3, 5),
    ("demo ZEC bands", "ZEC/BTC", "bollinger", {"period": 20, "std": 2}, 3, 3),
    ("demo TRX sma", "TRX/BTC", "sma_cross", {"fast": 5, "slow": 20}, 2, 4),
    ("demo XLM rsi+macd", "XLM/BTC", "rsi_macd", {}, 3, 4),
    ("demo NXT sma", "NXT/BTC", "sma_cross", {"fast": 8, "slow": 24}, None, None),
    ("demo ETH ema", "ETH/BTC", "ema_cross", {"fast": 5, "slow": 13}, 2, 2),
]
# Carol's multi-pair bot: three of the 2018 pairs, two positions at most, one balance.
MULTI_BOT = ("demo multi-pair sma", ["ETH/BTC", "LTC/BTC", "XMR/BTC"], "sma_cross", 2)
CAROL = "ca201000-0000-4000-8000-000000000003"
# The second era: Carol's SOL/USDT paper bot over the December 2020 candles of that pair
# (data/candles/SOL_USDT-5m.csv), once the 2018 replay is over.
SOL_START = "2020-12-01T02:00:00Z"

BOTS_VIEW = """
select b.name, u.email, coalesce(array_to_string(b.pairs, ' '), b.trading_pair), b.strategy, b.status, coalesce(w.name, '-'),
       b.total_trades, b.winning_trades, b.profit, b.initial_balance,
       (select count(*) from public.trades t where t.bot_id = b.id and t.status = 'open'),
       b.last_candle_at, b.error_message, b.status_reason
  from public.bots b
  join auth.users u on u.id = b.user_id
  left join public.bot_leases l on l.bot_id = b.id and l.expires_at > now()
  left join public.workers w on w.id = l.worker_id
 order by b.name
"""
ORDERS_VIEW = """
select o.created_at, b.name, o.side, o.amount, coalesce(o.average_price, o.price), o.status, o.reason, o.lease_epoch
  from public.orders o join public.bots b on b.id = o.bot_id
 order by o.created_at desc, o.client_order_id limit 8
"""
TOTALS = """
select (select count(*) from public.orders), (select count(distinct client_order_id) from public.orders),
       (select count(*) from public.trades where lease_epoch is not null),
       (select count(*) from public.trades where lease_epoch is not null and status = 'closed'),
       (select count(*) from public.bot_logs where source = 'bot'),
       (select max(epoch) from public.bot_leases)
"""
PROFITS = """
select split_part(split_part(trading_pair, '/', 2), ':', 1), sum(profit) from public.trades
 where lease_epoch is not null and status = 'closed'
 group by 1
"""


@dataclass
class DemoSummary:
    bots: int = 0
    orders: int = 0
    distinct_client_ids: int = 0
    trades: int = 0
    closed_trades: int = 0
    profit: dict[str, Decimal] = field(default_factory=dict)  # realised, per quote currency
    logs: int = 0
    max_epoch: int = 0
    events: list[str] = field(default_factory=list)


async def _as_owner(
    conn: psycopg.AsyncConnection[Any], user_id: str, sql: str, params: Any = None
) -> None:
    """Run ``sql`` the way PostgREST runs an app's request for this user."""
    async with conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true), "
            "set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": user_id, "role": "authenticated", "aal": "aal1"}),),
        )
        await conn.execute(sql, params)


async def seed_markets(conn: psycopg.AsyncConnection[Any], exchange: str = "binance") -> int:
    """Fill the markets cache offline, as the fleet's refresh would from the exchange: the
    shipped definitions (the recorded markets and the pairs of the recorded candles)."""
    markets = json.dumps(unified_markets(offline_markets(exchange)))
    row = await (
        await conn.execute(
            "select public.exchange_markets_store(%s, %s::jsonb, now())", (exchange, markets)
        )
    ).fetchone()
    return int(row[0]) if row else 0


async def prepare(conn: psycopg.AsyncConnection[Any]) -> int:
    """Fill the markets cache, start the seeded bots and add Carol's demo bots, as their
    owners' apps would (each new bot is checked against the cached markets)."""
    await seed_markets(conn)
    rows = await (await conn.execute("select id, user_id from public.bots")).fetchall()
    for bot_id, user_id in rows:
        await _as_owner(
            conn, str(user_id), "update public.bots set status = 'running' where id = %s", (bot_id,)
        )
    have = {r[0] for r in await (await conn.execute("select name from public.bots")).fetchall()}
    for name, pair, strategy, params, sl, tp in DEMO_BOTS:
        if name in have:
            continue
        await _as_owner(
            conn,
            CAROL,
            """
            insert into public.bots (name, exchange, trading_pair, timeframe, strategy, parameters, status,
                                     initial_balance, stake_amount, stop_loss, take_profit, daily_loss_limit)
            values (%s, 'binance', %s, '5m', %s, %s, 'running', 1, 0.25, %s, %s, 0.05)""",
            (name, pair, strategy, json.dumps(params), sl, tp),
        )
    name, pairs, strategy, slots = MULTI_BOT
    if name not in have:
        await _as_owner(
            conn,
            CAROL,
            """
            insert into public.bots (name, exchange, trading_pair, pairs, timeframe, strategy, parameters,
                                     status, initial_balance, stake_amount, max_open_trades)
            values (%s, 'binance', %s, %s, '5m', %s, '{"fast": 10, "slow": 20}', 'running', 1, 0.25, %s)""",
            (name, pairs[0], pairs, strategy, slots),
        )
    (n,) = await (await conn.execute("select count(*) from public.bots")).fetchone() or (0,)
    return int(n)


async def new_market_bot(conn: psycopg.AsyncConnection[Any], pair: str = "SOL/USDT") -> str:
    """Save Carol's paper bot on ``pair`` as her app would, stopped until the second era
    replays that pair's candles (a pair the markets cache lacks is refused by name).
    Returns what happened, for the demo's events."""
    try:
        await _as_owner(
            conn,
            CAROL,
            """
            insert into public.bots (name, exchange, trading_pair, timeframe, strategy, parameters,
                                     status, initial_balance, stake_amount)
            values (%s, 'binance', %s, '5m', 'ema_cross', '{"fast": 9, "slow": 21}', 'stopped', 1000, 50)""",
            (f"demo {pair} ema", pair),
        )
    except psycopg.errors.CheckViolation as e:
        return f"{pair} bot refused ({e.diag.constraint_name}): {e.diag.message_primary}"
    return f"{pair} bot saved: the markets cache lists the pair"


async def second_era(conn: psycopg.AsyncConnection[Any], pair: str = "SOL/USDT") -> None:
    """The 2018 candles are replayed: pause their bots (as their owners would) and start
    Carol's bot on ``pair``, whose recorded candles are from December 2020."""
    for bot_id, user_id in await (
        await conn.execute(
            "select id, user_id from public.bots where status = 'running' and trading_pair <> %s",
            (pair,),
        )
    ).fetchall():
        await _as_owner(
            conn, str(user_id), "update public.bots set status = 'paused' where id = %s", (bot_id,)
        )
    await _as_owner(
        conn,
        CAROL,
        "update public.bots set status = 'running' where trading_pair = %s and status = 'stopped'",
        (pair,),
    )


def _spawn(
    url: str, name: str, logs: Path, anchor: float, speed: float, start: str = REPLAY_START
) -> subprocess.Popen[bytes]:
    """A ``tradefleet worker`` inheriting this process's environment, with the demo's
    settings on top (``env NAME=value ... command``)."""
    settings = {
        "DATABASE_URL": url,
        "WORKER_NAME": name,
        "LEASE_TTL_S": "3",
        "HEARTBEAT_INTERVAL_S": "0.5",
        "SWEEP_INTERVAL_S": "0.5",
        "DRAIN_TIMEOUT_S": "3",
        "LOG_LEVEL": "INFO",
        "TRADEFLEET_REPLAY_DIR": str(CANDLES_DIR),
        "TRADEFLEET_REPLAY_START": start,
        "TRADEFLEET_REPLAY_SPEED": str(speed),
        "TRADEFLEET_REPLAY_ANCHOR": str(anchor),
    }
    out = (logs / f"{name}.log").open("ab")
    assignments = [f"{key}={value}" for key, value in settings.items()]
    proc = subprocess.Popen(
        ["env", *assignments, sys.executable, "-m", "worker.cli", "worker"],
        stdout=out,
        stderr=out,
    )
    out.close()
    return proc


def _quote(pairs: str) -> str:
    return str(pairs).split(" ")[0].split("/")[1].split(":")[0]


def _money(v: Any) -> str:
    d = Decimal(v)
    return f"{d:+.8f}" if d else "0"


async def _view(
    conn: psycopg.AsyncConnection[Any], replay_now: datetime, events: list[str]
) -> Group:
    bots = await (await conn.execute(BOTS_VIEW)).fetchall()
    t = Table(title=f"Bots — replayed time {replay_now:%Y-%m-%d %H:%M} UTC", expand=True)
    for col in (
        "bot",
        "owner",
        "pair",
        "strategy",
        "status",
        "worker",
        "trades",
        "won",
        "P&L",
        "P&L %",
        "open",
    ):
        t.add_column(col)
    for (
        name,
        email,
        pair,
        strat,
        status,
        worker,
        total,
        won,
        profit,
        initial,
        open_n,
        _last,
        _err,
        _reason,
    ) in bots:
        colour = {"running": "green", "paused": "yellow", "error": "red"}.get(status, "dim")
        pct = Decimal(profit) / Decimal(initial) * 100 if initial else Decimal(0)
        t.add_row(
            name,
            email.split("@")[0],
            pair,
            strat,
            f"[{colour}]{status}[/]",
            worker,
            str(total),
            str(won),
            f"{_money(profit)} {_quote(pair)}",
            f"{pct:+.2f}",
            str(open_n),
        )
    o = Table(title="Latest orders", expand=True)
    for col in ("time", "bot", "side", "amount", "price", "status", "reason", "epoch"):
        o.add_column(col)
    for created, name, side, amount, price, status, reason, epoch in await (
        await conn.execute(ORDERS_VIEW)
    ).fetchall():
        o.add_row(
            f"{created:%H:%M:%S}",
            name,
            side,
            f"{Decimal(amount).normalize():f}",
            "-" if price is None else f"{Decimal(price).normalize():f}",
            status,
            reason or "",
            str(epoch),
        )
    c = Table(title="Credits", expand=True)
    for col in ("user", "balance", "held", "spent on trades"):
        c.add_column(col)
    for account in await credits.user_accounts(conn):
        c.add_row(
            account.email,
            f"{account.balance.normalize():f}",
            f"{account.held.normalize():f}",
            f"{account.spent.normalize():f}",
        )
    return Group(t, o, c, Panel("\n".join(events[-4:]) or "starting…", title="fleet events"))


async def _watch(
    conn: psycopg.AsyncConnection[Any],
    console: Console,
    procs: dict[str, subprocess.Popen[bytes]],
    summary: DemoSummary,
    logs: Path,
    *,
    start: str,
    anchor: float,
    speed: float,
    duration_s: float,
    kill: str | None,
) -> None:
    """Show the fleet live for ``duration_s`` seconds (killing ``kill`` halfway), then stop
    the workers."""
    started = time.monotonic()
    killed = False
    origin = datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(UTC)
    try:
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while (elapsed := time.monotonic() - started) < duration_s:
                replay_now = datetime.fromtimestamp(
                    origin.timestamp() + max(0.0, time.time() - anchor) * speed, UTC
                )
                if kill is not None and not killed and elapsed > duration_s / 2:
                    procs[kill].send_signal(signal.SIGKILL)
                    procs[kill].wait()
                    killed = True
                    summary.events.append(
                        f"kill -9 {kill}: its bots move to the other worker with a new lease epoch"
                    )
                for name, p in procs.items():
                    if p.poll() is not None and not (killed and name == kill):
                        summary.events.append(
                            f"{name} exited with {p.returncode} (see {logs / (name + '.log')})"
                        )
                live.update(await _view(conn, replay_now, summary.events))
                await asyncio.sleep(0.5)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                await asyncio.to_thread(p.wait, 15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


async def run_demo(
    database_url: str,
    *,
    duration_s: float = 80.0,
    speed: float = 1500.0,
    kill_one: bool = True,
    second_era_s: float = 40.0,
    second_era_speed: float = 3000.0,
    console: Console | None = None,
) -> DemoSummary:
    """Run the demo against a seeded database; returns (and prints) its summary.

    First the 2018 candles: two workers trade the seeded bots, Carol's demo bots and her
    multi-pair bot, and one worker is killed halfway. Then (``second_era_s`` seconds, 0 to
    skip) the December 2020 ``SOL/USDT`` candles: those bots paused, one worker trades
    Carol's ``SOL/USDT`` paper bot."""
    console = console or (Console() if sys.stdout.isatty() else Console(width=160))
    summary = DemoSummary()
    logs = Path(tempfile.mkdtemp(prefix="tradefleet-demo-"))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        summary.bots = await prepare(conn)
        summary.events.append(await new_market_bot(conn))
        summary.bots += 1
        anchor = time.time() + 1.0
        procs = {
            name: _spawn(database_url, name, logs, anchor, speed)
            for name in ("worker-1", "worker-2")
        }
        summary.events.append(
            f"started worker-1 and worker-2 ({summary.bots} bots, replay x{speed:g}); logs in {logs}"
        )
        await _watch(
            conn,
            console,
            procs,
            summary,
            logs,
            start=REPLAY_START,
            anchor=anchor,
            speed=speed,
            duration_s=duration_s,
            kill="worker-1" if kill_one else None,
        )
        if second_era_s > 0:
            await second_era(conn)
            anchor = time.time() + 1.0
            summary.events.append(
                f"2018 replay over: its bots paused; worker-3 trades SOL/USDT from {SOL_START}"
            )
            procs = {
                "worker-3": _spawn(
                    database_url, "worker-3", logs, anchor, second_era_speed, SOL_START
                )
            }
            await _watch(
                conn,
                console,
                procs,
                summary,
                logs,
                start=SOL_START,
                anchor=anchor,
                speed=second_era_speed,
                duration_s=second_era_s,
                kill=None,
            )
        row = await (await conn.execute(TOTALS)).fetchone()
        assert row is not None
        (
            summary.orders,
            summary.distinct_client_ids,
            summary.trades,
            summary.closed_trades,
            summary.logs,
            epoch,
        ) = row
        summary.max_epoch = int(epoch or 0)
        for quote, profit in await (await conn.execute(PROFITS)).fetchall():
            summary.profit[str(quote)] = Decimal(profit)
        _print_summary(console, summary, await (await conn.execute(BOTS_VIEW)).fetchall())
        await _print_analysis(console, conn)
    return summary


LAST_ANALYSIS = """
select a.analysis_type, b.name, a.summary, a.findings, a.model_used, a.prompt_tokens, a.completion_tokens,
       a.credits_charged
  from public.ai_analyses a left join public.bots b on b.id = a.bot_id
 where a.status = 'completed'
 order by a.finished_at desc nulls last, a.created_at desc
 limit 1
"""


async def _print_analysis(console: Console, conn: psycopg.AsyncConnection[Any]) -> None:
    """The latest completed AI analysis (docs/ai.md), as its owner would read it."""
    row = await (await conn.execute(LAST_ANALYSIS)).fetchone()
    if row is None:
        return
    kind, bot, text, findings, model, prompt, completion, cost = row
    console.print(f"\n[bold]AI {kind} analysis of {bot or 'the portfolio'}[/] ({model}): {text}")
    for f in findings:
        console.print(f"  \\[{f['severity']}] {f['title']}: {f['detail']}")
    console.print(
        f"  tokens {prompt} prompt + {completion} completion · {cost.normalize():f} credits"
    )


def _print_summary(console: Console, s: DemoSummary, bots: list[tuple[Any, ...]]) -> None:
    console.print()
    t = Table(title="Summary per bot")
    for col in ("bot", "pair", "strategy", "status", "trades", "won", "P&L", "note"):
        t.add_column(col)
    for (
        name,
        _email,
        pair,
        strat,
        status,
        _w,
        total,
        won,
        profit,
        _init,
        _open,
        _last,
        err,
        reason,
    ) in bots:
        t.add_row(
            name,
            pair,
            strat,
            status,
            str(total),
            str(won),
            f"{_money(profit)} {_quote(pair)}",
            err or reason or "",
        )
    console.print(t)
    dup = s.orders - s.distinct_client_ids
    pnl = ", ".join(f"{v:+.8f} {q}" for q, v in sorted(s.profit.items())) or "0"
    console.print(
        f"[bold]{s.bots} bots · {s.orders} orders ({dup} client order ids used twice) · "
        f"{s.closed_trades}/{s.trades} trades closed · realised P&L {pnl} · "
        f"{s.logs} bot log lines · highest lease epoch {s.max_epoch}[/]"
    )


def demo(database_url: str) -> int:
    """Synchronous entry point of ``tradefleet demo``."""
    summary = asyncio.run(run_demo(_required_url(database_url)))
    return 0 if summary.orders == summary.distinct_client_ids else 1


async def run(database_url: str) -> int:
    """What ``tradefleet demo`` awaits: the demo, then 0 unless a client order id repeated."""
    summary = await run_demo(_required_url(database_url))
    return 0 if summary.orders == summary.distinct_client_ids else 1


def _required_url(database_url: str) -> str:
    if not database_url:
        raise SystemExit("tradefleet demo: set DATABASE_URL or pass --database-url")
    return database_url
