"""Live bots of one worker place their orders concurrently at a candle close, within the
bounds (per exchange account and per worker), and trade exactly as they would one after
another: the same orders, trades and protective orders, decided at the same candles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from tests.fakes.fake_binance import FakeBinance
from tests.integration.test_bot_live import KEYS, btc_usdt_candles
from tests.support.bots import create_bot, grant_credits, harness, register_worker, subscribe
from tests.support.db import User
from worker.bots.lanes import LiveLanes
from worker.bots.model import BotConfig
from worker.exchanges import ExchangeCredentials
from worker.exchanges.live import LiveExchange

T = TypeVar("T")
BOTS_PER_KEY = 3
CANDLES = 60

ORDERS = """
select b.name, o.side, o.order_type, o.amount, o.price, o.average_price, o.filled, o.fee,
       o.status, o.reason, o.decided_at
from public.orders o join public.bots b on b.id = o.bot_id
where b.name like %s order by b.name, o.decided_at, o.reason, o.side
"""
TRADES = """
select b.name, t.side, t.amount, t.price, t.exit_price, t.fee, t.profit, t.status,
       t.exit_reason, t.entry_time, t.exit_time, t.stop_loss_price, t.take_profit_price
from public.trades t join public.bots b on b.id = t.bot_id
where b.name like %s order by b.name, t.entry_time
"""
PROTECTIVE = """
select b.name, p.kind, p.side, p.amount, p.trigger_price, p.limit_price, p.status
from public.protective_orders p join public.bots b on b.id = p.bot_id
where b.name like %s order by b.name, p.created_at, p.kind
"""


class Counting(LiveExchange):
    """A client that counts the HTTP requests in flight: on its account and across the
    worker."""

    worker_now = 0
    worker_max = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.now = 0
        self.max = 0
        fetch = self.client.fetch

        async def counted(*args: Any, **kwargs: Any) -> Any:
            return await self._counted(fetch(*args, **kwargs))

        self.client.fetch = counted

    async def _counted(self, awaitable: Awaitable[T]) -> T:
        cls = Counting
        self.now += 1
        cls.worker_now += 1
        self.max = max(self.max, self.now)
        cls.worker_max = max(cls.worker_max, cls.worker_now)
        try:
            return await awaitable
        finally:
            self.now -= 1
            cls.worker_now -= 1


async def key(conn: psycopg.AsyncConnection[Any], user: User) -> str:
    await subscribe(conn, user, live_trading=True)
    await grant_credits(conn, user, "100")
    ((cred,),) = await (
        await conn.execute(
            "insert into public.exchange_credentials (user_id, exchange, sealed_secret, key_id, "
            "api_key_hint) values (%s, 'binance', %s, 'k1', '****-key') returning id",
            (user.id, ExchangeCredentials("test-key", "test-secret").seal(KEYS)),
        )
    ).fetchall()
    return str(cred)


async def fleet(
    conn: psycopg.AsyncConnection[Any], keys: dict[str, tuple[User, str]], prefix: str
) -> None:
    """Live bots on each key; the same strategy, so they decide at the same closes, with
    stops and targets that differ (protective orders placed with the entries)."""
    for owner, (user, cred) in keys.items():
        for i in range(BOTS_PER_KEY):
            await create_bot(
                conn,
                user,
                aal="aal2",
                name=f"{prefix} {owner} {i}",
                trading_pair="BTC/USDT",
                initial_balance="10000",
                stake_amount=str(100 + 50 * i),
                stop_loss=[None, "2", "3"][i],
                take_profit=[None, None, "4"][i],
                is_paper_trade=False,
                exchange_credential_id=cred,
                status="running" if prefix == "seq" else "stopped",
            )


async def run(
    conn: psycopg.AsyncConnection[Any], db_url: str, candles: Path, lanes: LiveLanes
) -> list[Counting]:
    opened: list[Counting] = []
    rich = {"USDT": [Decimal("100000000"), Decimal(0)], "BTC": [Decimal("1000"), Decimal(0)]}
    async with FakeBinance(balances=rich) as fake:

        def factory(cfg: BotConfig, creds: ExchangeCredentials, testnet: bool) -> LiveExchange:
            ex = Counting(
                "binance", creds, api_base_url=fake.url, enable_rate_limit=False, timeout_ms=5000
            )
            opened.append(ex)
            return ex

        await conn.execute("update public.workers set status = 'stopped'")  # the earlier run's
        worker = await register_worker(conn)
        async with harness(
            db_url, worker, candles=candles, keyring=KEYS, live_exchange=factory, lanes=lanes
        ) as h:
            await h.sync()
            assert len(h.runner.bots) == 2 * BOTS_PER_KEY
            Counting.worker_max = 0  # counted from the first close on (not the loading)
            for ex in opened:
                ex.max = 0
            await h.candles(CANDLES)
    return opened


async def rows(conn: psycopg.AsyncConnection[Any], query: str, prefix: str) -> list[Any]:
    got = await (await conn.execute(query, (f"{prefix} %",))).fetchall()
    return [(r[0].removeprefix(prefix), *r[1:]) for r in got]


async def test_live_bots_trade_concurrently_as_they_would_one_after_another(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str, tmp_path: Path
) -> None:
    keys = {o: (users[o], await key(conn, users[o])) for o in ("alice", "bob")}
    await fleet(conn, keys, "seq")
    await fleet(conn, keys, "con")
    candles = btc_usdt_candles(tmp_path)

    Counting.worker_max = 0
    sequential = await run(conn, db_url, candles, LiveLanes(total=1, per_account=1))
    assert Counting.worker_max == 1
    await conn.execute(
        "update public.bots set status = case when name like 'seq %%' then 'stopped' "
        "else 'running' end"
    )
    await conn.execute("update public.bot_leases set worker_id = null, expires_at = now()")

    Counting.worker_max = 0
    concurrent = await run(conn, db_url, candles, LiveLanes(total=4, per_account=2))
    # different bots' calls overlapped, within the bounds: two per key, four in all
    assert Counting.worker_max > 2
    assert Counting.worker_max <= 4
    assert len(concurrent) == 2 and max(ex.max for ex in concurrent) == 2
    assert len(sequential) == 2

    by_bot: dict[str, int] = defaultdict(int)
    for query in (ORDERS, TRADES, PROTECTIVE):
        seq, con = await rows(conn, query, "seq"), await rows(conn, query, "con")
        assert seq == con
        for r in seq:
            by_bot[r[0]] += 1
    # every bot traded, with stops and targets on the exchange where it has them
    assert len(by_bot) == 2 * BOTS_PER_KEY
    assert await rows(conn, PROTECTIVE, "seq")
