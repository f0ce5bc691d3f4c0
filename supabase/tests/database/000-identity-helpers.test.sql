set client_min_messages = warning;
-- Helpers of the identity matrix (rls_identity_*.test.sql). Like 000-helpers, this file
-- commits on purpose; the matrix files call these inside their own begin … rollback.
--
-- Fixture rows are named in a temporary table mx(kind, name, key): a statement mentions
-- `@kind` (every fixture key of that kind, as text[]) or `@kind.name` (one key, as a
-- literal), and reports what it saw or changed as a column `key`. tests.mx_as() runs it as
-- an actor, undoes it, and answers with the fixture names it touched, sorted:
-- 'a1 a2', '-' (nothing), 'denied' (insufficient privilege or RLS check) or 'error=<sqlstate>'.
-- Keys that are not fixture rows come back as 'new' (uuids and integers: rows a statement
-- created) or verbatim (other values a function returned). A statement of the form
-- 'write ;; probe' runs the write as the actor and the probe, naming what changed, as owner.

create extension if not exists pgtap with schema extensions;
create schema if not exists tests;

-- Fresh ids for every run, so the matrix passes on an empty and on a seeded database.
create or replace function tests.mx_id(p_kind text, p_name text) returns uuid
language sql stable
as $$ select md5(current_setting('tests.mx_salt') || ':' || p_kind || ':' || p_name)::uuid $$;

create or replace function tests.mx_email(p_name text) returns text
language sql stable
as $$ select p_name || '.' || current_setting('tests.mx_salt') || '@identity.test' $$;

-- Sign a fixture user up the way Supabase Auth does, under a fresh id and email.
create or replace function tests.mx_user(p_name text, p_role text) returns uuid
language sql
as $$
  insert into auth.users (id, aud, role, email, email_confirmed_at, raw_app_meta_data, raw_user_meta_data,
                          created_at, updated_at)
  values (tests.mx_id('user', p_name), 'authenticated', 'authenticated', tests.mx_email(p_name), now(),
          jsonb_build_object('provider', 'email', 'role', p_role),
          jsonb_build_object('full_name', p_name), now(), now())
  returning id
$$;

-- Replace @kind.name and @kind by fixture keys (longest names first, so @bot.a1 is not read as @bot).
create or replace function tests.mx_expand(p_sql text) returns text
language plpgsql
as $$
declare
  v_sql text := p_sql;
  r record;
begin
  -- Only the fixture rows the statement names: a replacement inserts no '@', so filtering
  -- on the statement as written changes nothing but the time.
  for r in select kind, name, key from pg_temp.mx
            where strpos(p_sql, '@' || kind || '.' || name) > 0
            order by length(kind) + length(name) desc loop
    v_sql := replace(v_sql, '@' || r.kind || '.' || r.name, quote_literal(r.key));
  end loop;
  for r in select kind, array_agg(key order by key) as keys from pg_temp.mx
            where strpos(p_sql, '@' || kind) > 0 group by kind
            order by length(kind) desc loop
    v_sql := regexp_replace(v_sql, '@' || r.kind || '(?![a-z_.])', quote_literal(r.keys::text) || '::text[]', 'g');
  end loop;
  return v_sql;
end;
$$;

-- Run one statement (a select or a data-changing statement `returning … as key`) as an
-- actor, undo it, and name the fixture rows it saw or changed.
create or replace function tests.mx_as(p_actor text, p_sql text, p_aal text default 'aal1') returns text
language plpgsql
as $$
declare
  v_sql text := tests.mx_expand(p_sql);
  v_keys text[];
  v_result text;
begin
  begin
    perform tests.authenticate_as(case when p_actor in ('anon', 'service_role') then p_actor
                                       else tests.mx_email(p_actor) end, p_aal);
    if v_sql like '%;; %' then
      -- A blind write (no where, no returning, so no select policy narrows it) and a probe
      -- the owner runs afterwards to name the rows it changed.
      execute split_part(v_sql, ';; ', 1);
      perform tests.clear_authentication();
      execute format('with q as (%s) select array_agg(key::text) from q', split_part(v_sql, ';; ', 2)) into v_keys;
    else
      execute format('with q as (%s) select array_agg(key::text) from q', v_sql) into v_keys;
    end if;
    raise exception using errcode = 'TFUND', message = coalesce(v_keys, '{}')::text;
  exception
    when sqlstate 'TFUND' then v_result := sqlerrm;
    when insufficient_privilege then v_result := 'denied';
    when others then v_result := 'error=' || sqlstate;
  end;
  perform tests.clear_authentication();
  if v_result = 'denied' or v_result like 'error=%' then
    return v_result;
  end if;
  return coalesce((
    select string_agg(coalesce(m.name, case when k ~ '^([0-9a-f-]{36}|[0-9]+)$' then 'new' else k end),
                      ' ' order by coalesce(m.name, case when k ~ '^([0-9a-f-]{36}|[0-9]+)$' then 'new' else k end))
      from unnest(v_result::text[]) k left join pg_temp.mx m on m.key = k), '-');
end;
$$;

-- The cast and their rows: alice and bob (users), pat (provider), dana (admin), each owning
-- two rows of everything (a1 a2, b1 b2, p1 p2, d1 d2). Pat publishes m1 (paid, verified,
-- with content) and m2 (free); alice subscribes to both and bob to m2; both review.
create or replace function tests.mx_fixture() returns void
language plpgsql
as $$
declare
  v_system uuid := (select id from public.credit_accounts where code = 'system:grants');
begin
  perform set_config('tests.mx_salt', md5(random()::text || clock_timestamp()::text), true);
  create temp table mx (kind text, name text, key text primary key) on commit drop;

  perform tests.mx_user('alice', 'user'), tests.mx_user('bob', 'user'),
          tests.mx_user('pat', 'provider'), tests.mx_user('dana', 'admin');
  create temp table mx_owner on commit drop as
    select o.n, o.who, tests.mx_id('user', o.who) as uid, tests.mx_id('user', o.who)::text as ukey
      from (values ('a', 'alice'), ('b', 'bob'), ('p', 'pat'), ('d', 'dana')) o(n, who);
  -- r: a row of each owner, k: its fixture name (a1 a2 b1 …)
  create temp table mx_rows on commit drop as
    select o.n || i as k, o.n, o.who, o.uid, i from mx_owner o, generate_series(1, 2) i;

  insert into mx select 'user', n, ukey from mx_owner;
  insert into public.plans (id, name, price_monthly, max_bots, max_strategies, backtest_minutes_per_month,
                            custom_strategies, api_access)
  values (tests.mx_id('plan', 'x'), 'Matrix ' || current_setting('tests.mx_salt'), 1, 10, 10, 100, true, true);
  insert into mx values ('plan', 'x', tests.mx_id('plan', 'x')::text);
  update public.subscriptions s set plan_id = tests.mx_id('plan', 'x'), auto_renew = true from mx_owner o where s.user_id = o.uid;
  insert into mx select 'subscription', o.n, s.id::text from public.subscriptions s join mx_owner o on o.uid = s.user_id;
  insert into mx select 'account', o.n, a.id::text from public.credit_accounts a join mx_owner o on o.uid = a.user_id;

  insert into public.invoices (id, user_id, amount) select tests.mx_id('invoice', k), uid, 10 from mx_rows;
  insert into public.exchange_credentials (id, user_id, exchange, label, sealed_secret, key_id)
  select tests.mx_id('cred', k), uid, 'binance', k, 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1' from mx_rows;
  insert into public.strategies (id, user_id, name, strategy_type, engine, parameters)
  select tests.mx_id('strategy', k), uid, 'private ' || k, 'custom', 'sma_cross', '{"fast": 5, "slow": 20}' from mx_rows;
  insert into public.api_keys (id, user_id, name, environment, prefix, key_hash, scopes)
  select tests.mx_id('api_key', k), uid, 'key ' || k, 'live', 'tf_live_' || left(md5(random()::text), 8),
         extensions.gen_random_bytes(32), '{bots:read}' from mx_rows;
  insert into public.api_usage_minutes (key_id, user_id, minute, endpoint, status, calls, latency_ms_sum, latency_ms_max)
  select tests.mx_id('api_key', k), uid, date_trunc('minute', now()), 'GET /v1/bots', 200, 1, 1, 1 from mx_rows;
  insert into public.api_usage_days (key_id, user_id, day, calls, errors, latency_ms_sum)
  select tests.mx_id('api_key', k), uid, current_date, 1, 0, 1 from mx_rows;
  insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified, content, parameters, monthly_price)
  values (tests.mx_id('strategy', 'm1'), tests.mx_id('user', 'pat'), 'paid', 'marketplace', 'rules', true, true,
          '{"secret": "rules"}', '{"fast": 7}', 19),
         (tests.mx_id('strategy', 'm2'), tests.mx_id('user', 'pat'), 'free', 'marketplace', 'sma_cross', true, false,
          null, '{"fast": 9}', 0);
  insert into public.bots (id, user_id, strategy_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
  select tests.mx_id('bot', k), uid, tests.mx_id('strategy', k), 'bot ' || k, 'binance', 'ETH/BTC', '5m', 'sma_cross', 1, 0.1
    from mx_rows;
  insert into public.bot_leases (bot_id, epoch, expires_at) select tests.mx_id('bot', k), 1, now() + interval '1 minute' from mx_rows;
  insert into public.orders (id, bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, lease_epoch)
  select tests.mx_id('order', k), tests.mx_id('bot', k), uid, 'mx-' || tests.mx_id('order', k), 'binance', 'ETH/BTC', 'buy',
         'market', 1, 1 from mx_rows;
  insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time)
  select tests.mx_id('trade', k), tests.mx_id('bot', k), uid, 'binance', 'ETH/BTC', 'buy', 1, 0.1, now() from mx_rows;
  insert into public.bot_logs (user_id, bot_id, log_level, message)
  select uid, tests.mx_id('bot', k), 'info', 'mx ' || k || ' ' || current_setting('tests.mx_salt') from mx_rows;
  insert into mx select 'log', split_part(l.message, ' ', 2), l.id::text from public.bot_logs l
   where l.message like 'mx % ' || current_setting('tests.mx_salt');
  insert into public.candles (exchange, symbol, timeframe, open_time, open, high, low, close, volume)
  select 'binance', 'MX' || i || '/' || left(current_setting('tests.mx_salt'), 8), '5m', '2018-01-10 05:00+00', 0.1, 0.11, 0.09, 0.1, 5
    from generate_series(1, 2) i;
  insert into mx select 'candle', 'c' || i, 'MX' || i || '/' || left(current_setting('tests.mx_salt'), 8) from generate_series(1, 2) i;
  insert into public.backtest_runs (id, user_id, strategy, trading_pair, timeframe)
  select tests.mx_id('run', k), uid, 'sma_cross', 'ETH/BTC', '5m' from mx_rows;
  insert into public.backtest_results (id, run_id, strategy_id, user_id, trading_pair, timeframe, start_date, end_date,
                                       initial_balance, final_balance, total_return, total_return_percentage, max_drawdown,
                                       win_rate, total_trades, winning_trades, losing_trades, best_trade, worst_trade)
  select tests.mx_id('result', k), tests.mx_id('run', k), tests.mx_id('strategy', k), uid, 'ETH/BTC', '5m',
         '2018-01-10', '2018-01-20', 1, 1.1, 0.1, 10, 2, 50, 2, 1, 1, 0.2, -0.1 from mx_rows;
  insert into public.backtest_reports (run_id, user_id, html)
  select tests.mx_id('run', k), uid, '<p>report ' || k || '</p>' from mx_rows;
  insert into public.data_requests (id, user_id, trading_pair, timeframe, start_date)
  select tests.mx_id('dreq', k), uid, 'ETH/BTC', '5m', '2018-01-10' from mx_rows;
  insert into public.ai_analyses (id, user_id, analysis_type, input_data)
  select tests.mx_id('ai', k), uid, 'risk', '{}' from mx_rows;
  insert into public.signals (id, strategy_id, provider_id, pair, side, entry_price)
  values (tests.mx_id('signal', 's1'), tests.mx_id('strategy', 'm1'), tests.mx_id('user', 'pat'), 'ETH/BTC', 'long', 0.1),
         (tests.mx_id('signal', 's2'), tests.mx_id('strategy', 'm2'), tests.mx_id('user', 'pat'), 'ETH/BTC', 'short', 0.1);
  insert into public.strategy_subscriptions (id, strategy_id, subscriber_id, status, bot_id, sizing)
  values (tests.mx_id('strategy_sub', 'a1'), tests.mx_id('strategy', 'm1'), tests.mx_id('user', 'alice'), 'active',
          tests.mx_id('bot', 'a1'), '{}'),
         (tests.mx_id('strategy_sub', 'a2'), tests.mx_id('strategy', 'm2'), tests.mx_id('user', 'alice'), 'active', null, '{}'),
         (tests.mx_id('strategy_sub', 'b1'), tests.mx_id('strategy', 'm2'), tests.mx_id('user', 'bob'), 'active',
          tests.mx_id('bot', 'b1'), '{}');
  insert into public.reviews (id, strategy_id, user_id, rating)
  values (tests.mx_id('review', 'a1'), tests.mx_id('strategy', 'm1'), tests.mx_id('user', 'alice'), 5),
         (tests.mx_id('review', 'a2'), tests.mx_id('strategy', 'm2'), tests.mx_id('user', 'alice'), 4),
         (tests.mx_id('review', 'b1'), tests.mx_id('strategy', 'm2'), tests.mx_id('user', 'bob'), 2);
  insert into public.signal_executions (id, signal_id, subscription_id, subscriber_id, bot_id, phase, status)
  values (tests.mx_id('execution', 'a1'), tests.mx_id('signal', 's1'), tests.mx_id('strategy_sub', 'a1'),
          tests.mx_id('user', 'alice'), tests.mx_id('bot', 'a1'), 'open', 'skipped'),
         (tests.mx_id('execution', 'b1'), tests.mx_id('signal', 's2'), tests.mx_id('strategy_sub', 'b1'),
          tests.mx_id('user', 'bob'), tests.mx_id('bot', 'b1'), 'open', 'skipped');
  insert into public.notifications (id, user_id, kind, title) select tests.mx_id('note', k), uid, 'system', 'hi' from mx_rows;
  insert into public.brokerage_connections (id, user_id, provider, provider_connection_id, sealed_user_secret, status)
  select tests.mx_id('conn', k), uid, 'snaptrade', 'mx-' || tests.mx_id('conn', k), 'v1:k1:bm9uY2U=:c2VjcmV0', 'active' from mx_rows;
  insert into public.brokerage_accounts (id, connection_id, user_id, provider_account_id)
  select tests.mx_id('acct', k), tests.mx_id('conn', k), uid, 'mx-' || tests.mx_id('acct', k) from mx_rows;
  insert into public.brokerage_positions (id, account_id, user_id, symbol, units)
  select tests.mx_id('pos', k), tests.mx_id('acct', k), uid, 'AAPL', 10 from mx_rows;
  insert into public.aggregated_holdings (id, user_id, symbol, total_units)
  select tests.mx_id('hold', k), uid, 'MX' || i, 10 from mx_rows;
  insert into public.sync_runs (id, user_id, trigger, created_at)
  select tests.mx_id('sync', k), uid, 'nightly', now() - interval '1 hour' from mx_rows;
  insert into public.credit_transfers (id, debit_account_id, credit_account_id, amount, kind)
  select tests.mx_id('transfer', k), v_system, (select id from public.credit_accounts where user_id = uid), 1, 'grant'
    from mx_rows;
  insert into public.webhook_events (id, provider, event_id, event_type, payload)
  select tests.mx_id('event', 'w' || i), 'stripe', 'evt_' || tests.mx_id('event', 'w' || i), 'invoice.paid', '{}'
    from generate_series(1, 2) i;
  insert into public.workers (id, name, host, pid, version)
  select tests.mx_id('worker', 'w' || i), 'mx' || i, 'h', i, '0' from generate_series(1, 2) i;
  insert into mx select 'worker', 'w' || i, tests.mx_id('worker', 'w' || i)::text from generate_series(1, 2) i;
  insert into public.jobs (kind, payload) select 'mx.' || current_setting('tests.mx_salt'), jsonb_build_object('n', i)
    from generate_series(1, 2) i;
  insert into mx select 'job', 'j' || (payload ->> 'n'), id::text from public.jobs where kind = 'mx.' || current_setting('tests.mx_salt');
  insert into mx values ('queue', 'q', 'mx.' || current_setting('tests.mx_salt'));
  insert into public.symbol_prices (symbol, price, source, as_of)
  select 'MX' || i || left(current_setting('tests.mx_salt'), 8), 190, 'alpaca', now() from generate_series(1, 2) i;
  insert into mx select 'price', 'x' || i, 'MX' || i || left(current_setting('tests.mx_salt'), 8) from generate_series(1, 2) i;

  insert into mx select kind, k, tests.mx_id(kind, k)::text
    from mx_rows, unnest(array['invoice', 'cred', 'strategy', 'bot', 'order', 'trade', 'run', 'result', 'dreq', 'ai', 'note',
                               'conn', 'acct', 'pos', 'hold', 'sync', 'transfer', 'api_key']) kind;
  insert into mx select kind, name, tests.mx_id(kind, name)::text
    from (values ('strategy', 'm1'), ('strategy', 'm2'), ('signal', 's1'), ('signal', 's2'), ('strategy_sub', 'a1'),
                 ('strategy_sub', 'a2'), ('strategy_sub', 'b1'), ('review', 'a1'), ('review', 'a2'), ('review', 'b1'),
                 ('execution', 'a1'), ('execution', 'b1'), ('event', 'w1'), ('event', 'w2')) v(kind, name);
  -- Organisations: o1 paid for by alice with bob as a member, o2 by pat; o1 invites pat
  -- (member) and o2 invites alice (read_only).
  insert into public.organisations (id, name, owner_id)
  values (tests.mx_id('org', 'o1'), 'org o1', tests.mx_id('user', 'alice')),
         (tests.mx_id('org', 'o2'), 'org o2', tests.mx_id('user', 'pat'));
  insert into public.organisation_members (user_id, organisation_id, role)
  values (tests.mx_id('user', 'alice'), tests.mx_id('org', 'o1'), 'owner'),
         (tests.mx_id('user', 'bob'), tests.mx_id('org', 'o1'), 'member'),
         (tests.mx_id('user', 'pat'), tests.mx_id('org', 'o2'), 'owner');
  insert into public.organisation_invitations (id, organisation_id, email, role, invited_by)
  values (tests.mx_id('org_invite', 'i1'), tests.mx_id('org', 'o1'), tests.mx_email('pat'), 'member',
          tests.mx_id('user', 'alice')),
         (tests.mx_id('org_invite', 'i2'), tests.mx_id('org', 'o2'), tests.mx_email('alice'), 'read_only',
          tests.mx_id('user', 'pat'));
  insert into mx select kind, name, tests.mx_id(kind, name)::text
    from (values ('org', 'o1'), ('org', 'o2'), ('org_invite', 'i1'), ('org_invite', 'i2')) v(kind, name);
  grant select on pg_temp.mx to public;
end;
$$;

-- One pgTAP assertion of an outcome against its expectation ('a|b': either, '!x': anything but x).
create or replace function tests.mx_check(p_label text, p_actor text, p_actual text, p_expected text) returns text
language sql
as $$
  select case
    when p_expected like '!%' then ok(p_actual <> substr(p_expected, 2),
                                      format('%s as %s: %s (anything but %s)', p_label, p_actor, p_actual, substr(p_expected, 2)))
    when p_expected like '%|%' then ok(p_actual = any(string_to_array(p_expected, '|')),
                                       format('%s as %s: %s (one of %s)', p_label, p_actor, p_actual, p_expected))
    else is(p_actual, p_expected, p_label || ' as ' || p_actor)
  end
$$;

-- The actors of the matrix, in the order of the expected columns.
create or replace function tests.mx_actors() returns table (i integer, actor text)
language sql immutable
as $$ values (1, 'anon'), (2, 'alice'), (3, 'bob'), (4, 'pat'), (5, 'dana'), (6, 'service_role') $$;

grant execute on all functions in schema tests to anon, authenticated, tradefleet_admin, service_role;

select plan(1);
select has_function('tests', 'mx_as', array['text', 'text', 'text'], 'identity matrix helpers are installed');
select * from finish();
