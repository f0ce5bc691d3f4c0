-- Multi-pair bots: the pairs list is saved only when every pair is listed and active on the
-- exchange (named errors otherwise), and a pair that later disappears is named on the bot,
-- which keeps trading its other pairs and managing its positions.
begin;
select plan(16);

select tests.create_user(1, 'pia@pairs.test');

create function pg_temp.refusal(p_sql text) returns text
language plpgsql
as $$
declare
  v_state text;
  v_constraint text;
  v_message text;
begin
  execute p_sql;
  return 'accepted';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name, v_message = message_text;
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-') || ': ' || v_message;
end;
$$;

create function pg_temp.markets(p_symbols text[]) returns jsonb
language sql
as $$
  select jsonb_object_agg(s, jsonb_build_object('id', replace(s, '/', ''), 'symbol', s, 'base', split_part(s, '/', 1),
                                                'quote', split_part(s, '/', 2), 'type', 'spot', 'active', true,
                                                'limits', jsonb_build_object('cost', jsonb_build_object('min', 5))))
    from unnest(p_symbols) s;
$$;

select is(public.exchange_markets_store('binance', pg_temp.markets(array['BTC/USDT', 'ETH/USDT', 'SOL/USDT', 'ETH/BTC']), now()),
  4, 'the fleet stores the markets');

select tests.authenticate_as('pia@pairs.test');
select is(pg_temp.refusal($$insert into public.bots (id, name, exchange, trading_pair, pairs, timeframe, strategy, initial_balance, stake_amount, max_open_trades)
  values (tests.id('bot', 1), 'three', 'binance', 'SOL/USDT', '{SOL/USDT,ETH/USDT,BTC/USDT}', '5m', 'rsi', 100, 10, 2)$$),
  'accepted', 'a bot on three listed pairs is saved');
select is(pg_temp.refusal($$insert into public.bots (name, exchange, trading_pair, pairs, timeframe, strategy, initial_balance, stake_amount)
  values ('ghost', 'binance', 'SOL/USDT', '{SOL/USDT,DOGE/USDT}', '5m', 'rsi', 100, 10)$$),
  format('23514 bots_market_listed: binance does not list the market DOGE/USDT (markets loaded %s)',
         to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
  'a pair the markets cache lacks is refused by name');
select is(pg_temp.refusal($$insert into public.bots (name, exchange, trading_pair, pairs, timeframe, strategy, initial_balance, stake_amount)
  values ('twice', 'binance', 'SOL/USDT', '{SOL/USDT,ETH/USDT,SOL/USDT}', '5m', 'rsi', 100, 10)$$),
  '23514 bots_pairs_valid: a pair is listed twice: SOL/USDT, ETH/USDT, SOL/USDT',
  'a pair listed twice is refused');
select is(pg_temp.refusal($$insert into public.bots (name, exchange, trading_pair, pairs, timeframe, strategy, initial_balance, stake_amount)
  values ('first', 'binance', 'SOL/USDT', '{ETH/USDT,SOL/USDT}', '5m', 'rsi', 100, 10)$$),
  '23514 bots_pairs_valid: the first pair must be the bot''s trading_pair SOL/USDT, got ETH/USDT',
  'the first pair is the bot''s trading_pair');
select is(pg_temp.refusal($$insert into public.bots (name, exchange, trading_pair, pairs, timeframe, strategy, initial_balance, stake_amount)
  values ('quotes', 'binance', 'SOL/USDT', '{SOL/USDT,ETH/BTC}', '5m', 'rsi', 100, 10)$$),
  '23514 bots_pairs_valid: every pair of a bot needs the same quote currency (one balance): SOL/USDT, ETH/BTC',
  'pairs of different quote currencies are refused (one balance)');
select is(pg_temp.refusal($$insert into public.bots (name, exchange, trading_pair, pairs, timeframe, strategy, initial_balance, stake_amount, allow_short)
  values ('shorts', 'binance', 'SOL/USDT', '{SOL/USDT,ETH/USDT}', '5m', 'rsi', 100, 10, true)$$),
  'accepted',
  'a multi-pair bot may short (a long or a short per pair, one cap and one balance)');
select is(pg_temp.refusal($$update public.bots set pairs = '{SOL/USDT,XYZ/USDT}' where id = tests.id('bot', 1)$$),
  format('23514 bots_market_listed: binance does not list the market XYZ/USDT (markets loaded %s)',
         to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
  'adding an unlisted pair later is refused by name');
update public.bots set status = 'running' where id = tests.id('bot', 1);

-- A manual trade names one of the bot's pairs and needs only that pair flat.
select is(pg_temp.refusal($$select public.manual_trade(tests.id('bot', 1), true, 'buy', 1)$$),
  '22023 position_requests_pair_required: the bot trades 3 pairs (SOL/USDT, ETH/USDT, BTC/USDT): name the pair to trade',
  'a manual trade on a multi-pair bot names its pair');
select is(pg_temp.refusal($$select public.manual_trade(tests.id('bot', 1), true, 'buy', 1, null, null, 'ETH/BTC')$$),
  '23514 position_requests_pair_of_bot: ETH/BTC is not a pair of this bot (it trades SOL/USDT, ETH/USDT, BTC/USDT)',
  'a pair the bot does not trade is refused by name');
select is((public.manual_trade(tests.id('bot', 1), true, 'buy', 1, null, null, 'ETH/USDT')).pair, 'ETH/USDT',
  'a manual trade on the second pair is recorded with its pair');
select is((public.manual_trade(tests.id('bot', 1), true, 'buy', 1, null, null, 'BTC/USDT')).pair, 'BTC/USDT',
  'another pair may be entered while the first is opening');
select is(pg_temp.refusal($$select public.manual_trade(tests.id('bot', 1), true, 'buy', 1, null, null, 'ETH/USDT')$$),
  '23514 position_requests_bot_flat: the bot holds a position on ETH/USDT (or is opening one): close it first',
  'one position per pair');
select tests.clear_authentication();

-- ETH/USDT disappears: the bot names it and trades on.
select is(public.exchange_markets_store('binance', pg_temp.markets(array['BTC/USDT', 'SOL/USDT', 'ETH/BTC']), now()),
  3, 'a load without ETH/USDT');
select results_eq($$select status, error_message from public.bots where id = tests.id('bot', 1)$$,
  $$values ('running'::text, 'the market ETH/USDT is no longer listed on binance: no new entries; the other pairs still trade'::text)$$,
  'a pair that disappears is named on the bot, which trades its other pairs');

-- Every pair gone and nothing open: the bot stops with the reasons.
select public.exchange_markets_store('binance', pg_temp.markets(array['ETH/BTC']), now());
select results_eq($$select status, error_message from public.bots where id = tests.id('bot', 1)$$,
  $$values ('error'::text, 'the market SOL/USDT is no longer listed on binance: no new entries; the market ETH/USDT is no longer listed on binance: no new entries; the market BTC/USDT is no longer listed on binance: no new entries'::text)$$,
  'a bot none of whose pairs can trade, holding nothing, stops with every reason');

select * from finish();
rollback;
