"""Adopting a bot: rebuild its state from the database (position, paper account or live
exchange) and reconcile the orders it had in flight before it trades again."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from worker.candles import MarketData
from worker.errors import Fatal
from worker.exchanges import Exchange, ExchangeCredentials, make_client_order_id
from worker.sealing import Keyring

from . import credit_gate, engine
from .clock import Clock
from .credit_gate import CreditGate
from .market_catalog import MarketCatalog
from .markets import paper_rules
from .model import BotConfig, BotState, InFlight, Position, StepOut, derived_id
from .paper import BotPaperExchange
from .recovery import advance, recover_unrecorded_entries

ZERO = Decimal(0)
ORDER_COLUMNS = frozenset(
    (
        "id",
        "bot_id",
        "user_id",
        "client_order_id",
        "exchange_order_id",
        "exchange",
        "symbol",
        "side",
        "order_type",
        "amount",
        "price",
        "stop_price",
        "filled",
        "average_price",
        "fee",
        "fee_currency",
        "reason",
        "is_paper_trade",
    )
)


def open_live_exchange(
    cfg: BotConfig, credentials: ExchangeCredentials, testnet: bool, **options: Any
) -> Exchange:
    """The bot's exchange account through ccxt (``options`` go to ``LiveExchange``).

    A futures/swap bot (``BASE/QUOTE:SETTLE``) defaults to the exchange's derivatives API:
    orders follow the market either way, but the balance its stake is sized from is the
    derivatives wallet, not the spot one.
    """
    from worker.exchanges.live import LiveExchange  # ccxt is loaded only for live bots

    if ":" in cfg.symbol:
        quote, settle = cfg.symbol.split("/")[1].split(":")
        options.setdefault("default_type", "swap")
        options.setdefault(
            "options", {"defaultSubType": "linear" if settle.split("-")[0] == quote else "inverse"}
        )
    return LiveExchange(cfg.exchange, credentials, sandbox=testnet, **options)


@dataclass
class BotBuilder:
    """What rebuilding a bot needs from the runner."""

    credits: CreditGate
    market_data: MarketData
    clock: Clock
    keyring: Keyring | None = None
    live_exchange: Callable[[BotConfig, Any, bool], Exchange] | None = None
    markets_dir: Path | None = None
    catalog: MarketCatalog | None = None  # the markets cache; None: the shipped definitions
    # One client per exchange account (key, testnet, market type), shared by its bots.
    _accounts: dict[tuple[str, str, bool, str], Any] = field(
        default_factory=dict, init=False, repr=False
    )

    def failed(self, row: dict[str, Any], epoch: int, error: Exception) -> tuple[BotState, StepOut]:
        """A bot that cannot be rebuilt, with the step that records why (it stops with an error)."""
        cfg = stub_config(row)
        stub = BotState(
            cfg,
            epoch,
            BotPaperExchange(
                cfg.exchange, rules=paper_rules(cfg.exchange, self.markets_dir), history=0
            ),
        )
        out = StepOut()
        engine.fail(stub, error, out)
        return stub, out

    async def build(
        self,
        row: dict[str, Any],
        epoch: int,
        trades: list[dict[str, Any]],
        orders: list[dict[str, Any]],
    ) -> BotState:
        """A leased bot as the database knows it, its orders in flight reconciled."""
        cfg = BotConfig.from_row(row)
        base, quote = cfg.symbol.split(":")[0].split("/")
        position: Position | None = None
        for t in trades[:1]:
            position = Position(
                trade_id=t["id"],
                amount=Decimal(t["amount"]),
                entry_price=Decimal(t["price"]),
                entry_cost=Decimal(t["amount"]) * Decimal(t["price"]),
                entry_fee=Decimal(t["fee"]),
                entry_time=t["entry_time"],
                entry_order_id=t["entry_order_id"] or derived_id(t["id"], "order"),
                stop_price=None if t["stop_loss_price"] is None else Decimal(t["stop_loss_price"]),
                take_price=None
                if t["take_profit_price"] is None
                else Decimal(t["take_profit_price"]),
                direction="short" if t["direction"] == "short" else "long",
                decided_at=t.get("decided_at"),
                exit_timeouts=int(t.get("exit_timeouts") or 0),
            )
        realized = Decimal(row["realized"])
        exchange: Exchange
        if cfg.is_paper:
            quote_balance = cfg.initial_balance + realized
            base_balance = ZERO
            if position is not None and position.long:
                quote_balance -= position.entry_cost + position.entry_fee
                base_balance = position.amount
            elif position is not None:  # a margin short: the proceeds held, the base owed
                quote_balance += position.entry_cost - position.entry_fee
                base_balance = -position.amount
            rules = (
                paper_rules(cfg.exchange, self.markets_dir)
                if self.catalog is None
                else await self.catalog.market_rules(cfg.exchange, cfg.symbol)
            )
            exchange = BotPaperExchange(
                cfg.exchange,
                {quote: max(quote_balance, ZERO), base: base_balance},
                rules=rules,
                taker_fee=cfg.fee,
                maker_fee=cfg.fee,
                slippage=cfg.slippage,
                volume_share=cfg.orders.paper_volume_share,
                history=0,
                margin=cfg.allow_short,
            )
            can_short = cfg.allow_short
        else:
            exchange = await self._live(cfg, row)
            # Live shorts only where the exchange holds them: futures/swap markets.
            can_short = cfg.allow_short and exchange.market(cfg.symbol).contract
        bot = BotState(
            cfg,
            epoch,
            exchange,
            position=position,
            last_candle_at=row["last_candle_at"],
            realized=realized,
            day_pnl=Decimal(row["day_pnl"]),
            can_short=can_short,
        )
        if row["last_candle_at"] is not None:
            bot.day = row["last_candle_at"].date()
        await self.reconcile(bot, orders)
        if not cfg.is_paper:
            bot.loaded_at = self.clock.now()
            advance(bot, position.decided_at if position is not None else None)
            await recover_unrecorded_entries(
                self.credits.pool, bot, charged=self._charges(cfg), now=self.clock.now()
            )
        return bot

    async def _live(self, cfg: BotConfig, row: dict[str, Any]) -> Exchange:
        terms = self.credits.terms.get(cfg.user_id)
        if terms is not None and not terms.live_trading:
            raise Fatal(
                "live trading is not included in your plan: upgrade, or switch the bot to paper"
            )
        if not row.get("sealed_secret"):
            raise Fatal("live trading needs an exchange key: add one and link it to the bot")
        if self.keyring is None:
            raise Fatal(
                "this worker has no master keys (TRADEFLEET_MASTER_KEYS) to open exchange keys"
            )
        testnet = bool(row.get("is_testnet"))
        account = (cfg.exchange, str(row["sealed_secret"]), testnet, cfg.symbol.partition(":")[2])
        shared = self._accounts.get(account)
        if shared is not None and not shared.closed:
            return shared.share()  # type: ignore[no-any-return]
        # in memory only, never logged
        credentials = ExchangeCredentials.open(self.keyring, str(row["sealed_secret"]))
        open_exchange = self.live_exchange or open_live_exchange
        ex = open_exchange(cfg, credentials, testnet)
        try:
            if self.catalog is not None and await self.catalog.is_loaded(cfg.exchange):
                # The cached markets, not a download per bot (refreshed on a missing market).
                cached = await self.catalog.market_rules(cfg.exchange, cfg.symbol)
                client = getattr(ex, "client", None)
                if client is not None and hasattr(client, "set_markets"):
                    client.set_markets([cached.raw_market(s) for s in cached.symbols])
            await ex.load_markets()
        except BaseException:
            await ex.close()
            raise
        if hasattr(ex, "share"):
            self._accounts[account] = ex
        return ex

    async def reconcile(self, bot: BotState, orders: list[dict[str, Any]]) -> None:
        """Orders the database says are in flight: find them on the exchange by client id
        (live), or place them again under the same id in the rebuilt paper account."""
        if not orders:
            return
        cfg = bot.config
        ex = bot.exchange
        if isinstance(ex, BotPaperExchange):
            key = cfg.market
            await self.market_data.refresh([key], self.clock.now())
            window = self.market_data.windows[key]
            # The paper clock resumes at the candle the orders were placed on, so they fill
            # at the open of the next one, exactly as they would have without the takeover.
            seen = [
                c
                for c in window.candles
                if bot.last_candle_at is None or c.time <= bot.last_candle_at
            ]
            if seen:
                ex.on_candle(cfg.symbol, cfg.timeframe, seen[-1])
        found = (
            {}
            if isinstance(ex, BotPaperExchange)
            else await ex.reconcile([str(o["client_order_id"]) for o in orders], cfg.symbol)
        )
        # Orders in flight were placed on the close of the last candle seen; its entry has the
        # entry's client id (a short entry is a sell, so the side does not tell). Exits are
        # placed again first, as they were (a reversal's exit fills before its entry).
        entry_cid = (
            None
            if bot.last_candle_at is None
            else make_client_order_id(cfg.order_key, bot.last_candle_at.isoformat(), "entry")
        )

        def adds(o: dict[str, Any]) -> bool:
            """An entry's rest re-quoted: the side of the open position (an exit, a
            reversal's included, is of the other side)."""
            pos = bot.position
            return pos is not None and (o["side"] == "buy") == pos.long

        def purpose(o: dict[str, Any]) -> Literal["entry", "exit"]:
            if bot.position is None or str(o["client_order_id"]) == entry_cid or adds(o):
                return "entry"
            return "exit"

        for o in sorted(orders, key=lambda o: purpose(o) == "entry"):
            cid = str(o["client_order_id"])
            buy = o["side"] == "buy"
            what = purpose(o)
            rest = adds(o)
            charged = what == "entry" and not rest and self._charges(cfg)
            hold = credit_gate.hold_id(cid) if charged else None
            if isinstance(ex, BotPaperExchange):
                limit = o.get("order_type") == "limit" and o.get("price") is not None
                placed = await ex.create_order(  # a resting limit (an owner's limit close)
                    cfg.symbol,  # rests again
                    "buy" if buy else "sell",
                    "limit" if limit else "market",
                    Decimal(o["amount"]),
                    Decimal(o["price"]) if limit else None,
                    client_order_id=cid,
                )
                if Decimal(o.get("filled") or 0) > 0 and o.get("average_price") is not None:
                    # filled in part before the takeover: that part is the account's, the
                    # rest rests on
                    ex.restore_part(
                        placed.id,
                        Decimal(o["filled"]),
                        Decimal(o["average_price"]),
                        Decimal(o.get("fee") or 0),
                    )
            elif cid not in found:
                # The exchange does not know it (expired or purged): record that, free the hold.
                out = bot.pending_out = bot.pending_out or StepOut()
                out.orders.append(
                    {
                        **{
                            k: (str(v) if isinstance(v, Decimal | uuid.UUID) else v)
                            for k, v in o.items()
                            if k in ORDER_COLUMNS
                        },
                        "status": "expired",
                        "lease_epoch": bot.epoch,
                    }
                )
                out.log(
                    cfg,
                    "warning",
                    f"order {cid} is unknown to the exchange: marked expired",
                    action="order_expired",
                    client_order_id=cid,
                )
                if hold is not None:
                    out.credits.append(credit_gate.void(cid, hold))
                continue
            bot.in_flight[cid] = InFlight(
                cid,
                o["id"],
                what,
                "buy" if buy else "sell",
                Decimal(o["amount"]),
                str(o["reason"] or "signal"),
                hold,
                o.get("decided_at") or bot.last_candle_at or self.clock.now(),
                # the bot's own limit order times out by its settings (an owner's limit
                # close by its request's deadline)
                Decimal(o["price"])
                if o.get("order_type") == "limit" and o.get("reason") == "signal" and o["price"]
                else None,
                adds=rest,
            )

    def _charges(self, cfg: BotConfig) -> bool:
        t = self.credits.terms.get(cfg.user_id)
        return t is not None and t.credits_per_trade > 0


def stub_config(row: dict[str, Any]) -> BotConfig:
    """Enough of a bot's configuration to record why it cannot run."""
    from worker.strategies import validate_params

    return BotConfig(
        id=str(row["id"]),
        user_id=str(row["user_id"]),
        name=str(row["name"]),
        exchange=str(row["exchange"]),
        symbol=str(row["trading_pair"]),
        timeframe=str(row["timeframe"]),
        strategy="sma_cross",
        params=validate_params("sma_cross", {}),
        params_key="{}",
        stake_amount=Decimal(1),
        stop_loss=None,
        take_profit=None,
        risk_percentage=Decimal(2),
        sizing="stake",
        max_open_trades=1,
        daily_loss_limit=None,
        allow_short=False,
        is_paper=True,
        credential_id=None,
        initial_balance=Decimal(str(row["initial_balance"])),
        fee=None,
        slippage=Decimal(0),
    )
