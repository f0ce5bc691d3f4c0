-- Handing an organisation over with live bots and marketplace copies: the live bots move to
-- the new owner's exchange keys only when the new owner offered them, the caller has a
-- two-factor session and the new owner has a key on each exchange (live or testnet as
-- before); running ones are paused; the old owner's copies into the organisation's bots
-- stop. Attacks: a hand-over onto keys never offered, a member pointing a bot at someone
-- else's key, a user moving a bot to another owner.
begin;
select plan(32);

-- Cast: 2101 olga (paying owner), 2102 abe (admin), 2103 meg (member), 2104 xavier (outsider,
-- a provider), 2105 rob (read_only).
select tests.create_user(n, e)
  from (values (2101, 'olga@live-handover.test'), (2102, 'abe@live-handover.test'), (2103, 'meg@live-handover.test'),
               (2104, 'xavier@live-handover.test'), (2105, 'rob@live-handover.test')) v(n, e);
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, custom_strategies, api_access, sort_order)
values (tests.id('live-handover-plan', 1), 'Live Handover Big', 0, 10, 10, true, true, -30);
update public.subscriptions set plan_id = tests.id('live-handover-plan', 1), status = 'active'
 where user_id in (select tests.id('user', n) from generate_series(2101, 2105) n);

-- What a statement did as a user: 'rows=N', or 'SQLSTATE constraint' for an error.
create function pg_temp.as_user(p_who text, p_sql text, p_aal text default 'aal1') returns text
language plpgsql
as $$
declare
  v_rows bigint;
  v_state text;
  v_constraint text;
begin
  if p_who = 'anon' then
    perform tests.authenticate_as('anon');
  else
    perform tests.authenticate_as(p_who || '@live-handover.test', p_aal);
  end if;
  execute p_sql;
  get diagnostics v_rows = row_count;
  perform tests.clear_authentication();
  return 'rows=' || v_rows;
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

select tests.authenticate_as('olga@live-handover.test');
create temp table org on commit drop as select (public.create_organisation('Live desk')).id;
select tests.clear_authentication();
grant select on org to authenticated;
create function pg_temp.org() returns uuid language sql stable as $$ select id from org $$;
insert into public.organisation_members (user_id, organisation_id, role)
select tests.id('user', n), pg_temp.org(), r from (values (2102, 'admin'), (2103, 'member'), (2105, 'read_only')) v(n, r);

-- Exchange keys: olga's binance (live) and bybit (testnet); xavier's binance.
insert into public.exchange_credentials (id, user_id, exchange, label, is_testnet, sealed_secret, key_id)
values (tests.id('lhcred', 1), tests.id('user', 2101), 'binance', 'default', false, 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1'),
       (tests.id('lhcred', 2), tests.id('user', 2101), 'bybit', 'default', true, 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1'),
       (tests.id('lhcred', 9), tests.id('user', 2104), 'binance', 'default', false, 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1');
-- The organisation's bots: live on binance (running), live on bybit testnet (stopped), paper (running).
insert into public.bots (id, user_id, organisation_id, exchange_credential_id, name, exchange, trading_pair, timeframe,
                         strategy, initial_balance, stake_amount, is_paper_trade, status)
values (tests.id('lhbot', 1), tests.id('user', 2101), pg_temp.org(), tests.id('lhcred', 1), 'live binance', 'binance',
        'ETH/BTC', '5m', 'rsi', 1, 0.1, false, 'running'),
       (tests.id('lhbot', 2), tests.id('user', 2101), pg_temp.org(), tests.id('lhcred', 2), 'testnet bybit', 'bybit',
        'ETH/BTC', '5m', 'rsi', 1, 0.1, false, 'stopped'),
       (tests.id('lhbot', 3), tests.id('user', 2101), pg_temp.org(), null, 'paper', 'binance',
        'ETH/BTC', '5m', 'rsi', 1, 0.1, true, 'running');
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
values (tests.id('lhbot', 9), tests.id('user', 2102), 'abe''s own', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1);
-- xavier's marketplace strategy, copied by olga into the organisation's paper bot and by abe
-- into his own bot.
insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified)
values (tests.id('lhstrategy', 1), tests.id('user', 2104), 'xavier''s signals', 'marketplace', 'rsi', true, true);
insert into public.strategy_subscriptions (id, strategy_id, subscriber_id, status, auto_execute, bot_id)
values (tests.id('lhsub', 1), tests.id('lhstrategy', 1), tests.id('user', 2101), 'active', true, tests.id('lhbot', 3)),
       (tests.id('lhsub', 2), tests.id('lhstrategy', 1), tests.id('user', 2102), 'active', true, tests.id('lhbot', 9));

create function pg_temp.transfer(p_who text, p_to int, p_aal text default 'aal2') returns text language sql as $$
  select pg_temp.as_user(p_who, format('select transfer_organisation_ownership(%L, %L)', pg_temp.org(), tests.id('user', p_to)),
                         p_aal)
$$;

-- ======================================================================================
-- Refusals, each naming what to do
-- ======================================================================================

select is(pg_temp.transfer('olga', 2102, 'aal1'), '42501 organisations_transfer_live_bots_aal2',
          'handing over live bots needs the caller''s two-factor session');
select is(pg_temp.transfer('olga', 2102), '23514 organisations_transfer_live_bots',
          'abe never offered his exchange keys: refused');
select throws_like(format($$select tests.authenticate_as('olga@live-handover.test', 'aal2');
                           select public.transfer_organisation_ownership(%L, %L)$$, pg_temp.org(), tests.id('user', 2102)),
  '%live bots (on binance, bybit (testnet))%offer_exchange_keys_to_organisation%',
  'the refusal names the exchanges and what the new owner does');
select tests.clear_authentication();

-- Offering: members and up, for themselves only.
select is(pg_temp.as_user(u, format('select offer_exchange_keys_to_organisation(%L)', pg_temp.org())), e,
          u || ' offering their keys: ' || e)
  from (values ('rob', '42501 organisation_members_role_member'), ('xavier', 'P0002 organisation_members_member'),
               ('anon', '42501 -'), ('meg', 'rows=1')) v(u, e);
select is(pg_temp.as_user('meg', format('select offer_exchange_keys_to_organisation(%L, null)', pg_temp.org())),
          '22023 organisation_members_offer_arguments', 'a null offer is refused');
select is(pg_temp.as_user('meg', format('select offer_exchange_keys_to_organisation(%L, false)', pg_temp.org())), 'rows=1',
          'meg takes her offer back');
select is(pg_temp.as_user('abe', format('update organisation_members set offers_exchange_keys = true where organisation_id = %L',
                                        pg_temp.org())),
          '42501 -', 'nobody sets the offer by writing the table');
select is((select array_agg(m.offers_exchange_keys) from public.organisation_members m where m.organisation_id = pg_temp.org()),
          array[false, false, false, false], 'nobody offers anything now');
select is(pg_temp.as_user('abe', format('select offer_exchange_keys_to_organisation(%L)', pg_temp.org())), 'rows=1',
          'abe offers his keys');

-- abe's keys: binance live (two labels), bybit live only: the testnet bot has no key of his.
insert into public.exchange_credentials (id, user_id, exchange, label, is_testnet, sealed_secret, key_id, created_at)
values (tests.id('lhcred', 11), tests.id('user', 2102), 'binance', 'desk', false, 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1', now() - interval '1 day'),
       (tests.id('lhcred', 12), tests.id('user', 2102), 'binance', 'default', false, 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1', now()),
       (tests.id('lhcred', 13), tests.id('user', 2102), 'bybit', 'default', false, 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1', now());
select is(pg_temp.transfer('olga', 2102), '23514 organisations_transfer_exchange_keys',
          'abe has no bybit testnet key: refused');
select throws_like(format($$select tests.authenticate_as('olga@live-handover.test', 'aal2');
                           select public.transfer_organisation_ownership(%L, %L)$$, pg_temp.org(), tests.id('user', 2102)),
  '%no exchange key on bybit (testnet)%', 'the refusal names the exchange missing');
select tests.clear_authentication();
select is((select owner_id from public.organisations where id = pg_temp.org()), tests.id('user', 2101),
          'every refusal left olga the paying owner');
select is((select array_agg(exchange_credential_id order by name) from public.bots where organisation_id = pg_temp.org()),
          array[tests.id('lhcred', 1), null, tests.id('lhcred', 2)], 'and the bots on her keys');

-- ======================================================================================
-- Handed over
-- ======================================================================================

insert into public.exchange_credentials (id, user_id, exchange, label, is_testnet, sealed_secret, key_id)
values (tests.id('lhcred', 14), tests.id('user', 2102), 'bybit', 'test', true, 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1');
select is(pg_temp.transfer('olga', 2102), 'rows=1', 'with a key on each exchange, olga hands the organisation to abe');
select is((select exchange_credential_id from public.bots where id = tests.id('lhbot', 1)), tests.id('lhcred', 12),
          'the binance bot trades with abe''s default binance key');
select is((select exchange_credential_id from public.bots where id = tests.id('lhbot', 2)), tests.id('lhcred', 14),
          'the testnet bot with abe''s testnet key, not his live one');
select is((select exchange_credential_id from public.bots where id = tests.id('lhbot', 3)), null::uuid,
          'the paper bot needs no key');
select is((select status from public.bots where id = tests.id('lhbot', 1)), 'paused',
          'the running live bot is paused, to be started on the new key');
select alike((select status_reason from public.bots where id = tests.id('lhbot', 1)), '%handed over%start the bot again%',
             'with the reason');
select is((select array_agg(status order by name) from public.bots where id in (tests.id('lhbot', 2), tests.id('lhbot', 3))),
          array['running', 'stopped'], 'the others keep their status');
select ok(not exists (select 1 from public.bots b join public.exchange_credentials c on c.id = b.exchange_credential_id
                       where b.organisation_id = pg_temp.org() and c.user_id <> b.user_id),
          'no bot of the organisation trades with a key of someone who does not pay for it');
select is((select (status, auto_execute, bot_id)::text from public.strategy_subscriptions where id = tests.id('lhsub', 1)),
          '(active,f,)', 'olga''s copy into the organisation''s bot stops; her subscription stays hers');
select is((select (status, auto_execute, bot_id)::text from public.strategy_subscriptions where id = tests.id('lhsub', 2)),
          format('(active,t,%s)', tests.id('lhbot', 9)), 'abe''s copy into his own bot is untouched');
select is(pg_temp.as_user('abe', format($$update strategy_subscriptions set auto_execute = true, bot_id = %L where id = %L$$,
                                        tests.id('lhbot', 3), tests.id('lhsub', 1))),
          'rows=0', 'abe cannot point olga''s subscription at the bot');

-- ======================================================================================
-- Attacks on the keys
-- ======================================================================================

select is(pg_temp.as_user('abe', format('update bots set exchange_credential_id = %L where id = %L',
                                        tests.id('lhcred', 1), tests.id('lhbot', 1)), 'aal2'),
          '42501 bots_organisation_credential_owner', 'the new owner cannot put the bot back on olga''s key');
select is(pg_temp.as_user('abe', format('update bots set exchange_credential_id = %L where id = %L',
                                        tests.id('lhcred', 9), tests.id('lhbot', 1)), 'aal2'),
          '42501 bots_organisation_credential_owner', 'nor on xavier''s');
select is(pg_temp.as_user('abe', format('update bots set user_id = %L, exchange_credential_id = %L where id = %L',
                                        tests.id('user', 2104), tests.id('lhcred', 9), tests.id('lhbot', 1)), 'aal2'),
          '42501 -', 'nobody moves a bot to another owner (and so onto their key) by writing it');
select is(pg_temp.as_user('abe', format('update bots set exchange_credential_id = %L where id = %L',
                                        tests.id('lhcred', 11), tests.id('lhbot', 1)), 'aal2'),
          'rows=1', 'the new paying owner moves the bot to another key of their own');
select is((select exchange_credential_id from public.bots where id = tests.id('lhbot', 1)), tests.id('lhcred', 11),
          'which it now trades with');

select * from finish();
rollback;
