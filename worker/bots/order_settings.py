"""How a bot places its orders: market or limit per side, the limit's offset from the
deciding close, and freqtrade's ``unfilledtimeout`` (in minutes or candles, then cancel or
re-quote). One value per bot, read from its ``bots`` row (the save rules live in SQL:
``bots_limit_offset_range``, ``bots_order_timeout_range``, ...)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from worker.errors import Fatal

HUNDRED = Decimal(100)
ONE = Decimal(1)

OrderKind = Literal["market", "limit"]
Purpose = Literal["entry", "exit"]


@dataclass(frozen=True, slots=True)
class OrderSettings:
    entry_type: OrderKind = "market"
    exit_type: OrderKind = "market"
    offset: Decimal = Decimal(0)  # a fraction of the deciding close, in the trader's favour
    timeout_unit: Literal["minutes", "candles"] = "candles"
    entry_timeout: int = 1
    exit_timeout: int = 1
    requote: bool = False  # on timeout: place again at the latest close (else give up)
    exit_timeout_count: int = 0  # after this many exit timeouts of a position: exit at market
    # paper only: a limit order fills at most this share of a candle's volume (None: whole)
    paper_volume_share: Decimal | None = None
    notify_fills: bool = False  # the owner opted in to a notification per fill

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> OrderSettings:
        def kind(name: str) -> OrderKind:
            v = str(row.get(name) or "market")
            if v not in ("market", "limit"):
                raise Fatal(f"{name} must be 'market' or 'limit', got {v!r}")
            return "limit" if v == "limit" else "market"

        offset = Decimal(str(row.get("limit_offset") or 0)) / HUNDRED
        unit = str(row.get("order_timeout_unit") or "candles")
        entry_timeout = int(row.get("entry_timeout") or 1)
        exit_timeout = int(row.get("exit_timeout") or 1)
        if not Decimal(0) <= offset <= Decimal("0.1"):
            raise Fatal(f"limit_offset must be between 0 and 10 %, got {offset * HUNDRED}")
        if unit not in ("minutes", "candles") or min(entry_timeout, exit_timeout) < 1:
            raise Fatal("order timeouts must be at least one minute or candle")
        share = (row.get("metadata") or {}).get("paper_volume_share")
        volume_share = None if share is None else Decimal(str(share))
        if volume_share is not None and not Decimal(0) < volume_share <= ONE:
            raise Fatal(f"paper_volume_share must be above 0 and at most 1, got {share}")
        return cls(
            entry_type=kind("entry_order_type"),
            exit_type=kind("exit_order_type"),
            offset=offset,
            timeout_unit="minutes" if unit == "minutes" else "candles",
            entry_timeout=entry_timeout,
            exit_timeout=exit_timeout,
            requote=row.get("timeout_action") == "requote",
            exit_timeout_count=int(row.get("exit_timeout_count") or 0),
            paper_volume_share=volume_share,
            notify_fills=_opted_in(row.get("notify_fills")),
        )

    def kind(self, purpose: Purpose) -> OrderKind:
        return self.entry_type if purpose == "entry" else self.exit_type

    def timeout_candles(self, purpose: Purpose, timeframe_seconds: int) -> int:
        """Candles a limit order rests before it is cancelled (at least one): a timeout in
        minutes ends at the first candle close at or after it."""
        n = self.entry_timeout if purpose == "entry" else self.exit_timeout
        if self.timeout_unit == "candles":
            return n
        return max(1, math.ceil(n * 60 / timeframe_seconds))

    def limit_price(self, side: Literal["buy", "sell"], close: Decimal) -> Decimal:
        """A buy rests below the close, a sell above it."""
        return close * (ONE - self.offset if side == "buy" else ONE + self.offset)


def _opted_in(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
