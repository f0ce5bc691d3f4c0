"""Real ``tradefleet worker`` processes trading paper bots over replayed candles: one is
killed with SIGKILL mid-trading, the other takes every bot over and goes on."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.bots import CANDLES, create_bot, grant_credits, subscribe
from tests.support.db import ROOT, User
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

TRADEFLEET = str(ROOT / ".venv" / "bin" / "tradefleet")
MARKETS = ["ETH/BTC", "LTC/BTC", "ADA/BTC", "XMR/BTC", "ETC/BTC", "DASH/BTC"]


async def rows(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        return await (await c.execute(query, params)).fetchall()


def start_worker(url: str, name: str, tmp: Path, anchor: float) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WORKER_NAME": name,
        "LEASE_TTL_S": "2",
        "HEARTBEAT_INTERVAL_S": "0.3",
        "SWEEP_INTERVAL_S": "0.3",
        "DRAIN_TIMEOUT_S": "3",
        "TRADEFLEET_REPLAY_DIR": str(CANDLES),
        "TRADEFLEET_REPLAY_START": "2018-01-12T00:00:00Z",
        "TRADEFLEET_REPLAY_SPEED": "600",
        "TRADEFLEET_REPLAY_ANCHOR": str(anchor),
    }
    log = (tmp / f"{name}.log").open("ab")
    proc = subprocess.Popen([TRADEFLEET, "worker"], env=env, stdout=log, stderr=log, cwd=tmp)
    log.close()
    return proc


async def test_kill_9_a_worker_while_its_bots_trade(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    alice = users["alice"]
    await subscribe(conn, alice)
    await grant_credits(conn, alice, "1000")
    bots = [
        await create_bot(
            conn,
            alice,
            name=f"bot {i}",
            trading_pair=m,
            stop_loss=2,
            take_profit=2,
            parameters={"fast": 3, "slow": 8} if i % 2 else {"fast": 4, "slow": 10},
        )
        for i, m in enumerate(MARKETS)
    ]
    anchor = time.time()
    a = start_worker(db_url, "a", tmp_path, anchor)
    b = start_worker(db_url, "b", tmp_path, anchor)
    procs = [a, b]
    try:

        async def both_trade() -> bool:
            got = await rows(
                db_url,
                "select count(distinct w.name) from orders o join bot_leases l on l.bot_id = o.bot_id "
                "join workers w on w.id = l.worker_id",
            )
            return bool(got[0][0] == 2)

        await wait_for("both workers to trade", both_trade, limit_s=30.0)
        victim_bots = [
            str(r[0])
            for r in await rows(
                db_url,
                "select l.bot_id from bot_leases l join workers w on w.id = l.worker_id where w.name = 'a'",
            )
        ]
        assert victim_bots
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
        killed = await rows(db_url, "select max(last_candle_at) from bots")

        async def all_on_b() -> bool:
            got = await rows(
                db_url,
                "select count(*) from bot_leases l join workers w on w.id = l.worker_id "
                "where w.name = 'b' and l.expires_at > now()",
            )
            return bool(got[0][0] == len(bots))

        await wait_for("every bot to move to worker b", all_on_b, limit_s=30.0)

        async def resumed() -> bool:
            got = await rows(
                db_url,
                "select count(*) from bots where last_candle_at > %s + interval '30 minutes'",
                (killed[0][0],),
            )
            return bool(got[0][0] == len(bots))

        await wait_for("every bot to trade on after the takeover", resumed, limit_s=30.0)
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=30) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    # no client order id was ever used twice, and no bot went to error
    orders = await rows(
        db_url,
        "select bot_id::text, client_order_id, side, status, filled, lease_epoch from orders",
    )
    assert len({o[1] for o in orders}) == len(orders)
    assert await rows(db_url, "select name, error_message from bots where status = 'error'") == []
    epochs = {str(r[0]): r[1] for r in await rows(db_url, "select bot_id, epoch from bot_leases")}
    assert any(e > 1 for b, e in epochs.items() if b in victim_bots)

    # positions match the paper exchange: what the filled orders bought minus what they sold
    # is exactly what the bot's open trades hold
    held: dict[str, Decimal] = defaultdict(Decimal)
    for bot_id, _cid, side, status, filled, _epoch in orders:
        if status == "closed":
            held[bot_id] += filled if side == "buy" else -filled
    open_trades: dict[str, Decimal] = defaultdict(Decimal)
    for bot_id, amount in await rows(
        db_url, "select bot_id::text, amount from trades where status = 'open'"
    ):
        open_trades[bot_id] += amount
    for bot_id in bots:
        assert held[bot_id] == open_trades[bot_id], bot_id
    # trades carry the epoch of the worker that wrote them; some were written after the takeover
    assert await rows(
        db_url,
        "select 1 from trades t join bot_leases l on l.bot_id = t.bot_id "
        "where t.lease_epoch = l.epoch and l.epoch > 1 limit 1",
    )
