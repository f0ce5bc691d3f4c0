"""A readable summary of a Tradefleet platform: users, plans, bots, performance, credits.

``python -m worker.summary [DATABASE_URL]`` (or ``tradefleet summary``) prints it; the demo
ends with it.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

from worker.errors import ConfigError
from worker.fleet.settings import DatabaseSettings, load_settings

USERS_SQL = """
select p.id, p.email, p.full_name, p.role, pl.name as plan, pl.max_bots,
       (select count(*) from public.bots b where b.user_id = p.id) as bots,
       coalesce(ca.balance, 0) as credits
  from public.profiles p
  left join public.subscriptions s on s.user_id = p.id and s.status in ('active', 'trial')
  left join public.plans pl on pl.id = s.plan_id
  left join public.credit_accounts ca on ca.user_id = p.id and ca.kind = 'user'
 order by p.email
"""

PLANS_SQL = """
select name, price_monthly, max_bots, max_strategies, backtest_minutes_per_month,
       features ->> 'monthly_credits' as monthly_credits, live_trading
  from public.plans where is_active order by sort_order, name
"""

BOTS_SQL = """
select s.name, s.user_email, s.exchange,
       coalesce(array_to_string(b.pairs, ' '), s.trading_pair) as trading_pair, s.timeframe,
       s.strategy, s.status, s.is_paper_trade, s.total_trades, s.win_rate_percentage, s.profit,
       s.profit_percentage, s.current_balance
  from public.bot_performance_summary s
  join public.bots b on b.id = s.id
 order by s.user_email, s.name
"""

PERFORMANCE_SQL = """
select p.email, perf.*
  from public.profiles p
 cross join lateral public.get_user_trading_performance(3650, p.id) perf
 order by p.email, perf.quote_currency
"""

MARKETPLACE_SQL = """
select name, author_name, engine, monthly_price, avg_return_percentage, backtest_count, avg_rating, review_count
  from public.strategy_marketplace order by avg_return_percentage desc
"""


def _fmt(value: Any, places: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return f"{value:,.{places}f}"
    return str(value)


def _table(title: str, columns: list[str], rows: list[list[str]], left: int = 2) -> Table:
    """A table whose first ``left`` columns are text and the rest figures."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i < left else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*row)
    return table


async def fetch(url: str) -> dict[str, list[dict[str, Any]]]:
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row
    ) as conn:
        await conn.execute("set role service_role")
        out: dict[str, list[dict[str, Any]]] = {}
        for key, query in (
            ("users", USERS_SQL),
            ("plans", PLANS_SQL),
            ("bots", BOTS_SQL),
            ("performance", PERFORMANCE_SQL),
            ("marketplace", MARKETPLACE_SQL),
        ):
            cur = await conn.execute(query)
            out[key] = await cur.fetchall()
        return out


def render(data: dict[str, list[dict[str, Any]]], console: Console) -> None:
    console.rule("[bold]Tradefleet platform summary")
    console.print(
        _table(
            "Plans",
            ["Plan", "Price/mo", "Bots", "Strategies", "Backtest min", "Credits/mo", "Live"],
            left=1,
            rows=[
                [
                    r["name"],
                    _fmt(r["price_monthly"], 2),
                    str(r["max_bots"]),
                    str(r["max_strategies"]),
                    str(r["backtest_minutes_per_month"]),
                    _fmt(r["monthly_credits"]),
                    "yes" if r["live_trading"] else "no",
                ]
                for r in data["plans"]
            ],
        )
    )
    console.print(
        _table(
            "Users",
            ["Email", "Name", "Role", "Plan", "Bots", "Credits"],
            [
                [
                    r["email"],
                    r["full_name"] or "",
                    r["role"],
                    r["plan"] or "-",
                    f"{r['bots']}/{r['max_bots']}",
                    _fmt(r["credits"], 2),
                ]
                for r in data["users"]
            ],
        )
    )
    console.print(
        _table(
            "Bots",
            [
                "Bot",
                "Owner",
                "Market",
                "Strategy",
                "Status",
                "Trades",
                "Win %",
                "Profit",
                "Profit %",
                "Balance",
            ],
            [
                [
                    r["name"],
                    r["user_email"],
                    f"{r['exchange']} {r['trading_pair']} {r['timeframe']}",
                    r["strategy"],
                    r["status"] + ("" if r["is_paper_trade"] else " (live)"),
                    str(r["total_trades"]),
                    _fmt(r["win_rate_percentage"], 2),
                    _fmt(r["profit"], 8),
                    _fmt(r["profit_percentage"], 2),
                    _fmt(r["current_balance"], 8),
                ]
                for r in data["bots"]
            ],
        )
    )
    console.print(
        _table(
            "Performance per user and quote currency (closed trades, last 10 years)",
            [
                "Email",
                "Quote",
                "Trades",
                "Won",
                "Lost",
                "Win %",
                "Profit",
                "Best",
                "Worst",
                "Running bots",
            ],
            left=2,
            rows=[
                [
                    r["email"],
                    r["quote_currency"] or "-",
                    str(r["total_trades"]),
                    str(r["winning_trades"]),
                    str(r["losing_trades"]),
                    _fmt(r["win_rate"], 2),
                    _fmt(r["total_profit"], 8),
                    _fmt(r["best_trade"], 8),
                    _fmt(r["worst_trade"], 8),
                    f"{r['active_bots']}/{r['total_bots']}",
                ]
                for r in data["performance"]
            ],
        )
    )
    console.print(
        _table(
            "Marketplace",
            [
                "Strategy",
                "Author",
                "Engine",
                "Price/mo",
                "Avg backtest %",
                "Backtests",
                "Rating",
                "Reviews",
            ],
            [
                [
                    r["name"],
                    r["author_name"] or "",
                    r["engine"],
                    _fmt(r["monthly_price"], 2),
                    _fmt(r["avg_return_percentage"], 2),
                    str(r["backtest_count"]),
                    _fmt(r["avg_rating"], 2),
                    str(r["review_count"]),
                ]
                for r in data["marketplace"]
            ],
        )
    )


def database_url(given: str | None) -> str:
    """``given``, else ``DATABASE_URL`` (raises :class:`ConfigError` if neither is set)."""
    return given or load_settings(DatabaseSettings).database_url.get_secret_value()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        url = database_url(args[0] if args else None)
    except ConfigError as e:
        print(f"usage: python -m worker.summary [DATABASE_URL]: {e}", file=sys.stderr)
        return 2
    console = Console() if sys.stdout.isatty() else Console(width=160)
    render(asyncio.run(fetch(url)), console)
    return 0


if __name__ == "__main__":
    sys.exit(main())


DB_HELP = "PostgreSQL URL of the database (default: the DATABASE_URL environment variable)"


def add_commands(subparsers: Any) -> None:
    """Register ``tradefleet summary`` and ``tradefleet demo``."""
    summary = subparsers.add_parser(
        "summary",
        help="print a readable summary of the platform",
        description="Print the platform's users, plans, bots, trading performance, credits "
        "and marketplace as tables, read from the database.",
    )
    summary.add_argument("--database-url", help=DB_HELP)
    summary.set_defaults(handler=lambda a: main([database_url(a.database_url)]))

    demo = subparsers.add_parser(
        "demo",
        help="trade the seeded paper bots on replayed candles, then summarise",
        description="Trade the seeded paper bots on the sample candles replayed through the "
        "fleet, then print the summary. Needs a database with the migrations and seed applied "
        "(scripts/demo does all of it).",
    )
    demo.add_argument("--database-url", help=DB_HELP)
    demo.set_defaults(handler=_run_demo)


def _run_demo(args: Any) -> int:
    import worker.bots.demo as demo

    url = database_url(args.database_url)
    code: int = asyncio.run(demo.run(url))
    return code or main([url])
