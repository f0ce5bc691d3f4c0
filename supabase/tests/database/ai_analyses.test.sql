-- AI analyses: a request by its owner queues one ai.analyze job and is seen by its owner
-- only; a subject that is not the caller's is refused; the per-minute rate limit; a
-- suggestion applies to the owner's bot in one call; a generated strategy is saved as the
-- owner's strategy once.
begin;

-- Cast: 1901 ana and 1902 ben.
select tests.create_user(1901, 'ana@ai.test');
select tests.create_user(1902, 'ben@ai.test');
insert into public.bots (id, user_id, name, exchange, trading_pair, timeframe, strategy, parameters,
                         initial_balance, current_balance, stake_amount)
values (tests.id('ai-bot', 1), tests.id('user', 1901), 'ana bot', 'binance', 'ETH/BTC', '5m', 'sma_cross',
        '{"fast": 10, "slow": 30}', 1, 1, 0.1);
update public.plans set features = features || '{"ai_requests_per_minute": 2}', ai_requests_per_month = null
 where name = 'Free';
create temp table asked (n int, id uuid) on commit drop;
grant all on asked to public;

select plan(13);

select tests.authenticate_as('ana@ai.test');
insert into asked select 1, a.id from public.request_ai_analysis('performance', tests.id('ai-bot', 1)) a;
select is((select status || ' ' || analysis_type from public.ai_analyses where id = (select id from asked where n = 1)),
          'queued performance', 'the owner''s request is queued and readable by its owner');
select tests.authenticate_as('ben@ai.test');
select is((select count(*)::int from public.ai_analyses where id = (select id from asked where n = 1)), 0,
          'another user cannot read it');
select throws_ok($$select public.request_ai_analysis('risk', tests.id('ai-bot', 1))$$, '42501', null,
                 'a bot that is not the caller''s is refused');
select tests.clear_authentication();
select is((select count(*)::int from public.jobs where kind = 'ai.analyze'
             and idempotency_key = 'ai.analyze:' || (select id from asked where n = 1)::text), 1,
          'one ai.analyze job per request');

select tests.authenticate_as('ana@ai.test');
insert into asked select 2, a.id from public.request_ai_analysis('portfolio') a;
select throws_like($$select public.request_ai_analysis('portfolio')$$, 'rate limited: at most 2 AI requests a minute%',
                   'the third request in a minute is rate limited');
select tests.clear_authentication();
select is((select count(*)::int from public.ai_analyses where user_id = tests.id('user', 1901)), 2,
          'the refused request wrote nothing');

-- The fleet completes the review with an applicable suggestion.
update public.ai_analyses
   set status = 'completed', summary = 's',
       suggestions = '[{"title": "stop", "detail": "d", "target": "bot", "parameters": {"stop_loss": 5, "fast": 12}}]'
 where id = (select id from asked where n = 1);
select tests.authenticate_as('ben@ai.test');
select throws_ok($$select public.apply_ai_suggestion((select id from asked where n = 1), 0)$$, 'P0002', null,
                 'another user cannot apply it');
select tests.authenticate_as('ana@ai.test');
select is(public.apply_ai_suggestion((select id from asked where n = 1), 0) -> 'applied',
          '{"stop_loss": 5, "fast": 12}'::jsonb, 'the owner applies it in one call');
select tests.clear_authentication();
select is((select stop_loss::text || ' ' || (parameters ->> 'fast') || ' ' || (parameters ->> 'slow')
             from public.bots where id = tests.id('ai-bot', 1)), '5.0000 12 30',
          'stop-loss set, parameter merged, the others kept');

-- A generated strategy, saved once.
update public.plans set custom_strategies = true where name = 'Free';
update public.ai_analyses
   set analysis_type = 'strategy_generation', status = 'completed', input_data = '{"description": "rsi dip"}',
       generated_strategy = '{"name": "RSI dip", "engine": "rules", "rules": {"entry_long": {"left": {"indicator": "rsi"}, "op": "<", "right": 30}}}'
 where id = (select id from asked where n = 2);
select tests.authenticate_as('ana@ai.test');
select lives_ok($$insert into asked select 3, public.save_ai_strategy((select id from asked where n = 2), null)$$,
                'the owner saves the generated strategy');
select is(public.save_ai_strategy((select id from asked where n = 2), 'again'), (select id from asked where n = 3),
          'saving again returns the same strategy');
select tests.clear_authentication();
select is((select name || ' ' || strategy_type || ' ' || engine || ' ' || (content::jsonb -> 'entry_long' ->> 'op')
             from public.strategies where id = (select id from asked where n = 3)),
          'RSI dip ai_generated rules <', 'saved as the owner''s ai_generated rules strategy');

select ok(exists (select 1 from pg_publication_tables where pubname = 'supabase_realtime'
                  and schemaname = 'public' and tablename = 'ai_analyses'),
          'analyses are published to Realtime');

select * from finish();
rollback;
