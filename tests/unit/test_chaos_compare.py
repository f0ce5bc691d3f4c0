"""The chaos comparison sees every failure class it reports, on hand-built rows, and
nothing where there is nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.chaos.compare import (
    Decisions,
    Hold,
    Observed,
    Order,
    RunRows,
    Trade,
    candle_grid,
    compare,
    count_deadlocks,
    orphan_holds,
    window_of,
)
from worker.bots.model import derived_id
from worker.exchanges import make_client_order_id

T0 = datetime(2018, 1, 12, tzinfo=UTC)
STEP = timedelta(minutes=5)
BOT, OTHER = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
GRID = candle_grid(T0, T0 + 40 * STEP, STEP)
DECISIONS = Decisions([BOT, OTHER], GRID)
WINDOW = T0 + 30 * STEP


def order(bot: str, k: int, purpose: str, status: str = "closed") -> Order:
    cid = make_client_order_id(bot, (T0 + k * STEP).isoformat(), purpose)
    filled = Decimal("0") if status == "open" else Decimal("1.5")
    return Order(str(derived_id(cid, "order")), bot, cid, status, filled)


def trade(
    bot: str, entry_k: int, exit_k: int | None, exit_purpose: str = "exit"
) -> tuple[Trade, list[Order]]:
    """A trade decided on candle ``entry_k`` (filled on the next) and, if ``exit_k``, exited
    by a decision on candle ``exit_k`` (filled on the next), with its two filled orders."""
    entry = order(bot, entry_k, "entry")
    orders = [entry]
    exit_order = None
    if exit_k is not None:
        exit_order = order(bot, exit_k, exit_purpose)
        orders.append(exit_order)
    t = Trade(
        id=str(derived_id(entry.client_order_id, "trade")),
        bot_id=bot,
        status="open" if exit_k is None else "closed",
        entry_time=T0 + (entry_k + 1) * STEP,
        exit_time=None if exit_k is None else T0 + (exit_k + 1) * STEP,
        entry_order_id=entry.id,
        exit_order_id=None if exit_order is None else exit_order.id,
        amount=Decimal("1.5"),
        price=Decimal("0.1"),
        exit_price=None if exit_k is None else Decimal("0.11"),
        exit_reason=None if exit_k is None else "signal",
    )
    return t, orders


def run(*trades: tuple[Trade, list[Order]], extra_orders: tuple[Order, ...] = ()) -> RunRows:
    return RunRows(
        orders=[o for _, os in trades for o in os] + list(extra_orders),
        trades=[t for t, _ in trades],
        last_candle_at=T0 + 32 * STEP,
    )


REFERENCE = run(trade(BOT, 2, 6), trade(BOT, 10, 14), trade(OTHER, 3, None))


def test_identical_runs_count_nothing() -> None:
    r = compare(
        REFERENCE,
        run(trade(BOT, 2, 6), trade(BOT, 10, 14), trade(OTHER, 3, None)),
        WINDOW,
        DECISIONS,
    )
    assert r.counts.total() == 0, r.notes


def test_a_missing_and_an_extra_trade_are_counted() -> None:
    got = run(trade(BOT, 2, 6), trade(OTHER, 3, None), trade(OTHER, 20, 24))
    r = compare(REFERENCE, got, WINDOW, DECISIONS)
    assert (r.counts.missing, r.counts.extra, r.counts.double_open, r.counts.mismatches) == (
        1,
        1,
        1,
        0,
    )
    # the extra trade on OTHER overlaps its still open trade: a double open too
    assert any("double open" in n for n in r.notes)


def test_a_trade_that_never_closed_is_missing_its_exit() -> None:
    """The failed persist: the exit order stays open, the trade stays open."""
    stuck, orders = trade(BOT, 10, None)
    exit_open = order(BOT, 14, "exit", status="open")
    got = run(trade(BOT, 2, 6), (stuck, orders), trade(OTHER, 3, None), extra_orders=(exit_open,))
    r = compare(REFERENCE, got, WINDOW, DECISIONS)
    assert (r.counts.missing, r.counts.extra, r.counts.mismatches) == (1, 1, 1)
    assert any("exit order" in n and "still open" in n for n in r.notes)


def test_two_open_trades_of_one_bot_are_a_double_open() -> None:
    got = run(trade(BOT, 2, 6), trade(BOT, 10, None), trade(BOT, 12, 14), trade(OTHER, 3, None))
    r = compare(REFERENCE, got, WINDOW, DECISIONS)
    assert r.counts.double_open == 1
    # back-to-back trades (a reversal: exit and entry fill on the same open) are no overlap
    back_to_back = run(trade(BOT, 2, 6), trade(BOT, 6, 14), trade(OTHER, 3, None))
    assert compare(back_to_back, back_to_back, WINDOW, DECISIONS).counts.double_open == 0


def test_orders_and_trades_that_disagree_are_mismatches() -> None:
    t, orders = trade(BOT, 2, 6)
    orphan_fill = order(BOT, 8, "entry")  # a filled entry without its trade
    orphan_exit = order(BOT, 9, "stop_loss")  # a filled exit without its trade
    dup = orders[0]  # a client order id used twice
    no_entry = trade(OTHER, 3, None)[0]  # a trade whose entry order is missing
    got = RunRows(
        [*orders, orphan_fill, orphan_exit, dup],
        [t, no_entry],
        REFERENCE.last_candle_at,
    )
    r = compare(got, got, WINDOW, DECISIONS)
    assert r.counts.mismatches == 4, r.notes


def test_nothing_after_the_window_is_judged() -> None:
    late_open = order(BOT, 31, "entry", status="open")  # decided after the window: in flight
    late = trade(OTHER, 31, None)  # entered after the window: in one run only
    got = run(
        trade(BOT, 2, 6), trade(BOT, 10, 14), trade(OTHER, 3, None), late, extra_orders=(late_open,)
    )
    assert compare(REFERENCE, got, WINDOW, DECISIONS).counts.total() == 0


def test_the_window_leaves_candles_to_spare() -> None:
    shorter = replace(REFERENCE, last_candle_at=T0 + 20 * STEP)
    assert window_of(REFERENCE, shorter, STEP) == T0 + 18 * STEP


def test_orphan_holds_are_counted_after_one_lease_ttl() -> None:
    now = T0 + timedelta(hours=1)
    old = now - timedelta(seconds=10)
    observed = Observed(
        at=now,
        holds=[
            Hold("h1", BOT, "cid-never-placed", old),  # its order never happened
            Hold("h2", OTHER, "cid-open", old),  # its bot lost its lease
            Hold("h3", BOT, "cid-filled", old),  # its order filled, the hold was never posted
            Hold("h4", BOT, "cid-in-flight", old),  # fine: an entry in flight on a leased bot
            Hold("h5", BOT, "cid-just-now", now),  # fine: placed this moment
        ],
        order_status={"cid-open": "open", "cid-filled": "closed", "cid-in-flight": "open"},
        leased={BOT},
    )
    assert orphan_holds(observed, timedelta(seconds=3)) == 3
    r = compare(REFERENCE, REFERENCE, WINDOW, DECISIONS, observed, timedelta(seconds=3))
    assert r.counts.orphan_holds == 3


def test_deadlocks_are_counted_from_the_server_log() -> None:
    log = (
        "2026-12-06 07:00:00.000 UTC [10] ERROR:  deadlock detected\n"
        "2026-12-06 07:00:00.000 UTC [10] DETAIL:  Process 10 waits for ShareLock\n"
        "2026-12-06 07:00:01.000 UTC [11] LOG:  checkpoint starting\n"
        "2026-12-06 07:00:02.000 UTC [12] ERROR:  deadlock detected\n"
    )
    assert count_deadlocks(log) == 2
    assert count_deadlocks("") == 0
