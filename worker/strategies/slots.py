"""How a multi-pair bot's entries share its slots and its balance.

The bot runner and the backtester apply these rules alike, so a backtest predicts the bot:

- **One balance.** A bot has one quote balance for all its pairs; an entry stakes from what
  is available at its decision.
- **Slots.** At most ``max_open_trades`` positions are open at once across the bot's pairs
  (an entry placed and not yet filled holds its slot; a slot frees when an exit fills).
  Entries decided on the same close take the free slots in the order of the bot's pairs
  list; those beyond the cap are skipped (the bot logs each one, ``max_open_trades``).
- **Stake** (freqtrade's rules): with a fixed stake, ``stake_amount`` per trade; with an
  unlimited stake (``stake_amount`` None), the tradable part of the available balance
  divided by the free slots, ``available * 0.99 / (max_open_trades - open_trades)``: like
  freqtrade's ``tradable_balance_ratio`` (0.99), the last 1 % pays for a price that moved
  between the decision (at a close) and the fill (at the next open). Entries of one close
  are sized one after the other in the pairs' order, each from the balance the previous
  ones left, so an unlimited stake splits the balance about evenly across the slots it
  fills. An entry never stakes more than is available; with nothing available it is
  skipped (``no_balance``). A market entry the balance cannot pay at its fill price is
  rejected by the exchange and nothing is traded.
- **Shorts** (``allow_short``): a pair holds a long or a short; both take a slot and stake
  alike. A reversal's exit, placed on the close that decides it, frees its slot for that
  close's entries, and the reversal's opposite entry takes a free slot in the pairs' order
  like any other entry (a pair listed earlier may take it first). On a paper margin account
  a short's proceeds are credited to the quote balance while it is open; the balance
  entries stake from leaves out twice each open short's entry value (its proceeds, kept to
  buy it back, and as much again as the 1x collateral a futures account would hold), so
  the other pairs never stake what a short needs to close (``stakeable``). A live futures
  account reports its free margin itself and is taken as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)
TRADABLE = Decimal("0.99")  # of the available balance, for an unlimited stake


@dataclass(frozen=True, slots=True)
class Entry:
    """An entry admitted on a close: its pair and its stake (quote currency)."""

    pair: str
    stake: Decimal


@dataclass(frozen=True, slots=True)
class Skip:
    """An entry not taken: ``max_open_trades`` (no free slot) or ``no_balance``."""

    pair: str
    reason: str


def stakeable(free: Decimal, short_values: Sequence[Decimal]) -> Decimal:
    """What a paper margin account's entries may stake: its free quote less twice the entry
    value of each open short (never below zero)."""
    return max(free - 2 * sum(short_values, ZERO), ZERO)


def allocate(
    wanted: Sequence[str],
    pairs: Sequence[str],
    *,
    open_trades: int,
    max_open_trades: int,
    available: Decimal,
    stake_amount: Decimal | None,
) -> tuple[list[Entry], list[Skip]]:
    """The entries of one close: ``wanted`` (pairs whose strategy decided an entry) in the
    order of ``pairs``, given the positions open (or entering) now and the available balance.
    ``stake_amount`` None: an unlimited stake."""
    order = {p: i for i, p in enumerate(pairs)}
    taken: list[Entry] = []
    skipped: list[Skip] = []
    open_now = open_trades
    left = available
    for pair in sorted(set(wanted), key=lambda p: order.get(p, len(order))):
        free_slots = max_open_trades - open_now
        if free_slots <= 0:
            skipped.append(Skip(pair, "max_open_trades"))
            continue
        stake = left * TRADABLE / free_slots if stake_amount is None else stake_amount
        stake = min(stake, left)
        if stake <= ZERO:
            skipped.append(Skip(pair, "no_balance"))
            continue
        taken.append(Entry(pair, stake))
        open_now += 1
        left -= stake
    return taken, skipped
