"""One bot whose rows the database refuses while its owner's request runs stops alone: the
other bots' requests (other users', written in the same transaction per pass) end exactly
as they do without it, on that pass and on every later one, and it goes to ``error``
saying what failed. A failure that may pass (a serialization failure) still throws every
bot of the pass away, reloads it and runs its requests again, as before."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from tests.integration.test_bot_refused_rows import FAIL_TWICE, FAULTS, REFUSE
from tests.integration.test_position_requests import QUIET, paper_bot, rpc
from tests.support.bots import Harness, bot_status, create_bot, harness, register_worker
from tests.support.db import User, create_user

ORDERS = """
select side, order_type, amount, price, filled, average_price, fee, status, reason, decided_at
  from public.orders where bot_id = %s order by decided_at, created_at, side
"""
TRADES = """
select direction, entry_time, exit_time, price, exit_price, amount, fee, profit, status,
       exit_reason, decided_at
  from public.trades where bot_id = %s order by entry_time, status
"""
BOT = "select status, error_message, current_balance, profit, total_trades from public.bots where id = %s"
REQUESTS = """
select kind, order_type, status, status_reason
  from public.position_requests where bot_id = %s order by created_at
"""
SPENT = "select debits_posted from public.credit_accounts where user_id = %s and kind = 'user'"


async def rows(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> list[tuple[Any, ...]]:
    return await (await conn.execute(query, args)).fetchall()


async def seen(conn: psycopg.AsyncConnection[Any], bot: str) -> tuple[Any, ...]:
    """What the owner sees of a bot: its orders, trades, row and requests."""
    return tuple([await rows(conn, q, bot) for q in (ORDERS, TRADES, BOT, REQUESTS)])


async def open_trade(conn: psycopg.AsyncConnection[Any], bot: str) -> Any:
    got = await rows(
        conn, "select id from public.trades where bot_id = %s and status = 'open'", bot
    )
    return got[0][0] if got else None


async def requests_of(
    conn: psycopg.AsyncConnection[Any], h: Harness, bots: dict[str, User]
) -> None:
    """Each owner buys by hand, closes at market, then buys again: three passes, a candle
    apart. A pass that fails is logged by the worker's loop and the next one comes."""
    for step in ("buy", "close", "buy"):
        for bot, owner in bots.items():
            if (await bot_status(conn, bot))[0] != "running":
                continue  # the owner sees it stopped: nothing more is asked of it
            try:
                if step == "buy":
                    await rpc(conn, owner, "manual_trade(%s, true, 'buy', null, 0.1)", bot)
                elif (trade := await open_trade(conn, bot)) is not None:
                    await rpc(conn, owner, "close_position(%s, true)", trade)
            except psycopg.errors.CheckViolation:
                pass  # refused while an earlier request waits: the owner sees it pending
        try:
            await h.runner.requests.run()
        except psycopg.Error:
            pass
        await h.candles(1)


async def scenario(
    conn: psycopg.AsyncConnection[Any], db_url: str, worker: str, bots: dict[str, User]
) -> None:
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(2)
        await requests_of(conn, h, bots)
    for bot in bots:
        await conn.execute(
            "update public.bots set status = 'stopped' where id = %s and status = 'running'", (bot,)
        )


async def test_a_bot_refused_in_a_requests_pass_stops_alone_and_the_others_end_as_without_it(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    owners = [users["alice"], users["bob"]]
    carol = await create_user(conn, "carol@test.local")
    worker = await register_worker(conn)
    # The reference: alice's and bob's bots alone on the worker.
    reference = {await paper_bot(conn, u, name="reference"): u for u in owners}
    spent_before = [(await rows(conn, SPENT, u.id))[0][0] for u in owners]
    await scenario(conn, db_url, worker, reference)
    expected = [await seen(conn, b) for b in reference]
    for orders, trades, _, requests in expected:
        assert len(orders) == 3 and len(trades) == 2, (orders, trades)
        assert [r[2] for r in requests] == ["done"] * 3, requests
    spent_alone = [
        (await rows(conn, SPENT, u.id))[0][0] - s for u, s in zip(owners, spent_before, strict=True)
    ]

    # The same again, beside carol's bot whose order and trade rows the database refuses.
    alongside = {await create_bot(conn, u, name="alongside", **QUIET): u for u in owners}
    refused = await paper_bot(conn, carol, name="refused")
    await conn.execute(sql.SQL(REFUSE).format(bot=sql.Literal(refused)))
    spent_before = [(await rows(conn, SPENT, u.id))[0][0] for u in owners]
    await scenario(conn, db_url, worker, {**alongside, refused: carol})

    assert [await seen(conn, b) for b in alongside] == expected
    spent = [
        (await rows(conn, SPENT, u.id))[0][0] - s for u, s in zip(owners, spent_before, strict=True)
    ]
    assert spent == spent_alone
    status, message = await bot_status(conn, refused)
    assert status == "error"
    assert message is not None
    assert "the database refused this bot's orders and trades of its owner's requests" in message
    assert f"test trigger refuses the rows of bot {refused}" in message
    assert await rows(conn, "select id from public.orders where bot_id = %s", refused) == []
    assert await rows(conn, REQUESTS, refused) == [
        ("open", "market", "cancelled", "the bot stopped running (error) before the request ran")
    ]


async def test_a_failure_that_may_pass_in_a_requests_pass_reloads_and_runs_them_again(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    owners = [users["alice"], users["bob"]]
    worker = await register_worker(conn)
    bots = {await paper_bot(conn, u, name="faulted"): u for u in owners}
    first = sorted(bots)[0]
    await conn.execute(
        sql.SQL(FAIL_TWICE).format(bot=sql.Literal(first), fault=sql.SQL(FAULTS["serialization"]))
    )
    async with harness(db_url, worker) as h:
        await h.sync()
        await h.candles(2)
        for bot, owner in bots.items():
            await rpc(conn, owner, "manual_trade(%s, true, 'buy', null, 0.1)", bot)
        for _ in range(3):  # the write fails twice, then goes in
            try:
                await h.runner.requests.run()
            except psycopg.Error:
                await h.candles(1)  # the bots thrown away are loaded again
    assert (await rows(conn, "select last_value from public.test_faults"))[0][0] >= 3
    for bot in bots:
        assert await bot_status(conn, bot) == ("running", None)
        assert [r[2] for r in await rows(conn, REQUESTS, bot)] == ["done"]
        assert len(await rows(conn, TRADES, bot)) == 1
