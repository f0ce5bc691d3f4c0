-- The identity matrix of grants: who may call each function, which columns apps may write,
-- and sequences. Every function, column grant and sequence in public is listed here, so a
-- new object (or a widened grant) fails this file until it is added on purpose.
begin;

select tests.mx_fixture();

-- Functions anon or authenticated may execute, called as each actor (see
-- 000-identity-helpers for the notation). expected: anon | alice | bob | pat | dana | service_role
create temp table calls (label text, statement text, expected text[]) on commit drop;
insert into calls values
  ('get_user_trading_performance: own', $$select user_id::text as key from get_user_trading_performance(30)$$, array['denied', 'a', 'b', 'p', 'd', 'error=22023']),
  ('get_user_trading_performance: alice''s', $$select user_id::text as key from get_user_trading_performance(30, @user.a)$$, array['denied', 'a', 'denied', 'denied', 'a', 'a']),
  ('latest_trades', $$select id::text as key from latest_trades(50) where id::text = any(@trade)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', '-']),
  ('credit_min_payout', $$select (credit_min_payout() >= 0)::text as key$$, array['denied', 'true', 'true', 'true', 'true', 'true']),
  ('credit_request_payout: own', $$select (credit_request_payout(1)).debit_account_id::text as key$$, array['denied', 'error=P0002', 'error=P0002', 'error=P0002', 'error=P0002', 'error=P0002']),
  ('credit_request_payout: from alice''s account', $$select (credit_request_payout(1, null, @user.a)).debit_account_id::text as key$$, array['denied', 'error=P0002', 'denied', 'denied', 'denied', 'error=P0002']),
  ('credit_correct', $$select (credit_correct(gen_random_uuid(), (select id from credit_accounts where code = 'system:grants'), @account.b, 0.5, 'matrix')).credit_account_id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'b', 'b']),
  ('get_credit_balance', $$select account_id::text as key from get_credit_balance()$$, array['denied', 'a', 'b', 'p', 'd', '-']),
  ('get_credit_statement', $$select transfer_id::text as key from get_credit_statement(100) where transfer_id::text = any(@transfer)$$, array['denied', 'a1 a2', 'b1 b2', 'p1 p2', 'd1 d2', '-']),
  ('subscribe_to_strategy: m1', $$select (subscribe_to_strategy(@strategy.m1)).strategy_id::text as key$$, array['denied', 'm1', 'error=23514', 'error=23514', 'error=23514', 'denied']),
  ('subscribe_to_strategy: with alice''s bot', $$select (subscribe_to_strategy(@strategy.m1, true, @bot.a2)).strategy_id::text as key$$, array['denied', 'm1', 'denied', 'error=23514', 'denied', 'denied']),
  ('pause_strategy_subscription: alice''s', $$select (pause_strategy_subscription(@strategy_sub.a1)).id::text as key$$, array['denied', 'a1', 'error=P0002', 'error=P0002', 'error=P0002', 'a1']),
  ('resume_strategy_subscription: alice''s', $$select (resume_strategy_subscription(@strategy_sub.a1)).id::text as key$$, array['denied', 'a1', 'error=P0002', 'error=P0002', 'error=P0002', 'a1']),
  ('cancel_strategy_subscription: alice''s', $$select (cancel_strategy_subscription(@strategy_sub.a1)).id::text as key$$, array['denied', 'a1', 'error=P0002', 'error=P0002', 'error=P0002', 'a1']),
  ('rotate_tradingview_token: m1', $$select (rotate_tradingview_token(@strategy.m1) is not null)::text as key$$, array['denied', 'denied', 'denied', 'true', 'denied', 'denied']),
  ('get_strategy_content: m1', $$select id::text as key from get_strategy_content(@strategy.m1)$$, array['denied', 'm1', 'denied', 'm1', 'm1', 'm1']),
  ('get_strategy_subscribers: m1', $$select subscription_id::text as key from get_strategy_subscribers(@strategy.m1)$$, array['denied', 'denied', 'denied', 'a1', 'a1', 'a1']),
  ('accept_strategy_price: alice''s, nothing pending', $$select (accept_strategy_price(@strategy_sub.a1)).id::text as key$$, array['denied', 'error=23514', 'error=P0002', 'error=P0002', 'error=P0002', 'error=23514']),
  ('rotate_tradingview_token: alice''s strategy', $$select (rotate_tradingview_token(@strategy.a1) is not null)::text as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'denied']),
  ('admin_set_user_role: bob to provider', $$select (admin_set_user_role(@user.b, 'provider', 'matrix')).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'b', 'b']),
  ('admin_set_user_role: pat to user', $$select (admin_set_user_role(@user.p, 'user', 'matrix')).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'p', 'p']),
  ('admin_set_user_role: alice to admin', $$select (admin_set_user_role(@user.a, 'admin', 'matrix')).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'a']),
  ('admin_set_user_role: dana to user', $$select (admin_set_user_role(@user.d, 'user', 'matrix')).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'denied', 'd']),
  ('admin_verify_strategy: m2', $$select (admin_verify_strategy(@strategy.m2, true, 'matrix')).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'm2', 'm2']),
  ('admin_verify_strategy: unverify m1', $$select (admin_verify_strategy(@strategy.m1, false, 'matrix')).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'm1', 'm1']),
  ('admin_retry_job: j1, waiting', $$select (admin_retry_job(@job.j1)).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'error=23514', 'error=23514']),
  ('admin_discard_job: j1, waiting', $$select (admin_discard_job(@job.j1, 'matrix')).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'error=23514', 'error=23514']),
  ('admin_replay_webhook_event: no such event', $$select (admin_replay_webhook_event(gen_random_uuid(), 'matrix')).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'error=P0002', 'error=P0002']),
  ('admin_platform_overview', $$select (admin_platform_overview() ? 'trades_per_day')::text as key$$, array['denied', 'denied', 'denied', 'denied', 'true', 'true']),
  ('request_ai_analysis: risk of alice''s bot', $$select (request_ai_analysis('risk', @bot.a1)).bot_id::text as key$$, array['denied', 'a1', 'denied', 'denied', 'denied', 'denied']),
  ('apply_ai_suggestion: alice''s queued analysis', $$select apply_ai_suggestion(@ai.a1, 0) ->> 'analysis_id' as key$$, array['denied', 'error=22023', 'error=P0002', 'error=P0002', 'error=P0002', 'denied']),
  ('save_ai_strategy: alice''s risk analysis', $$select save_ai_strategy(@ai.a1)::text as key$$, array['denied', 'error=22023', 'error=P0002', 'error=P0002', 'error=P0002', 'denied']),
  ('create_api_key: own', $$select (create_api_key('matrix', '{bots:read}')).key ~ '^tf_live_[A-Za-z0-9]{32}$' as key$$, array['denied', 'true', 'true', 'true', 'true', 'denied']),
  ('revoke_api_key: alice''s', $$select (revoke_api_key(@api_key.a1)).id::text as key$$, array['denied', 'a1', 'error=P0002', 'error=P0002', 'error=P0002', 'a1']),
  ('db_pre_request: not an expensive write', $$select 'ran' as key from (select db_pre_request()) r$$, array['ran', 'ran', 'ran', 'ran', 'ran', 'ran']),
  ('close_position: alice''s trade on a stopped bot', $$select (close_position(@trade.a1, true)).id::text as key$$, array['denied', 'error=23514', 'error=P0002', 'error=P0002', 'error=P0002', 'denied']),
  ('manual_trade: alice''s stopped bot', $$select (manual_trade(@bot.a1, true, 'buy', 1)).id::text as key$$, array['denied', 'error=23514', 'error=P0002', 'error=P0002', 'error=P0002', 'denied']),
  ('stop_bot: alice''s, keeping positions', $$select (stop_bot(@bot.a1, 'keep')).id::text as key$$, array['denied', 'a1', 'error=P0002', 'error=P0002', 'error=P0002', 'denied']),
  ('admin_service_health', $$select (count(*) >= 0)::text as key from admin_service_health()$$, array['denied', 'denied', 'denied', 'denied', 'true', 'true']),
  ('admin_credit_audit', $$select (count(*) >= 0)::text as key from admin_credit_audit()$$, array['denied', 'denied', 'denied', 'denied', 'true', 'true']),
  ('billing_start_trial: a plan without a trial', $$select (billing_start_trial(@plan.x)).id::text as key$$, array['denied', 'error=P0002', 'error=P0002', 'error=P0002', 'error=P0002', 'denied']),
  ('billing_cancel_at_period_end: no paid plan', $$select (billing_cancel_at_period_end()).id::text as key$$, array['denied', 'error=P0002', 'error=P0002', 'error=P0002', 'error=P0002', 'denied']),
  ('admin_resolve_credit_exposure: no such exposure', $$select (admin_resolve_credit_exposure(gen_random_uuid(), 'settled', 'matrix')).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'error=P0002', 'error=P0002']),
  ('admin_review_payout: no such payout', $$select (admin_review_payout(gen_random_uuid(), true, 'matrix')).id::text as key$$, array['denied', 'denied', 'denied', 'denied', 'error=P0002', 'error=P0002']),
  ('connect_payout_destination: stripe', $$select (connect_payout_destination('stripe')).provider as key$$, array['denied', 'denied', 'denied', 'stripe', 'denied', 'denied']),
  ('request_payout: own, no destination', $$select (request_payout(60)).status as key$$, array['denied', 'error=23514', 'error=23514', 'error=23514', 'error=23514', 'error=23514']),
  ('request_payout: from alice''s earnings', $$select (request_payout(60, null, @user.a)).status as key$$, array['denied', 'error=23514', 'denied', 'denied', 'denied', 'error=23514']),
  ('create_organisation', $$select (create_organisation('matrix')).owner_id::text as key$$, array['denied', 'a', 'b', 'p', 'd', 'denied']),
  ('invite_to_organisation: to o1', $$select (invite_to_organisation(@org.o1, 'new@identity.test', 'member')).organisation_id::text as key$$, array['denied', 'o1', 'denied', 'error=P0002', 'error=P0002', 'denied']),
  ('invite_to_organisation: an owner to o1', $$select (invite_to_organisation(@org.o1, 'new@identity.test', 'owner')).organisation_id::text as key$$, array['denied', 'o1', 'denied', 'error=P0002', 'error=P0002', 'denied']),
  ('accept_organisation_invitation: pat''s to o1', $$select (accept_organisation_invitation(@org_invite.i1)).organisation_id::text as key$$, array['denied', 'error=P0002', 'error=P0002', 'o1', 'error=P0002', 'denied']),
  ('decline_organisation_invitation: alice''s to o2', $$select (decline_organisation_invitation(@org_invite.i2)).id::text as key$$, array['denied', 'i2', 'error=P0002', 'error=P0002', 'error=P0002', 'denied']),
  ('leave_organisation: o1', $$select (leave_organisation(@org.o1)).user_id::text as key$$, array['denied', 'error=23514', 'b', 'error=P0002', 'error=P0002', 'denied']),
  ('remove_organisation_member: bob from o1', $$select (remove_organisation_member(@org.o1, @user.b)).user_id::text as key$$, array['denied', 'b', 'denied', 'error=P0002', 'error=P0002', 'denied']),
  ('remove_organisation_member: alice from o1', $$select (remove_organisation_member(@org.o1, @user.a)).user_id::text as key$$, array['denied', 'error=23514', 'denied', 'error=P0002', 'error=P0002', 'denied']),
  ('set_organisation_member_role: bob in o1 to admin', $$select (set_organisation_member_role(@org.o1, @user.b, 'admin')).role as key$$, array['denied', 'admin', 'denied', 'error=P0002', 'error=P0002', 'denied']),
  ('set_organisation_member_role: alice in o1 to member', $$select (set_organisation_member_role(@org.o1, @user.a, 'member')).role as key$$, array['denied', 'error=23514', 'denied', 'error=P0002', 'error=P0002', 'denied']),
  ('delete_organisation: o1', $$select (delete_organisation(@org.o1)).id::text as key$$, array['denied', 'o1', 'denied', 'error=P0002', 'error=P0002', 'denied']),
  ('create_organisation_api_key: o1', $$select (create_organisation_api_key(@org.o1, 'matrix', '{bots:read}')).key ~ '^tf_live_[A-Za-z0-9]{32}$' as key$$, array['denied', 'true', 'denied', 'error=P0002', 'error=P0002', 'denied']),
  ('revoke_organisation_invitation: pat''s to o1', $$select (revoke_organisation_invitation(@org_invite.i1)).id::text as key$$, array['denied', 'i1', 'denied', 'error=P0002', 'error=P0002', 'denied']),
  ('offer_exchange_keys_to_organisation: o1', $$select (offer_exchange_keys_to_organisation(@org.o1)).user_id::text as key$$, array['denied', 'a', 'b', 'error=P0002', 'error=P0002', 'denied']),
  ('transfer_organisation_ownership: o1 to bob', $$select (transfer_organisation_ownership(@org.o1, @user.b)).id::text as key$$, array['denied', 'o1', 'denied', 'error=P0002', 'error=P0002', 'denied']);

-- Who may execute every function in public (anon, authenticated, service_role).
create temp table executors (fn text, roles text) on commit drop;
insert into executors values
  ('accept_strategy_price(uuid)', 'authenticated service_role'),
  ('set_organisation_member_role(uuid,uuid,text)', 'authenticated service_role'),
  ('remove_organisation_member(uuid,uuid)', 'authenticated service_role'),
  ('leave_organisation(uuid)', 'authenticated service_role'),
  ('invite_to_organisation(uuid,text,text)', 'authenticated service_role'),
  ('delete_organisation(uuid)', 'authenticated service_role'),
  ('decline_organisation_invitation(uuid)', 'authenticated service_role'),
  ('create_organisation_api_key(uuid,text,text[],timestamp with time zone,text)', 'authenticated service_role'),
  ('create_organisation(text)', 'authenticated service_role'),
  ('accept_organisation_invitation(uuid)', 'authenticated service_role'),
  ('revoke_organisation_invitation(uuid)', 'authenticated service_role'),
  ('transfer_organisation_ownership(uuid,uuid)', 'authenticated service_role'),
  ('offer_exchange_keys_to_organisation(uuid,boolean)', 'authenticated service_role'),
  ('admin_credit_audit()', 'authenticated service_role'),
  ('admin_resolve_credit_exposure(uuid,text,text)', 'authenticated service_role'),
  ('admin_review_payout(uuid,boolean,text)', 'authenticated service_role'),
  ('billing_apply_chargeback(uuid,text,timestamp with time zone)', 'service_role'),
  ('billing_apply_refund(uuid,text,numeric,boolean,timestamp with time zone,jsonb)', 'service_role'),
  ('billing_trial_days(uuid,uuid)', 'service_role'),
  ('payout_connect_begin(uuid,text)', 'service_role'),
  ('payout_connect_save(uuid,text,text,text,text,text,text,text,text)', 'service_role'),
  ('billing_provider_trial(text,text,uuid,uuid,timestamp with time zone,timestamp with time zone)', 'service_role'),
  ('connect_payout_destination(text,text,text,text)', 'authenticated service_role'),
  ('payout_mark_sent(uuid,text)', 'service_role'),
  ('payout_request_monthly(date)', 'service_role'),
  ('payout_settle(uuid,text,text,text)', 'service_role'),
  ('request_payout(numeric,uuid,uuid,text)', 'authenticated service_role'),
  ('admin_discard_job(bigint,text)', 'authenticated service_role'),
  ('admin_platform_overview()', 'authenticated service_role'),
  ('admin_replay_webhook_event(uuid,text)', 'authenticated service_role'),
  ('admin_retry_job(bigint)', 'authenticated service_role'),
  ('admin_service_health()', 'authenticated service_role'),
  ('admin_set_user_role(uuid,text,text)', 'authenticated service_role'),
  ('admin_verify_strategy(uuid,boolean,text)', 'authenticated service_role'),
  ('ai_token_price(uuid)', 'service_role'),
  ('acquire_bot_leases(uuid,double precision,double precision)', 'service_role'),
  ('api_authorize(text,text,inet,jsonb)', 'service_role'),
  ('apply_ai_suggestion(uuid,integer)', 'authenticated service_role'),
  ('api_record_calls(jsonb)', 'service_role'),
  ('api_usage_rollup()', 'service_role'),
  ('backtest_run_check_grid(uuid,integer)', 'service_role'),
  ('backtest_run_finish(uuid,text,numeric,numeric,jsonb,text)', 'service_role'),
  ('backtest_run_progress(uuid,numeric)', 'service_role'),
  ('backtest_run_start(uuid)', 'service_role'),
  ('billing_apply_invoice_event(uuid,text,numeric,timestamp with time zone,jsonb)', 'service_role'),
  ('billing_cancel_at_period_end(boolean)', 'authenticated service_role'),
  ('billing_checkout_abort(uuid)', 'service_role'),
  ('billing_checkout_open(uuid,text,uuid,uuid,text)', 'service_role'),
  ('billing_checkout_started(uuid,text,text,text[])', 'service_role'),
  ('billing_customer(uuid,text)', 'service_role'),
  ('billing_expire_due(timestamp with time zone)', 'service_role'),
  ('billing_provider_renewal_failed(text,text,timestamp with time zone,text,timestamp with time zone)', 'service_role'),
  ('billing_provider_subscription_ended(text,text,text)', 'service_role'),
  ('billing_provider_subscription_ref(uuid)', 'service_role'),
  ('billing_provider_subscription_updated(text,text,boolean,timestamp with time zone)', 'service_role'),
  ('billing_renewal_attempted(uuid,text,text,text,text,timestamp with time zone)', 'service_role'),
  ('billing_renewals_due(timestamp with time zone,interval,integer)', 'service_role'),
  ('billing_save_payment_method(uuid,text,text,text,text,text)', 'service_role'),
  ('billing_send_reminders(timestamp with time zone)', 'service_role'),
  ('billing_start_trial(uuid)', 'authenticated service_role'),
  ('bot_apply_steps(jsonb,jsonb,jsonb,jsonb,jsonb)', 'service_role'),
  ('bot_fence_holds(jsonb)', 'service_role'),
  ('bot_orphan_holds(jsonb)', 'service_role'),
  ('bot_record_equity(jsonb,jsonb)', 'service_role'),
  ('bot_record_protection(jsonb,jsonb)', 'service_role'),
  ('bot_trade_prices(uuid[])', 'service_role'),
  ('cancel_strategy_subscription(uuid)', 'authenticated service_role'),
  ('claim_jobs(uuid,text[],integer,double precision,text[])', 'service_role'),
  ('close_position(uuid,boolean,text,private.finite_number,integer,text,text,text,private.finite_number,private.finite_number)', 'authenticated service_role'),
  ('complete_job(uuid,bigint,jsonb)', 'service_role'),
  ('complete_jobs(uuid,bigint[],jsonb[])', 'service_role'),
  ('create_api_key(text,text[],timestamp with time zone,text)', 'authenticated service_role'),
  ('credit_audit()', 'service_role'),
  ('credit_charge_usage(uuid,uuid,text,numeric,text,text,jsonb)', 'service_role'),
  ('credit_correct(uuid,uuid,uuid,numeric,text)', 'authenticated service_role'),
  ('credit_create_transfer(uuid,uuid,uuid,numeric,text,text,text,jsonb,boolean,interval)', 'service_role'),
  ('credit_create_transfers(jsonb)', 'service_role'),
  ('credit_expire_holds(integer)', 'service_role'),
  ('credit_grant(uuid,uuid,numeric,text,text,jsonb)', 'service_role'),
  ('credit_grant_monthly(uuid)', 'service_role'),
  ('credit_grant_monthly_all(integer)', 'service_role'),
  ('credit_hold(uuid,uuid,uuid,numeric,text,interval,text,text,jsonb)', 'service_role'),
  ('credit_hold_usage(uuid,uuid,text,numeric,interval,text,text,jsonb)', 'service_role'),
  ('credit_min_payout()', 'authenticated service_role'),
  ('credit_pay_strategy_subscription(uuid,uuid,numeric)', 'service_role'),
  ('credit_post(uuid,uuid,numeric,jsonb)', 'service_role'),
  ('credit_price(uuid,text)', 'service_role'),
  ('credit_purchase_from_invoice(uuid)', 'service_role'),
  ('credit_quote(uuid,text,numeric)', 'service_role'),
  ('credit_request_payout(numeric,uuid,uuid)', 'authenticated service_role'),
  ('credit_void(uuid,uuid,jsonb)', 'service_role'),
  ('custom_access_token_hook(jsonb)', 'service_role'),
  ('enqueue_job(text,jsonb,text,timestamp with time zone,integer,integer,text)', 'service_role'),
  ('enqueue_jobs(text,jsonb[],text,integer,integer)', 'service_role'),
  ('exchange_markets_claim_refresh(text,double precision)', 'service_role'),
  ('exchange_markets_store(text,jsonb,timestamp with time zone)', 'service_role'),
  ('extend_job_lock(uuid,bigint,double precision)', 'service_role'),
  ('fail_job(uuid,bigint,text,boolean,double precision,double precision,double precision)', 'service_role'),
  ('get_credit_balance(text)', 'authenticated service_role'),
  ('get_credit_statement(integer,timestamp with time zone,text)', 'authenticated service_role'),
  ('get_strategy_content(uuid)', 'authenticated service_role'),
  ('get_strategy_subscribers(uuid)', 'authenticated service_role'),
  ('get_user_trading_performance(integer,uuid)', 'authenticated service_role'),
  ('latest_trades(integer,timestamp with time zone)', 'authenticated service_role'),
  ('hook_password_verification_attempt(jsonb)', 'service_role'),
  ('ingest_tradingview_alert(text,jsonb)', 'service_role'),
  ('manual_trade(uuid,boolean,text,private.finite_number,private.finite_number,text,text)', 'authenticated service_role'),
  ('mark_dead_workers(double precision)', 'service_role'),
  ('pause_strategy_subscription(uuid)', 'authenticated service_role'),
  ('prune_history(text,interval,integer)', 'service_role'),
  ('create_history_partitions()', 'service_role'),
  ('create_history_partitions_between(text,timestamp with time zone,timestamp with time zone)', 'service_role'),
  ('drop_history_partitions(text,interval)', 'service_role'),
  ('record_service_check(text,text,boolean,numeric,text,numeric,integer)', 'service_role'),
  ('reclaim_expired_jobs()', 'service_role'),
  ('register_worker(text,text,integer,text,text[],integer,jsonb)', 'service_role'),
  ('release_bot_leases(uuid,uuid[])', 'service_role'),
  ('release_jobs(uuid,bigint[])', 'service_role'),
  ('renew_strategy_subscriptions(integer)', 'service_role'),
  ('request_ai_analysis(text,uuid,uuid,uuid,jsonb)', 'authenticated service_role'),
  ('revoke_api_key(uuid)', 'authenticated service_role'),
  ('resume_strategy_subscription(uuid)', 'authenticated service_role'),
  ('rotate_tradingview_token(uuid)', 'authenticated service_role'),
  ('save_ai_strategy(uuid,text)', 'authenticated service_role'),
  ('set_worker_status(uuid,text)', 'service_role'),
  ('signal_charge_copies(uuid,integer)', 'service_role'),
  ('signal_fan_out(uuid,text)', 'service_role'),
  ('stop_bot(uuid,text)', 'authenticated service_role'),
  ('subscribe_to_strategy(uuid,boolean,uuid,jsonb)', 'authenticated service_role'),
  ('update_bot_statistics()', 'service_role'),
  ('webhook_rate_take(text,integer)', 'service_role'),
  ('db_pre_request()', 'anon authenticated service_role'),
  ('worker_heartbeat(uuid,double precision,bigint[])', 'service_role');

-- What anon and authenticated may do to each relation; a column list where the grant is
-- narrower than the relation. Columns outside these lists are the fleet's: apps never
-- write them (statistics, balances, results, plan assignment, verification, …).
create temp table privileges (role text, privilege text, relation text, columns text[]) on commit drop;
insert into privileges values
  ('anon', 'select', 'plans', null),
  ('anon', 'select', 'credit_packs', null),
  ('anon', 'select', 'reviews', '{comment,created_at,id,rating,strategy_id,updated_at}'),
  ('anon', 'select', 'strategies', '{avg_backtest_return,backtest_count,category,created_at,description,engine,id,is_public,is_verified,monthly_price,name,performance,provider_share,risk_level,strategy_type,tags,updated_at,user_id}'),
  ('anon', 'select', 'strategy_marketplace', null),
  ('authenticated', 'delete', 'backtest_runs', null),
  ('authenticated', 'delete', 'bots', null),
  ('authenticated', 'delete', 'brokerage_connections', null),
  ('authenticated', 'delete', 'exchange_credentials', null),
  ('authenticated', 'delete', 'notifications', null),
  ('authenticated', 'delete', 'reviews', null),
  ('authenticated', 'delete', 'strategies', null),
  ('authenticated', 'insert', 'backtest_runs', '{end_date,exchange,id,mode,optimization,parameters,settings,start_date,strategy,strategy_id,timeframe,trading_pair,trading_pairs,user_id}'),
  ('authenticated', 'insert', 'data_requests', '{end_date,exchange,id,idempotency_key,start_date,timeframe,trading_pair,user_id}'),
  ('authenticated', 'insert', 'bots', '{allow_short,daily_loss_limit,entry_order_type,entry_timeout,exchange,exchange_credential_id,exit_order_type,exit_timeout,exit_timeout_count,id,initial_balance,is_paper_trade,leverage,limit_offset,max_open_trades,metadata,name,order_timeout_unit,organisation_id,pairs,parameters,risk_percentage,stake_amount,status,stop_loss,strategy,strategy_id,take_profit,timeframe,timeout_action,trading_pair,user_id}'),
  ('authenticated', 'insert', 'reviews', '{comment,rating,strategy_id,user_id}'),
  ('authenticated', 'insert', 'signals', '{action,entry_price,idempotency_key,indicators,leverage,note,pair,provider_id,side,stop_loss,strategy_id,take_profit}'),
  ('authenticated', 'insert', 'strategies', '{category,content,description,engine,id,is_public,monthly_price,name,organisation_id,parameters,risk_level,strategy_type,tags,user_id}'),
  ('authenticated', 'insert', 'sync_runs', '{connection_id,user_id}'),
  ('authenticated', 'select', 'admin_audit_log', null),
  ('authenticated', 'select', 'alert_incidents', null),
  ('authenticated', 'select', 'aggregated_holdings', null),
  ('authenticated', 'select', 'ai_analyses', null),
  ('authenticated', 'select', 'api_keys', '{created_at,environment,expires_at,id,last_used_at,last_used_ip,name,organisation_id,prefix,revoked_at,scopes,user_id}'),
  ('authenticated', 'select', 'api_usage_days', null),
  ('authenticated', 'select', 'api_usage_minutes', null),
  ('authenticated', 'select', 'api_usage_per_day', null),
  ('authenticated', 'select', 'api_usage_per_minute', null),
  ('authenticated', 'select', 'backtest_results', null),
  ('authenticated', 'select', 'backtest_reports', null),
  ('authenticated', 'select', 'backtest_runs', null),
  ('authenticated', 'select', 'data_requests', null),
  ('authenticated', 'select', 'bot_leases', null),
  ('authenticated', 'select', 'bot_logs', null),
  ('authenticated', 'select', 'bot_performance_summary', null),
  ('authenticated', 'select', 'bot_equity', null),
  ('authenticated', 'select', 'bots', null),
  ('authenticated', 'select', 'brokerage_accounts', null),
  ('authenticated', 'select', 'brokerage_connections', '{brokerage_name,created_at,id,last_synced_at,provider,provider_connection_id,status,status_reason,updated_at,user_id}'),
  ('authenticated', 'select', 'brokerage_positions', null),
  ('authenticated', 'select', 'candles', null),
  ('authenticated', 'select', 'credit_accounts', null),
  ('authenticated', 'select', 'credit_balances', null),
  ('authenticated', 'select', 'credit_statement', null),
  ('authenticated', 'select', 'credit_transfers', null),
  ('authenticated', 'select', 'exchange_market_loads', null),
  ('authenticated', 'select', 'exchange_markets', null),
  ('authenticated', 'select', 'exchange_credentials', '{api_key_hint,created_at,exchange,id,is_testnet,key_id,label,last_used_at,updated_at,user_id}'),
  ('authenticated', 'select', 'fleet_health', null),
  ('authenticated', 'select', 'invoices', null),
  ('authenticated', 'select', 'credit_exposures', null),
  ('authenticated', 'select', 'payout_destinations', null),
  ('authenticated', 'select', 'payouts', null),
  ('authenticated', 'select', 'provider_statement', null),
  ('authenticated', 'select', 'job_queue_stats', null),
  ('authenticated', 'select', 'jobs', null),
  ('authenticated', 'select', 'market_latest_candles', null),
  ('authenticated', 'select', 'notifications', null),
  ('authenticated', 'select', 'orders', null),
  ('authenticated', 'select', 'organisation_invitations', null),
  ('authenticated', 'select', 'organisation_members', null),
  ('authenticated', 'select', 'organisations', null),
  ('authenticated', 'select', 'position_requests', null),
  ('authenticated', 'select', 'plans', null),
  ('authenticated', 'select', 'credit_packs', null),
  ('authenticated', 'select', 'portfolio_holdings', null),
  ('authenticated', 'select', 'portfolio_value', null),
  ('authenticated', 'select', 'profiles', null),
  ('authenticated', 'select', 'protective_orders', null),
  ('authenticated', 'select', 'reviews', null),
  ('authenticated', 'select', 'service_checks', null),
  ('authenticated', 'select', 'service_status', null),
  ('authenticated', 'select', 'signal_executions', null),
  ('authenticated', 'select', 'signals', null),
  ('authenticated', 'select', 'strategies', '{avg_backtest_return,backtest_count,backtest_results,category,created_at,description,engine,id,is_public,is_verified,monthly_price,name,organisation_id,performance,provider_share,risk_level,strategy_type,tags,updated_at,user_id}'),
  ('authenticated', 'select', 'strategy_marketplace', null),
  ('authenticated', 'select', 'strategy_subscriptions', null),
  ('authenticated', 'select', 'subscriptions', null),
  ('authenticated', 'select', 'symbol_prices', null),
  ('authenticated', 'select', 'sync_runs', null),
  ('authenticated', 'select', 'trades', null),
  ('authenticated', 'select', 'webhook_events', null),
  ('authenticated', 'select', 'workers', null),
  ('authenticated', 'update', 'backtest_runs', '{status}'),
  ('authenticated', 'update', 'bots', '{allow_short,daily_loss_limit,entry_order_type,entry_timeout,exchange,exchange_credential_id,exit_order_type,exit_timeout,exit_timeout_count,is_paper_trade,leverage,limit_offset,max_open_trades,metadata,name,order_timeout_unit,pairs,parameters,risk_percentage,stake_amount,status,stop_loss,strategy,strategy_id,take_profit,timeframe,timeout_action,trading_pair}'),
  ('authenticated', 'update', 'exchange_credentials', '{label}'),
  ('authenticated', 'update', 'notifications', '{read_at}'),
  ('authenticated', 'update', 'profiles', '{avatar_url,discord_webhook_url,full_name,preferences,telegram_chat_id}'),
  ('authenticated', 'update', 'reviews', '{comment,rating}'),
  ('authenticated', 'update', 'signals', '{action,exit_price,indicators,note,status,stop_loss,take_profit}'),
  ('authenticated', 'update', 'strategies', '{category,content,description,engine,is_public,monthly_price,name,parameters,risk_level,strategy_type,tags}'),
  ('authenticated', 'update', 'strategy_subscriptions', '{auto_execute,bot_id,sizing}'),
  ('authenticated', 'update', 'subscriptions', '{auto_renew}');

-- Sequences in public; anon and authenticated must not be able to use or set any of them.
create temp table sequences (name text, todo text) on commit drop;
insert into sequences values
  ('alert_incidents_id_seq', null),
  ('bot_logs_id_seq', null),
  ('jobs_id_seq', null),
  ('service_checks_id_seq', null);

-- How a role fares with one privilege on each column of a table: the columns it was not
-- refused ('denied', or 428C9 for generated columns nobody writes). One sign-in per table.
create function pg_temp.writable_columns(p_actor text, p_privilege text, p_table regclass) returns text[]
language plpgsql
as $$
declare
  v_columns text[] := array(select a.attname::text from pg_attribute a
                             where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped order by a.attname);
  v_writable text[] := '{}';
  v_column text;
begin
  perform tests.authenticate_as(case when p_actor = 'anon' then p_actor else tests.mx_email(p_actor) end);
  foreach v_column in array v_columns loop
    begin
      execute case p_privilege
        when 'update' then format('update %s set %I = null where false', p_table, v_column)
        else format('insert into %s (%I) overriding system value select null where false', p_table, v_column)
      end;
      v_writable := v_writable || v_column;
    exception
      when insufficient_privilege or generated_always then null;
      when others then v_writable := v_writable || v_column;
    end;
  end loop;
  perform tests.clear_authentication();
  return v_writable;
end;
$$;

-- What the privileges table grants a role: every column for a whole-relation grant.
create function pg_temp.granted_columns(p_role text, p_privilege text, p_table regclass) returns text[]
language sql
as $$
  select coalesce((select array_agg(c order by c) from privileges p, unnest(p.columns) c
                    where p.role = p_role and p.privilege = p_privilege and p.relation = p_table::text),
                  (select array_agg(a.attname::text order by a.attname) from pg_attribute a
                    where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
                      and exists (select 1 from privileges p where p.role = p_role and p.privilege = p_privilege
                                                               and p.relation = p_table::text and p.columns is null)),
                  '{}')
$$;

select plan(
  (select count(*)::int from calls m, tests.mx_actors() a where m.expected[a.i] is not null)
  + 1 + 1 + 1 + 3 + 2 + 2
  + (select count(*)::int * 6 from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p'))
  + (select count(*)::int * 4 from sequences));

select tests.mx_check(m.label, a.actor, tests.mx_as(a.actor, m.statement), m.expected[a.i])
  from calls m cross join tests.mx_actors() a
 where m.expected[a.i] is not null
 order by m.label, a.i;

-- Functions: every one listed with who may execute it, each callable one in the calls
-- above, and every other one refused to anon, users and admins, whatever its arguments.
select set_eq(
  $$select p.oid::regprocedure::text,
           array_to_string(array(select r from unnest(array['anon', 'authenticated', 'service_role']) r
                                  where has_function_privilege(r, p.oid, 'execute')), ' ')
      from pg_proc p where p.pronamespace = 'public'::regnamespace$$,
  $$select fn, roles from executors$$,
  'every function in public is listed with exactly who may execute it'
);
select is(
  (select array_agg(e.fn order by e.fn) from executors e
    where e.roles ~ '\m(anon|authenticated)\M'
      and not exists (select 1 from calls m where split_part(m.label, ':', 1) = split_part(e.fn, '(', 1))),
  null,
  'every function anon or authenticated may execute is called by every actor'
);
select is(
  (select array_agg(e.fn order by e.fn) from executors e
    join pg_proc p on p.oid = e.fn::regprocedure
   where e.roles !~ case a.actor when 'anon' then '\manon\M' else '\mauthenticated\M' end
     and tests.mx_as(a.actor, format('select %s(%s) is null as key', p.oid::regproc,
                                     (select string_agg('(select null::' || format_type(t, null) || ')', ', ')
                                        from unnest(p.proargtypes::oid[]) t))) <> 'denied'),
  null,
  'no function outside its grants can be called by ' || a.actor
) from (values ('anon'), ('alice'), ('dana')) a(actor);

-- Tables and columns: grants exactly as listed, admins with the same as users, and every
-- column outside the list refused to anon, users and admins.
select set_eq(
  $$with rels as (
      select c.oid, c.relname from pg_class c
       where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
    ), colpriv as (
      select r.relname, role, priv, count(*) as ncols,
             array_agg(a.attname::text order by a.attname) filter (where has_column_privilege(role, r.oid, a.attnum, priv)) as cols
        from rels r join pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
       cross join unnest(array['anon', 'authenticated']) role
       cross join unnest(array['select', 'insert', 'update', 'references']) priv
       group by 1, 2, 3
    )
    select role, priv, relname::text, case when cardinality(cols) < ncols then cols end from colpriv where cardinality(cols) > 0
    union all
    select role, priv, r.relname::text, null
      from rels r cross join unnest(array['anon', 'authenticated']) role
     cross join unnest(array['delete', 'truncate', 'trigger']) priv
     where has_table_privilege(role, r.oid, priv)$$,
  $$select role, privilege, relation, columns from privileges$$,
  'anon and authenticated hold exactly the listed table and column privileges'
);
select is(
  (select array_agg(format('%s %s %s', c.relname, priv, a.attname) order by 1)
     from pg_class c join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    cross join unnest(array['select', 'insert', 'update', 'references']) priv
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f')
      and has_column_privilege('tradefleet_admin', c.oid, a.attnum, priv)
          <> has_column_privilege('authenticated', c.oid, a.attnum, priv)),
  '{"strategies select content","strategies select parameters"}'::text[],
  'admins hold the same column privileges as users (their reach comes from policies), and read strategies'' rules'
);

select is(pg_temp.writable_columns(a.actor, priv, c.oid::regclass),
          pg_temp.granted_columns(case a.actor when 'anon' then 'anon' else 'authenticated' end, priv, c.oid::regclass),
          format('%s may %s only the listed columns of %s', a.actor, priv, c.relname))
  from pg_class c
 cross join unnest(array['insert', 'update']) priv
 cross join (values ('anon'), ('alice'), ('dana')) a(actor)
 where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
 order by c.relname, priv, a.actor;

-- Sequences: nobody but the fleet draws or sets a value.
select is(
  (select array_agg(c.relname::text order by c.relname) from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind = 'S' and c.relname not in (select name from sequences)),
  null,
  'every sequence in public is listed'
);

create function pg_temp.sequence_checks() returns setof text
language plpgsql
as $$
declare
  r record;
  v_last bigint;
  v_called boolean;
begin
  for r in select s.name, s.todo, a.actor, op
             from sequences s cross join (values ('anon'), ('alice')) a(actor)
            cross join unnest(array['nextval', 'setval']) op
            order by 1, 3, 4 loop
    if r.todo is not null then
      perform todo_start(r.todo);
    end if;
    -- Sequences ignore rollback: setval puts back the value it found, should it succeed.
    execute format('select last_value, is_called from public.%I', r.name) into v_last, v_called;
    return next is(tests.mx_as(r.actor, format('select %s(%L%s) as key', r.op, 'public.' || r.name,
                                               case r.op when 'setval' then format(', %s, %L', v_last, v_called) else '' end)),
                   'denied', format('%s cannot %s %s', r.actor, r.op, r.name));
    if r.todo is not null then
      perform todo_end();
    end if;
  end loop;
end;
$$;
select * from pg_temp.sequence_checks();

-- Partitions of the partitioned history are reached only through their parents.
select is(
  (select array_agg(r order by r) from unnest(array['anon', 'authenticated', 'tradefleet_admin']) r
    where has_schema_privilege(r, 'partitions', 'usage')),
  null,
  'no app role may use schema partitions'
);
select is(
  (select array_agg(format('%s %s', r, c.relname) order by c.relname, r)
     from pg_class c cross join unnest(array['anon', 'authenticated', 'tradefleet_admin']) r
    where c.relnamespace = 'partitions'::regnamespace and c.relkind in ('r', 'p')
      and has_table_privilege(r, c.oid, 'select, insert, update, delete')),
  null,
  'no app role holds a privilege on a partition'
);

select * from finish();
rollback;
