-- Positions under the user's control: close a position now (at market, or at a limit
-- price with a timeout), stop a bot choosing what happens to its open position, and
-- manual trades (a market buy or sell on one of the user's bots).
--
-- - public.position_requests: what the owner asked for. Apps create requests only through
--   the RPCs below (close_position, stop_bot, manual_trade) and read their own; the worker
--   holding the bot's lease executes them through the engine (client order ids, credit
--   holds, trade closing) and writes their outcome (service role only).
-- - A request is idempotent: its key is namespaced by its owner (user id), so a retried call
--   returns the request it made before and no caller can collide with another's key; the
--   order it places carries a client order id derived from the request id, so a worker that
--   executes it again after a crash finds the order instead of placing a second one.
-- - Inserting a request notifies the fleet (tradefleet_position_requests); the worker that
--   leases the bot executes it within a second.
-- - Live bots (is_paper_trade false) need a two-factor session (aal2) for all of these.

-- ======================================================================================
-- Tables and indexes
-- ======================================================================================

-- What the owner chose for the open position when the bot was stopped.
alter table public.bots
  add column stop_positions text constraint bots_stop_positions_known check (stop_positions in ('close', 'keep'));

create table public.position_requests (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  bot_id uuid not null references public.bots (id) on delete cascade,
  -- close: the trade to close; open: the trade the entry opened, once it filled.
  trade_id uuid references public.trades (id) on delete set null,
  kind text not null constraint position_requests_kind_known check (kind in ('close', 'open')),
  origin text not null default 'user' constraint position_requests_origin_known check (origin in ('user', 'stop')),
  side text constraint position_requests_side_known check (side in ('buy', 'sell')),
  amount numeric(28, 12) constraint position_requests_amount_positive
    check (amount > 0 and amount not in ('NaN'::numeric, 'Infinity'::numeric)),
  stake numeric(28, 12) constraint position_requests_stake_positive
    check (stake > 0 and stake not in ('NaN'::numeric, 'Infinity'::numeric)),
  order_type text not null default 'market' constraint position_requests_order_type_known
    check (order_type in ('market', 'limit')),
  limit_price numeric(28, 12) constraint position_requests_limit_price_positive
    check (limit_price > 0 and limit_price not in ('NaN'::numeric, 'Infinity'::numeric)),
  timeout_s integer constraint position_requests_timeout_range check (timeout_s between 5 and 86400),
  on_timeout text constraint position_requests_on_timeout_known check (on_timeout in ('market', 'cancel')),
  -- Close the bot (status stopped) once the position is closed: stop_bot(…, 'close').
  stop_after boolean not null default false,
  is_paper_trade boolean not null,
  -- '<user id>:<caller's key>' (or '<user id>:<request id>' without one).
  idempotency_key text not null,
  status text not null default 'pending' constraint position_requests_status_known
    check (status in ('pending', 'working', 'done', 'cancelled', 'failed')),
  status_reason text constraint position_requests_status_reason_length check (char_length(status_reason) <= 2000),
  client_order_id text,
  -- A limit close: when its timeout ends (set when the limit order is placed).
  deadline_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  completed_at timestamptz,
  constraint position_requests_idempotency_key_unique unique (user_id, idempotency_key),
  constraint position_requests_open_has_side check (kind <> 'open' or (side is not null and (amount is null) <> (stake is null))),
  constraint position_requests_limit_terms check (
    (order_type = 'market' and limit_price is null and timeout_s is null)
    or (order_type = 'limit' and limit_price is not null and timeout_s is not null and on_timeout is not null))
);

create index position_requests_bot_active_idx on public.position_requests (bot_id) where status in ('pending', 'working');
create index position_requests_user_idx on public.position_requests (user_id, created_at desc);
create index position_requests_trade_id_idx on public.position_requests (trade_id);
-- One close in progress per trade.
create unique index position_requests_one_close_per_trade on public.position_requests (trade_id)
  where kind = 'close' and status in ('pending', 'working');

-- ======================================================================================
-- Row level security and table grants
-- ======================================================================================

revoke all on public.position_requests from anon, authenticated;
grant all on public.position_requests to service_role;
grant select on public.position_requests to authenticated;
alter table public.position_requests enable row level security;
create policy "Users can read their own position requests" on public.position_requests
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Admins can read every position request" on public.position_requests
  for select to tradefleet_admin using (true);

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- The bot a request acts on, checked for its caller: their own (no_data_found otherwise),
-- paper or live as the caller says, live only in a two-factor session, and running (the
-- worker leasing it executes the request).
create or replace function private.position_request_bot(p_bot_id uuid, p_is_paper_trade boolean)
returns public.bots
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_bot public.bots;
begin
  if v_uid is null then
    raise exception 'position requests are made by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  select * into v_bot from public.bots b where b.id = p_bot_id and b.user_id = v_uid;
  if not found then
    raise exception 'no bot of yours with id %', p_bot_id
      using errcode = 'no_data_found', constraint = 'position_requests_bot_owned';
  end if;
  if p_is_paper_trade is null or p_is_paper_trade <> v_bot.is_paper_trade then
    raise exception 'the bot trades % but the request says %',
      case when v_bot.is_paper_trade then 'on paper' else 'live money' end,
      case when p_is_paper_trade then 'paper' when not p_is_paper_trade then 'live' else 'neither' end
      using errcode = 'check_violation', constraint = 'position_requests_mode_matches',
            hint = 'Pass is_paper_trade as the bot has it, so live money is never moved by mistake.';
  end if;
  if not v_bot.is_paper_trade and coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2' then
    raise exception 'moving live money needs a session with two-factor authentication (aal2)'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_live_requires_aal2';
  end if;
  if v_bot.status <> 'running' then
    raise exception 'the bot is %: only a running bot executes requests', v_bot.status
      using errcode = 'check_violation', constraint = 'position_requests_bot_running',
            hint = 'Set the bot running first (a paused or stopped bot leaves its position untouched).';
  end if;
  return v_bot;
end;
$$;
revoke all on function private.position_request_bot(uuid, boolean) from public, anon, authenticated;

-- The stored idempotency key: namespaced by the owner, at most 200 characters of theirs.
create or replace function private.position_request_key(p_key text) returns text
language plpgsql immutable
set search_path = ''
as $$
begin
  if p_key is not null and (char_length(p_key) not between 1 and 200) then
    raise exception 'an idempotency key has 1 to 200 characters'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_idempotency_key_length';
  end if;
  return p_key;
end;
$$;
revoke all on function private.position_request_key(text) from public, anon, authenticated;

-- close_position: close an open trade of the caller's running bot, at market now, or with a
-- limit order that, unless filled within p_timeout_s seconds (5 s to 1 day), is cancelled
-- and then either closed at market (p_on_timeout 'market', the default) or left open
-- ('cancel'). Returns the request (a retried call with the same key returns the same one;
-- a second close of a trade already being closed returns that one).
create or replace function public.close_position(
  p_trade_id uuid,
  p_is_paper_trade boolean,
  p_order_type text default 'market',
  p_limit_price private.finite_number default null,
  p_timeout_s integer default null,
  p_on_timeout text default 'market',
  p_idempotency_key text default null
) returns public.position_requests
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_trade public.trades;
  v_bot public.bots;
  v_key text := private.position_request_key(p_idempotency_key);
  v_req public.position_requests;
begin
  if v_uid is null then
    raise exception 'position requests are made by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  if p_order_type is null or p_order_type not in ('market', 'limit') then
    raise exception 'order type must be market or limit'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_order_type_known';
  end if;
  if p_order_type = 'market' and (p_limit_price is not null or p_timeout_s is not null) then
    raise exception 'a market close takes no limit price and no timeout'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_limit_terms';
  end if;
  if p_order_type = 'limit' then
    if p_limit_price is null or p_limit_price <= 0 or p_limit_price > 1e15 then
      raise exception 'a limit close needs a limit price above 0'
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_limit_price_positive';
    end if;
    if p_timeout_s is null or p_timeout_s not between 5 and 86400 then
      raise exception 'a limit close needs a timeout of 5 to 86400 seconds'
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_timeout_range';
    end if;
    if p_on_timeout is null or p_on_timeout not in ('market', 'cancel') then
      raise exception 'on timeout a limit close goes to market or is cancelled'
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_on_timeout_known';
    end if;
  end if;
  if v_key is not null then
    select * into v_req from public.position_requests r
     where r.user_id = v_uid and r.idempotency_key = v_uid::text || ':' || v_key;
    if found then
      if v_req.kind <> 'close' or v_req.trade_id is distinct from p_trade_id then
        raise exception 'this idempotency key was used for another request'
          using errcode = 'check_violation', constraint = 'position_requests_idempotency_key_reused';
      end if;
      return v_req;
    end if;
  end if;
  -- The bot's own trades only: copies of signals close with their signal.
  select * into v_trade from public.trades t
   where t.id = p_trade_id and t.user_id = v_uid and t.signal_id is null;
  if not found then
    raise exception 'no position of yours with id %', p_trade_id
      using errcode = 'no_data_found', constraint = 'position_requests_trade_owned';
  end if;
  if v_trade.status <> 'open' then
    raise exception 'the trade is % already', v_trade.status
      using errcode = 'check_violation', constraint = 'position_requests_trade_open';
  end if;
  v_bot := private.position_request_bot(v_trade.bot_id, p_is_paper_trade);
  select * into v_req from public.position_requests r
   where r.trade_id = p_trade_id and r.kind = 'close' and r.status in ('pending', 'working');
  if found then
    return v_req;
  end if;
  insert into public.position_requests as r (user_id, bot_id, trade_id, kind, order_type, limit_price, timeout_s,
                                             on_timeout, is_paper_trade, idempotency_key)
  values (v_uid, v_bot.id, p_trade_id, 'close', p_order_type,
          case when p_order_type = 'limit' then p_limit_price end,
          case when p_order_type = 'limit' then p_timeout_s end,
          case when p_order_type = 'limit' then p_on_timeout end,
          v_bot.is_paper_trade, v_uid::text || ':' || coalesce(v_key, gen_random_uuid()::text))
  returning * into v_req;
  return v_req;
end;
$$;
revoke all on function public.close_position(uuid, boolean, text, private.finite_number, integer, text, text) from public, anon;
grant execute on function public.close_position(uuid, boolean, text, private.finite_number, integer, text, text)
  to authenticated, service_role;

-- stop_bot: stop a bot and say what happens to its open position. 'keep': the bot stops at
-- once and the position stays open (protected on the exchange where that is supported).
-- 'close': a running bot holding a position stays running, makes no new decisions, closes
-- the position at market and then stops; a bot without one stops at once. A plain status
-- update to 'stopped' keeps the position.
create or replace function public.stop_bot(p_bot_id uuid, p_positions text)
returns public.bots
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_bot public.bots;
  v_trade uuid;
  v_req public.position_requests;
begin
  if v_uid is null then
    raise exception 'bots are stopped by their owner'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  if p_positions is null or p_positions not in ('close', 'keep') then
    raise exception 'say what happens to the open positions: close or keep'
      using errcode = 'invalid_parameter_value', constraint = 'bots_stop_positions_known';
  end if;
  select * into v_bot from public.bots b where b.id = p_bot_id and b.user_id = v_uid for update;
  if not found then
    raise exception 'no bot of yours with id %', p_bot_id
      using errcode = 'no_data_found', constraint = 'position_requests_bot_owned';
  end if;
  select t.id into v_trade from public.trades t
   where t.bot_id = v_bot.id and t.status = 'open' and t.signal_id is null
   order by t.entry_time limit 1;
  if p_positions = 'close' and v_trade is not null then
    perform private.position_request_bot(v_bot.id, v_bot.is_paper_trade);
    select * into v_req from public.position_requests r
     where r.trade_id = v_trade and r.kind = 'close' and r.status in ('pending', 'working');
    if found then
      update public.position_requests r set stop_after = true, updated_at = now() where r.id = v_req.id;
    else
      insert into public.position_requests (user_id, bot_id, trade_id, kind, origin, stop_after, is_paper_trade,
                                            idempotency_key)
      values (v_uid, v_bot.id, v_trade, 'close', 'stop', true, v_bot.is_paper_trade,
              v_uid::text || ':' || gen_random_uuid()::text);
    end if;
    update public.bots b set stop_positions = 'close', status_reason = 'stopping: closing the open position'
     where b.id = v_bot.id
    returning * into v_bot;
    return v_bot;
  end if;
  update public.bots b
     set status = 'stopped', stop_positions = p_positions,
         status_reason = case when v_trade is null then 'stopped by its owner'
                              else 'stopped by its owner: the open position is kept' end
   where b.id = v_bot.id
  returning * into v_bot;
  return v_bot;
end;
$$;
revoke all on function public.stop_bot(uuid, text) from public, anon;
grant execute on function public.stop_bot(uuid, text) to authenticated, service_role;

-- manual_trade: a market buy (long) or sell (short: the bot must allow shorts) on the
-- caller's running bot, of p_amount (base currency) or p_stake (quote currency), placed by
-- the worker leasing the bot with the same credit hold, checks and routing as the bot's own
-- entries. The trade becomes the bot's position: its stop-loss, take-profit and exits
-- manage it from then on. A bot holding a position takes no manual entry (close it first).
create or replace function public.manual_trade(
  p_bot_id uuid,
  p_is_paper_trade boolean,
  p_side text,
  p_amount private.finite_number default null,
  p_stake private.finite_number default null,
  p_idempotency_key text default null
) returns public.position_requests
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_bot public.bots;
  v_key text := private.position_request_key(p_idempotency_key);
  v_req public.position_requests;
begin
  if v_uid is null then
    raise exception 'position requests are made by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  if p_side is null or p_side not in ('buy', 'sell') then
    raise exception 'side must be buy or sell'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_side_known';
  end if;
  if (p_amount is null) = (p_stake is null) then
    raise exception 'give either an amount (base currency) or a stake (quote currency)'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_amount_or_stake';
  end if;
  if coalesce(p_amount, p_stake) <= 0 or coalesce(p_amount, p_stake) > 1e15 then
    raise exception 'the amount or stake must be above 0 and at most 10^15'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_amount_positive';
  end if;
  if v_key is not null then
    select * into v_req from public.position_requests r
     where r.user_id = v_uid and r.idempotency_key = v_uid::text || ':' || v_key;
    if found then
      if v_req.kind <> 'open' or v_req.bot_id <> p_bot_id then
        raise exception 'this idempotency key was used for another request'
          using errcode = 'check_violation', constraint = 'position_requests_idempotency_key_reused';
      end if;
      return v_req;
    end if;
  end if;
  v_bot := private.position_request_bot(p_bot_id, p_is_paper_trade);
  if p_side = 'sell' and not v_bot.allow_short then
    raise exception 'the bot does not allow shorts: a manual sell opens a short'
      using errcode = 'check_violation', constraint = 'position_requests_short_allowed',
            hint = 'Close a long with close_position.';
  end if;
  if exists (select 1 from public.trades t where t.bot_id = v_bot.id and t.status = 'open' and t.signal_id is null)
     or exists (select 1 from public.position_requests r
                 where r.bot_id = v_bot.id and r.kind = 'open' and r.status in ('pending', 'working')) then
    raise exception 'the bot holds a position (or is opening one): close it first'
      using errcode = 'check_violation', constraint = 'position_requests_bot_flat';
  end if;
  insert into public.position_requests (user_id, bot_id, kind, side, amount, stake, is_paper_trade, idempotency_key)
  values (v_uid, v_bot.id, 'open', p_side, p_amount, p_stake, v_bot.is_paper_trade,
          v_uid::text || ':' || coalesce(v_key, gen_random_uuid()::text))
  returning * into v_req;
  return v_req;
end;
$$;
revoke all on function public.manual_trade(uuid, boolean, text, private.finite_number, private.finite_number, text)
  from public, anon;
grant execute on function public.manual_trade(uuid, boolean, text, private.finite_number, private.finite_number, text)
  to authenticated, service_role;

-- A new request wakes the fleet: the worker leasing the bot executes it.
create or replace function private.notify_position_request() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('tradefleet_position_requests',
                    json_build_object('id', new.id, 'bot_id', new.bot_id)::text);
  return null;
end;
$$;
revoke all on function private.notify_position_request() from public, anon, authenticated;

-- A bot that stops running (paused, stopped, error) before a request was started drops it:
-- a paused or stopped bot leaves its position untouched.
create or replace function private.cancel_position_requests() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.position_requests r
     set status = 'cancelled', status_reason = 'the bot stopped running (' || new.status || ') before the request ran',
         updated_at = now(), completed_at = now()
   where r.bot_id = new.id and r.status = 'pending';
  return null;
end;
$$;
revoke all on function private.cancel_position_requests() from public, anon, authenticated;

-- ======================================================================================
-- Triggers
-- ======================================================================================

create trigger position_requests_notify after insert on public.position_requests
  for each row execute function private.notify_position_request();
create trigger position_requests_set_updated_at before update on public.position_requests
  for each row execute function private.set_updated_at();
create trigger bots_cancel_position_requests after update of status on public.bots
  for each row when (old.status = 'running' and new.status <> 'running')
  execute function private.cancel_position_requests();

-- ======================================================================================
-- Realtime: an app follows its requests (pending → working → done, cancelled or failed)
-- ======================================================================================

alter publication supabase_realtime add table public.position_requests;
