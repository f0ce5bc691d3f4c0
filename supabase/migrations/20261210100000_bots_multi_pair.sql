-- Multi-pair bots: a bot trades an ordered list of pairs (`pairs`); `trading_pair` stays its
-- first pair, so single-pair bots, the per-market index and every reader of `trading_pair`
-- keep working. An array on the bot row (not a child table) keeps one row per bot: RLS,
-- leases, epochs and the runner's load stay per bot, and the list's order is the order
-- in which entries decided on the same close take the free slots of `max_open_trades`.

-- Tables ---------------------------------------------------------------------------------

alter table public.bots add column pairs text[];

-- Multi-pair bots trade long only (a reversal across shared slots has no defined order).
alter table public.bots add constraint bots_multi_pair_long_only
  check (pairs is null or cardinality(pairs) = 1 or not allow_short);

-- Sizing 'unlimited' (freqtrade's unlimited stake): the available balance divided by the
-- free slots (max_open_trades - open trades) at each entry.
alter table public.bots drop constraint bots_metadata_sizing_known;
alter table public.bots add constraint bots_metadata_sizing_known
  check (coalesce(metadata ->> 'sizing', 'stake') in ('stake', 'risk', 'unlimited')) not valid;

comment on column public.bots.pairs is
  'The pairs a multi-pair bot trades, in order (first = trading_pair, 1 to 20, no repeats); null: trading_pair only.';

-- RLS ------------------------------------------------------------------------------------

grant insert (pairs), update (pairs) on public.bots to authenticated;

-- Functions ------------------------------------------------------------------------------

-- Replace the cache of one exchange with a load_markets() result (a JSON object of unified
-- symbol -> ccxt market). Markets missing from it are kept, inactive and delisted. Running
-- bots the new definitions no longer admit (see bot_market_rules) stop with that reason when
-- they hold no open trade; those holding one keep running so the fleet manages the position
-- to its exit, and stop at their next entry (the engine refuses it by the same rules).
-- Returns the number of markets stored.
create or replace function public.exchange_markets_store(p_exchange text, p_markets jsonb,
                                                          p_fetched_at timestamptz default now())
returns integer
language plpgsql security definer
set search_path = ''
as $$
declare
  v_n integer;
begin
  if not private.is_service() then
    raise exception 'only the fleet stores market definitions' using errcode = 'insufficient_privilege';
  end if;
  if p_exchange is null or p_exchange !~ '^[a-z0-9]{2,32}$' then
    raise exception 'exchange must be a ccxt exchange id, got %', coalesce(p_exchange, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  if p_markets is null or jsonb_typeof(p_markets) <> 'object' then
    raise exception 'markets must be a JSON object of symbol to market' using errcode = 'invalid_parameter_value';
  end if;
  if p_fetched_at is null then
    raise exception 'fetched_at is required' using errcode = 'invalid_parameter_value';
  end if;

  with incoming as (
    select e.key as symbol, e.value as m
      from jsonb_each(p_markets) e
     where jsonb_typeof(e.value) = 'object'
  )
  insert into public.exchange_markets as x (exchange, symbol, market_id, base, quote, settle, type, active,
                                            contract, linear, inverse, contract_size, amount_precision,
                                            price_precision, min_amount, max_amount, min_cost, max_cost,
                                            min_price, max_price, max_leverage, maker, taker, market,
                                            delisted_at, fetched_at)
  select p_exchange, i.symbol, i.m ->> 'id', coalesce(i.m ->> 'base', split_part(i.symbol, '/', 1)),
         coalesce(i.m ->> 'quote', split_part(split_part(i.symbol, '/', 2), ':', 1)), i.m ->> 'settle',
         case when i.m ->> 'type' in ('spot', 'margin', 'swap', 'future', 'option') then i.m ->> 'type' else 'spot' end,
         coalesce((i.m -> 'active') <> 'false'::jsonb, true),
         coalesce((i.m -> 'contract') = 'true'::jsonb, false),
         case jsonb_typeof(i.m -> 'linear') when 'boolean' then (i.m ->> 'linear')::boolean end,
         case jsonb_typeof(i.m -> 'inverse') when 'boolean' then (i.m ->> 'inverse')::boolean end,
         private.sizing_number(i.m -> 'contractSize'),
         private.sizing_number(i.m #> '{precision,amount}'),
         private.sizing_number(i.m #> '{precision,price}'),
         private.sizing_number(i.m #> '{limits,amount,min}'),
         private.sizing_number(i.m #> '{limits,amount,max}'),
         private.sizing_number(i.m #> '{limits,cost,min}'),
         private.sizing_number(i.m #> '{limits,cost,max}'),
         private.sizing_number(i.m #> '{limits,price,min}'),
         private.sizing_number(i.m #> '{limits,price,max}'),
         private.sizing_number(i.m #> '{limits,leverage,max}'),
         private.sizing_number(i.m -> 'maker'),
         private.sizing_number(i.m -> 'taker'),
         i.m, null, p_fetched_at
    from incoming i
  on conflict (exchange, symbol) do update
     set market_id = excluded.market_id, base = excluded.base, quote = excluded.quote,
         settle = excluded.settle, type = excluded.type, active = excluded.active,
         contract = excluded.contract, linear = excluded.linear, inverse = excluded.inverse,
         contract_size = excluded.contract_size, amount_precision = excluded.amount_precision,
         price_precision = excluded.price_precision, min_amount = excluded.min_amount,
         max_amount = excluded.max_amount, min_cost = excluded.min_cost, max_cost = excluded.max_cost,
         min_price = excluded.min_price, max_price = excluded.max_price,
         max_leverage = excluded.max_leverage, maker = excluded.maker, taker = excluded.taker,
         market = excluded.market, delisted_at = null, fetched_at = excluded.fetched_at;
  get diagnostics v_n = row_count;

  update public.exchange_markets x
     set active = false, delisted_at = coalesce(x.delisted_at, p_fetched_at)
   where x.exchange = p_exchange
     and not p_markets ? x.symbol;

  insert into public.exchange_market_loads as l (exchange, loaded_at, markets, last_error)
  values (p_exchange, p_fetched_at, v_n, null)
  on conflict (exchange) do update
     set loaded_at = excluded.loaded_at, markets = excluded.markets, last_error = null;

  -- Running bots the new definitions no longer admit (inactive or delisted market, stake
  -- below the minimum order value, leverage above the maximum), with the save rules' words,
  -- every refused pair of a multi-pair bot named in its list's order. A bot stops only when
  -- it holds no open trade and none of its pairs can trade; otherwise it keeps running: its
  -- open positions stay managed, the refused pairs take no new entries, the others trade.
  with refused_pairs as (
    select b.id, p.ord, cardinality(coalesce(b.pairs, array[b.trading_pair])) as n_pairs,
           case
             when not x.active and x.delisted_at is null then
               format('the market %s on %s is not active: no new entries', p.pair, b.exchange)
             when not x.active then
               format('the market %s is no longer listed on %s: no new entries', p.pair, b.exchange)
             when x.max_leverage > 0 and b.leverage > x.max_leverage then
               format('leverage %s is above the maximum %s of %s on %s', trim_scale(b.leverage),
                      trim_scale(x.max_leverage), p.pair, b.exchange)
             when coalesce(b.metadata ->> 'sizing', 'stake') = 'stake' and x.min_cost is not null
                  and b.stake_amount * case when x.contract then b.leverage else 1 end < x.min_cost then
               format('stake %s %s is below the minimum order value %s %s of %s on %s', trim_scale(b.stake_amount),
                      x.quote, trim_scale(x.min_cost), x.quote, p.pair, b.exchange)
           end as reason
      from public.bots b
      cross join lateral unnest(coalesce(b.pairs, array[b.trading_pair])) with ordinality as p(pair, ord)
      join public.exchange_markets x on x.exchange = b.exchange and x.symbol = p.pair
     where x.exchange = p_exchange and b.status = 'running'
  ), refused as (
    select r.id,
           exists (select 1 from public.trades t where t.bot_id = r.id and t.status = 'open') as holding,
           count(*) = max(r.n_pairs) as every_pair,
           max(r.n_pairs) > 1 as multi,
           string_agg(r.reason, '; ' order by r.ord) as reason
      from refused_pairs r
     where r.reason is not null
     group by r.id
  ), decided as (
    select r.id, r.holding or not r.every_pair as keeps_running,
           r.reason || case when r.holding then '; the open position is still managed'
                            when not r.every_pair then '; the other pairs still trade'
                            else '' end as message
      from refused r
  )
  update public.bots b
     set status = case when d.keeps_running then b.status else 'error' end,
         error_message = d.message
    from decided d
   where b.id = d.id
     and b.error_message is distinct from d.message;
  return v_n;
end;
$$;

revoke all on function public.exchange_markets_store(text, jsonb, timestamptz) from public, anon, authenticated;
grant execute on function public.exchange_markets_store(text, jsonb, timestamptz) to service_role;

-- A bot's market, stake and leverage against the cache (before insert, or an update of
-- exchange, pair, stake or leverage). Nothing is refused while the exchange is not loaded.
create or replace function private.bot_market_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_m public.exchange_markets;
  v_loaded timestamptz;
  v_price numeric;
  v_notional numeric;
  v_pair text;
begin
  select l.loaded_at into v_loaded
    from public.exchange_market_loads l
   where l.exchange = new.exchange and l.loaded_at is not null;
  if v_loaded is null then
    return new;
  end if;
  foreach v_pair in array coalesce(new.pairs, array[new.trading_pair]) loop
    select * into v_m from public.exchange_markets x where x.exchange = new.exchange and x.symbol = v_pair;
    if not found or v_m.delisted_at is not null then
      raise exception '% does not list the market % (markets loaded %)', new.exchange, v_pair,
        to_char(v_loaded at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
        using errcode = 'check_violation', constraint = 'bots_market_listed';
    end if;
    if not v_m.active then
      raise exception 'the market % on % is not active: no bot can trade it now', v_pair, new.exchange
        using errcode = 'check_violation', constraint = 'bots_market_active';
    end if;
    if v_m.max_leverage is not null and v_m.max_leverage > 0 and new.leverage > v_m.max_leverage then
      raise exception 'leverage % is above the maximum % of % on %', trim_scale(new.leverage), trim_scale(v_m.max_leverage),
        v_pair, new.exchange
        using errcode = 'check_violation', constraint = 'bots_leverage_within_market';
    end if;
    -- The stake is the quote amount of an entry (the notional, times the leverage on
    -- contract markets); risk sizing derives it from the equity at run time, so it is not checked.
    if coalesce(new.metadata ->> 'sizing', 'stake') = 'stake' then
      v_notional := new.stake_amount * case when v_m.contract then new.leverage else 1 end;
      if v_m.min_cost is not null and v_notional < v_m.min_cost then
        raise exception 'stake % % is below the minimum order value % % of % on %', trim_scale(new.stake_amount),
          v_m.quote, trim_scale(v_m.min_cost), v_m.quote, v_pair, new.exchange
          using errcode = 'check_violation', constraint = 'bots_stake_within_market';
      end if;
      if v_m.min_amount is not null and not (v_m.contract and v_m.linear is false) then
        select c.close into v_price
          from public.candles c
         where c.exchange = new.exchange and c.symbol = v_pair and c.timeframe = new.timeframe
         order by c.open_time desc
         limit 1;
        if v_price is not null and v_price > 0
           and v_notional / (v_price * coalesce(nullif(v_m.contract_size, 0), 1)) < v_m.min_amount then
          raise exception 'stake % % buys less than the minimum amount % % of % on % at the last price %',
            trim_scale(new.stake_amount), v_m.quote, trim_scale(v_m.min_amount), v_m.base, v_pair, new.exchange,
            trim_scale(v_price)
            using errcode = 'check_violation', constraint = 'bots_stake_within_market';
        end if;
      end if;
    end if;
  end loop;
  return new;
end;
$$;

revoke all on function private.bot_market_rules() from public, anon, authenticated;

-- Triggers ------------------------------------------------------------------------------
-- The pairs list: 1 to 20 pairs in the trading_pair format, no repeats, the first one
-- trading_pair, one quote currency (the bot's one balance).
create or replace function private.bot_check_pairs() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.pairs is null then
    return new;
  end if;
  if cardinality(new.pairs) not between 1 and 20 or array_ndims(new.pairs) <> 1 then
    raise exception 'a bot trades 1 to 20 pairs, got %', coalesce(cardinality(new.pairs), 0)
      using errcode = 'check_violation', constraint = 'bots_pairs_valid';
  end if;
  if exists (select 1 from unnest(new.pairs) p
              where p is null or p !~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$') then
    raise exception 'every pair must look like BASE/QUOTE (or BASE/QUOTE:SETTLE), got %', array_to_string(new.pairs, ', ', 'null')
      using errcode = 'check_violation', constraint = 'bots_pairs_valid';
  end if;
  if (select count(distinct p) from unnest(new.pairs) p) <> cardinality(new.pairs) then
    raise exception 'a pair is listed twice: %', array_to_string(new.pairs, ', ')
      using errcode = 'check_violation', constraint = 'bots_pairs_valid';
  end if;
  if new.pairs[1] <> new.trading_pair then
    raise exception 'the first pair must be the bot''s trading_pair %, got %', new.trading_pair, new.pairs[1]
      using errcode = 'check_violation', constraint = 'bots_pairs_valid';
  end if;
  if (select count(distinct split_part(split_part(p, '/', 2), ':', 1)) from unnest(new.pairs) p) <> 1 then
    raise exception 'every pair of a bot needs the same quote currency (one balance): %', array_to_string(new.pairs, ', ')
      using errcode = 'check_violation', constraint = 'bots_pairs_valid';
  end if;
  return new;
end;
$$;

revoke all on function private.bot_check_pairs() from public, anon, authenticated;

-- Changing the pairs of a live bot risks money like changing its pair: two-factor needed.
create or replace function private.bot_live_pairs_aal2() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if not private.is_service() and not old.is_paper_trade
     and coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2' then
    raise exception 'changing a live bot''s trading settings needs a session with two-factor authentication (aal2)'
      using errcode = 'insufficient_privilege', constraint = 'bots_live_changes_require_aal2';
  end if;
  return new;
end;
$$;

revoke all on function private.bot_live_pairs_aal2() from public, anon, authenticated;

-- Triggers -------------------------------------------------------------------------------

drop trigger bots_market_rules_on_change on public.bots;
create trigger bots_market_rules_on_change before update of exchange, trading_pair, pairs, stake_amount, leverage, metadata
  on public.bots
  for each row
  when ((old.exchange, old.trading_pair, old.pairs, old.stake_amount, old.leverage, coalesce(old.metadata ->> 'sizing', 'stake'))
        is distinct from
        (new.exchange, new.trading_pair, new.pairs, new.stake_amount, new.leverage, coalesce(new.metadata ->> 'sizing', 'stake')))
  execute function private.bot_market_rules();

-- Named to fire before bots_market_rules (triggers fire in name order): the list's shape
-- first, then each pair against the markets cache.
create trigger bots_check_pairs before insert or update of pairs, trading_pair on public.bots
  for each row
  execute function private.bot_check_pairs();

create trigger bots_live_pairs_aal2 before update of pairs on public.bots
  for each row
  when (old.pairs is distinct from new.pairs)
  execute function private.bot_live_pairs_aal2();
