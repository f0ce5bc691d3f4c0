"""Supabase's database advisor as a test.

The lints of splinter (the advisor behind the dashboard's Security and Performance
Advisors), ported query by query in ``advisor_lints.sql``, run against the migrated schema.
A finding fails the test unless it is listed in ``INTENTIONAL`` with the reason it stays.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support import db as support

LINTS_SQL = Path(__file__).with_name("advisor_lints.sql")

# The schemas PostgREST exposes (supabase/config.toml, [api] schemas).
EXPOSED_SCHEMAS = "public"

# splinter's list of platform schemas that no lint reports on (the same in every lint).
SKIPPED_SCHEMAS = ",".join(
    [
        "_timescaledb_cache",
        "_timescaledb_catalog",
        "_timescaledb_config",
        "_timescaledb_internal",
        "auth",
        "cron",
        "extensions",
        "graphql",
        "graphql_public",
        "information_schema",
        "net",
        "pgmq",
        "pgroonga",
        "pgsodium",
        "pgsodium_masks",
        "pgtle",
        "pgbouncer",
        "pg_catalog",
        "realtime",
        "repack",
        "storage",
        "supabase_functions",
        "supabase_migrations",
        "tiger",
        "topology",
        "vault",
    ]
)

# The advisor's categories this test must keep covering.
REQUIRED_LINTS = {
    "unindexed_foreign_keys",
    "auth_users_exposed",
    "auth_rls_initplan",
    "no_primary_key",
    "multiple_permissive_policies",
    "policy_exists_rls_disabled",
    "rls_enabled_no_policy",
    "duplicate_index",
    "security_definer_view",
    "function_search_path_mutable",
    "rls_disabled_in_public",
    "extension_in_public",
    "rls_references_user_metadata",
    "materialized_view_in_api",
    "foreign_table_in_api",
    "sensitive_columns_exposed",
    "rls_policy_always_true",
    "anon_security_definer_function_executable",
    "authenticated_security_definer_function_executable",
}

_READ_BY_AUDIENCE = (
    "one select policy per audience (owner, subscriber, provider, admin), each named as a "
    "sentence and backed by its own index; merging them into one OR would read worse and "
    "let a change for one audience touch the others"
)
_APP_RPC = (
    "an RPC apps call with the user's JWT; security definer because it writes rows the "
    "caller cannot write directly, and it checks the caller itself (identity matrix: "
    "rls_identity_grants.test.sql calls it as every role)"
)
_APP_READ = (
    "an RPC apps call with the user's JWT; security definer because it returns only the columns "
    "the caller may see (strategy rules, a provider's subscribers), which row policies cannot "
    "narrow by column, and it checks the caller itself (rls_identity_grants.test.sql)"
)
_ADMIN_RPC = (
    "an admin action or read the console calls with the admin's JWT; security definer because "
    "it writes the audit log (and rows) nobody writes directly, or reads the whole platform; "
    "private.require_admin refuses everyone else (admin.test.sql, rls_identity_grants.test.sql)"
)

_ORGANISATION_AUDIENCE = (
    "the owner's policy and the organisation members' policy (by role, through the indexed "
    "membership table) are separate audiences, each named as a sentence; an organisation "
    "change never touches the owner's policy (organisations.test.sql covers every role)"
)

# Findings that stay, by lint, with the reason.
INTENTIONAL: dict[str, dict[str, str]] = {
    "multiple_permissive_policies": {
        **{
            f"multiple_permissive_policies_public_{table}_authenticated_SELECT": _READ_BY_AUDIENCE
            for table in ("signal_executions", "signals", "strategies", "strategy_subscriptions")
        },
        **{
            f"multiple_permissive_policies_public_{table}_authenticated_{command}": (
                _ORGANISATION_AUDIENCE
            )
            for table, command in (
                ("api_keys", "SELECT"),
                ("bot_logs", "SELECT"),
                ("bots", "DELETE"),
                ("bots", "INSERT"),
                ("bots", "SELECT"),
                ("bots", "UPDATE"),
                ("orders", "SELECT"),
                ("position_requests", "SELECT"),
                ("protective_orders", "SELECT"),
                ("strategies", "DELETE"),
                ("strategies", "INSERT"),
                ("strategies", "UPDATE"),
                ("trades", "SELECT"),
            )
        },
    },
    "authenticated_security_definer_function_executable": {
        f"authenticated_security_definer_function_executable_public_{signature}": reason
        for signature, reason in (
            ("accept_organisation_invitation_p_invitation_id uuid", _APP_RPC),
            ("accept_strategy_price_p_subscription_id uuid", _APP_RPC),
            ("billing_cancel_at_period_end_p_cancel boolean", _APP_RPC),
            ("billing_start_trial_p_plan_id uuid", _APP_RPC),
            (
                "create_organisation_api_key_p_organisation_id uuid, p_name text, "
                "p_scopes text[], p_expires_at timestamp with time zone, p_environment text",
                _APP_RPC,
            ),
            ("create_organisation_p_name text", _APP_RPC),
            ("decline_organisation_invitation_p_invitation_id uuid", _APP_RPC),
            ("delete_organisation_p_organisation_id uuid", _APP_RPC),
            (
                "invite_to_organisation_p_organisation_id uuid, p_email text, p_role text",
                _APP_RPC,
            ),
            ("leave_organisation_p_organisation_id uuid", _APP_RPC),
            ("remove_organisation_member_p_organisation_id uuid, p_user_id uuid", _APP_RPC),
            ("revoke_organisation_invitation_p_invitation_id uuid", _APP_RPC),
            (
                "transfer_organisation_ownership_p_organisation_id uuid, p_new_owner_id uuid",
                _APP_RPC,
            ),
            (
                "offer_exchange_keys_to_organisation_p_organisation_id uuid, p_offer boolean",
                _APP_RPC,
            ),
            (
                "set_organisation_member_role_p_organisation_id uuid, p_user_id uuid, p_role text",
                _APP_RPC,
            ),
            ("admin_credit_audit_", _ADMIN_RPC),
            ("admin_resolve_credit_exposure_p_id uuid, p_status text, p_reason text", _ADMIN_RPC),
            ("admin_review_payout_p_payout_id uuid, p_approve boolean, p_reason text", _ADMIN_RPC),
            ("admin_discard_job_p_job_id bigint, p_reason text", _ADMIN_RPC),
            ("admin_platform_overview_", _ADMIN_RPC),
            ("admin_replay_webhook_event_p_event_id uuid, p_reason text", _ADMIN_RPC),
            ("admin_retry_job_p_job_id bigint", _ADMIN_RPC),
            ("admin_service_health_", _ADMIN_RPC),
            ("admin_set_user_role_p_user_id uuid, p_role text, p_reason text", _ADMIN_RPC),
            (
                "admin_verify_strategy_p_strategy_id uuid, p_verified boolean, p_reason text",
                _ADMIN_RPC,
            ),
            ("cancel_strategy_subscription_p_subscription_id uuid", _APP_RPC),
            (
                "request_ai_analysis_p_type text, p_bot_id uuid, p_strategy_id uuid, "
                "p_backtest_run_id uuid, p_input jsonb",
                _APP_RPC,
            ),
            (
                "create_api_key_p_name text, p_scopes text[], p_expires_at timestamp with time zone, "
                "p_environment text",
                _APP_RPC,
            ),
            (
                "close_position_p_trade_id uuid, p_is_paper_trade boolean, p_order_type text, "
                "p_limit_price private.finite_number, p_timeout_s integer, p_on_timeout text, "
                "p_idempotency_key text, p_pair text, p_amount private.finite_number, "
                "p_fraction private.finite_number",
                _APP_RPC,
            ),
            (
                "credit_correct_p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, "
                "p_amount numeric, p_reason text",
                _APP_RPC,
            ),
            (
                "connect_payout_destination_p_provider text, p_currency text, p_bank_code text, "
                "p_account_number text",
                _APP_RPC,
            ),
            ("credit_min_payout_", _APP_RPC),
            ("credit_request_payout_p_amount numeric, p_id uuid, p_user_id uuid", _APP_RPC),
            ("get_strategy_content_p_strategy_id uuid", _APP_READ),
            ("get_strategy_subscribers_p_strategy_id uuid", _APP_READ),
            (
                "manual_trade_p_bot_id uuid, p_is_paper_trade boolean, p_side text, "
                "p_amount private.finite_number, p_stake private.finite_number, "
                "p_idempotency_key text, p_pair text",
                _APP_RPC,
            ),
            ("pause_strategy_subscription_p_subscription_id uuid", _APP_RPC),
            (
                "request_payout_p_amount numeric, p_id uuid, p_user_id uuid, p_source text",
                _APP_RPC,
            ),
            ("revoke_api_key_p_id uuid", _APP_RPC),
            ("resume_strategy_subscription_p_subscription_id uuid", _APP_RPC),
            ("rotate_tradingview_token_p_strategy_id uuid", _APP_RPC),
            ("stop_bot_p_bot_id uuid, p_positions text", _APP_RPC),
            (
                "subscribe_to_strategy_p_strategy_id uuid, p_auto_execute boolean, p_bot_id uuid, "
                "p_sizing jsonb",
                _APP_RPC,
            ),
        )
    },
}


def load_lints() -> dict[str, str]:
    """The named queries of advisor_lints.sql, by lint name."""
    parts = re.split(r"^-- name: (\S+)\n", LINTS_SQL.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


LINTS = load_lints()


def findings(conn: psycopg.Connection[tuple[str]], lint: str, skipped: str = "") -> list[str]:
    """What one lint reports on the database behind ``conn`` (``skipped``: more schemas to skip)."""
    conn.execute(
        "select set_config('pgrst.db_schemas', %s, false), "
        "set_config('advisor.skipped_schemas', %s, false)",
        (EXPOSED_SCHEMAS, ",".join(filter(None, [SKIPPED_SCHEMAS, skipped]))),
    )
    return sorted(row[0] for row in conn.execute(LINTS[lint]).fetchall())


def unexpected_findings(url: str, skipped: str = "") -> dict[str, list[str]]:
    """Every finding not listed as intentional, by lint (empty when the schema is clean)."""
    with psycopg.connect(url, autocommit=True) as conn:
        result = {
            lint: [f for f in findings(conn, lint, skipped) if f not in INTENTIONAL.get(lint, {})]
            for lint in sorted(LINTS)
        }
    return {lint: found for lint, found in result.items() if found}


@pytest.fixture(scope="module")
def advisor_conn(template_db: str) -> Iterator[psycopg.Connection[tuple[str]]]:
    with (
        support.cloned_database(template_db) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        yield conn


def test_every_advisor_category_is_ported() -> None:
    assert REQUIRED_LINTS <= set(LINTS)
    assert set(INTENTIONAL) <= set(LINTS)


@pytest.mark.parametrize("lint", sorted(LINTS))
def test_advisor_lint_finds_nothing_unintended(
    advisor_conn: psycopg.Connection[tuple[str]], lint: str
) -> None:
    unintended = [f for f in findings(advisor_conn, lint) if f not in INTENTIONAL.get(lint, {})]
    assert unintended == []


def test_the_lints_see_what_they_look_for(advisor_conn: psycopg.Connection[tuple[str]]) -> None:
    """The ported queries are live: a table with RLS off and a definer view are reported."""
    with advisor_conn.transaction(force_rollback=True):
        advisor_conn.execute("create table public.advisor_probe (id int)")
        advisor_conn.execute("grant select on public.advisor_probe to anon")
        advisor_conn.execute(
            "create view public.advisor_probe_view as select id from public.advisor_probe"
        )
        advisor_conn.execute("grant select on public.advisor_probe_view to authenticated")
        assert findings(advisor_conn, "rls_disabled_in_public") == [
            "rls_disabled_in_public_public_advisor_probe"
        ]
        assert findings(advisor_conn, "no_primary_key") == ["no_primary_key_public_advisor_probe"]
        assert findings(advisor_conn, "security_definer_view") == [
            "security_definer_view_public_advisor_probe_view"
        ]
