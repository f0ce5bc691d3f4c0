"""A manual trade whose worker died between holding the trade's price and placing its order:
the hold stays with the request, which the bot's next worker executes, so the trade is
charged once and never opens for free."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.integration.test_position_requests import one, paper_bot, rpc
from tests.support.bots import harness, register_worker
from tests.support.db import User
from worker.bots.credit_gate import HoldRequest
from worker.bots.stepping import PROGRESS_EVERY
from worker.exchanges import make_client_order_id

PHASES = """
select v.phase from public.credit_transfers v
  join public.credit_transfers h on h.id = v.pending_id
 where h.reference_id = %s order by v.phase
"""


async def test_a_manual_trade_interrupted_after_its_hold_opens_charged_once(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice = users["alice"]
    bot = await paper_bot(conn, alice)
    worker = await register_worker(conn)
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(3)
        buy = await rpc(conn, alice, "manual_trade(%s, true, 'buy', null, 0.1, 'k1')", bot)
        rid = str(buy["id"])
        # The worker executing the request holds the trade's price as it does, then dies
        # before the order is placed; its bot steps on for a few closes meanwhile.
        cid = make_client_order_id(bot, "request", rid, "open")
        await h.runner.credits.load_terms([str(alice.id)])
        held = await h.runner.credits.hold(
            [HoldRequest(str(alice.id), bot, cid, h.leases.owned[bot], h.now, request_id=rid)]
        )
        assert held.results[0]
        held_at = h.now
        await h.candles(PROGRESS_EVERY + 1)  # the bot's progress is written past the hold
        now = h.now
    # The request is still to be executed when the next worker adopts the bot.
    (progress,) = await one(conn, "select last_candle_at from public.bots where id = %s", bot)
    assert progress is not None and progress >= held_at
    assert (await one(conn, "select status from public.position_requests where id = %s", rid)) == (
        "pending",
    )
    await conn.execute("update public.bot_leases set worker_id = null, expires_at = now()")
    second = await register_worker(conn, "second")
    async with harness(db_url, second, now) as h2:
        await h2.sync()
        await h2.candles(1)
        await h2.runner.requests.run()

    status, trade_id = await one(
        conn, "select status, trade_id from public.position_requests where id = %s", rid
    )
    assert status == "done" and trade_id is not None
    assert (await one(conn, "select status from public.trades where id = %s", trade_id)) == (
        "open",
    )
    phases = [p for (p,) in await (await conn.execute(PHASES, (cid,))).fetchall()]
    assert phases == ["post_pending"]  # charged once, never voided
