-- The identity matrix of tables and views: for every relation in public, exactly which
-- fixture rows (by name, see 000-identity-helpers) anon, alice and bob (users), pat
-- (provider), dana (admin) and the service role see, insert, update and delete.
-- 'denied' is a refusal, '-' nothing seen or changed, 'new' a row created; a|b accepts
-- either, !x anything but x. A null expectation is not checked (admins and the service
-- role legitimately see rows outside the fixture). "nothing of others" rows assert, for
-- users, that no row outside their own is visible at all (seed rows included). "blind"
-- writes have no where and no returning, so no select policy narrows them: which rows they
-- changed is read back by the owner ('write ;; probe').
begin;

select tests.mx_fixture();
-- A resting stop for every fixture trade (its owner's, as the fleet records them).
insert into public.protective_orders (bot_id, user_id, trade_id, client_order_id, exchange, symbol, kind, side,
                                      amount, trigger_price)
select t.bot_id, t.user_id, t.id, 'mx-' || t.id, 'binance', 'ETH/BTC', 'stop_loss', 'sell', 1, 0.09
  from public.trades t where t.id::text in (select m.key from mx m where m.kind = 'trade');
-- Equity for every fixture bot (its owner's, as the fleet records it).
insert into public.bot_equity (bot_id, user_id, candle_at, equity)
select b.id, b.user_id, now(), 1 from public.bots b where b.id::text in (select m.key from mx m where m.kind = 'bot');
-- Two audit rows (written by admin functions in real life; the owner writes them here).
insert into mx
select 'audit', 'x' || n, (private.admin_audit(tests.mx_id('user', 'dana'), 'set_user_role', 'user',
                                             tests.mx_id('user', 'bob')::text, 'matrix', '{}', '{}')).id::text
  from generate_series(1, 2) n;
-- Owners' requests on their positions (the RPCs write them in real life; the owner here).
insert into public.position_requests (id, user_id, bot_id, trade_id, kind, is_paper_trade, idempotency_key)
select tests.mx_id('preq', k), uid, tests.mx_id('bot', k), tests.mx_id('trade', k), 'close', true, uid::text || ':' || k
  from mx_rows;
insert into mx select 'preq', k, tests.mx_id('preq', k)::text from mx_rows;
-- Every owner's payout destination and payouts, an exposure of each invoice, and an
-- earning of pat's (the fleet and the RPCs write them in real life; the owner here).
insert into public.payout_destinations (id, user_id, provider, status, currency, stripe_account_id)
select tests.mx_id('pdest', o.n), o.uid, 'stripe', 'ready', 'USD', 'acct_mx_' || o.n from mx_owner o;
insert into mx select 'pdest', o.n, tests.mx_id('pdest', o.n)::text from mx_owner o;
insert into public.payouts (id, user_id, destination_id, hold_id, amount)
select tests.mx_id('payout', k), uid, tests.mx_id('pdest', n), tests.mx_id('payout-hold', k), 1 from mx_rows;
insert into mx select 'payout', k, tests.mx_id('payout', k)::text from mx_rows;
insert into public.credit_exposures (id, invoice_id, user_id, account_kind, reason, amount_due)
select tests.mx_id('exposure', k), tests.mx_id('invoice', k), uid, 'user', 'refund', 1 from mx_rows;
insert into mx select 'exposure', k, tests.mx_id('exposure', k)::text from mx_rows;
select public.credit_create_transfer(tests.mx_id('earning', 'p1'), private.credit_system_account('system:grants'),
                                     private.credit_user_account(tests.mx_id('user', 'pat'), 'provider_earnings'),
                                     8, 'revenue_share', 'strategy_subscription', 'mx', '{"payment": 10}');
insert into mx values ('earning', 'p1', tests.mx_id('earning', 'p1')::text);
-- A market the fleet cached (no user owns markets: every signed-in user reads them).
select public.exchange_markets_store('mxtest', '{"MX/USDT": {"symbol": "MX/USDT", "base": "MX", "quote": "USDT", "type": "spot"}}', now());

-- A service check, its service's state and an alert incident (the fleet writes them; the
-- owner writes them here).
-- Ids far from those of other tables' rows (keys of mx are unique across kinds).
insert into public.service_checks (id, service, status, ok, latency_ms) overriding system value
values (987654301, 'mxhealth', 'healthy', true, 1);
insert into mx values ('check', 'c1', '987654301');
insert into public.service_status (service, status, checked_at, changed_at) values ('mxhealth', 'healthy', now(), now());
insert into mx values ('status', 's1', 'mxhealth');
insert into public.alert_incidents (id, rule, key, summary) overriding system value
values (987654302, 'mx_rule', 'mx', 'matrix');
insert into mx values ('incident', 'i1', '987654302');
-- Latest candles (the candles trigger keeps them): of the fixture bots' market (every
-- fixture user has a bot on binance ETH/BTC) and of a market no bot trades.
insert into public.market_latest_candles (exchange, symbol, timeframe, open_time, open, high, low, close)
values ('binance', 'ETH/BTC', '5m', now(), 1, 1, 1, 1),
       ('binance', 'MXL/' || left(current_setting('tests.mx_salt'), 8), '5m', now(), 1, 1, 1, 1)
on conflict (exchange, symbol, timeframe) do nothing;
-- A price of a symbol every fixture user holds (aggregated holdings MX1), beside the
-- fixture's prices of symbols nobody holds.
insert into public.symbol_prices (symbol, price, source, as_of) values ('MX1', 190, 'alpaca', now())
on conflict (symbol) do nothing;
insert into mx values ('price', 'h1', 'MX1');
insert into mx values ('latest', 'l1', 'binance:ETH/BTC:5m'),
                      ('latest', 'l2', 'binance:MXL/' || left(current_setting('tests.mx_salt'), 8) || ':5m');

-- expected: anon | alice | bob | pat | dana | service_role
create temp table matrix (label text, statement text, expected text[]) on commit drop;
insert into matrix values
  ('organisations: select', $$select id::text as key from organisations where id::text = any(@org)$$, array['denied', 'o1', 'o1', 'o2', 'o1 o2', 'o1 o2']),
  ('organisations: insert', $$insert into organisations (name, owner_id) values ('x', @user.a) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('organisations: update', $$update organisations set owner_id = @user.b where id::text = any(@org) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'o1 o2']),
  ('organisations: delete', $$delete from organisations where id::text = any(@org) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'o1 o2']),
  ('organisation_members: select', $$select user_id::text as key from organisation_members where organisation_id::text = any(@org)$$, array['denied', 'a b', 'a b', 'p', 'a b p', 'a b p']),
  ('organisation_members: insert', $$insert into organisation_members (user_id, organisation_id, role) values (@user.b, @org.o2, 'owner') returning user_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'b']),
  ('organisation_members: update', $$update organisation_members set role = 'owner' where organisation_id::text = any(@org) returning user_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a b p']),
  ('organisation_members: delete', $$delete from organisation_members where organisation_id::text = any(@org) returning user_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a b p']),
  ('organisation_invitations: select', $$select id::text as key from organisation_invitations where id::text = any(@org_invite)$$, array['denied', 'i1 i2', '-', 'i1 i2', 'i1 i2', 'i1 i2']),
  ('organisation_invitations: insert', $$insert into organisation_invitations (organisation_id, email, role) values (@org.o1, 'x@identity.test', 'owner') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('organisation_invitations: update', $$update organisation_invitations set status = 'accepted' where id::text = any(@org_invite) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'i1 i2']),
  ('organisation_invitations: delete', $$delete from organisation_invitations where id::text = any(@org_invite) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'i1 i2']),
  ('organisation_members: nothing of other organisations', $$select organisation_id::text as key from organisation_members where not organisation_id = any (array(select m.organisation_id from organisation_members m where m.user_id = (select auth.uid())))$$, array['denied', '-', '-', '-', null, null]),
  ('profiles: select', $$select id::text as key from profiles where id::text = any(@user)$$, array['denied', 'a', 'b', 'p', 'a b d p', 'a b d p']),
  ('profiles: insert', $$insert into profiles (id, email) values (gen_random_uuid(), 'x@identity.test') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23503']),
  ('profiles: update name', $$update profiles set full_name = full_name where id::text = any(@user) returning id as key$$, array['denied', 'a', 'b', 'p', 'd', 'a b d p']),
  ('profiles: update role', $$update profiles set role = 'admin' where id::text = any(@user) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a b d p']),
  ('profiles: delete', $$delete from profiles where id::text = any(@user) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23503']),
  ('plans: select', $$select id::text as key from plans where id::text = any(@plan)$$, array['x', 'x', 'x', 'x', 'x', 'x']),
  ('plans: insert', $$insert into plans (name, price_monthly, max_bots, max_strategies) values ('Evil' || random(), 0, 999, 999) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('plans: update', $$update plans set max_bots = 999 where id::text = any(@plan) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'x']),
  ('plans: delete', $$delete from plans where id::text = any(@plan) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23503']),
  ('credit_packs: select', $$select (count(*) >= 0)::text as key from credit_packs$$, array['true', 'true', 'true', 'true', 'true', 'true']),
  ('credit_packs: insert', $$insert into credit_packs (name, credits, price) values ('Evil' || random(), 1000000, 0.01) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('credit_packs: update', $$update credit_packs set price = 0.01 where name = 'no such pack' returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', '-']),
  ('credit_packs: delete', $$delete from credit_packs where name = 'no such pack' returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', '-']),
  ('subscriptions: select', $$select id::text as key from subscriptions where id::text = any(@subscription)$$, array['denied', 'a', 'b', 'p', 'a b d p', 'a b d p']),
  ('subscriptions: insert', $$insert into subscriptions (user_id, plan_id, expires_at) values (@user.a, @plan.x, now()) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23502']),
  ('subscriptions: update auto-renew', $$update subscriptions set auto_renew = false where id::text = any(@subscription) returning id as key$$, array['denied', 'a', 'b', 'p', 'd', 'a b d p']),
  ('subscriptions: update plan', $$update subscriptions set plan_id = plan_id where id::text = any(@subscription) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a b d p']),
  ('subscriptions: delete', $$delete from subscriptions where id::text = any(@subscription) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a b d p']),
  ('invoices: select', $$select id::text as key from invoices where id::text = any(@invoice)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('invoices: insert', $$insert into invoices (user_id, amount) values (@user.a, 1) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('invoices: update', $$update invoices set status = 'paid' where id::text = any(@invoice) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('invoices: delete', $$delete from invoices where id::text = any(@invoice) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('credit_accounts: select', $$select id::text as key from credit_accounts where id::text = any(@account)$$, array['denied', 'a', 'b', 'p', 'a b d p', 'a b d p']),
  ('credit_accounts: insert', $$insert into credit_accounts (user_id, kind, code) values (@user.a, 'user', 'evil' || random()) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23505']),
  ('credit_accounts: update', $$update credit_accounts set credits_posted = 1e6 where id::text = any(@account) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a b d p']),
  ('credit_accounts: delete', $$delete from credit_accounts where id::text = any(@account) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23503']),
  ('credit_transfers: select', $$select id::text as key from credit_transfers where id::text = any(@transfer)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('credit_transfers: insert', $$insert into credit_transfers (id, debit_account_id, credit_account_id, amount, kind) values (gen_random_uuid(), @account.b, @account.a, 1, 'correction') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('credit_transfers: update', $$update credit_transfers set metadata = '{}' where id::text = any(@transfer) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23001']),
  ('credit_transfers: delete', $$delete from credit_transfers where id::text = any(@transfer) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23001']),
  ('exchange_markets: select', $$select symbol as key from exchange_markets where exchange = 'mxtest'$$, array['denied', 'MX/USDT', 'MX/USDT', 'MX/USDT', 'MX/USDT', 'MX/USDT']),
  ('exchange_markets: insert', $$insert into exchange_markets (exchange, symbol, base, quote, type, market, fetched_at) values ('mxtest', 'EVIL/USDT', 'EVIL', 'USDT', 'spot', '{}', now()) returning symbol as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'EVIL/USDT']),
  ('exchange_markets: update', $$update exchange_markets set active = false where exchange = 'mxtest' returning symbol as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'MX/USDT']),
  ('exchange_markets: delete', $$delete from exchange_markets where exchange = 'mxtest' returning symbol as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'MX/USDT']),
  ('exchange_market_loads: select', $$select exchange as key from exchange_market_loads where exchange = 'mxtest'$$, array['denied', 'mxtest', 'mxtest', 'mxtest', 'mxtest', 'mxtest']),
  ('exchange_market_loads: insert', $$insert into exchange_market_loads (exchange) values ('mxevil') returning exchange as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'mxevil']),
  ('exchange_market_loads: update', $$update exchange_market_loads set markets = 0 where exchange = 'mxtest' returning exchange as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'mxtest']),
  ('exchange_market_loads: delete', $$delete from exchange_market_loads where exchange = 'mxtest' returning exchange as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'mxtest']),
  ('exchange_credentials: select', $$select id::text as key from exchange_credentials where id::text = any(@cred)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('exchange_credentials: select ciphertext', $$select sealed_secret as key from exchange_credentials where id::text = any(@cred)$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0']),
  ('exchange_credentials: insert', $$insert into exchange_credentials (user_id, exchange, label, sealed_secret, key_id) values (@user.a, 'bybit', 'x', 'x', 'k') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('exchange_credentials: update label', $$update exchange_credentials set label = label || '!' where id::text = any(@cred) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('exchange_credentials: update secret', $$update exchange_credentials set sealed_secret = 'x' where id::text = any(@cred) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('exchange_credentials: delete', $$delete from exchange_credentials where id::text = any(@cred) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('strategies: select', $$select id::text as key from strategies where id::text = any(@strategy)$$, array['m1', 'a1 a2 m1', 'b1 b2 m1', 'm1 m2 p1 p2', 'a1 a2 b1 b2 d1 d2 m1 m2 p1 p2', 'a1 a2 b1 b2 d1 d2 m1 m2 p1 p2']),
  ('strategies: select content', $$select id::text as key from strategies where id::text = any(@strategy) and (content is not null or parameters is not null)$$, array['denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 m1 m2 p1 p2', 'a1 a2 b1 b2 d1 d2 m1 m2 p1 p2']),
  ('strategies: read m1 content', $$select id::text as key from strategies where id = @strategy.m1 and (content is not null or parameters is not null)$$, array['denied', 'denied', 'denied', 'denied', 'm1', 'm1']),
  ('strategies: insert own', $$insert into strategies (name, strategy_type, engine) values ('new', 'custom', 'rsi') returning id as key$$, array['denied', 'new', 'new', 'new', 'new', 'error=23502']),
  ('strategies: insert marketplace', $$insert into strategies (name, strategy_type, engine) values ('mkt', 'marketplace', 'rsi') returning id as key$$, array['denied', 'denied', 'denied', 'new', 'new', 'error=23502']),
  ('strategies: insert for bob', $$insert into strategies (user_id, name, strategy_type, engine) values (@user.b, 'new', 'custom', 'rsi') returning id as key$$, array['denied', 'denied', 'new', 'denied', 'denied', 'new']),
  ('strategies: update', $$update strategies set name = name || '!' where id::text = any(@strategy) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'm1 m2 p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 m1 m2 p1 p2']),
  ('strategies: verify', $$update strategies set is_verified = true where id::text = any(@strategy) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 m1 m2 p1 p2']),
  ('strategies: delete', $$delete from strategies where id::text = any(@strategy) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'm1 m2 p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 m1 m2 p1 p2']),
  ('bots: select', $$select id::text as key from bots where id::text = any(@bot)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bots: insert own', $$insert into bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount) values ('n', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1) returning id as key$$, array['denied', 'new', 'new', 'new', 'new', 'error=23502']),
  ('bots: insert for bob', $$insert into bots (user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount) values (@user.b, 'n', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1) returning id as key$$, array['denied', 'denied', 'new', 'denied', 'denied', 'new']),
  ('bots: update name', $$update bots set name = name || '!' where id::text = any(@bot) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bots: start', $$update bots set status = 'running' where id::text = any(@bot) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bots: use bob''s private strategy', $$update bots set strategy_id = @strategy.b1 where id::text = any(@bot) returning id as key$$, array['denied', 'denied', 'b1 b2', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bots: use m1 without subscribing', $$update bots set strategy_id = @strategy.m1 where id = @bot.b2 returning id as key$$, array['denied', '-', 'denied', '-', '-', 'b2']),
  ('bots: write balance', $$update bots set current_balance = 1e9 where id::text = any(@bot) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bots: delete', $$delete from bots where id::text = any(@bot) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bot_leases: select', $$select bot_id::text as key from bot_leases where bot_id::text = any(@bot)$$, array['denied', '-', '-', '-', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bot_leases: insert', $$insert into bot_leases (bot_id, epoch, expires_at) values (gen_random_uuid(), 1, now()) returning bot_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23503']),
  ('bot_leases: update', $$update bot_leases set epoch = epoch + 1 where bot_id::text = any(@bot) returning bot_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bot_leases: delete', $$delete from bot_leases where bot_id::text = any(@bot) returning bot_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('credit_exposures: select', $$select id::text as key from credit_exposures where id::text = any(@exposure)$$, array['denied', '-', '-', '-', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('credit_exposures: insert', $$insert into credit_exposures (invoice_id, user_id, account_kind, reason, amount_due) values (@invoice.a1, @user.a, 'provider_earnings', 'refund', 1) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('credit_exposures: update', $$update credit_exposures set status = 'settled' where id::text = any(@exposure) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('credit_exposures: delete', $$delete from credit_exposures where id::text = any(@exposure) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('payout_destinations: select', $$select id::text as key from payout_destinations where id::text = any(@pdest)$$, array['denied', 'a', 'b', 'p', 'a b d p', 'a b d p']),
  ('payout_destinations: insert', $$insert into payout_destinations (user_id, provider, currency) values (@user.a, 'stripe', 'USD') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23505']),
  ('payout_destinations: update', $$update payout_destinations set status = 'ready' where id::text = any(@pdest) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a b d p']),
  ('payout_destinations: delete', $$delete from payout_destinations where id::text = any(@pdest) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23503']),
  ('payouts: select', $$select id::text as key from payouts where id::text = any(@payout)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('payouts: insert', $$insert into payouts (id, user_id, destination_id, hold_id, amount) values (gen_random_uuid(), @user.a, @pdest.a, gen_random_uuid(), 1) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('payouts: update', $$update payouts set status = 'paid' where id::text = any(@payout) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('payouts: delete', $$delete from payouts where id::text = any(@payout) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('provider_statement: select', $$select transfer_id::text as key from provider_statement where transfer_id::text = any(@earning)$$, array['denied', '-', '-', 'p1', 'p1', 'p1']),
  ('position_requests: select', $$select id::text as key from position_requests where id::text = any(@preq)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('position_requests: insert', $$insert into position_requests (user_id, bot_id, trade_id, kind, is_paper_trade, idempotency_key) values (@user.a, @bot.a1, @trade.a1, 'close', true, 'forged') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23505']),
  ('position_requests: update', $$update position_requests set status = 'done' where id::text = any(@preq) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('position_requests: delete', $$delete from position_requests where id::text = any(@preq) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('orders: select', $$select id::text as key from orders where id::text = any(@order)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('orders: insert', $$insert into orders (bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, lease_epoch) values (@bot.a1, @user.a, 'x', 'binance', 'ETH/BTC', 'buy', 'market', 1, 1) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('orders: update', $$update orders set status = 'canceled' where id::text = any(@order) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('orders: delete', $$delete from orders where id::text = any(@order) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('trades: select', $$select id::text as key from trades where id::text = any(@trade)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('trades: insert', $$insert into trades (bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time) values (@bot.a1, @user.a, 'binance', 'ETH/BTC', 'buy', 1, 0.1, now()) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('trades: update', $$update trades set profit = 100 where id::text = any(@trade) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('trades: delete', $$delete from trades where id::text = any(@trade) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('protective_orders: select', $$select trade_id::text as key from protective_orders where trade_id::text = any(@trade)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('protective_orders: insert', $$insert into protective_orders (bot_id, user_id, trade_id, client_order_id, exchange, symbol, kind, side, amount, trigger_price) values (@bot.a1, @user.a, @trade.a1, 'x', 'binance', 'ETH/BTC', 'stop_loss', 'sell', 1, 0.09) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('protective_orders: update', $$update protective_orders set status = 'canceled' where trade_id::text = any(@trade) returning trade_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('protective_orders: delete', $$delete from protective_orders where trade_id::text = any(@trade) returning trade_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bot_equity: select', $$select bot_id::text as key from bot_equity where bot_id::text = any(@bot)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bot_equity: insert', $$insert into bot_equity (bot_id, user_id, candle_at, equity) values (@bot.a1, @user.a, now(), 1e9) returning bot_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23505']),
  ('bot_equity: update', $$update bot_equity set equity = 1e9 where bot_id::text = any(@bot) returning bot_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bot_equity: delete', $$delete from bot_equity where bot_id::text = any(@bot) returning bot_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bot_logs: select', $$select id::text as key from bot_logs where id::text = any(@log)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bot_logs: insert', $$insert into bot_logs (user_id, log_level, message) values (@user.a, 'info', 'x') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('bot_logs: update', $$update bot_logs set message = 'x' where id::text = any(@log) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bot_logs: delete', $$delete from bot_logs where id::text = any(@log) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('candles: select', $$select symbol as key from candles where symbol = any(@candle)$$, array['denied', 'c1 c2', 'c1 c2', 'c1 c2', 'c1 c2', 'c1 c2']),
  ('candles: insert', $$insert into candles (exchange, symbol, timeframe, open_time, open, high, low, close) values ('binance', @candle.c1, '5m', now(), 1, 1, 1, 1) returning 0 as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('candles: update', $$update candles set close = 1 where symbol = any(@candle) returning symbol as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23514']),
  ('candles: delete', $$delete from candles where symbol = any(@candle) returning symbol as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'c1 c2']),
  ('backtest_runs: select', $$select id::text as key from backtest_runs where id::text = any(@run)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_runs: insert own', $$insert into backtest_runs (strategy, trading_pair, timeframe) values ('sma_cross', 'ETH/BTC', '5m') returning id as key$$, array['denied', 'new', 'new', 'new', 'new', 'error=23502']),
  ('backtest_runs: insert for bob', $$insert into backtest_runs (user_id, strategy, trading_pair, timeframe) values (@user.b, 'sma_cross', 'ETH/BTC', '5m') returning id as key$$, array['denied', 'denied', 'new', 'denied', 'denied', 'new']),
  ('backtest_runs: cancel', $$update backtest_runs set status = 'cancelled' where id::text = any(@run) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_runs: progress', $$update backtest_runs set progress = 1 where id::text = any(@run) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_runs: delete', $$delete from backtest_runs where id::text = any(@run) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_results: select', $$select id::text as key from backtest_results where id::text = any(@result)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_results: insert', $$insert into backtest_results (user_id, trading_pair, timeframe, start_date, end_date, initial_balance, final_balance, total_return, total_return_percentage, max_drawdown, win_rate, total_trades, winning_trades, losing_trades, best_trade, worst_trade) values (@user.a, 'ETH/BTC', '5m', '2018-01-10', '2018-01-20', 1, 9, 8, 800, 0, 100, 1, 1, 0, 8, 8) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('backtest_results: update', $$update backtest_results set total_return_percentage = 999 where id::text = any(@result) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_results: delete', $$delete from backtest_results where id::text = any(@result) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_reports: select', $$select run_id::text as key from backtest_reports where run_id::text = any(@run)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_reports: insert', $$insert into backtest_reports (run_id, user_id, html) values (@run.a1, @user.a, 'x') returning run_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23505']),
  ('backtest_reports: update', $$update backtest_reports set html = 'x' where run_id::text = any(@run) returning run_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_reports: delete', $$delete from backtest_reports where run_id::text = any(@run) returning run_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('data_requests: select', $$select id::text as key from data_requests where id::text = any(@dreq)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('data_requests: request own', $$insert into data_requests (trading_pair, timeframe, start_date) values ('ETH/BTC', '5m', '2024-01-01') returning id as key$$, array['denied', 'new', 'new', 'new', 'new', 'error=23502']),
  ('data_requests: request for bob', $$insert into data_requests (user_id, trading_pair, timeframe, start_date) values (@user.b, 'ETH/BTC', '5m', '2024-01-01') returning id as key$$, array['denied', 'denied', 'new', 'denied', 'denied', 'new']),
  ('data_requests: update', $$update data_requests set status = 'completed' where id::text = any(@dreq) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('data_requests: delete', $$delete from data_requests where id::text = any(@dreq) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('api_keys: select', $$select id::text as key from api_keys where id::text = any(@api_key)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('api_keys: select the hash', $$select encode(key_hash, 'hex') as key from api_keys where id::text = any(@api_key)$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_keys: insert', $$insert into api_keys (user_id, name, environment, prefix, key_hash, scopes) values (@user.a, 'x', 'live', 'tf_live_mxmxmxmx', '\x00', '{bots:read}') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_keys: update scopes', $$update api_keys set scopes = '{bots:read,bots:write}' where id::text = any(@api_key) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_keys: update revoked_at', $$update api_keys set revoked_at = null where id::text = any(@api_key) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_keys: delete', $$delete from api_keys where id::text = any(@api_key) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_usage_minutes: select', $$select key_id::text as key from api_usage_minutes where key_id::text = any(@api_key)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('api_usage_minutes: insert', $$insert into api_usage_minutes (key_id, user_id, minute, endpoint, status, calls, latency_ms_sum, latency_ms_max) values (@api_key.a1, @user.a, now(), 'x', 200, 1, 1, 1) returning key_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_usage_minutes: update', $$update api_usage_minutes set calls = 0 where key_id::text = any(@api_key) returning key_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_usage_minutes: delete', $$delete from api_usage_minutes where key_id::text = any(@api_key) returning key_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_usage_days: select', $$select key_id::text as key from api_usage_days where key_id::text = any(@api_key)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('api_usage_days: insert', $$insert into api_usage_days (key_id, user_id, day, calls, errors, latency_ms_sum) values (@api_key.a1, @user.a, current_date - 1, 1, 0, 1) returning key_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_usage_days: update', $$update api_usage_days set calls = 0 where key_id::text = any(@api_key) returning key_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_usage_days: delete', $$delete from api_usage_days where key_id::text = any(@api_key) returning key_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('api_usage_per_minute: select', $$select key_id::text as key from api_usage_per_minute where key_id::text = any(@api_key)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('api_usage_per_day: select', $$select key_id::text as key from api_usage_per_day where key_id::text = any(@api_key)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('ai_analyses: select', $$select id::text as key from ai_analyses where id::text = any(@ai)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('ai_analyses: insert', $$insert into ai_analyses (user_id, analysis_type, input_data) values (@user.a, 'risk', '{}') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('ai_analyses: update', $$update ai_analyses set results = '{}' where id::text = any(@ai) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('ai_analyses: delete', $$delete from ai_analyses where id::text = any(@ai) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('signals: select', $$select id::text as key from signals where id::text = any(@signal)$$, array['denied', 's1 s2', 's2', 's1 s2', 's1 s2', 's1 s2']),
  ('signals: publish on m1', $$insert into signals (strategy_id, pair, side) values (@strategy.m1, 'ETH/BTC', 'long') returning strategy_id as key$$, array['denied', 'denied', 'denied', 'm1', 'denied', 'error=23502']),
  ('signals: publish on a1', $$insert into signals (strategy_id, pair, side) values (@strategy.a1, 'ETH/BTC', 'long') returning strategy_id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23502']),
  ('signals: update note', $$update signals set note = 'x' where id::text = any(@signal) returning id as key$$, array['denied', '-', '-', 's1 s2', '-', 's1 s2']),
  ('signals: close at any price', $$update signals set status = 'closed', exit_price = 1000 where id::text = any(@signal) returning id as key$$, array['denied', '-', '-', 'error=23514', '-', 's1 s2']),
  ('signals: delete', $$delete from signals where id::text = any(@signal) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 's1 s2']),
  ('strategy_subscriptions: select', $$select id::text as key from strategy_subscriptions where id::text = any(@strategy_sub)$$, array['denied', 'a1 a2', 'b1', '-', 'a1 a2 b1', 'a1 a2 b1']),
  ('strategy_subscriptions: read bot and sizing', $$select id::text as key from strategy_subscriptions where id::text = any(@strategy_sub) and (bot_id is not null or sizing is not null)$$, array['denied', 'a1 a2', 'b1', '-', 'a1 a2 b1', 'a1 a2 b1']),
  ('strategy_subscriptions: insert', $$insert into strategy_subscriptions (strategy_id, subscriber_id, status) values (@strategy.m1, @user.b, 'active') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('strategy_subscriptions: update settings', $$update strategy_subscriptions set auto_execute = auto_execute, sizing = sizing where id::text = any(@strategy_sub) returning id as key$$, array['denied', 'a1 a2', 'b1', '-', '-', 'a1 a2 b1']),
  ('strategy_subscriptions: update price', $$update strategy_subscriptions set price = 0 where id::text = any(@strategy_sub) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1']),
  ('strategy_subscriptions: update status', $$update strategy_subscriptions set status = 'cancelled' where id::text = any(@strategy_sub) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1']),
  ('strategy_subscriptions: delete', $$delete from strategy_subscriptions where id::text = any(@strategy_sub) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1']),
  ('reviews: select', $$select id::text as key from reviews where id::text = any(@review)$$, array['a1', 'a1', 'a1', 'a1 a2 b1', 'a1 a2 b1', 'a1 a2 b1']),
  ('reviews: read reviewer', $$select user_id::text as key from reviews where id::text = any(@review)$$, array['denied', 'a', 'a', 'a a b', 'a a b', 'a a b']),
  ('reviews: insert on m1', $$insert into reviews (strategy_id, rating) values (@strategy.m1, 1) returning strategy_id as key$$, array['denied', 'error=23505', 'denied', 'denied', 'denied', 'error=23502']),
  ('reviews: update', $$update reviews set rating = 1 where id::text = any(@review) returning id as key$$, array['denied', 'a1', '-', '-', '-', 'a1 a2 b1']),
  ('reviews: delete', $$delete from reviews where id::text = any(@review) returning id as key$$, array['denied', 'a1', '-', '-', '-', 'a1 a2 b1']),
  ('notifications: select', $$select id::text as key from notifications where id::text = any(@note)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('notifications: insert', $$insert into notifications (user_id, kind, title) values (@user.b, 'system', 'phish') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('notifications: mark read', $$update notifications set read_at = now() where id::text = any(@note) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('notifications: rewrite', $$update notifications set title = 'phish' where id::text = any(@note) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('notifications: delete', $$delete from notifications where id::text = any(@note) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('brokerage_connections: select', $$select id::text as key from brokerage_connections where id::text = any(@conn)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('brokerage_connections: select secret', $$select sealed_user_secret as key from brokerage_connections where id::text = any(@conn)$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0 v1:k1:bm9uY2U=:c2VjcmV0']),
  ('brokerage_connections: insert', $$insert into brokerage_connections (user_id, provider) values (@user.a, 'snaptrade') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('brokerage_connections: update', $$update brokerage_connections set status = 'active' where id::text = any(@conn) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('brokerage_connections: delete', $$delete from brokerage_connections where id::text = any(@conn) returning id as key$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('brokerage_accounts: select', $$select id::text as key from brokerage_accounts where id::text = any(@acct)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('brokerage_accounts: insert', $$insert into brokerage_accounts (connection_id, user_id, provider_account_id) values (@conn.a1, @user.a, 'x') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('brokerage_accounts: update', $$update brokerage_accounts set cash = 1e9 where id::text = any(@acct) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('brokerage_accounts: delete', $$delete from brokerage_accounts where id::text = any(@acct) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('brokerage_positions: select', $$select id::text as key from brokerage_positions where id::text = any(@pos)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('brokerage_positions: insert', $$insert into brokerage_positions (account_id, user_id, symbol, units) values (@acct.a1, @user.a, 'TSLA', 1) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('brokerage_positions: update', $$update brokerage_positions set units = 0 where id::text = any(@pos) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('brokerage_positions: delete', $$delete from brokerage_positions where id::text = any(@pos) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('aggregated_holdings: select', $$select id::text as key from aggregated_holdings where id::text = any(@hold)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('aggregated_holdings: insert', $$insert into aggregated_holdings (user_id, symbol, total_units) values (@user.a, 'ZZZ', 1) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('aggregated_holdings: update', $$update aggregated_holdings set total_units = 0 where id::text = any(@hold) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('aggregated_holdings: delete', $$delete from aggregated_holdings where id::text = any(@hold) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('sync_runs: select', $$select id::text as key from sync_runs where id::text = any(@sync)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('sync_runs: request own', $$insert into sync_runs default values returning id as key$$, array['denied', 'new', 'new', 'new', 'new', 'error=23502']),
  ('sync_runs: request on bob''s connection', $$insert into sync_runs (connection_id) values (@conn.b1) returning id as key$$, array['denied', 'denied', 'new', 'denied', 'denied', 'error=23502']),
  ('sync_runs: update', $$update sync_runs set status = 'completed' where id::text = any(@sync) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('sync_runs: delete', $$delete from sync_runs where id::text = any(@sync) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('webhook_events: select', $$select id::text as key from webhook_events where id::text = any(@event)$$, array['denied', '-', '-', '-', 'w1 w2', 'w1 w2']),
  ('webhook_events: insert', $$insert into webhook_events (provider, event_id, event_type, payload) values ('stripe', 'evt_' || random(), 'x', '{}') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('webhook_events: update', $$update webhook_events set status = 'processed' where id::text = any(@event) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'w1 w2']),
  ('webhook_events: delete', $$delete from webhook_events where id::text = any(@event) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'w1 w2']),
  ('service_checks: select', $$select id::text as key from service_checks where id::text = any(@check)$$, array['denied', '-', '-', '-', 'c1', 'c1']),
  ('service_checks: insert', $$insert into service_checks (service, status, ok) values ('mxforged', 'down', false) returning service as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'mxforged']),
  ('service_checks: update', $$update service_checks set status = 'down' where id::text = any(@check) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'c1']),
  ('service_checks: delete', $$delete from service_checks where id::text = any(@check) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'c1']),
  ('service_checks: nothing', $$select id::text as key from service_checks$$, array['denied', '-', '-', '-', null, null]),
  ('service_status: select', $$select service as key from service_status where service = any(@status)$$, array['denied', '-', '-', '-', 's1', 's1']),
  ('service_status: insert', $$insert into service_status (service, status, checked_at, changed_at) values ('mxforged', 'down', now(), now()) returning service as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'mxforged']),
  ('service_status: update', $$update service_status set status = 'down' where service = any(@status) returning service as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 's1']),
  ('service_status: delete', $$delete from service_status where service = any(@status) returning service as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 's1']),
  ('service_status: nothing', $$select service as key from service_status$$, array['denied', '-', '-', '-', null, null]),
  ('alert_incidents: select', $$select id::text as key from alert_incidents where id::text = any(@incident)$$, array['denied', '-', '-', '-', 'i1', 'i1']),
  ('alert_incidents: insert', $$insert into alert_incidents (rule, key, summary) values ('mx_forged', 'x', 'forged') returning rule as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'mx_forged']),
  ('alert_incidents: update', $$update alert_incidents set resolved_at = now() where id::text = any(@incident) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'i1']),
  ('alert_incidents: delete', $$delete from alert_incidents where id::text = any(@incident) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'i1']),
  ('alert_incidents: nothing', $$select id::text as key from alert_incidents$$, array['denied', '-', '-', '-', null, null]),
  ('admin_audit_log: select', $$select id::text as key from admin_audit_log where id::text = any(@audit)$$, array['denied', '-', '-', '-', 'x1 x2', 'x1 x2']),
  ('admin_audit_log: insert', $$insert into admin_audit_log (actor_role, action, target_type, target_id) values ('service_role', 'forged', 'user', 'x') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('admin_audit_log: update', $$update admin_audit_log set reason = 'forged' where id::text = any(@audit) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('admin_audit_log: delete', $$delete from admin_audit_log where id::text = any(@audit) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('jobs: select', $$select id::text as key from jobs where id::text = any(@job)$$, array['denied', '-', '-', '-', 'j1 j2', 'j1 j2']),
  ('jobs: insert', $$insert into jobs (kind) values ('fleet.noop') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('jobs: update', $$update jobs set priority = 100 where id::text = any(@job) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'j1 j2']),
  ('jobs: delete', $$delete from jobs where id::text = any(@job) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'j1 j2']),
  ('workers: select', $$select id::text as key from workers where id::text = any(@worker)$$, array['denied', '-', '-', '-', 'w1 w2', 'w1 w2']),
  ('workers: insert', $$insert into workers (name, host, pid, version) values ('evil', 'h', 1, '0') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('workers: update', $$update workers set status = 'dead' where id::text = any(@worker) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'w1 w2']),
  ('workers: delete', $$delete from workers where id::text = any(@worker) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'w1 w2']),
  ('symbol_prices: select', $$select symbol as key from symbol_prices where symbol = any(@price)$$, array['denied', 'h1', 'h1', 'h1', 'h1', 'h1 x1 x2']),
  ('symbol_prices: insert', $$insert into symbol_prices (symbol, price, source, as_of) values ('ZZZ', 1, 'alpaca', now()) returning 0 as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('symbol_prices: update', $$update symbol_prices set price = 0 where symbol = any(@price) returning symbol as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'error=23514']),
  ('symbol_prices: delete', $$delete from symbol_prices where symbol = any(@price) returning symbol as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'h1 x1 x2']),
  ('market_latest_candles: select', $$select exchange || ':' || symbol || ':' || timeframe as key from market_latest_candles where exchange || ':' || symbol || ':' || timeframe = any(@latest)$$, array['denied', 'l1', 'l1', 'l1', 'l1', 'l1 l2']),
  ('market_latest_candles: insert', $$insert into market_latest_candles (exchange, symbol, timeframe, open_time, open, high, low, close) values ('binance', 'EVIL/X', '5m', now(), 1, 1, 1, 1) returning 0 as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('market_latest_candles: update', $$update market_latest_candles set close = 1 where exchange || ':' || symbol || ':' || timeframe = any(@latest) returning exchange || ':' || symbol || ':' || timeframe as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'l1 l2']),
  ('market_latest_candles: delete', $$delete from market_latest_candles where exchange || ':' || symbol || ':' || timeframe = any(@latest) returning exchange || ':' || symbol || ':' || timeframe as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'l1 l2']),
  ('signal_executions: select', $$select id::text as key from signal_executions where id::text = any(@execution)$$, array['denied', 'a1', 'b1', '-', 'a1 b1', 'a1 b1']),
  ('signal_executions: read bot', $$select id::text as key from signal_executions where id::text = any(@execution) and bot_id is not null$$, array['denied', 'a1', 'b1', '-', 'a1 b1', 'a1 b1']),
  ('signal_executions: insert', $$insert into signal_executions (signal_id, subscription_id, subscriber_id, phase, status) values (@signal.s1, @strategy_sub.a1, @user.a, 'close', 'skipped') returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'new']),
  ('signal_executions: update', $$update signal_executions set reason = 'x' where id::text = any(@execution) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 b1']),
  ('signal_executions: delete', $$delete from signal_executions where id::text = any(@execution) returning id as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a1 b1']),
  ('bot_performance_summary: select', $$select id::text as key from bot_performance_summary where id::text = any(@bot)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('strategy_marketplace: select', $$select id::text as key from strategy_marketplace where id::text = any(@strategy)$$, array['m1', 'm1', 'm1', 'm1', 'm1', 'm1']),
  ('credit_balances: select', $$select account_id::text as key from credit_balances where account_id::text = any(@account)$$, array['denied', 'a', 'b', 'p', 'a b d p', 'a b d p']),
  ('credit_statement: select', $$select transfer_id::text as key from credit_statement where transfer_id::text = any(@transfer) and account_id::text = any(@account)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('fleet_health: select', $$select id::text as key from fleet_health where id::text = any(@worker)$$, array['denied', '-', '-', '-', 'w1 w2', 'w1 w2']),
  ('job_queue_stats: select', $$select kind as key from job_queue_stats where kind = any(@queue)$$, array['denied', '-', '-', '-', 'q', 'q']),
  ('portfolio_holdings: select', $$select (select h.id::text from aggregated_holdings h where h.user_id = v.user_id and h.symbol = v.symbol) as key from portfolio_holdings v where v.user_id::text = any(@user) and v.symbol like 'MX%'$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('portfolio_value: select', $$select user_id::text as key from portfolio_value where user_id::text = any(@user)$$, array['denied', 'a', 'b', 'p', 'd', 'a b d p']),
  ('profiles: nothing of others', $$select id::text as key from profiles where id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('payouts: nothing of others', $$select id::text as key from payouts where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, null]),
  ('payout_destinations: nothing of others', $$select id::text as key from payout_destinations where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, null]),
  ('credit_exposures: nothing', $$select id::text as key from credit_exposures$$, array['denied', '-', '-', '-', null, null]),
  ('provider_statement: nothing of others', $$select transfer_id::text as key from provider_statement where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, null]),
  ('invoices: nothing of others', $$select id::text as key from invoices where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('subscriptions: nothing of others', $$select id::text as key from subscriptions where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('credit_accounts: nothing of others', $$select id::text as key from credit_accounts where user_id is distinct from (select auth.uid())$$, array['denied', '-', '-', '-', null, null]),
  ('credit_transfers: nothing of others', $$select id::text as key from credit_transfers t where not exists (select 1 from credit_accounts a where a.user_id = (select auth.uid()) and a.id in (t.debit_account_id, t.credit_account_id))$$, array['denied', '-', '-', '-', null, null]),
  ('exchange_credentials: nothing of others', $$select id::text as key from exchange_credentials where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('strategies: no private strategy of others', $$select id::text as key from strategies where user_id <> (select auth.uid()) and not is_public$$, array['-', '-', '-', '-', null, '-']),
  ('bots: nothing of others', $$select id::text as key from bots where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('bot_leases: nothing', $$select bot_id::text as key from bot_leases$$, array['denied', '-', '-', '-', null, null]),
  ('position_requests: nothing of others', $$select id::text as key from position_requests where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('orders: nothing of others', $$select id::text as key from orders where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('trades: nothing of others', $$select id::text as key from trades where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('protective_orders: nothing of others', $$select id::text as key from protective_orders where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('bot_equity: nothing of others', $$select bot_id::text as key from bot_equity where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('bot_logs: nothing of others', $$select id::text as key from bot_logs where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('backtest_runs: nothing of others', $$select id::text as key from backtest_runs where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('backtest_results: nothing of others', $$select id::text as key from backtest_results where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('api_keys: nothing of others', $$select id::text as key from api_keys where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('api_usage_minutes: nothing of others', $$select key_id::text as key from api_usage_minutes where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('api_usage_days: nothing of others', $$select key_id::text as key from api_usage_days where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('ai_analyses: nothing of others', $$select id::text as key from ai_analyses where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('signal_executions: nothing of others', $$select id::text as key from signal_executions e where subscriber_id <> (select auth.uid()) and not exists (select 1 from signals s join strategies st on st.id = s.strategy_id where s.id = e.signal_id and st.user_id = (select auth.uid()))$$, array['denied', '-', '-', '-', null, '-']),
  ('strategy_subscriptions: nothing of others', $$select id::text as key from strategy_subscriptions s where subscriber_id <> (select auth.uid()) and not exists (select 1 from strategies st where st.id = s.strategy_id and st.user_id = (select auth.uid()))$$, array['denied', '-', '-', '-', null, '-']),
  ('signals: only of subscribed or own strategies', $$select id::text as key from signals s where provider_id <> (select auth.uid()) and not exists (select 1 from strategy_subscriptions ss where ss.strategy_id = s.strategy_id and ss.subscriber_id = (select auth.uid()))$$, array['denied', '-', '-', '-', null, '-']),
  ('notifications: nothing of others', $$select id::text as key from notifications where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('brokerage_connections: nothing of others', $$select id::text as key from brokerage_connections where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('brokerage_accounts: nothing of others', $$select id::text as key from brokerage_accounts where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('brokerage_positions: nothing of others', $$select id::text as key from brokerage_positions where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('aggregated_holdings: nothing of others', $$select id::text as key from aggregated_holdings where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('sync_runs: nothing of others', $$select id::text as key from sync_runs where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('webhook_events: nothing', $$select id::text as key from webhook_events$$, array['denied', '-', '-', '-', null, null]),
  ('admin_audit_log: nothing', $$select id::text as key from admin_audit_log$$, array['denied', '-', '-', '-', null, null]),
  ('jobs: nothing', $$select id::text as key from jobs$$, array['denied', '-', '-', '-', null, null]),
  ('workers: nothing', $$select id::text as key from workers$$, array['denied', '-', '-', '-', null, null]),
  ('bot_performance_summary: nothing of others', $$select id::text as key from bot_performance_summary where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', null, '-']),
  ('credit_balances: nothing of others', $$select account_id::text as key from credit_balances where user_id is distinct from (select auth.uid())$$, array['denied', '-', '-', '-', null, null]),
  ('credit_statement: nothing of others', $$select transfer_id::text as key from credit_statement where user_id is distinct from (select auth.uid())$$, array['denied', '-', '-', '-', null, null]),
  ('fleet_health: nothing', $$select id::text as key from fleet_health$$, array['denied', '-', '-', '-', null, null]),
  ('job_queue_stats: nothing', $$select kind as key from job_queue_stats$$, array['denied', '-', '-', '-', null, null]),
  ('portfolio_holdings: nothing of others', $$select symbol as key from portfolio_holdings where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('portfolio_value: nothing of others', $$select user_id::text as key from portfolio_value where user_id <> (select auth.uid())$$, array['denied', '-', '-', '-', '-', '-']),
  ('profiles: blind update', $$update profiles set full_name = 'mx!' ;; select id::text as key from profiles where full_name = 'mx!' and id::text = any(@user)$$, array['denied', 'a', 'b', 'p', 'd', 'a b d p']),
  ('subscriptions: blind update', $$update subscriptions set auto_renew = false ;; select id::text as key from subscriptions where not auto_renew and id::text = any(@subscription)$$, array['denied', 'a', 'b', 'p', 'd', 'a b d p']),
  ('exchange_credentials: blind update', $$update exchange_credentials set label = gen_random_uuid()::text ;; select id::text as key from exchange_credentials where label ~ '^[0-9a-f-]{36}$' and id::text = any(@cred)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('exchange_credentials: blind delete', $$delete from exchange_credentials ;; select key from mx where kind = 'cred' and key not in (select id::text from exchange_credentials)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('strategies: blind update', $$update strategies set name = 'mx!' ;; select id::text as key from strategies where name = 'mx!' and id::text = any(@strategy)$$, array['denied', 'a1 a2', 'b1 b2', 'm1 m2 p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 m1 m2 p1 p2']),
  ('strategies: blind delete', $$delete from strategies ;; select key from mx where kind = 'strategy' and key not in (select id::text from strategies)$$, array['denied', 'a1 a2', 'b1 b2', 'm1 m2 p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 m1 m2 p1 p2']),
  ('bots: blind update', $$update bots set name = 'mx!' ;; select id::text as key from bots where name = 'mx!' and id::text = any(@bot)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('bots: blind delete', $$delete from bots ;; select key from mx where kind = 'bot' and key not in (select id::text from bots)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_runs: blind update', $$update backtest_runs set status = 'cancelled' ;; select id::text as key from backtest_runs where status = 'cancelled' and id::text = any(@run)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('backtest_runs: blind delete', $$delete from backtest_runs ;; select key from mx where kind = 'run' and key not in (select id::text from backtest_runs)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('signals: blind update', $$update signals set note = 'mx!' ;; select id::text as key from signals where note = 'mx!' and id::text = any(@signal)$$, array['denied', '-', '-', 's1 s2', '-', 's1 s2']),
  ('strategy_subscriptions: blind update', $$update strategy_subscriptions set sizing = '{"max_leverage": 77}' ;; select id::text as key from strategy_subscriptions where sizing @> '{"max_leverage": 77}' and id::text = any(@strategy_sub)$$, array['denied', 'a1 a2', 'b1', '-', '-', 'a1 a2 b1']),
  ('reviews: blind update', $$update reviews set comment = 'mx!' ;; select id::text as key from reviews where comment = 'mx!' and id::text = any(@review)$$, array['denied', 'a1 a2', 'b1', '-', '-', 'a1 a2 b1']),
  ('reviews: blind delete', $$delete from reviews ;; select key from mx where kind = 'review' and key not in (select id::text from reviews)$$, array['denied', 'a1 a2', 'b1', '-', '-', 'a1 a2 b1']),
  ('notifications: blind update', $$update notifications set read_at = '2001-01-01' ;; select id::text as key from notifications where read_at = '2001-01-01' and id::text = any(@note)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('notifications: blind delete', $$delete from notifications ;; select key from mx where kind = 'note' and key not in (select id::text from notifications)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']),
  ('brokerage_connections: blind delete', $$delete from brokerage_connections ;; select key from mx where kind = 'conn' and key not in (select id::text from brokerage_connections)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', 'a1 a2 b1 b2 d1 d2 p1 p2']);


select plan((select count(*)::int from matrix m, tests.mx_actors() a where m.expected[a.i] is not null) + 2);

select tests.mx_check(m.label, a.actor, tests.mx_as(a.actor, m.statement), m.expected[a.i])
  from matrix m cross join tests.mx_actors() a
 where m.expected[a.i] is not null
 order by m.label, a.i;

-- Every relation in public has its select, and every table its insert, update and delete.
select is(
  (select array_agg(c.relname || ': ' || op order by c.relname, op)
     from pg_class c
     cross join unnest(array['select', 'insert', 'update', 'delete']) op
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
      and (op = 'select' or c.relkind in ('r', 'p', 'f'))
      and not exists (select 1 from matrix m
                       where split_part(m.label, ':', 1) = c.relname
                         and lower(m.statement) ~ ('^\s*' || op || '\s.*\m' || c.relname || '\M'))),
  null,
  'every relation in public is in the identity matrix for every operation'
);
select is(
  (select array_agg(c.relname::text) from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity),
  null,
  'every table in public has RLS enabled'
);

select * from finish();
rollback;
