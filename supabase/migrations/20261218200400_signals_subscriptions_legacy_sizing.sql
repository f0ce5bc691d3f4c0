-- Subscriptions whose sizing predates the sizing rule are set aside, and the rule validated.
--
-- 20261206100400_billing_agreed_price added strategy_subscriptions_sizing_valid NOT VALID,
-- leaving older rows as they were (the fan-out skips their copies as invalid_sizing). But
-- every update of a row checks it. The renewal sweep (renew_strategy_subscriptions) charges
-- the oldest due subscriptions first; charging one updates its row, and the refusal was
-- caught to expire the subscription by another update of the same row, refused again, which
-- failed the whole sweep: with that row first in line every time, no subscription of anyone
-- renewed. A provider's price change (one update of all their subscriptions) failed too.
--
-- private.subscriptions_repair_legacy_sizing() keeps such a sizing in
-- private.strategy_subscriptions_legacy_sizing, empties it and turns copying off: the
-- subscription copied nothing before (invalid_sizing) and copies nothing now until its
-- subscriber sets a sizing and turns copying on again; it renews, notifies and is billed as
-- any other. The migration runs it once and validates the rule.

-- ======================================================================================
-- Tables
-- ======================================================================================

create table private.strategy_subscriptions_legacy_sizing (
  subscription_id uuid primary key,
  sizing jsonb,
  repaired_at timestamptz not null default now()
);
revoke all on private.strategy_subscriptions_legacy_sizing from public, anon, authenticated, service_role;

-- ======================================================================================
-- Functions
-- ======================================================================================

-- Returns how many subscriptions it changed.
create or replace function private.subscriptions_repair_legacy_sizing() returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_n integer;
begin
  with bad as (
    select s.id, s.sizing from public.strategy_subscriptions s
     where not coalesce(private.sizing_is_valid(s.sizing), false)
       for update of s
  ), kept as (
    insert into private.strategy_subscriptions_legacy_sizing (subscription_id, sizing)
    select d.id, d.sizing from bad d
    on conflict (subscription_id) do nothing
  )
  update public.strategy_subscriptions s
     set sizing = '{}'::jsonb, auto_execute = false
    from bad d
   where s.id = d.id;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
revoke all on function private.subscriptions_repair_legacy_sizing() from public, anon, authenticated, service_role;

-- ======================================================================================
-- The repair, once
-- ======================================================================================

select private.subscriptions_repair_legacy_sizing();
alter table public.strategy_subscriptions validate constraint strategy_subscriptions_sizing_valid;
