"""Holes in refunds and payouts that the security suite must catch (see ``mutants``): each
is (kind, name, SQL that opens it)."""

from __future__ import annotations

PAYOUT_MUTANTS: list[tuple[str, str, str]] = [
    (
        "admin policy given to every user",
        "credit_exposures",
        'alter policy "Admins can read every credit exposure" on public.credit_exposures '
        "to authenticated;",
    ),
    (
        "owner check dropped",
        "every provider reads every payout",
        'alter policy "Providers can read their own payouts" on public.payouts using (true);',
    ),
    (
        "owner check dropped",
        "every provider reads every payout destination",
        'alter policy "Providers can read their own payout destination" '
        "on public.payout_destinations using (true);",
    ),
    (
        "view switched to definer rights",
        "provider_statement",
        "alter view public.provider_statement set (security_invoker = false);",
    ),
    (
        "function execute granted",
        "authenticated may settle payouts",
        "grant execute on function public.payout_settle(uuid, text, text, text) to authenticated;",
    ),
    (
        "role check removed from a function",
        "connect_payout_destination without its provider check",
        """
        do $$
        declare
          v_src text := pg_get_functiondef('public.connect_payout_destination(text, text, text, text)'::regprocedure);
        begin
          execute replace(v_src, '<> ''provider'' then', '= ''nobody'' then');
        end;
        $$;
        """,
    ),
    (
        "owner check removed from a function",
        "request_payout from anyone's earnings",
        """
        do $$
        declare
          v_src text := pg_get_functiondef('public.request_payout(numeric, uuid, uuid, text)'::regprocedure);
        begin
          execute replace(replace(v_src, 'v_user := (select auth.uid());', 'v_user := coalesce(p_user_id, (select auth.uid()));'),
                          'or (p_user_id is not null and p_user_id <> v_user)', '');
        end;
        $$;
        """,
    ),
]
