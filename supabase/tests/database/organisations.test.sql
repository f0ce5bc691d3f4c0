-- Organisations by role: what the paying owner, a second owner, an admin, a member, a
-- read_only member, an outsider and anon see and do on the organisation's bots,
-- strategies, orders and trades; the bot RPCs for members; invitations, leaving,
-- removing and roles (never without an owner); whose plan and wallet an organisation bot
-- uses; organisation API keys and what a request made with one reaches.
begin;
select plan(139);

-- Cast: 1901 olivia (paying owner), 1902 oscar (second owner), 1903 adam (admin),
-- 1904 mia (member), 1905 rita (read_only), 1906 xena (outsider), 1907 nina (invited).
select tests.create_user(1901, 'olivia@orgs.test');
select tests.create_user(1902, 'oscar@orgs.test');
select tests.create_user(1903, 'adam@orgs.test');
select tests.create_user(1904, 'mia@orgs.test');
select tests.create_user(1905, 'rita@orgs.test');
select tests.create_user(1906, 'xena@orgs.test');
select tests.create_user(1907, 'nina@orgs.test');
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, custom_strategies, api_access, live_trading)
values (tests.id('plan', 1901), 'Orgs test', 0, 5, 10, true, true, true);
update public.subscriptions set plan_id = tests.id('plan', 1901) where user_id = tests.id('user', 1901);

-- What a statement did as a user: 'rows=N', or 'SQLSTATE constraint' for an error.
create function pg_temp.as_user(p_email text, p_sql text) returns text
language plpgsql
as $$
declare
  v_rows bigint;
  v_state text;
  v_constraint text;
begin
  if p_email = 'anon' then
    perform tests.authenticate_as('anon');
  else
    perform tests.authenticate_as(p_email || '@orgs.test');
  end if;
  if lower(ltrim(p_sql)) like 'select%' then
    execute format('select count(*) from (%s) q', p_sql) into v_rows;
  else
    execute p_sql;
    get diagnostics v_rows = row_count;
  end if;
  perform tests.clear_authentication();
  return 'rows=' || v_rows;
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

-- The same, undone afterwards (for checks that must not change the fixture).
create function pg_temp.try_user(p_email text, p_sql text) returns text
language plpgsql
as $$
declare
  v_result text;
begin
  begin
    v_result := pg_temp.as_user(p_email, p_sql);
    raise exception using errcode = 'TFUND', message = v_result;
  exception when sqlstate 'TFUND' then
    v_result := sqlerrm;
  end;
  return v_result;
end;
$$;

-- The organisation, made by olivia through the RPC; the others' memberships as accepted
-- invitations would leave them.
select tests.authenticate_as('olivia@orgs.test');
create temp table org on commit drop as select (public.create_organisation('Acme desk')).id;
select tests.clear_authentication();
grant select on org to authenticated;
create function pg_temp.org() returns uuid language sql stable as $$ select id from org $$;
insert into public.organisation_members (user_id, organisation_id, role)
select tests.id('user', n), pg_temp.org(), r
  from (values (1902, 'owner'), (1903, 'admin'), (1904, 'member'), (1905, 'read_only')) v(n, r);

-- Two organisation bots (created by adam), a strategy of the organisation, and a
-- personal bot for olivia and for xena.
select is(pg_temp.as_user('adam', format($$insert into bots (id, organisation_id, name, exchange, trading_pair, timeframe,
                                                            strategy, initial_balance, stake_amount)
                                           select tests.id('orgbot', n), %L, 'org ' || n, 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1
                                             from generate_series(1, 2) n$$, pg_temp.org())),
          'rows=2', 'an admin creates the organisation''s bots');
select is((select array_agg(distinct user_id) from public.bots where organisation_id = pg_temp.org()),
          array[tests.id('user', 1901)], 'the organisation''s bots are stored under its paying owner');
select is(pg_temp.as_user('adam', format($$insert into strategies (id, organisation_id, name, strategy_type, engine)
                                           values (tests.id('orgstrategy', 1), %L, 'org rules', 'custom', 'rsi')$$, pg_temp.org())),
          'rows=1', 'an admin creates the organisation''s strategy');
-- A third, live, running on olivia's exchange key and her personal strategy.
insert into public.exchange_credentials (id, user_id, exchange, sealed_secret, key_id)
values (tests.id('orgcred', 1901), tests.id('user', 1901), 'binance', 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1'),
       (tests.id('orgcred', 1903), tests.id('user', 1903), 'binance', 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1');
insert into public.strategies (id, user_id, name, strategy_type, engine)
values (tests.id('orgstrategy', 11), tests.id('user', 1901), 'olivia''s rules', 'custom', 'rsi'),
       (tests.id('orgstrategy', 16), tests.id('user', 1906), 'xena''s rules', 'custom', 'rsi');
insert into public.bots (id, user_id, organisation_id, strategy_id, exchange_credential_id, name, exchange, trading_pair,
                         timeframe, strategy, initial_balance, stake_amount, status, is_paper_trade)
values (tests.id('orgbot', 3), tests.id('user', 1901), pg_temp.org(), tests.id('orgstrategy', 11), tests.id('orgcred', 1901),
        'org live', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1, 'running', false);
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
values (tests.id('orgbot', 11), tests.id('user', 1901), 'olivia''s own', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1),
       (tests.id('orgbot', 16), tests.id('user', 1906), 'xena''s own', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1);
update public.bots set status = 'running' where id = tests.id('orgbot', 2);
insert into public.bot_leases (bot_id, epoch, expires_at)
select tests.id('orgbot', n), 1, now() + interval '1 minute' from generate_series(1, 2) n;
insert into public.orders (id, bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, lease_epoch)
select tests.id('orgorder', n), tests.id('orgbot', n), tests.id('user', 1901), 'orgs-' || n, 'binance', 'ETH/BTC', 'buy',
       'market', 1, 1
  from generate_series(1, 2) n;
insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time)
select tests.id('orgtrade', n), tests.id('orgbot', n), tests.id('user', 1901), 'binance', 'ETH/BTC', 'buy', 1, 0.1, now()
  from generate_series(1, 2) n;
insert into public.bot_logs (user_id, bot_id, log_level, message)
select tests.id('user', 1901), tests.id('orgbot', n), 'info', 'orgs' from generate_series(1, 2) n;
-- What the paying owner's personal bot did: an organisation key must not reach it.
insert into public.bot_leases (bot_id, epoch, expires_at) values (tests.id('orgbot', 11), 1, now() + interval '1 minute');
insert into public.orders (id, bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, lease_epoch)
values (tests.id('orgorder', 11), tests.id('orgbot', 11), tests.id('user', 1901), 'orgs-11', 'binance', 'ETH/BTC', 'buy',
        'market', 1, 1);
insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time)
values (tests.id('orgtrade', 11), tests.id('orgbot', 11), tests.id('user', 1901), 'binance', 'ETH/BTC', 'buy', 1, 0.1, now());

-- Reading, by role: every member reads the organisation's bots and what they did, and
-- nothing of the paying owner's personal bot; an outsider nothing; anon is refused.
select is(pg_temp.as_user(u, format($$select 1 from bots where organisation_id = %L$$, pg_temp.org())), e,
          u || ' reads the organisation''s bots: ' || e)
  from (values ('olivia', 'rows=3'), ('oscar', 'rows=3'), ('adam', 'rows=3'), ('mia', 'rows=3'), ('rita', 'rows=3'),
               ('xena', 'rows=0'), ('anon', '42501 -')) v(u, e);
select is(pg_temp.as_user(u, $$select 1 from bots where name like '%own'$$), e, u || ' reads personal bots: ' || e)
  from (values ('olivia', 'rows=1'), ('adam', 'rows=0'), ('mia', 'rows=0'), ('rita', 'rows=0'), ('xena', 'rows=1')) v(u, e);
select is(pg_temp.as_user(u, format($$select 1 from %s where bot_id in (%L, %L)$$, t, tests.id('orgbot', 1), tests.id('orgbot', 2))),
          case when u = 'xena' then 'rows=0' else 'rows=2' end, u || ' reads the organisation''s ' || t)
  from unnest(array['orders', 'trades', 'bot_logs']) t, unnest(array['mia', 'rita', 'xena']) u;
-- latest_trades (the dashboard's list) shows each of them exactly what trades shows, each
-- row once: the owner's trades of organisation bots are hers, not counted twice.
select is(pg_temp.as_user(u, $$select 1 from latest_trades(1000)$$), e, u || ' reads latest_trades: ' || e)
  from (values ('olivia', 'rows=3'), ('oscar', 'rows=2'), ('mia', 'rows=2'), ('rita', 'rows=2'), ('xena', 'rows=0'),
               ('anon', '42501 -')) v(u, e);
select is(pg_temp.as_user(u, $$select id from (select id from trades except all select id from latest_trades(1000)) a
                                union all select id from (select id from latest_trades(1000) except all select id from trades) b$$),
          'rows=0', u || '''s latest_trades are exactly the trades RLS shows')
  from unnest(array['olivia', 'oscar', 'mia', 'rita', 'xena']) u;
select is(pg_temp.as_user(u, format($$select 1 from strategies where organisation_id = %L$$, pg_temp.org())), e,
          u || ' reads the organisation''s strategies: ' || e)
  from (values ('adam', 'rows=1'), ('rita', 'rows=1'), ('xena', 'rows=0')) v(u, e);
select is(pg_temp.as_user(u, format($$select 1 from organisation_members where organisation_id = %L$$, pg_temp.org())), e,
          u || ' reads the organisation''s members: ' || e)
  from (values ('rita', 'rows=5'), ('xena', 'rows=0')) v(u, e);

-- Start, pause, stop: members and up; read_only and outsiders change nothing.
select is(pg_temp.try_user(u, format($$update bots set status = 'paused' where id = %L$$, tests.id('orgbot', 1))), e,
          u || ' pauses an organisation bot: ' || e)
  from (values ('olivia', 'rows=1'), ('oscar', 'rows=1'), ('adam', 'rows=1'), ('mia', 'rows=1'), ('rita', 'rows=0'),
               ('xena', 'rows=0'), ('anon', '42501 -')) v(u, e);
-- A live bot on the paying owner's key and personal strategy, neither of which the
-- member can see: the member still pauses it.
select is(pg_temp.try_user(u, format($$update bots set status = 'paused' where id = %L$$, tests.id('orgbot', 3))), e,
          u || ' pauses the organisation''s live bot: ' || e)
  from (values ('mia', 'rows=1'), ('rita', 'rows=0')) v(u, e);
select is(pg_temp.try_user('adam', format($$update bots set exchange_credential_id = %L where id = %L$$,
                                          tests.id('orgcred', 1903), tests.id('orgbot', 3))),
          '42501 bots_organisation_credential_owner', 'an admin cannot put their own exchange key on an organisation bot');
select is(pg_temp.try_user('adam', format($$update bots set strategy_id = %L where id = %L$$,
                                          tests.id('orgstrategy', 16), tests.id('orgbot', 1))),
          '42501 bots_organisation_strategy_visible', 'an admin cannot give an organisation bot a strategy they cannot see');
-- Changing a bot: admins and up; a member is refused by name.
select is(pg_temp.try_user(u, format($$update bots set stake_amount = 0.2 where id = %L$$, tests.id('orgbot', 1))), e,
          u || ' changes an organisation bot''s stake: ' || e)
  from (values ('olivia', 'rows=1'), ('adam', 'rows=1'), ('mia', '42501 bots_organisation_member_status_only'),
               ('rita', 'rows=0'), ('xena', 'rows=0')) v(u, e);
select is(pg_temp.try_user(u, format($$delete from bots where id = %L$$, tests.id('orgbot', 1))), e,
          u || ' deletes an organisation bot: ' || e)
  from (values ('oscar', 'rows=1'), ('adam', 'rows=1'), ('mia', 'rows=0'), ('rita', 'rows=0'), ('xena', 'rows=0')) v(u, e);
select is(pg_temp.try_user(u, format($$insert into bots (organisation_id, name, exchange, trading_pair, timeframe, strategy,
                                                        initial_balance, stake_amount)
                                      values (%L, 'x', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1)$$, pg_temp.org())), e,
          u || ' creates an organisation bot: ' || e)
  from (values ('oscar', 'rows=1'), ('mia', '42501 -'), ('rita', '42501 -'), ('xena', '42501 -')) v(u, e);
select is(pg_temp.try_user(u, format($$update strategies set name = 'renamed' where id = %L$$, tests.id('orgstrategy', 1))), e,
          u || ' renames the organisation''s strategy: ' || e)
  from (values ('adam', 'rows=1'), ('mia', 'rows=0'), ('rita', 'rows=0'), ('xena', 'rows=0')) v(u, e);
select is(pg_temp.try_user(u, format($$delete from strategies where id = %L$$, tests.id('orgstrategy', 1))), e,
          u || ' deletes the organisation''s strategy: ' || e)
  from (values ('adam', 'rows=1'), ('mia', 'rows=0'), ('rita', 'rows=0'), ('xena', 'rows=0')) v(u, e);
select is(pg_temp.try_user(u, format($$insert into strategies (organisation_id, name, strategy_type, engine)
                                      values (%L, 'x', 'custom', 'rsi')$$, pg_temp.org())), e,
          u || ' creates an organisation strategy: ' || e)
  from (values ('mia', '42501 -'), ('xena', '42501 -')) v(u, e);
-- A bot's organisation is set at creation only.
select is(pg_temp.try_user('olivia', format($$update bots set organisation_id = null where id = %L$$, tests.id('orgbot', 1))),
          '42501 -', 'nobody moves a bot out of its organisation');

-- The bot RPCs: members and up act; read_only is refused by name; outsiders find nothing.
select is(pg_temp.try_user(u, format($$select stop_bot(%L, 'keep')$$, tests.id('orgbot', 2))), e,
          u || ' stops an organisation bot through stop_bot: ' || e)
  from (values ('mia', 'rows=1'), ('adam', 'rows=1'), ('rita', '42501 bots_organisation_role'),
               ('xena', 'P0002 position_requests_bot_owned')) v(u, e);
select is(pg_temp.try_user(u, format($$select close_position(%L, true)$$, tests.id('orgtrade', 2))), e,
          u || ' closes an organisation bot''s position: ' || e)
  from (values ('mia', 'rows=1'), ('rita', '42501 bots_organisation_role'),
               ('xena', 'P0002 position_requests_trade_owned')) v(u, e);
select is(pg_temp.try_user(u, format($$select manual_trade(%L, true, 'buy', 1)$$, tests.id('orgbot', 2))), e,
          u || ' trades on an organisation bot: ' || e)
  from (values ('rita', '42501 bots_organisation_role'), ('xena', 'P0002 position_requests_bot_owned')) v(u, e);
select is(pg_temp.as_user('mia', format($$select close_position(%L, true)$$, tests.id('orgtrade', 2))), 'rows=1',
          'a member asks to close an organisation bot''s position');
select is(pg_temp.as_user(u, format($$select 1 from position_requests where bot_id = %L$$, tests.id('orgbot', 2))), e,
          u || ' reads the request on the organisation bot: ' || e)
  from (values ('rita', 'rows=1'), ('xena', 'rows=0')) v(u, e);
select is((select user_id from public.position_requests where bot_id = tests.id('orgbot', 2)), tests.id('user', 1904),
          'the request is recorded under the member who made it');

-- Plan and wallet: the paying owner's. Olivia's plan allows 5 bots: she has 3 of the
-- organisation and 1 of her own; one more fills it and the sixth names her plan.
select is(pg_temp.as_user('adam', format($$insert into bots (organisation_id, name, exchange, trading_pair, timeframe, strategy,
                                                            initial_balance, stake_amount)
                                          select %L, 'fill ' || n, 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1
                                            from generate_series(1, 1) n$$, pg_temp.org())),
          'rows=1', 'organisation bots count against the paying owner''s plan');
select is(pg_temp.try_user('adam', format($$insert into bots (organisation_id, name, exchange, trading_pair, timeframe, strategy,
                                                             initial_balance, stake_amount)
                                           values (%L, 'sixth', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1)$$, pg_temp.org())),
          '23514 bots_plan_max_bots', 'the paying owner''s max_bots refuses a sixth bot');
-- The worker prices and holds a bot's trades on the account bot_trade_prices names for the
-- bot's user (worker.bots.credit_gate): for an organisation bot, the paying owner's.
select is((select p.account_id from public.bot_trade_prices(
             array(select b.user_id from public.bots b where b.id = tests.id('orgbot', 2))) p),
          (select a.id from public.credit_accounts a where a.user_id = tests.id('user', 1901) and a.kind = 'user'),
          'an organisation bot''s trades are charged to the paying owner''s credit account');

-- Invitations: admins invite below owner, owners invite owners; the invitee (by address)
-- accepts or declines; nobody else can.
select is(pg_temp.try_user('adam', format($$select invite_to_organisation(%L, 'nina@orgs.test', 'owner')$$, pg_temp.org())),
          '42501 organisation_members_role_owner', 'an admin cannot invite an owner');
select is(pg_temp.try_user('mia', format($$select invite_to_organisation(%L, 'nina@orgs.test', 'member')$$, pg_temp.org())),
          '42501 organisation_members_role_admin', 'a member cannot invite');
select is(pg_temp.try_user('adam', format($$select invite_to_organisation(%L, 'MIA@orgs.test', 'member')$$, pg_temp.org())),
          '23505 organisation_members_pkey', 'a member is not invited twice');
select is(pg_temp.as_user('adam', format($$select invite_to_organisation(%L, ' Nina@Orgs.test ', 'member')$$, pg_temp.org())),
          'rows=1', 'an admin invites by email');
create temp table inv on commit drop as
  select id from public.organisation_invitations where organisation_id = pg_temp.org() and status = 'pending';
grant select on inv to authenticated;
select is(pg_temp.as_user(u, $$select 1 from organisation_invitations where status = 'pending'$$), e,
          u || ' sees the pending invitation: ' || e)
  from (values ('nina', 'rows=1'), ('adam', 'rows=1'), ('mia', 'rows=0'), ('xena', 'rows=0')) v(u, e);
select is(pg_temp.try_user('xena', $$select accept_organisation_invitation((select id from inv))$$),
          'P0002 organisation_invitations_addressee', 'only the invitee accepts');
select is(pg_temp.as_user('nina', format($$select 1 from bots where organisation_id = %L$$, pg_temp.org())), 'rows=0',
          'an invitee sees nothing before accepting');
select is(pg_temp.as_user('nina', $$select accept_organisation_invitation((select id from inv))$$), 'rows=1',
          'the invitee accepts');
select is(pg_temp.as_user('nina', format($$select 1 from bots where organisation_id = %L$$, pg_temp.org())), 'rows=4',
          'a new member sees the organisation''s bots at once');
select is(pg_temp.try_user('nina', $$select decline_organisation_invitation((select id from inv))$$),
          '23514 organisation_invitations_pending', 'an answered invitation stays answered');

-- Leaving, removing, roles: the paying owner always stays an owner.
select is(pg_temp.try_user('olivia', format($$select leave_organisation(%L)$$, pg_temp.org())),
          '23514 organisations_owner_stays', 'the paying owner cannot leave');
select is(pg_temp.try_user('oscar', format($$select set_organisation_member_role(%L, %L, 'admin')$$, pg_temp.org(), tests.id('user', 1901))),
          '23514 organisations_owner_stays', 'the paying owner cannot be demoted');
select is(pg_temp.try_user('oscar', format($$select remove_organisation_member(%L, %L)$$, pg_temp.org(), tests.id('user', 1901))),
          '23514 organisations_owner_stays', 'the paying owner cannot be removed');
select is(pg_temp.try_user('adam', format($$select remove_organisation_member(%L, %L)$$, pg_temp.org(), tests.id('user', 1902))),
          '42501 organisation_members_role_owner', 'an admin cannot remove an owner');
select is(pg_temp.try_user('adam', format($$select set_organisation_member_role(%L, %L, 'owner')$$, pg_temp.org(), tests.id('user', 1904))),
          '42501 organisation_members_role_owner', 'an admin cannot make an owner');
select is(pg_temp.try_user('mia', format($$select remove_organisation_member(%L, %L)$$, pg_temp.org(), tests.id('user', 1905))),
          '42501 organisation_members_role_admin', 'a member cannot remove members');
select is(pg_temp.as_user('adam', format($$select set_organisation_member_role(%L, %L, 'read_only')$$, pg_temp.org(), tests.id('user', 1904))),
          'rows=1', 'an admin changes a member''s role');
select is(pg_temp.try_user('mia', format($$update bots set status = 'paused' where id = %L$$, tests.id('orgbot', 2))), 'rows=0',
          'demoted to read_only, the member can no longer pause a bot');
select is(pg_temp.as_user('adam', format($$select remove_organisation_member(%L, %L)$$, pg_temp.org(), tests.id('user', 1905))),
          'rows=1', 'an admin removes a member');
select is(pg_temp.as_user('rita', format($$select 1 from bots where organisation_id = %L$$, pg_temp.org())), 'rows=0',
          'a removed member sees nothing at once');
select is(pg_temp.as_user('oscar', format($$select leave_organisation(%L)$$, pg_temp.org())), 'rows=1',
          'a second owner leaves');
select is((select count(*)::int from public.organisation_members where organisation_id = pg_temp.org() and role = 'owner'), 1,
          'the organisation keeps its paying owner');

-- Organisation API keys: owners and admins create them; bot scopes only; a request with
-- one acts as the paying owner within the organisation's bots.
select is(pg_temp.try_user('mia', format($$select create_organisation_api_key(%L, 'k', '{bots:read}')$$, pg_temp.org())),
          '42501 organisation_members_role_admin', 'a member cannot create the organisation''s keys');
select is(pg_temp.try_user('adam', format($$select create_organisation_api_key(%L, 'k', '{signals:write}')$$, pg_temp.org())),
          '22023 api_keys_organisation_scopes', 'an organisation''s key takes bot scopes only');
select tests.authenticate_as('adam@orgs.test');
create temp table orgkey on commit drop as
  select * from public.create_organisation_api_key(pg_temp.org(), 'desk', '{bots:read,bots:write,trades:read}');
select tests.clear_authentication();
grant select on orgkey to authenticated, service_role;
select is(pg_temp.as_user(u, $$select 1 from api_keys where id = (select id from orgkey)$$), e,
          u || ' lists the organisation''s key: ' || e)
  from (values ('olivia', 'rows=1'), ('adam', 'rows=1'), ('nina', 'rows=0'), ('xena', 'rows=0')) v(u, e);
select tests.authenticate_as('service_role');
create temp table orgauth on commit drop as
  select public.api_authorize((select key from orgkey), 'bots:read', null) as a;
select tests.clear_authentication();
select is((select (a ->> 'status')::int from orgauth), 200, 'the organisation''s key is accepted');
select is((select (a ->> 'user_id')::uuid from orgauth), tests.id('user', 1901), 'it acts as the paying owner');
select is((select (a -> 'claims' ->> 'organisation_id')::uuid from orgauth), pg_temp.org(),
          'its claims name the organisation');
create function pg_temp.as_key(p_sql text) returns text
language plpgsql
as $$
declare
  v_rows bigint;
  v_state text;
begin
  perform set_config('request.jwt.claims', (select (a -> 'claims')::text from orgauth), true);
  perform set_config('role', 'authenticated', true);
  if lower(ltrim(p_sql)) like 'select%' then
    execute format('select count(*) from (%s) q', p_sql) into v_rows;
  else
    execute p_sql;
    get diagnostics v_rows = row_count;
  end if;
  perform tests.clear_authentication();
  return 'rows=' || v_rows;
exception when others then
  get stacked diagnostics v_state = returned_sqlstate;
  perform tests.clear_authentication();
  return v_state;
end;
$$;
select is(pg_temp.as_key($$select 1 from bots$$), 'rows=4', 'the key sees the organisation''s bots and no personal one');
select is(pg_temp.as_key(format($$select 1 from bots where id = %L$$, tests.id('orgbot', 11))), 'rows=0',
          'the paying owner''s personal bot is out of the key''s reach');
select is(pg_temp.as_key(format($$update bots set status = 'paused' where id = %L$$, tests.id('orgbot', 11))), 'rows=0',
          'the key cannot pause the paying owner''s personal bot');
select is(pg_temp.as_key($$select 1 from trades$$), 'rows=2', 'the key reads the organisation''s trades only');
select is(pg_temp.as_key($$select 1 from latest_trades(1000)$$), 'rows=2',
          'through latest_trades too: the paying owner''s personal trade stays out of the key''s reach');
select is(pg_temp.as_key($$select 1 from orders$$), 'rows=2', 'the key reads the organisation''s orders only');
update public.plans set max_bots = 50 where id = tests.id('plan', 1901);
select is(pg_temp.as_key($$insert into bots (name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
                           values ('personal', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1)$$), '42501',
          'the key cannot create a personal bot for the paying owner');
select is(pg_temp.try_user('mia', $$select revoke_api_key((select id from orgkey))$$), 'P0002 -',
          'a member cannot revoke the organisation''s key');
select is(pg_temp.as_user('adam', $$select revoke_api_key((select id from orgkey))$$), 'rows=1',
          'an admin revokes the organisation''s key');

-- Deleting: owners only; the bots stay, as the paying owner's own.
select is(pg_temp.try_user('adam', format($$select delete_organisation(%L)$$, pg_temp.org())),
          '42501 organisation_members_role_owner', 'an admin cannot delete the organisation');
select is(pg_temp.as_user('olivia', format($$select delete_organisation(%L)$$, pg_temp.org())), 'rows=1',
          'the owner deletes the organisation');
select is((select count(*)::int from public.bots where id in (tests.id('orgbot', 1), tests.id('orgbot', 2))
                                                    and organisation_id is null and user_id = tests.id('user', 1901)),
          2, 'its bots stay with the paying owner');
select is(pg_temp.as_user('adam', format($$select 1 from bots where id = %L$$, tests.id('orgbot', 1))), 'rows=0',
          'former members no longer see them');

select * from finish();
rollback;
