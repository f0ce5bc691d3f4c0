"""The security mutants: each opens one hole in a copy of the migrated database, and
``mutants`` checks the security suite catches it. Holes of one area live in their own
module (``mutants_audit``, ``mutants_bots``, ``mutants_organisations``,
``mutants_payouts``) as (kind, name, SQL)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.security.mutant_sql import migration_function, policy
from tests.security.mutants_audit import AUDIT_MUTANTS
from tests.security.mutants_bots import BOT_MUTANTS
from tests.security.mutants_organisations import HANDOVER_MUTANTS, ORGANISATION_MUTANTS
from tests.security.mutants_payouts import PAYOUT_MUTANTS


@dataclass(frozen=True)
class Mutant:
    """One hole: its kind, a name for this instance, and the SQL that opens it."""

    kind: str
    name: str
    sql: str


_AI_REQUEST = migration_function(
    "20261210800000_ai_analyses_requests.sql", "public.request_ai_analysis("
)
_AI_BOT_CHECK = (
    "  if p_bot_id is not null and not exists "
    "(select 1 from public.bots b where b.id = p_bot_id and b.user_id = v_uid) then\n"
    "    raise exception 'no bot of yours has id %', p_bot_id using errcode = 'insufficient_privilege';\n"
    "  end if;\n"
)
assert _AI_BOT_CHECK in _AI_REQUEST, "the mutant must remove the bot ownership check"


MUTANTS: list[Mutant] = [
    # The four holes an earlier audit opened by hand without the old matrix noticing.
    Mutant(
        "permissive write policy",
        "any user may insert any trade",
        "grant insert on public.trades to authenticated;"
        + policy("trades", "insert", "with check (true)"),
    ),
    Mutant(
        "permissive write policy",
        "any user may delete any order",
        "grant delete on public.orders to authenticated;"
        + policy("orders", "delete", "using (true)"),
    ),
    Mutant(
        "column grant widened to a fleet-owned column",
        "authenticated may update bots.current_balance",
        "grant update (current_balance) on public.bots to authenticated;",
    ),
    Mutant(
        "function execute granted",
        "authenticated may execute credit_grant",
        "grant execute on function public.credit_grant(uuid, uuid, numeric, text, text, jsonb) "
        "to authenticated;",
    ),
    # Permissive policies.
    Mutant(
        "permissive select policy",
        "every user reads every bot",
        policy("bots", "select", "using (true)"),
    ),
    Mutant(
        "permissive select policy",
        "every user reads every credit transfer",
        policy("credit_transfers", "select", "using (true)"),
    ),
    Mutant(
        "permissive select policy",
        "every user reads the latest candle of every market",
        policy("market_latest_candles", "select", "using (true)"),
    ),
    Mutant(
        "owner check dropped",
        "users read the latest candles of every market on their bots' exchanges",
        'alter policy "Users read the latest candles of their bots\' markets" '
        "on public.market_latest_candles using (exists (select 1 from public.bots b "
        "where b.exchange = market_latest_candles.exchange));",
    ),
    Mutant(
        "owner check dropped",
        "users read the price of every symbol",
        'alter policy "Users read the prices of what they hold or trade" '
        "on public.symbol_prices using (true);",
    ),
    Mutant(
        "owner check dropped",
        "every user reads every backtest report",
        'alter policy "Users can read their own backtest reports" '
        "on public.backtest_reports using (true);",
    ),
    Mutant(
        "owner check dropped",
        "every user reads every data request",
        'alter policy "Users can read their own data requests" '
        "on public.data_requests using (true);",
    ),
    Mutant(
        "permissive write policy",
        "any user may request a data download for another user",
        policy("data_requests", "insert", "with check (true)"),
    ),
    Mutant(
        "permissive write policy",
        "any user may update any notification",
        policy("notifications", "update", "using (true) with check (true)"),
    ),
    # Owner checks that look right to a counter.
    Mutant(
        "owner check inverted",
        "users read the bots of others instead of their own",
        'alter policy "Users can read their own bots" on public.bots '
        "using (user_id <> (select auth.uid()));",
    ),
    Mutant(
        "owner check dropped",
        "users update any exchange credential",
        'alter policy "Users can rename their own exchange credentials" '
        "on public.exchange_credentials using (true);",
    ),
    Mutant(
        "owner check weakened",
        "any user updates any bot (a condition that is true for every row)",
        'alter policy "Users can update their own bots" on public.bots using (user_id is not null);',
    ),
    Mutant(
        "owner check weakened",
        "any user deletes any notification",
        'alter policy "Users can delete their own notifications" on public.notifications '
        "using (user_id is not null);",
    ),
    # A select policy reduced to true on a secret-bearing table.
    Mutant(
        "select policy reduced to true on a secret-bearing table",
        "exchange_credentials",
        'alter policy "Users can read their own exchange credentials" '
        "on public.exchange_credentials using (true);",
    ),
    Mutant(
        "select policy reduced to true on a secret-bearing table",
        "brokerage_connections",
        'alter policy "Users can read their own brokerage connections" '
        "on public.brokerage_connections using (true);",
    ),
    Mutant(
        "select policy reduced to true on a secret-bearing table",
        "api_keys",
        'alter policy "Users can read their own API keys" on public.api_keys using (true);',
    ),
    Mutant(
        "column grant widened to a secret column",
        "api_keys.key_hash",
        "grant select (key_hash) on public.api_keys to authenticated;",
    ),
    Mutant(
        "permissive select policy",
        "every user reads every protective order",
        'alter policy "Users can read their own protective orders" '
        "on public.protective_orders using (true);",
    ),
    Mutant(
        "permissive select policy",
        "every user reads every position request",
        'alter policy "Users can read their own position requests" '
        "on public.position_requests using (true);",
    ),
    Mutant(
        "admin policy given to every user",
        "service_checks",
        'alter policy "Admins can read service checks" on public.service_checks to authenticated '
        "using (true);",
    ),
    # A policy given to the wrong role.
    Mutant(
        "admin policy given to every user",
        "signals",
        'alter policy "Admins can read every signal" on public.signals to authenticated;',
    ),
    Mutant(
        "admin policy given to every user",
        "invoices",
        'alter policy "Admins can read every invoice" on public.invoices to authenticated;',
    ),
    # Extra grants on tables, columns, functions and sequences.
    Mutant(
        "extra table grant",
        "authenticated may update invoices",
        "grant update on public.invoices to authenticated;",
    ),
    Mutant(
        "extra table grant",
        "anon may read webhook_events",
        "grant select on public.webhook_events to anon;",
    ),
    Mutant(
        "extra table grant",
        "authenticated may insert notifications",
        "grant insert on public.notifications to authenticated;"
        + policy("notifications", "insert", "with check (user_id = (select auth.uid()))"),
    ),
    Mutant(
        "column grant widened to a fleet-owned column",
        "authenticated may verify strategies",
        "grant update (is_verified) on public.strategies to authenticated;",
    ),
    Mutant(
        "column grant widened to a fleet-owned column",
        "authenticated may set their strategy subscription price",
        "grant update (price) on public.strategy_subscriptions to authenticated;",
    ),
    Mutant(
        "column grant widened to a fleet-owned column",
        "authenticated may choose their plan",
        "grant update (plan_id) on public.subscriptions to authenticated;",
    ),
    Mutant(
        "column grant widened to a secret column",
        "authenticated may read sealed exchange secrets",
        "grant select (sealed_secret) on public.exchange_credentials to authenticated;",
    ),
    Mutant(
        "partition reachable directly",
        "authenticated may read every user's bot logs in their partition",
        "grant usage on schema partitions to authenticated;"
        " grant select on partitions.bot_logs_default to authenticated;",
    ),
    Mutant(
        "function execute granted",
        "anon may enqueue jobs",
        "grant execute on function public.enqueue_job(text, jsonb, text, timestamptz, integer, "
        "integer, text) to anon;",
    ),
    Mutant(
        "function execute granted",
        "authenticated may create credit transfers",
        "grant execute on function public.credit_create_transfer(uuid, uuid, uuid, numeric, text, "
        "text, text, jsonb, boolean, interval) to authenticated;",
    ),
    Mutant(
        "sequence exposed",
        "a new sequence in public with Supabase's default grants",
        "create sequence public.mutant_seq;",
    ),
    Mutant(
        "sequence exposed",
        "an identity column added to a table users read",
        "alter table public.strategies add column mutant_no bigint generated by default "
        "as identity;",
    ),
    # RLS switched off.
    Mutant(
        "RLS disabled",
        "exchange_credentials",
        "alter table public.exchange_credentials disable row level security;",
    ),
    Mutant("RLS disabled", "orders", "alter table public.orders disable row level security;"),
    Mutant(
        "RLS disabled",
        "credit_transfers",
        "alter table public.credit_transfers disable row level security;",
    ),
    # Views and functions running with their owner's rights.
    Mutant(
        "view switched to definer rights",
        "bot_performance_summary",
        "alter view public.bot_performance_summary set (security_invoker = false);",
    ),
    Mutant(
        "view switched to definer rights",
        "credit_balances",
        "alter view public.credit_balances set (security_invoker = false);",
    ),
    Mutant(
        "view switched to definer rights",
        "portfolio_value",
        "alter view public.portfolio_value set (security_invoker = false);",
    ),
    Mutant(
        "function switched to definer rights",
        "latest_trades reads trades as their owner",
        "alter function public.latest_trades(integer, timestamptz) security definer;",
    ),
    Mutant(
        "definer function without its search_path",
        "subscribe_to_strategy",
        "alter function public.subscribe_to_strategy(uuid, boolean, uuid, jsonb) reset search_path;",
    ),
    Mutant(
        "definer function without its search_path",
        "credit_grant",
        "alter function public.credit_grant(uuid, uuid, numeric, text, text, jsonb) "
        "reset search_path;",
    ),
    # Role checks removed from functions.
    Mutant(
        "role check removed from a function",
        "credit_correct without its admin check",
        """
        create or replace function public.credit_correct(
          p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_reason text
        ) returns public.credit_transfers
        language plpgsql security definer set search_path = ''
        as $$
        begin
          return private.credit_apply_or_raise(
            p_id, 'transfer', p_debit_account_id, p_credit_account_id, p_amount, 'correction', null, null,
            'correction', null, jsonb_build_object('reason', p_reason, 'corrected_by', (select auth.uid())));
        end;
        $$;
        """,
    ),
    Mutant(
        "role check removed from a function",
        "rotate_tradingview_token without its provider check",
        """
        create or replace function public.rotate_tradingview_token(p_strategy_id uuid) returns text
        language plpgsql security definer set search_path = ''
        as $$
        declare
          v_token text := 'tv_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
        begin
          if not exists (select 1 from public.strategies s
                          where s.id = p_strategy_id and s.user_id = (select auth.uid())) then
            raise exception 'only the provider of strategy % can set its TradingView token', p_strategy_id
              using errcode = 'insufficient_privilege';
          end if;
          insert into private.tradingview_tokens (strategy_id, token_hash)
          values (p_strategy_id, sha256(convert_to(v_token, 'UTF8')))
          on conflict (strategy_id) do update set token_hash = excluded.token_hash, created_at = now();
          return v_token;
        end;
        $$;
        """,
    ),
    Mutant(
        "owner check removed from a function",
        "anyone may pause, resume or cancel any strategy subscription",
        """
        create or replace function private.own_strategy_subscription(p_subscription_id uuid)
        returns public.strategy_subscriptions
        language plpgsql security definer set search_path = ''
        as $$
        declare
          v_sub public.strategy_subscriptions;
        begin
          select * into v_sub from public.strategy_subscriptions s where s.id = p_subscription_id for update;
          if not found then
            raise exception 'no such subscription of yours: %', p_subscription_id using errcode = 'no_data_found';
          end if;
          return v_sub;
        end;
        $$;
        """,
    ),
    # Admin actions: the admin check, the audit log, who may make admins.
    Mutant(
        "role check removed from a function",
        "admin_retry_job without its admin check",
        """
        create or replace function public.admin_retry_job(p_job_id bigint) returns public.jobs
        language plpgsql security definer set search_path = ''
        as $$
        declare
          v_job public.jobs;
        begin
          update public.jobs j set status = 'queued', run_at = now()
           where j.id = p_job_id and (j.status in ('dead', 'cancelled') or j.last_error is not null)
          returning * into v_job;
          if not found then
            raise exception 'no retriable job %', p_job_id using errcode = 'check_violation';
          end if;
          return v_job;
        end;
        $$;
        """,
    ),
    Mutant(
        "admin check weakened",
        "require_admin trusts the token alone (a demoted admin keeps acting)",
        """
        create or replace function private.require_admin() returns uuid
        language plpgsql stable security definer set search_path = ''
        as $$
        begin
          if private.is_service() then
            return null;
          end if;
          if not private.is_admin() then
            raise exception 'only admins may do this' using errcode = 'insufficient_privilege';
          end if;
          return (select auth.uid());
        end;
        $$;
        """,
    ),
    Mutant(
        "admin check weakened",
        "admins may grant the admin role",
        """
        create or replace function public.admin_set_user_role(p_user_id uuid, p_role text, p_reason text)
        returns public.profiles language plpgsql security definer set search_path = ''
        as $$
        declare
          v_actor uuid := private.require_admin();
          v_profile public.profiles;
        begin
          if p_role is null or p_role not in ('user', 'provider', 'admin') then
            raise exception 'unknown role' using errcode = 'check_violation';
          end if;
          perform private.admin_check_reason(p_reason);
          update auth.users u set raw_app_meta_data = u.raw_app_meta_data || jsonb_build_object('role', p_role)
           where u.id = p_user_id;
          select * into v_profile from public.profiles p where p.id = p_user_id;
          if not found then
            raise exception 'no such user' using errcode = 'no_data_found';
          end if;
          return v_profile;
        end;
        $$;
        """,
    ),
    Mutant(
        "function execute granted",
        "anon may execute admin_platform_overview",
        "grant execute on function public.admin_platform_overview() to anon;",
    ),
    Mutant(
        "permissive select policy",
        "every user reads the admin audit log",
        policy("admin_audit_log", "select", "using (true)"),
    ),
    Mutant(
        "table grant widened",
        "the service role may erase admin audit rows",
        "grant delete on public.admin_audit_log to service_role;",
    ),
    # New objects left open.
    Mutant(
        "table created without RLS",
        "a table with Supabase's default grants",
        "create table public.mutant_notes (id uuid primary key, user_id uuid, note text);",
    ),
    Mutant(
        "materialized view in the API",
        "profiles copied into a materialized view",
        "create materialized view public.mutant_profiles as select id, email from public.profiles;"
        "grant select on public.mutant_profiles to authenticated;",
    ),
    Mutant(
        "auth.users exposed",
        "an invoker view over auth.users",
        "create view public.mutant_users with (security_invoker = true) as "
        "select id, email from auth.users;"
        "grant select on public.mutant_users to authenticated;",
    ),
    Mutant(
        "policy trusting user_metadata",
        "admins recognised by a claim users edit themselves",
        'alter policy "Admins can read every invoice" on public.invoices to authenticated '
        "using (((select auth.jwt()) -> 'user_metadata' ->> 'full_name') is not null);",
    ),
    Mutant(
        "extension in public",
        "pg_trgm",
        "create extension pg_trgm with schema public;",
    ),
    # AI analyses: the request RPC, the fleet's price function and the analyses' rows.
    Mutant(
        "permissive select policy",
        "every user reads every AI analysis",
        'alter policy "Users can read their own AI analyses" on public.ai_analyses using (true);',
    ),
    Mutant(
        "column grant widened to a fleet-owned column",
        "authenticated may mark their AI analysis completed and free",
        "grant update (status, credits_charged) on public.ai_analyses to authenticated;"
        + policy("ai_analyses", "update", "using (user_id = (select auth.uid()))"),
    ),
    Mutant(
        "function execute granted",
        "anon may request AI analyses",
        "grant execute on function public.request_ai_analysis(text, uuid, uuid, uuid, jsonb) to anon;",
    ),
    Mutant(
        "function execute granted",
        "authenticated may price AI tokens",
        "grant execute on function public.ai_token_price(uuid) to authenticated;",
    ),
    Mutant(
        "definer function without its search_path",
        "request_ai_analysis",
        "alter function public.request_ai_analysis(text, uuid, uuid, uuid, jsonb) reset search_path;",
    ),
    Mutant(
        "invoker function switched to definer rights",
        "apply_ai_suggestion",
        "alter function public.apply_ai_suggestion(uuid, integer) security definer;",
    ),
    Mutant(
        "caller check removed",
        "request_ai_analysis without its bot ownership check",
        _AI_REQUEST.replace(_AI_BOT_CHECK, ""),
    ),
]
MUTANTS.append(
    Mutant(
        "quota constraint dropped",
        "a retried data request key passes the monthly quota and adds a request",
        "alter table public.data_requests drop constraint data_requests_idempotency_key_unique;",
    )
)
MUTANTS += [Mutant(*m) for m in ORGANISATION_MUTANTS]
MUTANTS += [Mutant(*m) for m in BOT_MUTANTS]
MUTANTS += [Mutant(*m) for m in PAYOUT_MUTANTS]
MUTANTS += [Mutant(*m) for m in HANDOVER_MUTANTS]
MUTANTS += [Mutant(*m) for m in AUDIT_MUTANTS]
