"""Trade routing: an order for a symbol held in a linked brokerage goes to the connection
(and account) that holds it, through SnapTrade's trading endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from worker.errors import Fatal
from worker.holdings import queries as q
from worker.holdings.provider import ProviderCredentials
from worker.holdings.snaptrade import SnapTradeClient
from worker.sealing import Keyring


@dataclass(frozen=True)
class RoutedOrder:
    connection_id: UUID
    account_id: UUID
    provider_account_id: str
    brokerage_order_id: str | None
    status: str | None


async def route_order(
    pool: AsyncConnectionPool,
    keyring: Keyring,
    snaptrade: SnapTradeClient,
    *,
    user_id: UUID,
    symbol: str,
    action: str,
    units: Decimal,
    order_type: str = "Market",
    time_in_force: str = "Day",
    price: Decimal | None = None,
    client_order_id: str | None = None,
) -> RoutedOrder:
    """Place the order in the account holding the most of ``symbol`` (Fatal if none does)."""
    if units <= 0:
        raise Fatal("order units must be positive")
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.ROUTE_ORDER, {"user_id": user_id, "symbol": symbol})
        row = await cur.fetchone()
    if row is None:
        raise Fatal(
            f"no active linked brokerage account holds {symbol}; link or reconnect one first"
        )
    if row["provider"] != "snaptrade":
        raise Fatal(
            f"{symbol} is held in a {row['provider']} account, which does not take routed orders"
        )
    if action.upper() == "SELL" and Decimal(row["units"]) < units:
        raise Fatal(
            f"the account holding {symbol} has {row['units']} units, fewer than the {units} to sell"
        )
    creds = ProviderCredentials(
        row["provider_user_id"], keyring.open_bytes(row["sealed_user_secret"]).decode()
    )
    record = await snaptrade.place_order(
        creds,
        account_id=row["provider_account_id"],
        symbol=symbol,
        action=action,
        units=units,
        order_type=order_type,
        time_in_force=time_in_force,
        price=price,
        client_order_id=client_order_id,
    )
    return RoutedOrder(
        row["connection_id"],
        row["account_id"],
        row["provider_account_id"],
        record.brokerage_order_id,
        record.status,
    )
