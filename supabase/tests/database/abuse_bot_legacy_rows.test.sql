-- Abuse: one bot row written before the bots' settings were bounded stops a signal's close for
-- every subscriber. The bounds were added NOT VALID, but every update of a row checks them:
-- the statistics trigger of the close fan-out's one statement updates every copying bot, and
-- one such bot failed it for all. Those rows are brought within the rules (their former values
-- kept in private.bots_legacy_values) and the checks validated.
-- Cast: 3601 pat (provider), 3602 ann, 3603 old (a bot from before the rules).
begin;
select plan(9);

select is((select count(*)::int from pg_constraint where conrelid = 'public.bots'::regclass and not convalidated), 0,
          'every check on bots is validated: no row escapes them');

select tests.create_user(3601, 'pat@legacy-rows.test', 'provider');
select tests.create_user(3602, 'ann@legacy-rows.test');
select tests.create_user(3603, 'old@legacy-rows.test');
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('legacy-rows-market', 1), tests.id('user', 3601), 'Legacy', 'marketplace', true, true, 0);
select count(*) from (select public.credit_grant(tests.id('legacy-rows-grant', n), tests.id('user', n), 10)
                        from generate_series(3602, 3603) n) g;
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status)
select tests.id('legacy-rows-bot', n), tests.id('user', n), 'copies', 'binance', 'BTC/USDT', '1h', 'rsi', 1000, 100, 'running'
  from generate_series(3602, 3603) n;
select tests.authenticate_as('ann@legacy-rows.test');
select public.subscribe_to_strategy(tests.id('legacy-rows-market', 1), true, tests.id('legacy-rows-bot', 3602));
select tests.authenticate_as('old@legacy-rows.test');
select public.subscribe_to_strategy(tests.id('legacy-rows-market', 1), true, tests.id('legacy-rows-bot', 3603));
select tests.clear_authentication();
insert into public.bot_leases (bot_id, epoch, expires_at)
select tests.id('legacy-rows-bot', n), 1, now() + interval '1 minute' from generate_series(3602, 3603) n;

-- old's bot as it was written before the rules: a 300-character name, a sizing the engine
-- does not know, a paper fee of 70%.
alter table public.bots drop constraint bots_name_length, drop constraint bots_metadata_sizing_known,
  drop constraint bots_metadata_paper_costs;
update public.bots set name = repeat('x', 300), metadata = '{"sizing": "martingale", "paper_fee": 0.7, "note": "kept"}'
 where id = tests.id('legacy-rows-bot', 3603);
alter table public.bots
  add constraint bots_name_length check (char_length(name) <= 200) not valid,
  add constraint bots_metadata_sizing_known
    check (coalesce(metadata ->> 'sizing', 'stake') in ('stake', 'risk', 'unlimited')) not valid,
  add constraint bots_metadata_paper_costs check (
    (not metadata ? 'paper_fee' or coalesce(private.sizing_number(metadata -> 'paper_fee') between 0 and 0.5, false))
    and (not metadata ? 'paper_slippage'
         or coalesce(private.sizing_number(metadata -> 'paper_slippage') between 0 and 0.5, false))) not valid;

-- Keep a statement's effects: 'ok' or 'error=<sqlstate>'.
create function pg_temp.run(p_actor text, p_sql text) returns text
language plpgsql as $$
declare
  v_result text := 'ok';
begin
  begin
    if p_actor is not null then
      perform tests.authenticate_as(p_actor);
    end if;
    execute p_sql;
  exception when others then
    v_result := 'error=' || sqlstate;
  end;
  perform tests.clear_authentication();
  return v_result;
end;
$$;

insert into public.signals (id, strategy_id, provider_id, pair, side, entry_price)
values (tests.id('legacy-rows-signal', 1), tests.id('legacy-rows-market', 1), tests.id('user', 3601), 'BTC/USDT', 'long', 100);
select is((select executed from public.signal_fan_out(tests.id('legacy-rows-signal', 1))), 2, 'both bots copy the signal');
update public.signals set status = 'closed', exit_price = 110 where id = tests.id('legacy-rows-signal', 1);
select is(pg_temp.run(null, format($$select public.signal_fan_out(%L, 'close')$$, tests.id('legacy-rows-signal', 1))),
          'error=23514', 'while old''s bot breaks the rules, the close fails for everyone');

-- The migration's repair, as it runs it.
alter table public.bots disable trigger user;
select is(private.bots_repair_legacy_rows(), 1, 'the repair changes old''s bot alone');
alter table public.bots enable trigger user;
alter table public.bots validate constraint bots_name_length, validate constraint bots_metadata_sizing_known,
  validate constraint bots_metadata_paper_costs;

select results_eq(format($$select char_length(name), metadata from public.bots where id = %L$$, tests.id('legacy-rows-bot', 3603)),
                  $$values (200, '{"note": "kept"}'::jsonb)$$,
                  'old''s bot keeps its name''s first 200 characters and the settings the engine knows');
select bag_eq(format($$select field, value from private.bots_legacy_values where bot_id = %L$$, tests.id('legacy-rows-bot', 3603)),
              $$values ('name', to_jsonb(repeat('x', 300))),
                       ('metadata', '{"sizing": "martingale", "paper_fee": 0.7, "note": "kept"}'::jsonb)$$,
              '... and what it had is kept');
select is(pg_temp.run(null, format($$select public.signal_fan_out(%L, 'close')$$, tests.id('legacy-rows-signal', 1))), 'ok',
          'the close fans out');
select is((select string_agg(status, ',') from public.trades where signal_id = tests.id('legacy-rows-signal', 1)), 'closed,closed',
          '... closing both copies');
select is(pg_temp.run('old@legacy-rows.test', format($$update public.bots set status = 'stopped' where id = %L$$,
                                                    tests.id('legacy-rows-bot', 3603))), 'ok',
          'and old can stop his bot again');

select * from finish();
rollback;
