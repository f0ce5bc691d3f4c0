-- get_user_trading_performance reports per quote currency: profits in BTC and in USDT cannot
-- be added, so the function returns one row per quote currency the user's closed trades (in
-- the window) or bots are in, with `quote_currency` naming it and the bot counts of that
-- currency; a user with neither gets one row of zeros with quote_currency null, so "no
-- activity" still reads as one row. The arguments and the caller rules are unchanged.

-- Functions ------------------------------------------------------------------------------

drop function public.get_user_trading_performance(integer, uuid);

-- get_user_trading_performance: the caller's own figures; admins and the service may ask for
-- any user. Security invoker, so RLS still decides which trades are visible.
create function public.get_user_trading_performance(days_back integer default 30, user_uuid uuid default null)
returns table (
  user_id uuid,
  quote_currency text,
  total_trades bigint,
  winning_trades bigint,
  losing_trades bigint,
  win_rate numeric,
  total_profit numeric,
  avg_profit numeric,
  best_trade numeric,
  worst_trade numeric,
  total_volume numeric,
  total_bots bigint,
  active_bots bigint
)
language plpgsql stable
set search_path = ''
as $$
declare
  v_user uuid := coalesce(user_uuid, auth.uid());
begin
  if v_user is null then
    raise exception 'get_user_trading_performance needs a signed-in user or user_uuid'
      using errcode = 'invalid_parameter_value';
  end if;
  if days_back is null or days_back < 1 or days_back > 3650 then
    raise exception 'days_back must be between 1 and 3650, got %', days_back using errcode = 'invalid_parameter_value';
  end if;
  if v_user is distinct from auth.uid() and not private.is_admin() and not private.is_service() then
    raise exception 'not allowed to read another user''s performance' using errcode = 'insufficient_privilege';
  end if;
  return query
  with t as (
    select split_part(split_part(tr.trading_pair, '/', 2), ':', 1) as quote, tr.profit,
           tr.amount * tr.price as volume
      from public.trades tr
     where tr.user_id = v_user and tr.status = 'closed'
       and tr.entry_time >= now() - make_interval(days => days_back)
  ), b as (
    select split_part(split_part(bo.trading_pair, '/', 2), ':', 1) as quote,
           count(*) as total_bots, count(*) filter (where bo.status = 'running') as active_bots
      from public.bots bo where bo.user_id = v_user
     group by 1
  ), q as (
    select t.quote from t union select b.quote from b
  ), quotes as (
    select q.quote from q
    union all
    select null::text where not exists (select 1 from q)
  )
  select v_user,
         qs.quote,
         count(t.quote),
         count(*) filter (where t.profit > 0),
         count(*) filter (where t.profit < 0),
         case when count(t.quote) > 0
              then round(count(*) filter (where t.profit > 0)::numeric / count(t.quote) * 100, 2) else 0 end,
         coalesce(sum(t.profit), 0),
         coalesce(round(avg(t.profit), 8), 0),
         coalesce(max(t.profit), 0),
         coalesce(min(t.profit), 0),
         coalesce(sum(t.volume), 0),
         coalesce(max(b.total_bots), 0),
         coalesce(max(b.active_bots), 0)
    from quotes qs
    left join t on t.quote = qs.quote
    left join b on b.quote = qs.quote
   group by qs.quote
   order by qs.quote;
end;
$$;

revoke all on function public.get_user_trading_performance(integer, uuid) from public, anon;
grant execute on function public.get_user_trading_performance(integer, uuid) to authenticated, service_role;
