-- Markets: the exchanges' markets cached by the fleet, read by users, and the rules a bot
-- is saved under: a pair the exchange lists, an active market, a stake at least the
-- market's minimum, a leverage at most its maximum; nothing refused before a load.
begin;
select plan(25);

select tests.create_user(1, 'mia@markets.test');
select tests.create_user(2, 'max@markets.test');

-- The error a statement raises, as 'SQLSTATE constraint: message'.
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

-- Before the fleet loads an exchange nothing is refused.
select tests.authenticate_as('mia@markets.test');
select is(pg_temp.refusal($$insert into public.bots (id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
  values (tests.id('bot', 1), 'early', 'kraken', 'ZZZ/USDT', '5m', 'rsi', 100, 0.01)$$),
  'accepted', 'a bot on an exchange not loaded yet is saved whatever its pair');
select tests.clear_authentication();

-- The fleet stores binance's markets (as the service role would).
select is(public.exchange_markets_store('binance', $${
  "BTC/USDT": {"id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "type": "spot", "spot": true,
               "active": true, "contract": false, "taker": 0.001, "maker": 0.001,
               "precision": {"amount": 1e-05, "price": 0.01},
               "limits": {"amount": {"min": 1e-05, "max": 9000}, "cost": {"min": 5, "max": null}, "leverage": {}},
               "info": {"symbol": "BTCUSDT"}},
  "BTC/USDT:USDT": {"id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT", "settle": "USDT",
                    "type": "swap", "swap": true, "active": true, "contract": true, "linear": true, "inverse": false,
                    "contractSize": 1, "precision": {"amount": 0.001, "price": 0.1},
                    "limits": {"amount": {"min": 0.001}, "cost": {"min": 100}, "leverage": {"min": 1, "max": 20}}},
  "LUNA/USDT": {"id": "LUNAUSDT", "symbol": "LUNA/USDT", "base": "LUNA", "quote": "USDT", "type": "spot",
                "active": false, "limits": {"cost": {"min": 5}}}
}$$::jsonb, now()), 3, 'the fleet stores a load_markets() result');
select is((select market #>> '{info,symbol}' from public.exchange_markets where symbol = 'BTC/USDT'), 'BTCUSDT',
  'the exchange''s own payload is kept for ccxt');

-- Users read the markets (apps offer the pairs) and cannot change them.
select tests.authenticate_as('max@markets.test');
select results_eq($$select symbol, type, min_cost, max_leverage from public.exchange_markets where exchange = 'binance' order by symbol$$,
  $$values ('BTC/USDT'::text, 'spot'::text, 5::numeric, null::numeric), ('BTC/USDT:USDT', 'swap', 100, 20), ('LUNA/USDT', 'spot', 5, null)$$,
  'a signed-in user reads every cached market');
select throws_ok($$update public.exchange_markets set active = true$$, '42501', null, 'users cannot change a market');
select throws_ok($$select public.exchange_markets_store('binance', '{}'::jsonb, now())$$, '42501', null,
  'users cannot store markets');

-- Save rules, as the owner's app would.
select is(pg_temp.refusal($$insert into public.bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
  values ('sol', 'binance', 'SOL/USDT', '5m', 'rsi', 100, 10)$$),
  format('23514 bots_market_listed: binance does not list the market SOL/USDT (markets loaded %s)',
         to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
  'a pair the exchange does not list is refused by name');
select is(pg_temp.refusal($$insert into public.bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
  values ('luna', 'binance', 'LUNA/USDT', '5m', 'rsi', 100, 10)$$),
  '23514 bots_market_active: the market LUNA/USDT on binance is not active: no bot can trade it now',
  'an inactive market is refused by name');
select is(pg_temp.refusal($$insert into public.bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
  values ('tiny', 'binance', 'BTC/USDT', '5m', 'rsi', 100, 1)$$),
  '23514 bots_stake_within_market: stake 1 USDT is below the minimum order value 5 USDT of BTC/USDT on binance',
  'a stake below the market''s minimum order value is refused by name');
select is(pg_temp.refusal($$insert into public.bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, leverage)
  values ('wild', 'binance', 'BTC/USDT:USDT', '5m', 'rsi', 100, 10, 50)$$),
  '23514 bots_leverage_within_market: leverage 50 is above the maximum 20 of BTC/USDT:USDT on binance',
  'a leverage above the market''s maximum is refused by name');
select is(pg_temp.refusal($$insert into public.bots (id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, leverage)
  values (tests.id('bot', 2), 'perp', 'binance', 'BTC/USDT:USDT', '5m', 'rsi', 100, 10, 10)$$),
  'accepted', 'on a contract market the stake counts with its leverage (10 x 10 >= 100)');
select tests.clear_authentication();

-- The minimum amount, where a last price is known.
insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close)
values ('binance', 'BTC/USDT', '5m', now() - interval '5 minutes', 1000000, 1000000, 1000000, 1000000);
select tests.authenticate_as('mia@markets.test');
select is(pg_temp.refusal($$insert into public.bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
  values ('dust', 'binance', 'BTC/USDT', '5m', 'rsi', 100, 6)$$),
  '23514 bots_stake_within_market: stake 6 USDT buys less than the minimum amount 0.00001 BTC of BTC/USDT on binance at the last price 1000000',
  'a stake that buys less than the market''s minimum amount is refused by name');
select is(pg_temp.refusal($$insert into public.bots (id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
  values (tests.id('bot', 3), 'fine', 'binance', 'BTC/USDT', '5m', 'rsi', 100, 20)$$),
  'accepted', 'a bot within the market''s limits is saved');
select is(pg_temp.refusal($$update public.bots set stake_amount = 2 where id = tests.id('bot', 3)$$),
  '23514 bots_stake_within_market: stake 2 USDT is below the minimum order value 5 USDT of BTC/USDT on binance',
  'lowering the stake below the minimum is refused');
select is(pg_temp.refusal($$update public.bots set trading_pair = 'DOGE/USDT' where id = tests.id('bot', 3)$$),
  '23514 bots_market_listed: binance does not list the market DOGE/USDT (markets loaded '
    || to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') || ')',
  'moving a bot to a pair the exchange does not list is refused');
select tests.clear_authentication();

-- A market that turns inactive: the bot can still be renamed or stopped.
select public.exchange_markets_store('binance', (select jsonb_object_agg(symbol, market || case when symbol = 'BTC/USDT' then '{"active": false}'::jsonb else '{}' end)
                                                   from public.exchange_markets where exchange = 'binance'), now());
select is((select status || ': ' || error_message from public.bots where id = tests.id('bot', 3)), null,
  'a stopped bot on a market that turned inactive is left as it is');
select tests.authenticate_as('mia@markets.test');
select is(pg_temp.refusal($$update public.bots set name = 'renamed', status = 'stopped' where id = tests.id('bot', 3)$$),
  'accepted', 'a bot on an inactive market can still be renamed and stopped');
select tests.clear_authentication();

-- Definitions that change under running bots: the bot stops with the save rule's reason.
update public.bots set status = 'running' where id in (tests.id('bot', 2), tests.id('bot', 3));
select public.exchange_markets_store('binance', (select jsonb_object_agg(symbol, case symbol
                                                     when 'BTC/USDT' then market || '{"active": true}'::jsonb
                                                     when 'BTC/USDT:USDT' then jsonb_set(market, '{limits,leverage,max}', '5')
                                                     else market end)
                                                   from public.exchange_markets where exchange = 'binance'), now());
select is((select status || ': ' || error_message from public.bots where id = tests.id('bot', 2)),
  'error: leverage 10 is above the maximum 5 of BTC/USDT:USDT on binance',
  'a running bot whose leverage the market no longer allows stops with that reason');
select is((select status || ': ' || coalesce(error_message, '-') from public.bots where id = tests.id('bot', 3)),
  'running: -', 'a running bot the market still admits runs on');
select public.exchange_markets_store('binance', (select jsonb_object_agg(symbol, case symbol
                                                     when 'BTC/USDT' then jsonb_set(market, '{limits,cost,min}', '50')
                                                     else market end)
                                                   from public.exchange_markets where exchange = 'binance'), now());
select is((select status || ': ' || error_message from public.bots where id = tests.id('bot', 3)),
  'error: stake 20 USDT is below the minimum order value 50 USDT of BTC/USDT on binance',
  'a running bot whose stake fell below a raised minimum stops with that reason');
select throws_ok($$select public.exchange_markets_store('binance', '[]'::jsonb, now())$$, '22023', null,
  'markets that are not an object of symbol to market are refused by name');

-- Refreshes asked for by a missing market are bounded per exchange.
select is(public.exchange_markets_claim_refresh('okx', 300), true, 'the first refresh of an exchange may start');
select is(public.exchange_markets_claim_refresh('okx', 300), false, 'another within the interval may not');
select is(public.exchange_markets_claim_refresh('okx', 0), true, 'a zero interval (the daily job) always may');
select throws_ok($$select public.exchange_markets_claim_refresh('okx', -1)$$, '22023', null,
  'a negative interval is refused by name');

select * from finish();
rollback;
