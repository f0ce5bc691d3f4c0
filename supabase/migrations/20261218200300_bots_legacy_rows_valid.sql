-- Bots written before their settings were bounded are brought within the rules, and the
-- rules validated.
--
-- 20261206100500_bots_platform_rules added seven checks on bots NOT VALID ("rows written
-- before these rules are left as they are; every new write is checked"). But every update
-- of a row checks it, the fleet's included: a bot whose name had 300 characters could not
-- be stopped by its owner, written by its worker (progress, status, error) or have its
-- statistics moved by a closed trade. A signal's close fan-out closes every subscriber's
-- copy in one statement, whose statistics trigger updates every copying bot: one such bot
-- failed the close of the signal for every subscriber (bots_name_length), on every retry.
--
-- private.bots_repair_legacy_rows() brings such rows within the rules, keeping every value
-- it changes in private.bots_legacy_values (bot, field, the value as it was): a name or a
-- status reason is cut to its bound; a metadata key the engine does not know the value of
-- (sizing, paper_fee, paper_slippage, paper_volume_share) is removed, so the engine's
-- default applies; a metadata or parameters value that is not a JSON object, or is larger
-- than 16 KB, becomes an empty object. The migration runs it with the table's triggers off
-- (they would check the owners' rights and the markets; the rows are only made valid) and
-- then validates the seven checks, so no row can stop another's write again.

-- ======================================================================================
-- Tables
-- ======================================================================================

create table private.bots_legacy_values (
  bot_id uuid not null,
  field text not null,
  value jsonb,
  repaired_at timestamptz not null default now(),
  primary key (bot_id, field)
);
revoke all on private.bots_legacy_values from public, anon, authenticated, service_role;

-- ======================================================================================
-- Functions
-- ======================================================================================

-- Returns how many bots it changed.
create or replace function private.bots_repair_legacy_rows() returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_n integer;
begin
  with bad as (
    select b.id, b.name, b.status_reason, b.metadata, b.parameters,
           char_length(b.name) > 200 as long_name,
           coalesce(char_length(b.status_reason) > 2000, false) as long_reason,
           not coalesce(jsonb_typeof(b.parameters) = 'object' and pg_column_size(b.parameters) <= 16384, false)
             as bad_parameters,
           not coalesce(jsonb_typeof(b.metadata) = 'object' and pg_column_size(b.metadata) <= 16384, false)
             as bad_metadata
      from public.bots b
     where char_length(b.name) > 200
        or coalesce(char_length(b.status_reason) > 2000, false)
        or not coalesce(jsonb_typeof(b.parameters) = 'object' and pg_column_size(b.parameters) <= 16384, false)
        or not coalesce(jsonb_typeof(b.metadata) = 'object' and pg_column_size(b.metadata) <= 16384, false)
        or coalesce(b.metadata ->> 'sizing', 'stake') not in ('stake', 'risk', 'unlimited')
        or (b.metadata ? 'paper_fee'
            and not coalesce(private.sizing_number(b.metadata -> 'paper_fee') between 0 and 0.5, false))
        or (b.metadata ? 'paper_slippage'
            and not coalesce(private.sizing_number(b.metadata -> 'paper_slippage') between 0 and 0.5, false))
        or (b.metadata ? 'paper_volume_share'
            and not coalesce(private.sizing_number(b.metadata -> 'paper_volume_share') > 0
                             and private.sizing_number(b.metadata -> 'paper_volume_share') <= 1, false))
       for update of b
  ), fixed as (
    select d.id, d.name as old_name, d.status_reason as old_status_reason, d.parameters as old_parameters,
           d.metadata as old_metadata,
           case when d.long_name then left(d.name, 200) else d.name end as name,
           case when d.long_reason then left(d.status_reason, 2000) else d.status_reason end as status_reason,
           case when d.bad_parameters then '{}'::jsonb else d.parameters end as parameters,
           case when d.bad_metadata then '{}'::jsonb
                else d.metadata - array_remove(array[
                       case when coalesce(d.metadata ->> 'sizing', 'stake') not in ('stake', 'risk', 'unlimited')
                            then 'sizing' end,
                       case when d.metadata ? 'paper_fee'
                             and not coalesce(private.sizing_number(d.metadata -> 'paper_fee') between 0 and 0.5, false)
                            then 'paper_fee' end,
                       case when d.metadata ? 'paper_slippage'
                             and not coalesce(private.sizing_number(d.metadata -> 'paper_slippage') between 0 and 0.5, false)
                            then 'paper_slippage' end,
                       case when d.metadata ? 'paper_volume_share'
                             and not coalesce(private.sizing_number(d.metadata -> 'paper_volume_share') > 0
                                              and private.sizing_number(d.metadata -> 'paper_volume_share') <= 1, false)
                            then 'paper_volume_share' end], null)
           end as metadata
      from bad d
  ), kept as (
    insert into private.bots_legacy_values (bot_id, field, value)
    select f.id, v.field, v.value
      from fixed f
     cross join lateral (values ('name', case when f.name is distinct from f.old_name then to_jsonb(f.old_name) end),
                                ('status_reason', case when f.status_reason is distinct from f.old_status_reason
                                                       then to_jsonb(f.old_status_reason) end),
                                ('parameters', case when f.parameters is distinct from f.old_parameters
                                                    then coalesce(f.old_parameters, 'null'::jsonb) end),
                                ('metadata', case when f.metadata is distinct from f.old_metadata
                                                  then coalesce(f.old_metadata, 'null'::jsonb) end)) v(field, value)
     where v.value is not null
    on conflict (bot_id, field) do nothing
  )
  update public.bots b
     set name = f.name, status_reason = f.status_reason, parameters = f.parameters, metadata = f.metadata
    from fixed f
   where b.id = f.id;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
revoke all on function private.bots_repair_legacy_rows() from public, anon, authenticated, service_role;

-- ======================================================================================
-- The repair, once
-- ======================================================================================

alter table public.bots disable trigger user;
select private.bots_repair_legacy_rows();
alter table public.bots enable trigger user;

alter table public.bots validate constraint bots_name_length;
alter table public.bots validate constraint bots_status_reason_length;
alter table public.bots validate constraint bots_parameters_object;
alter table public.bots validate constraint bots_metadata_object;
alter table public.bots validate constraint bots_metadata_sizing_known;
alter table public.bots validate constraint bots_metadata_paper_costs;
alter table public.bots validate constraint bots_metadata_paper_volume_share_range;
