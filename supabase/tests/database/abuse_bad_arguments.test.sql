-- Abuse: every RPC apps may call, given what an attacker or a buggy app would send — nulls,
-- NaN and Infinity, negative and absurd amounts, oversized text, unknown kinds, ids that
-- are not theirs. Each call is refused with a named error (never an internal error, never
-- a quiet answer to another question) and leaves every table as it was.
-- A function apps may execute that is missing here fails the last test.
begin;

-- Cast: 1401 alice (user with credits), 1402 pat (provider), 1403 dana (admin).
select tests.create_user(1401, 'alice@abuse-args.test');
select tests.create_user(1402, 'pat@abuse-args.test', 'provider');
select tests.create_user(1403, 'dana@abuse-args.test', 'admin');
insert into public.strategies (id, user_id, name, strategy_type, engine, is_public, is_verified, content, parameters, monthly_price)
values (tests.id('abuse-args-strategy', 1), tests.id('user', 1402), 'paid', 'marketplace', 'rules', true, true, '{}', '{}', 5);
select public.credit_grant(tests.id('abuse-args-grant', 1), tests.id('user', 1401), 100, 'test', 'abuse-args', '{}');
insert into public.strategies (id, user_id, name, strategy_type, engine, parameters)
values (tests.id('abuse-args-strategy', 2), tests.id('user', 1401), 'private', 'custom', 'sma_cross', '{}');
create temp table abuse_jobs on commit drop as
  select public.enqueue_job('abuse.args', '{}', 'abuse-args') as waiting;
grant select on abuse_jobs to authenticated;

create temp table calls (label text, actor text, statement text, expected text) on commit drop;
grant select on calls to authenticated;
insert into calls values
  ('credit_correct: nulls', 'dana', $$select credit_correct(null, null, null, null, null)$$, 'error=23514'),
  ('credit_correct: NaN', 'dana', $$select credit_correct(gen_random_uuid(), (select id from credit_accounts where code = 'system:grants'), (select id from credit_accounts where user_id = tests.id('user', 1401) and kind = 'user'), 'NaN', 'x')$$, 'error=23514'),
  ('credit_correct: Infinity', 'dana', $$select credit_correct(gen_random_uuid(), (select id from credit_accounts where code = 'system:grants'), (select id from credit_accounts where user_id = tests.id('user', 1401) and kind = 'user'), 'Infinity', 'x')$$, 'error=23514'),
  ('credit_correct: negative', 'dana', $$select credit_correct(gen_random_uuid(), (select id from credit_accounts where code = 'system:grants'), (select id from credit_accounts where user_id = tests.id('user', 1401) and kind = 'user'), -5, 'x')$$, 'error=23514'),
  ('credit_correct: absurd', 'dana', $$select credit_correct(gen_random_uuid(), (select id from credit_accounts where code = 'system:grants'), (select id from credit_accounts where user_id = tests.id('user', 1401) and kind = 'user'), 1e30, 'x')$$, 'error=23514'),
  ('credit_correct: a reason of 1 MB', 'dana', $$select credit_correct(gen_random_uuid(), (select id from credit_accounts where code = 'system:grants'), (select id from credit_accounts where user_id = tests.id('user', 1401) and kind = 'user'), 1, repeat('x', 1000000))$$, 'error=23514'),
  ('credit_correct: no reason', 'dana', $$select credit_correct(gen_random_uuid(), (select id from credit_accounts where code = 'system:grants'), (select id from credit_accounts where user_id = tests.id('user', 1401) and kind = 'user'), 1, null)$$, 'error=23514'),
  ('credit_correct: by a user', 'alice', $$select credit_correct(gen_random_uuid(), (select id from credit_accounts where code = 'system:grants'), (select id from credit_accounts where user_id = tests.id('user', 1401) and kind = 'user'), 1, 'mine')$$, 'denied'),
  ('get_credit_balance: null kind', 'alice', $$select * from get_credit_balance(null)$$, 'error=22023'),
  ('get_credit_balance: a kind of 1 MB', 'alice', $$select * from get_credit_balance(repeat('x', 1000000))$$, 'error=22023'),
  ('get_credit_balance: the platform''s revenue', 'alice', $$select * from get_credit_balance('platform_revenue')$$, 'error=22023'),
  ('get_credit_statement: a page of -1', 'alice', $$select * from get_credit_statement(-1)$$, 'error=22023'),
  ('get_credit_statement: a page of 100,000,000', 'alice', $$select * from get_credit_statement(100000000)$$, 'error=22023'),
  ('get_credit_statement: a null kind', 'alice', $$select * from get_credit_statement(10, null, null)$$, 'error=22023'),
  ('credit_request_payout: NaN', 'pat', $$select credit_request_payout('NaN')$$, 'error=23514'),
  ('credit_request_payout: Infinity', 'pat', $$select credit_request_payout('Infinity')$$, 'error=23514'),
  ('credit_request_payout: negative', 'pat', $$select credit_request_payout(-1)$$, 'error=23514'),
  ('credit_request_payout: for someone else', 'alice', $$select credit_request_payout(60, null, tests.id('user', 1402))$$, 'denied'),
  ('latest_trades: a null page', 'alice', $$select * from latest_trades(null)$$, 'error=22023'),
  ('latest_trades: a page of 0', 'alice', $$select * from latest_trades(0)$$, 'error=22023'),
  ('latest_trades: a page of 100,000,000', 'alice', $$select * from latest_trades(100000000)$$, 'error=22023'),
  ('latest_trades: from infinity', 'alice', $$select * from latest_trades(10, 'infinity')$$, 'rows=0'),
  ('get_user_trading_performance: null days', 'alice', $$select * from get_user_trading_performance(null)$$, 'error=22023'),
  ('get_user_trading_performance: -5 days', 'alice', $$select * from get_user_trading_performance(-5)$$, 'error=22023'),
  ('get_user_trading_performance: 100,000,000 days', 'alice', $$select * from get_user_trading_performance(100000000)$$, 'error=22023'),
  ('get_user_trading_performance: someone else''s', 'alice', $$select * from get_user_trading_performance(30, tests.id('user', 1402))$$, 'denied'),
  ('subscribe_to_strategy: null', 'alice', $$select subscribe_to_strategy(null)$$, 'error=P0002'),
  ('subscribe_to_strategy: no such strategy', 'alice', $$select subscribe_to_strategy(gen_random_uuid())$$, 'error=P0002'),
  ('subscribe_to_strategy: unknown sizing', 'alice', format($$select subscribe_to_strategy(%L, false, null, '{"mode": "lots"}')$$, tests.id('abuse-args-strategy', 1)), 'error=23514'),
  ('subscribe_to_strategy: sizing of 1 MB', 'alice', format($$select subscribe_to_strategy(%L, false, null, jsonb_build_object('mode', repeat('x', 1000000)))$$, tests.id('abuse-args-strategy', 1)), 'error=23514'),
  ('subscribe_to_strategy: someone else''s bot', 'alice', format($$select subscribe_to_strategy(%L, true, gen_random_uuid())$$, tests.id('abuse-args-strategy', 1)), 'denied'),
  ('pause_strategy_subscription: null', 'alice', $$select pause_strategy_subscription(null)$$, 'error=P0002'),
  ('resume_strategy_subscription: null', 'alice', $$select resume_strategy_subscription(null)$$, 'error=P0002'),
  ('cancel_strategy_subscription: null', 'alice', $$select cancel_strategy_subscription(null)$$, 'error=P0002'),
  ('accept_strategy_price: null', 'alice', $$select accept_strategy_price(null)$$, 'error=P0002'),
  ('billing_start_trial: null', 'alice', $$select billing_start_trial(null)$$, 'error=P0002'),
  ('billing_start_trial: no such plan', 'alice', $$select billing_start_trial(gen_random_uuid())$$, 'error=P0002'),
  ('billing_cancel_at_period_end: null', 'alice', $$select billing_cancel_at_period_end(null)$$, 'error=22023'),
  ('billing_cancel_at_period_end: no paid plan', 'alice', $$select billing_cancel_at_period_end()$$, 'error=P0002'),
  ('rotate_tradingview_token: null', 'pat', $$select rotate_tradingview_token(null)$$, 'denied'),
  ('rotate_tradingview_token: someone else''s strategy', 'alice', format($$select rotate_tradingview_token(%L)$$, tests.id('abuse-args-strategy', 1)), 'denied'),
  ('close_position: null', 'alice', $$select close_position(null, true)$$, 'error=P0002'),
  ('close_position: no such trade', 'alice', $$select close_position(gen_random_uuid(), true)$$, 'error=P0002'),
  ('close_position: unknown order type', 'alice', $$select close_position(gen_random_uuid(), true, 'stop')$$, 'error=22023'),
  ('close_position: a market close with a limit price', 'alice', $$select close_position(gen_random_uuid(), true, 'market', 1)$$, 'error=22023'),
  ('close_position: limit price 0', 'alice', $$select close_position(gen_random_uuid(), true, 'limit', 0, 60)$$, 'error=22023'),
  ('close_position: negative limit price', 'alice', $$select close_position(gen_random_uuid(), true, 'limit', -1, 60)$$, 'error=22023'),
  ('close_position: NaN limit price', 'alice', $$select close_position(gen_random_uuid(), true, 'limit', 'NaN', 60)$$, 'error=23514'),
  ('close_position: Infinity limit price', 'alice', $$select close_position(gen_random_uuid(), true, 'limit', 'Infinity', 60)$$, 'error=23514'),
  ('close_position: a timeout of 1 s', 'alice', $$select close_position(gen_random_uuid(), true, 'limit', 1, 1)$$, 'error=22023'),
  ('close_position: a timeout of a year', 'alice', $$select close_position(gen_random_uuid(), true, 'limit', 1, 31536000)$$, 'error=22023'),
  ('close_position: no timeout', 'alice', $$select close_position(gen_random_uuid(), true, 'limit', 1)$$, 'error=22023'),
  ('close_position: unknown timeout action', 'alice', $$select close_position(gen_random_uuid(), true, 'limit', 1, 60, 'wait')$$, 'error=22023'),
  ('close_position: a key of 1 MB', 'alice', $$select close_position(gen_random_uuid(), true, 'market', null, null, 'market', repeat('x', 1000000))$$, 'error=22023'),
  ('manual_trade: null', 'alice', $$select manual_trade(null, true, 'buy', 1)$$, 'error=P0002'),
  ('manual_trade: someone else''s bot', 'alice', $$select manual_trade(gen_random_uuid(), true, 'buy', 1)$$, 'error=P0002'),
  ('manual_trade: unknown side', 'alice', $$select manual_trade(gen_random_uuid(), true, 'hold', 1)$$, 'error=22023'),
  ('manual_trade: amount and stake', 'alice', $$select manual_trade(gen_random_uuid(), true, 'buy', 1, 1)$$, 'error=22023'),
  ('manual_trade: neither amount nor stake', 'alice', $$select manual_trade(gen_random_uuid(), true, 'buy')$$, 'error=22023'),
  ('manual_trade: negative amount', 'alice', $$select manual_trade(gen_random_uuid(), true, 'buy', -1)$$, 'error=22023'),
  ('manual_trade: NaN stake', 'alice', $$select manual_trade(gen_random_uuid(), true, 'buy', null, 'NaN')$$, 'error=23514'),
  ('manual_trade: Infinity amount', 'alice', $$select manual_trade(gen_random_uuid(), true, 'buy', 'Infinity')$$, 'error=23514'),
  ('manual_trade: absurd amount', 'alice', $$select manual_trade(gen_random_uuid(), true, 'buy', 1e30)$$, 'error=22023'),
  ('manual_trade: a pair of 1 MB', 'alice', $$select manual_trade(gen_random_uuid(), true, 'buy', 1, null, null, repeat('x', 1000000))$$, 'error=22023'),
  ('manual_trade: a pair of someone else''s bot', 'alice', $$select manual_trade(gen_random_uuid(), true, 'buy', 1, null, null, 'ETH/BTC')$$, 'error=P0002'),
  ('close_position: amount and fraction', 'alice', $$select close_position(gen_random_uuid(), true, 'market', null, null, 'market', null, null, 1, 0.5)$$, 'error=22023'),
  ('close_position: negative amount', 'alice', $$select close_position(gen_random_uuid(), true, 'market', null, null, 'market', null, null, -1)$$, 'error=22023'),
  ('close_position: NaN amount', 'alice', $$select close_position(gen_random_uuid(), true, 'market', null, null, 'market', null, null, 'NaN')$$, 'error=23514'),
  ('close_position: fraction of 2', 'alice', $$select close_position(gen_random_uuid(), true, 'market', null, null, 'market', null, null, null, 2)$$, 'error=22023'),
  ('close_position: fraction 0', 'alice', $$select close_position(gen_random_uuid(), true, 'market', null, null, 'market', null, null, null, 0)$$, 'error=22023'),
  ('close_position: a pair of 1 MB', 'alice', $$select close_position(gen_random_uuid(), true, 'market', null, null, 'market', null, repeat('x', 1000000))$$, 'error=P0002'),
  ('stop_bot: null', 'alice', $$select stop_bot(null, 'keep')$$, 'error=P0002'),
  ('stop_bot: someone else''s bot', 'alice', $$select stop_bot(gen_random_uuid(), 'close')$$, 'error=P0002'),
  ('stop_bot: no choice', 'alice', $$select stop_bot(gen_random_uuid(), null)$$, 'error=22023'),
  ('stop_bot: unknown choice', 'alice', $$select stop_bot(gen_random_uuid(), 'sell')$$, 'error=22023'),
  ('get_strategy_content: null', 'alice', $$select * from get_strategy_content(null)$$, 'error=23502'),
  ('get_strategy_content: not subscribed', 'alice', format($$select * from get_strategy_content(%L)$$, tests.id('abuse-args-strategy', 1)), 'denied'),
  ('get_strategy_subscribers: null', 'pat', $$select * from get_strategy_subscribers(null)$$, 'error=23502'),
  ('get_strategy_subscribers: someone else''s strategy', 'alice', format($$select * from get_strategy_subscribers(%L)$$, tests.id('abuse-args-strategy', 1)), 'denied'),
  ('credit_min_payout: takes nothing', 'alice', $$select credit_min_payout() > 0 as ok$$, 'rows=1'),
  ('admin_set_user_role: nulls', 'dana', $$select admin_set_user_role(null, null, null)$$, 'error=23514'),
  ('admin_set_user_role: an unknown role', 'dana', format($$select admin_set_user_role(%L, 'root', 'x')$$, tests.id('user', 1401)), 'error=23514'),
  ('admin_set_user_role: no reason', 'dana', format($$select admin_set_user_role(%L, 'provider', ' ')$$, tests.id('user', 1401)), 'error=23514'),
  ('admin_set_user_role: a reason of 1 MB', 'dana', format($$select admin_set_user_role(%L, 'provider', repeat('x', 1000000))$$, tests.id('user', 1401)), 'error=23514'),
  ('admin_set_user_role: no such user', 'dana', $$select admin_set_user_role(gen_random_uuid(), 'provider', 'x')$$, 'error=P0002'),
  ('admin_set_user_role: an admin making an admin', 'dana', format($$select admin_set_user_role(%L, 'admin', 'x')$$, tests.id('user', 1401)), 'denied'),
  ('admin_set_user_role: by a user', 'alice', format($$select admin_set_user_role(%L, 'provider', 'x')$$, tests.id('user', 1401)), 'denied'),
  ('admin_set_user_role: by a provider', 'pat', $$select admin_set_user_role(null, null, null)$$, 'denied'),
  ('admin_verify_strategy: nulls', 'dana', $$select admin_verify_strategy(null, null, null)$$, 'error=23502'),
  ('admin_verify_strategy: no such strategy', 'dana', $$select admin_verify_strategy(gen_random_uuid(), true, 'x')$$, 'error=P0002'),
  ('admin_verify_strategy: no reason', 'dana', format($$select admin_verify_strategy(%L, false, null)$$, tests.id('abuse-args-strategy', 1)), 'error=23514'),
  ('admin_verify_strategy: a private strategy', 'dana', format($$select admin_verify_strategy(%L, true, 'x')$$, tests.id('abuse-args-strategy', 2)), 'error=23514'),
  ('admin_verify_strategy: by its provider', 'pat', format($$select admin_verify_strategy(%L, false, 'x')$$, tests.id('abuse-args-strategy', 1)), 'denied'),
  ('admin_verify_strategy: by a user', 'alice', $$select admin_verify_strategy(null, null, null)$$, 'denied'),
  ('admin_retry_job: null', 'dana', $$select admin_retry_job(null)$$, 'error=P0002'),
  ('admin_retry_job: no such job', 'dana', $$select admin_retry_job(-1)$$, 'error=P0002'),
  ('admin_retry_job: a job still waiting', 'dana', $$select admin_retry_job((select waiting from abuse_jobs))$$, 'error=23514'),
  ('admin_retry_job: by a user', 'alice', $$select admin_retry_job(null)$$, 'denied'),
  ('admin_discard_job: nulls', 'dana', $$select admin_discard_job(null, null)$$, 'error=23514'),
  ('admin_discard_job: no such job', 'dana', $$select admin_discard_job(-1, 'x')$$, 'error=P0002'),
  ('admin_discard_job: a job still waiting', 'dana', $$select admin_discard_job((select waiting from abuse_jobs), 'x')$$, 'error=23514'),
  ('admin_discard_job: by a user', 'alice', $$select admin_discard_job(null, null)$$, 'denied'),
  ('admin_replay_webhook_event: nulls', 'dana', $$select admin_replay_webhook_event(null, null)$$, 'error=23514'),
  ('admin_replay_webhook_event: no such event', 'dana', $$select admin_replay_webhook_event(gen_random_uuid(), 'x')$$, 'error=P0002'),
  ('admin_replay_webhook_event: not a uuid', 'dana', $$select admin_replay_webhook_event('nope', 'x')$$, 'error=22P02'),
  ('admin_replay_webhook_event: by a user', 'alice', $$select admin_replay_webhook_event(null, null)$$, 'denied'),
  ('admin_platform_overview: by a user', 'alice', $$select 1 where admin_platform_overview() is not null$$, 'denied'),
  ('admin_platform_overview: by a provider', 'pat', $$select 1 where admin_platform_overview() is not null$$, 'denied'),
  ('admin_platform_overview: takes nothing', 'dana', $$select 1 where admin_platform_overview() is not null$$, 'rows=1'),
  ('request_ai_analysis: nulls', 'alice', $$select * from request_ai_analysis(null, null, null, null, null)$$, 'error=22023'),
  ('request_ai_analysis: an unknown type', 'alice', $$select * from request_ai_analysis('horoscope')$$, 'error=22023'),
  ('request_ai_analysis: a type the fleet writes', 'alice', $$select * from request_ai_analysis('optimization', null, tests.id('abuse-args-strategy', 2))$$, 'error=22023'),
  ('request_ai_analysis: a risk review of nothing', 'alice', $$select * from request_ai_analysis('risk')$$, 'error=22023'),
  ('request_ai_analysis: someone else''s strategy', 'alice', $$select * from request_ai_analysis('risk', null, tests.id('abuse-args-strategy', 1))$$, 'denied'),
  ('request_ai_analysis: a bot that does not exist', 'alice', $$select * from request_ai_analysis('performance', gen_random_uuid())$$, 'denied'),
  ('request_ai_analysis: a backtest run that does not exist', 'alice', $$select * from request_ai_analysis('backtest', null, null, gen_random_uuid())$$, 'denied'),
  ('request_ai_analysis: a blank description', 'alice', $$select * from request_ai_analysis('strategy_generation', null, null, null, '{"description": "  "}')$$, 'error=22023'),
  ('request_ai_analysis: input that is not an object', 'alice', $$select * from request_ai_analysis('portfolio', null, null, null, '[1]')$$, 'error=22023'),
  ('request_ai_analysis: input of 1 MB', 'alice', $$select * from request_ai_analysis('strategy_generation', null, null, null, jsonb_build_object('description', repeat('x', 1000000)))$$, 'error=22023'),
  ('apply_ai_suggestion: nulls', 'alice', $$select apply_ai_suggestion(null, null)$$, 'error=P0002'),
  ('apply_ai_suggestion: no such analysis', 'alice', $$select apply_ai_suggestion(gen_random_uuid(), 0)$$, 'error=P0002'),
  ('save_ai_strategy: nulls', 'alice', $$select save_ai_strategy(null, null)$$, 'error=P0002'),
  ('save_ai_strategy: no such analysis', 'alice', $$select save_ai_strategy(gen_random_uuid(), repeat('x', 1000000))$$, 'error=P0002'),
  ('create_api_key: nulls', 'alice', $$select * from create_api_key(null, null, null, null)$$, 'error=22023'),
  ('create_api_key: a name of 1 MB', 'alice', $$select * from create_api_key(repeat('x', 1000000), '{bots:read}')$$, 'error=22023'),
  ('create_api_key: a blank name', 'alice', $$select * from create_api_key('   ', '{bots:read}')$$, 'error=22023'),
  ('create_api_key: no scopes', 'alice', $$select * from create_api_key('k', '{}')$$, 'error=22023'),
  ('create_api_key: an unknown scope', 'alice', $$select * from create_api_key('k', '{bots:read,admin:all}')$$, 'error=22023'),
  ('create_api_key: a null scope', 'alice', $$select * from create_api_key('k', array['bots:read', null])$$, 'error=22023'),
  ('create_api_key: expired at birth', 'alice', $$select * from create_api_key('k', '{bots:read}', now() - interval '1 second')$$, 'error=22023'),
  ('create_api_key: expiring in infinity', 'alice', $$select * from create_api_key('k', '{bots:read}', 'infinity')$$, 'error=22023'),
  ('create_api_key: an unknown environment', 'alice', $$select * from create_api_key('k', '{bots:read}', null, 'prod')$$, 'error=22023'),
  ('create_api_key: on a plan without api_access', 'alice', $$select * from create_api_key('k', '{bots:read}')$$, 'error=23514'),
  ('revoke_api_key: null', 'alice', $$select * from revoke_api_key(null)$$, 'error=P0002'),
  ('revoke_api_key: an unknown key', 'alice', $$select * from revoke_api_key(gen_random_uuid())$$, 'error=P0002'),
  ('db_pre_request: a path of 1 MB', 'alice', $$select 1 from (select set_config('request.method', 'POST', true), set_config('request.path', repeat('/reviews', 125000), true)) s, lateral (select public.db_pre_request()) r$$, 'rows=1'),
  ('db_pre_request: past the limit of reviews', 'alice', $$select 1 from (select set_config('request.method', 'POST', true), set_config('request.path', '/reviews', true)) s, generate_series(1, 6) g, lateral (select public.db_pre_request(), g) r$$, 'error=PGRST'),
  ('admin_service_health: by a user', 'alice', $$select 1 from admin_service_health()$$, 'denied'),
  ('admin_service_health: by a provider', 'pat', $$select 1 from admin_service_health()$$, 'denied'),
  ('admin_service_health: takes nothing', 'dana', $$select 1 where (select count(*) from admin_service_health()) >= 0$$, 'rows=1'),
  ('admin_credit_audit: by a user', 'alice', $$select * from admin_credit_audit()$$, 'denied'),
  ('admin_credit_audit: by a provider', 'pat', $$select * from admin_credit_audit()$$, 'denied'),
  ('admin_credit_audit: takes nothing', 'dana', $$select count(*) from admin_credit_audit()$$, 'rows=1'),
  ('admin_resolve_credit_exposure: nulls', 'dana', $$select admin_resolve_credit_exposure(null, null, null)$$, 'error=23514'),
  ('admin_resolve_credit_exposure: an unknown status', 'dana', $$select admin_resolve_credit_exposure(gen_random_uuid(), 'paid', 'x')$$, 'error=22023'),
  ('admin_resolve_credit_exposure: a reason of 1 MB', 'dana', $$select admin_resolve_credit_exposure(gen_random_uuid(), 'settled', repeat('x', 1000000))$$, 'error=23514'),
  ('admin_resolve_credit_exposure: by a user', 'alice', $$select admin_resolve_credit_exposure(gen_random_uuid(), 'settled', 'mine')$$, 'denied'),
  ('admin_review_payout: nulls', 'dana', $$select admin_review_payout(null, null, null)$$, 'error=23514'),
  ('admin_review_payout: neither approved nor rejected', 'dana', $$select admin_review_payout(gen_random_uuid(), null, 'x')$$, 'error=22023'),
  ('admin_review_payout: by the provider', 'pat', $$select admin_review_payout(gen_random_uuid(), true, 'mine')$$, 'denied'),
  ('connect_payout_destination: nulls', 'pat', $$select connect_payout_destination(null, null, null, null)$$, 'error=22023'),
  ('connect_payout_destination: an unknown provider', 'pat', $$select connect_payout_destination('paypal')$$, 'error=22023'),
  ('connect_payout_destination: a currency of 1 MB', 'pat', $$select connect_payout_destination('stripe', repeat('x', 1000000))$$, 'error=23514'),
  ('connect_payout_destination: paystack without a bank', 'pat', $$select connect_payout_destination('paystack', 'NGN', null, '0001234567')$$, 'error=23514'),
  ('connect_payout_destination: an account number of letters', 'pat', $$select connect_payout_destination('paystack', 'NGN', '058', 'abc')$$, 'error=23514'),
  ('connect_payout_destination: a bank code of 1 MB', 'pat', $$select connect_payout_destination('paystack', 'NGN', repeat('1', 1000000), '0001234567')$$, 'error=23514'),
  ('connect_payout_destination: by a user', 'alice', $$select connect_payout_destination('stripe')$$, 'denied'),
  ('request_payout: NaN', 'pat', $$select request_payout('NaN')$$, 'error=23514'),
  ('request_payout: negative', 'pat', $$select request_payout(-1)$$, 'error=23514'),
  ('request_payout: as the monthly run', 'pat', $$select request_payout(60, null, null, 'monthly')$$, 'denied'),
  ('request_payout: for someone else', 'alice', $$select request_payout(60, null, tests.id('user', 1402))$$, 'denied'),
  ('create_organisation: null', 'alice', $$select create_organisation(null)$$, 'error=22023'),
  ('create_organisation: a blank name', 'alice', $$select create_organisation('   ')$$, 'error=22023'),
  ('create_organisation: a name of 1 MB', 'alice', $$select create_organisation(repeat('x', 1000000))$$, 'error=22023'),
  ('invite_to_organisation: nulls', 'alice', $$select invite_to_organisation(null, null, null)$$, 'error=22023'),
  ('invite_to_organisation: an unknown role', 'alice', $$select invite_to_organisation(gen_random_uuid(), 'x@y.test', 'god')$$, 'error=22023'),
  ('invite_to_organisation: not an address', 'alice', $$select invite_to_organisation(gen_random_uuid(), 'nobody', 'member')$$, 'error=22023'),
  ('invite_to_organisation: an address of 1 MB', 'alice', $$select invite_to_organisation(gen_random_uuid(), repeat('x', 1000000) || '@y.test', 'member')$$, 'error=22023'),
  ('invite_to_organisation: someone else''s organisation', 'alice', $$select invite_to_organisation(gen_random_uuid(), 'x@y.test', 'member')$$, 'error=P0002'),
  ('accept_organisation_invitation: null', 'alice', $$select accept_organisation_invitation(null)$$, 'error=P0002'),
  ('accept_organisation_invitation: no such invitation', 'alice', $$select accept_organisation_invitation(gen_random_uuid())$$, 'error=P0002'),
  ('decline_organisation_invitation: null', 'alice', $$select decline_organisation_invitation(null)$$, 'error=P0002'),
  ('decline_organisation_invitation: no such invitation', 'alice', $$select decline_organisation_invitation(gen_random_uuid())$$, 'error=P0002'),
  ('leave_organisation: null', 'alice', $$select leave_organisation(null)$$, 'error=P0002'),
  ('leave_organisation: not a member', 'alice', $$select leave_organisation(gen_random_uuid())$$, 'error=P0002'),
  ('remove_organisation_member: nulls', 'alice', $$select remove_organisation_member(null, null)$$, 'error=P0002'),
  ('remove_organisation_member: someone else''s organisation', 'alice', $$select remove_organisation_member(gen_random_uuid(), tests.id('user', 1402))$$, 'error=P0002'),
  ('set_organisation_member_role: nulls', 'alice', $$select set_organisation_member_role(null, null, null)$$, 'error=22023'),
  ('set_organisation_member_role: an unknown role', 'alice', $$select set_organisation_member_role(gen_random_uuid(), tests.id('user', 1402), 'god')$$, 'error=22023'),
  ('set_organisation_member_role: someone else''s organisation', 'alice', $$select set_organisation_member_role(gen_random_uuid(), tests.id('user', 1402), 'admin')$$, 'error=P0002'),
  ('delete_organisation: null', 'alice', $$select delete_organisation(null)$$, 'error=P0002'),
  ('revoke_organisation_invitation: null', 'alice', $$select revoke_organisation_invitation(null)$$, 'error=P0002'),
  ('revoke_organisation_invitation: no such invitation', 'alice', $$select revoke_organisation_invitation(gen_random_uuid())$$, 'error=P0002'),
  ('transfer_organisation_ownership: nulls', 'alice', $$select transfer_organisation_ownership(null, null)$$, 'error=22023'),
  ('offer_exchange_keys_to_organisation: nulls', 'alice', $$select offer_exchange_keys_to_organisation(null, null)$$, 'error=22023'),
  ('offer_exchange_keys_to_organisation: someone else''s organisation', 'alice', $$select offer_exchange_keys_to_organisation(gen_random_uuid())$$, 'error=P0002'),
  ('transfer_organisation_ownership: someone else''s organisation', 'alice', $$select transfer_organisation_ownership(gen_random_uuid(), tests.id('user', 1402))$$, 'error=P0002'),
  ('delete_organisation: someone else''s organisation', 'alice', $$select delete_organisation(gen_random_uuid())$$, 'error=P0002'),
  ('create_organisation_api_key: nulls', 'alice', $$select * from create_organisation_api_key(null, null, null, null, null)$$, 'error=22023'),
  ('create_organisation_api_key: a signals scope', 'alice', $$select * from create_organisation_api_key(gen_random_uuid(), 'k', '{signals:write}')$$, 'error=22023'),
  ('create_organisation_api_key: expiring in infinity', 'alice', $$select * from create_organisation_api_key(gen_random_uuid(), 'k', '{bots:read}', 'infinity')$$, 'error=22023'),
  ('create_organisation_api_key: someone else''s organisation', 'alice', $$select * from create_organisation_api_key(gen_random_uuid(), 'k', '{bots:read}')$$, 'error=P0002');

-- What the public tables hold, to compare before and after every call.
create function pg_temp.fingerprint() returns text
language plpgsql
as $$
declare
  r record;
  v text := '';
  v_n bigint;
begin
  for r in select c.oid::regclass as t from pg_class c
            where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' order by 1 loop
    execute format('select count(*) from %s', r.t) into v_n;
    v := v || r.t || '=' || v_n || ' ';
  end loop;
  return v || (select string_agg(a.id || ':' || a.credits_posted || '/' || a.debits_posted || '/' || a.debits_pending, ' ' order by a.id)
                 from public.credit_accounts a);
end;
$$;
create temp table before_calls on commit drop as select pg_temp.fingerprint() as fp;

select plan((select count(*)::int from calls) + 2);

select is(tests.try_as(c.actor || '@abuse-args.test', c.statement), c.expected, c.label)
  from calls c order by c.label;

select is(pg_temp.fingerprint(), (select fp from before_calls), 'no refused call changed any table');

select is(
  (select array_agg(p.proname::text order by p.proname) from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and has_function_privilege('authenticated', p.oid, 'execute')
      and not exists (select 1 from calls c where split_part(c.label, ':', 1) = p.proname)),
  null,
  'every function apps may execute is tried with bad arguments'
);

select * from finish();
rollback;
