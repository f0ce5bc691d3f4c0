"""A bot whose records the database refuses while its worker loads it stops alone: the
other bots loaded with it (other users', their records written in the same transaction)
end as they do without it, the ones that cannot run in ``error`` with their own reason,
and it goes to ``error`` saying what the database refused."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from tests.integration.test_bot_live import live_bot
from tests.support.bots import bot_status, create_bot, grant_credits, harness, register_worker
from tests.support.db import User, create_user
from worker.bots.loading import ADOPTED

NO_KEYS = "this worker has no master keys (TRADEFLEET_MASTER_KEYS) to open exchange keys"
CONFIG: dict[str, Any] = {"stop_loss": 2, "take_profit": 3}
CANDLES = 120
TRADES = """
select direction, entry_time, exit_time, price, exit_price, amount, fee, profit, status,
       exit_reason, decided_at
  from public.trades where bot_id = %s order by entry_time
"""
LOGS = """
select log_level, message, context ->> 'action' from public.bot_logs
 where bot_id = %s order by created_at, id
"""
# A stand-in for any failure of one bot's own records: a trigger refusing its error.
REFUSE = """
create function public.test_refuse_error() returns trigger language plpgsql as $$
begin
  raise exception 'test trigger refuses the error of bot %', new.id;
end $$;
create trigger test_refuse_error before update on public.bots
  for each row when (new.id = {bot} and new.error_message like '%master keys%')
  execute function public.test_refuse_error();
"""


async def rows(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> list[tuple[Any, ...]]:
    return await (await conn.execute(query, args)).fetchall()


async def scenario(conn: psycopg.AsyncConnection[Any], db_url: str, worker: str) -> None:
    """A worker without master keys loads the running bots (the live ones cannot run) and
    lets the candles close; a failed load is tried again on the next close, as the worker's
    lease loop does. The paper bots are stopped afterwards."""
    async with harness(db_url, worker) as h:
        try:
            await h.sync()
        except psycopg.Error:
            h.runner._reload.update(h.leases.owned)
        await h.candles(CANDLES)
    await conn.execute(
        "update public.bots set status = 'stopped' where status = 'running' and is_paper_trade"
    )


async def test_a_bot_refused_on_loading_stops_alone_and_the_others_load_as_without_it(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    alice, bob = users["alice"], users["bob"]
    carol = await create_user(conn, "carol@test.local")
    await grant_credits(conn, bob, "100")
    worker = await register_worker(conn)
    # The reference: alice's live bot (it cannot run here) and bob's paper bot.
    live, paper = await live_bot(conn, alice), await create_bot(conn, bob, **CONFIG)
    await scenario(conn, db_url, worker)
    assert await bot_status(conn, live) == ("error", NO_KEYS)
    expected = (await rows(conn, LOGS, live), await rows(conn, TRADES, paper))
    assert len([t for t in expected[1] if t[8] == "closed"]) >= 2, expected

    # The same (a live bot like alice's) beside carol's live bot, whose error the database refuses.
    dave = await create_user(conn, "dave@test.local")  # one key per owner and exchange
    live, paper = await live_bot(conn, dave), await create_bot(conn, bob, **CONFIG)
    refused = await live_bot(conn, carol)
    await conn.execute(sql.SQL(REFUSE).format(bot=sql.Literal(refused)))
    await scenario(conn, db_url, worker)

    assert await bot_status(conn, live) == ("error", NO_KEYS)
    assert (await rows(conn, LOGS, live), await rows(conn, TRADES, paper)) == expected
    status, message = await bot_status(conn, refused)
    assert status == "error"
    assert message == (
        f"the database refused {ADOPTED}: test trigger refuses the error of bot {refused}"
        " (SQLSTATE P0001)"
    )
