"""The foundation's behaviour as apps see it through PostgREST: sign-up, limits, isolation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from rich.console import Console

from tests.support.db import User, create_user, request_as
from worker import summary

BOT = {
    "name": "test bot",
    "exchange": "binance",
    "trading_pair": "ETH/BTC",
    "timeframe": "5m",
    "strategy": "sma_cross",
    "initial_balance": 1,
    "stake_amount": 0.1,
}


async def insert_bot(
    conn: psycopg.AsyncConnection[Any], who: User, **overrides: Any
) -> dict[str, Any]:
    row = {**BOT, **overrides}
    cols = ", ".join(row)
    params = ", ".join(f"%({k})s" for k in row)
    async with request_as(conn, who) as cur:
        await cur.execute(f"insert into bots ({cols}) values ({params}) returning *", row)
        result = await cur.fetchone()
        assert result is not None
        return result


async def test_sign_up_creates_profile_credit_account_and_free_plan(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    user = await create_user(conn, "new@test.local", full_name="New Person")
    async with request_as(conn, user) as cur:
        await cur.execute("select email, full_name, role from profiles")
        assert await cur.fetchall() == [
            {"email": "new@test.local", "full_name": "New Person", "role": "user"}
        ]
        await cur.execute("select kind, balance from credit_accounts")
        assert await cur.fetchall() == [{"kind": "user", "balance": 0}]
        await cur.execute(
            "select p.name, s.status from subscriptions s join plans p on p.id = s.plan_id"
        )
        assert await cur.fetchall() == [{"name": "Free", "status": "active"}]


async def test_users_see_only_their_own_bots(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    mine = await insert_bot(conn, users["alice"])
    await insert_bot(conn, users["bob"])
    async with request_as(conn, users["alice"]) as cur:
        await cur.execute("select id from bots")
        assert [r["id"] for r in await cur.fetchall()] == [mine["id"]]
        await cur.execute("update bots set name = 'stolen' where user_id = %s", (users["bob"].id,))
        assert cur.rowcount == 0
    async with request_as(conn, users["admin"]) as cur:
        await cur.execute("select count(*) as n from bots")
        assert (await cur.fetchone()) == {"n": 2}


async def test_plan_limit_names_the_limit_and_keeps_existing_bots(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    await insert_bot(conn, users["alice"], name="one")
    await insert_bot(conn, users["alice"], name="two")
    with pytest.raises(psycopg.errors.CheckViolation) as err:
        await insert_bot(conn, users["alice"], name="three")
    assert "max_bots" in str(err.value)
    assert err.value.diag.constraint_name == "bots_plan_max_bots"
    async with request_as(conn, users["alice"]) as cur:
        await cur.execute("select name from bots order by name")
        assert [r["name"] for r in await cur.fetchall()] == ["one", "two"]


@pytest.mark.parametrize(
    ("field", "value", "constraint"),
    [
        ("exchange", "nasdaqx", "bots_exchange_supported"),
        ("timeframe", "7m", "bots_timeframe_supported"),
        ("stake_amount", -1, "bots_stake_amount_positive"),
        ("trading_pair", "eth-btc", "bots_trading_pair_format"),
    ],
)
async def test_bad_bot_input_names_the_violated_rule(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    field: str,
    value: Any,
    constraint: str,
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as err:
        await insert_bot(conn, users["alice"], **{field: value})
    assert err.value.diag.constraint_name == constraint


async def test_users_cannot_write_bot_statistics(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    bot = await insert_bot(conn, users["alice"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, users["alice"]) as cur:
            await cur.execute("update bots set profit = 1000 where id = %s", (bot["id"],))


async def test_going_live_needs_aal2(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    alice = users["alice"]
    await conn.execute(
        "insert into exchange_credentials (user_id, exchange, sealed_secret, key_id) values (%s, 'binance', 'v1:k:x:y', 'k')",
        (alice.id,),
    )
    row = await conn.execute("select id from exchange_credentials where user_id = %s", (alice.id,))
    cred = (await row.fetchone())[0]  # type: ignore[index]
    bot = await insert_bot(conn, alice)
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
        async with request_as(conn, alice) as cur:
            await cur.execute(
                "update bots set is_paper_trade = false, exchange_credential_id = %s where id = %s",
                (cred, bot["id"]),
            )
    assert "aal2" in str(err.value)
    async with request_as(conn, alice.with_aal2()) as cur:
        await cur.execute(
            "update bots set is_paper_trade = false, exchange_credential_id = %s where id = %s returning is_paper_trade",
            (cred, bot["id"]),
        )
        assert await cur.fetchone() == {"is_paper_trade": False}


async def test_closed_trades_update_bot_statistics(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    bot = await insert_bot(conn, users["alice"])
    await conn.execute(
        """
        insert into trades (bot_id, user_id, exchange, trading_pair, side, amount, price, exit_price, profit,
                            status, entry_time, exit_time)
        values (%(b)s, %(u)s, 'binance', 'ETH/BTC', 'buy', 1, 0.1, 0.11, 0.01, 'closed', now() - interval '1 hour', now()),
               (%(b)s, %(u)s, 'binance', 'ETH/BTC', 'buy', 1, 0.1, 0.095, -0.005, 'closed', now() - interval '1 hour', now()),
               (%(b)s, %(u)s, 'binance', 'ETH/BTC', 'buy', 1, 0.1, null, 0, 'open', now(), null)
        """,
        {"b": bot["id"], "u": users["alice"].id},
    )
    cur = await conn.execute(
        "select total_trades, winning_trades, losing_trades, profit, current_balance from bots where id = %s",
        (bot["id"],),
    )
    assert await cur.fetchone() == (2, 1, 1, Decimal("0.005"), Decimal("1.005"))
    await conn.execute("delete from trades where bot_id = %s and profit < 0", (bot["id"],))
    cur = await conn.execute(
        "select total_trades, losing_trades, profit from bots where id = %s", (bot["id"],)
    )
    assert await cur.fetchone() == (1, 0, Decimal("0.01"))


async def test_performance_function_is_the_callers_own(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User]
) -> None:
    async with request_as(conn, users["alice"]) as cur:
        await cur.execute("select total_trades, total_bots from get_user_trading_performance(30)")
        assert await cur.fetchone() == {"total_trades": 0, "total_bots": 0}
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with request_as(conn, users["alice"]) as cur:
            await cur.execute(
                "select * from get_user_trading_performance(30, %s)", (users["bob"].id,)
            )
    async with request_as(conn, users["admin"]) as cur:
        await cur.execute(
            "select user_id from get_user_trading_performance(30, %s)", (users["bob"].id,)
        )
        assert await cur.fetchone() == {"user_id": users["bob"].id}


async def test_performance_is_reported_per_quote_currency(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    """Profits in BTC and in USDT are never added together: one row per quote currency, in
    the function and in the platform summary."""
    alice = users["alice"]
    btc = await insert_bot(conn, alice)
    usdt = await insert_bot(conn, alice, name="usdt", trading_pair="BTC/USDT")
    await conn.execute(
        """
        insert into trades (bot_id, user_id, exchange, trading_pair, side, amount, price, exit_price, profit,
                            status, entry_time, exit_time)
        values (%(b)s, %(u)s, 'binance', 'ETH/BTC', 'buy', 1, 0.1, 0.11, 0.01, 'closed', now() - interval '1 hour', now()),
               (%(s)s, %(u)s, 'binance', 'BTC/USDT', 'buy', 0.01, 40000, 41000, 10, 'closed', now() - interval '1 hour', now()),
               (%(s)s, %(u)s, 'binance', 'BTC/USDT', 'buy', 0.01, 40000, 39000, -10.5, 'closed', now() - interval '1 hour', now())
        """,
        {"b": btc["id"], "s": usdt["id"], "u": alice.id},
    )
    async with request_as(conn, alice) as cur:
        await cur.execute(
            "select quote_currency, total_trades, total_profit, best_trade, total_bots "
            "from get_user_trading_performance(30)"
        )
        assert await cur.fetchall() == [
            {
                "quote_currency": "BTC",
                "total_trades": 1,
                "total_profit": Decimal("0.01"),
                "best_trade": Decimal("0.01"),
                "total_bots": 1,
            },
            {
                "quote_currency": "USDT",
                "total_trades": 2,
                "total_profit": Decimal("-0.5"),
                "best_trade": Decimal(10),
                "total_bots": 1,
            },
        ]
    console = Console(record=True, width=200)
    summary.render(await summary.fetch(db_url), console)
    cells = [
        [c.strip() for c in ln.split("\u2502")[1:-1]]
        for ln in console.export_text().splitlines()
        if alice.email in ln
    ]
    perf = [c for c in cells if c[1] in ("BTC", "USDT")]  # alice's rows of the performance table
    assert [(p[1], p[2], p[6]) for p in perf] == [
        ("BTC", "1", "0.01000000"),
        ("USDT", "2", "-0.50000000"),
    ]
