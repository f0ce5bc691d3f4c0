"""Exactly-once live trading, proven with real processes and SIGKILL.

A fake Binance runs as a process of its own (``python -m tests.fakes.serve``), a live bot
trades on it from a real ``tradefleet worker`` (replayed candles, its key sealed in the
database), and the worker is killed with SIGKILL at a named kill point: the fake exchange
accepts the order (it exists, balances moved) and holds its answer back, so the worker
dies after the exchange accepted the order and before the database recorded it. A second
worker takes the bot over when the lease expires. Then:

- the killed order exists once on the exchange and once in the database;
- every order the exchange has for the bot is in the database, with its side, amount,
  fill price and state, and nothing else is;
- every entry opened one trade and every exit closed one, with the exchange's fills;
- the balances the exchange holds are what the database's trades say they are;
- the killed entry's credit hold is charged once (posted, never voided).

Kill points (``tests.fakes.serve.KILL_POINTS``): ``entry`` (scenario a), ``stop``
(scenario b: the protective stop-loss the entry puts on the exchange) and ``exit``
(scenario c: during a close). In scenario b the bot has a stop-loss, so every position
rests its stop on the exchange; after takeover each open position has exactly one live
stop there (the killed one is found, not placed again), recorded in ``protective_orders``
with the exchange's id, and every stop the exchange holds or held is recorded once.

Long form (each scenario N times, a fresh database each run)::

    TRADEFLEET_PG_PORT=... .venv/bin/python -m tests.e2e.exactly_once --runs 10
    .venv/bin/python -m tests.e2e.exactly_once --runs 3 --scenarios exit --keep

pytest runs each scenario once (tests/e2e/test_exactly_once.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from tests.fakes.serve import PROTECTIVE_TYPES
from tests.support.bots import CANDLES, create_bot, grant_credits, subscribe
from tests.support.db import ROOT, User, create_user
from tests.support.fake_exchange import FakeExchangeProcess, fake_exchange
from tests.support.waiting import wait_for
from worker.bots.model import derived_id
from worker.exchanges import ExchangeCredentials
from worker.sealing import Keyring

TRADEFLEET = str(ROOT / ".venv" / "bin" / "tradefleet")
SCENARIOS = {
    "entry": "a: entry accepted, not recorded",
    "entry_uncharged": "a, on a plan that charges no credits per trade",
    "stop": "b: protective stop accepted, not recorded",
    "exit": "c: exit accepted, not recorded",
}
KILL_POINT = {
    "entry": ("entry", 0),
    "entry_uncharged": ("entry", 1),
    "stop": ("stop", 0),
    "exit": ("exit", 0),
}
"""Each scenario's kill point, and how many orders matching it go through first (the bot's
second entry, once its progress is written, when no credit hold names the entry)."""
STOP_LOSS = "2"
"""The stop-loss (percent) of scenario b's bot: 2 % under the entry, which the fake's fixed
price never reaches, so the stop rests on the exchange for as long as the position is open."""
START_BALANCES = {"USDT": Decimal("10000"), "BTC": Decimal("1")}
PRICE = Decimal("45000")
SPEED = "900"  # replayed time: one 5m candle every third of a second


def btc_usdt_candles(tmp: Path) -> Path:
    """Recorded ETH/BTC candle shapes scaled to BTC/USDT prices."""
    src = (CANDLES / "ETH_BTC-5m.csv").read_text().splitlines()
    out = [src[0]]
    for line in src[1:]:
        d, *nums = line.split(",")
        out.append(",".join([d, *(f"{float(x) * 450000:.2f}" for x in nums[:4]), nums[4]]))
    (tmp / "BTC_USDT-5m.csv").write_text("\n".join(out) + "\n")
    return tmp


@dataclass
class Run:
    """One scenario's world: its database, fake exchange, candles, keys and workers."""

    url: str
    tmp: Path
    fake: FakeExchangeProcess
    keys: str
    anchor: float
    procs: dict[str, subprocess.Popen[bytes]]

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "WORKER_NAME": name,
            "LEASE_TTL_S": "2",
            "HEARTBEAT_INTERVAL_S": "0.3",
            "SWEEP_INTERVAL_S": "0.3",
            "DRAIN_TIMEOUT_S": "3",
            "PYTHONPATH": str(ROOT),
            "TRADEFLEET_REPLAY_DIR": str(self.tmp),
            "TRADEFLEET_REPLAY_START": "2018-01-12T00:00:00Z",
            "TRADEFLEET_REPLAY_SPEED": SPEED,
            "TRADEFLEET_REPLAY_ANCHOR": str(self.anchor),
            "TRADEFLEET_MARKETS_REFRESH": "false",
            "TRADEFLEET_MASTER_KEYS": self.keys,
            "TRADEFLEET_EXCHANGE_URLS": f"binance={self.fake.url}",
        }
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [TRADEFLEET, "worker"], env=env, stdout=log, stderr=log, cwd=self.tmp
        )
        log.close()
        self.procs[name] = proc
        return proc

    async def rows(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as c:
            return await (await c.execute(query, params)).fetchall()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()


async def live_bot(
    url: str, keyring: Keyring, credits_per_trade: str, stop_loss: str | None = None
) -> str:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        user: User = await create_user(conn, f"trader-{os.getpid()}-{time.time_ns()}@test.local")
        await subscribe(conn, user, live_trading=True, credits_per_trade=credits_per_trade)
        await grant_credits(conn, user, "100")
        ((cred,),) = await (
            await conn.execute(
                "insert into public.exchange_credentials (user_id, exchange, sealed_secret, key_id, "
                "api_key_hint) values (%s, 'binance', %s, 'k1', '****-key') returning id",
                (user.id, ExchangeCredentials("test-key", "test-secret").seal(keyring)),
            )
        ).fetchall()
        return await create_bot(
            conn,
            user,
            aal="aal2",
            trading_pair="BTC/USDT",
            initial_balance="10000",
            stake_amount="500",
            is_paper_trade=False,
            exchange_credential_id=str(cred),
            **({} if stop_loss is None else {"stop_loss": stop_loss}),
        )


async def run_scenario(url: str, tmp: Path, scenario: str) -> dict[str, Any]:
    """Run one scenario on the (fresh, migrated) database at ``url``; raises AssertionError
    when exactly-once does not hold. Returns what happened (for the long form's report)."""
    master = f"k1:{base64.b64encode(os.urandom(32)).decode()}"
    keyring = Keyring.parse(master)
    charged = scenario != "entry_uncharged"
    protected = scenario == "stop"
    bot = await live_bot(url, keyring, "0.2" if charged else "0", STOP_LOSS if protected else None)
    btc_usdt_candles(tmp)
    args = (
        "--price",
        f"BTCUSDT={PRICE}",
        *(f"--balance={a}={v}" for a, v in START_BALANCES.items()),
    )
    with fake_exchange("binance", log=tmp / "exchange.log", args=args) as fake:
        run = Run(url, tmp, fake, master, time.time(), {})
        try:
            result = await _scenario(run, bot, *KILL_POINT[scenario])
            if charged:
                await _charged_once(run, result["client_order_id"])
            return result
        finally:
            run.stop_all()
            await fake.aclose()


async def _scenario(run: Run, bot: str, kill_point: str, after: int) -> dict[str, Any]:
    await run.fake.arm(kill_point, after)
    first = run.start_worker("w1")

    async def held() -> bool:
        return bool(await run.fake.held())

    await wait_for(f"the {kill_point} order to reach the exchange", held, limit_s=90.0)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = time.monotonic()
    await run.fake.release()
    cid = (await run.fake.held())[0]["clientOrderId"]
    # The kill point held: the exchange has the order, the database does not.
    assert [o for o in (await run.fake.state())["orders"] if o["clientOrderId"] == cid]
    assert not await run.rows("select 1 from orders where client_order_id = %s", (cid,))
    assert not await run.rows("select 1 from protective_orders where client_order_id = %s", (cid,))
    open_before = await run.rows(
        "select id from trades where bot_id = %s and status = 'open'", (bot,)
    )
    if kill_point != "stop":  # an entry's fill is recorded in the step that places its stop
        assert bool(open_before) == (kill_point == "exit")
    ((closed_before,),) = await run.rows(
        "select count(*) from trades where bot_id = %s and status = 'closed'", (bot,)
    )

    run.start_worker("w2")

    async def recorded_and_closed() -> bool:
        got = await run.rows(
            "select (select count(*) from orders where client_order_id = %s), "
            "(select count(*) from trades where bot_id = %s and status = 'closed')",
            (cid, bot),
        )
        return bool(got[0][0] == 1 and got[0][1] > closed_before)

    ((candle_before,),) = await run.rows("select last_candle_at from bots where id = %s", (bot,))

    async def stop_recorded_and_stepped() -> bool:
        # The killed stop recorded with the exchange's id, and a few more candles stepped
        # by the new worker (a second stop, if it placed one, would be on the exchange).
        got = await run.rows(
            "select (select count(*) from protective_orders where client_order_id = %s "
            "and exchange_order_id is not null), (select last_candle_at >= "
            "coalesce(%s, '-infinity'::timestamptz) + interval '15 minutes' from bots "
            "where id = %s)",
            (cid, candle_before, bot),
        )
        return bool(got[0][0] == 1 and got[0][1])

    if kill_point == "stop":
        await wait_for("the takeover to record the stop", stop_recorded_and_stepped, 90.0)
    else:
        await wait_for(
            "the takeover to record the order and close a trade", recorded_and_closed, 90.0
        )
    took_over_s = time.monotonic() - killed_at
    await _pause(run, bot)
    return {
        "kill_point": kill_point,
        "client_order_id": cid,
        "takeover_s": took_over_s,
        **await _compare(run, bot, cid, protected=kill_point == "stop"),
    }


async def _pause(run: Run, bot: str) -> None:
    """Pause the bot and wait until no worker leases it: nothing trades while we compare."""
    await run.rows("update bots set status = 'paused' where id = %s returning id", (bot,))

    async def released() -> bool:
        got = await run.rows(
            "select count(*) from bot_leases where bot_id = %s and worker_id is not null "
            "and expires_at > now()",
            (bot,),
        )
        return bool(got[0][0] == 0)

    await wait_for("the paused bot's lease to be released", released, limit_s=30.0)
    for proc in run.procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


async def _compare(run: Run, bot: str, cid: str, protected: bool = False) -> dict[str, Any]:
    state = await run.fake.state()
    counts = Counter(o["clientOrderId"] for o in state["orders"])
    assert counts[cid] == 1, f"the killed order {cid} is on the exchange {counts[cid]} times"
    assert all(n == 1 for n in counts.values()), f"an order was placed twice: {counts}"
    stops = [o for o in state["orders"] if o["type"] in PROTECTIVE_TYPES]
    exchange = [o for o in state["orders"] if o["type"] not in PROTECTIVE_TYPES]
    db_orders = await run.rows(
        "select client_order_id, side, status, filled, average_price, exchange_order_id "
        "from orders where bot_id = %s and status <> 'expired'",
        (bot,),
    )
    if not protected:
        assert Counter(o[0] for o in db_orders)[cid] == 1
    by_cid = {o["clientOrderId"]: o for o in exchange}
    assert sorted(by_cid) == sorted(o[0] for o in db_orders), "orders differ"
    for client_id, side, status, filled, average, exchange_id in db_orders:
        o = by_cid[client_id]
        assert side == o["side"].lower(), client_id
        assert str(exchange_id) == str(o["orderId"]), client_id
        assert status == ("closed" if o["status"] == "FILLED" else "open"), client_id
        assert Decimal(filled) == Decimal(o["executedQty"]), client_id
        if Decimal(o["executedQty"]):
            avg = Decimal(o["cummulativeQuoteQty"]) / Decimal(o["executedQty"])
            assert Decimal(average) == avg, client_id

    trades = await run.rows(
        "select status, amount, price, exit_price, fee, entry_order_id, exit_order_id "
        "from trades where bot_id = %s",
        (bot,),
    )
    buys = [o for o in exchange if o["side"] == "BUY"]
    sells = [o for o in exchange if o["side"] == "SELL"]
    assert len(trades) == len(buys), "one trade per entry"
    assert sum(1 for t in trades if t[0] == "closed") == len(sells), "one exit per closed trade"
    entry_ids = {str(derived_id(o["clientOrderId"], "order")) for o in buys}
    exit_ids = {str(derived_id(o["clientOrderId"], "order")) for o in sells}
    assert {str(t[5]) for t in trades} == entry_ids
    assert {str(t[6]) for t in trades if t[0] == "closed"} == exit_ids
    fills_fee = sum((Decimal(f["commission"]) for f in state["trades"]), Decimal(0))
    db_fee = sum((Decimal(t[4]) for t in trades), Decimal(0))
    assert db_fee == fills_fee, f"fees differ: database {db_fee}, exchange {fills_fee}"

    # Balances: what the exchange holds is what the trades say was bought and sold.
    usdt, btc = START_BALANCES["USDT"], START_BALANCES["BTC"]
    for status, amount, price, exit_price, *_ in trades:
        usdt -= Decimal(amount) * Decimal(price)
        btc += Decimal(amount)
        if status == "closed":
            usdt += Decimal(amount) * Decimal(exit_price)
            btc -= Decimal(amount)
    balances = state["balances"]
    resting = sum((Decimal(o["origQty"]) for o in stops if o["status"] == "NEW"), Decimal(0))
    assert Decimal(balances["BTC"]["free"]) == btc - resting, (balances, btc, resting)
    assert Decimal(balances["BTC"]["locked"]) == resting, (balances, resting)
    assert Decimal(balances["USDT"]["free"]) == usdt, (balances, usdt)
    if protected:
        await _one_stop_each(run, bot, cid, stops)

    errors = await run.rows(
        "select error_message from bots where id = %s and status = 'error'", (bot,)
    )
    assert not errors, errors
    return {"orders": len(state["orders"]), "trades": len(trades), "stops": len(stops)}


async def _one_stop_each(run: Run, bot: str, cid: str, stops: list[dict[str, Any]]) -> None:
    """Every stop the exchange holds or held is recorded once, with its id and state, and
    each open position has exactly one stop resting on the exchange (the killed one is
    found by the takeover, not placed a second time)."""
    assert any(o["clientOrderId"] == cid for o in stops), "the killed order is not a stop"
    recorded = await run.rows(
        "select client_order_id, exchange_order_id, status, trade_id::text, trigger_price "
        "from protective_orders where bot_id = %s",
        (bot,),
    )
    by_cid = {o["clientOrderId"]: o for o in stops}
    assert sorted(by_cid) == sorted(r[0] for r in recorded), "protective orders differ"
    state = {"NEW": "open", "CANCELED": "canceled", "FILLED": "filled"}
    for client_id, exchange_id, status, _, trigger in recorded:
        o = by_cid[client_id]
        assert str(exchange_id) == str(o["orderId"]), client_id
        assert status == state[o["status"]], (client_id, status, o["status"])
        assert Decimal(trigger) == Decimal(o["stopPrice"]), client_id
    live = Counter(r[3] for r in recorded if r[2] == "open")
    open_trades = await run.rows(
        "select id::text from trades where bot_id = %s and status = 'open'", (bot,)
    )
    assert set(live) == {t[0] for t in open_trades}, ("live stops", dict(live), open_trades)
    assert all(n == 1 for n in live.values()), f"a position has more than one stop: {live}"


async def _charged_once(run: Run, cid: str) -> None:
    """Every entry's credit hold is charged once (posted, never voided), the killed one too."""
    holds = await run.rows(
        "select h.reference_id, array_agg(r.phase order by r.phase) filter (where r.id is not null) "
        "from credit_transfers h left join credit_transfers r on r.pending_id = h.id "
        "where h.reference_type = 'order' and h.phase = 'pending' group by 1"
    )
    state = await run.fake.state()
    entries = {o["clientOrderId"] for o in state["orders"] if o["side"] == "BUY"}
    settled = {str(h[0]): h[1] for h in holds}
    assert entries <= set(settled), "an entry without a credit hold"
    for entry in entries:
        assert settled[entry] == ["post_pending"], (entry, settled[entry], entry == cid)


async def _one_run(scenario: str, keep: bool) -> dict[str, Any]:
    from tests.support import db as support

    support.ensure_platform()
    template = support.ensure_template()
    tmp = Path(tempfile.mkdtemp(prefix=f"exactly-once-{scenario}-"))
    try:
        with support.cloned_database(template) as url:
            result = await run_scenario(url, tmp, scenario)
    except BaseException:
        print(f"  logs kept in {tmp}", flush=True)
        raise
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each scenario")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=",".join(SCENARIOS))
    parser.add_argument("--keep", action="store_true", help="keep every run's logs")
    args = parser.parse_args(argv)
    names = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}: choose from {sorted(SCENARIOS)}")
    failed: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    for name in names:
        for i in range(args.runs):
            try:
                r = asyncio.run(_one_run(name, args.keep))
            except AssertionError as e:
                failed[name] += 1
                print(f"{name} run {i + 1}: FAILED {e}", flush=True)
                continue
            passed[name] += 1
            print(
                f"{name} run {i + 1}: ok, {r['orders']} orders ({r['stops']} stops), "
                f"{r['trades']} trades, "
                f"taken over in {r['takeover_s']:.1f}s",
                flush=True,
            )
    for name in names:
        print(
            f"exactly_once {name} ({SCENARIOS[name]}): passed={passed[name]} failed={failed[name]}"
        )
    print(f"exactly_once: {sum(passed.values())} passed, {sum(failed.values())} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
