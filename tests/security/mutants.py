"""Mutation testing of the security suite: open holes on purpose, check each one is caught.

Each mutant is a few statements that open one hole in a copy of the migrated database.
The security suite (Supabase's advisor lints, the identity matrix, the abuse files and the
admin actions' file under ``supabase/tests/database``) runs against every copy; a mutant no
part of it notices survives, and the command fails naming it. Run it with ``scripts/security-mutants``.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from tests.integration.test_advisor import unexpected_findings
from tests.security.mutants_audit import AUDIT_MUTANTS
from tests.security.mutants_bots import BOT_MUTANTS
from tests.security.mutants_organisations import HANDOVER_MUTANTS
from tests.security.mutants_payouts import PAYOUT_MUTANTS
from tests.support import db as support

PGTAP = support.ROOT / "supabase" / "tests" / "database"

# The cluster's address does not change during a run; asking scripts/db once is enough.
admin_url = functools.cache(support.admin_url)


@dataclass(frozen=True)
class Mutant:
    """One hole: its kind, a name for this instance, and the SQL that opens it."""

    kind: str
    name: str
    sql: str


def _policy(table: str, command: str, clause: str) -> str:
    return (
        f'create policy "Mutant {command} on {table}" on public.{table} '
        f"for {command} to authenticated {clause};"
    )


def _migration_function(path: str, signature: str) -> str:
    """The ``create or replace function`` statement of ``signature`` in a migration."""
    text = (support.ROOT / "supabase" / "migrations" / path).read_text()
    start = text.index(f"create or replace function {signature}")
    return text[start : text.index("$$;", start) + 3]


_AI_REQUEST = _migration_function(
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
        + _policy("trades", "insert", "with check (true)"),
    ),
    Mutant(
        "permissive write policy",
        "any user may delete any order",
        "grant delete on public.orders to authenticated;"
        + _policy("orders", "delete", "using (true)"),
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
        _policy("bots", "select", "using (true)"),
    ),
    Mutant(
        "permissive select policy",
        "every user reads every credit transfer",
        _policy("credit_transfers", "select", "using (true)"),
    ),
    Mutant(
        "permissive select policy",
        "every user reads the latest candle of every market",
        _policy("market_latest_candles", "select", "using (true)"),
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
        _policy("data_requests", "insert", "with check (true)"),
    ),
    Mutant(
        "permissive write policy",
        "any user may update any notification",
        _policy("notifications", "update", "using (true) with check (true)"),
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
        + _policy("notifications", "insert", "with check (user_id = (select auth.uid()))"),
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
        _policy("admin_audit_log", "select", "using (true)"),
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
        + _policy("ai_analyses", "update", "using (user_id = (select auth.uid()))"),
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
    # Organisations: their tables, and the policies that give members their reach.
    Mutant(
        "permissive select policy",
        "every user reads every organisation",
        _policy("organisations", "select", "using (true)"),
    ),
    Mutant(
        "permissive select policy",
        "every user reads every organisation's members",
        _policy("organisation_members", "select", "using (true)"),
    ),
    Mutant(
        "permissive select policy",
        "every user reads every organisation invitation",
        _policy("organisation_invitations", "select", "using (true)"),
    ),
    Mutant(
        "permissive write policy",
        "any user may add themselves to any organisation",
        "grant insert on public.organisation_members to authenticated;"
        + _policy("organisation_members", "insert", "with check (user_id = (select auth.uid()))"),
    ),
    Mutant(
        "organisation policy widened",
        "read_only members of an organisation may update its bots",
        'alter policy "Organisation members can update its bots" on public.bots '
        "using (organisation_id = any ((select private.organisation_ids())::uuid[])) "
        "with check (organisation_id = any ((select private.organisation_ids())::uuid[]));",
    ),
    Mutant(
        "organisation policy widened",
        "any user may create bots in any organisation",
        'alter policy "Organisation admins can create its bots" on public.bots '
        "with check (organisation_id is not null);",
    ),
    Mutant(
        "organisation policy widened",
        "members of an organisation may delete its strategies",
        'alter policy "Organisation admins can delete its strategies" on public.strategies '
        "using (organisation_id = any ((select private.organisation_ids())::uuid[]));",
    ),
    Mutant(
        "organisation policy dropped",
        "an organisation's API key reaches the paying owner's own bots",
        'drop policy "Organisation API keys reach only its bots" on public.bots;',
    ),
    Mutant(
        "organisation policy widened",
        "every member of an organisation reads its keys' usage",
        "create or replace function private.api_usage_key_ids() returns uuid[] "
        "language sql stable security definer set search_path = '' as $$ "
        "select coalesce(array_agg(k.id), '{}') from public.api_keys k "
        "where k.user_id = (select auth.uid()) "
        "or k.organisation_id = any (private.organisation_ids()) $$;",
    ),
    Mutant(
        "organisation policy widened",
        "the organisation members' trades policy lets every user read every trade",
        'alter policy "Organisation members can read its bots\' trades" on public.trades using (true);',
    ),
    Mutant(
        "organisation policy dropped",
        "an organisation's API key reads the paying owner's own trades",
        'drop policy "Organisation API keys reach only its trades" on public.trades;',
    ),
    Mutant(
        "organisation policy widened",
        "the organisations' bots of the members' policies are every bot, read as their owner",
        "create or replace function private.organisation_bot_ids() returns uuid[] "
        "language plpgsql stable security definer set search_path = '' "
        "as $$ begin return array(select b.id from public.bots b); end; $$;",
    ),
    Mutant(
        "organisation policy widened",
        "an organisation's API key reaches its user's own bots, read as their owner",
        "create or replace function private.organisation_key_bot_ids() returns uuid[] "
        "language plpgsql stable security definer set search_path = '' "
        "as $$ begin return array(select b.id from public.bots b "
        "where b.user_id = (select auth.uid()) "
        "or b.organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid); end; $$;",
    ),
]
MUTANTS.append(
    Mutant(
        "quota constraint dropped",
        "a retried data request key passes the monthly quota and adds a request",
        "alter table public.data_requests drop constraint data_requests_idempotency_key_unique;",
    )
)
MUTANTS += [Mutant(*m) for m in BOT_MUTANTS]
MUTANTS += [Mutant(*m) for m in PAYOUT_MUTANTS]
MUTANTS += [Mutant(*m) for m in HANDOVER_MUTANTS]
MUTANTS += [Mutant(*m) for m in AUDIT_MUTANTS]


@dataclass
class Outcome:
    mutant: Mutant
    caught: list[tuple[str, str]]
    seconds: float
    error: str = ""


def security_files() -> list[Path]:
    """The pgTAP part of the security suite, quickest first; helpers excluded (the copy has them)."""
    grants = sorted(PGTAP.glob("rls_identity_grants*.test.sql"))
    others = (
        sorted(PGTAP.glob("rls_identity_*.test.sql"))
        + sorted(PGTAP.glob("abuse_*.test.sql"))
        + [
            PGTAP / "admin.test.sql",
            PGTAP / "organisations.test.sql",
            PGTAP / "organisations_handover.test.sql",
        ]
    )
    return grants + [p for p in others if p not in grants]


def helper_files() -> list[Path]:
    return sorted(PGTAP.glob("000-*.test.sql"))


def _psql(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PGOPTIONS": "--client-min-messages=warning"},
    )


def run_pgtap(url: str, path: Path) -> str | None:
    """None when the file passes, else the first failure pg_prove reports."""
    db = url.rsplit("/", 1)[1]
    port = url.split(":")[-1].split("/")[0]
    proc = subprocess.run(
        ["pg_prove", "-v", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", db, str(path)],
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return None
    lines = (proc.stdout + proc.stderr).splitlines()
    failures = [line for line in lines if line.startswith("not ok") and "# TODO" not in line]
    errors = [line for line in lines if "ERROR:" in line]
    return (failures or errors or lines[-3:] or ["pg_prove failed"])[0]


def check(url: str, every_part: bool = False) -> list[tuple[str, str]]:
    """Run the security suite, cheapest part first: (part, why) for each part that failed.

    Stops at the first failing part unless ``every_part``.
    """
    caught: list[tuple[str, str]] = []
    findings = unexpected_findings(url, skipped="tests")
    if findings:
        caught.append(
            ("advisor", "; ".join(f"{lint}: {found[0]}" for lint, found in findings.items()))
        )
        if not every_part:
            return caught
    for path in security_files():
        failure = run_pgtap(url, path)
        if failure is not None:
            caught.append((path.name, failure))
            if not every_part:
                return caught
    return caught


def _copy(template: str, name: str) -> str:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return admin_url(name)


def _drop(name: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def build_template(run: str) -> str:
    """The migrated template plus the pgTAP helpers, once per run."""
    name = f"tf_mutants_{run}"
    url = _copy(support.ensure_template(), name)
    for path in helper_files():
        proc = _psql(url, "-o", "/dev/null", "-f", str(path))
        if proc.returncode != 0:
            raise RuntimeError(f"{path.name} did not install: {proc.stderr.strip()}")
    return name


def try_mutant(template: str, run: str, index: int, mutant: Mutant, every_part: bool) -> Outcome:
    started = time.monotonic()
    name = f"tf_mutant_{run}_{index}"
    url = _copy(template, name)
    try:
        proc = _psql(url, "-c", mutant.sql)
        if proc.returncode != 0:
            # A mutant that cannot be applied proves nothing: report it as not caught.
            return Outcome(mutant, [], 0.0, f"did not apply: {proc.stderr.strip()}")
        return Outcome(mutant, check(url, every_part), time.monotonic() - started)
    finally:
        _drop(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="security-mutants", description=__doc__)
    parser.add_argument("-j", "--jobs", type=int, default=2, help="mutants checked at once")
    parser.add_argument("-k", "--kind", help="only mutants whose kind or name contains this")
    parser.add_argument(
        "--every-part", action="store_true", help="run every part of the suite on each mutant"
    )
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.kind or args.kind in m.kind or args.kind in m.name]

    started = time.monotonic()
    support.ensure_platform()
    run = uuid.uuid4().hex[:8]
    template = build_template(run)
    try:
        baseline = f"tf_mutant_{run}_baseline"
        try:
            failing = check(_copy(template, baseline), every_part=True)
        finally:
            _drop(baseline)
        if failing:
            print(f"security-mutants: the suite fails without any mutant: {failing}")
            return 2
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(
                pool.map(
                    lambda im: try_mutant(template, run, im[0], im[1], args.every_part),
                    enumerate(mutants),
                )
            )
    finally:
        _drop(template)

    for o in outcomes:
        label = f"{o.mutant.kind}: {o.mutant.name}"
        if o.caught:
            print(f"caught    {label} ({o.seconds:.1f}s)")
            for part, why in o.caught:
                print(f"            by {part}: {why}")
        else:
            print(f"SURVIVED  {label} {o.error}".rstrip())
    caught = sum(1 for o in outcomes if o.caught)
    kinds = len({m.kind for m in mutants})
    print(f"security-mutants: {kinds} kinds, {time.monotonic() - started:.0f}s")
    print(
        f"security-mutants: mutants={len(outcomes)} caught={caught} survived={len(outcomes) - caught}"
    )
    return 0 if caught == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
