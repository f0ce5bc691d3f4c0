"""The figures an analysis rests on, computed by the platform in SQL and read under the
requesting user's row level security: a prompt only ever sees that user's own rows."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from worker.errors import Fatal


class NotFound(Fatal):
    """The bot, strategy or backtest run is not the user's (or no longer exists)."""

    code = "not_found"


AS_USER = (
    "select set_config('role', 'authenticated', true), "
    "set_config('request.jwt.claims', %(claims)s, true)"
)

BOT = """
with closed as (
  select t.profit, t.fee, t.exit_time,
         sum(t.profit) over (order by t.exit_time, t.id) as cum
    from public.trades t
   where t.bot_id = %(bot_id)s and t.status = 'closed'
),
streaks as (
  select count(*) as n
    from (select c.profit <= 0 as lost,
                 row_number() over (order by c.exit_time) - row_number() over (partition by c.profit <= 0 order by c.exit_time) as grp
            from closed c) s
   where s.lost
   group by s.grp
),
curve as (
  select c.cum, max(c.cum) over (order by c.exit_time rows unbounded preceding) as peak from closed c
)
select b.id, b.name, b.trading_pair, b.timeframe, b.exchange, b.strategy, b.parameters, b.status,
       b.initial_balance, b.current_balance, b.stake_amount, b.leverage, b.stop_loss as stop_loss_pct,
       b.take_profit as take_profit_pct, b.is_paper_trade, b.max_open_trades,
       (select count(*) from closed) as closed_trades,
       (select count(*) from public.trades t where t.bot_id = b.id and t.status = 'open') as open_trades,
       (select count(*) from closed c where c.profit > 0) as winning_trades,
       (select count(*) from closed c where c.profit <= 0) as losing_trades,
       round((select 100.0 * count(*) filter (where c.profit > 0) / nullif(count(*), 0) from closed c), 2) as win_rate,
       (select coalesce(sum(c.profit), 0) from closed c) as profit,
       round((select coalesce(sum(c.profit), 0) from closed c) / b.initial_balance * 100, 4) as return_pct,
       (select coalesce(sum(c.profit), 0) + coalesce(sum(c.fee), 0) from closed c where c.profit > 0) as gross_profit,
       (select coalesce(sum(c.fee), 0) from closed c) as fees,
       round((select sum(c.profit) filter (where c.profit > 0) / nullif(-sum(c.profit) filter (where c.profit < 0), 0)
                from closed c), 4) as profit_factor,
       coalesce((select max(n) from streaks), 0) as max_consecutive_losses,
       round(coalesce((select max((v.peak - v.cum) / (b.initial_balance + greatest(v.peak, 0))) from curve v), 0) * 100, 4)
         as max_drawdown_pct,
       round(b.stake_amount / b.initial_balance * 100, 4) as stake_pct_of_balance,
       round(100.0 * (select sum(o.initial_balance) from public.bots o where o.trading_pair = b.trading_pair)
             / nullif((select sum(o.initial_balance) from public.bots o), 0), 4) as pair_share_pct,
       round((select avg(abs(t.price - t.stop_loss_price) / t.price * 100) from public.trades t
               where t.bot_id = b.id and t.stop_loss_price is not null), 4) as avg_stop_distance_pct
  from public.bots b
 where b.id = %(bot_id)s
"""

STRATEGY = """
select s.id, s.name, s.engine as strategy, s.strategy_type, s.risk_level,
       (select c.parameters from public.get_strategy_content(s.id) c) as parameters,
       (select c.content from public.get_strategy_content(s.id) c) as content,
       (select round(r.max_drawdown, 4) from public.backtest_results r
         where r.strategy_id = s.id order by r.created_at desc limit 1) as max_drawdown_pct,
       (select count(*) from public.bots b where b.strategy_id = s.id) as bots
  from public.strategies s
 where s.id = %(strategy_id)s and s.user_id = (select auth.uid())
"""

BACKTEST = """
select r.id as run_id, r.strategy, r.parameters, r.trading_pair, r.timeframe, r.exchange, r.status,
       r.start_date, r.end_date, x.total_trades, x.win_rate,
       x.total_return_percentage as total_return_pct, x.max_drawdown as max_drawdown_pct,
       x.sharpe_ratio, x.sortino_ratio, x.profit_factor, x.max_consecutive_losses,
       x.metadata -> 'optimization' ->> 'in_sample' as in_sample_return_pct,
       x.metadata -> 'optimization' ->> 'out_of_sample' as out_of_sample_return_pct
  from public.backtest_runs r
  left join lateral (select * from public.backtest_results b where b.run_id = r.id
                      order by b.created_at desc limit 1) x on true
 where r.id = %(run_id)s
"""

PORTFOLIO = """
with h as (select * from public.aggregated_holdings),
t as (select coalesce(sum(market_value), 0) as value, coalesce(sum(unrealized_pnl), 0) as pnl from h)
select (select count(*) from h) as holdings,
       t.value as market_value,
       (select min(currency) from h) as currency,
       (select h.symbol from h order by h.market_value desc nulls last limit 1) as top_symbol,
       round((select max(h.market_value) from h) / nullif(t.value, 0) * 100, 4) as top_holding_pct,
       round((select sum((h.market_value / nullif(t.value, 0)) ^ 2) from h), 4) as hhi,
       t.pnl as unrealized_pnl,
       round(t.pnl / nullif(t.value - t.pnl, 0) * 100, 4) as unrealized_pnl_pct,
       (select count(*) from public.bots) as bots,
       (select coalesce(sum(current_balance), 0) from public.bots) as bot_capital
  from t
"""


@asynccontextmanager
async def as_user(
    pool: AsyncConnectionPool, user_id: uuid.UUID
) -> AsyncIterator[psycopg.AsyncCursor[dict[str, Any]]]:
    """A transaction acting as ``user_id`` the way PostgREST does (role and JWT claims)."""
    claims = json.dumps({"sub": str(user_id), "role": "authenticated", "aud": "authenticated"})
    async with pool.connection() as conn, conn.transaction():
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(AS_USER, {"claims": claims})
            yield cur


def _plain(value: Any) -> Any:
    """JSON-ready: Decimals as numbers, times as ISO text, ids as strings."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


async def _row(
    cur: psycopg.AsyncCursor[dict[str, Any]], query: str, params: dict[str, Any], what: str
) -> dict[str, Any]:
    await cur.execute(query, params)
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no {what} of yours with that id")
    return {k: _plain(v) for k, v in row.items() if v is not None or k.endswith("_pct")}


async def load(pool: AsyncConnectionPool, analysis: dict[str, Any]) -> dict[str, Any]:
    """The figures of ``analysis`` (its type and subject), read as its user."""
    kind = str(analysis["analysis_type"])
    async with as_user(pool, analysis["user_id"]) as cur:
        if kind in ("performance", "risk") and analysis.get("bot_id"):
            return await _row(cur, BOT, {"bot_id": analysis["bot_id"]}, "bot")
        if kind == "risk" and analysis.get("strategy_id"):
            f = await _row(cur, STRATEGY, {"strategy_id": analysis["strategy_id"]}, "strategy")
            content = f.pop("content", None)
            rules = json.loads(content) if content else {}
            params = {**(f.get("parameters") or {}), **(rules if isinstance(rules, dict) else {})}
            stop = params.get("stop_loss")
            f["stop_loss_pct"] = None if stop is None else round(float(stop) * 100, 4)
            f["leverage"] = None
            return f
        if kind == "backtest" and analysis.get("backtest_run_id"):
            f = await _row(cur, BACKTEST, {"run_id": analysis["backtest_run_id"]}, "backtest run")
            if f.get("status") != "completed":
                raise NotFound(f"the backtest run is {f.get('status')}, not completed")
            for key in ("in_sample_return_pct", "out_of_sample_return_pct"):
                if f.get(key) is not None:
                    f[key] = float(f[key])
            return f
        if kind == "portfolio":
            return await _row(cur, PORTFOLIO, {}, "portfolio")
    raise NotFound(f"a {kind} analysis needs its bot, strategy or backtest run")
