"""Holes in who decides a bot's status that the security suite must catch (see
``mutants``): each is (kind, name, SQL that opens it)."""

from __future__ import annotations

from tests.security.mutant_sql import rewrite


def narrowed(trigger: str, when: str, function: str) -> str:
    """``trigger`` (before update on ``public.bots``) firing only ``when``: a guard skipped
    for a change of a column it compares."""
    return f"""
    drop trigger {trigger} on public.bots;
    create trigger {trigger} before update on public.bots
      for each row when ({when}) execute function {function}();
    """


BOT_MUTANTS: list[tuple[str, str, str]] = [
    (
        "platform rule removed from a function",
        "an owner's running overrides a daily loss pause waiting for the worker",
        rewrite(
            "private.bots_pause_settles_close()",
            "new.pause_cause := 'daily_loss';",
            "null;",
        ),
    ),
    (
        "platform rule removed from a function",
        "an owner's running overrides a platform pause waiting for the worker",
        rewrite(
            "private.bots_running_overrides_pause()",
            "if old.pause_cause is not null then",
            "if false then",
        ),
    ),
    (
        "last request rule removed from a function",
        "an owner's running leaves a stop waiting for the worker in place",
        rewrite(
            "private.bots_running_overrides_pause()",
            "r.status in ('pending', 'working') and r.stop_after;",
            "r.status in ('pending', 'working') and r.stop_after and r.stop_status is not null;",
        ),
    ),
    (
        "last request rule removed from a function",
        "a worker's settled stop or pause wins over the owner's later running",
        rewrite(
            "private.bots_pause_settles_close()",
            "if exists (select 1 from public.position_requests r",
            "if true or exists (select 1 from public.position_requests r",
        ),
    ),
    (
        "guard skipped by its trigger's when clause",
        "a bot goes live without two-factor authentication (is_paper_trade not watched)",
        narrowed(
            "bots_guard_changes_on_update",
            "old.status is distinct from new.status",
            "private.guard_bot_changes",
        ),
    ),
    (
        "guard skipped by its trigger's when clause",
        "a live bot's stake changes without two-factor authentication (stake not watched)",
        narrowed(
            "bots_platform_rules_on_update",
            "old.status is distinct from new.status"
            " or (new.leverage, new.exchange, new.trading_pair, new.timeframe,"
            " new.exchange_credential_id, new.stop_loss, new.take_profit, new.risk_percentage,"
            " new.daily_loss_limit, new.max_open_trades, new.allow_short, new.strategy,"
            " new.strategy_id, new.parameters, new.metadata -> 'sizing') is distinct from"
            " (old.leverage, old.exchange, old.trading_pair, old.timeframe,"
            " old.exchange_credential_id, old.stop_loss, old.take_profit, old.risk_percentage,"
            " old.daily_loss_limit, old.max_open_trades, old.allow_short, old.strategy,"
            " old.strategy_id, old.parameters, old.metadata -> 'sizing')",
            "private.bot_rules",
        ),
    ),
    (
        "guard skipped by its trigger's when clause",
        "an organisation member changes a bot's settings (only strategy and key watched)",
        narrowed(
            "bots_guard_organisation_changes",
            "new.strategy_id is distinct from old.strategy_id"
            " or new.exchange_credential_id is distinct from old.exchange_credential_id",
            "private.guard_organisation_bot_changes",
        ),
    ),
]
