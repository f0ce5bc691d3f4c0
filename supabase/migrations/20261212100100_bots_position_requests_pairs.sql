-- Manual trades and closes on multi-pair bots name their pair. `manual_trade` takes `p_pair`:
-- on a multi-pair bot it is required (which of its pairs to trade), on any bot it must be one
-- of the bot's pairs (a named error otherwise); on a single-pair bot it defaults to the bot's
-- pair. The bot must be flat on that pair, not on all of them. `close_position` takes an
-- optional `p_pair` that must be the trade's: an app that shows positions by pair cannot
-- close another pair's trade by a stale id; and `p_amount` or `p_fraction` to close only a
-- part of the position (at market or at a limit), stored as the request's `amount`.

-- Tables ---------------------------------------------------------------------------------

alter table public.position_requests add column pair text
  constraint position_requests_pair_length check (char_length(pair) between 1 and 64);

comment on column public.position_requests.pair is
  'The pair a manual entry trades (one of the bot''s pairs); null on older requests: the bot''s trading_pair.';

-- Functions ------------------------------------------------------------------------------

-- The pair a request names, checked against the bot's pairs (null: the bot's only pair).
create or replace function private.position_request_pair(p_bot public.bots, p_pair text)
returns text
language plpgsql immutable
set search_path = ''
as $$
declare
  v_pairs text[] := coalesce(p_bot.pairs, array[p_bot.trading_pair]);
begin
  if p_pair is null then
    if cardinality(v_pairs) > 1 then
      raise exception 'the bot trades % pairs (%): name the pair to trade', cardinality(v_pairs),
        array_to_string(v_pairs, ', ')
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_pair_required';
    end if;
    return p_bot.trading_pair;
  end if;
  if not p_pair = any (v_pairs) then
    raise exception '% is not a pair of this bot (it trades %)', left(p_pair, 64), array_to_string(v_pairs, ', ')
      using errcode = 'check_violation', constraint = 'position_requests_pair_of_bot';
  end if;
  return p_pair;
end;
$$;
revoke all on function private.position_request_pair(public.bots, text) from public, anon, authenticated;

drop function public.manual_trade(uuid, boolean, text, private.finite_number, private.finite_number, text);

-- manual_trade: a market buy (long) or sell (short: the bot must allow shorts) on one pair
-- of the caller's running bot (p_pair; required on a multi-pair bot), of p_amount (base
-- currency) or p_stake (quote currency), placed by the worker leasing the bot with the same
-- credit hold, checks and routing as the bot's own entries. The trade becomes the bot's
-- position on that pair: its stop-loss, take-profit and exits manage it from then on. A
-- bot holding a position on that pair takes no manual entry there (close it first).
create or replace function public.manual_trade(
  p_bot_id uuid,
  p_is_paper_trade boolean,
  p_side text,
  p_amount private.finite_number default null,
  p_stake private.finite_number default null,
  p_idempotency_key text default null,
  p_pair text default null
) returns public.position_requests
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_bot public.bots;
  v_key text := private.position_request_key(p_idempotency_key);
  v_req public.position_requests;
  v_pair text;
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
  if char_length(p_pair) > 64 then
    raise exception 'a pair is at most 64 characters'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_pair_length';
  end if;
  if v_key is not null then
    select * into v_req from public.position_requests r
     where r.user_id = v_uid and r.idempotency_key = v_uid::text || ':' || v_key;
    if found then
      if v_req.kind <> 'open' or v_req.bot_id <> p_bot_id
         or (p_pair is not null and v_req.pair is distinct from p_pair) then
        raise exception 'this idempotency key was used for another request'
          using errcode = 'check_violation', constraint = 'position_requests_idempotency_key_reused';
      end if;
      return v_req;
    end if;
  end if;
  v_bot := private.position_request_bot(p_bot_id, p_is_paper_trade);
  v_pair := private.position_request_pair(v_bot, p_pair);
  if p_side = 'sell' and not v_bot.allow_short then
    raise exception 'the bot does not allow shorts: a manual sell opens a short'
      using errcode = 'check_violation', constraint = 'position_requests_short_allowed',
            hint = 'Close a long with close_position.';
  end if;
  if exists (select 1 from public.trades t
              where t.bot_id = v_bot.id and t.status = 'open' and t.signal_id is null
                and t.trading_pair = v_pair)
     or exists (select 1 from public.position_requests r
                 where r.bot_id = v_bot.id and r.kind = 'open' and r.status in ('pending', 'working')
                   and coalesce(r.pair, v_bot.trading_pair) = v_pair) then
    raise exception 'the bot holds a position on % (or is opening one): close it first', v_pair
      using errcode = 'check_violation', constraint = 'position_requests_bot_flat';
  end if;
  insert into public.position_requests (user_id, bot_id, kind, side, amount, stake, pair, is_paper_trade,
                                        idempotency_key)
  values (v_uid, v_bot.id, 'open', p_side, p_amount, p_stake, v_pair, v_bot.is_paper_trade,
          v_uid::text || ':' || coalesce(v_key, gen_random_uuid()::text))
  returning * into v_req;
  return v_req;
end;
$$;
revoke all on function public.manual_trade(uuid, boolean, text, private.finite_number, private.finite_number, text, text)
  from public, anon;
grant execute on function public.manual_trade(uuid, boolean, text, private.finite_number, private.finite_number, text, text)
  to authenticated, service_role;

drop function public.close_position(uuid, boolean, text, private.finite_number, integer, text, text);

-- close_position: close an open trade of the caller's running bot (theirs, or their
-- organisation's with a role of member or above), at market now or at a limit with a
-- timeout; with p_pair, only if the trade is on that pair; with p_amount (base currency) or
-- p_fraction (0 to 1 of the trade's amount), only that part of it (the worker closes the
-- part as a trade of its own and the rest stays open and managed).
create or replace function public.close_position(
  p_trade_id uuid,
  p_is_paper_trade boolean,
  p_order_type text default 'market',
  p_limit_price private.finite_number default null,
  p_timeout_s integer default null,
  p_on_timeout text default 'market',
  p_idempotency_key text default null,
  p_pair text default null,
  p_amount private.finite_number default null,
  p_fraction private.finite_number default null
) returns public.position_requests
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_amount numeric;
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
  if p_amount is not null and p_fraction is not null then
    raise exception 'give an amount (base currency) or a fraction of the position, not both'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_amount_or_fraction';
  end if;
  if p_amount <= 0 or p_amount > 1e15 then
    raise exception 'the amount to close must be above 0 and at most 10^15'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_amount_positive';
  end if;
  if p_fraction <= 0 or p_fraction > 1 then
    raise exception 'the fraction to close must be above 0 and at most 1, got %', p_fraction
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_fraction_range';
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
   where t.id = p_trade_id and t.signal_id is null
     and (t.user_id = v_uid
          or exists (select 1 from public.bots b
                      where b.id = t.bot_id and b.organisation_id = any (private.organisation_ids())));
  if not found then
    raise exception 'no position of yours with id %', p_trade_id
      using errcode = 'no_data_found', constraint = 'position_requests_trade_owned';
  end if;
  if p_pair is not null and p_pair is distinct from v_trade.trading_pair then
    raise exception 'the trade is on %, not on %', v_trade.trading_pair, left(p_pair, 64)
      using errcode = 'check_violation', constraint = 'position_requests_pair_of_trade';
  end if;
  if v_trade.status <> 'open' then
    raise exception 'the trade is % already', v_trade.status
      using errcode = 'check_violation', constraint = 'position_requests_trade_open';
  end if;
  v_bot := private.position_request_bot(v_trade.bot_id, p_is_paper_trade);
  -- A part of the position (null: all of it; a part as large as the position is all of it).
  v_amount := coalesce(p_amount, v_trade.amount * p_fraction);
  if v_amount >= v_trade.amount then
    v_amount := null;
  end if;
  select * into v_req from public.position_requests r
   where r.trade_id = p_trade_id and r.kind = 'close' and r.status in ('pending', 'working');
  if found then
    return v_req;
  end if;
  insert into public.position_requests as r (user_id, bot_id, trade_id, kind, order_type, limit_price, timeout_s,
                                             on_timeout, pair, amount, is_paper_trade, idempotency_key)
  values (v_uid, v_bot.id, p_trade_id, 'close', p_order_type,
          case when p_order_type = 'limit' then p_limit_price end,
          case when p_order_type = 'limit' then p_timeout_s end,
          case when p_order_type = 'limit' then p_on_timeout end,
          v_trade.trading_pair, round(v_amount, 12), v_bot.is_paper_trade, v_uid::text || ':' || coalesce(v_key, gen_random_uuid()::text))
  returning * into v_req;
  return v_req;
end;
$$;
revoke all on function public.close_position(uuid, boolean, text, private.finite_number, integer, text, text, text, private.finite_number, private.finite_number) from public, anon;
grant execute on function public.close_position(uuid, boolean, text, private.finite_number, integer, text, text, text, private.finite_number, private.finite_number)
  to authenticated, service_role;
