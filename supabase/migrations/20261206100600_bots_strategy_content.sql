-- A strategy's content and parameters are readable by its author, its active subscribers
-- and admins only. Everyone who may see a strategy still reads its public columns from
-- the table; the rules themselves come from get_strategy_content. A material edit (rules,
-- parameters, engine or price) of a verified strategy clears its verification. Sizes are
-- bounded with named constraints.

-- Tables --------------------------------------------------------------------------------

alter table public.strategies
  add constraint strategies_content_length check (char_length(content) <= 200000) not valid,
  add constraint strategies_description_length check (char_length(description) <= 4000) not valid,
  add constraint strategies_name_length check (char_length(name) <= 200) not valid,
  add constraint strategies_parameters_object
    check (jsonb_typeof(parameters) = 'object' and pg_column_size(parameters) <= 16384) not valid,
  add constraint strategies_tags_bounded check (cardinality(tags) <= 20) not valid,
  add constraint strategies_category_length check (char_length(category) <= 100) not valid;

revoke select on public.strategies from authenticated;
grant select (id, user_id, name, description, strategy_type, engine, performance, is_public, is_verified,
              backtest_results, backtest_count, avg_backtest_return, tags, category, risk_level, monthly_price,
              provider_share, created_at, updated_at)
  on public.strategies to authenticated;
grant select on public.strategies to tradefleet_admin;

-- Functions -----------------------------------------------------------------------------

create or replace function public.get_strategy_content(p_strategy_id uuid)
returns table (id uuid, content text, parameters jsonb)
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if p_strategy_id is null then
    raise exception 'a strategy id is required' using errcode = 'not_null_violation';
  end if;
  return query
  select s.id, s.content, s.parameters
    from public.strategies s
   where s.id = p_strategy_id
     and (s.user_id = (select auth.uid())
          or private.is_admin()
          or private.is_service()
          or exists (select 1 from public.strategy_subscriptions ss
                      where ss.strategy_id = s.id and ss.subscriber_id = (select auth.uid()) and ss.status = 'active'));
  if not found then
    raise exception 'no strategy whose rules you may read' using errcode = 'insufficient_privilege';
  end if;
end;
$$;
revoke execute on function public.get_strategy_content(uuid) from public, anon;
grant execute on function public.get_strategy_content(uuid) to authenticated, service_role;

create or replace function private.strategy_material_edit() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if old.is_verified and new.is_verified
     and (new.content, new.parameters, new.engine, new.monthly_price, new.strategy_type)
         is distinct from (old.content, old.parameters, old.engine, old.monthly_price, old.strategy_type)
     and not private.is_service() then
    new.is_verified := false;
  end if;
  return new;
end;
$$;
revoke all on function private.strategy_material_edit() from public, anon, authenticated;

-- Triggers ------------------------------------------------------------------------------

create trigger strategies_material_edit before update on public.strategies
  for each row execute function private.strategy_material_edit();
