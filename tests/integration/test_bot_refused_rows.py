"""One bot whose rows the database refuses stops alone: the other bots of its worker (other
users', written in the same transaction per chunk) trade exactly as they do without it,
and it goes to ``error`` saying what failed. A failure that may pass (a serialization
failure) still reloads every bot of the write and steps it again, as before."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.integration.test_bot_atomic import run
from tests.support.bots import bot_status, create_bot, grant_credits, register_worker, subscribe
from tests.support.db import User, create_user

CONFIG: dict[str, Any] = {"stop_loss": 2, "take_profit": 3}
CANDLES = 200
ORDERS = """
select side, order_type, amount, price, filled, average_price, fee, status, reason, decided_at
  from public.orders where bot_id = %s order by decided_at, created_at, side
"""
TRADES = """
select direction, entry_time, exit_time, price, exit_price, amount, fee, profit, status,
       exit_reason, decided_at
  from public.trades where bot_id = %s order by entry_time
"""
BOT = """
select current_balance, profit, total_trades, winning_trades, last_candle_at
  from public.bots where id = %s
"""
SPENT = "select debits_posted from public.credit_accounts where user_id = %s and kind = 'user'"

# A stand-in for any failure of one bot's own rows (a value a column cannot hold, a
# constraint its order violates): a trigger refusing them.
REFUSE = """
create function public.test_refuse_rows() returns trigger language plpgsql as $$
begin
  raise exception 'test trigger refuses the rows of bot %', new.bot_id;
end $$;
create trigger test_refuse_orders before insert or update on public.orders
  for each row when (new.bot_id = {bot}) execute function public.test_refuse_rows();
create trigger test_refuse_trades before insert or update on public.trades
  for each row when (new.bot_id = {bot}) execute function public.test_refuse_rows();
"""
# Failures that pass: the bot's first order row fails its transaction twice (a sequence
# counts through the rollbacks): the whole write and, were it split, the bot's own. As a
# serialization failure would, or by its connection being terminated.
FAIL_TWICE = """
create sequence public.test_faults;
create function public.test_fail_twice() returns trigger language plpgsql
security definer set search_path = '' as $$
begin
  if nextval('public.test_faults') <= 2 then
    {fault};
  end if;
  return new;
end $$;
create trigger test_fail_twice before insert on public.orders
  for each row when (new.bot_id = {bot}) execute function public.test_fail_twice();
"""
FAULTS = {
    "serialization": "raise exception 'test trigger: could not serialize access' "
    "using errcode = '40001'",
    "terminated": "perform pg_catalog.pg_terminate_backend(pg_catalog.pg_backend_pid()); "
    "perform pg_catalog.pg_sleep(5)",
}


async def rows(conn: psycopg.AsyncConnection[Any], query: str, *args: Any) -> list[tuple[Any, ...]]:
    return await (await conn.execute(query, args)).fetchall()


async def spent(conn: psycopg.AsyncConnection[Any], user: User) -> Any:
    return (await rows(conn, SPENT, user.id))[0][0]


async def traded(conn: psycopg.AsyncConnection[Any], bot: str) -> tuple[Any, ...]:
    """What a user sees of a bot's trading: its orders, trades and balance."""
    return (
        await rows(conn, ORDERS, bot),
        await rows(conn, TRADES, bot),
        await rows(conn, BOT, bot),
    )


async def fault_free(
    conn: psycopg.AsyncConnection[Any], db_url: str, owners: list[User], worker: str
) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """A fault-free run of one bot per owner over the candles (stopped afterwards), with
    what each traded and each owner's credits spent."""
    bots = [await create_bot(conn, u, name="reference", **CONFIG) for u in owners]
    await run(db_url, worker, CANDLES)
    for bot in bots:
        await conn.execute("update public.bots set status = 'stopped' where id = %s", (bot,))
    got = [await traded(conn, b) for b in bots]
    for _, trades, _ in got:
        assert sum(1 for t in trades if t[8] == "closed") >= 3, trades
    return got, [await spent(conn, u) for u in owners]


async def test_a_bot_whose_rows_are_refused_stops_alone_and_the_others_trade_as_without_it(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    owners = [users["alice"], users["bob"]]
    carol = await create_user(conn, "carol@test.local")
    for u in [*owners, carol]:
        await grant_credits(conn, u, "100")
    worker = await register_worker(conn)
    expected, spent_before = await fault_free(conn, db_url, owners, worker)

    # The same bots again, now sharing their worker (and each close's write) with carol's
    # bot, whose order and trade rows the database refuses.
    bots = [await create_bot(conn, u, name="alongside", **CONFIG) for u in owners]
    refused = await create_bot(conn, carol, name="refused", **CONFIG)
    await conn.execute(sql.SQL(REFUSE).format(bot=sql.Literal(refused)))
    await run(db_url, worker, CANDLES)

    assert [await traded(conn, b) for b in bots] == expected
    assert [await spent(conn, u) - s for u, s in zip(owners, spent_before, strict=True)] == (
        spent_before
    )
    status, message = await bot_status(conn, refused)
    assert status == "error"
    assert message is not None
    assert "refused this bot's orders and trades" in message
    assert f"test trigger refuses the rows of bot {refused}" in message
    assert "P0001" in message
    assert await rows(conn, "select id from public.orders where bot_id = %s", refused) == []
    assert await rows(conn, "select id from public.trades where bot_id = %s", refused) == []
    logged = await rows(
        conn,
        "select message from public.bot_logs where bot_id = %s and context ->> 'action' = 'bot_error'",
        refused,
    )
    assert logged == [(message,)]


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_failure_that_may_pass_still_reloads_and_steps_every_bot_again(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, fault: str
) -> None:
    owners = [users["alice"], users["bob"]]
    for u in owners:
        await grant_credits(conn, u, "100")
    worker = await register_worker(conn)
    expected, spent_before = await fault_free(conn, db_url, owners, worker)

    bots = [await create_bot(conn, u, name="faulted", **CONFIG) for u in owners]
    await conn.execute(
        sql.SQL(FAIL_TWICE).format(bot=sql.Literal(bots[1]), fault=sql.SQL(FAULTS[fault]))
    )
    await run(db_url, worker, CANDLES)

    assert (await rows(conn, "select last_value from public.test_faults"))[0][0] >= 3
    assert [await traded(conn, b) for b in bots] == expected
    assert [await spent(conn, u) - s for u, s in zip(owners, spent_before, strict=True)] == (
        spent_before
    )
    assert [await bot_status(conn, b) for b in bots] == [("running", None)] * 2


# Every bot's orders refused: the write itself is at fault (the schema, the code).
REFUSE_ALL = """
create sequence public.test_refusals;
create function public.test_refuse_all() returns trigger language plpgsql
security definer set search_path = '' as $$
begin
  perform nextval('public.test_refusals');
  raise exception 'test trigger refuses every order';
end $$;
create trigger test_refuse_all before insert on public.orders
  for each row execute function public.test_refuse_all();
"""


async def test_a_bot_refused_with_nothing_beside_it_written_is_not_stopped(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    # The worker's only bot: each refused write has nothing else in it that goes in, so the
    # write itself may be at fault (a schema or code fault refusing every order): the bot is
    # reloaded and stepped again on every close, never stopped.
    await subscribe(conn, users["alice"], credits_per_trade="0")
    worker = await register_worker(conn)
    bot = await create_bot(conn, users["alice"], name="refused", **CONFIG)
    await conn.execute(REFUSE_ALL)
    await run(db_url, worker, 60)

    assert (await rows(conn, "select last_value from public.test_refusals"))[0][0] > 3
    assert await bot_status(conn, bot) == ("running", None)
    assert await rows(conn, "select id from public.orders where bot_id = %s", bot) == []
