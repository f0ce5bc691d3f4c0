-- Abuse: signal updates as an amplifier. Every change of a live signal's stop-loss,
-- take-profit, indicators or note is fanned out to every active subscriber of the strategy
-- (one notification each, and their Telegram or Discord messages), one fan-out per change.
-- Publishing is limited (30 signals a minute, 500 a day); updating was not, so one provider
-- looping over a PATCH made a notification per subscriber per request. A strategy's
-- signals now change at most 30 times a minute; closing and cancelling are never held back.
-- Cast: 3301 pat (provider).
begin;
select plan(5);

select tests.create_user(3301, 'pat@signal-updates.test', 'provider');
insert into public.strategies (id, user_id, name, strategy_type, is_public, is_verified, monthly_price)
values (tests.id('signal-updates-market', 1), tests.id('user', 3301), 'Chatty', 'marketplace', true, true, 0);
insert into public.signals (id, strategy_id, provider_id, pair, side, entry_price)
values (tests.id('signal-updates-signal', 1), tests.id('signal-updates-market', 1), tests.id('user', 3301),
        'CHT/USDT', 'long', 10),
       (tests.id('signal-updates-signal', 2), tests.id('signal-updates-market', 1), tests.id('user', 3301),
        'CHT/USDT', 'long', 10);

-- What the provider's statement raised: '<sqlstate> <constraint>' (or 'ok'), kept if it passed.
create function pg_temp.as_provider(p_sql text) returns text
language plpgsql as $$
declare
  v_state text;
  v_constraint text;
begin
  perform tests.authenticate_as('pat@signal-updates.test');
  execute p_sql;
  perform tests.clear_authentication();
  return 'ok';
exception when others then
  get stacked diagnostics v_state = returned_sqlstate, v_constraint = constraint_name;
  perform tests.clear_authentication();
  return v_state || ' ' || coalesce(nullif(v_constraint, ''), '-');
end;
$$;

create function pg_temp.note(p_signal integer, p_n integer) returns text
language sql as $$
  select pg_temp.as_provider(format('update public.signals set note = %L where id = %L',
                                    'note ' || p_n, tests.id('signal-updates-signal', p_signal)))
$$;

select is((select array_agg(distinct pg_temp.note(1 + n % 2, n)) from generate_series(1, 30) n), array['ok'],
          'the provider changes the strategy''s signals 30 times in a minute');
select is(pg_temp.note(1, 31), '23514 signals_update_rate_limit', 'the 31st change within the minute is refused');
select is(pg_temp.note(2, 32), '23514 signals_update_rate_limit', '... on any signal of the strategy');
select is((select note from public.signals where id = tests.id('signal-updates-signal', 1)), 'note 30',
          '... and changes nothing');
select is(pg_temp.as_provider(format($$update public.signals set status = 'cancelled' where id = %L$$,
                                     tests.id('signal-updates-signal', 2))), 'ok',
          'withdrawing a signal is never held back');

select * from finish();
rollback;
