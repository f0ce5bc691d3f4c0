"""A bot's steps are atomic with its state: when a step's writes fail, the bot is reloaded
from the database and the step retried, so what it trades equals a fault-free run; a bot
that resumes after a gap replays every missed candle, entries included."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fakes.fake_binance import FakeBinance
from tests.integration.test_bot_live import KEYS, btc_usdt_candles, live_bot
from tests.support.bots import FIVE_MIN, START, create_bot, grant_credits, harness, register_worker
from tests.support.db import User
from worker.bots import runner as runner_module
from worker.bots.credit_gate import HoldRequest
from worker.bots.model import BotConfig
from worker.bots.store import persist_steps
from worker.exchanges import ExchangeCredentials
from worker.exchanges.live import LiveExchange
from worker.fleet.leases import LeaseManager

TRADES = """
select direction, entry_time, exit_time, price, exit_price, exit_reason, status, amount, decided_at
  from public.trades where bot_id = %s order by entry_time
"""


async def trades_of(conn: psycopg.AsyncConnection[Any], bot: str) -> list[tuple[Any, ...]]:
    return await (await conn.execute(TRADES, (bot,))).fetchall()


async def run(db_url: str, worker: str, candles: int, start_at: int = 0) -> None:
    """Let ``candles`` candles close from candle ``start_at`` on, as the runner's candle loop
    does: a failed close is logged and the next one comes."""
    async with harness(db_url, worker, START + start_at * FIVE_MIN) as h:
        await h.sync()
        for _ in range(candles):
            h.now += FIVE_MIN
            await h.clock.advance_to(h.now)
            try:
                await h.runner.process_close(h.now)
            except (psycopg.Error, OSError):
                pass


async def reference(
    conn: psycopg.AsyncConnection[Any], user: User, db_url: str, worker: str, candles: int
) -> list[tuple[Any, ...]]:
    """A fault-free run of a bot over ``candles`` candles; the bot is stopped afterwards."""
    bot = await create_bot(conn, user, stop_loss=2, take_profit=3, name="reference")
    await run(db_url, worker, candles)
    await conn.execute("update public.bots set status = 'stopped' where id = %s", (bot,))
    got = await trades_of(conn, bot)
    assert sum(1 for t in got if t[6] == "closed") >= 3, got
    return got


async def test_a_failed_persist_of_a_closing_candle_leaves_the_trades_of_a_fault_free_run(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "100")
    worker = await register_worker(conn)
    expected = await reference(conn, alice, db_url, worker, 200)

    bot = await create_bot(conn, alice, stop_loss=2, take_profit=3, name="faulted")
    failed: list[str] = []

    async def failing(pool: Any, steps: Any) -> set[str]:
        closes = any(
            t["status"] == "closed" for b, out, _ in steps if b.id == bot for t in out.trades
        )
        if closes and not failed:
            failed.append(bot)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return await persist_steps(pool, steps)

    monkeypatch.setattr(runner_module, "persist_steps", failing)
    await run(db_url, worker, 200)

    assert failed, "the fault was never injected"
    assert await trades_of(conn, bot) == expected
    open_trades = await (
        await conn.execute(
            "select count(*) from public.trades where bot_id = %s and status = 'open'", (bot,)
        )
    ).fetchone()
    assert open_trades is not None and open_trades[0] <= 1


async def test_a_paper_bot_resuming_after_a_gap_replays_its_missed_entries(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "100")
    worker = await register_worker(conn)
    expected = await reference(conn, alice, db_url, worker, 200)

    bot = await create_bot(conn, alice, stop_loss=2, take_profit=3, name="resumed")
    await run(db_url, worker, 100)
    # Nobody ran the bot for 40 candles; then a worker resumes it.
    await run(db_url, worker, 60, start_at=140)

    got = await trades_of(conn, bot)
    gap = (START + 100 * FIVE_MIN, START + 140 * FIVE_MIN)
    assert any(gap[0] <= t[1] <= gap[1] + FIVE_MIN for t in got), "no entry in the gap"
    assert got == expected
    for t in got:
        assert t[8] is not None and t[8] < t[1] and t[1] - t[8] <= timedelta(minutes=5)


async def test_a_live_bot_resuming_after_a_gap_logs_each_missed_entry(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    bot = await live_bot(conn, users["alice"])
    worker = await register_worker(conn)
    candles = btc_usdt_candles(tmp_path)
    async with FakeBinance() as fake:

        def factory(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> LiveExchange:
            return LiveExchange(
                "binance", creds, api_base_url=fake.url, enable_rate_limit=False, timeout_ms=1500
            )

        options: dict[str, Any] = {"candles": candles, "keyring": KEYS, "live_exchange": factory}
        async with harness(db_url, worker, **options) as h:
            await h.sync()
            await h.candles(40)
        # Nobody ran the bot for 150 candles; then a worker resumes it.
        resumed = START + 190 * FIVE_MIN
        async with harness(db_url, worker, resumed, **options) as h:
            await h.sync()
            await h.candles(1)
        posted = {p.params["newClientOrderId"] for p in fake.order_posts()}

    missed = await (
        await conn.execute(
            "select context ->> 'candle', context ->> 'reason', context ->> 'client_order_id' "
            "from public.bot_logs where bot_id = %s and context ->> 'action' = 'missed_entry'",
            (bot,),
        )
    ).fetchall()
    assert missed, "no missed entry was logged"
    for candle, reason, cid in missed:
        assert START + 40 * FIVE_MIN <= datetime.fromisoformat(candle) < resumed
        assert reason and cid not in posted
    # no missed entry was placed in the past, on the exchange or in the database
    orders = await (
        await conn.execute("select client_order_id from public.orders where bot_id = %s", (bot,))
    ).fetchall()
    assert not {cid for _, _, cid in missed} & {o for (o,) in orders}


async def test_holds_are_fenced_by_the_lease_epoch_and_orphans_voided_on_adoption(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "100")
    bot = await create_bot(conn, alice, stop_loss=2, take_profit=3)
    worker = await register_worker(conn)
    await run(db_url, worker, 30)
    ((epoch, last),) = await (
        await conn.execute(
            "select l.epoch, b.last_candle_at from bot_leases l join bots b on b.id = l.bot_id"
            " where b.id = %s",
            (bot,),
        )
    ).fetchall()
    async with harness(db_url, worker) as h:
        await h.runner.credits.load_terms([str(alice.id)])
        # A worker holding for an epoch that is no longer the bot's holds nothing.
        stale = await h.runner.credits.hold(
            [HoldRequest(str(alice.id), bot, "tf-stale-entry", epoch - 1, last)]
        )
        assert stale.results == [False] and stale.stale == {bot}
        # A worker that held, then died before its order was written.
        held = await h.runner.credits.hold(
            [HoldRequest(str(alice.id), bot, "tf-orphan-entry", epoch, last - FIVE_MIN)]
        )
        assert held.results[0] and not held.stale
    holds = "select reference_id, phase from public.credit_transfers where reference_id like 'tf-%%-entry'"
    assert await (await conn.execute(holds)).fetchall() == [("tf-orphan-entry", "pending")]

    # Another worker takes the bot over: the hold is voided when it adopts the bot.
    await conn.execute("update public.bot_leases set worker_id = null, expires_at = now()")
    second = await register_worker(conn, "second")
    async with harness(db_url, second, last) as h:
        await h.sync()
        assert h.leases.owned[bot] == epoch + 1
    voided = await (
        await conn.execute(
            "select count(*) from public.credit_transfers v join public.credit_transfers h"
            " on h.id = v.pending_id where h.reference_id = 'tf-orphan-entry' and v.phase = 'void_pending'"
        )
    ).fetchone()
    assert voided == (1,)


async def test_a_worker_stopping_mid_step_finishes_it_before_giving_its_bots_up(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = users["alice"]
    await grant_credits(conn, alice, "100")
    bot = await create_bot(conn, alice, stop_loss=2, take_profit=3)
    worker = await register_worker(conn)
    peer_id = await register_worker(conn, "peer")
    entering = asyncio.Event()

    async def slow(pool: Any, steps: Any) -> set[str]:
        if any(o for b, out, _ in steps if b.id == bot for o in out.orders):
            entering.set()  # credits are held for this entry; its order is not written yet
            await asyncio.sleep(1.0)  # a peer has time to take the bot over meanwhile
        return await persist_steps(pool, steps)

    async def take_over(pool: Any) -> None:
        """A peer takes the bot as soon as the stopping worker gives it up."""
        peer = LeaseManager(pool, peer_id, ttl_s=30)
        while bot not in peer.owned:
            await peer.sync()
            await asyncio.sleep(0.05)

    monkeypatch.setattr(runner_module, "persist_steps", slow)
    async with harness(db_url, worker) as h:
        await h.sync()
        stopping: asyncio.Task[Any] | None = None
        waiting = asyncio.create_task(entering.wait())
        for _ in range(200):
            h.now += FIVE_MIN
            await h.clock.advance_to(h.now)
            step = asyncio.create_task(h.runner.process_close(h.now))
            await asyncio.wait([step, waiting], return_when=asyncio.FIRST_COMPLETED)
            if entering.is_set():
                stopping = asyncio.gather(h.leases.close(), take_over(h.runner.pool))
                await asyncio.gather(step, stopping)
                break
            await step
        waiting.cancel()
        assert stopping is not None, "the bot never entered"
        # A close after the stop began steps nothing.
        await h.runner.process_close(h.now + FIVE_MIN)

    # The entry the worker was writing committed with its hold; nothing is left pending for
    # the peer to clean up, and the peer holds the bot.
    pending = await (
        await conn.execute(
            "select count(*) from public.credit_transfers h where h.phase = 'pending'"
            " and h.metadata ->> 'bot_id' = %s"
            " and not exists (select 1 from public.credit_transfers r where r.pending_id = h.id)"
            " and not exists (select 1 from public.orders o where o.client_order_id = h.reference_id)",
            (bot,),
        )
    ).fetchone()
    assert pending == (0,)
    orders = await (
        await conn.execute("select count(*) from public.orders where bot_id = %s", (bot,))
    ).fetchone()
    assert orders == (1,)
    holder = await (
        await conn.execute(
            "select worker_id::text from public.bot_leases where bot_id = %s", (bot,)
        )
    ).fetchone()
    assert holder == (peer_id,)
