"""Holes an audit of copy trading found that the security suite must catch (see
``mutants``): each is (kind, name, SQL that opens it)."""

from __future__ import annotations

from tests.security.mutant_sql import rewrite

AUDIT_MUTANTS: list[tuple[str, str, str]] = [
    (
        "size bound removed from a function",
        "one subscriber's copy too large for an order stops the whole fan-out (amount kept)",
        rewrite(
            "public.signal_fan_out(uuid, text)",
            "case when c.amount < 1e16 then c.amount end",
            "c.amount",
        ),
    ),
    (
        "size bound removed from a function",
        "one subscriber's copy too large for an order stops the whole fan-out (copy not skipped)",
        rewrite(
            "public.signal_fan_out(uuid, text)",
            "when c.amount is null or c.amount <= 0 or c.amount >= 1e16 then 'invalid_sizing'",
            "when c.amount is null or c.amount <= 0 then 'invalid_sizing'",
        ),
    ),
    (
        "saturation removed from a function",
        "a bot whose balance cannot grow stops a signal's close for every subscriber",
        """
        create or replace function private.apply_bot_stat_deltas(
          p_bot uuid[], p_total bigint[], p_win bigint[], p_loss bigint[], p_profit numeric[], p_last timestamptz[]
        ) returns void
        language sql
        set search_path = ''
        as $$
          update public.bots b
             set total_trades = b.total_trades + d.d_total,
                 winning_trades = b.winning_trades + d.d_win,
                 losing_trades = b.losing_trades + d.d_loss,
                 profit = b.profit + d.d_profit,
                 current_balance = b.initial_balance + b.profit + d.d_profit,
                 profit_percentage = round((b.profit + d.d_profit) / b.initial_balance * 100, 4),
                 last_trade_at = greatest(b.last_trade_at, d.last_at)
            from unnest(p_bot, p_total, p_win, p_loss, p_profit, p_last)
                 as d(bot_id, d_total, d_win, d_loss, d_profit, last_at)
           where b.id = d.bot_id
        $$;
        """,
    ),
    (
        "market rule removed from a function",
        "a provider publishes an entry the market never traded at, writing their own wins",
        rewrite(
            "private.signal_lifecycle()",
            "if v_low is not null and (new.entry_price < v_low or new.entry_price > v_high) then",
            "if false then",
        ),
    ),
    (
        "saturation removed from a function",
        "one subscriber's copy whose profit no trade holds stops a signal's close for everyone",
        rewrite(
            "private.signal_fan_out_close(public.signals, text)",
            "'profit', least(greatest(x.profit, -v_max), v_max)",
            "'profit', x.profit",
        ),
    ),
    (
        "market rule removed from a function",
        "a provider's entry the market never traded at makes the result of his signal's close",
        rewrite(
            "private.signal_lifecycle()",
            "v_entry := greatest(least(v_entry, v_high), v_low);",
            "null;",
        ),
    ),
    (
        "ledger rule removed from a function",
        "a user stops his bot to get back the credits held for an order that may still fill",
        rewrite(
            "private.bot_void_idle_holds()",
            "and o.status in ('pending', 'open', 'closed'))",
            "and false)",
        ),
    ),
    (
        "money check removed from a function",
        "a hand-over leaves a resting entry whose fill the old owner's credit hold pays",
        rewrite(
            "public.transfer_organisation_ownership(uuid, uuid)",
            "where b.organisation_id = p_organisation_id and o.status in ('pending', 'open')",
            "where false",
        ),
    ),
    (
        "market rule widened in a function",
        "a provider enters at the day's low in hindsight, writing their own wins",
        rewrite(
            "private.signal_lifecycle()",
            "from private.market_range(new.pair, now() - interval '1 hour') r;",
            "from private.market_range(new.pair, now() - interval '1 day') r;",
        ),
    ),
    (
        "market rule widened in a function",
        "a provider exits at a price from before the signal was published",
        rewrite(
            "private.signal_lifecycle()",
            "from private.market_range(new.pair, old.created_at - interval '5 minutes') r;",
            "from private.market_range(new.pair, old.created_at - interval '1 day') r;",
        ),
    ),
    (
        "rate limit removed",
        "a provider changes a signal as often as they like, notifying every subscriber each time",
        "drop trigger signals_update_rate_limit on public.signals;",
    ),
    (
        "rate limit removed",
        "an API key's user makes as many requests as they like (the bucket always fits)",
        rewrite(
            "public.api_authorize(text, text, inet, jsonb)",
            "where b.bucket = v_key.bucket and greatest(b.tat, v_now) + v_t <= v_now + interval '1 minute'",
            "where b.bucket = v_key.bucket",
        ),
    ),
    (
        "key rule removed",
        "API keys written without their rules (scopes, owner, environment, name)",
        "drop trigger api_keys_checks on public.api_keys;",
    ),
    (
        "key rule removed",
        "an organisation's API key takes scopes beyond the bots'",
        rewrite(
            "private.api_keys_check()",
            "when not (new.organisation_id is null or new.scopes <@ array['bots:read', 'bots:write', 'trades:read'])",
            "when false",
        ),
    ),
]
