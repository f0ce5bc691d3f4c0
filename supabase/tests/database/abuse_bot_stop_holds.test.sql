-- Abuse and fairness: the credit holds of a bot that stops. Each entry of a bot holds the
-- plan's credits_per_trade before its order; the step that writes the order posts or voids
-- the hold. A hold whose order never happened was voided only when a worker adopted the bot
-- again, so a bot that stopped (or went to error, or was deleted) kept its user's credits
-- held until the hold's timeout, an hour later. They now come back as the bot stops; a hold
-- an order that may still fill needs is kept, so stopping a bot is no way to trade for free.
-- Cast: 3501 sam.
begin;
select plan(11);

select tests.create_user(3501, 'sam@stop-holds.test');
select public.credit_grant(tests.id('stop-holds-grant', 1), tests.id('user', 3501), 10);

create function pg_temp.available() returns numeric
language sql as $$
  select a.credits_posted - a.debits_posted - a.debits_pending from public.credit_accounts a
   where a.user_id = tests.id('user', 3501) and a.kind = 'user'
$$;

-- A hold of an entry of bot p_bot, decided on the candle at p_decided (as the fleet places it).
create function pg_temp.hold(p_n integer, p_bot integer, p_decided timestamptz) returns text
language sql as $$
  select (public.credit_hold(tests.id('stop-holds-hold', p_n),
            (select id from public.credit_accounts where user_id = tests.id('user', 3501) and kind = 'user'),
            (select id from public.credit_accounts where code = 'system:usage'), 1, 'usage', interval '1 hour',
            'order', 'stop-holds-' || p_n,
            jsonb_build_object('bot_id', tests.id('stop-holds-bot', p_bot), 'usage', 'trade',
                               'decided_at', p_decided))).phase
$$;

create function pg_temp.pending() returns text
language sql as $$
  select coalesce(string_agg(substr(t.reference_id, 12), ',' order by t.reference_id), '')
    from public.credit_transfers t
   where t.reference_type = 'order' and t.reference_id like 'stop-holds-%' and t.phase = 'pending'
     and not exists (select 1 from public.credit_transfers r where r.pending_id = t.id)
$$;

-- Run a statement as sam and keep its effects: 'rows=<n>' or 'error=<sqlstate>'.
create function pg_temp.as_sam(p_sql text) returns text
language plpgsql as $$
declare
  v_rows bigint;
  v_result text;
begin
  begin
    perform tests.authenticate_as('sam@stop-holds.test');
    execute p_sql;
    get diagnostics v_rows = row_count;
    v_result := 'rows=' || v_rows;
  exception when others then
    v_result := 'error=' || sqlstate;
  end;
  perform tests.clear_authentication();
  return v_result;
end;
$$;

select tests.authenticate_as('sam@stop-holds.test');
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, initial_balance, stake_amount, status)
values (tests.id('stop-holds-bot', 1), tests.id('user', 3501), 'one', 'binance', 'BTC/USDT', '1h', 'rsi', 1000, 100, 'running'),
       (tests.id('stop-holds-bot', 2), tests.id('user', 3501), 'two', 'binance', 'BTC/USDT', '1h', 'rsi', 1000, 100, 'running');
select tests.clear_authentication();
insert into public.bot_leases (bot_id, epoch, expires_at)
select tests.id('stop-holds-bot', n), 1, now() + interval '1 minute' from generate_series(1, 2) n;
update public.bots set last_candle_at = '2026-01-01T10:00:00Z' where id in (tests.id('stop-holds-bot', 1), tests.id('stop-holds-bot', 2));

-- Bot one: an entry whose order never happened (its step committed without it), a limit entry
-- resting on the book, an entry whose step is still in flight. Bot two: one entry, never placed.
select is(pg_temp.hold(1, 1, '2026-01-01T10:00:00Z') || pg_temp.hold(2, 1, '2026-01-01T10:00:00Z')
          || pg_temp.hold(3, 1, '2026-01-01T11:00:00Z') || pg_temp.hold(4, 2, '2026-01-01T09:00:00Z'),
          'pendingpendingpendingpending', 'the fleet holds four entries of sam''s bots');
insert into public.orders (bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount, price, status, lease_epoch)
values (tests.id('stop-holds-bot', 1), tests.id('user', 3501), 'stop-holds-2', 'binance', 'BTC/USDT', 'buy', 'limit', 1, 100,
        'open', 1);
select is(pg_temp.available(), 6::numeric, 'sam has 6 of his 10 credits available');

-- sam stops bot one.
select is(pg_temp.as_sam(format($$update public.bots set status = 'stopped' where id = %L$$,
                                                     tests.id('stop-holds-bot', 1))), 'rows=1', 'sam stops bot one');
select is(pg_temp.available(), 7::numeric, 'the credits of the entry that never happened come back at once');
select is(pg_temp.pending(), '2,3,4', '... the resting order keeps its hold, as does the step in flight, and bot two''s');

-- The step in flight commits, without its order.
update public.bots set last_candle_at = '2026-01-01T11:00:00Z' where id = tests.id('stop-holds-bot', 1);
select is(pg_temp.available(), 8::numeric, 'the step in flight commits without its order: its credits come back');
select is(pg_temp.pending(), '2,4', '... and only the resting order''s hold stays on bot one');

-- The fleet sets bot two to error.
update public.bots set status = 'error', error_message = 'refused' where id = tests.id('stop-holds-bot', 2);
select is(pg_temp.pending(), '2', 'a bot in error gives its holds back too');

-- sam deletes bot one: its resting order goes with it.
select is(pg_temp.as_sam(format($$delete from public.bots where id = %L$$, tests.id('stop-holds-bot', 1))),
          'rows=1', 'sam deletes bot one');
select is(pg_temp.available(), 10::numeric, 'every credit is available again');
select is((select count(*)::int from public.credit_audit()), 0, 'the ledger still balances');

select * from finish();
rollback;
