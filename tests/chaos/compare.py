"""Differential comparison of a faulted run with a fault-free reference run (pure logic).

Both runs trade the same bots (ids copied with the database) over the same replayed
candles, and every id the engine writes is derived from the bot, the candle and the leg
(client order ids, order ids, trade ids), so a correct fleet writes exactly the same trades
whatever faults it went through. Everything is compared up to a window: decisions taken on
candles at or before ``window``, which both runs processed with a candle to spare.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from worker.exchanges import make_client_order_id

PURPOSES = ("entry", "exit", "stop_loss", "take_profit")
"""The legs the engine names its client order ids after (``make_client_order_id``)."""
OPEN = frozenset(("pending", "open"))
NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Order:
    id: str
    bot_id: str
    client_order_id: str
    status: str
    filled: Decimal


@dataclass(frozen=True)
class Trade:
    id: str
    bot_id: str
    status: str
    entry_time: datetime
    exit_time: datetime | None
    entry_order_id: str | None
    exit_order_id: str | None
    amount: Decimal
    price: Decimal
    exit_price: Decimal | None
    exit_reason: str | None

    def as_of(self, window: datetime) -> tuple[object, ...]:
        """What a user saw of this trade at ``window``: its entry, and its exit if done by then."""
        closed = self.exit_time is not None and self.exit_time <= window
        return (
            self.id,
            self.entry_time,
            self.amount,
            self.price,
            self.exit_time if closed else None,
            self.exit_price if closed else None,
            self.exit_reason if closed else None,
        )


@dataclass(frozen=True)
class Hold:
    """A pending credit hold that nothing posted or voided (yet)."""

    id: str
    bot_id: str
    reference_id: str  # the client order id of the entry it pays for
    created_at: datetime


@dataclass
class Observed:
    """The fleet as it was, live, at the end of a run (before its workers stopped)."""

    at: datetime
    holds: list[Hold] = field(default_factory=list)
    order_status: dict[str, str] = field(default_factory=dict)  # client order id -> status
    leased: set[str] = field(default_factory=set)  # bots with a live lease on a live worker


@dataclass
class RunRows:
    """What a run left in its database."""

    orders: list[Order]
    trades: list[Trade]
    last_candle_at: datetime | None  # the latest candle any bot's progress reached


@dataclass
class Counts:
    missing: int = 0
    extra: int = 0
    double_open: int = 0
    mismatches: int = 0
    orphan_holds: int = 0
    deadlocks: int = 0
    audit: int = 0

    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def line(self) -> str:
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


@dataclass
class Report:
    counts: Counts = field(default_factory=Counts)
    notes: list[str] = field(default_factory=list)  # the first few findings, for a reader

    def note(self, text: str, limit: int = 12) -> None:
        if len(self.notes) < limit:
            self.notes.append(text)


class Decisions:
    """Which candle and leg each client order id was decided on (the ids are one-way
    hashes of the bot, the candle and the leg, so they are recomputed over the grid)."""

    def __init__(self, bot_ids: Iterable[str], candles: Iterable[datetime]) -> None:
        times = list(candles)
        self._by_cid: dict[str, tuple[datetime, str]] = {}
        for bot_id in bot_ids:
            for t in times:
                iso = t.isoformat()
                for purpose in PURPOSES:
                    self._by_cid[make_client_order_id(bot_id, iso, purpose)] = (t, purpose)

    def of(self, client_order_id: str) -> tuple[datetime, str] | None:
        return self._by_cid.get(client_order_id)


def candle_grid(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out, t = [], start
    while t <= end:
        out.append(t)
        t += step
    return out


def window_of(ref: RunRows, got: RunRows, step: timedelta, spare: int = 2) -> datetime | None:
    """The last decision candle both runs are judged on: ``spare`` candles before the latest
    candle both processed, so every order decided by then has had its fill candle."""
    if ref.last_candle_at is None or got.last_candle_at is None:
        return None
    return min(ref.last_candle_at, got.last_candle_at) - spare * step


def compare(
    ref: RunRows,
    got: RunRows,
    window: datetime,
    decisions: Decisions,
    observed: Observed | None = None,
    lease_ttl: timedelta = timedelta(seconds=0),
) -> Report:
    """Count, up to ``window``, how ``got`` differs from ``ref`` and what it holds that no
    correct fleet would (double positions, orders and trades that disagree, orphan holds).
    Deadlocks and audit rows come from elsewhere (server log, ``credit_audit()``)."""
    r = Report()
    ref_trades = {t.id: t for t in ref.trades if t.entry_time <= window}
    got_trades = {t.id: t for t in got.trades if t.entry_time <= window}
    for tid, t in ref_trades.items():
        mine = got_trades.get(tid)
        if mine is None or mine.as_of(window) != t.as_of(window):
            r.counts.missing += 1
            r.note(f"missing trade {tid} of bot {t.bot_id} entered {t.entry_time:%m-%d %H:%M}")
    for tid, t in got_trades.items():
        theirs = ref_trades.get(tid)
        if theirs is None or theirs.as_of(window) != t.as_of(window):
            r.counts.extra += 1
            r.note(f"extra trade {tid} of bot {t.bot_id} entered {t.entry_time:%m-%d %H:%M}")
    r.counts.double_open = _double_open(got.trades, window, r)
    r.counts.mismatches = _mismatches(got, window, decisions, r)
    if observed is not None:
        r.counts.orphan_holds = orphan_holds(observed, lease_ttl, r)
    return r


def _double_open(trades: Sequence[Trade], window: datetime, r: Report) -> int:
    """Bots that held two positions at once: trades whose [entry, exit) overlap."""
    by_bot: dict[str, list[Trade]] = defaultdict(list)
    for t in trades:
        if t.entry_time <= window:
            by_bot[t.bot_id].append(t)
    bad = 0
    for bot_id, ts in by_bot.items():
        ts.sort(key=lambda t: (t.entry_time, t.id))
        held_until: datetime | None = None
        for t in ts:
            if held_until is not None and t.entry_time < held_until:
                bad += 1
                r.note(
                    f"double open: bot {bot_id} entered {t.entry_time:%m-%d %H:%M} while holding"
                )
                break
            ends = t.exit_time or NEVER
            held_until = ends if held_until is None else max(held_until, ends)
    return bad


def _mismatches(got: RunRows, window: datetime, decisions: Decisions, r: Report) -> int:
    """Orders and trades that contradict each other, and client order ids used twice."""
    bad = 0
    for cid, n in Counter(o.client_order_id for o in got.orders).items():
        if n > 1:
            bad += n - 1
            r.note(f"client order id {cid} used {n} times")
    orders = {o.id: o for o in got.orders}
    entry_of = {t.entry_order_id: t for t in got.trades if t.entry_order_id}
    exit_of = {t.exit_order_id: t for t in got.trades if t.exit_order_id}
    for o in got.orders:
        decided = decisions.of(o.client_order_id)
        if decided is not None and decided[0] > window:
            continue
        purpose = "unknown" if decided is None else decided[1]
        if o.status in OPEN:
            bad += 1
            r.note(f"{purpose} order {o.client_order_id} of bot {o.bot_id} still {o.status}")
        elif o.status == "closed" and o.filled > 0:
            belongs = entry_of if purpose == "entry" else exit_of
            if o.id not in belongs:
                bad += 1
                r.note(f"filled {purpose} order {o.client_order_id} of bot {o.bot_id} has no trade")
    for t in got.trades:
        if t.entry_time > window:
            continue
        entry = orders.get(t.entry_order_id or "")
        if entry is None or entry.status != "closed":
            bad += 1
            r.note(f"trade {t.id} of bot {t.bot_id}: entry order missing or not filled")
        if t.status == "closed":
            leaving = orders.get(t.exit_order_id or "")
            if leaving is None or leaving.status != "closed":
                bad += 1
                r.note(f"closed trade {t.id} of bot {t.bot_id}: exit order missing or not filled")
    return bad


def orphan_holds(observed: Observed, lease_ttl: timedelta, r: Report | None = None) -> int:
    """Pending holds older than one lease TTL whose entry order never happened, is no longer
    in flight, or whose bot no live worker leases."""
    bad = 0
    for h in observed.holds:
        if h.created_at > observed.at - lease_ttl:
            continue  # placed this moment: its order may be on its way
        status = observed.order_status.get(h.reference_id)
        why = None
        if status is None:
            why = "its order never happened"
        elif status not in OPEN:
            why = f"its order is {status}"
        elif h.bot_id not in observed.leased:
            why = "its bot is not leased"
        if why is not None:
            bad += 1
            if r is not None:
                r.note(f"orphan hold {h.id} of bot {h.bot_id}: {why}")
    return bad


def count_deadlocks(log_text: str) -> int:
    """Deadlocks PostgreSQL reported in (a slice of) its server log."""
    return sum(1 for line in log_text.splitlines() if "deadlock detected" in line)
