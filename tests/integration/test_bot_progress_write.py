"""A bot's progress write (``last_candle_at``: at every close, for every bot that wrote
anything and a twelfth of the others) updates the row where it is: ``bots`` keeps room on
its pages, so the new version stays on the old one's page and no index gets an entry for
it (a HOT update), instead of moving to another page with an entry in every index."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.support.db import User

PLAN = """
insert into public.plans (name, price_monthly, max_bots, max_strategies, features)
values ('Many', 0, 1000, 10, '{}');
update public.subscriptions set plan_id = (select id from public.plans where name = 'Many'),
       status = 'active', expires_at = now() + interval '30 days'
 where user_id = %(user)s
"""
BOTS = """
insert into public.bots (user_id, name, exchange, trading_pair, timeframe, strategy, parameters,
                         status, initial_balance, stake_amount, is_paper_trade)
select %(user)s, 'bot ' || i, 'binance', 'ETH/BTC', '5m', 'sma_cross', '{"fast": 3, "slow": 8}',
       'stopped', 1, 0.1, true
  from generate_series(1, 60) i
"""
PAGES = "select id, (ctid::text::point)[0]::int from public.bots where user_id = %(user)s"
PROGRESS = """
update public.bots b set last_candle_at = greatest(b.last_candle_at, %(at)s::timestamptz)
 where b.id = any (%(ids)s::uuid[])
"""


async def pages(conn: psycopg.AsyncConnection[Any], user: User) -> dict[Any, int]:
    rows = await (await conn.execute(PAGES, {"user": user.id})).fetchall()
    return {r[0]: r[1] for r in rows}


async def test_a_closes_progress_writes_leave_the_bots_on_their_pages(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    alice = users["alice"]
    for statement in PLAN.split(";"):
        await conn.execute(statement, {"user": alice.id} if "%(user)s" in statement else None)
    await conn.execute(BOTS, {"user": alice.id})
    before = await pages(conn, alice)
    assert len(set(before.values())) > 2  # the bots fill several pages
    # One close's progress: every fifth bot of the table, as the fleet's steps spread them.
    ids = sorted(before)[::5]
    await conn.execute(PROGRESS, {"at": "2026-01-01T00:00:00Z", "ids": ids})
    after = await pages(conn, alice)
    assert {i: after[i] for i in ids} == {i: before[i] for i in ids}
