"""Holes in handing an organisation over that the security suite must catch (see
``mutants``): each is (kind, name, SQL that opens it)."""

from __future__ import annotations

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
