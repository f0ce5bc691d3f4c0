-- Markets: every exchange's markets as ccxt's load_markets() returns them (precision,
-- limits, fees, active flag, contract details), cached per exchange and refreshed by the
-- fleet (daily, and on a market a bot needs but the cache lacks). Paper and live bots read
-- the same cache; apps read it to offer pairs. Bots are checked against it when saved: a
-- pair the exchange does not list, a stake below the market's minimum, a leverage above its
-- maximum are refused. An exchange the fleet has not loaded yet refuses nothing.

-- Tables --------------------------------------------------------------------------------

create table public.exchange_markets (
  exchange text not null constraint exchange_markets_exchange_format check (exchange ~ '^[a-z0-9]{2,32}$'),
  symbol text not null constraint exchange_markets_symbol_length check (char_length(symbol) between 3 and 100),
  market_id text,
  base text not null,
  quote text not null,
  settle text,
  type text not null constraint exchange_markets_type_known check (type in ('spot', 'margin', 'swap', 'future', 'option')),
  active boolean not null default true,
  contract boolean not null default false,
  linear boolean,
  inverse boolean,
  contract_size numeric,
  amount_precision numeric,
  price_precision numeric,
  min_amount numeric,
  max_amount numeric,
  min_cost numeric,
  max_cost numeric,
  min_price numeric,
  max_price numeric,
  max_leverage numeric,
  maker numeric,
  taker numeric,
  -- ccxt's unified market with the exchange's own payload ("info", which ccxt's exchange
  -- code reads, e.g. the order types a market accepts): what the worker hands back to ccxt.
  market jsonb not null constraint exchange_markets_market_object check (jsonb_typeof(market) = 'object'),
  -- Set when a refresh no longer finds the market (delisted); active is false from then on.
  delisted_at timestamptz,
  fetched_at timestamptz not null,
  primary key (exchange, symbol)
);

create index exchange_markets_type_idx on public.exchange_markets (exchange, type, symbol);

-- One row per exchange the fleet has loaded: when, how many markets, and the last time a
-- refresh was started (the bound on refreshes asked for by a missing market).
create table public.exchange_market_loads (
  exchange text primary key constraint exchange_market_loads_exchange_format check (exchange ~ '^[a-z0-9]{2,32}$'),
  loaded_at timestamptz,
  markets integer not null default 0,
  refresh_started_at timestamptz,
  last_error text constraint exchange_market_loads_error_length check (char_length(last_error) <= 2000)
);

-- Row level security and table grants ----------------------------------------------------

alter table public.exchange_markets enable row level security;
alter table public.exchange_market_loads enable row level security;

revoke all on public.exchange_markets, public.exchange_market_loads from anon, authenticated;
grant all on public.exchange_markets, public.exchange_market_loads to service_role;
grant select on public.exchange_markets, public.exchange_market_loads to authenticated;

create policy "Signed-in users can read the exchanges' markets" on public.exchange_markets
  for select to authenticated using (true);
create policy "Signed-in users can read when markets were loaded" on public.exchange_market_loads
  for select to authenticated using (true);

-- Functions -----------------------------------------------------------------------------

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
  -- below the minimum order value, leverage above the maximum), with the save rules' words.
  with refused as (
    select b.id,
           exists (select 1 from public.trades t where t.bot_id = b.id and t.status = 'open') as holding,
           case
             when not x.active and x.delisted_at is null then
               format('the market %s on %s is not active: no new entries', b.trading_pair, b.exchange)
             when not x.active then
               format('the market %s is no longer listed on %s: no new entries', b.trading_pair, b.exchange)
             when x.max_leverage > 0 and b.leverage > x.max_leverage then
               format('leverage %s is above the maximum %s of %s on %s', trim_scale(b.leverage),
                      trim_scale(x.max_leverage), b.trading_pair, b.exchange)
             when coalesce(b.metadata ->> 'sizing', 'stake') = 'stake' and x.min_cost is not null
                  and b.stake_amount * case when x.contract then b.leverage else 1 end < x.min_cost then
               format('stake %s %s is below the minimum order value %s %s of %s on %s', trim_scale(b.stake_amount),
                      x.quote, trim_scale(x.min_cost), x.quote, b.trading_pair, b.exchange)
           end as reason
      from public.bots b
      join public.exchange_markets x on x.exchange = b.exchange and x.symbol = b.trading_pair
     where x.exchange = p_exchange and b.status = 'running'
  )
  update public.bots b
     set status = case when r.holding then b.status else 'error' end,
         error_message = r.reason || case when r.holding then '; the open position is still managed' else '' end
    from refused r
   where b.id = r.id
     and r.reason is not null
     and b.error_message is distinct from r.reason || case when r.holding then '; the open position is still managed' else '' end;
  return v_n;
end;
$$;

revoke all on function public.exchange_markets_store(text, jsonb, timestamptz) from public, anon, authenticated;
grant execute on function public.exchange_markets_store(text, jsonb, timestamptz) to service_role;

-- Start a refresh of one exchange's markets unless one started less than p_min_interval_s
-- seconds ago: true if the caller should refresh now. Bounds the refreshes asked for by a
-- market the cache lacks across the whole fleet.
create or replace function public.exchange_markets_claim_refresh(p_exchange text, p_min_interval_s double precision)
returns boolean
language plpgsql security definer
set search_path = ''
as $$
declare
  v_claimed boolean;
begin
  if not private.is_service() then
    raise exception 'only the fleet refreshes market definitions' using errcode = 'insufficient_privilege';
  end if;
  if p_exchange is null or p_exchange !~ '^[a-z0-9]{2,32}$' then
    raise exception 'exchange must be a ccxt exchange id, got %', coalesce(p_exchange, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  if p_min_interval_s is null or p_min_interval_s < 0 or p_min_interval_s <> p_min_interval_s then
    raise exception 'the minimum interval must be zero or more seconds' using errcode = 'invalid_parameter_value';
  end if;
  insert into public.exchange_market_loads as l (exchange, refresh_started_at)
  values (p_exchange, now())
  on conflict (exchange) do update
     set refresh_started_at = now()
   where l.refresh_started_at is null
      or l.refresh_started_at <= now() - make_interval(secs => p_min_interval_s)
  returning true into v_claimed;
  return coalesce(v_claimed, false);
end;
$$;

revoke all on function public.exchange_markets_claim_refresh(text, double precision) from public, anon, authenticated;
grant execute on function public.exchange_markets_claim_refresh(text, double precision) to service_role;

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
begin
  select l.loaded_at into v_loaded
    from public.exchange_market_loads l
   where l.exchange = new.exchange and l.loaded_at is not null;
  if v_loaded is null then
    return new;
  end if;
  select * into v_m from public.exchange_markets x where x.exchange = new.exchange and x.symbol = new.trading_pair;
  if not found or v_m.delisted_at is not null then
    raise exception '% does not list the market % (markets loaded %)', new.exchange, new.trading_pair,
      to_char(v_loaded at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
      using errcode = 'check_violation', constraint = 'bots_market_listed';
  end if;
  if not v_m.active then
    raise exception 'the market % on % is not active: no bot can trade it now', new.trading_pair, new.exchange
      using errcode = 'check_violation', constraint = 'bots_market_active';
  end if;
  if v_m.max_leverage is not null and v_m.max_leverage > 0 and new.leverage > v_m.max_leverage then
    raise exception 'leverage % is above the maximum % of % on %', trim_scale(new.leverage), trim_scale(v_m.max_leverage),
      new.trading_pair, new.exchange
      using errcode = 'check_violation', constraint = 'bots_leverage_within_market';
  end if;
  -- The stake is the quote amount of an entry (the notional, times the leverage on
  -- contract markets); risk sizing derives it from the equity at run time, so it is not checked.
  if coalesce(new.metadata ->> 'sizing', 'stake') = 'stake' then
    v_notional := new.stake_amount * case when v_m.contract then new.leverage else 1 end;
    if v_m.min_cost is not null and v_notional < v_m.min_cost then
      raise exception 'stake % % is below the minimum order value % % of % on %', trim_scale(new.stake_amount),
        v_m.quote, trim_scale(v_m.min_cost), v_m.quote, new.trading_pair, new.exchange
        using errcode = 'check_violation', constraint = 'bots_stake_within_market';
    end if;
    if v_m.min_amount is not null and not (v_m.contract and v_m.linear is false) then
      select c.close into v_price
        from public.candles c
       where c.exchange = new.exchange and c.symbol = new.trading_pair and c.timeframe = new.timeframe
       order by c.open_time desc
       limit 1;
      if v_price is not null and v_price > 0
         and v_notional / (v_price * coalesce(nullif(v_m.contract_size, 0), 1)) < v_m.min_amount then
        raise exception 'stake % % buys less than the minimum amount % % of % on % at the last price %',
          trim_scale(new.stake_amount), v_m.quote, trim_scale(v_m.min_amount), v_m.base, new.trading_pair, new.exchange,
          trim_scale(v_price)
          using errcode = 'check_violation', constraint = 'bots_stake_within_market';
      end if;
    end if;
  end if;
  return new;
end;
$$;

revoke all on function private.bot_market_rules() from public, anon, authenticated;

-- Triggers ------------------------------------------------------------------------------

create trigger bots_market_rules before insert on public.bots
  for each row
  execute function private.bot_market_rules();

-- A change of the market, stake, leverage or sizing only: a bot whose market became
-- inactive can still be renamed, paused or stopped.
create trigger bots_market_rules_on_change before update of exchange, trading_pair, stake_amount, leverage, metadata
  on public.bots
  for each row
  when ((old.exchange, old.trading_pair, old.stake_amount, old.leverage, coalesce(old.metadata ->> 'sizing', 'stake'))
        is distinct from
        (new.exchange, new.trading_pair, new.stake_amount, new.leverage, coalesce(new.metadata ->> 'sizing', 'stake')))
  execute function private.bot_market_rules();
