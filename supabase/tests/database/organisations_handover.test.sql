-- An organisation's API usage by role, revoking invitations, and handing the paying owner
-- over: who reads the usage of the organisation's keys (owners and admins, not members,
-- read_only members or outsiders), who revokes which invitation and what the invitee can
-- do then, and what a hand-over refuses, changes and leaves as it was.
begin;
select plan(77);

-- Cast: 2001 olga (paying owner), 2002 abe (admin), 2003 meg (member, small plan),
-- 2004 rob (read_only), 2005 xavier (outsider), 2006 ivy (invited), 2007 owen (second owner).
select tests.create_user(n, e)
  from (values (2001, 'olga@handover.test'), (2002, 'abe@handover.test'), (2003, 'meg@handover.test'),
               (2004, 'rob@handover.test'), (2005, 'xavier@handover.test'), (2006, 'ivy@handover.test'),
               (2007, 'owen@handover.test')) v(n, e);
insert into public.plans (id, name, price_monthly, max_bots, max_strategies, custom_strategies, api_access, sort_order)
values (tests.id('handover-plan', 1), 'Handover Big', 0, 10, 10, true, true, -20),
       (tests.id('handover-plan', 2), 'Handover Small', 0, 1, 10, true, true, -21),
       (tests.id('handover-plan', 3), 'Handover Plain', 0, 10, 10, false, true, -22);
update public.subscriptions set plan_id = tests.id('handover-plan', 1), status = 'active'
 where user_id in (tests.id('user', 2001), tests.id('user', 2002), tests.id('user', 2005), tests.id('user', 2007));
update public.subscriptions set plan_id = tests.id('handover-plan', 2), status = 'active'
 where user_id = tests.id('user', 2003);
update public.subscriptions set plan_id = tests.id('handover-plan', 3), status = 'active'
 where user_id = tests.id('user', 2004);

-- What a statement did as a user: 'rows=N', or 'SQLSTATE constraint' for an error.
create function pg_temp.as_user(p_who text, p_sql text) returns text
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
    perform tests.authenticate_as(p_who || '@handover.test');
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

-- The organisation, made by olga; the others' memberships as accepted invitations leave them.
select tests.authenticate_as('olga@handover.test');
create temp table org on commit drop as select (public.create_organisation('Handover desk')).id;
select tests.clear_authentication();
grant select on org to authenticated;
create function pg_temp.org() returns uuid language sql stable as $$ select id from org $$;
insert into public.organisation_members (user_id, organisation_id, role)
select tests.id('user', n), pg_temp.org(), r
  from (values (2002, 'admin'), (2003, 'member'), (2004, 'read_only'), (2007, 'owner')) v(n, r);

-- ======================================================================================
-- Usage of the organisation's keys
-- ======================================================================================

-- Two keys of the organisation, a personal key of meg's and one of xavier's, each with a
-- minute and a day of usage (the organisation's under olga, who paid for them).
create temp table keys (name text, id uuid, key text) on commit drop;
grant all on keys to public;
select tests.authenticate_as('abe@handover.test');
insert into keys select 'org1', k.id, k.key from public.create_organisation_api_key(pg_temp.org(), 'desk 1', '{bots:read}') k;
insert into keys select 'org2', k.id, k.key from public.create_organisation_api_key(pg_temp.org(), 'desk 2', '{bots:read}') k;
select tests.authenticate_as('meg@handover.test');
insert into keys select 'meg', k.id, k.key from public.create_api_key('mine', '{bots:read}') k;
select tests.authenticate_as('xavier@handover.test');
insert into keys select 'xavier', k.id, k.key from public.create_api_key('mine', '{bots:read}') k;
select tests.clear_authentication();
create function pg_temp.key(p_name text) returns uuid language sql stable as $$ select id from keys where name = p_name $$;
insert into public.api_usage_minutes (key_id, user_id, minute, endpoint, status, calls, latency_ms_sum, latency_ms_max)
select k.id, case when k.name like 'org%' then tests.id('user', 2001) else tests.id('user', case k.name when 'meg' then 2003 else 2005 end) end,
       date_trunc('minute', now()) - m * interval '1 minute', 'GET /v1/bots', 200, 3, 6, 3
  from keys k cross join generate_series(0, 1) m;
insert into public.api_usage_days (key_id, user_id, day, calls, errors, latency_ms_sum)
select key_id, user_id, (now() at time zone 'UTC')::date, sum(calls), 0, sum(latency_ms_sum)
  from public.api_usage_minutes where key_id in (select id from keys) group by 1, 2;

select is(pg_temp.as_user(u, format($$select 1 from api_usage_minutes where key_id in (%L, %L)$$, pg_temp.key('org1'), pg_temp.key('org2'))),
          e, u || ' reads the organisation''s usage per minute: ' || e)
  from (values ('olga', 'rows=4'), ('owen', 'rows=4'), ('abe', 'rows=4'), ('meg', 'rows=0'), ('rob', 'rows=0'),
               ('xavier', 'rows=0'), ('anon', '42501 -')) v(u, e);
select is(pg_temp.as_user(u, format($$select 1 from api_usage_days where key_id in (%L, %L)$$, pg_temp.key('org1'), pg_temp.key('org2'))),
          e, u || ' reads the organisation''s usage per day: ' || e)
  from (values ('olga', 'rows=2'), ('abe', 'rows=2'), ('meg', 'rows=0'), ('rob', 'rows=0'), ('xavier', 'rows=0')) v(u, e);
select is(pg_temp.as_user(u, $$select 1 from api_usage_per_day where key_name = 'desk 1' and calls = 6$$), e,
          u || ' reads the organisation''s usage through the view: ' || e)
  from (values ('abe', 'rows=1'), ('meg', 'rows=0'), ('rob', 'rows=0')) v(u, e);
select is(pg_temp.as_user(u, $$select 1 from api_usage_per_minute$$), e, u || ' reads every usage row they may: ' || e)
  from (values ('olga', 'rows=4'), ('abe', 'rows=4'), ('meg', 'rows=2'), ('rob', 'rows=0'), ('xavier', 'rows=2')) v(u, e);
select ok(exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'api_usage_minutes')
          and exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime' and tablename = 'api_usage_days'),
          'the rollups are in the Realtime publication, which applies the same policies to each subscriber');
-- A member promoted to admin sees it on the next statement; demoted, no more.
update public.organisation_members set role = 'admin' where user_id = tests.id('user', 2004) and organisation_id = pg_temp.org();
select is(pg_temp.as_user('rob', $$select 1 from api_usage_minutes$$), 'rows=4', 'a read_only member made admin reads the usage');
update public.organisation_members set role = 'read_only' where user_id = tests.id('user', 2004) and organisation_id = pg_temp.org();
select is(pg_temp.as_user('rob', $$select 1 from api_usage_minutes$$), 'rows=0', 'made read_only again, no more');

-- ======================================================================================
-- Revoking invitations
-- ======================================================================================

select tests.authenticate_as('olga@handover.test');
create temp table inv on commit drop as
select 'ivy' as name, (public.invite_to_organisation(pg_temp.org(), 'ivy@handover.test', 'member')).id
union all select 'boss', (public.invite_to_organisation(pg_temp.org(), 'boss@handover.test', 'owner')).id
union all select 'xavier', (public.invite_to_organisation(pg_temp.org(), 'xavier@handover.test', 'read_only')).id;
select tests.clear_authentication();
grant select on inv to public;
create function pg_temp.inv(p_name text) returns uuid language sql stable as $$ select id from inv where name = p_name $$;

select is(pg_temp.as_user(u, format($$select revoke_organisation_invitation(%L)$$, pg_temp.inv('ivy'))), e,
          u || ' revoking ivy''s invitation: ' || e)
  from (values ('meg', '42501 organisation_members_role_admin'), ('rob', '42501 organisation_members_role_admin'),
               ('xavier', 'P0002 organisation_invitations_invitation'), ('ivy', 'P0002 organisation_invitations_invitation'),
               ('anon', '42501 -')) v(u, e);
select is(pg_temp.as_user('abe', format($$select revoke_organisation_invitation(%L)$$, pg_temp.inv('boss'))),
          '42501 organisation_members_role_owner', 'an admin does not revoke an invitation to owner');
select is(pg_temp.as_user('abe', format($$select revoke_organisation_invitation(%L)$$, gen_random_uuid())),
          'P0002 organisation_invitations_invitation', 'an unknown invitation is not found');
select is(pg_temp.as_user('abe', $$select revoke_organisation_invitation(null)$$),
          'P0002 organisation_invitations_invitation', 'a null invitation is not found');
select is((select count(*) from public.organisation_invitations where organisation_id = pg_temp.org() and status = 'pending'),
          3::bigint, 'the refused revocations changed nothing');
select is(pg_temp.as_user('abe', format($$select 1 from revoke_organisation_invitation(%L) where status = 'revoked'$$, pg_temp.inv('ivy'))),
          'rows=1', 'an admin revokes an invitation to member');
select is(pg_temp.as_user('owen', format($$select 1 from revoke_organisation_invitation(%L) where status = 'revoked'$$, pg_temp.inv('boss'))),
          'rows=1', 'an owner revokes an invitation to owner');
select is(pg_temp.as_user('olga', format($$select revoke_organisation_invitation(%L)$$, pg_temp.inv('ivy'))),
          '23514 organisation_invitations_pending', 'a revoked invitation is not revoked twice');
select is(pg_temp.as_user('ivy', format($$select accept_organisation_invitation(%L)$$, pg_temp.inv('ivy'))),
          '23514 organisation_invitations_pending', 'the invitee can no longer accept a revoked invitation');
select is(pg_temp.as_user('ivy', format($$select decline_organisation_invitation(%L)$$, pg_temp.inv('ivy'))),
          '23514 organisation_invitations_pending', 'nor decline it');
select ok(not exists (select 1 from public.organisation_members where user_id = tests.id('user', 2006)),
          'ivy did not join');
-- Answered invitations stay as they are.
select is(pg_temp.as_user('xavier', format($$select decline_organisation_invitation(%L)$$, pg_temp.inv('xavier'))),
          'rows=1', 'xavier declines his invitation');
select is(pg_temp.as_user('olga', format($$select revoke_organisation_invitation(%L)$$, pg_temp.inv('xavier'))),
          '23514 organisation_invitations_pending', 'a declined invitation cannot be revoked');
select tests.authenticate_as('olga@handover.test');
insert into inv select 'ivy2', (public.invite_to_organisation(pg_temp.org(), 'ivy@handover.test', 'member')).id;
select tests.clear_authentication();
select is(pg_temp.as_user('ivy', format($$select accept_organisation_invitation(%L)$$, pg_temp.inv('ivy2'))),
          'rows=1', 'invited again, ivy accepts');
select is(pg_temp.as_user('olga', format($$select revoke_organisation_invitation(%L)$$, pg_temp.inv('ivy2'))),
          '23514 organisation_invitations_pending', 'an accepted invitation cannot be revoked');
select is((select status from public.organisation_invitations where id = pg_temp.inv('ivy2')), 'accepted',
          'and stays accepted');
delete from public.organisation_members where user_id = tests.id('user', 2006);

-- ======================================================================================
-- Handing the paying owner over
-- ======================================================================================

-- Two paper bots and a custom strategy of the organisation (made by abe), one bot running
-- on a marketplace strategy olga subscribes to; abe has one bot of his own.
select is(pg_temp.as_user('abe', format($$insert into bots (id, organisation_id, name, exchange, trading_pair, timeframe,
                                                           strategy, initial_balance, stake_amount)
                                          select tests.id('hobot', n), %L, 'desk ' || n, 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1
                                            from generate_series(1, 2) n$$, pg_temp.org())),
          'rows=2', 'an admin creates two organisation bots');
select is(pg_temp.as_user('abe', format($$insert into strategies (id, organisation_id, name, strategy_type, engine)
                                          values (tests.id('hostrategy', 1), %L, 'desk rules', 'custom', 'rsi')$$, pg_temp.org())),
          'rows=1', 'and a custom strategy');
insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified)
values (tests.id('hostrategy', 2), tests.id('user', 2005), 'xavier''s signals', 'marketplace', 'rsi', true, true);
insert into public.strategy_subscriptions (strategy_id, subscriber_id, status)
values (tests.id('hostrategy', 2), tests.id('user', 2001), 'active');
update public.bots set strategy_id = tests.id('hostrategy', 2), status = 'running' where id = tests.id('hobot', 2);
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount)
values (tests.id('hobot', 9), tests.id('user', 2002), 'abe''s own', 'binance', 'ETH/BTC', '5m', 'rsi', 1, 0.1);

create function pg_temp.transfer(p_who text, p_to int) returns text language sql as $$
  select pg_temp.as_user(p_who, format('select transfer_organisation_ownership(%L, %L)', pg_temp.org(), tests.id('user', p_to)))
$$;
select is(pg_temp.transfer(u, 2002), e, u || ' handing the organisation to abe: ' || e)
  from (values ('abe', '42501 organisations_transfer_paying_owner'), ('owen', '42501 organisations_transfer_paying_owner'),
               ('meg', '42501 organisations_transfer_paying_owner'), ('xavier', 'P0002 organisation_members_member'),
               ('anon', '42501 -')) v(u, e);
select is(pg_temp.transfer('olga', n), e, 'olga handing it to ' || n || ': ' || e)
  from (values (2004, '23514 organisations_transfer_role'), (2005, 'P0002 organisation_members_member'),
               (2001, '23514 organisations_transfer_new_owner')) v(n, e);
select is(pg_temp.as_user('olga', format('select transfer_organisation_ownership(%L, null)', pg_temp.org())),
          '22023 organisations_transfer_arguments', 'a null new owner is refused');
select is(pg_temp.transfer('olga', 2003), '23514 organisations_transfer_plan_max_bots',
          'meg''s plan allows 1 bot and the organisation has 2: refused');
select throws_like(format($$select tests.authenticate_as('olga@handover.test');
                           select public.transfer_organisation_ownership(%L, %L)$$, pg_temp.org(), tests.id('user', 2003)),
  'plan limit reached: the Handover Small plan allows 1 bots (max_bots); the % plan allows %',
  'the refusal names the limit, the new owner''s plan and the plan that lifts it');
select tests.clear_authentication();
select is(pg_temp.transfer('olga', 2004), '23514 organisations_transfer_role', 'rob is read_only');
update public.organisation_members set role = 'member' where user_id = tests.id('user', 2004) and organisation_id = pg_temp.org();
select is(pg_temp.transfer('olga', 2004), '23514 organisations_transfer_plan_custom_strategies',
          'rob''s plan has no custom strategies and the organisation has one: refused');
update public.organisation_members set role = 'read_only' where user_id = tests.id('user', 2004) and organisation_id = pg_temp.org();

-- An open position, then a live bot, stand in the way.
insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, amount, price, entry_time)
values (tests.id('hotrade', 1), tests.id('hobot', 1), tests.id('user', 2001), 'binance', 'ETH/BTC', 'buy', 1, 0.1, now());
select is(pg_temp.transfer('olga', 2002), '23514 organisations_transfer_open_positions', 'refused while a position is open');
update public.trades set status = 'cancelled' where id = tests.id('hotrade', 1);
insert into public.bot_leases (bot_id, epoch, expires_at) values (tests.id('hobot', 1), 1, now() + interval '1 minute')
on conflict (bot_id) do nothing;
insert into public.orders (id, bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, price, status,
                           lease_epoch)
values (tests.id('hoorder', 1), tests.id('hobot', 1), tests.id('user', 2001), 'handover-resting-1', 'binance', 'ETH/BTC', 'buy',
        'limit', 1, 0.09, 'open', (select l.epoch from public.bot_leases l where l.bot_id = tests.id('hobot', 1)));
select is(pg_temp.transfer('olga', 2002), '23514 organisations_transfer_open_positions',
          'refused while an entry order rests on the book (its credit hold is olga''s)');
update public.orders set status = 'canceled' where id = tests.id('hoorder', 1);
insert into public.exchange_credentials (id, user_id, exchange, sealed_secret, key_id)
values (tests.id('hocred', 1), tests.id('user', 2001), 'binance', 'v1:k1:bm9uY2U=:c2VjcmV0', 'k1');
insert into public.bots (id, user_id, organisation_id, exchange_credential_id, name, exchange, trading_pair, timeframe, strategy,
                         initial_balance, stake_amount, is_paper_trade)
values (tests.id('hobot', 3), tests.id('user', 2001), pg_temp.org(), tests.id('hocred', 1), 'desk live', 'binance', 'ETH/BTC',
        '5m', 'rsi', 1, 0.1, false);
select is(pg_temp.transfer('olga', 2002), '42501 organisations_transfer_live_bots_aal2',
          'a live bot is handed over only from a two-factor session (abuse_handover_live_bots has the rest)');
delete from public.bots where id = tests.id('hobot', 3);
select is((select owner_id from public.organisations where id = pg_temp.org()), tests.id('user', 2001),
          'every refusal left olga the paying owner');

-- Handed over to abe.
select is(pg_temp.transfer('olga', 2002), 'rows=1', 'olga hands the organisation to abe');
select is((select owner_id from public.organisations where id = pg_temp.org()), tests.id('user', 2002), 'abe is the paying owner');
select is((select array_agg(role order by user_id) from public.organisation_members
            where organisation_id = pg_temp.org() and user_id in (tests.id('user', 2001), tests.id('user', 2002))),
          case when tests.id('user', 2001) < tests.id('user', 2002) then array['admin', 'owner'] else array['owner', 'admin'] end,
          'abe is an owner, olga an admin');
select is((select array_agg(distinct user_id) from public.bots where organisation_id = pg_temp.org()),
          array[tests.id('user', 2002)], 'the organisation''s bots count against abe''s plan now');
select is((select user_id from public.strategies where id = tests.id('hostrategy', 1)), tests.id('user', 2002),
          'and its strategy');
select is((select user_id from public.trades where id = tests.id('hotrade', 1)), tests.id('user', 2001),
          'what the bots did before stays olga''s, who paid for it');
select is((select status || ' ' || pause_cause from public.bots where id = tests.id('hobot', 2)), 'paused subscription',
          'the bot on a marketplace strategy abe does not subscribe to is paused, with the reason');
select is((public.api_authorize((select key from keys where name = 'org1'), 'bots:read')) ->> 'user_id',
          tests.id('user', 2002)::text, 'the organisation''s key now acts as (and is limited by the plan of) abe');
select is(pg_temp.transfer('olga', 2003), '42501 organisations_transfer_paying_owner', 'olga cannot hand it over any more');
select is(pg_temp.as_user('olga', format('select leave_organisation(%L)', pg_temp.org())), 'rows=1',
          'olga, no longer the paying owner, may leave');
select is(pg_temp.as_user('abe', format('select leave_organisation(%L)', pg_temp.org())), '23514 organisations_owner_stays',
          'abe, the paying owner, may not');
select is(pg_temp.as_user('olga', format($$select 1 from api_usage_minutes where key_id = %L$$, pg_temp.key('org1'))), 'rows=0',
          'olga no longer reads the usage she paid for once she left');
select is(pg_temp.as_user('abe', $$select 1 from api_usage_minutes$$), 'rows=4', 'abe reads the organisation''s usage');
select is(pg_temp.as_user('meg', format($$select 1 from bots where organisation_id = %L$$, pg_temp.org())), 'rows=2',
          'a member still reads the organisation''s bots');
select is(pg_temp.as_user('abe', format('select transfer_organisation_ownership(%L, %L)', pg_temp.org(), tests.id('user', 2007))),
          'rows=1', 'abe hands it on to owen, a second owner');

select * from finish();
rollback;
