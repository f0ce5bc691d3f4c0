"""Holes in organisations — their tables, the policies that give members their reach, and
handing one over — that the security suite must catch (see ``mutants``): each is (kind,
name, SQL that opens it)."""

from __future__ import annotations

from tests.security.mutant_sql import policy

ORGANISATION_MUTANTS: list[tuple[str, str, str]] = [
    (
        "permissive select policy",
        "every user reads every organisation",
        policy("organisations", "select", "using (true)"),
    ),
    (
        "permissive select policy",
        "every user reads every organisation's members",
        policy("organisation_members", "select", "using (true)"),
    ),
    (
        "permissive select policy",
        "every user reads every organisation invitation",
        policy("organisation_invitations", "select", "using (true)"),
    ),
    (
        "permissive write policy",
        "any user may add themselves to any organisation",
        "grant insert on public.organisation_members to authenticated;"
        + policy("organisation_members", "insert", "with check (user_id = (select auth.uid()))"),
    ),
    (
        "organisation policy widened",
        "read_only members of an organisation may update its bots",
        'alter policy "Organisation members can update its bots" on public.bots '
        "using (organisation_id = any ((select private.organisation_ids())::uuid[])) "
        "with check (organisation_id = any ((select private.organisation_ids())::uuid[]));",
    ),
    (
        "organisation policy widened",
        "any user may create bots in any organisation",
        'alter policy "Organisation admins can create its bots" on public.bots '
        "with check (organisation_id is not null);",
    ),
    (
        "organisation policy widened",
        "members of an organisation may delete its strategies",
        'alter policy "Organisation admins can delete its strategies" on public.strategies '
        "using (organisation_id = any ((select private.organisation_ids())::uuid[]));",
    ),
    (
        "organisation policy dropped",
        "an organisation's API key reaches the paying owner's own bots",
        'drop policy "Organisation API keys reach only its bots" on public.bots;',
    ),
    (
        "organisation policy widened",
        "every member of an organisation reads its keys' usage",
        "create or replace function private.api_usage_key_ids() returns uuid[] "
        "language sql stable security definer set search_path = '' as $$ "
        "select coalesce(array_agg(k.id), '{}') from public.api_keys k "
        "where k.user_id = (select auth.uid()) "
        "or k.organisation_id = any (private.organisation_ids()) $$;",
    ),
    (
        "organisation policy widened",
        "the organisation members' trades policy lets every user read every trade",
        'alter policy "Organisation members can read its bots\' trades" on public.trades using (true);',
    ),
    (
        "organisation policy dropped",
        "an organisation's API key reads the paying owner's own trades",
        'drop policy "Organisation API keys reach only its trades" on public.trades;',
    ),
    (
        "organisation policy widened",
        "the organisations' bots of the members' policies are every bot, read as their owner",
        "create or replace function private.organisation_bot_ids() returns uuid[] "
        "language plpgsql stable security definer set search_path = '' "
        "as $$ begin return array(select b.id from public.bots b); end; $$;",
    ),
    (
        "organisation policy widened",
        "an organisation's API key reaches its user's own bots, read as their owner",
        "create or replace function private.organisation_key_bot_ids() returns uuid[] "
        "language plpgsql stable security definer set search_path = '' "
        "as $$ begin return array(select b.id from public.bots b "
        "where b.user_id = (select auth.uid()) "
        "or b.organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid); end; $$;",
    ),
]

HANDOVER_MUTANTS: list[tuple[str, str, str]] = [
    (
        "consent check removed from a function",
        "a hand-over puts live bots on the new owner's keys without their offer",
        """
        do $$
        declare
          v_src text := pg_get_functiondef('public.transfer_organisation_ownership(uuid, uuid)'::regprocedure);
        begin
          assert v_src like '%if not v_member.offers_exchange_keys then%';
          execute replace(v_src, 'if not v_member.offers_exchange_keys then', 'if false then');
        end;
        $$;
        """,
    ),
    (
        "owner check removed from a function",
        "a hand-over puts live bots on any key of their exchange",
        """
        do $$
        declare
          v_src text := pg_get_functiondef('public.transfer_organisation_ownership(uuid, uuid)'::regprocedure);
        begin
          assert v_src like '%where not b.is_paper_trade and c.user_id = p_new_owner_id and c.exchange = b.exchange%';
          execute replace(v_src, 'where not b.is_paper_trade and c.user_id = p_new_owner_id and c.exchange = b.exchange',
                                 'where not b.is_paper_trade and c.exchange = b.exchange');
        end;
        $$;
        """,
    ),
    (
        "owner check removed from a trigger",
        "an organisation's bot may be moved onto anyone's exchange key",
        """
        do $$
        declare
          v_src text := pg_get_functiondef('private.guard_organisation_bot_changes()'::regprocedure);
        begin
          assert v_src like '%and not exists (select 1 from public.exchange_credentials c%';
          execute replace(v_src, 'and not exists (select 1 from public.exchange_credentials c',
                                 'and false and not exists (select 1 from public.exchange_credentials c');
        end;
        $$;
        """,
    ),
]
