"""Parity for multi-pair bots: a running paper bot on three pairs with two slots and the
multi-pair backtest make the same trades on the same candles.

The bot is run by the real ``BotRunner`` over a stepped replay clock and taken over by a
second worker halfway (its legs, positions and one paper account rebuilt from the
database). Its trades (pair, entry and exit times, fill prices to each market's tick) and
the entries it skipped for want of a free slot must equal the backtest's, and it never
holds more positions than ``max_open_trades``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.support.bots import (
    CANDLES,
    bot_status,
    create_bot,
    grant_credits,
    harness,
    register_worker,
)
from tests.support.db import User
from worker.backtest import load_csv
from worker.backtest.multipair import run_multi_pair
from worker.bots.markets import paper_rules

PAIRS = ["ETH/BTC", "LTC/BTC", "XMR/BTC"]
PARAMS = {"fast": 10, "slow": 20}
FEE = Decimal("0.002")
FIVE_MIN = timedelta(minutes=5)
START = datetime(2018, 1, 14, 0, 0, tzinfo=UTC)
STEPS = 700


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def same_price(pair: str, a: Any, b: Any) -> bool:
    tick = paper_rules("binance").market(pair).price_precision
    assert tick is not None
    return abs(Decimal(str(a)) - Decimal(str(b))) <= tick / 2


@pytest.mark.parametrize(
    ("sizing", "stop", "shorts"),
    [
        ("stake", None, False),
        ("unlimited", None, False),
        ("stake", "1", False),
        ("stake", "1", True),
        ("unlimited", None, True),
    ],
)
async def test_a_paper_multi_pair_bot_makes_the_multi_pair_backtests_trades(
    conn: psycopg.AsyncConnection[Any],
    users: dict[str, User],
    db_url: str,
    sizing: str,
    stop: str | None,
    shorts: bool,
) -> None:
    """With a stop-loss, a stop hit inside a candle frees its slot for the entries decided
    on that candle's close, whatever the pair's place in the list. With shorts, each pair
    holds a long or a short (reversals included) under the same cap and stake split."""
    alice = users["alice"]
    await grant_credits(conn, alice, "1000")
    bot = await create_bot(
        conn,
        alice,
        trading_pair=PAIRS[0],
        pairs=PAIRS,
        parameters=PARAMS,
        initial_balance="1",
        stake_amount="0.1",
        max_open_trades=2,
        stop_loss=stop,
        allow_short=shorts,
        metadata={"paper_fee": str(FEE), "sizing": sizing},
    )
    now, previous = START, None
    for n in (STEPS // 2, STEPS - STEPS // 2):  # a takeover halfway
        if previous is not None:
            await conn.execute("select public.release_bot_leases(%s)", (previous,))
        worker = await register_worker(conn, f"multi-{uuid.uuid4().hex[:6]}")
        async with harness(db_url, worker, now) as h:
            await h.sync()
            assert bot in h.runner.bots
            assert [leg.config.symbol for leg in h.runner.bots[bot].legs] == PAIRS
            await h.candles(n)
            now = h.now
        previous = worker
    status, error = await bot_status(conn, bot)
    assert status == "running", error

    rows = await (
        await conn.execute(
            "select trading_pair, entry_time, price, exit_time, exit_price, direction, amount "
            "from trades "
            "where bot_id = %s order by entry_time, trading_pair",
            (bot,),
        )
    ).fetchall()
    skipped = await (
        await conn.execute(
            "select context ->> 'pair', context ->> 'candle' from bot_logs "
            "where bot_id = %s and context ->> 'action' = 'entry_skipped' "
            "and context ->> 'reason' = 'max_open_trades' order by 2, 1",
            (bot,),
        )
    ).fetchall()

    # The backtest from the bot's first decision to the last candle it saw closed.
    last_open = START + FIVE_MIN * (STEPS - 1)
    series = {}
    for p in PAIRS:
        s = load_csv(CANDLES / f"{p.replace('/', '_')}-5m.csv")
        end = int((s.candles.time <= int(last_open.timestamp() * 1000)).sum())
        series[p] = type(s)(s.candles.slice(0, end), s.timeframe_ms, s.gaps, s.name)
    result = run_multi_pair(
        series,
        PAIRS,
        "sma_cross",
        PARAMS,
        {
            "cash": "1",
            "fee": str(FEE),
            "max_open_trades": 2,
            "stake_amount": None if sizing == "unlimited" else "0.1",
            "stop_loss": None if stop is None else str(Decimal(stop) / 100),
            "shorts": shorts,
            "amount_step": {p: paper_rules("binance").market(p).amount_precision for p in PAIRS},
        },
        start=START,
    )
    expected = sorted(result.trades, key=lambda t: (t["entry_time"], t["pair"]))
    assert len(expected) >= 20
    if stop is not None:
        assert any(t["exit_reason"] == "stop_loss" for t in expected)
    assert {t["pair"] for t in expected} == set(PAIRS)
    assert len(rows) == len(expected), (len(rows), len(expected))
    if shorts:
        assert {t["side"] for t in expected} == {"long", "short"}
    for (pair, et, price, xt, xp, side, amount), want in zip(rows, expected, strict=True):
        where = f"{pair} {iso(et)} vs {want}"
        assert pair == want["pair"], where
        assert side == want["side"], where
        assert Decimal(amount) == want["amount"], where  # the market's amount step
        assert iso(et) == want["entry_time"], where
        assert same_price(pair, price, want["entry_price"]), where
        if want["exit_reason"] == "end":
            assert xt is None, where  # still open for the bot
        else:
            assert xt is not None and iso(xt) == want["exit_time"], where
            assert same_price(pair, xp, want["exit_price"]), where

    # The same entries were skipped for want of a slot, and two positions at most.
    want_skipped = [
        (s["pair"], s["time"]) for s in result.skipped if s["reason"] == "max_open_trades"
    ]
    got_skipped = [(p, iso(datetime.fromisoformat(c))) for p, c in skipped]
    assert want_skipped, "three pairs with two slots skip entries"
    assert sorted(got_skipped, key=lambda x: (x[1], x[0])) == sorted(
        want_skipped, key=lambda x: (x[1], x[0])
    )
    events = sorted(
        [(iso(et), 1) for _, et, *_ in rows]
        + [(iso(xt), -1) for _, _, _, xt, *_ in rows if xt is not None]
    )
    open_now = peak = 0
    for _, d in events:
        open_now += d
        peak = max(peak, open_now)
    assert peak == 2
