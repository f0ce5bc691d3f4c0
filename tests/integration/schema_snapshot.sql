SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
CREATE SCHEMA auth;
ALTER SCHEMA auth OWNER TO supabase_auth_admin;
CREATE SCHEMA extensions;
ALTER SCHEMA extensions OWNER TO postgres;
CREATE SCHEMA private;
ALTER SCHEMA private OWNER TO postgres;
CREATE SCHEMA supabase_migrations;
ALTER SCHEMA supabase_migrations OWNER TO postgres;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA extensions;
COMMENT ON EXTENSION pg_stat_statements IS 'track planning and execution statistics of all SQL statements executed';
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;
COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';
CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA extensions;
COMMENT ON EXTENSION "uuid-ossp" IS 'generate universally unique identifiers (UUIDs)';
CREATE TYPE private.copy_charge AS (
	execution_id uuid,
	subscription_id uuid,
	subscriber_id uuid,
	account_id uuid,
	transfer_id uuid,
	amount numeric,
	fresh boolean,
	result text
);
ALTER TYPE private.copy_charge OWNER TO postgres;
CREATE DOMAIN private.finite_number AS numeric
	CONSTRAINT finite_number_is_finite CHECK ((VALUE <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric])));
ALTER DOMAIN private.finite_number OWNER TO postgres;
CREATE DOMAIN private.credit_amount AS private.finite_number
	CONSTRAINT credit_amount_positive CHECK (((VALUE)::numeric > (0)::numeric))
	CONSTRAINT credit_amount_within_bounds CHECK (((VALUE)::numeric <= ('1000000000000'::bigint)::numeric));
ALTER DOMAIN private.credit_amount OWNER TO postgres;
CREATE TYPE private.credit_batch_item AS (
	idx integer,
	id uuid,
	action text,
	debit_account_id uuid,
	credit_account_id uuid,
	amount numeric,
	kind text,
	pending_id uuid,
	timeout_at timestamp with time zone,
	reference_type text,
	reference_id text,
	metadata jsonb,
	early_result text
);
ALTER TYPE private.credit_batch_item OWNER TO postgres;
SET default_tablespace = '';
SET default_table_access_method = heap;
CREATE TABLE public.credit_transfers (
    id uuid NOT NULL,
    debit_account_id uuid NOT NULL,
    credit_account_id uuid NOT NULL,
    amount numeric(24,8) NOT NULL,
    kind text NOT NULL,
    phase text DEFAULT 'posted'::text NOT NULL,
    pending_id uuid,
    timeout_at timestamp with time zone,
    reference_type text,
    reference_id text,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credit_transfers_amount_finite CHECK ((amount <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_transfers_amount_positive CHECK ((amount > (0)::numeric)),
    CONSTRAINT credit_transfers_distinct_accounts CHECK ((debit_account_id <> credit_account_id)),
    CONSTRAINT credit_transfers_kind_known CHECK ((kind = ANY (ARRAY['grant'::text, 'purchase'::text, 'usage'::text, 'revenue_share'::text, 'payout'::text, 'refund'::text, 'correction'::text]))),
    CONSTRAINT credit_transfers_phase_known CHECK ((phase = ANY (ARRAY['posted'::text, 'pending'::text, 'post_pending'::text, 'void_pending'::text]))),
    CONSTRAINT credit_transfers_resolution_names_hold CHECK (((phase = ANY (ARRAY['post_pending'::text, 'void_pending'::text])) = (pending_id IS NOT NULL)))
);
ALTER TABLE public.credit_transfers OWNER TO postgres;
CREATE TYPE private.credit_batch_work AS (
	item private.credit_batch_item,
	d_pos integer,
	c_pos integer,
	existing public.credit_transfers,
	hold public.credit_transfers,
	hold_d_pos integer,
	hold_c_pos integer,
	resolved_phase text,
	track_id boolean,
	track_pending boolean
);
ALTER TYPE private.credit_batch_work OWNER TO postgres;
CREATE TYPE private.fanout_candidate AS (
	subscription_id uuid,
	subscriber_id uuid,
	bot_id uuid,
	epoch bigint,
	exchange text,
	amount numeric,
	leverage numeric,
	credits numeric,
	reason text,
	chunk integer
);
ALTER TYPE private.fanout_candidate OWNER TO postgres;
CREATE TABLE public.trades (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    bot_id uuid NOT NULL,
    user_id uuid NOT NULL,
    exchange text NOT NULL,
    trading_pair text NOT NULL,
    side text NOT NULL,
    direction text DEFAULT 'long'::text NOT NULL,
    order_type text DEFAULT 'market'::text NOT NULL,
    amount numeric(28,12) NOT NULL,
    price numeric(28,12) NOT NULL,
    exit_price numeric(28,12),
    fee numeric(28,12) DEFAULT 0 NOT NULL,
    profit numeric(28,12) DEFAULT 0 NOT NULL,
    profit_percentage numeric(12,4) DEFAULT 0 NOT NULL,
    status text DEFAULT 'open'::text NOT NULL,
    exit_reason text,
    entry_time timestamp with time zone NOT NULL,
    exit_time timestamp with time zone,
    holding_duration interval GENERATED ALWAYS AS ((exit_time - entry_time)) STORED,
    entry_order_id uuid,
    exit_order_id uuid,
    exchange_order_id text,
    exchange_trade_id text,
    is_paper_trade boolean DEFAULT true NOT NULL,
    signal_price numeric(28,12),
    stop_loss_price numeric(28,12),
    take_profit_price numeric(28,12),
    lease_epoch bigint,
    signal_id uuid,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    decided_at timestamp with time zone,
    CONSTRAINT trades_amount_finite CHECK ((amount <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT trades_amount_positive CHECK ((amount > (0)::numeric)),
    CONSTRAINT trades_closed_has_exit CHECK (((status <> 'closed'::text) OR ((exit_time IS NOT NULL) AND (exit_price IS NOT NULL)))),
    CONSTRAINT trades_direction_known CHECK ((direction = ANY (ARRAY['long'::text, 'short'::text]))),
    CONSTRAINT trades_exit_price_finite CHECK ((exit_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT trades_exit_price_positive CHECK ((exit_price > (0)::numeric)),
    CONSTRAINT trades_fee_check CHECK ((fee >= (0)::numeric)),
    CONSTRAINT trades_fee_finite CHECK ((fee <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT trades_order_type_known CHECK ((order_type = ANY (ARRAY['market'::text, 'limit'::text, 'stop'::text, 'stop_limit'::text]))),
    CONSTRAINT trades_price_finite CHECK ((price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT trades_price_positive CHECK ((price > (0)::numeric)),
    CONSTRAINT trades_profit_finite CHECK ((profit <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT trades_profit_percentage_finite CHECK ((profit_percentage <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT trades_side_known CHECK ((side = ANY (ARRAY['buy'::text, 'sell'::text]))),
    CONSTRAINT trades_signal_price_finite CHECK ((signal_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT trades_status_known CHECK ((status = ANY (ARRAY['open'::text, 'closed'::text, 'cancelled'::text]))),
    CONSTRAINT trades_stop_loss_price_finite CHECK ((stop_loss_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT trades_take_profit_price_finite CHECK ((take_profit_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric])))
);
ALTER TABLE public.trades OWNER TO postgres;
COMMENT ON COLUMN public.trades.decided_at IS 'Open time of the candle whose close decided the entry (null: a copy of a signal, or older rows).';
CREATE TYPE private.fanout_close AS (
	subscription_id uuid,
	subscriber_id uuid,
	trade public.trades,
	epoch bigint,
	reason text,
	chunk integer
);
ALTER TYPE private.fanout_close OWNER TO postgres;
CREATE FUNCTION auth.email() RETURNS text
    LANGUAGE sql STABLE
    AS $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;
ALTER FUNCTION auth.email() OWNER TO supabase_auth_admin;
CREATE FUNCTION auth.jwt() RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;
ALTER FUNCTION auth.jwt() OWNER TO supabase_auth_admin;
CREATE FUNCTION auth.role() RETURNS text
    LANGUAGE sql STABLE
    AS $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;
ALTER FUNCTION auth.role() OWNER TO supabase_auth_admin;
CREATE FUNCTION auth.uid() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
ALTER FUNCTION auth.uid() OWNER TO supabase_auth_admin;
CREATE TABLE public.admin_audit_log (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    actor_id uuid,
    actor_role text NOT NULL,
    action text NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL,
    reason text,
    before jsonb DEFAULT '{}'::jsonb NOT NULL,
    after jsonb DEFAULT '{}'::jsonb NOT NULL,
    at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT admin_audit_log_action_format CHECK ((action ~ '^[a-z][a-z_]{0,63}$'::text)),
    CONSTRAINT admin_audit_log_actor_matches_role CHECK (((actor_role = 'admin'::text) = (actor_id IS NOT NULL))),
    CONSTRAINT admin_audit_log_actor_role_known CHECK ((actor_role = ANY (ARRAY['admin'::text, 'service_role'::text]))),
    CONSTRAINT admin_audit_log_reason_length CHECK ((char_length(reason) <= 1000)),
    CONSTRAINT admin_audit_log_target_id_length CHECK ((char_length(target_id) <= 200)),
    CONSTRAINT admin_audit_log_target_type_format CHECK ((target_type ~ '^[a-z][a-z_]{0,63}$'::text))
);
ALTER TABLE public.admin_audit_log OWNER TO postgres;
CREATE FUNCTION private.admin_audit(p_actor uuid, p_action text, p_target_type text, p_target_id text, p_reason text, p_before jsonb, p_after jsonb) RETURNS public.admin_audit_log
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  insert into public.admin_audit_log (actor_id, actor_role, action, target_type, target_id, reason, before, after)
  values (p_actor, case when p_actor is null then 'service_role' else 'admin' end, p_action, p_target_type,
          p_target_id, p_reason, coalesce(p_before, '{}'), coalesce(p_after, '{}'))
  returning *;
$$;
ALTER FUNCTION private.admin_audit(p_actor uuid, p_action text, p_target_type text, p_target_id text, p_reason text, p_before jsonb, p_after jsonb) OWNER TO postgres;
CREATE FUNCTION private.admin_check_reason(p_reason text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO ''
    AS $$
begin
  if p_reason is null or btrim(p_reason) = '' then
    raise exception 'this action needs a reason' using errcode = 'check_violation',
      constraint = 'admin_audit_log_reason_required';
  end if;
  if char_length(p_reason) > 1000 then
    raise exception 'a reason is at most 1000 characters' using errcode = 'check_violation',
      constraint = 'admin_audit_log_reason_length';
  end if;
end;
$$;
ALTER FUNCTION private.admin_check_reason(p_reason text) OWNER TO postgres;
CREATE FUNCTION private.ai_backtest_reported() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  update public.ai_analyses a
     set figures = a.figures || jsonb_build_object('backtest', jsonb_build_object(
           'result_id', new.id, 'total_trades', new.total_trades, 'win_rate', new.win_rate,
           'total_return_pct', new.total_return_percentage, 'max_drawdown_pct', new.max_drawdown,
           'sharpe_ratio', new.sharpe_ratio, 'profit_factor', new.profit_factor))
   where a.result_backtest_run_id = new.run_id;
  return null;
end;
$$;
ALTER FUNCTION private.ai_backtest_reported() OWNER TO postgres;
CREATE FUNCTION private.ai_link_saved_strategy(p_analysis_id uuid, p_strategy_id uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  update public.ai_analyses a set saved_strategy_id = p_strategy_id, updated_at = now()
   where a.id = p_analysis_id and a.user_id = (select auth.uid())
     and exists (select 1 from public.strategies s where s.id = p_strategy_id and s.user_id = (select auth.uid()));
end;
$$;
ALTER FUNCTION private.ai_link_saved_strategy(p_analysis_id uuid, p_strategy_id uuid) OWNER TO postgres;
CREATE FUNCTION private.api_calls_record(p_calls jsonb) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_n integer;
begin
  if p_calls is null or jsonb_typeof(p_calls) <> 'array' or jsonb_array_length(p_calls) > 1000 then
    raise exception 'calls must be a JSON array of at most 1000 calls' using errcode = 'invalid_parameter_value';
  end if;
  insert into private.api_calls (key_id, user_id, endpoint, status, latency_ms, called_at)
  select c.key_id, c.user_id, c.endpoint, c.status, greatest(c.latency_ms, 0), coalesce(c.at, now())
    from jsonb_to_recordset(p_calls) as c(key_id uuid, user_id uuid, endpoint text, status smallint, latency_ms integer,
                                         at timestamptz)
   where c.key_id is not null and c.user_id is not null and char_length(c.endpoint) between 1 and 100
     and c.status between 100 and 599 and c.latency_ms is not null;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
ALTER FUNCTION private.api_calls_record(p_calls jsonb) OWNER TO postgres;
CREATE FUNCTION private.api_key_hash(p_key text) RETURNS bytea
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select extensions.hmac(convert_to(p_key, 'UTF8'), s.secret, 'sha256') from private.api_key_secret s
$$;
ALTER FUNCTION private.api_key_hash(p_key text) OWNER TO postgres;
CREATE FUNCTION private.api_keys_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_refused text;
begin
  -- In the constraints' order (by name), each passing on NULL as a check constraint does.
  v_refused := case
    when not (new.environment = any (array['live', 'test'])) then 'api_keys_environment_known'
    when not (char_length(btrim(new.name)) between 1 and 100) then 'api_keys_name_length'
    when not ((new.user_id is null) <> (new.organisation_id is null)) then 'api_keys_one_owner'
    when not (new.organisation_id is null or new.scopes <@ array['bots:read', 'bots:write', 'trades:read'])
      then 'api_keys_organisation_scopes'
    when not (cardinality(new.scopes) between 1 and 16 and new.scopes <@ private.api_scopes())
      then 'api_keys_scopes_known'
  end;
  if v_refused is not null then
    raise exception 'new row for relation "api_keys" violates check constraint "%"', v_refused
      using errcode = 'check_violation', constraint = v_refused, schema = 'public', table = 'api_keys';
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.api_keys_check() OWNER TO postgres;
CREATE FUNCTION private.api_scopes() RETURNS text[]
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select array['backtests:read', 'backtests:write', 'bots:read', 'bots:write', 'data:read', 'data:write',
               'portfolio:read', 'signals:write', 'trades:read']::text[]
$$;
ALTER FUNCTION private.api_scopes() OWNER TO postgres;
CREATE FUNCTION private.api_usage_bill_day(p_key_id uuid, p_day date) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_day public.api_usage_days;
  v_price numeric;
  v_amount numeric;
begin
  select * into v_day from public.api_usage_days d where d.key_id = p_key_id and d.day = p_day for update;
  if not found or v_day.billed_at is not null then
    return;
  end if;
  v_price := (private.current_plan(v_day.user_id)).api_credits_per_1000_calls;
  v_amount := round(coalesce(v_price, 0) * v_day.calls / 1000, 8);
  if v_amount > 0 then
    begin
      perform private.credit_apply_or_raise(
        md5('api_usage:' || p_key_id || ':' || p_day)::uuid,
        'transfer', private.credit_user_account(v_day.user_id), private.credit_system_account('system:usage'),
        v_amount, 'usage', null, null, 'api_usage', p_key_id || ':' || p_day,
        jsonb_build_object('usage', 'api_call', 'quantity', v_day.calls, 'credits_per_1000_calls', v_price,
                           'day', p_day));
    exception when others then
      update public.api_usage_days d set billing_error = sqlerrm where d.key_id = p_key_id and d.day = p_day;
      return;
    end;
  end if;
  update public.api_usage_days d
     set billed_calls = v_day.calls, credits_charged = v_amount, billed_at = now(), billing_error = null
   where d.key_id = p_key_id and d.day = p_day;
end;
$$;
ALTER FUNCTION private.api_usage_bill_day(p_key_id uuid, p_day date) OWNER TO postgres;
CREATE FUNCTION private.api_usage_key_ids() RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select coalesce(array_agg(k.id), '{}')
    from public.api_keys k
   where k.user_id = (select auth.uid())
      or k.organisation_id = any (private.organisation_ids('admin'))
$$;
ALTER FUNCTION private.api_usage_key_ids() OWNER TO postgres;
CREATE FUNCTION private.app_role() RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce(auth.jwt() -> 'app_metadata' ->> 'role', 'user')
$$;
ALTER FUNCTION private.app_role() OWNER TO postgres;
CREATE FUNCTION private.apply_bot_stat_deltas(p_bot uuid[], p_total bigint[], p_win bigint[], p_loss bigint[], p_profit numeric[], p_last timestamp with time zone[]) RETURNS void
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  update public.bots b
     set total_trades = b.total_trades + d.d_total,
         winning_trades = b.winning_trades + d.d_win,
         losing_trades = b.losing_trades + d.d_loss,
         profit = least(greatest(b.profit + d.d_profit, -999999999999.99999999), 999999999999.99999999),
         current_balance = least(greatest(b.initial_balance + b.profit + d.d_profit, -999999999999.99999999),
                                 999999999999.99999999),
         profit_percentage = least(greatest(round((b.profit + d.d_profit) / b.initial_balance * 100, 4),
                                            -99999999.9999), 99999999.9999),
         last_trade_at = greatest(b.last_trade_at, d.last_at)
    from unnest(p_bot, p_total, p_win, p_loss, p_profit, p_last)
         as d(bot_id, d_total, d_win, d_loss, d_profit, last_at)
   where b.id = d.bot_id
$$;
ALTER FUNCTION private.apply_bot_stat_deltas(p_bot uuid[], p_total bigint[], p_win bigint[], p_loss bigint[], p_profit numeric[], p_last timestamp with time zone[]) OWNER TO postgres;
CREATE FUNCTION private.assign_organisation_owner() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if new.organisation_id is not null then
    select o.owner_id into new.user_id from public.organisations o where o.id = new.organisation_id;
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.assign_organisation_owner() OWNER TO postgres;
CREATE FUNCTION private.author_name(p_user_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select p.full_name
    from public.profiles p
   where p.id = p_user_id
     and exists (select 1 from public.strategies s
                  where s.user_id = p_user_id and s.is_public and s.strategy_type = 'marketplace' and s.is_verified)
$$;
ALTER FUNCTION private.author_name(p_user_id uuid) OWNER TO postgres;
CREATE FUNCTION private.backtest_run_batch_market() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_pair text;
begin
  if new.mode = 'batch' and new.trading_pairs is not null then
    if cardinality(new.trading_pairs) not between 1 and 20 then
      raise exception 'a batch runs on 1 to 20 markets, not %', coalesce(cardinality(new.trading_pairs), 0)
        using errcode = 'check_violation', constraint = 'backtest_runs_batch_pairs';
    end if;
    foreach v_pair in array new.trading_pairs loop
      if v_pair is null or v_pair !~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$' then
        raise exception 'invalid trading pair % in trading_pairs (expected e.g. BTC/USDT)', coalesce(v_pair, 'null')
          using errcode = 'check_violation', constraint = 'backtest_runs_batch_pairs';
      end if;
    end loop;
    if (select count(distinct p) from unnest(new.trading_pairs) p) <> cardinality(new.trading_pairs) then
      raise exception 'trading_pairs names a market twice'
        using errcode = 'check_violation', constraint = 'backtest_runs_batch_pairs';
    end if;
    new.trading_pair := new.trading_pairs[1];
  end if;
  return new;
end;
$_$;
ALTER FUNCTION private.backtest_run_batch_market() OWNER TO postgres;
CREATE FUNCTION private.billing_amount_minor(p_provider text, p_amount numeric, p_currency text) RETURNS bigint
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select case
    when p_provider = 'tripay' then p_amount
    when p_provider = 'stripe' and lower(p_currency) = any (string_to_array('bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf', ' '))
      then p_amount
    else p_amount * 100
  end::bigint
$$;
ALTER FUNCTION private.billing_amount_minor(p_provider text, p_amount numeric, p_currency text) OWNER TO postgres;
CREATE TABLE public.invoices (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    plan_id uuid,
    provider text DEFAULT 'manual'::text NOT NULL,
    provider_invoice_id text,
    merchant_id text,
    reference_id text,
    amount numeric(12,2) NOT NULL,
    currency text DEFAULT 'USD'::text NOT NULL,
    credits numeric(20,8) DEFAULT 0 NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    payment_method text,
    payment_channel text,
    transaction_id text,
    description text,
    customer_name text,
    customer_email text,
    customer_phone text,
    expired_at timestamp with time zone,
    paid_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    period text DEFAULT 'month'::text NOT NULL,
    provider_refs text[] DEFAULT '{}'::text[] NOT NULL,
    credit_pack_id uuid,
    subscription_id uuid,
    checkout_key text,
    checkout_url text,
    renewal_attempts integer DEFAULT 0 NOT NULL,
    amount_refunded numeric(24,8) DEFAULT 0 NOT NULL,
    credits_refunded numeric(24,8) DEFAULT 0 NOT NULL,
    CONSTRAINT invoices_amount_finite CHECK ((amount <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT invoices_amount_positive CHECK ((amount > (0)::numeric)),
    CONSTRAINT invoices_amount_refunded_not_negative CHECK (((amount_refunded >= (0)::numeric) AND (amount_refunded <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric])))),
    CONSTRAINT invoices_credits_finite CHECK ((credits <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT invoices_credits_not_negative CHECK ((credits >= (0)::numeric)),
    CONSTRAINT invoices_credits_refunded_not_negative CHECK (((credits_refunded >= (0)::numeric) AND (credits_refunded <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric])))),
    CONSTRAINT invoices_period_known CHECK ((period = ANY (ARRAY['month'::text, 'year'::text]))),
    CONSTRAINT invoices_provider_known CHECK ((provider = ANY (ARRAY['stripe'::text, 'paystack'::text, 'tripay'::text, 'manual'::text]))),
    CONSTRAINT invoices_status_known CHECK ((status = ANY (ARRAY['pending'::text, 'paid'::text, 'failed'::text, 'expired'::text, 'cancelled'::text, 'partially_refunded'::text, 'refunded'::text])))
);
ALTER TABLE public.invoices OWNER TO postgres;
CREATE FUNCTION private.billing_claw_back(p_invoice public.invoices, p_credits numeric, p_step text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_purchases uuid := private.credit_system_account('system:purchases');
  v_key text := p_invoice.id::text || coalesce(':' || p_step, '');
  v_user_account public.credit_accounts;
  v_from public.credit_accounts;
  v_left numeric;
  v_take numeric;
  v_part numeric;
  v_recovered numeric := 0;
  v_payment record;
  v_providers jsonb := '{}'::jsonb;
  v_provider text;
begin
  if p_credits is null or p_credits <= 0 then
    return;
  end if;
  -- Lock order of the ledger: user-owned accounts by id, then system accounts.
  perform 1 from public.credit_accounts a
   where a.user_id = p_invoice.user_id and a.kind = 'user'
      or a.id in (select t.credit_account_id from public.credit_transfers t
                   where t.debit_account_id = (select u.id from public.credit_accounts u
                                                where u.user_id = p_invoice.user_id and u.kind = 'user')
                     and t.kind = 'revenue_share' and t.phase = 'posted'
                     and t.created_at >= coalesce(p_invoice.paid_at, p_invoice.created_at))
      or a.id = v_purchases
   order by a.user_id is null, a.id for no key update;
  select * into v_user_account from public.credit_accounts a
   where a.user_id = p_invoice.user_id and a.kind = 'user';
  v_left := p_credits;
  v_take := least(v_left, greatest(v_user_account.credits_posted - v_user_account.debits_posted
                                   - v_user_account.debits_pending, 0));
  if v_take > 0 then
    perform public.credit_create_transfer(
      md5('invoice-refund:' || v_key)::uuid,
      v_user_account.id, v_purchases, v_take, 'refund', 'invoice', p_invoice.id::text,
      jsonb_build_object('purchased', p_invoice.credits, 'taken_back', v_take, 'step', p_step));
    v_left := v_left - v_take;
    v_recovered := v_take;
  end if;
  for v_payment in
    select t.id, t.credit_account_id, t.amount, t.reference_id
      from public.credit_transfers t
     where v_left > 0 and v_user_account.id is not null
       and t.debit_account_id = v_user_account.id and t.kind = 'revenue_share' and t.phase = 'posted'
       and t.created_at >= coalesce(p_invoice.paid_at, p_invoice.created_at)
     order by t.created_at desc, t.id
  loop
    exit when v_left <= 0;
    v_part := least(v_payment.amount - coalesce((select sum(c.attributed) from private.billing_clawback_parts c
                                                  where c.payment_transfer_id = v_payment.id), 0),
                    v_left);
    continue when v_part <= 0;
    select * into v_from from public.credit_accounts a where a.id = v_payment.credit_account_id;
    v_take := least(v_part, greatest(v_from.credits_posted - v_from.debits_posted - v_from.debits_pending, 0));
    -- A provider's share is claimed whole (what it cannot give back is its exposure); of
    -- the platform's fee only what it gave back, the rest stays the user's to find.
    if v_from.kind = 'provider_earnings' or v_take > 0 then
      insert into private.billing_clawback_parts (invoice_id, payment_transfer_id, attributed)
      values (p_invoice.id, v_payment.id, case when v_from.kind = 'provider_earnings' then v_part else v_take end)
      on conflict (payment_transfer_id, invoice_id) do update
         set attributed = private.billing_clawback_parts.attributed + excluded.attributed;
    end if;
    if v_take > 0 then
      perform public.credit_create_transfer(
        md5('invoice-clawback:' || v_key || ':' || v_payment.id)::uuid,
        v_from.id, v_purchases, v_take, 'refund', 'invoice', p_invoice.id::text,
        jsonb_build_object('clawback_of', v_payment.id, 'strategy_subscription', v_payment.reference_id,
                           'share', case when v_from.kind = 'provider_earnings' then 'provider' else 'platform' end,
                           'step', p_step));
    end if;
    if v_from.kind = 'provider_earnings' then
      v_provider := v_from.user_id::text;
      v_providers := jsonb_set(v_providers, array[v_provider],
        jsonb_build_array(coalesce((v_providers -> v_provider ->> 0)::numeric, 0) + v_part,
                          coalesce((v_providers -> v_provider ->> 1)::numeric, 0) + v_take));
      v_recovered := v_recovered + v_part;
      v_left := v_left - v_part;
    else
      v_recovered := v_recovered + v_take;
      v_left := v_left - v_take;
    end if;
    update public.strategy_subscriptions s
       set status = 'cancelled', cancelled_at = coalesce(s.cancelled_at, now())
     where s.id::text = v_payment.reference_id and s.status in ('active', 'paused');
  end loop;
  perform private.billing_record_exposure(p_invoice, p_invoice.user_id, 'user', p_credits, v_recovered);
  for v_provider in select jsonb_object_keys(v_providers) loop
    perform private.billing_record_exposure(p_invoice, v_provider::uuid, 'provider_earnings',
                                            (v_providers -> v_provider ->> 0)::numeric,
                                            (v_providers -> v_provider ->> 1)::numeric);
  end loop;
end;
$$;
ALTER FUNCTION private.billing_claw_back(p_invoice public.invoices, p_credits numeric, p_step text) OWNER TO postgres;
CREATE FUNCTION private.billing_currency_problem(p_provider text, p_amount numeric, p_currency text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select case
    when p_provider = 'stripe' and lower(p_currency) = any (string_to_array('bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf', ' '))
         and p_amount <> trunc(p_amount)
      then format('stripe takes %s in whole units', p_currency)
    when p_provider = 'stripe' and p_amount < 0.5 then 'stripe takes at least 0.50'
    when p_provider = 'paystack' and p_currency not in ('NGN', 'GHS', 'ZAR', 'KES', 'USD')
      then format('paystack does not take %s (NGN, GHS, ZAR, KES, USD)', p_currency)
    when p_provider = 'tripay' and p_currency <> 'IDR'
      then format('tripay does not take %s (IDR only)', p_currency)
    when p_provider = 'tripay' and (p_amount <> trunc(p_amount) or p_amount < 10000)
      then 'tripay takes whole rupiah, at least 10000'
  end
$$;
ALTER FUNCTION private.billing_currency_problem(p_provider text, p_amount numeric, p_currency text) OWNER TO postgres;
CREATE FUNCTION private.billing_day(p_at timestamp with time zone) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$ select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') $$;
ALTER FUNCTION private.billing_day(p_at timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION private.billing_enforce_plan_limits(p_user_id uuid) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_plan public.plans;
  v_n integer;
begin
  v_plan := private.current_plan(p_user_id);
  update public.bots b
     set status = 'paused', pause_cause = 'plan',
         status_reason = format('plan limit: the %s plan allows %s bots', v_plan.name, v_plan.max_bots)
   where b.id in (select x.id from public.bots x
                   where x.user_id = p_user_id and x.status = 'running'
                   order by x.created_at desc
                   offset greatest(v_plan.max_bots, 0));
  get diagnostics v_n = row_count;
  if v_n > 0 then
    insert into public.notifications (user_id, kind, title, body, data)
    values (p_user_id, 'system', 'Bots paused by your plan',
            format('%s running bot(s) were paused: the %s plan allows %s bots.', v_n, v_plan.name, v_plan.max_bots),
            jsonb_build_object('plan', v_plan.name, 'paused', v_n));
  end if;
  return v_n;
end;
$$;
ALTER FUNCTION private.billing_enforce_plan_limits(p_user_id uuid) OWNER TO postgres;
CREATE FUNCTION private.billing_enqueue_webhook_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform public.enqueue_job('billing.webhook', jsonb_build_object('webhook_event_id', new.id), 'default',
                             null, 0, 10, 'billing-webhook:' || new.provider || ':' || new.event_id);
  return null;
end;
$$;
ALTER FUNCTION private.billing_enqueue_webhook_event() OWNER TO postgres;
CREATE FUNCTION private.billing_grace() RETURNS interval
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$ select interval '7 days' $$;
ALTER FUNCTION private.billing_grace() OWNER TO postgres;
CREATE FUNCTION private.billing_on_paid(p_invoice public.invoices) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_cur public.subscriptions;
  v_period interval := case p_invoice.period when 'year' then interval '1 year' else interval '1 month' end;
  v_sub_id uuid;
  v_recovered boolean := false;
begin
  -- Credits bought with the invoice are added by the ledger's own trigger on invoices
  -- (credit_invoice_paid), in this same transaction.
  if p_invoice.plan_id is not null then
    select * into v_cur from public.subscriptions s
     where s.user_id = p_invoice.user_id and s.status in ('active', 'trial')
     for update;
    if found and v_cur.plan_id = p_invoice.plan_id and v_cur.expires_at <> 'infinity' then
      v_recovered := v_cur.past_due_since is not null;
      update public.subscriptions s
         set status = 'active',
             expires_at = case when s.status = 'trial' then greatest(s.expires_at, now())
                               else coalesce(s.renewal_due_at, greatest(s.expires_at, now())) end + v_period,
             invoice_id = p_invoice.id, cancelled_at = null,
             provider = p_invoice.provider, period = p_invoice.period, auto_renew = true,
             cancel_at_period_end = false, renewal_due_at = null, grace_until = null, past_due_since = null,
             renewal_attempts = 0, next_renewal_attempt_at = null
       where s.id = v_cur.id
      returning s.id into v_sub_id;
    else
      if found then
        update public.subscriptions s
           set status = 'cancelled', cancelled_at = now(), auto_renew = false
         where s.id = v_cur.id;
      end if;
      insert into public.subscriptions (user_id, plan_id, invoice_id, status, started_at, expires_at, auto_renew,
                                        provider, period)
      values (p_invoice.user_id, p_invoice.plan_id, p_invoice.id, 'active', now(), now() + v_period, true,
              p_invoice.provider, p_invoice.period)
      returning id into v_sub_id;
    end if;
    -- Other open renewal invoices of the subscription are no longer needed.
    update public.invoices i set status = 'cancelled'
     where i.subscription_id = v_sub_id and i.status = 'pending' and i.id <> p_invoice.id;
    perform public.credit_grant_monthly(v_sub_id);
    perform private.billing_enforce_plan_limits(p_invoice.user_id);
  end if;
  insert into public.notifications (user_id, kind, title, body, data)
  values (p_invoice.user_id, 'payment', case when v_recovered then 'Payment received: plan renewed' else 'Payment received' end,
          format('%s %s paid%s.', p_invoice.amount, p_invoice.currency,
                 case when p_invoice.plan_id is not null
                      then ' for the ' || (select p.name from public.plans p where p.id = p_invoice.plan_id) || ' plan'
                      else '' end),
          jsonb_build_object('invoice_id', p_invoice.id, 'status', 'paid', 'recovered', v_recovered));
end;
$$;
ALTER FUNCTION private.billing_on_paid(p_invoice public.invoices) OWNER TO postgres;
CREATE FUNCTION private.billing_on_refunded(p_invoice public.invoices) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_n integer;
begin
  perform private.billing_claw_back(p_invoice, p_invoice.credits - p_invoice.credits_refunded,
                                    case when p_invoice.credits_refunded > 0 then 'rest' end);
  update public.invoices i
     set credits_refunded = i.credits, amount_refunded = i.amount
   where i.id = p_invoice.id;
  update public.subscriptions s
     set status = 'cancelled', cancelled_at = now(), auto_renew = false
   where s.invoice_id = p_invoice.id and s.status in ('active', 'trial');
  get diagnostics v_n = row_count;
  if v_n > 0 then
    perform private.billing_enforce_plan_limits(p_invoice.user_id);
  end if;
  insert into public.notifications (user_id, kind, title, body, data)
  values (p_invoice.user_id, 'payment',
          case when exists (select 1 from private.billing_chargebacks c where c.invoice_id = p_invoice.id)
               then 'Payment charged back' else 'Payment refunded' end,
          format('%s %s refunded.', case when p_invoice.amount_refunded > 0 then p_invoice.amount - p_invoice.amount_refunded
                                       else p_invoice.amount end, p_invoice.currency),
          jsonb_build_object('invoice_id', p_invoice.id, 'status', 'refunded'));
end;
$$;
ALTER FUNCTION private.billing_on_refunded(p_invoice public.invoices) OWNER TO postgres;
CREATE TABLE public.subscriptions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    plan_id uuid NOT NULL,
    invoice_id uuid,
    status text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    cancelled_at timestamp with time zone,
    auto_renew boolean DEFAULT true NOT NULL,
    trial_ends_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    provider text,
    period text DEFAULT 'month'::text NOT NULL,
    cancel_at_period_end boolean DEFAULT false NOT NULL,
    renewal_due_at timestamp with time zone,
    grace_until timestamp with time zone,
    past_due_since timestamp with time zone,
    renewal_attempts integer DEFAULT 0 NOT NULL,
    next_renewal_attempt_at timestamp with time zone,
    provider_updated_at timestamp with time zone,
    CONSTRAINT subscriptions_expire_after_start CHECK ((expires_at > started_at)),
    CONSTRAINT subscriptions_period_known CHECK ((period = ANY (ARRAY['month'::text, 'year'::text]))),
    CONSTRAINT subscriptions_provider_known CHECK ((provider = ANY (ARRAY['stripe'::text, 'paystack'::text, 'tripay'::text, 'manual'::text]))),
    CONSTRAINT subscriptions_status_known CHECK ((status = ANY (ARRAY['active'::text, 'cancelled'::text, 'expired'::text, 'trial'::text])))
);
ALTER TABLE public.subscriptions OWNER TO postgres;
CREATE FUNCTION private.billing_provider_subscription(p_provider text, p_ref text) RETURNS public.subscriptions
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select s.* from public.subscriptions s
   where s.status in ('active', 'trial')
     and exists (select 1 from public.invoices i
                  where i.user_id = s.user_id and i.plan_id = s.plan_id and i.provider = p_provider
                    and i.provider_refs @> array[p_ref])
   order by s.created_at desc
   limit 1
$$;
ALTER FUNCTION private.billing_provider_subscription(p_provider text, p_ref text) OWNER TO postgres;
CREATE FUNCTION private.billing_record_exposure(p_invoice public.invoices, p_user_id uuid, p_kind text, p_due numeric, p_recovered numeric) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if p_due <= 0 or p_recovered >= p_due then
    return;
  end if;
  insert into public.credit_exposures (invoice_id, user_id, account_kind, reason, amount_due, amount_recovered)
  values (p_invoice.id, p_user_id, p_kind,
          case when exists (select 1 from private.billing_chargebacks c where c.invoice_id = p_invoice.id)
               then 'chargeback' else 'refund' end,
          p_due, p_recovered)
  on conflict (invoice_id, user_id, account_kind) do update
     set amount_due = public.credit_exposures.amount_due + excluded.amount_due,
         amount_recovered = public.credit_exposures.amount_recovered + excluded.amount_recovered;
end;
$$;
ALTER FUNCTION private.billing_record_exposure(p_invoice public.invoices, p_user_id uuid, p_kind text, p_due numeric, p_recovered numeric) OWNER TO postgres;
CREATE FUNCTION private.billing_requeue_webhook_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform public.enqueue_job('billing.webhook', jsonb_build_object('webhook_event_id', new.id), 'default',
                             null, 0, 10,
                             'billing-webhook:' || new.provider || ':' || new.event_id || ':woken:' || new.attempts);
  return null;
end;
$$;
ALTER FUNCTION private.billing_requeue_webhook_event() OWNER TO postgres;
CREATE FUNCTION private.billing_retry_offsets() RETURNS interval[]
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$ select array[interval '0', interval '1 day', interval '3 days', interval '5 days'] $$;
ALTER FUNCTION private.billing_retry_offsets() OWNER TO postgres;
CREATE FUNCTION private.billing_tell(p_sub public.subscriptions, p_title text, p_body text, p_data jsonb) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  insert into public.notifications (user_id, kind, title, body, data)
  values (p_sub.user_id, 'payment', p_title, p_body,
          jsonb_build_object('subscription_id', p_sub.id, 'plan_id', p_sub.plan_id) || coalesce(p_data, '{}'))
$$;
ALTER FUNCTION private.billing_tell(p_sub public.subscriptions, p_title text, p_body text, p_data jsonb) OWNER TO postgres;
CREATE FUNCTION private.sizing_number(p_value jsonb) RETURNS numeric
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $_$
  select case
    when jsonb_typeof(p_value) = 'number' then (p_value #>> '{}')::numeric
    when jsonb_typeof(p_value) = 'string' and (p_value #>> '{}') ~ '^[0-9]{1,15}(\.[0-9]{1,12})?$'
      then (p_value #>> '{}')::numeric
  end
$_$;
ALTER FUNCTION private.sizing_number(p_value jsonb) OWNER TO postgres;
CREATE TABLE public.bots (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid DEFAULT auth.uid() NOT NULL,
    strategy_id uuid,
    exchange_credential_id uuid,
    name text NOT NULL,
    exchange text NOT NULL,
    trading_pair text NOT NULL,
    timeframe text NOT NULL,
    strategy text NOT NULL,
    parameters jsonb DEFAULT '{}'::jsonb NOT NULL,
    status text DEFAULT 'stopped'::text NOT NULL,
    initial_balance numeric(20,8) NOT NULL,
    current_balance numeric(20,8) NOT NULL,
    total_trades integer DEFAULT 0 NOT NULL,
    winning_trades integer DEFAULT 0 NOT NULL,
    losing_trades integer DEFAULT 0 NOT NULL,
    profit numeric(20,8) DEFAULT 0 NOT NULL,
    profit_percentage numeric(12,4) DEFAULT 0 NOT NULL,
    max_open_trades integer DEFAULT 1 NOT NULL,
    stake_amount numeric(20,8) NOT NULL,
    stop_loss numeric(10,4),
    take_profit numeric(10,4),
    risk_percentage numeric(5,2) DEFAULT 2.0 NOT NULL,
    daily_loss_limit numeric(20,8),
    leverage numeric(6,2) DEFAULT 1 NOT NULL,
    allow_short boolean DEFAULT false NOT NULL,
    is_paper_trade boolean DEFAULT true NOT NULL,
    last_trade_at timestamp with time zone,
    error_message text,
    status_reason text,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    last_candle_at timestamp with time zone,
    pause_cause text,
    pause_until timestamp with time zone,
    stop_positions text,
    pairs text[],
    entry_order_type text DEFAULT 'market'::text NOT NULL,
    exit_order_type text DEFAULT 'market'::text NOT NULL,
    limit_offset numeric(8,4) DEFAULT 0 NOT NULL,
    order_timeout_unit text DEFAULT 'candles'::text NOT NULL,
    entry_timeout integer DEFAULT 1 NOT NULL,
    exit_timeout integer DEFAULT 1 NOT NULL,
    timeout_action text DEFAULT 'cancel'::text NOT NULL,
    organisation_id uuid,
    exit_timeout_count integer DEFAULT 0 NOT NULL,
    CONSTRAINT bots_current_balance_finite CHECK ((current_balance <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT bots_daily_loss_limit_finite CHECK ((daily_loss_limit <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT bots_daily_loss_limit_positive CHECK ((daily_loss_limit > (0)::numeric)),
    CONSTRAINT bots_entry_order_type_known CHECK ((entry_order_type = ANY (ARRAY['market'::text, 'limit'::text]))),
    CONSTRAINT bots_exchange_supported CHECK ((exchange = ANY (ARRAY['binance'::text, 'bybit'::text, 'mexc'::text, 'bitget'::text, 'kraken'::text, 'coinbase'::text, 'okx'::text, 'kucoin'::text, 'gate'::text]))),
    CONSTRAINT bots_exit_order_type_known CHECK ((exit_order_type = ANY (ARRAY['market'::text, 'limit'::text]))),
    CONSTRAINT bots_exit_timeout_count_range CHECK (((exit_timeout_count >= 0) AND (exit_timeout_count <= 100))),
    CONSTRAINT bots_initial_balance_finite CHECK ((initial_balance <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT bots_initial_balance_positive CHECK ((initial_balance > (0)::numeric)),
    CONSTRAINT bots_leverage_finite CHECK ((leverage <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT bots_leverage_range CHECK (((leverage >= (1)::numeric) AND (leverage <= (125)::numeric))),
    CONSTRAINT bots_limit_offset_range CHECK (((limit_offset >= (0)::numeric) AND (limit_offset <= (10)::numeric))),
    CONSTRAINT bots_live_needs_credentials CHECK ((is_paper_trade OR (exchange_credential_id IS NOT NULL))),
    CONSTRAINT bots_max_open_trades_positive CHECK (((max_open_trades >= 1) AND (max_open_trades <= 100))),
    CONSTRAINT bots_metadata_object CHECK (((jsonb_typeof(metadata) = 'object'::text) AND (pg_column_size(metadata) <= 16384))),
    CONSTRAINT bots_metadata_paper_costs CHECK ((((NOT (metadata ? 'paper_fee'::text)) OR COALESCE(((private.sizing_number((metadata -> 'paper_fee'::text)) >= (0)::numeric) AND (private.sizing_number((metadata -> 'paper_fee'::text)) <= 0.5)), false)) AND ((NOT (metadata ? 'paper_slippage'::text)) OR COALESCE(((private.sizing_number((metadata -> 'paper_slippage'::text)) >= (0)::numeric) AND (private.sizing_number((metadata -> 'paper_slippage'::text)) <= 0.5)), false)))),
    CONSTRAINT bots_metadata_paper_volume_share_range CHECK (((NOT (metadata ? 'paper_volume_share'::text)) OR COALESCE(((private.sizing_number((metadata -> 'paper_volume_share'::text)) > (0)::numeric) AND (private.sizing_number((metadata -> 'paper_volume_share'::text)) <= (1)::numeric)), false))),
    CONSTRAINT bots_metadata_sizing_known CHECK ((COALESCE((metadata ->> 'sizing'::text), 'stake'::text) = ANY (ARRAY['stake'::text, 'risk'::text, 'unlimited'::text]))),
    CONSTRAINT bots_name_length CHECK ((char_length(name) <= 200)),
    CONSTRAINT bots_name_not_blank CHECK ((btrim(name) <> ''::text)),
    CONSTRAINT bots_order_timeout_range CHECK (((entry_timeout >= 1) AND (exit_timeout >= 1) AND (entry_timeout <=
CASE order_timeout_unit
    WHEN 'minutes'::text THEN 10080
    ELSE 1000
END) AND (exit_timeout <=
CASE order_timeout_unit
    WHEN 'minutes'::text THEN 10080
    ELSE 1000
END))),
    CONSTRAINT bots_order_timeout_unit_known CHECK ((order_timeout_unit = ANY (ARRAY['minutes'::text, 'candles'::text]))),
    CONSTRAINT bots_parameters_object CHECK (((jsonb_typeof(parameters) = 'object'::text) AND (pg_column_size(parameters) <= 16384))),
    CONSTRAINT bots_pause_cause_known CHECK ((pause_cause = ANY (ARRAY['plan'::text, 'credits'::text, 'daily_loss'::text, 'subscription'::text]))),
    CONSTRAINT bots_profit_finite CHECK ((profit <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT bots_profit_percentage_finite CHECK ((profit_percentage <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT bots_risk_percentage_finite CHECK ((risk_percentage <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT bots_risk_percentage_range CHECK (((risk_percentage > (0)::numeric) AND (risk_percentage <= (100)::numeric))),
    CONSTRAINT bots_stake_amount_finite CHECK ((stake_amount <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT bots_stake_amount_positive CHECK ((stake_amount > (0)::numeric)),
    CONSTRAINT bots_status_known CHECK ((status = ANY (ARRAY['running'::text, 'stopped'::text, 'error'::text, 'paused'::text]))),
    CONSTRAINT bots_status_reason_length CHECK ((char_length(status_reason) <= 2000)),
    CONSTRAINT bots_stop_loss_finite CHECK ((stop_loss <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT bots_stop_loss_percent CHECK (((stop_loss > (0)::numeric) AND (stop_loss < (100)::numeric))),
    CONSTRAINT bots_stop_positions_known CHECK ((stop_positions = ANY (ARRAY['close'::text, 'keep'::text]))),
    CONSTRAINT bots_strategy_known CHECK ((strategy = ANY (ARRAY['sma_cross'::text, 'ema_cross'::text, 'rsi'::text, 'macd'::text, 'rsi_macd'::text, 'bollinger'::text, 'rules'::text]))),
    CONSTRAINT bots_take_profit_finite CHECK ((take_profit <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT bots_take_profit_percent CHECK ((take_profit > (0)::numeric)),
    CONSTRAINT bots_take_profit_short_side CHECK (((NOT allow_short) OR (take_profit IS NULL) OR (take_profit < (100)::numeric))),
    CONSTRAINT bots_timeframe_supported CHECK ((timeframe = ANY (ARRAY['1m'::text, '5m'::text, '15m'::text, '30m'::text, '1h'::text, '4h'::text, '1d'::text]))),
    CONSTRAINT bots_timeout_action_known CHECK ((timeout_action = ANY (ARRAY['cancel'::text, 'requote'::text]))),
    CONSTRAINT bots_trading_pair_format CHECK ((trading_pair ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'::text)),
    CONSTRAINT bots_trailing_stop_needs_stop_loss CHECK (
CASE
    WHEN (jsonb_typeof((metadata -> 'trailing_stop'::text)) = 'boolean'::text) THEN ((NOT ((metadata -> 'trailing_stop'::text))::boolean) OR (stop_loss IS NOT NULL))
    ELSE (COALESCE(jsonb_typeof((metadata -> 'trailing_stop'::text)), 'null'::text) = 'null'::text)
END)
)
WITH (fillfactor='70');
ALTER TABLE public.bots OWNER TO postgres;
COMMENT ON COLUMN public.bots.last_candle_at IS 'Open time of the last candle whose decisions the fleet persisted (fleet-owned).';
COMMENT ON COLUMN public.bots.pairs IS 'The pairs a multi-pair bot trades, in order (first = trading_pair, 1 to 20, no repeats); null: trading_pair only.';
COMMENT ON COLUMN public.bots.exit_timeout_count IS 'After this many timed-out limit exits of one position the bot exits at market; 0: never.';
CREATE FUNCTION private.bot_actor_check(p_bot public.bots) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_role text;
begin
  if p_bot.user_id = (select auth.uid()) then
    return;
  end if;
  v_role := private.organisation_role(p_bot.organisation_id);
  if v_role is null then
    raise exception 'no bot of yours with id %', p_bot.id
      using errcode = 'no_data_found', constraint = 'position_requests_bot_owned';
  end if;
  if private.organisation_rank(v_role) < private.organisation_rank('member') then
    raise exception 'your role in the bot''s organisation (%) only reads its bots', v_role
      using errcode = 'insufficient_privilege', constraint = 'bots_organisation_role',
            hint = 'A member, admin or owner of the organisation starts, stops and trades its bots.';
  end if;
end;
$$;
ALTER FUNCTION private.bot_actor_check(p_bot public.bots) OWNER TO postgres;
CREATE FUNCTION private.bot_check_pairs() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
begin
  if new.pairs is null then
    return new;
  end if;
  if cardinality(new.pairs) not between 1 and 20 or array_ndims(new.pairs) <> 1 then
    raise exception 'a bot trades 1 to 20 pairs, got %', coalesce(cardinality(new.pairs), 0)
      using errcode = 'check_violation', constraint = 'bots_pairs_valid';
  end if;
  if exists (select 1 from unnest(new.pairs) p
              where p is null or p !~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$') then
    raise exception 'every pair must look like BASE/QUOTE (or BASE/QUOTE:SETTLE), got %', array_to_string(new.pairs, ', ', 'null')
      using errcode = 'check_violation', constraint = 'bots_pairs_valid';
  end if;
  if (select count(distinct p) from unnest(new.pairs) p) <> cardinality(new.pairs) then
    raise exception 'a pair is listed twice: %', array_to_string(new.pairs, ', ')
      using errcode = 'check_violation', constraint = 'bots_pairs_valid';
  end if;
  if new.pairs[1] <> new.trading_pair then
    raise exception 'the first pair must be the bot''s trading_pair %, got %', new.trading_pair, new.pairs[1]
      using errcode = 'check_violation', constraint = 'bots_pairs_valid';
  end if;
  if (select count(distinct split_part(split_part(p, '/', 2), ':', 1)) from unnest(new.pairs) p) <> 1 then
    raise exception 'every pair of a bot needs the same quote currency (one balance): %', array_to_string(new.pairs, ', ')
      using errcode = 'check_violation', constraint = 'bots_pairs_valid';
  end if;
  return new;
end;
$_$;
ALTER FUNCTION private.bot_check_pairs() OWNER TO postgres;
CREATE FUNCTION private.bot_leases_track_takeover() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if tg_op = 'UPDATE' and new.epoch > old.epoch and new.worker_id is not null
     and coalesce(old.worker_id, old.last_worker_id) is distinct from new.worker_id
     and coalesce(old.worker_id, old.last_worker_id) is not null then
    new.taken_over_at := now();
    new.taken_over_from := coalesce(old.worker_id, old.last_worker_id);
  end if;
  if new.worker_id is not null then
    new.last_worker_id := new.worker_id;
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.bot_leases_track_takeover() OWNER TO postgres;
CREATE FUNCTION private.bot_live_pairs_aal2() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() and not old.is_paper_trade
     and coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2' then
    raise exception 'changing a live bot''s trading settings needs a session with two-factor authentication (aal2)'
      using errcode = 'insufficient_privilege', constraint = 'bots_live_changes_require_aal2';
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.bot_live_pairs_aal2() OWNER TO postgres;
CREATE FUNCTION private.bot_market_rules() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_m public.exchange_markets;
  v_loaded timestamptz;
  v_price numeric;
  v_notional numeric;
  v_pair text;
begin
  select l.loaded_at into v_loaded
    from public.exchange_market_loads l
   where l.exchange = new.exchange and l.loaded_at is not null;
  if v_loaded is null then
    return new;
  end if;
  foreach v_pair in array coalesce(new.pairs, array[new.trading_pair]) loop
    select * into v_m from public.exchange_markets x where x.exchange = new.exchange and x.symbol = v_pair;
    if not found or v_m.delisted_at is not null then
      raise exception '% does not list the market % (markets loaded %)', new.exchange, v_pair,
        to_char(v_loaded at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
        using errcode = 'check_violation', constraint = 'bots_market_listed';
    end if;
    if not v_m.active then
      raise exception 'the market % on % is not active: no bot can trade it now', v_pair, new.exchange
        using errcode = 'check_violation', constraint = 'bots_market_active';
    end if;
    if v_m.max_leverage is not null and v_m.max_leverage > 0 and new.leverage > v_m.max_leverage then
      raise exception 'leverage % is above the maximum % of % on %', trim_scale(new.leverage), trim_scale(v_m.max_leverage),
        v_pair, new.exchange
        using errcode = 'check_violation', constraint = 'bots_leverage_within_market';
    end if;
    -- The stake is the quote amount of an entry (the notional, times the leverage on
    -- contract markets); risk sizing derives it from the equity at run time, so it is not checked.
    if coalesce(new.metadata ->> 'sizing', 'stake') = 'stake' then
      v_notional := new.stake_amount * case when v_m.contract then new.leverage else 1 end;
      if v_m.min_cost is not null and v_notional < v_m.min_cost then
        raise exception 'stake % % is below the minimum order value % % of % on %', trim_scale(new.stake_amount),
          v_m.quote, trim_scale(v_m.min_cost), v_m.quote, v_pair, new.exchange
          using errcode = 'check_violation', constraint = 'bots_stake_within_market';
      end if;
      if v_m.min_amount is not null and not (v_m.contract and v_m.linear is false) then
        select c.close into v_price
          from public.candles c
         where c.exchange = new.exchange and c.symbol = v_pair and c.timeframe = new.timeframe
         order by c.open_time desc
         limit 1;
        if v_price is not null and v_price > 0
           and v_notional / (v_price * coalesce(nullif(v_m.contract_size, 0), 1)) < v_m.min_amount then
          raise exception 'stake % % buys less than the minimum amount % % of % on % at the last price %',
            trim_scale(new.stake_amount), v_m.quote, trim_scale(v_m.min_amount), v_m.base, v_pair, new.exchange,
            trim_scale(v_price)
            using errcode = 'check_violation', constraint = 'bots_stake_within_market';
        end if;
      end if;
    end if;
  end loop;
  return new;
end;
$$;
ALTER FUNCTION private.bot_market_rules() OWNER TO postgres;
CREATE FUNCTION private.bot_rules() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_strategy public.strategies;
  v_plan public.plans;
  v_n integer;
  v_available numeric;
  v_cause_gone boolean;
begin
  if private.is_service() then
    -- The fleet pausing a bot for its daily loss limit: paused until the next UTC day.
    if new.status = 'paused' and new.pause_cause is null and new.status_reason like 'daily loss limit reached%'
       and (tg_op = 'INSERT' or old.status <> 'paused') then
      new.pause_cause := 'daily_loss';
      new.pause_until := date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' + interval '1 day';
    elsif new.status = 'running' and (tg_op = 'INSERT' or old.status <> 'running') then
      new.pause_cause := null;
      new.pause_until := null;
    end if;
    return new;
  end if;
  -- Changing what a live bot risks needs two-factor authentication.
  if tg_op = 'UPDATE' and not old.is_paper_trade
     and coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2'
     and (new.leverage, new.stake_amount, new.exchange, new.trading_pair, new.timeframe, new.exchange_credential_id,
          new.stop_loss, new.take_profit, new.risk_percentage, new.daily_loss_limit, new.max_open_trades,
          new.allow_short, new.strategy, new.strategy_id, new.parameters, new.metadata -> 'sizing')
         is distinct from
         (old.leverage, old.stake_amount, old.exchange, old.trading_pair, old.timeframe, old.exchange_credential_id,
          old.stop_loss, old.take_profit, old.risk_percentage, old.daily_loss_limit, old.max_open_trades,
          old.allow_short, old.strategy, old.strategy_id, old.parameters, old.metadata -> 'sizing') then
    raise exception 'changing a live bot''s trading settings needs a session with two-factor authentication (aal2)'
      using errcode = 'insufficient_privilege', constraint = 'bots_live_changes_require_aal2';
  end if;
  -- Someone else's strategy only through an active subscription.
  if new.strategy_id is not null
     and (tg_op = 'INSERT' or new.strategy_id is distinct from old.strategy_id
          or (new.status = 'running' and old.status <> 'running')) then
    select * into v_strategy from public.strategies s where s.id = new.strategy_id;
    if found and v_strategy.user_id <> new.user_id
       and not exists (select 1 from public.strategy_subscriptions ss
                        where ss.strategy_id = new.strategy_id and ss.subscriber_id = new.user_id and ss.status = 'active') then
      raise exception 'a bot can run a marketplace strategy only while its owner subscribes to it'
        using errcode = 'insufficient_privilege', constraint = 'bots_strategy_needs_subscription';
    end if;
  end if;
  -- A platform pause holds until its cause is gone.
  if tg_op = 'UPDATE' and old.pause_cause is not null and new.status = 'running' and old.status <> 'running' then
    case old.pause_cause
      when 'plan' then
        v_plan := private.current_plan(new.user_id);
        select count(*) into v_n from public.bots b where b.user_id = new.user_id and b.status = 'running' and b.id <> new.id;
        v_cause_gone := v_n < v_plan.max_bots;
      when 'credits' then
        select a.credits_posted - a.debits_posted - a.debits_pending into v_available
          from public.credit_accounts a where a.user_id = new.user_id and a.kind = 'user';
        v_cause_gone := coalesce(v_available, 0) > 0;
      when 'daily_loss' then
        v_cause_gone := old.pause_until is not null and now() >= old.pause_until;
      when 'subscription' then
        -- the strategy check above passed (or the bot no longer uses it)
        v_cause_gone := true;
      else
        v_cause_gone := false;
    end case;
    if not v_cause_gone then
      raise exception 'this bot was paused by the platform (%) and cannot run until that changes: %',
        old.pause_cause, coalesce(old.status_reason, old.pause_cause)
        using errcode = 'check_violation', constraint = 'bots_platform_pause_holds';
    end if;
    new.pause_cause := null;
    new.pause_until := null;
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.bot_rules() OWNER TO postgres;
CREATE FUNCTION private.bot_void_idle_holds() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_bot public.bots;
  v_voids jsonb;
  v_delegated boolean;
begin
  if tg_op = 'DELETE' then
    v_bot := old;
    -- The owner's deletion takes their accounts with it: nothing to give back.
    if not exists (select 1 from public.profiles p where p.id = v_bot.user_id) then
      return null;
    end if;
  else
    v_bot := new;
  end if;
  select jsonb_agg(jsonb_build_object(
           'action', 'void', 'id', md5('bot-idle-hold:' || t.id::text)::uuid, 'pending_id', t.id,
           'metadata', jsonb_build_object('reason', case when tg_op = 'DELETE' then 'bot_deleted'
                                                         else 'bot_' || v_bot.status end))
           order by t.id)
    into v_voids
    from public.credit_transfers t
   where t.reference_type = 'order'
     and t.phase = 'pending'
     and t.metadata ->> 'bot_id' = v_bot.id::text
     and not exists (select 1 from public.credit_transfers r where r.pending_id = t.id)
     and (tg_op = 'DELETE'
          or (t.metadata ? 'decided_at'
              and (t.metadata ->> 'decided_at')::timestamptz <= v_bot.last_candle_at
              and not exists (select 1 from public.orders o
                               where o.client_order_id = t.reference_id
                                 and o.status in ('pending', 'open', 'closed'))
              and not exists (select 1 from public.position_requests q
                               where q.bot_id = v_bot.id
                                 and q.status in ('pending', 'working')
                                 and q.id::text = t.metadata ->> 'request_id')));
  if v_voids is null then
    return null;
  end if;
  v_delegated := exists (select 1 from private.credit_delegations d where d.xact = pg_catalog.pg_current_xact_id());
  if not v_delegated then
    perform private.credit_delegate('the holds of a bot that stopped');
  end if;
  perform 1 from public.credit_create_transfers(v_voids);
  if not v_delegated then
    perform private.credit_delegate(null);
  end if;
  return null;
end;
$$;
ALTER FUNCTION private.bot_void_idle_holds() OWNER TO postgres;
CREATE FUNCTION private.bots_pause_settles_close() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_what text := case new.status when 'stopped' then 'stop' when 'error' then 'error' else 'pause' end;
begin
  if new.id::text = any (string_to_array(
       coalesce(pg_catalog.current_setting('tradefleet.settled_bots', true), ''), ',')) then
    if exists (select 1 from public.position_requests r
                where r.bot_id = new.id and r.kind = 'close' and r.status in ('pending', 'working')
                  and r.stop_after) then
      insert into public.bot_logs (bot_id, user_id, log_level, message, context, source)
      values (new.id, new.user_id, 'info',
              case when new.status = 'stopped' then coalesce(new.status_reason, 'stopped by its owner')
                   else new.status || ' once its working close settled'
                        || coalesce(': ' || new.status_reason, '') end,
              jsonb_build_object('action', case when new.status = 'stopped' then 'bot_stopped' else 'bot_settled' end,
                                 'status', new.status),
              'bot');
      return new;
    end if;
    -- The owner set the bot running since: the last request wins.
    insert into public.bot_logs (bot_id, user_id, log_level, message, context, source)
    values (new.id, new.user_id, 'info',
            format('the bot was set running again before its %s settled: it runs on', v_what),
            jsonb_build_object('action', 'settle_overridden', 'status', new.status), 'bot');
    new.status := 'running';
    new.status_reason := old.status_reason;
    new.error_message := old.error_message;
    return new;
  end if;
  if new.is_paper_trade or new.status = 'stopped' then
    return new;
  end if;
  update public.position_requests r
     set stop_after = true, stop_status = new.status,
         stop_reason = case when r.stop_status is not null
                             and new.status_reason is not distinct from old.status_reason
                            then r.stop_reason else new.status_reason end,
         updated_at = now()
   where r.bot_id = new.id and r.kind = 'close' and r.status = 'working';
  if not found then
    return new;
  end if;
  -- The fleet's daily loss pause is the platform's (`bot_rules` gives it its cause once the
  -- status reads `paused`): it waits with its cause, as the other platform pauses do.
  if new.status = 'paused' and new.pause_cause is null and private.is_service()
     and new.status_reason like 'daily loss limit reached%' then
    new.pause_cause := 'daily_loss';
    new.pause_until := date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' + interval '1 day';
  end if;
  new.status_reason := case new.status
    when 'error' then 'stopping with an error: cancelling the working close, the position is kept'
    else 'pausing: cancelling the working close, the position is kept'
  end;
  new.status := 'running';
  return new;
end;
$$;
ALTER FUNCTION private.bots_pause_settles_close() OWNER TO postgres;
CREATE FUNCTION private.bots_repair_legacy_rows() RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_n integer;
begin
  with bad as (
    select b.id, b.name, b.status_reason, b.metadata, b.parameters,
           char_length(b.name) > 200 as long_name,
           coalesce(char_length(b.status_reason) > 2000, false) as long_reason,
           not coalesce(jsonb_typeof(b.parameters) = 'object' and pg_column_size(b.parameters) <= 16384, false)
             as bad_parameters,
           not coalesce(jsonb_typeof(b.metadata) = 'object' and pg_column_size(b.metadata) <= 16384, false)
             as bad_metadata
      from public.bots b
     where char_length(b.name) > 200
        or coalesce(char_length(b.status_reason) > 2000, false)
        or not coalesce(jsonb_typeof(b.parameters) = 'object' and pg_column_size(b.parameters) <= 16384, false)
        or not coalesce(jsonb_typeof(b.metadata) = 'object' and pg_column_size(b.metadata) <= 16384, false)
        or coalesce(b.metadata ->> 'sizing', 'stake') not in ('stake', 'risk', 'unlimited')
        or (b.metadata ? 'paper_fee'
            and not coalesce(private.sizing_number(b.metadata -> 'paper_fee') between 0 and 0.5, false))
        or (b.metadata ? 'paper_slippage'
            and not coalesce(private.sizing_number(b.metadata -> 'paper_slippage') between 0 and 0.5, false))
        or (b.metadata ? 'paper_volume_share'
            and not coalesce(private.sizing_number(b.metadata -> 'paper_volume_share') > 0
                             and private.sizing_number(b.metadata -> 'paper_volume_share') <= 1, false))
       for update of b
  ), fixed as (
    select d.id, d.name as old_name, d.status_reason as old_status_reason, d.parameters as old_parameters,
           d.metadata as old_metadata,
           case when d.long_name then left(d.name, 200) else d.name end as name,
           case when d.long_reason then left(d.status_reason, 2000) else d.status_reason end as status_reason,
           case when d.bad_parameters then '{}'::jsonb else d.parameters end as parameters,
           case when d.bad_metadata then '{}'::jsonb
                else d.metadata - array_remove(array[
                       case when coalesce(d.metadata ->> 'sizing', 'stake') not in ('stake', 'risk', 'unlimited')
                            then 'sizing' end,
                       case when d.metadata ? 'paper_fee'
                             and not coalesce(private.sizing_number(d.metadata -> 'paper_fee') between 0 and 0.5, false)
                            then 'paper_fee' end,
                       case when d.metadata ? 'paper_slippage'
                             and not coalesce(private.sizing_number(d.metadata -> 'paper_slippage') between 0 and 0.5, false)
                            then 'paper_slippage' end,
                       case when d.metadata ? 'paper_volume_share'
                             and not coalesce(private.sizing_number(d.metadata -> 'paper_volume_share') > 0
                                              and private.sizing_number(d.metadata -> 'paper_volume_share') <= 1, false)
                            then 'paper_volume_share' end], null)
           end as metadata
      from bad d
  ), kept as (
    insert into private.bots_legacy_values (bot_id, field, value)
    select f.id, v.field, v.value
      from fixed f
     cross join lateral (values ('name', case when f.name is distinct from f.old_name then to_jsonb(f.old_name) end),
                                ('status_reason', case when f.status_reason is distinct from f.old_status_reason
                                                       then to_jsonb(f.old_status_reason) end),
                                ('parameters', case when f.parameters is distinct from f.old_parameters
                                                    then coalesce(f.old_parameters, 'null'::jsonb) end),
                                ('metadata', case when f.metadata is distinct from f.old_metadata
                                                  then coalesce(f.old_metadata, 'null'::jsonb) end)) v(field, value)
     where v.value is not null
    on conflict (bot_id, field) do nothing
  )
  update public.bots b
     set name = f.name, status_reason = f.status_reason, parameters = f.parameters, metadata = f.metadata
    from fixed f
   where b.id = f.id;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
ALTER FUNCTION private.bots_repair_legacy_rows() OWNER TO postgres;
CREATE FUNCTION private.bots_running_overrides_pause() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_requests uuid[];
  v_status text;
  v_stop boolean;
begin
  -- The fleet's own writes (a step writes the status it keeps) override nothing.
  if (select auth.uid()) is null then
    return new;
  end if;
  select array_agg(r.id order by r.id), min(r.stop_status), bool_or(r.stop_status is null)
    into v_requests, v_status, v_stop
    from public.position_requests r
   where r.bot_id = new.id and r.kind = 'close' and r.status in ('pending', 'working') and r.stop_after;
  if v_requests is null then
    return new;
  end if;
  if old.pause_cause is not null then
    raise exception 'this bot was paused by the platform (%) and cannot run until that changes: %',
      old.pause_cause, coalesce(old.status_reason, old.pause_cause)
      using errcode = 'check_violation', constraint = 'bots_platform_pause_holds';
  end if;
  update public.position_requests r
     set stop_after = false, stop_status = null, stop_reason = null, updated_at = now()
   where r.id = any (v_requests);
  new.status_reason := null;
  if v_status = 'error' then
    new.error_message := null;
  end if;
  insert into public.bot_logs (bot_id, user_id, log_level, message, context, source)
  values (new.id, new.user_id, 'info',
          case
            when v_stop and old.stop_positions = 'close' then
              'the stop closing the position was cancelled: the bot was set running again; the close works on and the bot runs on after it'
            when v_stop then
              'the stop keeping the position was cancelled: the bot was set running again; the close works on'
            else format('the %s waiting for the working close to settle was cancelled: the bot was set running again',
                        case v_status when 'error' then 'error' else 'pause' end)
          end,
          jsonb_build_object('action', case when v_stop then 'stop_overridden' else 'pause_overridden' end,
                             'status', case when v_stop then 'stopped' else v_status end,
                             'stop_positions', case when v_stop then old.stop_positions end,
                             'request_ids', to_jsonb(v_requests)),
          'bot');
  return new;
end;
$$;
ALTER FUNCTION private.bots_running_overrides_pause() OWNER TO postgres;
CREATE FUNCTION private.caller_email() RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select lower(u.email) from auth.users u where u.id = (select auth.uid())
$$;
ALTER FUNCTION private.caller_email() OWNER TO postgres;
CREATE FUNCTION private.cancel_position_requests() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  update public.position_requests r
     set status = case r.status when 'pending' then 'cancelled' else 'failed' end,
         status_reason = case r.status
           when 'pending' then 'the bot stopped running (' || new.status || ') before the request ran'
           else 'the bot stopped running (' || new.status || ') before the request finished'
         end,
         updated_at = now(), completed_at = now()
   where r.bot_id = new.id and r.status in ('pending', 'working')
     and not (r.stop_after and new.status = coalesce(r.stop_status, 'stopped'));
  return null;
end;
$$;
ALTER FUNCTION private.cancel_position_requests() OWNER TO postgres;
CREATE FUNCTION private.sizing_is_valid(p_sizing jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select jsonb_typeof(p_sizing) = 'object'
     and pg_column_size(p_sizing) <= 2048
     and not exists (select 1 from jsonb_object_keys(p_sizing) k
                      where k not in ('mode', 'amount', 'percent', 'max_amount', 'max_leverage'))
     and coalesce(p_sizing ->> 'mode', 'stake') in ('stake', 'fixed_base', 'fixed_quote', 'percent_balance')
     and (not p_sizing ? 'mode' or jsonb_typeof(p_sizing -> 'mode') = 'string')
     and (not p_sizing ? 'amount' or coalesce(private.sizing_number(p_sizing -> 'amount') between 1e-12 and 1e12, false))
     and (not p_sizing ? 'max_amount' or coalesce(private.sizing_number(p_sizing -> 'max_amount') between 1e-12 and 1e12, false))
     and (not p_sizing ? 'percent' or coalesce(private.sizing_number(p_sizing -> 'percent') > 0
                                               and private.sizing_number(p_sizing -> 'percent') <= 100, false))
     and (not p_sizing ? 'max_leverage' or coalesce(private.sizing_number(p_sizing -> 'max_leverage') between 1 and 125, false))
     and (coalesce(p_sizing ->> 'mode', 'stake') not in ('fixed_base', 'fixed_quote') or p_sizing ? 'amount')
     and (coalesce(p_sizing ->> 'mode', 'stake') <> 'percent_balance' or p_sizing ? 'percent')
$$;
ALTER FUNCTION private.sizing_is_valid(p_sizing jsonb) OWNER TO postgres;
CREATE TABLE public.strategy_subscriptions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    strategy_id uuid NOT NULL,
    subscriber_id uuid DEFAULT auth.uid() NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    auto_execute boolean DEFAULT false NOT NULL,
    bot_id uuid,
    sizing jsonb DEFAULT '{}'::jsonb NOT NULL,
    price numeric(12,2) DEFAULT 0 NOT NULL,
    current_period_start timestamp with time zone DEFAULT now() NOT NULL,
    current_period_end timestamp with time zone,
    cancelled_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    next_price numeric(12,2),
    next_price_from timestamp with time zone,
    CONSTRAINT strategy_subscriptions_auto_execute_needs_bot CHECK (((NOT auto_execute) OR (bot_id IS NOT NULL))),
    CONSTRAINT strategy_subscriptions_next_price_finite CHECK ((next_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT strategy_subscriptions_next_price_not_negative CHECK ((next_price >= (0)::numeric)),
    CONSTRAINT strategy_subscriptions_price_finite CHECK ((price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT strategy_subscriptions_price_not_negative CHECK ((price >= (0)::numeric)),
    CONSTRAINT strategy_subscriptions_sizing_valid CHECK (private.sizing_is_valid(sizing)),
    CONSTRAINT strategy_subscriptions_status_known CHECK ((status = ANY (ARRAY['active'::text, 'paused'::text, 'cancelled'::text, 'expired'::text])))
);
ALTER TABLE public.strategy_subscriptions OWNER TO postgres;
CREATE FUNCTION private.charge_strategy_period(p_sub public.strategy_subscriptions, p_start timestamp with time zone) RETURNS public.strategy_subscriptions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_price numeric;
  v_next numeric := p_sub.next_price;
  v_next_from timestamptz := p_sub.next_price_from;
  v_sub public.strategy_subscriptions;
begin
  if p_sub.status in ('cancelled', 'expired') then
    select s.monthly_price into v_price from public.strategies s where s.id = p_sub.strategy_id;
    v_next := null;
    v_next_from := null;
  elsif v_next is not null and p_start >= v_next_from then
    v_price := v_next;
    v_next := null;
    v_next_from := null;
  else
    v_price := p_sub.price;
  end if;
  if v_price > 0 then
    perform private.credit_delegate('strategy subscription period');
    perform public.credit_pay_strategy_subscription(
      md5('strategy-subscription-period:' || p_sub.id || ':' || p_start)::uuid, p_sub.id, v_price);
    perform private.credit_delegate(null);
  end if;
  update public.strategy_subscriptions s
     set status = 'active', price = coalesce(v_price, 0), current_period_start = p_start,
         current_period_end = p_start + interval '1 month', cancelled_at = null,
         next_price = v_next, next_price_from = v_next_from
   where s.id = p_sub.id
  returning * into v_sub;
  return v_sub;
end;
$$;
ALTER FUNCTION private.charge_strategy_period(p_sub public.strategy_subscriptions, p_start timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION private.check_lease_epochs() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_bot uuid;
  v_epoch bigint;
  v_current bigint;
begin
  select n.bot_id, n.lease_epoch, l.epoch into v_bot, v_epoch, v_current
    from new_rows n
    left join public.bot_leases l on l.bot_id = n.bot_id
   where n.lease_epoch is not null and l.epoch is distinct from n.lease_epoch
   limit 1;
  if v_bot is not null then
    raise exception 'stale lease epoch % for bot % (current %)', v_epoch, v_bot, v_current
      using errcode = 'serialization_failure', constraint = 'bot_leases_fencing';
  end if;
  return null;
end;
$$;
ALTER FUNCTION private.check_lease_epochs() OWNER TO postgres;
CREATE FUNCTION private.console_notify() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  perform pg_notify('tradefleet_console', tg_argv[0]);
  return null;
end;
$$;
ALTER FUNCTION private.console_notify() OWNER TO postgres;
CREATE FUNCTION private.copy_fee_rate() RETURNS numeric
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$ select 0.001::numeric $$;
ALTER FUNCTION private.copy_fee_rate() OWNER TO postgres;
CREATE FUNCTION private.create_history_partition(p_table text, p_at timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_key text := (select h.partition_key from private.history_partitions h where h.table_name = p_table);
  v_step interval := (select h.step from private.history_partitions h where h.table_name = p_table);
  v_lo timestamptz := private.history_step_start(v_step, p_at);
  v_hi timestamptz := case when v_step = interval '1 month'
                           then (v_lo at time zone 'UTC' + v_step) at time zone 'UTC' else v_lo + v_step end;
  v_name text := p_table || '_p' || pg_catalog.to_char(v_lo at time zone 'UTC', 'YYYYMMDD');
  v_default text := p_table || '_default';
  v_waiting boolean;
begin
  if v_key is null then
    raise exception 'create_history_partition: % is not partitioned history', p_table using errcode = '22023';
  end if;
  if pg_catalog.to_regclass(pg_catalog.format('partitions.%I', v_name)) is not null
     or v_lo < coalesce(private.history_kept_end(p_table), '-infinity') then
    return false;
  end if;
  execute pg_catalog.format('select exists (select 1 from partitions.%I where %I >= $1 and %I < $2)',
                            v_default, v_key, v_key)
     into v_waiting using v_lo, v_hi;
  if not v_waiting then
    execute pg_catalog.format('create table partitions.%I partition of public.%I for values from (%L) to (%L)',
                              v_name, p_table, v_lo, v_hi);
  else
    execute pg_catalog.format('create table partitions.%I (like public.%I including defaults including constraints)',
                              v_name, p_table);
    execute pg_catalog.format(
      'with moved as (delete from partitions.%I where %I >= $1 and %I < $2 returning *) '
      'insert into partitions.%I select * from moved', v_default, v_key, v_key, v_name)
      using v_lo, v_hi;
    execute pg_catalog.format('alter table public.%I attach partition partitions.%I for values from (%L) to (%L)',
                              p_table, v_name, v_lo, v_hi);
  end if;
  execute pg_catalog.format('revoke all on table partitions.%I from public, anon, authenticated', v_name);
  if p_table = 'candles' then
    execute pg_catalog.format('grant insert on table partitions.%I to service_role', v_name);
  end if;
  return true;
end;
$_$;
ALTER FUNCTION private.create_history_partition(p_table text, p_at timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION private.create_history_partitions(p_table text, p_until timestamp with time zone) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_at timestamptz;
  v_n integer := 0;
begin
  for v_at in
    select pg_catalog.generate_series(now(), p_until, h.step) from private.history_partitions h where h.table_name = p_table
    union select p_until
  loop
    if private.create_history_partition(p_table, v_at) then
      v_n := v_n + 1;
    end if;
  end loop;
  return v_n;
end;
$$;
ALTER FUNCTION private.create_history_partitions(p_table text, p_until timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION private.credit_account_keep_history() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if exists (select 1 from public.credit_transfers t where t.debit_account_id = old.id)
     or exists (select 1 from public.credit_transfers t where t.credit_account_id = old.id) then
    raise exception 'credit account % has transfers and cannot be deleted', old.id
      using errcode = 'foreign_key_violation', constraint = 'credit_transfers_debit_account_id_fkey',
            detail = 'The ledger keeps every account with history; corrections are new transfers.';
  end if;
  return old;
end;
$$;
ALTER FUNCTION private.credit_account_keep_history() OWNER TO postgres;
CREATE FUNCTION private.credit_apply(p_id uuid, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_pending_id uuid DEFAULT NULL::uuid, p_timeout_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_reference_type text DEFAULT NULL::text, p_reference_id text DEFAULT NULL::text, p_metadata jsonb DEFAULT '{}'::jsonb, p_prelocked boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_existing public.credit_transfers;
  v_hold public.credit_transfers;
  v_debit uuid;
  v_credit uuid;
  v_amount numeric;
  v_phase text;
  v_posted numeric;
  v_pending numeric;
  v_d_early boolean;
  v_c_early boolean;
  v_d_allow_negative boolean;
  v_available numeric;
  v_resolution_id uuid;
  v_resolution_phase text;
  v_done uuid;
begin
  -- The ledger keeps 8 decimals; round once, here, so checks and columns agree.
  p_amount := round(p_amount, 8);
  if p_id is null then return 'id_must_not_be_null'; end if;
  if p_action is null or p_action not in ('transfer', 'hold', 'post', 'void') then
    return 'action_unknown';
  end if;
  if p_action in ('transfer', 'hold') then
    if p_amount is null or p_amount <= 0 then return 'amount_must_be_positive'; end if;
    if p_kind is null or p_kind not in ('grant', 'purchase', 'usage', 'revenue_share', 'payout', 'refund', 'correction') then
      return 'kind_unknown';
    end if;
    if p_debit_account_id is null then return 'debit_account_id_must_not_be_null'; end if;
    if p_credit_account_id is null then return 'credit_account_id_must_not_be_null'; end if;
    if p_debit_account_id = p_credit_account_id then return 'accounts_must_be_different'; end if;
    if p_pending_id is not null then return 'pending_id_must_be_null'; end if;
    select * into v_existing from public.credit_transfers t where t.id = p_id;
    if found then
      return private.credit_compare(v_existing, p_action, p_debit_account_id, p_credit_account_id,
                                    p_amount, p_kind, null, p_reference_type, p_reference_id);
    end if;
    v_debit := p_debit_account_id;
    v_credit := p_credit_account_id;
    v_amount := p_amount;
    v_phase := case p_action when 'hold' then 'pending' else 'posted' end;
    v_posted := case p_action when 'hold' then 0 else p_amount end;
    v_pending := case p_action when 'hold' then p_amount else 0 end;
  else
    if p_pending_id is null then return 'pending_id_must_not_be_null'; end if;
    if p_pending_id = p_id then return 'pending_id_must_be_different'; end if;
    if p_amount is not null and p_amount <= 0 then return 'amount_must_be_positive'; end if;
    select * into v_existing from public.credit_transfers t where t.id = p_id;
    if found then
      return private.credit_compare(v_existing, p_action, null, null, p_amount, null, p_pending_id,
                                    p_reference_type, p_reference_id);
    end if;
    select * into v_hold from public.credit_transfers t where t.id = p_pending_id;
    if not found then return 'pending_transfer_not_found'; end if;
    if v_hold.phase <> 'pending' then return 'pending_transfer_not_pending'; end if;
    if p_debit_account_id is not null and p_debit_account_id <> v_hold.debit_account_id then
      return 'pending_transfer_has_different_debit_account_id';
    end if;
    if p_credit_account_id is not null and p_credit_account_id <> v_hold.credit_account_id then
      return 'pending_transfer_has_different_credit_account_id';
    end if;
    if p_action = 'post' then
      v_amount := coalesce(p_amount, v_hold.amount);
      if v_amount > v_hold.amount then return 'exceeds_pending_transfer_amount'; end if;
      v_posted := v_amount;
    else
      if p_amount is not null and p_amount <> v_hold.amount then
        return 'pending_transfer_has_different_amount';
      end if;
      v_amount := v_hold.amount;
      v_posted := 0;
    end if;
    v_debit := v_hold.debit_account_id;
    v_credit := v_hold.credit_account_id;
    v_phase := case p_action when 'post' then 'post_pending' else 'void_pending' end;
    v_pending := -v_hold.amount;
  end if;
  -- Which accounts to lock now (user-owned) and which last (system); no lock taken yet.
  select a.user_id is not null, a.allow_negative into v_d_early, v_d_allow_negative
    from public.credit_accounts a where a.id = v_debit;
  if not found then return 'debit_account_not_found'; end if;
  select a.user_id is not null into v_c_early from public.credit_accounts a where a.id = v_credit;
  if not found then return 'credit_account_not_found'; end if;
  if p_prelocked or not (v_d_early or v_c_early) then
    v_d_early := true;
    v_c_early := true;
  end if;
  if v_c_early and (not v_d_early or v_credit < v_debit) then
    perform 1 from public.credit_accounts a where a.id = v_credit for no key update;
  end if;
  if v_d_early then
    select a.credits_posted - a.debits_posted - a.debits_pending into v_available
      from public.credit_accounts a where a.id = v_debit for no key update;
  end if;
  if v_c_early and v_d_early and v_credit > v_debit then
    perform 1 from public.credit_accounts a where a.id = v_credit for no key update;
  end if;
  if p_action in ('post', 'void') then
    -- Under the locks: has the hold been resolved (possibly by this very id) meanwhile?
    select t.id, t.phase into v_resolution_id, v_resolution_phase
      from public.credit_transfers t where t.pending_id = p_pending_id;
    if found then
      if v_resolution_id = p_id then
        select * into v_existing from public.credit_transfers t where t.id = p_id;
        return private.credit_compare(v_existing, p_action, null, null, p_amount, null, p_pending_id,
                                      p_reference_type, p_reference_id);
      end if;
      return case v_resolution_phase when 'post_pending' then 'pending_transfer_already_posted'
                                     else 'pending_transfer_already_voided' end;
    end if;
    if p_action = 'post' and v_hold.timeout_at is not null and v_hold.timeout_at <= now() then
      return 'pending_transfer_expired';
    end if;
  elsif v_d_early and not v_d_allow_negative and v_available < v_amount then
    return 'exceeds_credits';
  end if;
  insert into public.credit_transfers (id, debit_account_id, credit_account_id, amount, kind, phase, pending_id,
                                       timeout_at, reference_type, reference_id, metadata)
  values (p_id, v_debit, v_credit, v_amount, coalesce(v_hold.kind, p_kind), v_phase, p_pending_id,
          case p_action when 'hold' then p_timeout_at end,
          coalesce(p_reference_type, v_hold.reference_type), coalesce(p_reference_id, v_hold.reference_id),
          coalesce(p_metadata, '{}'))
  on conflict do nothing
  returning id into v_done;
  if v_done is null then
    -- The same id (or a resolution of the same hold) committed while we waited for locks.
    select * into v_existing from public.credit_transfers t where t.id = p_id;
    if found then
      return private.credit_compare(v_existing, p_action, p_debit_account_id, p_credit_account_id,
                                    p_amount, p_kind, p_pending_id, p_reference_type, p_reference_id);
    end if;
    return 'pending_transfer_already_resolved';
  end if;
  if p_action = 'hold' then
    insert into private.credit_open_holds (transfer_id, timeout_at) values (p_id, p_timeout_at);
  elsif p_action in ('post', 'void') then
    delete from private.credit_open_holds h where h.transfer_id = p_pending_id;
  end if;
  if v_d_early then
    update public.credit_accounts a
       set debits_posted = a.debits_posted + v_posted, debits_pending = a.debits_pending + v_pending
     where a.id = v_debit;
  end if;
  if v_c_early then
    update public.credit_accounts a
       set credits_posted = a.credits_posted + v_posted, credits_pending = a.credits_pending + v_pending
     where a.id = v_credit;
  end if;
  if not v_d_early then
    v_done := null;
    update public.credit_accounts a
       set debits_posted = a.debits_posted + v_posted, debits_pending = a.debits_pending + v_pending
     where a.id = v_debit
       and (a.allow_negative or p_action not in ('transfer', 'hold')
            or a.credits_posted - a.debits_posted - a.debits_pending >= v_amount)
    returning a.id into v_done;
    if v_done is null then return 'exceeds_credits'; end if;
  end if;
  if not v_c_early then
    update public.credit_accounts a
       set credits_posted = a.credits_posted + v_posted, credits_pending = a.credits_pending + v_pending
     where a.id = v_credit;
  end if;
  return 'ok';
end;
$$;
ALTER FUNCTION private.credit_apply(p_id uuid, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_pending_id uuid, p_timeout_at timestamp with time zone, p_reference_type text, p_reference_id text, p_metadata jsonb, p_prelocked boolean) OWNER TO postgres;
CREATE FUNCTION private.credit_apply_or_raise(p_id uuid, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_pending_id uuid DEFAULT NULL::uuid, p_timeout_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_reference_type text DEFAULT NULL::text, p_reference_id text DEFAULT NULL::text, p_metadata jsonb DEFAULT '{}'::jsonb) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_code text;
  v_row public.credit_transfers;
begin
  v_code := private.credit_apply(p_id, p_action, p_debit_account_id, p_credit_account_id, p_amount, p_kind,
                                 p_pending_id, p_timeout_at, p_reference_type, p_reference_id, p_metadata);
  if v_code not in ('ok', 'exists') then
    perform private.credit_raise(v_code, p_id, p_debit_account_id, p_amount);
  end if;
  select * into v_row from public.credit_transfers t where t.id = p_id;
  return v_row;
end;
$$;
ALTER FUNCTION private.credit_apply_or_raise(p_id uuid, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_pending_id uuid, p_timeout_at timestamp with time zone, p_reference_type text, p_reference_id text, p_metadata jsonb) OWNER TO postgres;
CREATE FUNCTION private.credit_apply_usage(p_id uuid, p_action text, p_user_id uuid, p_usage text, p_quantity numeric, p_timeout_at timestamp with time zone, p_reference_type text, p_reference_id text, p_metadata jsonb) RETURNS public.credit_transfers
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v record;
  v_amount numeric;
begin
  if p_quantity is null or p_quantity <= 0 then
    raise exception 'usage quantity must be positive, got %', p_quantity
      using errcode = 'check_violation', constraint = 'credit_usage_quantity_positive';
  end if;
  v := private.credit_usage_price(p_user_id, p_usage);
  if v.account_id is null then
    raise exception 'user % has no credit account', p_user_id
      using errcode = 'foreign_key_violation', constraint = 'credit_transfers_debit_account_id_fkey',
            detail = 'result: debit_account_not_found';
  end if;
  v_amount := round(v.price * p_quantity, 8);
  if v_amount = 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    p_id, p_action, v.account_id, private.credit_system_account('system:usage'), v_amount, 'usage', null,
    p_timeout_at, p_reference_type, p_reference_id,
    coalesce(p_metadata, '{}') || jsonb_build_object('usage', p_usage, 'quantity', p_quantity, 'unit_price', v.price));
end;
$$;
ALTER FUNCTION private.credit_apply_usage(p_id uuid, p_action text, p_user_id uuid, p_usage text, p_quantity numeric, p_timeout_at timestamp with time zone, p_reference_type text, p_reference_id text, p_metadata jsonb) OWNER TO postgres;
CREATE FUNCTION private.credit_compare(e public.credit_transfers, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_pending_id uuid, p_reference_type text, p_reference_id text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  if e.phase <> (case p_action when 'transfer' then 'posted' when 'hold' then 'pending'
                               when 'post' then 'post_pending' when 'void' then 'void_pending' end) then
    return 'exists_with_different_phase';
  end if;
  if p_action in ('post', 'void') then
    if e.pending_id is distinct from p_pending_id then return 'exists_with_different_pending_id'; end if;
  else
    if e.debit_account_id is distinct from p_debit_account_id then return 'exists_with_different_debit_account_id'; end if;
    if e.credit_account_id is distinct from p_credit_account_id then return 'exists_with_different_credit_account_id'; end if;
    if e.kind is distinct from p_kind then return 'exists_with_different_kind'; end if;
  end if;
  if p_amount is not null and e.amount <> p_amount then return 'exists_with_different_amount'; end if;
  if p_reference_type is not null and e.reference_type is distinct from p_reference_type then
    return 'exists_with_different_reference';
  end if;
  if p_reference_id is not null and e.reference_id is distinct from p_reference_id then
    return 'exists_with_different_reference';
  end if;
  return 'exists';
end;
$$;
ALTER FUNCTION private.credit_compare(e public.credit_transfers, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_pending_id uuid, p_reference_type text, p_reference_id text) OWNER TO postgres;
CREATE FUNCTION private.credit_delegate(p_purpose text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if p_purpose is null then
    delete from private.credit_delegations d where d.xact = pg_catalog.pg_current_xact_id();
  else
    insert into private.credit_delegations (xact, purpose) values (pg_catalog.pg_current_xact_id(), p_purpose)
    on conflict (xact) do update set purpose = excluded.purpose;
  end if;
end;
$$;
ALTER FUNCTION private.credit_delegate(p_purpose text) OWNER TO postgres;
CREATE FUNCTION private.credit_invoice_paid() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if new.status = 'paid' and new.credits > 0 and (tg_op = 'INSERT' or old.status is distinct from 'paid') then
    perform private.credit_apply_or_raise(
      md5('credit-purchase:' || new.id::text)::uuid, 'transfer',
      private.credit_system_account('system:purchases'), private.credit_user_account(new.user_id),
      new.credits, 'purchase', null, null, 'invoice', new.id::text,
      jsonb_build_object('amount', new.amount, 'currency', new.currency, 'provider', new.provider));
  end if;
  return null;
end;
$$;
ALTER FUNCTION private.credit_invoice_paid() OWNER TO postgres;
CREATE FUNCTION private.credit_monthly_grant_id(p_subscription_id uuid, p_started_at timestamp with time zone) RETURNS uuid
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select md5('credit-monthly-grant:' || p_subscription_id::text || ':' ||
             (extract(year from age(now(), p_started_at)) * 12 + extract(month from age(now(), p_started_at)))::integer::text)::uuid
$$;
ALTER FUNCTION private.credit_monthly_grant_id(p_subscription_id uuid, p_started_at timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION private.credit_parse_batch(p_transfers jsonb) RETURNS SETOF private.credit_batch_item
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  with e as (
    select (x.n - 1)::integer as idx, x.v, coalesce(x.v ->> 'action', 'transfer') as action
      from jsonb_array_elements(p_transfers) with ordinality as x(v, n)
  ),
  u as (
    select e.*,
           case when e.action = 'usage' then
             (select a.id from public.credit_accounts a
               where a.user_id = (e.v ->> 'user_id')::uuid and a.kind = 'user') end as user_account_id,
           -- The plan's price, chosen as private.current_plan chooses the plan (the current
           -- subscription's, else Free), written out so that it is planned with the batch.
           case when e.action = 'usage' and e.v ->> 'usage' in ('trade', 'backtest_second', 'ai_request') then
             (select (p.features ->> ('credits_per_' || (e.v ->> 'usage')))::numeric
                from public.plans p
               where p.id = coalesce(
                       (select s.plan_id from public.subscriptions s
                         where s.user_id = (e.v ->> 'user_id')::uuid and s.status in ('active', 'trial')
                           and s.expires_at > now()
                         limit 1),
                       (select f.id from public.plans f where f.name = 'Free'))) end as price,
           coalesce((e.v ->> 'quantity')::numeric, 1) as quantity
      from e
  )
  select u.idx,
         (u.v ->> 'id')::uuid,
         u.action,
         case when u.action = 'usage' then u.user_account_id else (u.v ->> 'debit_account_id')::uuid end,
         case when u.action = 'usage' then (select a.id from public.credit_accounts a where a.code = 'system:usage')
              else (u.v ->> 'credit_account_id')::uuid end,
         case when u.action = 'usage' then round(u.price * u.quantity, 8) else (u.v ->> 'amount')::numeric end,
         case when u.action = 'usage' then 'usage' else u.v ->> 'kind' end,
         (u.v ->> 'pending_id')::uuid,
         case when u.v ->> 'timeout_seconds' is not null
              then now() + make_interval(secs => (u.v ->> 'timeout_seconds')::double precision) end,
         u.v ->> 'reference_type',
         u.v ->> 'reference_id',
         case when u.action = 'usage'
              then coalesce(u.v -> 'metadata', '{}') || jsonb_build_object(
                     'usage', u.v ->> 'usage', 'quantity', u.quantity, 'unit_price', u.price)
              else coalesce(u.v -> 'metadata', '{}') end,
         case when u.action = 'usage' then
           case when u.user_account_id is null then 'user_account_not_found'
                when u.price is null then 'price_not_found'
                when u.quantity is null or u.quantity <= 0 then 'quantity_must_be_positive'
                when round(u.price * u.quantity, 8) = 0 then 'free' end
         end
    from u
$$;
ALTER FUNCTION private.credit_parse_batch(p_transfers jsonb) OWNER TO postgres;
CREATE FUNCTION private.credit_raise(p_code text, p_id uuid, p_debit_account_id uuid DEFAULT NULL::uuid, p_amount numeric DEFAULT NULL::numeric) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_errcode text := 'check_violation';
  v_constraint text := '';
  v_message text;
  v_available numeric;
  v_app boolean := not private.is_service();
  v_t text := case when v_app then 'the transfer' else 'transfer ' || coalesce(p_id::text, 'null') end;
begin
  case
    when p_code = 'exceeds_credits' then
      select a.credits_posted - a.debits_posted - a.debits_pending into v_available
        from public.credit_accounts a where a.id = p_debit_account_id;
      v_constraint := 'credit_accounts_debits_must_not_exceed_credits';
      v_message := case when v_app
        then format('insufficient credits: %s available, %s needed', v_available, p_amount)
        else format('insufficient credits: account %s has %s available, transfer %s needs %s',
                    p_debit_account_id, v_available, p_id, p_amount) end;
    when p_code = 'amount_must_be_positive' then
      v_constraint := 'credit_transfers_amount_positive';
      v_message := format('%s: amount must be positive, got %s', v_t, p_amount);
    when p_code = 'kind_unknown' then
      v_constraint := 'credit_transfers_kind_known';
      v_message := format('%s: unknown kind', v_t);
    when p_code = 'accounts_must_be_different' then
      v_constraint := 'credit_transfers_distinct_accounts';
      v_message := format('%s: debit and credit account must differ', v_t);
    when p_code = 'debit_account_not_found' then
      v_errcode := 'foreign_key_violation'; v_constraint := 'credit_transfers_debit_account_id_fkey';
      v_message := case when v_app then 'the debit account does not exist'
                        else format('transfer %s: debit account %s does not exist', p_id, p_debit_account_id) end;
    when p_code = 'credit_account_not_found' then
      v_errcode := 'foreign_key_violation'; v_constraint := 'credit_transfers_credit_account_id_fkey';
      v_message := format('%s: credit account does not exist', v_t);
    when p_code = 'pending_transfer_not_found' then
      v_errcode := 'foreign_key_violation'; v_constraint := 'credit_transfers_pending_id_fkey';
      v_message := format('%s: the hold it resolves does not exist', v_t);
    when p_code = 'pending_transfer_not_pending' then
      v_constraint := 'credit_transfers_resolution_names_hold';
      v_message := format('%s: the transfer it resolves is not a hold', v_t);
    when p_code in ('pending_transfer_already_posted', 'pending_transfer_already_voided', 'pending_transfer_already_resolved') then
      v_errcode := 'unique_violation'; v_constraint := 'credit_transfers_hold_resolves_once';
      v_message := format('%s: the hold was already %s', v_t,
                          case p_code when 'pending_transfer_already_posted' then 'posted'
                                      when 'pending_transfer_already_voided' then 'voided' else 'resolved' end);
    when p_code = 'exceeds_pending_transfer_amount' then
      v_constraint := 'credit_transfers_post_within_hold';
      v_message := format('%s: cannot post %s, more than was held', v_t, p_amount);
    when p_code = 'pending_transfer_expired' then
      v_constraint := 'credit_transfers_hold_not_expired';
      v_message := format('%s: the hold has expired and can no longer be posted', v_t);
    when p_code like 'exists_with_different_%' then
      v_errcode := 'unique_violation'; v_constraint := 'credit_transfers_pkey';
      v_message := format('%s already exists with a different %s', v_t,
                          replace(substr(p_code, length('exists_with_different_') + 1), '_', ' '));
    else
      v_errcode := 'invalid_parameter_value';
      v_message := format('%s rejected: %s', v_t, replace(p_code, '_', ' '));
  end case;
  raise exception using message = v_message, errcode = v_errcode, constraint = v_constraint,
                        detail = 'result: ' || p_code;
end;
$$;
ALTER FUNCTION private.credit_raise(p_code text, p_id uuid, p_debit_account_id uuid, p_amount numeric) OWNER TO postgres;
CREATE FUNCTION private.credit_require_service() RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if private.is_service() then
    return;
  end if;
  if exists (select 1 from private.credit_delegations d where d.xact = pg_catalog.pg_current_xact_id_if_assigned()) then
    return;
  end if;
  raise exception 'only the service role can move credits' using errcode = 'insufficient_privilege';
end;
$$;
ALTER FUNCTION private.credit_require_service() OWNER TO postgres;
CREATE FUNCTION private.credit_system_account(p_code text) RETURNS uuid
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return (select a.id from public.credit_accounts a where a.code = p_code);
end;
$$;
ALTER FUNCTION private.credit_system_account(p_code text) OWNER TO postgres;
CREATE FUNCTION private.credit_usage_price(p_user_id uuid, p_usage text, OUT account_id uuid, OUT price numeric, OUT plan text) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  if p_usage is null or p_usage not in ('trade', 'backtest_second', 'ai_request') then
    raise exception 'unknown usage %; expected trade, backtest_second or ai_request', p_usage
      using errcode = 'invalid_parameter_value';
  end if;
  select a.id into account_id from public.credit_accounts a where a.user_id = p_user_id and a.kind = 'user';
  select (p.features ->> ('credits_per_' || p_usage))::numeric, p.name into price, plan
    from public.plans p
   where p.id = coalesce(
           (select s.plan_id from public.subscriptions s
             where s.user_id = p_user_id and s.status in ('active', 'trial') and s.expires_at > now()
             limit 1),
           (select f.id from public.plans f where f.name = 'Free'));
  if price is null then
    raise exception 'plan % has no price for %', plan, p_usage
      using errcode = 'invalid_parameter_value', hint = 'set plans.features.credits_per_' || p_usage;
  end if;
end;
$$;
ALTER FUNCTION private.credit_usage_price(p_user_id uuid, p_usage text, OUT account_id uuid, OUT price numeric, OUT plan text) OWNER TO postgres;
CREATE FUNCTION private.credit_user_account(p_user_id uuid, p_kind text DEFAULT 'user'::text) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_id uuid;
begin
  select a.id into v_id from public.credit_accounts a where a.user_id = p_user_id and a.kind = p_kind;
  if v_id is null then
    insert into public.credit_accounts (user_id, kind) values (p_user_id, p_kind)
    on conflict (user_id, kind) do nothing;
    select a.id into v_id from public.credit_accounts a where a.user_id = p_user_id and a.kind = p_kind;
  end if;
  return v_id;
end;
$$;
ALTER FUNCTION private.credit_user_account(p_user_id uuid, p_kind text) OWNER TO postgres;
CREATE FUNCTION private.credit_user_kind(p_kind text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO ''
    AS $$
begin
  if p_kind is null or p_kind not in ('user', 'provider_earnings') then
    raise exception 'a user''s credit accounts are of kind user or provider_earnings, not %',
      coalesce(quote_literal(left(p_kind, 40)), 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  return p_kind;
end;
$$;
ALTER FUNCTION private.credit_user_kind(p_kind text) OWNER TO postgres;
CREATE TABLE public.plans (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    description text,
    price_monthly numeric(12,2) NOT NULL,
    price_yearly numeric(12,2),
    currency text DEFAULT 'USD'::text NOT NULL,
    features jsonb DEFAULT '{}'::jsonb NOT NULL,
    max_bots integer NOT NULL,
    max_strategies integer NOT NULL,
    ai_requests_per_month integer,
    backtest_minutes_per_month integer DEFAULT 0 NOT NULL,
    priority_support boolean DEFAULT false NOT NULL,
    custom_strategies boolean DEFAULT false NOT NULL,
    api_access boolean DEFAULT false NOT NULL,
    live_trading boolean DEFAULT false NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    sort_order integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    api_credits_per_1000_calls numeric(20,8),
    trial_days integer DEFAULT 0 NOT NULL,
    CONSTRAINT plans_ai_requests_per_month_check CHECK ((ai_requests_per_month >= 0)),
    CONSTRAINT plans_api_credits_per_1000_calls_not_negative CHECK ((api_credits_per_1000_calls >= (0)::numeric)),
    CONSTRAINT plans_backtest_minutes_per_month_check CHECK ((backtest_minutes_per_month >= 0)),
    CONSTRAINT plans_max_bots_not_negative CHECK ((max_bots >= 0)),
    CONSTRAINT plans_max_strategies_not_negative CHECK ((max_strategies >= 0)),
    CONSTRAINT plans_price_monthly_finite CHECK ((price_monthly <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT plans_price_monthly_not_negative CHECK ((price_monthly >= (0)::numeric)),
    CONSTRAINT plans_price_yearly_finite CHECK ((price_yearly <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT plans_price_yearly_not_negative CHECK ((price_yearly >= (0)::numeric)),
    CONSTRAINT plans_trial_days_range CHECK (((trial_days >= 0) AND (trial_days <= 90)))
);
ALTER TABLE public.plans OWNER TO postgres;
CREATE FUNCTION private.current_plan(p_user_id uuid) RETURNS public.plans
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select p.*
  from public.plans p
  where p.id = coalesce(
    (select s.plan_id from public.subscriptions s
      where s.user_id = p_user_id and s.status in ('active', 'trial') and s.expires_at > now()
      limit 1),
    (select f.id from public.plans f where f.name = 'Free')
  )
$$;
ALTER FUNCTION private.current_plan(p_user_id uuid) OWNER TO postgres;
CREATE FUNCTION private.enqueue_ai_analysis() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if new.status = 'queued' then
    perform public.enqueue_job('ai.analyze', jsonb_build_object('analysis_id', new.id), 'default', null, 0, 3,
                               'ai.analyze:' || new.id::text);
  end if;
  return null;
end;
$$;
ALTER FUNCTION private.enqueue_ai_analysis() OWNER TO postgres;
CREATE FUNCTION private.enqueue_backtest_run() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform public.enqueue_job('backtest.run', jsonb_build_object('run_id', new.id), 'default', null, 0, 3,
                             'backtest.run:' || new.id::text);
  return null;
end;
$$;
ALTER FUNCTION private.enqueue_backtest_run() OWNER TO postgres;
CREATE FUNCTION private.enqueue_data_request() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform public.enqueue_job('data.download', jsonb_build_object('request_id', new.id), 'default', null, 0, 3,
                             'data.download:' || new.id::text);
  return null;
end;
$$;
ALTER FUNCTION private.enqueue_data_request() OWNER TO postgres;
CREATE FUNCTION private.fleet_forget_worker(p_worker_id uuid, p_reason text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_queues text[];
begin
  with moved as (
    update public.jobs j
    set status = case when j.attempts < j.max_attempts then 'queued' else 'dead' end,
        run_at = now(),
        finished_at = case when j.attempts < j.max_attempts then null else now() end,
        last_error = p_reason || ' during attempt ' || j.attempts,
        locked_by = null, locked_until = null, updated_at = now()
    where j.locked_by = p_worker_id and j.status = 'running'
    returning j.queue
  )
  select array_agg(distinct moved.queue) into v_queues from moved;
  if v_queues is not null then
    perform pg_notify('tradefleet_jobs', q) from unnest(v_queues) q;
  end if;
  perform 1 from public.bot_leases l where l.worker_id = p_worker_id order by l.bot_id for update;
  update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
  where l.worker_id = p_worker_id;
end;
$$;
ALTER FUNCTION private.fleet_forget_worker(p_worker_id uuid, p_reason text) OWNER TO postgres;
CREATE FUNCTION private.fold_history_partitions(p_table text, p_before timestamp with time zone, p_cutoff timestamp with time zone) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_key text;
  v_kept text;
  v_parent regclass := pg_catalog.format('public.%I', p_table)::regclass;
  v_name text := p_table || '_kept';
  v_exists boolean;
  v_hi timestamptz;
  v_part record;
  v_n integer := 0;
begin
  select h.partition_key, h.kept into v_key, v_kept from private.history_partitions h where h.table_name = p_table;
  if v_kept is null then
    raise exception 'fold_history_partitions: % keeps no rows of old partitions', p_table using errcode = '22023';
  end if;
  v_exists := private.history_kept_end(p_table) is not null;
  select pg_catalog.max(r.hi) into v_hi
    from pg_catalog.pg_inherits i cross join lateral private.history_partition_range(i.inhrelid::regclass) r
   where i.inhparent = v_parent and r.hi is not null and r.hi <= p_before;
  if v_hi is null then
    if v_exists then
      return 0;
    end if;
    -- No week to fold yet: `_kept` starts empty, up to the first week.
    select pg_catalog.min(r.lo) into v_hi
      from pg_catalog.pg_inherits i cross join lateral private.history_partition_range(i.inhrelid::regclass) r
     where i.inhparent = v_parent and r.lo is not null;
    if v_hi is null then
      return 0;
    end if;
  end if;
  if v_exists then
    execute pg_catalog.format('alter table public.%I detach partition partitions.%I', p_table, v_name);
    execute pg_catalog.format('delete from partitions.%I t where not (%s)', v_name, v_kept) using p_cutoff;
  else
    execute pg_catalog.format('create table partitions.%I (like public.%I including defaults including constraints)',
                              v_name, p_table);
  end if;
  for v_part in
    select c.relname
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_class c on c.oid = i.inhrelid
      cross join lateral private.history_partition_range(c.oid::regclass) r
     where i.inhparent = v_parent and r.hi is not null and r.hi <= v_hi
     order by r.hi
  loop
    execute pg_catalog.format('alter table public.%I detach partition partitions.%I', p_table, v_part.relname);
    execute pg_catalog.format('insert into partitions.%I select * from partitions.%I t where %s',
                              v_name, v_part.relname, v_kept) using p_cutoff;
    execute pg_catalog.format('drop table partitions.%I', v_part.relname);
    v_n := v_n + 1;
  end loop;
  -- Rows of weeks that had no partition wait in the default one; those in the new range move.
  execute pg_catalog.format(
    'with moved as (delete from partitions.%I t where t.%I < $2 returning *) '
    'insert into partitions.%I select * from moved t where %s',
    p_table || '_default', v_key, v_name, v_kept) using p_cutoff, v_hi;
  execute pg_catalog.format('alter table public.%I attach partition partitions.%I for values from (minvalue) to (%L)',
                            p_table, v_name, v_hi);
  execute pg_catalog.format('revoke all on table partitions.%I from public, anon, authenticated', v_name);
  execute pg_catalog.format('grant select, update, delete on table partitions.%I to service_role', v_name);
  return v_n;
end;
$_$;
ALTER FUNCTION private.fold_history_partitions(p_table text, p_before timestamp with time zone, p_cutoff timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION private.forbid_transfer_changes() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  raise exception 'credit transfers are immutable; correct a mistake with a new transfer'
    using errcode = 'restrict_violation';
end;
$$;
ALTER FUNCTION private.forbid_transfer_changes() OWNER TO postgres;
CREATE FUNCTION private.guard_backtest_run_changes() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() and new.status <> old.status then
    if new.status <> 'cancelled' then
      raise exception 'apps may only cancel a backtest run'
        using errcode = 'check_violation', constraint = 'backtest_runs_status_is_fleet_owned';
    end if;
    if old.status not in ('queued', 'running') then
      raise exception 'a % backtest run can no longer be cancelled', old.status
        using errcode = 'check_violation', constraint = 'backtest_runs_cancel_unfinished';
    end if;
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.guard_backtest_run_changes() OWNER TO postgres;
CREATE FUNCTION private.guard_bot_changes() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if tg_op = 'INSERT' then
    new.current_balance := new.initial_balance;
  end if;
  if not private.is_service() then
    if new.status = 'error' and (tg_op = 'INSERT' or old.status <> 'error') then
      raise exception 'only the fleet sets a bot to error'
        using errcode = 'check_violation', constraint = 'bots_status_error_is_fleet_owned';
    end if;
    -- Going live needs a session that passed two-factor authentication.
    if not new.is_paper_trade
       and (tg_op = 'INSERT' or old.is_paper_trade or (new.status = 'running' and old.status <> 'running'))
       and coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2' then
      raise exception 'live trading needs a session with two-factor authentication (aal2)'
        using errcode = 'insufficient_privilege', constraint = 'bots_live_requires_aal2';
    end if;
    if tg_op = 'UPDATE' and new.status = 'running' and old.status = 'error' then
      new.error_message := null;
    end if;
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.guard_bot_changes() OWNER TO postgres;
CREATE FUNCTION private.guard_organisation_bot_changes() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if new.organisation_id is null or private.is_service() then
    return new;
  end if;
  if new.strategy_id is distinct from old.strategy_id and new.strategy_id is not null
     and not exists (select 1 from public.strategies s where s.id = new.strategy_id) then
    raise exception 'no strategy you can use with id %', new.strategy_id
      using errcode = 'insufficient_privilege', constraint = 'bots_organisation_strategy_visible';
  end if;
  if new.exchange_credential_id is distinct from old.exchange_credential_id and new.exchange_credential_id is not null
     and not exists (select 1 from public.exchange_credentials c
                      where c.id = new.exchange_credential_id and c.user_id = new.user_id
                        and (c.user_id = (select auth.uid()) or new.user_id is distinct from old.user_id)) then
    raise exception 'an organisation bot trades with an exchange key of its paying owner, set by them'
      using errcode = 'insufficient_privilege', constraint = 'bots_organisation_credential_owner';
  end if;
  if private.organisation_role(new.organisation_id) = 'member'
     and (new.strategy_id, new.exchange_credential_id, new.name, new.exchange, new.trading_pair, new.timeframe,
          new.strategy, new.parameters, new.max_open_trades, new.stake_amount, new.stop_loss, new.take_profit,
          new.risk_percentage, new.daily_loss_limit, new.leverage, new.allow_short, new.is_paper_trade, new.metadata)
         is distinct from
         (old.strategy_id, old.exchange_credential_id, old.name, old.exchange, old.trading_pair, old.timeframe,
          old.strategy, old.parameters, old.max_open_trades, old.stake_amount, old.stop_loss, old.take_profit,
          old.risk_percentage, old.daily_loss_limit, old.leverage, old.allow_short, old.is_paper_trade, old.metadata)
  then
    raise exception 'a member of the organisation starts, pauses and stops its bots; changing them needs admin'
      using errcode = 'insufficient_privilege', constraint = 'bots_organisation_member_status_only';
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.guard_organisation_bot_changes() OWNER TO postgres;
CREATE FUNCTION private.handle_new_user() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_free uuid;
begin
  insert into public.profiles (id, email, full_name, avatar_url, role)
  values (
    new.id,
    new.email,
    new.raw_user_meta_data ->> 'full_name',
    new.raw_user_meta_data ->> 'avatar_url',
    case when new.raw_app_meta_data ->> 'role' in ('user', 'provider', 'admin')
         then new.raw_app_meta_data ->> 'role' else 'user' end
  );
  insert into public.credit_accounts (user_id, kind) values (new.id, 'user');
  select id into v_free from public.plans where name = 'Free';
  if v_free is not null then
    insert into public.subscriptions (user_id, plan_id, status, started_at, expires_at, auto_renew)
    values (new.id, v_free, 'active', now(), 'infinity', false);
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.handle_new_user() OWNER TO postgres;
CREATE FUNCTION private.has_subscribed(p_strategy_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select exists (
    select 1 from public.strategy_subscriptions ss
     where ss.strategy_id = p_strategy_id and ss.subscriber_id = auth.uid()
  )
$$;
ALTER FUNCTION private.has_subscribed(p_strategy_id uuid) OWNER TO postgres;
CREATE FUNCTION private.history_kept_end(p_table text) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $_$
  select (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), $r$TO \('([^']+)'\)$r$))[1]::timestamptz
    from pg_catalog.pg_inherits i join pg_catalog.pg_class c on c.oid = i.inhrelid
   where i.inhparent = pg_catalog.format('public.%I', p_table)::regclass
     and i.inhrelid = pg_catalog.to_regclass(pg_catalog.format('partitions.%I', p_table || '_kept'));
$_$;
ALTER FUNCTION private.history_kept_end(p_table text) OWNER TO postgres;
CREATE FUNCTION private.history_partition_range(p_partition regclass, OUT lo timestamp with time zone, OUT hi timestamp with time zone) RETURNS record
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $_$
declare
  v_bound text := pg_catalog.pg_get_expr(
    (select c.relpartbound from pg_catalog.pg_class c where c.oid = p_partition), p_partition);
  v_parts text[];
begin
  v_parts := pg_catalog.regexp_match(v_bound, $r$FROM \('([^']+)'\) TO \('([^']+)'\)$r$);
  if v_parts is not null then
    lo := v_parts[1]::timestamptz;
    hi := v_parts[2]::timestamptz;
  end if;
end;
$_$;
ALTER FUNCTION private.history_partition_range(p_partition regclass, OUT lo timestamp with time zone, OUT hi timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION private.history_step_start(p_step interval, p_at timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select case when p_step = interval '1 month'
              then pg_catalog.date_trunc('month', p_at, 'UTC')
              else pg_catalog.date_bin(p_step, p_at, timestamptz '2000-01-03 00:00:00+00') end;
$$;
ALTER FUNCTION private.history_step_start(p_step interval, p_at timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION private.holdings_aggregate_pending(p_user_ids uuid[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_users uuid[];
begin
  -- Waits for syncs that are between their writes and their commit (they hold the row).
  with locked as (
    select p.user_id from private.holdings_pending_aggregates p
     where p.user_id = any (p_user_ids)
     order by p.user_id
       for update
  ), gone as (
    delete from private.holdings_pending_aggregates p using locked l where p.user_id = l.user_id
    returning p.user_id
  )
  select array_agg(g.user_id order by g.user_id) into v_users from gone g;
  if v_users is null then
    return 0;
  end if;
  return private.holdings_refresh_aggregates(v_users);
end;
$$;
ALTER FUNCTION private.holdings_aggregate_pending(p_user_ids uuid[]) OWNER TO postgres;
CREATE FUNCTION private.holdings_apply_positions(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, OUT applied boolean, OUT upserted integer, OUT removed integer) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_user_id uuid;
  v_as_of timestamptz;
begin
  select a.user_id, a.provider_as_of into v_user_id, v_as_of
    from public.brokerage_accounts a where a.id = p_account_id for update;
  if not found then
    raise exception 'unknown brokerage account %', p_account_id using errcode = 'no_data_found';
  end if;
  applied := false; upserted := 0; removed := 0;
  if v_as_of is not null and v_as_of > p_as_of then
    return;
  end if;
  with incoming as (
    select p.symbol,
           max(p.description) as description,
           max(p.instrument_type) as instrument_type,
           sum(p.units) as units,
           max(p.price) as price,
           sum(p.units * p.average_cost) filter (where p.average_cost is not null)
             / nullif(sum(p.units) filter (where p.average_cost is not null), 0) as average_cost,
           coalesce(max(p.currency), 'USD') as currency
      from jsonb_to_recordset(p_positions)
           as p(symbol text, description text, instrument_type text, units numeric, price numeric,
                average_cost numeric, currency text)
     where p.symbol is not null and p.units is not null and p.units <> 0
     group by p.symbol
  ), written as (
    insert into public.brokerage_positions as bp
      (account_id, user_id, symbol, description, instrument_type, units, price, average_cost, currency, provider_as_of)
    select p_account_id, v_user_id, i.symbol, i.description, i.instrument_type, i.units, i.price, i.average_cost,
           i.currency, p_as_of
      from incoming i
    on conflict (account_id, symbol) do update
       set description = excluded.description, instrument_type = excluded.instrument_type, units = excluded.units,
           price = excluded.price, average_cost = excluded.average_cost, currency = excluded.currency,
           provider_as_of = excluded.provider_as_of
     where bp.provider_as_of <= excluded.provider_as_of
    returning 1
  )
  select count(*) into upserted from written;
  delete from public.brokerage_positions bp
   where bp.account_id = p_account_id
     and bp.symbol not in (select p.symbol from jsonb_to_recordset(p_positions) as p(symbol text, units numeric)
                            where p.symbol is not null and p.units is not null and p.units <> 0);
  get diagnostics removed = row_count;
  update public.brokerage_accounts
     set provider_as_of = p_as_of, last_synced_at = now(), sync_error = null
   where id = p_account_id;
  applied := true;
end;
$$;
ALTER FUNCTION private.holdings_apply_positions(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, OUT applied boolean, OUT upserted integer, OUT removed integer) OWNER TO postgres;
CREATE FUNCTION private.holdings_apply_prices(p_prices jsonb) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_changed integer;
begin
  insert into public.symbol_prices as sp (symbol, price, previous_close, currency, source, as_of, updated_at)
  select p.symbol, p.price, p.previous_close, coalesce(p.currency, 'USD'), p.source, p.as_of, now()
    from jsonb_to_recordset(p_prices)
         as p(symbol text, price numeric, previous_close numeric, currency text, source text, as_of timestamptz)
   where p.symbol is not null and p.price > 0
  on conflict (symbol) do update
     set price = excluded.price, previous_close = coalesce(excluded.previous_close, sp.previous_close),
         currency = excluded.currency, source = excluded.source, as_of = excluded.as_of, updated_at = now()
   where sp.as_of <= excluded.as_of;
  update public.aggregated_holdings h
     set last_price = sp.price,
         market_value = h.total_units * sp.price,
         unrealized_pnl = h.total_units * (sp.price - h.average_cost),
         updated_at = now()
    from public.symbol_prices sp
   where sp.symbol = h.symbol
     and sp.symbol in (select p.symbol from jsonb_to_recordset(p_prices) as p(symbol text))
     and h.last_price is distinct from sp.price;
  get diagnostics v_changed = row_count;
  return v_changed;
end;
$$;
ALTER FUNCTION private.holdings_apply_prices(p_prices jsonb) OWNER TO postgres;
CREATE FUNCTION private.holdings_connection_event(p_provider text, p_provider_connection_id text, p_status text, p_reason text, p_occurred_at timestamp with time zone, OUT id uuid, OUT user_id uuid, OUT applied boolean) RETURNS SETOF record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_conn public.brokerage_connections;
begin
  if p_status is null or p_status not in ('active', 'broken', 'deleted') then
    raise exception 'unknown connection status %', p_status using errcode = 'invalid_parameter_value';
  end if;
  for v_conn in select * from public.brokerage_connections c
                 where c.provider = p_provider and c.provider_connection_id = p_provider_connection_id
                 for update loop
    id := v_conn.id;
    user_id := v_conn.user_id;
    applied := v_conn.status <> 'deleted'
               and (p_status = 'deleted' or p_occurred_at is null or v_conn.status_event_at is null
                    or p_occurred_at >= v_conn.status_event_at);
    if applied then
      update public.brokerage_connections c
         set status = p_status,
             status_reason = case when p_status = 'active' then null else p_reason end,
             status_event_at = greatest(c.status_event_at, p_occurred_at)
       where c.id = v_conn.id;
      if p_status = 'deleted' then
        delete from public.brokerage_accounts a where a.connection_id = v_conn.id;
      end if;
    end if;
    return next;
  end loop;
end;
$$;
ALTER FUNCTION private.holdings_connection_event(p_provider text, p_provider_connection_id text, p_status text, p_reason text, p_occurred_at timestamp with time zone, OUT id uuid, OUT user_id uuid, OUT applied boolean) OWNER TO postgres;
CREATE FUNCTION private.holdings_enqueue_snaptrade_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_kind text;
begin
  v_kind := case new.event_type
    when 'CONNECTION_ADDED' then 'holdings.connection_added'
    when 'CONNECTION_UPDATED' then 'holdings.connection_added'
    when 'CONNECTION_FIXED' then 'holdings.connection_added'
    when 'ACCOUNT_HOLDINGS_UPDATED' then 'holdings.sync_account'
    when 'CONNECTION_BROKEN' then 'holdings.connection_status'
    when 'CONNECTION_DELETED' then 'holdings.connection_status'
    else null end;
  if v_kind is null then
    update public.webhook_events set status = 'ignored', processed_at = now() where id = new.id;
    return null;
  end if;
  insert into public.jobs (queue, kind, payload, idempotency_key)
  values ('default', v_kind,
          jsonb_build_object(
            'webhook_event_id', new.id,
            'event_type', new.event_type,
            'provider_user_id', new.payload ->> 'userId',
            'provider_account_id', new.payload ->> 'accountId',
            'provider_connection_id', coalesce(new.payload ->> 'connectionId', new.payload ->> 'brokerageAuthorizationId'),
            'occurred_at', new.occurred_at),
          'snaptrade-webhook:' || new.event_id)
  on conflict (idempotency_key) do nothing;
  return null;
end;
$$;
ALTER FUNCTION private.holdings_enqueue_snaptrade_event() OWNER TO postgres;
CREATE FUNCTION private.holdings_enqueue_sync_run() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  insert into public.jobs (queue, kind, payload, idempotency_key)
  values ('default', 'holdings.full_sync', jsonb_build_object('sync_run_id', new.id), 'holdings.full_sync:' || new.id)
  on conflict (idempotency_key) do nothing;
  return null;
end;
$$;
ALTER FUNCTION private.holdings_enqueue_sync_run() OWNER TO postgres;
CREATE FUNCTION private.holdings_ensure_connection(p_provider text, p_provider_user_id text, p_provider_connection_id text, p_brokerage_name text DEFAULT NULL::text) RETURNS uuid
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_id uuid;
  v_status text;
  v_login record;
begin
  select c.id, c.status into v_id, v_status
    from public.brokerage_connections c
   where c.provider = p_provider and c.provider_connection_id = p_provider_connection_id
   for update;
  if found then
    if v_status = 'deleted' then
      return null;
    end if;
    update public.brokerage_connections
       set status = case when status = 'pending' then 'active' else status end,
           brokerage_name = coalesce(p_brokerage_name, brokerage_name)
     where id = v_id;
    return v_id;
  end if;
  update public.brokerage_connections c
     set provider_connection_id = p_provider_connection_id, status = 'active',
         brokerage_name = coalesce(p_brokerage_name, c.brokerage_name)
   where c.id = (select p.id from public.brokerage_connections p
                  where p.provider = p_provider and p.provider_user_id = p_provider_user_id
                    and p.provider_connection_id is null
                  order by p.created_at limit 1 for update skip locked)
  returning c.id into v_id;
  if v_id is not null then
    return v_id;
  end if;
  select c.user_id, c.sealed_user_secret into v_login
    from public.brokerage_connections c
   where c.provider = p_provider and c.provider_user_id = p_provider_user_id and c.sealed_user_secret is not null
   order by c.created_at desc limit 1;
  if not found then
    raise exception '% user % is not linked to any Tradefleet user', p_provider, p_provider_user_id
      using errcode = 'no_data_found';
  end if;
  insert into public.brokerage_connections as c
    (user_id, provider, provider_user_id, provider_connection_id, sealed_user_secret, brokerage_name, status)
  values (v_login.user_id, p_provider, p_provider_user_id, p_provider_connection_id, v_login.sealed_user_secret,
          p_brokerage_name, 'active')
  on conflict (provider, provider_connection_id) do update set brokerage_name = coalesce(excluded.brokerage_name, c.brokerage_name)
  returning c.id into v_id;
  return v_id;
end;
$$;
ALTER FUNCTION private.holdings_ensure_connection(p_provider text, p_provider_user_id text, p_provider_connection_id text, p_brokerage_name text) OWNER TO postgres;
CREATE FUNCTION private.holdings_finish_account_sync(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, p_webhook_event_id uuid DEFAULT NULL::uuid, p_duration_ms integer DEFAULT NULL::integer, OUT applied boolean, OUT upserted integer, OUT removed integer) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_user_id uuid;
begin
  select w.applied, w.upserted, w.removed, w.user_id into applied, upserted, removed, v_user_id
    from private.holdings_write_account_sync(p_account_id, p_as_of, p_positions, p_webhook_event_id,
                                             p_duration_ms) w;
  -- Last: the pending row stays locked only until this transaction commits.
  if applied then
    perform private.holdings_request_aggregate(v_user_id);
  end if;
end;
$$;
ALTER FUNCTION private.holdings_finish_account_sync(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, p_webhook_event_id uuid, p_duration_ms integer, OUT applied boolean, OUT upserted integer, OUT removed integer) OWNER TO postgres;
CREATE FUNCTION private.holdings_finish_account_syncs(p_items jsonb) RETURNS TABLE(idx integer, applied boolean, upserted integer, removed integer, error text)
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_done jsonb;
  v_item record;
  v_user_id uuid;
  v_users uuid[] := '{}'::uuid[];
begin
  begin
    select coalesce(jsonb_agg(to_jsonb(w) order by w.idx), '[]'::jsonb) into v_done
      from private.holdings_write_account_syncs(p_items) w;
  exception when others then
    v_done := null;  -- rolled back to here: written account by account below
  end;
  if v_done is not null then
    select coalesce(array_agg(d.user_id) filter (where d.applied), '{}'::uuid[]) into v_users
      from jsonb_to_recordset(v_done) as d(applied boolean, user_id uuid);
    perform private.holdings_request_aggregates(v_users);
    return query
      select d.idx, d.applied, d.upserted, d.removed, null::text
        from jsonb_to_recordset(v_done) as d(idx integer, applied boolean, upserted integer, removed integer);
    return;
  end if;
  -- Account rows are locked in id order, so concurrent batches never wait on each other in a cycle.
  for v_item in
    select (i.ord - 1)::integer as idx, i.value as item
      from jsonb_array_elements(p_items) with ordinality as i(value, ord)
     order by (i.value ->> 'account_id')::uuid, i.ord
  loop
    idx := v_item.idx; applied := null; upserted := null; removed := null; error := null;
    begin
      select w.applied, w.upserted, w.removed, w.user_id into applied, upserted, removed, v_user_id
        from private.holdings_write_account_sync(
               (v_item.item ->> 'account_id')::uuid, (v_item.item ->> 'as_of')::timestamptz,
               v_item.item -> 'positions', (v_item.item ->> 'webhook_event_id')::uuid,
               (v_item.item ->> 'duration_ms')::integer) w;
      if applied then
        v_users := v_users || v_user_id;
      end if;
    exception when others then
      error := sqlerrm;
    end;
    return next;
  end loop;
  perform private.holdings_request_aggregates(v_users);
end;
$$;
ALTER FUNCTION private.holdings_finish_account_syncs(p_items jsonb) OWNER TO postgres;
CREATE FUNCTION private.holdings_prices_from_candles() RETURNS integer
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  select private.holdings_apply_prices(coalesce(jsonb_agg(jsonb_build_object(
           'symbol', c.symbol, 'price', c.close, 'currency', split_part(c.symbol, '/', 2),
           'source', 'candles:' || c.exchange, 'as_of', c.open_time)), '[]'))
    from (select distinct on (m.symbol) m.symbol, m.close, m.exchange, m.open_time
            from public.market_latest_candles m
           where m.symbol in (select b.trading_pair from public.bots b where b.status = 'running')
           order by m.symbol, m.open_time desc) c
$$;
ALTER FUNCTION private.holdings_prices_from_candles() OWNER TO postgres;
CREATE FUNCTION private.holdings_refresh_aggregates(p_user_ids uuid[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_changed integer;
  v_removed integer;
begin
  perform pg_advisory_xact_lock(hashtextextended('holdings_aggregate:' || u::text, 0))
     from (select distinct unnest(p_user_ids) as u order by 1) users;
  -- New statement, new snapshot (read committed): everything committed before the lock.
  with per_symbol as (
    select bp.user_id, bp.symbol,
           min(bp.currency) as currency,
           sum(bp.units) as total_units,
           coalesce(max(sp.price), max(bp.price)) as last_price,
           sum(bp.units * bp.average_cost) filter (where bp.average_cost is not null)
             / nullif(sum(bp.units) filter (where bp.average_cost is not null), 0) as average_cost,
           array_agg(distinct bp.account_id order by bp.account_id) as account_ids
      from public.brokerage_positions bp
      join public.brokerage_accounts a on a.id = bp.account_id
      join public.brokerage_connections c on c.id = a.connection_id
      left join public.symbol_prices sp on sp.symbol = bp.symbol
     where bp.user_id = any (p_user_ids) and c.status <> 'deleted'
     group by bp.user_id, bp.symbol
  ), valued as (
    select s.*, s.total_units * s.last_price as market_value,
           s.total_units * (s.last_price - s.average_cost) as unrealized_pnl
      from per_symbol s
     where s.total_units <> 0
  ), written as (
    insert into public.aggregated_holdings as h
      (user_id, symbol, currency, total_units, market_value, average_cost, unrealized_pnl, account_ids,
       account_count, last_price, updated_at)
    select v.user_id, v.symbol, v.currency, v.total_units, v.market_value, v.average_cost, v.unrealized_pnl,
           v.account_ids, cardinality(v.account_ids), v.last_price, now()
      from valued v
    on conflict (user_id, symbol) do update
       set currency = excluded.currency, total_units = excluded.total_units, market_value = excluded.market_value,
           average_cost = excluded.average_cost, unrealized_pnl = excluded.unrealized_pnl,
           account_ids = excluded.account_ids, account_count = excluded.account_count,
           last_price = excluded.last_price, updated_at = now()
     where (h.currency, h.total_units, h.market_value, h.average_cost, h.unrealized_pnl, h.account_ids, h.last_price)
           is distinct from
           (excluded.currency, excluded.total_units, excluded.market_value, excluded.average_cost,
            excluded.unrealized_pnl, excluded.account_ids, excluded.last_price)
    returning 1
  )
  select count(*) into v_changed from written;
  delete from public.aggregated_holdings h
   where h.user_id = any (p_user_ids)
     and not exists (
       select 1 from public.brokerage_positions bp
         join public.brokerage_accounts a on a.id = bp.account_id
         join public.brokerage_connections c on c.id = a.connection_id
        where bp.user_id = h.user_id and bp.symbol = h.symbol and c.status <> 'deleted');
  get diagnostics v_removed = row_count;
  return v_changed + v_removed;
end;
$$;
ALTER FUNCTION private.holdings_refresh_aggregates(p_user_ids uuid[]) OWNER TO postgres;
CREATE FUNCTION private.holdings_request_aggregate(p_user_id uuid) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_job_id bigint;
begin
  insert into private.holdings_pending_aggregates as p (user_id) values (p_user_id)
  on conflict (user_id) do update set requested_at = now()
  returning p.job_id into v_job_id;
  if v_job_id is null
     or not exists (select 1 from public.jobs j where j.id = v_job_id and j.status in ('queued', 'running')) then
    -- A new burst, or its job died (out of attempts) or was pruned: a new job.
    v_job_id := public.enqueue_job('holdings.aggregate', jsonb_build_object('user_id', p_user_id));
    update private.holdings_pending_aggregates set job_id = v_job_id where user_id = p_user_id;
  end if;
  return v_job_id;
end;
$$;
ALTER FUNCTION private.holdings_request_aggregate(p_user_id uuid) OWNER TO postgres;
CREATE FUNCTION private.holdings_request_aggregates(p_user_ids uuid[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_users uuid[];
  v_held uuid[];
  v_user_id uuid;
  v_new uuid[];
begin
  select array_agg(distinct u order by u) into v_users from unnest(p_user_ids) u where u is not null;
  if v_users is null then
    return;
  end if;
  -- Every existing row first, in user order (the order the job locks them in): the job's
  -- delete waits for this transaction; other syncs' key-share locks do not.
  select coalesce(array_agg(h.user_id order by h.user_id), '{}'::uuid[]) into v_held
    from (select p.user_id, p.job_id from private.holdings_pending_aggregates p
           where p.user_id = any (v_users)
           order by p.user_id
             for key share) h
   where exists (select 1 from public.jobs j where j.id = h.job_id and j.status in ('queued', 'running'));
  with requested as (
    insert into private.holdings_pending_aggregates as p (user_id)
    select u from unnest(v_users) u where not (u = any (v_held)) order by 1
    on conflict (user_id) do update set requested_at = now()
    returning p.user_id, p.job_id
  )
  select array_agg(r.user_id order by r.user_id) into v_new
    from requested r
   where r.job_id is null
      or not exists (select 1 from public.jobs j where j.id = r.job_id and j.status in ('queued', 'running'));
  -- A new burst, or its job died (out of attempts) or was pruned: a new job.
  foreach v_user_id in array coalesce(v_new, '{}'::uuid[]) loop
    update private.holdings_pending_aggregates
       set job_id = public.enqueue_job('holdings.aggregate', jsonb_build_object('user_id', v_user_id))
     where user_id = v_user_id;
  end loop;
end;
$$;
ALTER FUNCTION private.holdings_request_aggregates(p_user_ids uuid[]) OWNER TO postgres;
CREATE FUNCTION private.holdings_requeue_snaptrade_event() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_kind text;
begin
  v_kind := case new.event_type
    when 'CONNECTION_ADDED' then 'holdings.connection_added'
    when 'CONNECTION_UPDATED' then 'holdings.connection_added'
    when 'CONNECTION_FIXED' then 'holdings.connection_added'
    when 'ACCOUNT_HOLDINGS_UPDATED' then 'holdings.sync_account'
    when 'CONNECTION_BROKEN' then 'holdings.connection_status'
    when 'CONNECTION_DELETED' then 'holdings.connection_status'
    else null end;
  if v_kind is null then
    return null;
  end if;
  insert into public.jobs (queue, kind, payload, idempotency_key)
  values ('default', v_kind,
          jsonb_build_object(
            'webhook_event_id', new.id,
            'event_type', new.event_type,
            'provider_user_id', new.payload ->> 'userId',
            'provider_account_id', new.payload ->> 'accountId',
            'provider_connection_id', coalesce(new.payload ->> 'connectionId', new.payload ->> 'brokerageAuthorizationId'),
            'occurred_at', new.occurred_at),
          'snaptrade-webhook:' || new.event_id || ':woken:' || new.attempts)
  on conflict (idempotency_key) do nothing;
  perform pg_notify('tradefleet_jobs', 'default');
  return null;
end;
$$;
ALTER FUNCTION private.holdings_requeue_snaptrade_event() OWNER TO postgres;
CREATE FUNCTION private.holdings_write_account_sync(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, p_webhook_event_id uuid DEFAULT NULL::uuid, p_duration_ms integer DEFAULT NULL::integer, OUT applied boolean, OUT upserted integer, OUT removed integer, OUT user_id uuid) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  select r.applied, r.upserted, r.removed into applied, upserted, removed
    from private.holdings_apply_positions(p_account_id, p_as_of, p_positions) r;
  select a.user_id into user_id from public.brokerage_accounts a where a.id = p_account_id;
  insert into public.sync_runs (user_id, trigger, scope, status, accounts_synced, positions_upserted,
                                positions_removed, errors, duration_ms, started_at, finished_at)
  values (user_id, 'webhook', 'incremental', 'completed', 1, upserted, removed, '[]', p_duration_ms,
          now() - make_interval(secs => coalesce(p_duration_ms, 0) / 1000.0), now());
  if p_webhook_event_id is not null then
    update public.webhook_events
       set status = 'processed', processed_at = now(), attempts = attempts + 1, error = null
     where id = p_webhook_event_id;
  end if;
end;
$$;
ALTER FUNCTION private.holdings_write_account_sync(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, p_webhook_event_id uuid, p_duration_ms integer, OUT applied boolean, OUT upserted integer, OUT removed integer, OUT user_id uuid) OWNER TO postgres;
CREATE FUNCTION private.holdings_write_account_syncs(p_items jsonb) RETURNS TABLE(idx integer, applied boolean, upserted integer, removed integer, user_id uuid)
    LANGUAGE plpgsql
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_items integer;
  v_accounts uuid[];
  v_ids uuid[];
  v_users uuid[];
  v_last_as_of timestamptz[];
  v_fresh uuid[];
begin
  select count(*)::integer, array_agg(distinct (i.value ->> 'account_id')::uuid)
    into v_items, v_accounts
    from jsonb_array_elements(p_items) i(value);
  if v_items = 0 then
    return;
  end if;
  -- Locked in id order, as the per-account path and the full sync lock them. The accounts'
  -- owners and as-of go on in arrays: every later statement reaches a table by key only.
  select array_agg(l.id order by l.id), array_agg(l.user_id order by l.id),
         array_agg(l.provider_as_of order by l.id)
    into v_ids, v_users, v_last_as_of
    from (select a.id, a.user_id, a.provider_as_of from public.brokerage_accounts a
           where a.id = any (v_accounts) order by a.id for update) l;
  if cardinality(v_accounts) <> v_items or coalesce(cardinality(v_ids), 0) <> v_items then
    raise exception 'a batch naming an account twice or an unknown account is written account by account'
      using errcode = 'P0001', constraint = 'holdings_batch_not_set_based';
  end if;
  -- Fresh: not older than the snapshot last applied to its account.
  select array_agg(k.account_id) into v_fresh
    from jsonb_array_elements(p_items) i(value)
    join unnest(v_ids, v_last_as_of) as k(account_id, last_as_of)
      on k.account_id = (i.value ->> 'account_id')::uuid
   where k.last_as_of is null or k.last_as_of <= (i.value ->> 'as_of')::timestamptz;
  v_fresh := coalesce(v_fresh, '{}'::uuid[]);
  return query
  with items as (
    select (i.ord - 1)::integer as idx, k.account_id, k.user_id,
           (i.value ->> 'as_of')::timestamptz as as_of, i.value -> 'positions' as positions,
           (i.value ->> 'webhook_event_id')::uuid as webhook_event_id,
           (i.value ->> 'duration_ms')::integer as duration_ms,
           k.account_id = any (v_fresh) as applied
      from jsonb_array_elements(p_items) with ordinality as i(value, ord)
      join unnest(v_ids, v_users) as k(account_id, user_id) on k.account_id = (i.value ->> 'account_id')::uuid
  ), reported as (
    select f.account_id, f.user_id, f.as_of, p.symbol, p.description, p.instrument_type, p.units, p.price,
           p.average_cost, p.currency
      from items f
     cross join lateral jsonb_to_recordset(f.positions)
           as p(symbol text, description text, instrument_type text, units numeric, price numeric,
                average_cost numeric, currency text)
     where f.applied and p.symbol is not null and p.units is not null and p.units <> 0
  ), incoming as (
    select r.account_id, r.user_id, r.as_of, r.symbol,
           max(r.description) as description,
           max(r.instrument_type) as instrument_type,
           sum(r.units) as units,
           max(r.price) as price,
           sum(r.units * r.average_cost) filter (where r.average_cost is not null)
             / nullif(sum(r.units) filter (where r.average_cost is not null), 0) as average_cost,
           coalesce(max(r.currency), 'USD') as currency
      from reported r
     group by r.account_id, r.user_id, r.as_of, r.symbol
  ), written as (
    insert into public.brokerage_positions as bp
      (account_id, user_id, symbol, description, instrument_type, units, price, average_cost, currency, provider_as_of)
    select i.account_id, i.user_id, i.symbol, i.description, i.instrument_type, i.units, i.price, i.average_cost,
           i.currency, i.as_of
      from incoming i
     order by i.account_id, i.symbol
    on conflict (account_id, symbol) do update
       set description = excluded.description, instrument_type = excluded.instrument_type, units = excluded.units,
           price = excluded.price, average_cost = excluded.average_cost, currency = excluded.currency,
           provider_as_of = excluded.provider_as_of
     where bp.provider_as_of <= excluded.provider_as_of
    returning bp.account_id
  ), gone as (
    -- Disjoint from the rows written (other symbols), so one statement holds both.
    delete from public.brokerage_positions bp
     where bp.account_id = any (v_fresh)
       and not exists (select 1 from reported r where r.account_id = bp.account_id and r.symbol = bp.symbol)
    returning bp.account_id
  ), written_per_account as (
    select w.account_id, count(*)::integer as n from written w group by w.account_id
  ), gone_per_account as (
    select g.account_id, count(*)::integer as n from gone g group by g.account_id
  ), counts as (
    select it.idx, it.account_id, it.user_id, it.as_of, it.webhook_event_id, it.duration_ms, it.applied,
           coalesce(w.n, 0) as upserted, coalesce(g.n, 0) as removed
      from items it
      left join written_per_account w on w.account_id = it.account_id
      left join gone_per_account g on g.account_id = it.account_id
  ), synced as (
    update public.brokerage_accounts a
       set provider_as_of = c.as_of, last_synced_at = now(), sync_error = null
      from counts c
     where a.id = any (v_fresh) and a.id = c.account_id
  ), runs as (
    insert into public.sync_runs (user_id, trigger, scope, status, accounts_synced, positions_upserted,
                                  positions_removed, errors, duration_ms, started_at, finished_at)
    select c.user_id, 'webhook', 'incremental', 'completed', 1, c.upserted, c.removed, '[]'::jsonb, c.duration_ms,
           now() - make_interval(secs => coalesce(c.duration_ms, 0) / 1000.0), now()
      from counts c
     order by c.idx
  ), processed as (
    update public.webhook_events e
       set status = 'processed', processed_at = now(), attempts = e.attempts + 1, error = null
      from counts c
     where e.id = c.webhook_event_id
  )
  select c.idx, c.applied, c.upserted, c.removed, c.user_id from counts c order by c.idx;
end;
$$;
ALTER FUNCTION private.holdings_write_account_syncs(p_items jsonb) OWNER TO postgres;
CREATE FUNCTION private.is_active_subscriber(p_strategy_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select exists (
    select 1 from public.strategy_subscriptions ss
     where ss.strategy_id = p_strategy_id and ss.subscriber_id = auth.uid() and ss.status = 'active'
  )
$$;
ALTER FUNCTION private.is_active_subscriber(p_strategy_id uuid) OWNER TO postgres;
CREATE FUNCTION private.is_admin() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce(auth.jwt() -> 'app_metadata' ->> 'role', '') = 'admin'
     and exists (select 1 from public.profiles p
                  where p.id = (select auth.uid()) and p.role = 'admin' and p.is_active)
$$;
ALTER FUNCTION private.is_admin() OWNER TO postgres;
CREATE FUNCTION private.is_service() RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return current_user not in ('anon', 'authenticated', 'tradefleet_admin')
     and coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', 'service_role')
         = 'service_role';
end;
$$;
ALTER FUNCTION private.is_service() OWNER TO postgres;
CREATE TABLE public.jobs (
    id bigint NOT NULL,
    queue text DEFAULT 'default'::text NOT NULL,
    kind text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    status text DEFAULT 'queued'::text NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    run_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 5 NOT NULL,
    idempotency_key text,
    locked_by uuid,
    locked_until timestamp with time zone,
    last_error text,
    result jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT jobs_kind_format CHECK ((kind ~ '^[a-z][a-z0-9_.]{0,63}$'::text)),
    CONSTRAINT jobs_max_attempts_positive CHECK ((max_attempts > 0)),
    CONSTRAINT jobs_status_known CHECK ((status = ANY (ARRAY['queued'::text, 'running'::text, 'succeeded'::text, 'dead'::text, 'cancelled'::text])))
);
ALTER TABLE public.jobs OWNER TO postgres;
CREATE FUNCTION private.job_audit_state(p_job public.jobs) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select jsonb_build_object('status', p_job.status, 'attempts', p_job.attempts, 'max_attempts', p_job.max_attempts,
                            'run_at', p_job.run_at, 'last_error', p_job.last_error)
$$;
ALTER FUNCTION private.job_audit_state(p_job public.jobs) OWNER TO postgres;
CREATE FUNCTION private.limit_manual_sync_requests() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if new.trigger = 'manual' then
    perform pg_advisory_xact_lock(hashtextextended('sync_runs:' || new.user_id::text, 0));
    if exists (select 1 from public.sync_runs
                where user_id = new.user_id and trigger = 'manual' and created_at > now() - interval '60 seconds') then
      raise exception 'a manual refresh was requested less than a minute ago; try again shortly'
        using errcode = 'check_violation', constraint = 'sync_runs_manual_rate_limit';
    end if;
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.limit_manual_sync_requests() OWNER TO postgres;
CREATE FUNCTION private.market_last_close(p_symbol text) RETURNS numeric
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select m.close from public.market_latest_candles m where m.symbol = p_symbol order by m.open_time desc limit 1
$$;
ALTER FUNCTION private.market_last_close(p_symbol text) OWNER TO postgres;
CREATE FUNCTION private.market_range(p_symbol text, p_since timestamp with time zone) RETURNS TABLE(low numeric, high numeric)
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select min(least(m.low, r.low)), max(greatest(m.high, r.high))
    from public.market_latest_candles m
   cross join lateral (
     select min(c.low) as low, max(c.high) as high
       from public.candles c
      where c.exchange = m.exchange and c.symbol = m.symbol and c.timeframe = m.timeframe
        and c.open_time >= p_since
   ) r
   where m.symbol = p_symbol
$$;
ALTER FUNCTION private.market_range(p_symbol text, p_since timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION private.notify_bot_status() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  perform pg_notify('tradefleet_bots', json_build_object('id', new.id, 'status', new.status)::text);
  return null;
end;
$$;
ALTER FUNCTION private.notify_bot_status() OWNER TO postgres;
CREATE FUNCTION private.notify_enqueue_outbound() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_payloads jsonb[];
begin
  select array_agg(jsonb_build_object('notification_ids', c.ids)) into v_payloads
    from (select jsonb_agg(x.id order by x.id) as ids
            from (select n.id, (row_number() over (order by n.id) - 1) / 100 as chunk
                    from new_rows n join public.profiles p on p.id = n.user_id
                   where p.telegram_chat_id is not null or p.discord_webhook_url is not null) x
           group by x.chunk) c;
  if v_payloads is not null then
    perform public.enqueue_jobs('notify.deliver', v_payloads, 'default', 0, 8);
  end if;
  return null;
end;
$$;
ALTER FUNCTION private.notify_enqueue_outbound() OWNER TO postgres;
CREATE FUNCTION private.notify_position_request() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  perform pg_notify('tradefleet_position_requests',
                    json_build_object('id', new.id, 'bot_id', new.bot_id)::text);
  return null;
end;
$$;
ALTER FUNCTION private.notify_position_request() OWNER TO postgres;
CREATE FUNCTION private.organisation_bot_ids() RETURNS uuid[]
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return array(select b.id from public.bots b where b.organisation_id = any (private.organisation_ids()));
end;
$$;
ALTER FUNCTION private.organisation_bot_ids() OWNER TO postgres;
CREATE FUNCTION private.organisation_caller() RETURNS uuid
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := (select auth.uid());
begin
  if v_uid is null then
    raise exception 'organisations are managed by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'organisations_caller';
  end if;
  return v_uid;
end;
$$;
ALTER FUNCTION private.organisation_caller() OWNER TO postgres;
CREATE TABLE public.organisation_members (
    user_id uuid NOT NULL,
    organisation_id uuid NOT NULL,
    role text NOT NULL,
    invited_by uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    offers_exchange_keys boolean DEFAULT false NOT NULL,
    CONSTRAINT organisation_members_role_known CHECK ((role = ANY (ARRAY['owner'::text, 'admin'::text, 'member'::text, 'read_only'::text])))
);
ALTER TABLE public.organisation_members OWNER TO postgres;
CREATE FUNCTION private.organisation_drop_member(p_organisation_id uuid, p_user_id uuid) RETURNS public.organisation_members
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_member public.organisation_members;
begin
  if exists (select 1 from public.organisations o where o.id = p_organisation_id and o.owner_id = p_user_id) then
    raise exception 'the paying owner stays in the organisation (delete the organisation instead)'
      using errcode = 'check_violation', constraint = 'organisations_owner_stays';
  end if;
  delete from public.organisation_members m
   where m.organisation_id = p_organisation_id and m.user_id = p_user_id
  returning * into v_member;
  if v_member.user_id is null then
    raise exception 'no member % in this organisation', p_user_id
      using errcode = 'no_data_found', constraint = 'organisation_members_member';
  end if;
  return v_member;
end;
$$;
ALTER FUNCTION private.organisation_drop_member(p_organisation_id uuid, p_user_id uuid) OWNER TO postgres;
CREATE FUNCTION private.organisation_ids(p_min_role text DEFAULT 'read_only'::text) RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select coalesce(array_agg(m.organisation_id), '{}')
    from public.organisation_members m
   where m.user_id = (select auth.uid())
     and private.organisation_rank(m.role) >= private.organisation_rank(p_min_role)
$$;
ALTER FUNCTION private.organisation_ids(p_min_role text) OWNER TO postgres;
CREATE TABLE public.organisation_invitations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    organisation_id uuid NOT NULL,
    email text NOT NULL,
    role text NOT NULL,
    invited_by uuid,
    status text DEFAULT 'pending'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    responded_at timestamp with time zone,
    CONSTRAINT organisation_invitations_email_format CHECK (((char_length(email) <= 320) AND (email ~ '^[^@\s]+@[^@\s]+$'::text) AND (email = lower(email)))),
    CONSTRAINT organisation_invitations_role_known CHECK ((role = ANY (ARRAY['owner'::text, 'admin'::text, 'member'::text, 'read_only'::text]))),
    CONSTRAINT organisation_invitations_status_known CHECK ((status = ANY (ARRAY['pending'::text, 'accepted'::text, 'declined'::text, 'revoked'::text])))
);
ALTER TABLE public.organisation_invitations OWNER TO postgres;
CREATE FUNCTION private.organisation_invitation_for_caller(p_invitation_id uuid) RETURNS public.organisation_invitations
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_inv public.organisation_invitations;
begin
  perform private.organisation_caller();
  select i.* into v_inv from public.organisation_invitations i
   where i.id = p_invitation_id
     and i.email = private.caller_email()
  for update;
  if not found then
    raise exception 'no invitation for you with id %', p_invitation_id
      using errcode = 'no_data_found', constraint = 'organisation_invitations_addressee';
  end if;
  if v_inv.status <> 'pending' then
    raise exception 'the invitation is % already', v_inv.status
      using errcode = 'check_violation', constraint = 'organisation_invitations_pending';
  end if;
  return v_inv;
end;
$$;
ALTER FUNCTION private.organisation_invitation_for_caller(p_invitation_id uuid) OWNER TO postgres;
CREATE FUNCTION private.organisation_key_bot_ids() RETURNS uuid[]
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  return array(select b.id from public.bots b
                where b.organisation_id = ((select auth.jwt()) ->> 'organisation_id')::uuid);
end;
$$;
ALTER FUNCTION private.organisation_key_bot_ids() OWNER TO postgres;
CREATE FUNCTION private.organisation_managed_member(p_organisation_id uuid, p_user_id uuid, p_new_role text) RETURNS public.organisation_members
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_role text := private.organisation_require(p_organisation_id, 'admin');
  v_member public.organisation_members;
begin
  select m.* into v_member from public.organisation_members m
   where m.organisation_id = p_organisation_id and m.user_id = p_user_id
  for update;
  if not found then
    raise exception 'no member % in this organisation', p_user_id
      using errcode = 'no_data_found', constraint = 'organisation_members_member';
  end if;
  if v_role <> 'owner' and (v_member.role = 'owner' or p_new_role = 'owner') then
    raise exception 'only an owner manages owners'
      using errcode = 'insufficient_privilege', constraint = 'organisation_members_role_owner';
  end if;
  return v_member;
end;
$$;
ALTER FUNCTION private.organisation_managed_member(p_organisation_id uuid, p_user_id uuid, p_new_role text) OWNER TO postgres;
CREATE FUNCTION private.organisation_rank(p_role text) RETURNS integer
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select case p_role when 'owner' then 4 when 'admin' then 3 when 'member' then 2 when 'read_only' then 1 end
$$;
ALTER FUNCTION private.organisation_rank(p_role text) OWNER TO postgres;
CREATE FUNCTION private.organisation_require(p_organisation_id uuid, p_min_role text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_role text := private.organisation_role(p_organisation_id);
begin
  if v_role is null then
    raise exception 'no organisation of yours with id %', p_organisation_id
      using errcode = 'no_data_found', constraint = 'organisation_members_member';
  end if;
  if private.organisation_rank(v_role) < private.organisation_rank(p_min_role) then
    raise exception 'this needs the % role in the organisation; yours is %', p_min_role, v_role
      using errcode = 'insufficient_privilege', constraint = 'organisation_members_role_' || p_min_role;
  end if;
  return v_role;
end;
$$;
ALTER FUNCTION private.organisation_require(p_organisation_id uuid, p_min_role text) OWNER TO postgres;
CREATE FUNCTION private.organisation_role(p_organisation_id uuid) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select m.role from public.organisation_members m
   where m.user_id = (select auth.uid()) and m.organisation_id = p_organisation_id
$$;
ALTER FUNCTION private.organisation_role(p_organisation_id uuid) OWNER TO postgres;
CREATE FUNCTION private.own_strategy_subscription(p_subscription_id uuid) RETURNS public.strategy_subscriptions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.strategy_subscriptions;
begin
  select * into v_sub from public.strategy_subscriptions s where s.id = p_subscription_id for update;
  if not found or (v_sub.subscriber_id is distinct from (select auth.uid()) and not private.is_service()) then
    raise exception 'no such subscription of yours: %', p_subscription_id using errcode = 'no_data_found';
  end if;
  return v_sub;
end;
$$;
ALTER FUNCTION private.own_strategy_subscription(p_subscription_id uuid) OWNER TO postgres;
CREATE FUNCTION private.owns_strategy(p_strategy_id uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select exists (select 1 from public.strategies s where s.id = p_strategy_id and s.user_id = auth.uid())
$$;
ALTER FUNCTION private.owns_strategy(p_strategy_id uuid) OWNER TO postgres;
CREATE FUNCTION private.partition_history_acl(p_rel regclass, p_name text) RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce(pg_catalog.array_agg(g order by g), '{}')
    from (
      select pg_catalog.format('grant %s on table %s to %s%s', a.privilege_type, p_name,
               case when a.grantee = 0 then 'public' else pg_catalog.quote_ident(a.grantee::regrole::text) end,
               case when a.is_grantable then ' with grant option' else '' end) as g
        from pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
       where c.oid = p_rel and a.grantee <> c.relowner
      union all
      select pg_catalog.format('grant %s (%I) on table %s to %s%s', a.privilege_type, att.attname, p_name,
               case when a.grantee = 0 then 'public' else pg_catalog.quote_ident(a.grantee::regrole::text) end,
               case when a.is_grantable then ' with grant option' else '' end)
        from pg_catalog.pg_attribute att, pg_catalog.aclexplode(att.attacl) a
       where att.attrelid = p_rel and att.attnum > 0 and not att.attisdropped
    ) grants;
$$;
ALTER FUNCTION private.partition_history_acl(p_rel regclass, p_name text) OWNER TO postgres;
CREATE FUNCTION private.partition_history_table(p_table text, p_key text, p_step interval, p_from timestamp with time zone, p_until timestamp with time zone, p_ahead interval) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_old regclass := pg_catalog.format('public.%I', p_table)::regclass;
  v_legacy text := p_table || '_unpartitioned';
  v_path text := pg_catalog.current_setting('search_path');
  v_views text[] := '{}'::text[];
  v_view_names text[] := '{}'::text[];
  v_funcs text[] := '{}'::text[];
  v_table_after text[] := '{}'::text[];
  v_dependents_after text[] := '{}'::text[];
  v_sql text;
  v_seqs text[];
  v_rec record;
  v_count_before bigint;
  v_count_after bigint;
  v_sum_before text;
  v_sum_after text;
  v_checksum constant text :=
    'select count(*), md5(coalesce(string_agg(md5(t::text), '''' order by md5(t::text)), '''')) from public.%I t';
begin
  if (select c.relkind from pg_catalog.pg_class c where c.oid = v_old) <> 'r' then
    raise exception 'partition_history_table: public.% is not a plain table', p_table using errcode = '22023';
  end if;
  if exists (select 1 from pg_catalog.pg_constraint c where c.confrelid = v_old) then
    raise exception 'partition_history_table: foreign keys reference public.%', p_table using errcode = '2BP01';
  end if;
  -- Read every definition fully qualified, as it is now.
  perform pg_catalog.set_config('search_path', '', true);
  execute pg_catalog.format('lock table public.%I in access exclusive mode', p_table);
  -- Views on the table (and views on those), innermost first, with options and grants.
  for v_rec in
    with recursive deps(oid, depth) as (
      select r.ev_class, 1
        from pg_catalog.pg_depend d
        join pg_catalog.pg_rewrite r on r.oid = d.objid
       where d.classid = 'pg_catalog.pg_rewrite'::regclass and d.refobjid = v_old and r.ev_class <> v_old
      union
      select r.ev_class, deps.depth + 1
        from deps
        join pg_catalog.pg_depend d on d.refobjid = deps.oid
        join pg_catalog.pg_rewrite r on r.oid = d.objid
       where d.classid = 'pg_catalog.pg_rewrite'::regclass and r.ev_class <> deps.oid
    )
    select c.oid, c.relkind, c.reloptions, pg_catalog.max(deps.depth) as depth
      from deps join pg_catalog.pg_class c on c.oid = deps.oid
     group by c.oid, c.relkind, c.reloptions
     order by pg_catalog.max(deps.depth), c.oid
  loop
    v_views := v_views || pg_catalog.format('create %s %s%s as %s',
      case v_rec.relkind when 'm' then 'materialized view' else 'view' end,
      v_rec.oid::regclass,
      case when v_rec.reloptions is null then ''
           else ' with (' || pg_catalog.array_to_string(v_rec.reloptions, ', ') || ')' end,
      pg_catalog.rtrim(pg_catalog.pg_get_viewdef(v_rec.oid), ';'));
    v_view_names := v_view_names || pg_catalog.format('drop %s if exists %s',
      case v_rec.relkind when 'm' then 'materialized view' else 'view' end, v_rec.oid::regclass);
    -- A re-created view gets the schema's default privileges: only its own grants stay.
    v_dependents_after := v_dependents_after
      || pg_catalog.format('revoke all on table %s from public, anon, authenticated, service_role', v_rec.oid::regclass)
      || private.partition_history_acl(v_rec.oid, v_rec.oid::regclass::text);
    v_dependents_after := v_dependents_after || coalesce(
      (select pg_catalog.array_agg(pg_catalog.format('comment on %s %s is %L',
                case v_rec.relkind when 'm' then 'materialized view' else 'view' end, v_rec.oid::regclass, d))
         from pg_catalog.obj_description(v_rec.oid, 'pg_class') d where d is not null), '{}');
  end loop;
  -- `begin atomic` functions bound to the table, with their grants.
  for v_rec in
    select distinct p.oid, p.proowner, p.proacl
      from pg_catalog.pg_depend d join pg_catalog.pg_proc p on p.oid = d.objid
     where d.classid = 'pg_catalog.pg_proc'::regclass and d.refobjid = v_old
  loop
    v_funcs := v_funcs || pg_catalog.pg_get_functiondef(v_rec.oid);
    v_dependents_after := v_dependents_after
      || pg_catalog.format('revoke all on function %s from public, anon, authenticated, service_role', v_rec.oid::regprocedure)
      || (select coalesce(pg_catalog.array_agg(pg_catalog.format('grant execute on function %s to %s',
                   v_rec.oid::regprocedure,
                   case when a.grantee = 0 then 'public' else pg_catalog.quote_ident(a.grantee::regrole::text) end)), '{}')
            from pg_catalog.aclexplode(coalesce(v_rec.proacl, pg_catalog.acldefault('f', v_rec.proowner))) a
           where a.grantee <> v_rec.proowner);
  end loop;
  -- The table's own: keys (a unique one gains the partition key), foreign keys, indexes,
  -- RLS, policies, grants, triggers, publications, comment.
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.format('alter table public.%I add constraint %I %s (%s)',
             p_table, c.conname, case c.contype when 'p' then 'primary key' else 'unique' end,
             (select pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' order by k.n)
                from pg_catalog.unnest(c.conkey) with ordinality k(attnum, n)
                join pg_catalog.pg_attribute a on a.attrelid = v_old and a.attnum = k.attnum)
             || case when exists (select 1 from pg_catalog.pg_attribute a
                                   where a.attrelid = v_old and a.attnum = any (c.conkey) and a.attname = p_key)
                     then '' else ', ' || pg_catalog.quote_ident(p_key) end)
           order by c.contype, c.conname), '{}')
      from pg_catalog.pg_constraint c where c.conrelid = v_old and c.contype in ('p', 'u'));
  if exists (select 1 from pg_catalog.pg_index i
              where i.indrelid = v_old and i.indisunique
                and not exists (select 1 from pg_catalog.pg_constraint c where c.conindid = i.indexrelid)) then
    raise exception 'partition_history_table: public.% has a unique index that is not a constraint', p_table
      using errcode = '0A000';
  end if;
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.format('alter table public.%I add constraint %I %s',
             p_table, c.conname, pg_catalog.pg_get_constraintdef(c.oid)) order by c.conname), '{}')
      from pg_catalog.pg_constraint c where c.conrelid = v_old and c.contype = 'f');
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.pg_get_indexdef(i.indexrelid) order by i.indexrelid), '{}')
      from pg_catalog.pg_index i where i.indrelid = v_old and not i.indisunique);
  if (select c.relrowsecurity from pg_catalog.pg_class c where c.oid = v_old) then
    v_table_after := v_table_after || pg_catalog.format('alter table public.%I enable row level security', p_table);
  end if;
  if (select c.relforcerowsecurity from pg_catalog.pg_class c where c.oid = v_old) then
    v_table_after := v_table_after || pg_catalog.format('alter table public.%I force row level security', p_table);
  end if;
  for v_rec in
    select p.polname, p.polpermissive, p.polcmd, p.polroles,
           pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual,
           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as with_check
      from pg_catalog.pg_policy p where p.polrelid = v_old order by p.polname
  loop
    v_table_after := v_table_after || pg_catalog.format('create policy %I on public.%I as %s for %s to %s%s%s',
      v_rec.polname, p_table,
      case when v_rec.polpermissive then 'permissive' else 'restrictive' end,
      case v_rec.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                        when 'd' then 'delete' else 'all' end,
      (select pg_catalog.string_agg(case when r = 0 then 'public' else pg_catalog.quote_ident(r::regrole::text) end, ', ')
         from pg_catalog.unnest(v_rec.polroles) r),
      case when v_rec.qual is null then '' else ' using (' || v_rec.qual || ')' end,
      case when v_rec.with_check is null then '' else ' with check (' || v_rec.with_check || ')' end);
  end loop;
  v_table_after := v_table_after
    || pg_catalog.format('revoke all on table public.%I from public, anon, authenticated, service_role', p_table)
    || private.partition_history_acl(v_old, pg_catalog.format('public.%I', p_table));
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.pg_get_triggerdef(t.oid) order by t.tgname), '{}')
      from pg_catalog.pg_trigger t where t.tgrelid = v_old and not t.tgisinternal);
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.format('alter publication %I add table public.%I', p.pubname, p_table)), '{}')
      from pg_catalog.pg_publication_rel pr join pg_catalog.pg_publication p on p.oid = pr.prpubid
     where pr.prrelid = v_old);
  v_table_after := v_table_after || (
    select coalesce(pg_catalog.array_agg(pg_catalog.format('comment on table public.%I is %L', p_table, d)), '{}')
      from pg_catalog.obj_description(v_old, 'pg_class') d where d is not null);
  execute pg_catalog.format(v_checksum, p_table) into v_count_before, v_sum_before;
  -- Out of the way: dependents (outermost first), then the old table and its indexes.
  for v_rec in
    select distinct p.oid from pg_catalog.pg_depend d join pg_catalog.pg_proc p on p.oid = d.objid
     where d.classid = 'pg_catalog.pg_proc'::regclass and d.refobjid = v_old
  loop
    execute pg_catalog.format('drop function %s', v_rec.oid::regprocedure);
  end loop;
  for v_rec in select u.v from pg_catalog.unnest(v_view_names) with ordinality u(v, n) order by u.n desc loop
    execute v_rec.v;
  end loop;
  for v_rec in
    select p.pubname from pg_catalog.pg_publication_rel pr join pg_catalog.pg_publication p on p.oid = pr.prpubid
     where pr.prrelid = v_old
  loop
    execute pg_catalog.format('alter publication %I drop table public.%I', v_rec.pubname, p_table);
  end loop;
  execute pg_catalog.format('alter table public.%I rename to %I', p_table, v_legacy);
  for v_rec in
    select c.oid, c.relname, con.conname
      from pg_catalog.pg_index i join pg_catalog.pg_class c on c.oid = i.indexrelid
      left join pg_catalog.pg_constraint con on con.conindid = i.indexrelid and con.conrelid = v_old
     where i.indrelid = v_old
  loop
    if v_rec.conname is not null then
      execute pg_catalog.format('alter table public.%I rename constraint %I to %I', v_legacy, v_rec.conname, 'unpartitioned_' || v_rec.oid);
    else
      execute pg_catalog.format('alter index public.%I rename to %I', v_rec.relname, 'unpartitioned_' || v_rec.oid);
    end if;
  end loop;
  -- The partitioned table, its partitions and everything the old one had.
  execute pg_catalog.format(
    'create table public.%I (like public.%I including defaults including constraints including identity '
    'including generated including storage including comments including statistics) partition by range (%I)',
    p_table, v_legacy, p_key);
  execute pg_catalog.format('create table partitions.%I partition of public.%I default', p_table || '_default', p_table);
  insert into private.history_partitions (table_name, partition_key, step, ahead)
  values (p_table, p_key, p_step, p_ahead);
  perform private.create_history_partition(p_table, d)
     from (select pg_catalog.generate_series(p_from, p_until, p_step) union select p_until) s(d);
  execute pg_catalog.format('revoke all on table partitions.%I from public, anon, authenticated', p_table || '_default');
  execute pg_catalog.format('grant select, update, delete on table partitions.%I to service_role', p_table || '_default');
  -- Every row moves, identities keep their values and their sequences go on.
  execute pg_catalog.format('insert into public.%I overriding system value select * from public.%I', p_table, v_legacy);
  for v_rec in
    select a.attname from pg_catalog.pg_attribute a
     where a.attrelid = pg_catalog.format('public.%I', p_table)::regclass and a.attidentity <> '' and not a.attisdropped
  loop
    execute pg_catalog.format('select pg_catalog.setval(%L, s.last_value, s.is_called) from %s s',
      pg_catalog.pg_get_serial_sequence(pg_catalog.format('public.%I', p_table), v_rec.attname),
      pg_catalog.pg_get_serial_sequence(pg_catalog.format('public.%I', v_legacy), v_rec.attname));
  end loop;
  -- Keys, foreign keys and indexes are built once over the moved rows (faster than row by
  -- row), and triggers and publications come after the copy: moving a row is not an
  -- event, nothing fires and Realtime sends nothing.
  foreach v_sql in array v_table_after loop
    execute v_sql;
  end loop;
  execute pg_catalog.format(v_checksum, p_table) into v_count_after, v_sum_after;
  if v_count_after is distinct from v_count_before or v_sum_after is distinct from v_sum_before then
    raise exception 'partition_history_table: public.% had % rows (checksum %), the partitioned table has % (%)',
      p_table, v_count_before, v_sum_before, v_count_after, v_sum_after;
  end if;
  v_seqs := array(
    select pg_catalog.format('alter sequence %s rename to %I',
             pg_catalog.pg_get_serial_sequence(pg_catalog.format('public.%I', p_table), a.attname),
             (pg_catalog.parse_ident(pg_catalog.pg_get_serial_sequence(pg_catalog.format('public.%I', v_legacy), a.attname)))[2])
      from pg_catalog.pg_attribute a
     where a.attrelid = pg_catalog.format('public.%I', p_table)::regclass and a.attidentity <> '' and not a.attisdropped);
  execute pg_catalog.format('drop table public.%I', v_legacy);
  -- The sequences keep their names (and their grants: none but the owner's, as identities').
  foreach v_sql in array v_seqs loop
    execute v_sql;
  end loop;
  foreach v_sql in array v_views loop
    execute v_sql;
  end loop;
  foreach v_sql in array v_funcs loop
    execute v_sql;
  end loop;
  foreach v_sql in array v_dependents_after loop
    execute v_sql;
  end loop;
  perform pg_catalog.set_config('search_path', v_path, true);
  return v_count_after;
end;
$$;
ALTER FUNCTION private.partition_history_table(p_table text, p_key text, p_step interval, p_from timestamp with time zone, p_until timestamp with time zone, p_ahead interval) OWNER TO postgres;
CREATE FUNCTION private.payout_connect_check(p_user_id uuid, p_provider text) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if p_provider is null or p_provider not in ('stripe', 'paystack') then
    raise exception 'payouts go through stripe or paystack, not %', p_provider
      using errcode = 'invalid_parameter_value', constraint = 'payout_destinations_provider_known';
  end if;
  if not exists (select 1 from public.profiles p where p.id = p_user_id and p.role = 'provider') then
    raise exception 'only providers connect a payout destination' using errcode = 'insufficient_privilege';
  end if;
  if exists (select 1 from public.payouts p
              where p.user_id = p_user_id and p.status in ('requested', 'approved', 'sent')) then
    raise exception 'a payout is on its way: change the destination once it has settled'
      using errcode = 'check_violation', constraint = 'payout_destinations_no_payout_in_flight';
  end if;
end;
$$;
ALTER FUNCTION private.payout_connect_check(p_user_id uuid, p_provider text) OWNER TO postgres;
CREATE FUNCTION private.plan_lifting(p_limit text, p_needed numeric DEFAULT NULL::numeric) RETURNS text
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select p.name
    from public.plans p
   where p.is_active
     and case jsonb_typeof(private.plan_limit_value(p, p_limit))
           when 'boolean' then (private.plan_limit_value(p, p_limit))::boolean
           when 'number' then (private.plan_limit_value(p, p_limit))::numeric >= coalesce(p_needed, 0)
           when 'null' then p_needed is not null
           else false
         end
   order by p.sort_order, p.price_monthly, p.name
   limit 1
$$;
ALTER FUNCTION private.plan_lifting(p_limit text, p_needed numeric) OWNER TO postgres;
CREATE FUNCTION private.plan_limit_value(p_plan public.plans, p_limit text) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce(to_jsonb(p_plan) -> p_limit, p_plan.features -> p_limit)
$$;
ALTER FUNCTION private.plan_limit_value(p_plan public.plans, p_limit text) OWNER TO postgres;
CREATE FUNCTION private.position_request_bot(p_bot_id uuid, p_is_paper_trade boolean) RETURNS public.bots
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := auth.uid();
  v_bot public.bots;
begin
  if v_uid is null then
    raise exception 'position requests are made by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  select * into v_bot from public.bots b
   where b.id = p_bot_id and (b.user_id = v_uid or b.organisation_id = any (private.organisation_ids()));
  if not found then
    raise exception 'no bot of yours with id %', p_bot_id
      using errcode = 'no_data_found', constraint = 'position_requests_bot_owned';
  end if;
  perform private.bot_actor_check(v_bot);
  if p_is_paper_trade is null or p_is_paper_trade <> v_bot.is_paper_trade then
    raise exception 'the bot trades % but the request says %',
      case when v_bot.is_paper_trade then 'on paper' else 'live money' end,
      case when p_is_paper_trade then 'paper' when not p_is_paper_trade then 'live' else 'neither' end
      using errcode = 'check_violation', constraint = 'position_requests_mode_matches',
            hint = 'Pass is_paper_trade as the bot has it, so live money is never moved by mistake.';
  end if;
  if not v_bot.is_paper_trade and coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2' then
    raise exception 'moving live money needs a session with two-factor authentication (aal2)'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_live_requires_aal2';
  end if;
  if v_bot.status <> 'running' then
    raise exception 'the bot is %: only a running bot executes requests', v_bot.status
      using errcode = 'check_violation', constraint = 'position_requests_bot_running',
            hint = 'Set the bot running first (a paused or stopped bot leaves its position untouched).';
  end if;
  return v_bot;
end;
$$;
ALTER FUNCTION private.position_request_bot(p_bot_id uuid, p_is_paper_trade boolean) OWNER TO postgres;
CREATE FUNCTION private.position_request_key(p_key text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO ''
    AS $$
begin
  if p_key is not null and (char_length(p_key) not between 1 and 200) then
    raise exception 'an idempotency key has 1 to 200 characters'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_idempotency_key_length';
  end if;
  return p_key;
end;
$$;
ALTER FUNCTION private.position_request_key(p_key text) OWNER TO postgres;
CREATE FUNCTION private.position_request_pair(p_bot public.bots, p_pair text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO ''
    AS $$
declare
  v_pairs text[] := coalesce(p_bot.pairs, array[p_bot.trading_pair]);
begin
  if p_pair is null then
    if cardinality(v_pairs) > 1 then
      raise exception 'the bot trades % pairs (%): name the pair to trade', cardinality(v_pairs),
        array_to_string(v_pairs, ', ')
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_pair_required';
    end if;
    return p_bot.trading_pair;
  end if;
  if not p_pair = any (v_pairs) then
    raise exception '% is not a pair of this bot (it trades %)', left(p_pair, 64), array_to_string(v_pairs, ', ')
      using errcode = 'check_violation', constraint = 'position_requests_pair_of_bot';
  end if;
  return p_pair;
end;
$$;
ALTER FUNCTION private.position_request_pair(p_bot public.bots, p_pair text) OWNER TO postgres;
CREATE FUNCTION private.prune_history(p_history text, p_before timestamp with time zone, p_batch integer) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_n integer;
  v_part text;
  v_rows integer;
begin
  case p_history
    when 'bot_logs' then
      with doomed as (
        select l.id, l.created_at from partitions.bot_logs_default l
         where l.created_at < p_before
         order by l.created_at
         limit p_batch
           for update skip locked
      )
      delete from partitions.bot_logs_default l using doomed
       where l.id = doomed.id and l.created_at = doomed.created_at;
    when 'api_usage_minutes' then
      with doomed as (
        select m.key_id, m.minute, m.endpoint, m.status from partitions.api_usage_minutes_default m
         where m.minute < p_before
         order by m.minute
         limit p_batch
           for update skip locked
      )
      delete from partitions.api_usage_minutes_default m using doomed
       where m.key_id = doomed.key_id and m.minute = doomed.minute
         and m.endpoint = doomed.endpoint and m.status = doomed.status;
    when 'webhook_events', 'notifications' then
      v_n := 0;
      -- `_kept` only while it is attached (private.history_kept_end); the default
      -- partition always is.
      foreach v_part in array array[case when private.history_kept_end(p_history) is not null
                                         then p_history || '_kept' end,
                                    p_history || '_default'] loop
        continue when v_part is null or v_n >= p_batch;
        if p_history = 'webhook_events' then
          execute pg_catalog.format(
            'with doomed as ('
            '  select e.id, e.received_at from partitions.%1$I e'
            '   where e.status in (''processed'', ''ignored'') and e.processed_at < $1'
            '   order by e.processed_at limit $2 for update skip locked) '
            'delete from partitions.%1$I e using doomed'
            ' where e.id = doomed.id and e.received_at = doomed.received_at'
            '   and e.status in (''processed'', ''ignored'')', v_part)
            using p_before, p_batch - v_n;
        else
          execute pg_catalog.format(
            'with doomed as ('
            '  select n.id, n.created_at from partitions.%1$I n'
            '   where n.read_at is not null and n.read_at < $1'
            '   order by n.read_at limit $2 for update skip locked) '
            'delete from partitions.%1$I n using doomed'
            ' where n.id = doomed.id and n.created_at = doomed.created_at'
            '   and n.read_at is not null', v_part)
            using p_before, p_batch - v_n;
        end if;
        get diagnostics v_rows = row_count;
        v_n := v_n + v_rows;
      end loop;
      if p_history = 'webhook_events' and v_n > 0 then
        perform pg_catalog.pg_notify('tradefleet_console', 'webhooks');
      end if;
      return v_n;
    when 'jobs' then
      with doomed as (
        select j.id from public.jobs j
         where j.status in ('succeeded', 'cancelled') and j.finished_at < p_before
         order by j.finished_at
         limit p_batch
           for update skip locked
      )
      delete from public.jobs j using doomed
       where j.id = doomed.id and j.status in ('succeeded', 'cancelled');
    when 'service_checks' then
      with doomed as (
        select c.id from public.service_checks c
         where c.checked_at < p_before
         order by c.checked_at
         limit p_batch
           for update skip locked
      )
      delete from public.service_checks c using doomed where c.id = doomed.id;
  end case;
  get diagnostics v_n = row_count;
  return v_n;
end;
$_$;
ALTER FUNCTION private.prune_history(p_history text, p_before timestamp with time zone, p_batch integer) OWNER TO postgres;
CREATE FUNCTION private.publish_latest_candles() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  insert into public.market_latest_candles as m
    (exchange, symbol, timeframe, open_time, open, high, low, close, volume, updated_at)
  select distinct on (n.exchange, n.symbol, n.timeframe)
         n.exchange, n.symbol, n.timeframe, n.open_time, n.open, n.high, n.low, n.close, n.volume, now()
    from new_rows n
   order by n.exchange, n.symbol, n.timeframe, n.open_time desc
  on conflict (exchange, symbol, timeframe) do update
     set open_time = excluded.open_time, open = excluded.open, high = excluded.high,
         low = excluded.low, close = excluded.close, volume = excluded.volume,
         updated_at = excluded.updated_at
   where excluded.open_time >= m.open_time;
  return null;
end;
$$;
ALTER FUNCTION private.publish_latest_candles() OWNER TO postgres;
CREATE FUNCTION private.raise_plan_limit(p_plan public.plans, p_limit text, p_allows text, p_needed numeric, p_constraint text, p_errcode text DEFAULT 'check_violation'::text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_lift text := private.plan_lifting(p_limit, p_needed);
  v_value jsonb;
  v_tail text;
begin
  if v_lift is null or v_lift = p_plan.name then
    v_tail := 'no active plan allows more';
  else
    select private.plan_limit_value(p, p_limit) into v_value from public.plans p where p.name = v_lift;
    v_tail := format('the %s plan %s', v_lift,
                     case jsonb_typeof(v_value) when 'boolean' then 'does'
                                                when 'null' then 'has no limit'
                                                else 'allows ' || (v_value #>> '{}') end);
  end if;
  raise exception 'plan limit reached: the % plan % (%); %', p_plan.name, p_allows, p_limit, v_tail
    using errcode = p_errcode, constraint = p_constraint,
          hint = case when v_lift is not null and v_lift <> p_plan.name then format('Upgrade to the %s plan.', v_lift)
                      else 'No active plan allows more.' end;
end;
$$;
ALTER FUNCTION private.raise_plan_limit(p_plan public.plans, p_limit text, p_allows text, p_needed numeric, p_constraint text, p_errcode text) OWNER TO postgres;
CREATE FUNCTION private.rate_limit_give_back(p_bucket text, p_limit integer, p_period interval) RETURNS void
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  update private.rate_limit_buckets b set tat = b.tat - p_period / greatest(p_limit, 1) where b.bucket = p_bucket
$$;
ALTER FUNCTION private.rate_limit_give_back(p_bucket text, p_limit integer, p_period interval) OWNER TO postgres;
CREATE FUNCTION private.rate_limit_take(p_bucket text, p_limit integer, p_period interval, OUT allowed boolean, OUT remaining integer, OUT reset_seconds integer, OUT retry_after_seconds integer) RETURNS record
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_now timestamptz := clock_timestamp();
  v_t interval := p_period / greatest(p_limit, 1);
  v_tat timestamptz;
begin
  if p_limit is null or p_limit < 1 then
    allowed := false; remaining := 0; reset_seconds := ceil(extract(epoch from p_period))::integer;
    retry_after_seconds := reset_seconds;
    return;
  end if;
  insert into private.rate_limit_buckets as b (bucket, tat) values (p_bucket, v_now + v_t)
  on conflict (bucket) do update set tat = greatest(b.tat, v_now) + v_t
   where greatest(b.tat, v_now) + v_t <= v_now + p_period
  returning b.tat into v_tat;
  allowed := v_tat is not null;
  if not allowed then
    select b.tat into v_tat from private.rate_limit_buckets b where b.bucket = p_bucket;
    retry_after_seconds := greatest(ceil(extract(epoch from (v_tat + v_t - p_period - v_now))), 1)::integer;
  end if;
  remaining := greatest(floor(extract(epoch from (v_now + p_period - v_tat)) / extract(epoch from v_t)), 0)::integer;
  reset_seconds := greatest(ceil(extract(epoch from (v_tat - v_now))), 0)::integer;
end;
$$;
ALTER FUNCTION private.rate_limit_take(p_bucket text, p_limit integer, p_period interval, OUT allowed boolean, OUT remaining integer, OUT reset_seconds integer, OUT retry_after_seconds integer) OWNER TO postgres;
CREATE FUNCTION private.refresh_signal_performance(p_strategy_id uuid) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  update public.strategies s
     set performance = s.performance || jsonb_build_object(
           'signals_total', f.total,
           'signals_open', f.open,
           'signals_closed', f.closed,
           'wins', f.wins,
           'losses', f.losses,
           'win_rate', case when f.closed > 0 then round(f.wins::numeric / f.closed * 100, 2) else 0 end,
           'avg_return_pct', coalesce(f.avg_return, 0),
           'total_return_pct', coalesce(f.total_return, 0),
           'last_signal_at', f.last_at)
    from (select count(*) as total,
                 count(*) filter (where g.status in ('open', 'updated')) as open,
                 count(*) filter (where g.status = 'closed') as closed,
                 count(*) filter (where g.status = 'closed' and g.result_pct > 0) as wins,
                 count(*) filter (where g.status = 'closed' and g.result_pct <= 0) as losses,
                 round(avg(g.result_pct) filter (where g.status = 'closed'), 4) as avg_return,
                 round(sum(g.result_pct) filter (where g.status = 'closed'), 4) as total_return,
                 max(g.created_at) as last_at
            from public.signals g where g.strategy_id = p_strategy_id) f
   where s.id = p_strategy_id
$$;
ALTER FUNCTION private.refresh_signal_performance(p_strategy_id uuid) OWNER TO postgres;
CREATE FUNCTION private.refresh_strategy_backtest_figures() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  update public.strategies s
     set backtest_count = f.n, avg_backtest_return = f.avg_return
    from (select st.id, count(br.id) n, coalesce(round(avg(br.total_return_percentage), 4), 0) avg_return
            from public.strategies st
            left join public.backtest_results br
              on br.strategy_id = st.id
             and (br.user_id = st.user_id
                  or exists (select 1 from public.profiles p where p.id = br.user_id and p.role = 'admin'))
             and exists (select 1 from public.backtest_runs r
                          where r.id = br.run_id and r.parameters = st.parameters and r.mode <> 'optimize')
           where st.id in (coalesce(new.strategy_id, old.strategy_id), coalesce(old.strategy_id, new.strategy_id))
           group by st.id) f
   where s.id = f.id;
  return null;
end;
$$;
ALTER FUNCTION private.refresh_strategy_backtest_figures() OWNER TO postgres;
CREATE FUNCTION private.require_admin() RETURNS uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_claims jsonb := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  v_uid uuid := (select auth.uid());
begin
  if private.is_service() then
    return null;
  end if;
  if v_uid is null
     or coalesce(v_claims ->> 'role', '') <> 'tradefleet_admin'
     or coalesce(v_claims -> 'app_metadata' ->> 'role', '') <> 'admin'
     or not exists (select 1 from public.profiles p
                     where p.id = v_uid and p.role = 'admin' and p.is_active) then
    raise exception 'only admins may do this' using errcode = 'insufficient_privilege';
  end if;
  return v_uid;
end;
$$;
ALTER FUNCTION private.require_admin() OWNER TO postgres;
CREATE FUNCTION private.set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  new.updated_at := now();
  return new;
end;
$$;
ALTER FUNCTION private.set_updated_at() OWNER TO postgres;
CREATE FUNCTION private.signal_after_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_phase text;
begin
  if tg_op = 'INSERT' or new.status is distinct from old.status then
    perform private.refresh_signal_performance(new.strategy_id);
  end if;
  v_phase := case
    when tg_op = 'INSERT' then 'open'
    when new.status in ('closed', 'cancelled') then 'close'
    else 'update' end;
  perform public.enqueue_job(
    'signals.fanout',
    jsonb_build_object('signal_id', new.id, 'phase', v_phase),
    'default', null, 10, 10,
    'signal-fanout:' || new.id || ':' || v_phase ||
      case when v_phase = 'update' then ':' || extract(epoch from new.updated_at)::text else '' end);
  return null;
end;
$$;
ALTER FUNCTION private.signal_after_change() OWNER TO postgres;
CREATE FUNCTION private.signal_charge_copies_by_batch(p_signal_id uuid, p_limit integer) RETURNS TABLE(charged integer, rejected integer)
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_usage uuid := (select a.id from public.credit_accounts a where a.code = 'system:usage');
begin
  with todo as (
    select e.id, e.subscription_id, e.subscriber_id, e.credits_due,
           md5('copy-trade-credits:' || e.signal_id || ':' || e.subscription_id)::uuid as transfer_id,
           a.id as account_id
      from public.signal_executions e
      join public.credit_accounts a on a.user_id = e.subscriber_id and a.kind = 'user'
     where e.signal_id = p_signal_id and e.charge_status = 'pending'
     order by e.id
     limit p_limit
     for update of e skip locked
  ), results as (
    select t.id, r.result
      from public.credit_create_transfers(coalesce((
             select jsonb_agg(jsonb_build_object(
                      'action', 'transfer', 'id', t.transfer_id, 'debit_account_id', t.account_id,
                      'credit_account_id', v_usage, 'amount', t.credits_due, 'kind', 'usage',
                      'reference_type', 'signal', 'reference_id', p_signal_id::text,
                      'metadata', jsonb_build_object('usage', 'trade', 'quantity', 1, 'unit_price', t.credits_due,
                                                     'subscription_id', t.subscription_id)) order by t.transfer_id)
               from todo t), '[]')) r
      join todo t on t.transfer_id = r.id
  ), marked as (
    update public.signal_executions e
       set charge_status = case when r.result in ('ok', 'exists') then 'charged' else 'rejected' end
      from results r
     where e.id = r.id
    returning e.charge_status, e.subscriber_id, e.signal_id
  ), notes as (
    insert into public.notifications (user_id, kind, title, body, data)
    select m.subscriber_id, 'low_credits', 'Copy trade not charged',
           'Your credits no longer covered a copied trade; top up to keep copying signals.',
           jsonb_build_object('signal_id', m.signal_id)
      from marked m where m.charge_status = 'rejected'
  )
  select count(*) filter (where m.charge_status = 'charged')::integer,
         count(*) filter (where m.charge_status = 'rejected')::integer
    into charged, rejected
    from marked m;
  return next;
end;
$$;
ALTER FUNCTION private.signal_charge_copies_by_batch(p_signal_id uuid, p_limit integer) OWNER TO postgres;
CREATE FUNCTION private.signal_exit_needs_market() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if (private.is_service() and new.source <> 'tradingview')
     or not (new.status = 'closed' or new.action in ('exit', 'close'))
     or old.status in ('closed', 'cancelled')
     or private.market_last_close(new.pair) is not null then
    return new;
  end if;
  raise exception 'the fleet holds no prices for % yet: a signal can be closed once its market has candles', new.pair
    using errcode = 'check_violation', constraint = 'signals_exit_within_market';
end;
$$;
ALTER FUNCTION private.signal_exit_needs_market() OWNER TO postgres;
CREATE TABLE public.signals (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    strategy_id uuid NOT NULL,
    provider_id uuid DEFAULT auth.uid() NOT NULL,
    action text DEFAULT 'entry'::text NOT NULL,
    status text DEFAULT 'open'::text NOT NULL,
    pair text NOT NULL,
    side text NOT NULL,
    entry_price numeric(28,12),
    stop_loss numeric(28,12),
    take_profit numeric(28,12),
    leverage numeric(6,2) DEFAULT 1 NOT NULL,
    exit_price numeric(28,12),
    result_pct numeric(12,4),
    indicators jsonb DEFAULT '{}'::jsonb NOT NULL,
    note text,
    source text DEFAULT 'manual'::text NOT NULL,
    idempotency_key text,
    closed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT signals_action_known CHECK ((action = ANY (ARRAY['entry'::text, 'update'::text, 'exit'::text, 'close'::text]))),
    CONSTRAINT signals_entry_price_finite CHECK ((entry_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT signals_entry_price_positive CHECK ((entry_price > (0)::numeric)),
    CONSTRAINT signals_exit_price_finite CHECK ((exit_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT signals_exit_price_positive CHECK ((exit_price > (0)::numeric)),
    CONSTRAINT signals_leverage_finite CHECK ((leverage <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT signals_leverage_range CHECK (((leverage >= (1)::numeric) AND (leverage <= (125)::numeric))),
    CONSTRAINT signals_pair_format CHECK ((pair ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'::text)),
    CONSTRAINT signals_result_pct_finite CHECK ((result_pct <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT signals_side_known CHECK ((side = ANY (ARRAY['long'::text, 'short'::text]))),
    CONSTRAINT signals_source_known CHECK ((source = ANY (ARRAY['manual'::text, 'tradingview'::text, 'api'::text]))),
    CONSTRAINT signals_status_known CHECK ((status = ANY (ARRAY['open'::text, 'updated'::text, 'closed'::text, 'cancelled'::text]))),
    CONSTRAINT signals_stop_loss_finite CHECK ((stop_loss <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT signals_stop_loss_positive CHECK ((stop_loss > (0)::numeric)),
    CONSTRAINT signals_take_profit_finite CHECK ((take_profit <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT signals_take_profit_positive CHECK ((take_profit > (0)::numeric))
);
ALTER TABLE public.signals OWNER TO postgres;
CREATE FUNCTION private.signal_fan_out_close(p_sig public.signals, p_label text) RETURNS TABLE(executed integer, skipped integer, notified integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_exit numeric;
  v_closes private.fanout_close[];
  v_stale integer;
  v_chunk integer;
  v_lo bigint;
  v_hi bigint;
  -- The largest magnitude an order's or a trade's amount, fee and profit hold (numeric(28,12)).
  v_max numeric := 9999999999999999.999999999999;
begin
  executed := 0; skipped := 0; notified := 0;
  v_exit := coalesce(case when p_sig.status = 'closed' then p_sig.exit_price end, p_sig.entry_price,
                     private.market_last_close(p_sig.pair));
  with todo as (
    select e.subscription_id, e.subscriber_id, t as trade, l.epoch,
           case when v_exit is null then 'no_price' when l.epoch is null then 'bot_not_running' end as reason
      from public.signal_executions e
      join public.trades t on t.id = e.trade_id and t.status = 'open'
      left join public.bot_leases l on l.bot_id = t.bot_id
     where e.signal_id = p_sig.id and e.phase = 'open' and e.status = 'executed'
  ), gate as (
    insert into public.signal_executions (signal_id, subscription_id, subscriber_id, bot_id, phase, status, reason,
                                          order_id, trade_id, amount, price)
    select p_sig.id, d.subscription_id, d.subscriber_id, (d.trade).bot_id, 'close',
           case when d.reason is null then 'executed' else 'skipped' end, d.reason,
           case when d.reason is null then md5('copy-order:' || p_sig.id || ':' || d.subscription_id || ':close')::uuid end,
           (d.trade).id, (d.trade).amount, v_exit
      from todo d
    on conflict (signal_id, subscription_id, phase) do nothing
    returning subscription_id
  )
  select coalesce(array_agg(x.c), '{}'::private.fanout_close[]) into v_closes
    from (select row(d.subscription_id, d.subscriber_id, d.trade, d.epoch, d.reason,
                     ((row_number() over (order by d.subscription_id)) - 1)::integer / 1000)::private.fanout_close as c
            from todo d join gate g on g.subscription_id = d.subscription_id) x;
  select count(*) filter (where f.reason is null), count(*) filter (where f.reason is not null)
    into executed, skipped from unnest(v_closes) f;
  -- Each chunk's candidates lie together (v_closes is in bot order, chunks are runs of it):
  -- slice them out instead of reading the whole array once per chunk.
  for v_chunk, v_lo, v_hi in
    select u.chunk, min(u.ordinality), max(u.ordinality)
      from unnest(v_closes) with ordinality u where u.reason is null group by u.chunk order by 1
  loop
  with stale as (select s.stale_bot_id from public.bot_apply_steps(
    coalesce((select jsonb_agg(jsonb_build_object('bot_id', (f.trade).bot_id, 'epoch', f.epoch))
                from unnest(v_closes[v_lo:v_hi]) f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(jsonb_build_object(
                'id', md5('copy-order:' || p_sig.id || ':' || f.subscription_id || ':close')::uuid,
                'bot_id', (f.trade).bot_id, 'user_id', f.subscriber_id,
                'client_order_id', 'tfc-' || substr(md5(p_sig.id || ':' || f.subscription_id || ':close'), 1, 28),
                'exchange', (f.trade).exchange, 'symbol', (f.trade).trading_pair,
                'side', case (f.trade).direction when 'long' then 'sell' else 'buy' end, 'order_type', 'market',
                'amount', (f.trade).amount, 'filled', (f.trade).amount, 'average_price', v_exit,
                'fee', least(round((f.trade).amount * v_exit * private.copy_fee_rate(), 12), v_max),
                'fee_currency', split_part(split_part((f.trade).trading_pair, '/', 2), ':', 1),
                'status', 'closed', 'reason', 'copy of signal ' || p_sig.id || ' closed', 'is_paper_trade', true, 'signal_id', p_sig.id,
                'lease_epoch', f.epoch))
                from unnest(v_closes[v_lo:v_hi]) f where f.reason is null and f.chunk = v_chunk), '[]'),
    coalesce((select jsonb_agg(to_jsonb(f.trade) || jsonb_build_object(
                'exit_price', v_exit, 'exit_time', now(), 'status', 'closed',
                'exit_reason', case p_sig.status when 'cancelled' then 'signal_cancelled' else 'signal_closed' end,
                'exit_order_id', md5('copy-order:' || p_sig.id || ':' || f.subscription_id || ':close')::uuid,
                'fee', least((f.trade).fee + round((f.trade).amount * v_exit * private.copy_fee_rate(), 12), v_max),
                'profit', least(greatest(x.profit, -v_max), v_max),
                'profit_percentage', least(greatest(round(x.profit / ((f.trade).amount * (f.trade).price) * 100, 4),
                                                    -99999999.9999), 99999999.9999),
                'lease_epoch', f.epoch))
                from unnest(v_closes[v_lo:v_hi]) f
                cross join lateral (select round(((v_exit - (f.trade).price) * (f.trade).amount
                                                  * case (f.trade).direction when 'long' then 1 else -1 end)
                                                 - (f.trade).fee - (f.trade).amount * v_exit * private.copy_fee_rate(), 12)
                                           as profit) x
               where f.reason is null and f.chunk = v_chunk), '[]')) s)
  update public.signal_executions e
     set status = 'skipped', reason = 'bot_lease_changed', order_id = null
    from stale where e.signal_id = p_sig.id and e.phase = 'close' and e.bot_id = stale.stale_bot_id;
  get diagnostics v_stale = row_count;
  executed := executed - v_stale;
  skipped := skipped + v_stale;
  end loop;
  if private.signal_first_announcement(p_sig.id, 'close') then
    insert into public.notifications (user_id, kind, title, body, data)
    select ss.subscriber_id, 'signal',
           case p_sig.status when 'cancelled' then 'Signal cancelled: ' else 'Signal closed: ' end || p_label,
           case when p_sig.status = 'closed'
                then format('Exit %s, result %s%%.', p_sig.exit_price, coalesce(p_sig.result_pct::text, '-'))
                else 'The provider withdrew this signal.' end,
           jsonb_build_object('signal_id', p_sig.id, 'strategy_id', p_sig.strategy_id, 'status', p_sig.status,
                              'result_pct', p_sig.result_pct)
      from public.strategy_subscriptions ss
     where ss.strategy_id = p_sig.strategy_id and ss.status = 'active';
    get diagnostics notified = row_count;
  end if;
  return next;
end;
$$;
ALTER FUNCTION private.signal_fan_out_close(p_sig public.signals, p_label text) OWNER TO postgres;
CREATE FUNCTION private.signal_first_announcement(p_signal_id uuid, p_phase text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_n integer;
begin
  insert into private.signal_fanouts (signal_id, phase) values (p_signal_id, p_phase) on conflict do nothing;
  get diagnostics v_n = row_count;
  return v_n = 1;
end;
$$;
ALTER FUNCTION private.signal_first_announcement(p_signal_id uuid, p_phase text) OWNER TO postgres;
CREATE FUNCTION private.signal_lifecycle() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_low numeric;
  v_high numeric;
  v_last numeric;
  v_latest timestamptz;
  v_entry numeric;
  -- Alerts arrive through the service but speak for the provider.
  v_service boolean := private.is_service() and new.source <> 'tradingview';
begin
  if tg_op = 'INSERT' then
    -- The entry, like the exit, is a price the market traded at: over the last hour of the
    -- fleet's candles of the pair (each market's latest candle included, whatever its
    -- timeframe), when they reach into the last hour.
    if not v_service and new.entry_price is not null then
      -- When the fleet's latest candle of the pair closes (or will).
      select max(m.open_time + case m.timeframe when '1m' then interval '1 minute' when '5m' then interval '5 minutes'
                                                when '15m' then interval '15 minutes' when '30m' then interval '30 minutes'
                                                when '1h' then interval '1 hour' when '4h' then interval '4 hours'
                                                else interval '1 day' end)
        into v_latest from public.market_latest_candles m where m.symbol = new.pair;
      -- Candles of a market no bot trades any more say nothing of the price now.
      if v_latest >= now() - interval '1 hour' then
        select r.low, r.high into v_low, v_high from private.market_range(new.pair, now() - interval '1 hour') r;
      end if;
      if v_low is not null and (new.entry_price < v_low or new.entry_price > v_high) then
        raise exception 'entry price % is outside the market''s range for % over its last hour (% to %)',
          new.entry_price, new.pair, v_low, v_high
          using errcode = 'check_violation', constraint = 'signals_entry_within_market';
      end if;
    end if;
    new.status := 'open';
    new.action := 'entry';
    new.exit_price := null;
    new.result_pct := null;
    new.closed_at := null;
    return new;
  end if;
  if old.status in ('closed', 'cancelled') then
    raise exception 'signal % is % and can no longer change', old.id, old.status
      using errcode = 'check_violation', constraint = 'signals_closed_is_final';
  end if;
  if new.strategy_id <> old.strategy_id or new.provider_id <> old.provider_id or new.pair <> old.pair
     or new.side <> old.side or new.entry_price is distinct from old.entry_price
     or new.leverage <> old.leverage or new.source <> old.source then
    raise exception 'a signal''s strategy, pair, side, entry and leverage are fixed once published'
      using errcode = 'check_violation', constraint = 'signals_terms_fixed';
  end if;
  if new.status = 'cancelled' then
    if not v_service and exists (select 1 from private.signal_fanouts f where f.signal_id = old.id and f.phase = 'open') then
      raise exception 'signal % is live: close it at the market instead of cancelling it', old.id
        using errcode = 'check_violation', constraint = 'signals_cancel_before_entry';
    end if;
    new.closed_at := now();
    new.result_pct := null;
  elsif new.status = 'closed' or new.action in ('exit', 'close') then
    if not v_service then
      select m.close, m.open_time into v_last, v_latest
        from public.market_latest_candles m where m.symbol = new.pair order by m.open_time desc limit 1;
      -- An exit is a price the market traded at since the signal was published (or, on a
      -- market whose candles stopped before, its latest candle's).
      select r.low, r.high into v_low, v_high
        from private.market_range(new.pair, old.created_at - interval '5 minutes') r;
      if new.exit_price is null then
        new.exit_price := v_last;
      elsif v_low is not null and (new.exit_price < v_low or new.exit_price > v_high) then
        raise exception 'exit price % is outside the market''s range for % (% to %)', new.exit_price, new.pair, v_low, v_high
          using errcode = 'check_violation', constraint = 'signals_exit_within_market';
      end if;
    end if;
    if new.exit_price is null then
      raise exception 'closing a signal needs its exit_price'
        using errcode = 'not_null_violation', constraint = 'signals_closed_has_exit_price';
    end if;
    -- An entry the market never traded at (one published while the fleet held no recent
    -- candles of the pair, so unchecked) counts as the nearest price of the market's range
    -- from the hour before its publication up to now.
    v_entry := new.entry_price;
    if not v_service and v_entry is not null and v_low is not null and (v_entry < v_low or v_entry > v_high) then
      select r.low, r.high into v_low, v_high
        from private.market_range(new.pair, least(old.created_at, v_latest) - interval '1 hour') r;
      if v_entry < v_low or v_entry > v_high then
        v_entry := greatest(least(v_entry, v_high), v_low);
      end if;
    end if;
    new.status := 'closed';
    new.action := 'close';
    new.closed_at := now();
    -- Saturated at what the column holds: a close is always possible.
    new.result_pct := case when v_entry is not null then
      least(greatest(round((new.exit_price / v_entry - 1) * 100 * case new.side when 'long' then 1 else -1 end, 4),
                     -99999999.9999), 99999999.9999) end;
  else
    new.status := 'updated';
    new.action := 'update';
    new.exit_price := null;
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.signal_lifecycle() OWNER TO postgres;
CREATE FUNCTION private.signal_rate_limit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_minute integer;
  v_day integer;
begin
  if private.is_service() and new.source <> 'tradingview' then
    return new;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('signals:' || new.strategy_id::text, 0));
  select count(*) filter (where g.created_at > now() - interval '1 minute'), count(*)
    into v_minute, v_day
    from public.signals g where g.strategy_id = new.strategy_id and g.created_at > now() - interval '1 day';
  if v_minute >= 30 or v_day >= 500 then
    raise exception 'signal rate limit: a strategy publishes at most 30 signals a minute and 500 a day'
      using errcode = 'check_violation', constraint = 'signals_rate_limit';
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.signal_rate_limit() OWNER TO postgres;
CREATE FUNCTION private.signal_update_rate_limit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_rate record;
begin
  if new.status <> 'updated' or (private.is_service() and new.source <> 'tradingview') then
    return new;
  end if;
  select * into v_rate from private.rate_limit_take('signal-updates:' || new.strategy_id::text, 30, interval '1 minute');
  if not v_rate.allowed then
    raise exception 'signal rate limit: a strategy''s signals change at most 30 times a minute (retry in % s)',
      v_rate.retry_after_seconds
      using errcode = 'check_violation', constraint = 'signals_update_rate_limit';
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.signal_update_rate_limit() OWNER TO postgres;
CREATE FUNCTION private.strategy_material_edit() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if old.is_verified and new.is_verified
     and (new.content, new.parameters, new.engine, new.monthly_price, new.strategy_type)
         is distinct from (old.content, old.parameters, old.engine, old.monthly_price, old.strategy_type)
     and not private.is_service() then
    new.is_verified := false;
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.strategy_material_edit() OWNER TO postgres;
CREATE FUNCTION private.strategy_price_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  with changed as (
    update public.strategy_subscriptions ss
       set next_price = new.monthly_price,
           next_price_from = case when new.monthly_price < ss.price then now() else now() + interval '30 days' end
     where ss.strategy_id = new.id and ss.status in ('active', 'paused')
       and (ss.price <> new.monthly_price or ss.next_price is not null)
    returning ss.subscriber_id, ss.id, ss.price, ss.next_price_from
  )
  insert into public.notifications (user_id, kind, title, body, data)
  select c.subscriber_id, 'payment', 'Price change: ' || new.name,
         case when new.monthly_price = c.price
              then format('The monthly price of %s stays %s credits.', new.name, c.price)
              else format('The monthly price of %s changes from %s to %s credits for periods starting from %s. '
                          'Accept it, or cancel before then.', new.name, c.price, new.monthly_price,
                          to_char(c.next_price_from at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')) end,
         jsonb_build_object('strategy_id', new.id, 'subscription_id', c.id, 'price', c.price,
                            'next_price', new.monthly_price, 'next_price_from', c.next_price_from)
    from changed c;
  return null;
end;
$$;
ALTER FUNCTION private.strategy_price_changed() OWNER TO postgres;
CREATE FUNCTION private.strategy_subscription_lapsed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  update public.bots b
     set status = 'paused', pause_cause = 'subscription',
         status_reason = 'the subscription to this bot''s marketplace strategy is ' || new.status
   where b.user_id = new.subscriber_id and b.strategy_id = new.strategy_id and b.status = 'running';
  return null;
end;
$$;
ALTER FUNCTION private.strategy_subscription_lapsed() OWNER TO postgres;
CREATE FUNCTION private.subscriptions_repair_legacy_sizing() RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_n integer;
begin
  with bad as (
    select s.id, s.sizing from public.strategy_subscriptions s
     where not coalesce(private.sizing_is_valid(s.sizing), false)
       for update of s
  ), kept as (
    insert into private.strategy_subscriptions_legacy_sizing (subscription_id, sizing)
    select d.id, d.sizing from bad d
    on conflict (subscription_id) do nothing
  )
  update public.strategy_subscriptions s
     set sizing = '{}'::jsonb, auto_execute = false
    from bad d
   where s.id = d.id;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
ALTER FUNCTION private.subscriptions_repair_legacy_sizing() OWNER TO postgres;
CREATE FUNCTION private.sync_user_role() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  update public.profiles
     set role = case when new.raw_app_meta_data ->> 'role' in ('user', 'provider', 'admin')
                     then new.raw_app_meta_data ->> 'role' else 'user' end,
         email = new.email
   where id = new.id;
  return new;
end;
$$;
ALTER FUNCTION private.sync_user_role() OWNER TO postgres;
CREATE FUNCTION private.trade_totals_apply() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_shard smallint := (pg_backend_pid() % 16)::smallint;
begin
  if tg_op = 'INSERT' then
    insert into private.trade_daily_totals as t (day, quote, shard, trades, volume)
    select (n.entry_time at time zone 'utc')::date, split_part(n.trading_pair, '/', 2), v_shard, count(*),
           sum(n.amount * n.price)
      from new_rows n group by 1, 2 order by 1, 2
    on conflict (day, quote, shard) do update
      set trades = t.trades + excluded.trades, volume = t.volume + excluded.volume;
  elsif tg_op = 'DELETE' then
    insert into private.trade_daily_totals as t (day, quote, shard, trades, volume)
    select (o.entry_time at time zone 'utc')::date, split_part(o.trading_pair, '/', 2), v_shard, -count(*),
           -sum(o.amount * o.price)
      from old_rows o group by 1, 2 order by 1, 2
    on conflict (day, quote, shard) do update
      set trades = t.trades + excluded.trades, volume = t.volume + excluded.volume;
  else
    insert into private.trade_daily_totals as t (day, quote, shard, trades, volume)
    select c.day, c.quote, v_shard, sum(c.trades), sum(c.volume)
      from (
        select (o.entry_time at time zone 'utc')::date as day, split_part(o.trading_pair, '/', 2) as quote,
               -1 as trades, -(o.amount * o.price) as volume
          from old_rows o join new_rows n on n.id = o.id
         where (o.entry_time, o.trading_pair, o.amount, o.price) is distinct from (n.entry_time, n.trading_pair, n.amount, n.price)
        union all
        select (n.entry_time at time zone 'utc')::date, split_part(n.trading_pair, '/', 2), 1, n.amount * n.price
          from old_rows o join new_rows n on n.id = o.id
         where (o.entry_time, o.trading_pair, o.amount, o.price) is distinct from (n.entry_time, n.trading_pair, n.amount, n.price)
      ) c
     group by c.day, c.quote order by c.day, c.quote
    on conflict (day, quote, shard) do update
      set trades = t.trades + excluded.trades, volume = t.volume + excluded.volume;
  end if;
  return null;
end;
$$;
ALTER FUNCTION private.trade_totals_apply() OWNER TO postgres;
CREATE FUNCTION private.trade_totals_truncate() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  delete from private.trade_daily_totals;
  return null;
end;
$$;
ALTER FUNCTION private.trade_totals_truncate() OWNER TO postgres;
CREATE FUNCTION private.validate_ai_requests() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_plan public.plans;
  v_count integer;
begin
  perform pg_advisory_xact_lock(hashtextextended('ai_analyses:' || new.user_id::text, 0));
  v_plan := private.current_plan(new.user_id);
  if v_plan.ai_requests_per_month is null then
    return new;
  end if;
  select count(*) into v_count from public.ai_analyses a
   where a.user_id = new.user_id
     and a.created_at >= date_trunc('month', now() at time zone 'UTC') at time zone 'UTC';
  if v_count >= v_plan.ai_requests_per_month then
    perform private.raise_plan_limit(v_plan, 'ai_requests_per_month',
                                     format('allows %s AI requests a month', v_plan.ai_requests_per_month),
                                     v_count + 1, 'ai_analyses_plan_ai_requests_per_month');
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.validate_ai_requests() OWNER TO postgres;
CREATE FUNCTION private.validate_backtest_minutes() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_plan public.plans;
  v_used numeric;
begin
  v_plan := private.current_plan(new.user_id);
  select coalesce(sum(compute_seconds), 0) into v_used
    from public.backtest_runs
   where user_id = new.user_id and created_at >= date_trunc('month', now());
  if v_used >= v_plan.backtest_minutes_per_month * 60 then
    raise exception 'plan limit reached: the % plan allows % backtest minutes a month (backtest_minutes_per_month)',
      v_plan.name, v_plan.backtest_minutes_per_month
      using errcode = 'check_violation', constraint = 'backtest_runs_plan_backtest_minutes';
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.validate_backtest_minutes() OWNER TO postgres;
CREATE FUNCTION private.validate_backtest_queue() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_plan public.plans;
  v_limit integer;
  v_pending integer;
  v_used numeric;
begin
  if private.is_service() then
    return new;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('backtest_runs:' || new.user_id::text, 0));
  v_plan := private.current_plan(new.user_id);
  v_limit := coalesce((v_plan.features ->> 'max_concurrent_backtests')::integer, 3);
  select count(*) filter (where r.status in ('queued', 'running')),
         coalesce(sum(case when r.status in ('queued', 'running') then greatest(coalesce(r.compute_seconds, 0), 60)
                           else coalesce(r.compute_seconds, 0) end)
                  filter (where r.created_at >= date_trunc('month', now())), 0)
    into v_pending, v_used
    from public.backtest_runs r
   where r.user_id = new.user_id;
  if v_pending >= v_limit then
    perform private.raise_plan_limit(v_plan, 'max_concurrent_backtests',
                                     format('runs %s backtests at a time', v_limit), v_pending + 1,
                                     'backtest_runs_plan_concurrency');
  end if;
  if v_used + 60 > v_plan.backtest_minutes_per_month * 60 then
    perform private.raise_plan_limit(v_plan, 'backtest_minutes_per_month',
                                     format('allows %s backtest minutes a month, counting queued and running runs',
                                            v_plan.backtest_minutes_per_month),
                                     ceil((v_used + 60) / 60), 'backtest_runs_plan_backtest_minutes');
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.validate_backtest_queue() OWNER TO postgres;
CREATE FUNCTION private.validate_bot_limits() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_plan public.plans;
  v_limit integer;
  v_count integer;
begin
  perform pg_advisory_xact_lock(hashtextextended(tg_table_name || ':' || new.user_id::text, 0));
  v_plan := private.current_plan(new.user_id);
  if tg_table_name = 'bots' then
    v_limit := v_plan.max_bots;
    select count(*) into v_count from public.bots where user_id = new.user_id;
  else
    v_limit := v_plan.max_strategies;
    select count(*) into v_count from public.strategies where user_id = new.user_id;
  end if;
  if v_count >= v_limit then
    perform private.raise_plan_limit(v_plan, 'max_' || tg_table_name, format('allows %s %s', v_limit, tg_table_name),
                                     v_count + 1, tg_table_name || '_plan_max_' || tg_table_name);
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.validate_bot_limits() OWNER TO postgres;
CREATE FUNCTION private.validate_custom_strategy() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_plan public.plans;
begin
  if private.is_service() or new.strategy_type <> 'custom'
     or (tg_op = 'UPDATE' and old.strategy_type = 'custom') then
    return new;
  end if;
  v_plan := private.current_plan(new.user_id);
  if not v_plan.custom_strategies then
    perform private.raise_plan_limit(v_plan, 'custom_strategies', 'does not include custom strategies', null,
                                     'strategies_plan_custom_strategies');
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.validate_custom_strategy() OWNER TO postgres;
CREATE FUNCTION private.validate_data_request() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_plan public.plans;
  v_limit integer;
  v_count integer;
begin
  if private.is_service() then
    return new;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('data_requests:' || new.user_id::text, 0));
  if new.idempotency_key is not null
     and exists (select 1 from public.data_requests d
                  where d.user_id = new.user_id and d.idempotency_key = new.idempotency_key) then
    return new;
  end if;
  v_plan := private.current_plan(new.user_id);
  v_limit := coalesce((v_plan.features ->> 'data_requests_per_month')::integer, 5);
  select count(*) into v_count from public.data_requests d
   where d.user_id = new.user_id
     and d.created_at >= date_trunc('month', now() at time zone 'UTC') at time zone 'UTC';
  if v_count >= v_limit then
    perform private.raise_plan_limit(v_plan, 'data_requests_per_month',
                                     format('allows %s data downloads a month', v_limit),
                                     v_count + 1, 'data_requests_plan_data_requests_per_month');
  end if;
  return new;
end;
$$;
ALTER FUNCTION private.validate_data_request() OWNER TO postgres;
CREATE TABLE public.webhook_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    provider text NOT NULL,
    event_id text NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    status text DEFAULT 'received'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    error text,
    occurred_at timestamp with time zone,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    processed_at timestamp with time zone,
    waiting_for text[],
    CONSTRAINT webhook_events_provider_known CHECK ((provider = ANY (ARRAY['snaptrade'::text, 'stripe'::text, 'paystack'::text, 'tripay'::text, 'tradingview'::text, 'alpaca'::text]))),
    CONSTRAINT webhook_events_status_known CHECK ((status = ANY (ARRAY['received'::text, 'processing'::text, 'processed'::text, 'failed'::text, 'ignored'::text, 'waiting'::text]))),
    CONSTRAINT webhook_events_waiting_names_keys CHECK (((status <> 'waiting'::text) OR (cardinality(waiting_for) > 0)))
)
PARTITION BY RANGE (received_at);
ALTER TABLE public.webhook_events OWNER TO postgres;
CREATE FUNCTION private.webhook_event_audit_state(p_event public.webhook_events) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select jsonb_build_object('status', p_event.status, 'attempts', p_event.attempts, 'error', p_event.error,
                            'processed_at', p_event.processed_at)
$$;
ALTER FUNCTION private.webhook_event_audit_state(p_event public.webhook_events) OWNER TO postgres;
CREATE FUNCTION private.webhook_events_once() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if tg_op = 'UPDATE' then
    if new.provider is distinct from old.provider or new.event_id is distinct from old.event_id then
      raise exception 'webhook_events_key_fixed: an event keeps its provider and event id'
        using errcode = '23514';
    end if;
    return new;
  end if;
  insert into private.webhook_event_keys (provider, event_id, id, received_at)
  values (new.provider, new.event_id, new.id, new.received_at)
  on conflict on constraint webhook_events_once_per_provider_event do nothing;
  if found then
    return new;
  end if;
  -- An update of received_at into another week moves the event: a delete, then this
  -- insert of the same event (its id) into the other week's partition.
  update private.webhook_event_keys k set received_at = new.received_at
   where k.provider = new.provider and k.event_id = new.event_id and k.id = new.id;
  if found then
    return new;
  end if;
  return null;
end;
$$;
ALTER FUNCTION private.webhook_events_once() OWNER TO postgres;
CREATE FUNCTION private.write_limit_default(p_table text) RETURNS integer
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select case p_table when 'backtest_runs' then 10 when 'sync_runs' then 2 when 'signals' then 60
                      when 'reviews' then 5 end
$$;
ALTER FUNCTION private.write_limit_default(p_table text) OWNER TO postgres;
CREATE FUNCTION private.write_limit_take(p_table text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_user uuid := (select auth.uid());
  v_limit integer;
  v_rate record;
begin
  if p_table is null or p_table not in ('backtest_runs', 'sync_runs', 'signals', 'reviews') then
    return;
  end if;
  if v_user is null or private.is_service() then
    return;  -- anon cannot write these (RLS); the service is not limited
  end if;
  v_limit := coalesce((select ((p.features -> 'write_requests_per_minute') ->> p_table)::integer
                         from private.current_plan(v_user) p),
                      private.write_limit_default(p_table));
  select * into v_rate from private.rate_limit_take('write:' || p_table || ':' || v_user, v_limit, interval '1 minute');
  if not v_rate.allowed then
    raise sqlstate 'PGRST' using
      message = json_build_object(
        'code', 'TF429',
        'message', format('rate limit reached: at most %s requests a minute to %s (write_requests_per_minute.%s)',
                          v_limit, p_table, p_table),
        'details', null, 'hint', format('retry in %s s', v_rate.retry_after_seconds))::text,
      detail = json_build_object(
        'status', 429,
        'headers', json_build_object('Retry-After', v_rate.retry_after_seconds::text,
                                     'RateLimit-Limit', v_limit::text,
                                     'RateLimit-Remaining', v_rate.remaining::text,
                                     'RateLimit-Reset', v_rate.reset_seconds::text))::text;
  end if;
end;
$$;
ALTER FUNCTION private.write_limit_take(p_table text) OWNER TO postgres;
CREATE FUNCTION public.accept_organisation_invitation(p_invitation_id uuid) RETURNS public.organisation_members
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := private.organisation_caller();
  v_inv public.organisation_invitations := private.organisation_invitation_for_caller(p_invitation_id);
  v_member public.organisation_members;
begin
  update public.organisation_invitations i set status = 'accepted', responded_at = now() where i.id = v_inv.id;
  insert into public.organisation_members (user_id, organisation_id, role, invited_by)
  values (v_uid, v_inv.organisation_id, v_inv.role, v_inv.invited_by)
  on conflict (user_id, organisation_id) do nothing
  returning * into v_member;
  if v_member.user_id is null then
    raise exception 'you are a member of this organisation already'
      using errcode = 'unique_violation', constraint = 'organisation_members_pkey';
  end if;
  return v_member;
end;
$$;
ALTER FUNCTION public.accept_organisation_invitation(p_invitation_id uuid) OWNER TO postgres;
CREATE FUNCTION public.accept_strategy_price(p_subscription_id uuid) RETURNS public.strategy_subscriptions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.next_price is null then
    raise exception 'no price change is waiting for this subscription' using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_price_change_pending';
  end if;
  update public.strategy_subscriptions s set next_price_from = now() where s.id = v_sub.id returning * into v_sub;
  return v_sub;
end;
$$;
ALTER FUNCTION public.accept_strategy_price(p_subscription_id uuid) OWNER TO postgres;
CREATE FUNCTION public.acquire_bot_leases(p_worker_id uuid, p_ttl_s double precision, p_live_s double precision DEFAULT NULL::double precision) RETURNS TABLE(bot_id uuid, epoch bigint)
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_status text;
  v_capacity integer;
  v_bots integer;
  v_left integer;
  v_workers integer;
  v_target integer := 0;
  v_share integer;
  v_held integer;
  v_take uuid[];
  w record;
begin
  perform pg_advisory_xact_lock(hashtextextended('tradefleet:bot_leases', 0));
  select wk.status, wk.capacity into v_status, v_capacity from public.workers wk where wk.id = p_worker_id;
  if v_status is distinct from 'running' then
    -- Draining, stopped, dead or unknown: hold nothing.
    perform 1 from public.bot_leases l where l.worker_id = p_worker_id order by l.bot_id for update;
    update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
    where l.worker_id = p_worker_id;
    return;
  end if;
  -- Every lease row this call may change is locked first, in bot-id order (the order
  -- public.bot_apply_steps locks them in): this worker's own, then free ones it may take.
  perform 1 from public.bot_leases l where l.worker_id = p_worker_id order by l.bot_id for update;
  -- Bots that stopped running are let go.
  update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
  where l.worker_id = p_worker_id
    and not exists (select 1 from public.bots b where b.id = l.bot_id and b.status = 'running');
  select count(*) into v_bots from public.bots b where b.status = 'running';
  select count(*) into v_workers
  from public.workers wk
  where wk.id = p_worker_id
     or (wk.status = 'running' and coalesce((wk.metadata ->> 'leases')::boolean, false)
         and wk.heartbeat_at >= now() - make_interval(secs => coalesce(p_live_s, p_ttl_s)));
  -- Water-filling: workers whose capacity is below the fair share of what is left are
  -- saturated at their capacity; everyone else may hold up to ceil(left / workers left).
  -- Equal workers get equal targets, so who holds a bot only changes when one is over.
  v_left := v_bots;
  for w in
    select wk.id, wk.capacity
    from public.workers wk
    where wk.id = p_worker_id
       or (wk.status = 'running' and coalesce((wk.metadata ->> 'leases')::boolean, false)
           and wk.heartbeat_at >= now() - make_interval(secs => coalesce(p_live_s, p_ttl_s)))
    order by wk.capacity, wk.id
  loop
    v_share := ceil(v_left::numeric / greatest(v_workers, 1))::integer;
    if w.capacity >= v_share then
      v_target := least(v_share, v_capacity);
      exit;
    end if;
    if w.id = p_worker_id then
      v_target := w.capacity;
      exit;
    end if;
    v_left := greatest(v_left - w.capacity, 0);
    v_workers := v_workers - 1;
  end loop;
  -- Over the share: let the newest leases go.
  update public.bot_leases l set worker_id = null, expires_at = now()
  where l.bot_id in (
    select x.bot_id from public.bot_leases x
    where x.worker_id = p_worker_id and x.expires_at > now()
    order by x.acquired_at desc, x.bot_id
    offset v_target
  );
  -- Renew what is still held.
  update public.bot_leases l
  set expires_at = now() + make_interval(secs => p_ttl_s), renewed_at = now()
  where l.worker_id = p_worker_id and l.expires_at > now();
  get diagnostics v_held = row_count;
  -- Under the share: take free bots (never leased, released or expired), longest-free first.
  -- The chosen ones are locked in bot-id order before they are taken.
  if v_held < v_target then
    select coalesce(array_agg(c.id), '{}') into v_take
    from (select b.id
          from public.bots b
          left join public.bot_leases x on x.bot_id = b.id
          where b.status = 'running'
            and (x.bot_id is null or x.expires_at <= now() or x.worker_id is null)
          order by x.expires_at nulls first, b.id
          limit v_target - v_held) c;
    perform 1 from public.bot_leases l where l.bot_id = any (v_take) order by l.bot_id for update;
    insert into public.bot_leases as l (bot_id, worker_id, epoch, acquired_at, renewed_at, expires_at)
    select t.id, p_worker_id, 1, now(), now(), now() + make_interval(secs => p_ttl_s)
    from unnest(v_take) as t(id)
    order by t.id
    on conflict on constraint bot_leases_pkey do update
      set worker_id = excluded.worker_id,
          epoch = l.epoch + 1,
          acquired_at = excluded.acquired_at,
          renewed_at = excluded.renewed_at,
          expires_at = excluded.expires_at
      where l.expires_at <= now() or l.worker_id is null;
  end if;
  return query
    select l.bot_id, l.epoch from public.bot_leases l
    where l.worker_id = p_worker_id and l.expires_at > now()
    order by l.bot_id;
end;
$$;
ALTER FUNCTION public.acquire_bot_leases(p_worker_id uuid, p_ttl_s double precision, p_live_s double precision) OWNER TO postgres;
CREATE FUNCTION public.admin_credit_audit() RETURNS TABLE(rule text, account_id uuid, detail text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform private.require_admin();
  return query select a.rule, a.account_id, a.detail from public.credit_audit() a;
end;
$$;
ALTER FUNCTION public.admin_credit_audit() OWNER TO postgres;
CREATE FUNCTION public.admin_discard_job(p_job_id bigint, p_reason text) RETURNS public.jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_actor uuid := private.require_admin();
  v_before public.jobs;
  v_after public.jobs;
begin
  perform private.admin_check_reason(p_reason);
  select * into v_before from public.jobs j where j.id = p_job_id for update;
  if not found then
    raise exception 'no such job: %', p_job_id using errcode = 'no_data_found';
  end if;
  if not (v_before.status = 'dead' or (v_before.status = 'queued' and v_before.last_error is not null)) then
    raise exception 'job % is %; only dead or failed jobs are discarded', p_job_id, v_before.status
      using errcode = 'check_violation', constraint = 'jobs_discard_dead_or_failed';
  end if;
  update public.jobs j
     set status = 'cancelled', finished_at = now(), locked_by = null, locked_until = null, updated_at = now()
   where j.id = p_job_id
  returning * into v_after;
  perform private.admin_audit(v_actor, 'discard_job', 'job', p_job_id::text, p_reason,
                              private.job_audit_state(v_before), private.job_audit_state(v_after));
  return v_after;
end;
$$;
ALTER FUNCTION public.admin_discard_job(p_job_id bigint, p_reason text) OWNER TO postgres;
CREATE FUNCTION public.admin_platform_overview() RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_today date := (now() at time zone 'utc')::date;
  v_from date := v_today - 29;
  v_from_ts timestamptz := (v_today - 29)::timestamp at time zone 'utc';
  v_today_ts timestamptz := v_today::timestamp at time zone 'utc';
  v_month_ts timestamptz := date_trunc('month', v_today)::timestamp at time zone 'utc';
begin
  perform private.require_admin();
  return jsonb_build_object(
    'as_of', now(),
    'window', jsonb_build_object('from', v_from, 'to', v_today),
    -- Active: signed in during the last 7 days.
    'users', (
      select jsonb_build_object(
        'total', count(*),
        'new_today', count(*) filter (where u.created_at >= v_today_ts),
        'active_7d', count(*) filter (where u.last_sign_in_at >= now() - interval '7 days'))
      from auth.users u),
    -- Current subscriptions per plan; MRR counts paid active ones at the plan's monthly
    -- price (a yearly invoice at a twelfth of the yearly price), per currency.
    'subscriptions', coalesce((
      select jsonb_agg(jsonb_build_object('plan', x.name, 'currency', x.currency, 'active', x.active,
                                          'trial', x.trial, 'mrr', x.mrr) order by x.sort_order, x.name)
      from (
        select p.name, p.currency, p.sort_order,
               count(*) filter (where s.status = 'active') as active,
               count(*) filter (where s.status = 'trial') as trial,
               coalesce(sum(case when i.period = 'year' then round(coalesce(p.price_yearly, p.price_monthly * 12) / 12, 2)
                                 else p.price_monthly end) filter (where s.status = 'active'), 0) as mrr
        from public.subscriptions s
        join public.plans p on p.id = s.plan_id
        left join public.invoices i on i.id = s.invoice_id
        where s.status in ('active', 'trial') and s.expires_at > now()
        group by p.id, p.name, p.currency, p.sort_order) x), '[]'),
    'mrr', coalesce((
      select jsonb_object_agg(y.currency, y.mrr)
      from (
        select p.currency,
               sum(case when i.period = 'year' then round(coalesce(p.price_yearly, p.price_monthly * 12) / 12, 2)
                        else p.price_monthly end) as mrr
        from public.subscriptions s
        join public.plans p on p.id = s.plan_id
        left join public.invoices i on i.id = s.invoice_id
        where s.status = 'active' and s.expires_at > now()
        group by p.currency) y), '{}'),
    -- Paid invoices per day, provider and currency; a partly refunded one counts what was
    -- kept (a fully refunded one nothing).
    'revenue_per_day', coalesce((
      select jsonb_agg(jsonb_build_object('day', r.day, 'provider', r.provider, 'currency', r.currency,
                                          'invoices', r.n, 'amount', r.amount) order by r.day, r.provider, r.currency)
      from (
        select (i.paid_at at time zone 'utc')::date as day, i.provider, i.currency, count(*) as n,
               sum(i.amount - i.amount_refunded) as amount
        from public.invoices i
        where i.status in ('paid', 'partially_refunded') and i.paid_at >= v_from_ts
        group by 1, 2, 3) r), '[]'),
    -- All-time credits from the system accounts' running totals; held is what holds
    -- reserve now.
    'credits', (
      select jsonb_build_object(
        'granted', coalesce(sum(a.debits_posted - a.credits_posted) filter (where a.code = 'system:grants'), 0),
        'purchased', coalesce(sum(a.debits_posted - a.credits_posted) filter (where a.code = 'system:purchases'), 0),
        'spent', coalesce(sum(a.credits_posted - a.debits_posted) filter (where a.code = 'system:usage'), 0),
        'held', coalesce((select sum(h.debits_pending) from public.credit_accounts h where h.debits_pending > 0), 0))
      from public.credit_accounts a
      where a.user_id is null),
    -- Trades opened per day; volume (amount × price) per quote currency.
    'trades_per_day', coalesce((
      select jsonb_agg(jsonb_build_object('day', d.day, 'trades', d.trades, 'volume', d.volume) order by d.day)
      from (
        select q.day, sum(q.trades) as trades, jsonb_object_agg(q.quote, q.volume) as volume
        from (
          select t.day, t.quote, sum(t.trades) as trades, round(sum(t.volume), 8) as volume
          from private.trade_daily_totals t
          where t.day >= v_from
          group by 1, 2
          having sum(t.trades) <> 0) q
        group by q.day) d), '[]'),
    'bots_running', coalesce((
      select jsonb_object_agg(b.exchange, b.n)
      from (select b.exchange, count(*) as n from public.bots b where b.status = 'running' group by b.exchange) b), '{}'),
    'signals', jsonb_build_object(
      'today', (select count(*) from public.signals s where s.created_at >= v_today_ts),
      'last_30_days', (select count(*) from public.signals s where s.created_at >= v_from_ts)),
    'copy_executions', (
      select jsonb_build_object(
        'today', count(*) filter (where e.created_at >= v_today_ts),
        'last_30_days', count(*),
        'executed_30_days', count(*) filter (where e.status = 'executed'),
        'skipped_30_days', count(*) filter (where e.status = 'skipped'))
      from public.signal_executions e
      where e.created_at >= v_from_ts),
    'backtest_minutes', (
      select jsonb_build_object(
        'today', round(coalesce(sum(r.compute_seconds) filter (where r.finished_at >= v_today_ts), 0) / 60, 2),
        'month_to_date', round(coalesce(sum(r.compute_seconds) filter (where r.finished_at >= v_month_ts), 0) / 60, 2),
        'last_30_days', round(coalesce(sum(r.compute_seconds) filter (where r.finished_at >= v_from_ts), 0) / 60, 2))
      from public.backtest_runs r
      where r.finished_at >= least(v_from_ts, v_month_ts))
  );
end;
$$;
ALTER FUNCTION public.admin_platform_overview() OWNER TO postgres;
CREATE FUNCTION public.admin_replay_webhook_event(p_event_id uuid, p_reason text) RETURNS public.webhook_events
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_actor uuid := private.require_admin();
  v_before public.webhook_events;
  v_after public.webhook_events;
begin
  perform private.admin_check_reason(p_reason);
  select * into v_before from public.webhook_events e where e.id = p_event_id for update;
  if not found then
    raise exception 'no such webhook event: %', p_event_id using errcode = 'no_data_found';
  end if;
  if v_before.status <> 'failed' then
    raise exception 'webhook event % is %; only failed events are replayed', p_event_id, v_before.status
      using errcode = 'check_violation', constraint = 'webhook_events_replay_failed';
  end if;
  if v_before.provider not in ('stripe', 'paystack', 'tripay', 'snaptrade') then
    raise exception 'webhook event % is from %, which no job processes; it cannot be replayed', p_event_id, v_before.provider
      using errcode = 'check_violation', constraint = 'webhook_events_replay_processed_provider';
  end if;
  if exists (select 1 from public.jobs j
              where j.payload ->> 'webhook_event_id' = p_event_id::text and j.status in ('queued', 'running')) then
    raise exception 'webhook event % still has a job waiting or running; retry that job instead', p_event_id
      using errcode = 'check_violation', constraint = 'webhook_events_replay_job_pending';
  end if;
  update public.webhook_events e
     set status = 'received', processed_at = null
   where e.id = p_event_id
  returning * into v_after;
  perform private.admin_audit(v_actor, 'replay_webhook_event', 'webhook_event', p_event_id::text, p_reason,
                              private.webhook_event_audit_state(v_before),
                              private.webhook_event_audit_state(v_after));
  return v_after;
end;
$$;
ALTER FUNCTION public.admin_replay_webhook_event(p_event_id uuid, p_reason text) OWNER TO postgres;
CREATE TABLE public.credit_exposures (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    invoice_id uuid NOT NULL,
    user_id uuid NOT NULL,
    account_kind text NOT NULL,
    reason text NOT NULL,
    amount_due numeric(24,8) NOT NULL,
    amount_recovered numeric(24,8) DEFAULT 0 NOT NULL,
    shortfall numeric(24,8) GENERATED ALWAYS AS ((amount_due - amount_recovered)) STORED,
    status text DEFAULT 'open'::text NOT NULL,
    resolution text,
    resolved_by uuid,
    resolved_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credit_exposures_account_kind_known CHECK ((account_kind = ANY (ARRAY['user'::text, 'provider_earnings'::text]))),
    CONSTRAINT credit_exposures_amount_due_finite CHECK ((amount_due <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_exposures_amount_due_positive CHECK ((amount_due > (0)::numeric)),
    CONSTRAINT credit_exposures_amount_recovered_finite CHECK ((amount_recovered <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_exposures_amount_recovered_not_negative CHECK ((amount_recovered >= (0)::numeric)),
    CONSTRAINT credit_exposures_reason_known CHECK ((reason = ANY (ARRAY['refund'::text, 'chargeback'::text]))),
    CONSTRAINT credit_exposures_resolution_length CHECK ((char_length(resolution) <= 1000)),
    CONSTRAINT credit_exposures_shortfall_positive CHECK ((amount_recovered < amount_due)),
    CONSTRAINT credit_exposures_status_known CHECK ((status = ANY (ARRAY['open'::text, 'settled'::text, 'written_off'::text])))
);
ALTER TABLE public.credit_exposures OWNER TO postgres;
CREATE FUNCTION public.admin_resolve_credit_exposure(p_id uuid, p_status text, p_reason text) RETURNS public.credit_exposures
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_actor uuid := private.require_admin();
  v_row public.credit_exposures;
begin
  perform private.admin_check_reason(p_reason);
  if p_status is null or p_status not in ('settled', 'written_off') then
    raise exception 'an exposure is resolved as settled or written_off, not %', p_status
      using errcode = 'invalid_parameter_value';
  end if;
  update public.credit_exposures e
     set status = p_status, resolution = p_reason, resolved_by = v_actor, resolved_at = now()
   where e.id = p_id and e.status = 'open'
  returning * into v_row;
  if not found then
    raise exception 'no open credit exposure %', p_id using errcode = 'no_data_found';
  end if;
  perform private.admin_audit(v_actor, 'resolve_credit_exposure', 'credit_exposure', p_id::text,
                              p_reason, '{}', jsonb_build_object('status', p_status));
  return v_row;
end;
$$;
ALTER FUNCTION public.admin_resolve_credit_exposure(p_id uuid, p_status text, p_reason text) OWNER TO postgres;
CREATE FUNCTION public.admin_retry_job(p_job_id bigint) RETURNS public.jobs
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_actor uuid := private.require_admin();
  v_before public.jobs;
  v_after public.jobs;
begin
  select * into v_before from public.jobs j where j.id = p_job_id for update;
  if not found then
    raise exception 'no such job: %', p_job_id using errcode = 'no_data_found';
  end if;
  if not (v_before.status in ('dead', 'cancelled') or (v_before.status = 'queued' and v_before.last_error is not null)) then
    raise exception 'job % is %; only dead, discarded or failed jobs are retried', p_job_id, v_before.status
      using errcode = 'check_violation', constraint = 'jobs_retry_dead_or_failed';
  end if;
  update public.jobs j
     set status = 'queued',
         run_at = now(),
         max_attempts = greatest(j.max_attempts, j.attempts + 1),
         finished_at = null,
         locked_by = null,
         locked_until = null,
         updated_at = now()
   where j.id = p_job_id
  returning * into v_after;
  perform pg_notify('tradefleet_jobs', v_after.queue);
  perform private.admin_audit(v_actor, 'retry_job', 'job', p_job_id::text, null,
                              private.job_audit_state(v_before), private.job_audit_state(v_after));
  return v_after;
end;
$$;
ALTER FUNCTION public.admin_retry_job(p_job_id bigint) OWNER TO postgres;
CREATE TABLE public.payouts (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    destination_id uuid NOT NULL,
    hold_id uuid NOT NULL,
    amount numeric(24,8) NOT NULL,
    status text DEFAULT 'requested'::text NOT NULL,
    source text DEFAULT 'request'::text NOT NULL,
    approved_by uuid,
    approved_at timestamp with time zone,
    provider_transfer_id text,
    failure text,
    settled_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT payouts_amount_finite CHECK ((amount <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT payouts_amount_positive CHECK ((amount > (0)::numeric)),
    CONSTRAINT payouts_failure_length CHECK ((char_length(failure) <= 1000)),
    CONSTRAINT payouts_provider_transfer_id_length CHECK ((char_length(provider_transfer_id) <= 255)),
    CONSTRAINT payouts_source_known CHECK ((source = ANY (ARRAY['request'::text, 'monthly'::text]))),
    CONSTRAINT payouts_status_known CHECK ((status = ANY (ARRAY['requested'::text, 'approved'::text, 'sent'::text, 'paid'::text, 'failed'::text, 'reversed'::text, 'rejected'::text])))
);
ALTER TABLE public.payouts OWNER TO postgres;
CREATE FUNCTION public.admin_review_payout(p_payout_id uuid, p_approve boolean, p_reason text) RETURNS public.payouts
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_actor uuid := private.require_admin();
  v_row public.payouts;
begin
  perform private.admin_check_reason(p_reason);
  if p_approve is null then
    raise exception 'approve (true) or reject (false)' using errcode = 'invalid_parameter_value';
  end if;
  select * into v_row from public.payouts p where p.id = p_payout_id for update;
  if not found then
    raise exception 'no payout %', p_payout_id using errcode = 'no_data_found';
  end if;
  if v_row.status <> 'requested' then
    raise exception 'payout % is % already', p_payout_id, v_row.status using errcode = 'check_violation',
      constraint = 'payouts_review_once';
  end if;
  if not p_approve then
    -- Admins are no service role: the ledger's own void, as credit_correct does.
    perform private.credit_apply_or_raise(md5('payout-void:' || v_row.id)::uuid, 'void', null, null, null, null,
                                          v_row.hold_id, null, null, null,
                                          jsonb_build_object('payout_id', v_row.id, 'rejected', p_reason));
  end if;
  update public.payouts p
     set status = case when p_approve then 'approved' else 'rejected' end,
         approved_by = v_actor, approved_at = case when p_approve then now() end,
         failure = case when p_approve then null else p_reason end,
         settled_at = case when p_approve then null else now() end,
         updated_at = now()
   where p.id = v_row.id
  returning * into v_row;
  perform private.admin_audit(v_actor, case when p_approve then 'approve_payout' else 'reject_payout' end,
                              'payout', v_row.id::text, p_reason, '{}', jsonb_build_object('status', v_row.status));
  insert into public.notifications (user_id, kind, title, body, data)
  values (v_row.user_id, 'payment', case when p_approve then 'Payout approved' else 'Payout rejected' end,
          format('Your payout of %s credits was %s.', v_row.amount, case when p_approve then 'approved' else 'rejected: ' || p_reason end),
          jsonb_build_object('payout_id', v_row.id, 'status', v_row.status));
  return v_row;
end;
$$;
ALTER FUNCTION public.admin_review_payout(p_payout_id uuid, p_approve boolean, p_reason text) OWNER TO postgres;
CREATE FUNCTION public.admin_service_health() RETURNS TABLE(service text, target text, status text, latency_ms numeric, error text, checked_at timestamp with time zone, changed_at timestamp with time zone, history jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform private.require_admin();
  return query
  select s.service, s.target, s.status, s.latency_ms, s.error, s.checked_at, s.changed_at,
         coalesce((select jsonb_agg(jsonb_build_object('status', h.status, 'latency_ms', h.latency_ms,
                                                       'checked_at', h.checked_at) order by h.checked_at desc, h.id desc)
                     from (select c.id, c.status, c.latency_ms, c.checked_at
                             from public.service_checks c
                            where c.service = s.service and c.target = s.target
                            order by c.checked_at desc, c.id desc
                            limit 20) h), '[]'::jsonb)
    from public.service_status s
   order by s.service, s.target;
end;
$$;
ALTER FUNCTION public.admin_service_health() OWNER TO postgres;
CREATE TABLE public.profiles (
    id uuid NOT NULL,
    email text,
    full_name text,
    avatar_url text,
    role text DEFAULT 'user'::text NOT NULL,
    preferences jsonb DEFAULT '{}'::jsonb NOT NULL,
    telegram_chat_id text,
    discord_webhook_url text,
    is_active boolean DEFAULT true NOT NULL,
    last_login_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT profiles_full_name_check CHECK ((char_length(full_name) <= 200)),
    CONSTRAINT profiles_role_known CHECK ((role = ANY (ARRAY['user'::text, 'provider'::text, 'admin'::text])))
);
ALTER TABLE public.profiles OWNER TO postgres;
CREATE FUNCTION public.admin_set_user_role(p_user_id uuid, p_role text, p_reason text) RETURNS public.profiles
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_actor uuid := private.require_admin();
  v_before public.profiles;
  v_after public.profiles;
begin
  if p_role is null or p_role not in ('user', 'provider', 'admin') then
    raise exception 'a role is user, provider or admin' using errcode = 'check_violation',
      constraint = 'profiles_role_known';
  end if;
  perform private.admin_check_reason(p_reason);
  select * into v_before from public.profiles p where p.id = p_user_id for update;
  if not found then
    raise exception 'no such user: %', p_user_id using errcode = 'no_data_found';
  end if;
  if v_actor is not null and (p_role = 'admin' or v_before.role = 'admin') then
    raise exception 'only the service role grants or revokes the admin role' using errcode = 'insufficient_privilege';
  end if;
  if v_before.role = p_role then
    return v_before;
  end if;
  update auth.users u
     set raw_app_meta_data = coalesce(u.raw_app_meta_data, '{}') || jsonb_build_object('role', p_role)
   where u.id = p_user_id;
  select * into v_after from public.profiles p where p.id = p_user_id;
  perform private.admin_audit(v_actor, 'set_user_role', 'user', p_user_id::text, p_reason,
                              jsonb_build_object('role', v_before.role), jsonb_build_object('role', v_after.role));
  return v_after;
end;
$$;
ALTER FUNCTION public.admin_set_user_role(p_user_id uuid, p_role text, p_reason text) OWNER TO postgres;
CREATE TABLE public.strategies (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid DEFAULT auth.uid() NOT NULL,
    name text NOT NULL,
    description text,
    strategy_type text NOT NULL,
    engine text DEFAULT 'rules'::text NOT NULL,
    content text,
    parameters jsonb DEFAULT '{}'::jsonb NOT NULL,
    performance jsonb DEFAULT '{}'::jsonb NOT NULL,
    is_public boolean DEFAULT false NOT NULL,
    is_verified boolean DEFAULT false NOT NULL,
    backtest_results jsonb,
    backtest_count integer DEFAULT 0 NOT NULL,
    avg_backtest_return numeric(12,4) DEFAULT 0 NOT NULL,
    tags text[] DEFAULT '{}'::text[] NOT NULL,
    category text,
    risk_level text,
    monthly_price numeric(12,2) DEFAULT 0 NOT NULL,
    provider_share numeric(5,4) DEFAULT 0.80 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    organisation_id uuid,
    CONSTRAINT strategies_avg_backtest_return_finite CHECK ((avg_backtest_return <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT strategies_engine_known CHECK ((engine = ANY (ARRAY['sma_cross'::text, 'ema_cross'::text, 'rsi'::text, 'macd'::text, 'rsi_macd'::text, 'bollinger'::text, 'rules'::text]))),
    CONSTRAINT strategies_monthly_price_finite CHECK ((monthly_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT strategies_monthly_price_not_negative CHECK ((monthly_price >= (0)::numeric)),
    CONSTRAINT strategies_name_not_blank CHECK ((btrim(name) <> ''::text)),
    CONSTRAINT strategies_provider_share_finite CHECK ((provider_share <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT strategies_provider_share_fraction CHECK (((provider_share >= (0)::numeric) AND (provider_share <= (1)::numeric))),
    CONSTRAINT strategies_risk_level_known CHECK ((risk_level = ANY (ARRAY['low'::text, 'medium'::text, 'high'::text]))),
    CONSTRAINT strategies_type_known CHECK ((strategy_type = ANY (ARRAY['builtin'::text, 'custom'::text, 'ai_generated'::text, 'marketplace'::text])))
);
ALTER TABLE public.strategies OWNER TO postgres;
CREATE FUNCTION public.admin_verify_strategy(p_strategy_id uuid, p_verified boolean, p_reason text) RETURNS public.strategies
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_actor uuid := private.require_admin();
  v_before public.strategies;
  v_after public.strategies;
begin
  if p_verified is null then
    raise exception 'say whether the strategy is verified (true or false)' using errcode = 'not_null_violation';
  end if;
  perform private.admin_check_reason(p_reason);
  select * into v_before from public.strategies s where s.id = p_strategy_id for update;
  if not found then
    raise exception 'no such strategy: %', p_strategy_id using errcode = 'no_data_found';
  end if;
  if p_verified and not (v_before.is_public and v_before.strategy_type = 'marketplace') then
    raise exception 'only a public marketplace strategy can be verified' using errcode = 'check_violation',
      constraint = 'strategies_verified_marketplace';
  end if;
  if v_before.is_verified = p_verified then
    return v_before;
  end if;
  update public.strategies s set is_verified = p_verified where s.id = p_strategy_id
  returning * into v_after;
  insert into public.notifications (user_id, kind, title, body, data)
  values (v_before.user_id, 'system',
          case when p_verified then 'Your strategy is verified' else 'Your strategy is no longer verified' end,
          format('%s: %s', v_before.name, p_reason),
          jsonb_build_object('strategy_id', p_strategy_id, 'is_verified', p_verified));
  perform private.admin_audit(v_actor, case when p_verified then 'verify_strategy' else 'unverify_strategy' end,
                              'strategy', p_strategy_id::text, p_reason,
                              jsonb_build_object('is_verified', v_before.is_verified),
                              jsonb_build_object('is_verified', v_after.is_verified));
  return v_after;
end;
$$;
ALTER FUNCTION public.admin_verify_strategy(p_strategy_id uuid, p_verified boolean, p_reason text) OWNER TO postgres;
CREATE FUNCTION public.ai_token_price(p_user_id uuid) RETURNS numeric
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'only the fleet prices AI tokens' using errcode = 'insufficient_privilege';
  end if;
  return coalesce(((private.current_plan(p_user_id)).features ->> 'credits_per_1k_ai_tokens')::numeric, 0);
end;
$$;
ALTER FUNCTION public.ai_token_price(p_user_id uuid) OWNER TO postgres;
CREATE FUNCTION public.api_authorize(p_key text, p_scope text, p_ip inet DEFAULT NULL::inet, p_calls jsonb DEFAULT NULL::jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_key record;
  v_now timestamptz;
  v_tat timestamptz;
  v_remaining integer;
  v_reset integer;
  v_retry integer;
  v_rate record;
  v_key_rate record;
  v_key_taken boolean := false;
  v_refused boolean := false;
  v_limit integer;
  v_t interval;
  v_ids jsonb;
begin
  -- private.is_service(), inline (a SQL function with settings is planned again at every call).
  if current_user in ('anon', 'authenticated', 'tradefleet_admin')
     or coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', 'service_role')
        <> 'service_role' then
    raise exception 'only the service resolves API keys' using errcode = 'insufficient_privilege';
  end if;
  -- What this call writes (the limiter, the key's last use, the carried usage records) may
  -- be lost in a crash without harm, so its transaction commits without waiting for the WAL
  -- flush: that wait is most of a request's cost. Call it as a statement of its own, as the
  -- api function does.
  perform set_config('synchronous_commit', 'off', true);
  if p_calls is not null then
    -- private.api_calls_record, inline (a nested function with settings costs a call).
    if jsonb_typeof(p_calls) <> 'array' or jsonb_array_length(p_calls) > 1000 then
      raise exception 'calls must be a JSON array of at most 1000 calls' using errcode = 'invalid_parameter_value';
    end if;
    insert into private.api_calls (key_id, user_id, endpoint, status, latency_ms, called_at)
    select c.key_id, c.user_id, c.endpoint, c.status, greatest(c.latency_ms, 0), coalesce(c.at, now())
      from jsonb_to_recordset(p_calls) as c(key_id uuid, user_id uuid, endpoint text, status smallint,
                                           latency_ms integer, at timestamptz)
     where c.key_id is not null and c.user_id is not null and char_length(c.endpoint) between 1 and 100
       and c.status between 100 and 599 and c.latency_ms is not null;
  end if;
  -- A key is tf_live_ or tf_test_ and 32 characters; anything else cannot match a stored
  -- hash, so only the length and the prefix are checked before hashing (a regular
  -- expression was 5 % of a call's instructions).
  if p_key is null or length(p_key) <> 40 or left(p_key, 8) not in ('tf_live_', 'tf_test_') then
    return '{"status": 401, "error": "invalid API key"}'::jsonb;
  end if;
  -- The key, the user it acts as (an organisation's key: the paying owner), their role,
  -- their plan (private.current_plan's rule) and what the limiter needs, in one statement.
  -- The hash is private.api_key_hash's, inline.
  select k.id, coalesce(k.user_id, o.owner_id) as user_id, k.organisation_id, k.scopes,
         k.revoked_at is null and (k.expires_at is null or k.expires_at > now()) as valid,
         k.last_used_at is null or k.last_used_at < now() - interval '1 minute'
           or k.last_used_ip is distinct from p_ip as use_due,
         case when u.raw_app_meta_data ->> 'role' = 'provider' then 'provider' else 'user' end as role,
         p.name as plan_name, coalesce(p.api_access, false) as api_access,
         coalesce((p.features ->> 'api_requests_per_minute')::integer, 60) as lim,
         (p.features ->> 'api_key_requests_per_minute')::integer as key_lim,
         case when k.organisation_id is null then 'api:user:' || coalesce(k.user_id, o.owner_id)
              else 'api:org:' || k.organisation_id end as bucket
    into v_key
    from public.api_keys k
    left join public.organisations o on o.id = k.organisation_id
    left join auth.users u on u.id = coalesce(k.user_id, o.owner_id)
    left join lateral (
      select p.name, p.api_access, p.features from public.plans p
       where p.id = coalesce((select s.plan_id from public.subscriptions s
                               where s.user_id = coalesce(k.user_id, o.owner_id) and s.status in ('active', 'trial')
                                 and s.expires_at > now()
                               limit 1),
                             (select f.id from public.plans f where f.name = 'Free'))
       limit 1) p on true
   where k.key_hash = extensions.hmac(convert_to(p_key, 'UTF8'),
                                      (select s.secret from private.api_key_secret s), 'sha256');
  if not found or not v_key.valid then
    return '{"status": 401, "error": "invalid API key"}'::jsonb;
  end if;
  if p_scope is not null and not p_scope = any (v_key.scopes) then
    v_ids := jsonb_build_object('key_id', v_key.id, 'user_id', v_key.user_id)
      || case when v_key.organisation_id is null then '{}'::jsonb
              else jsonb_build_object('organisation_id', v_key.organisation_id) end;
    return v_ids || jsonb_build_object('status', 403, 'error', format('this API key lacks the scope %s', p_scope),
                                       'scope', p_scope);
  end if;
  if not v_key.api_access then
    v_ids := jsonb_build_object('key_id', v_key.id, 'user_id', v_key.user_id)
      || case when v_key.organisation_id is null then '{}'::jsonb
              else jsonb_build_object('organisation_id', v_key.organisation_id) end;
    return v_ids || jsonb_build_object('status', 403, 'error',
           format('plan limit reached: the %s plan does not include API access (api_access)%s', v_key.plan_name,
                  coalesce('; the ' || private.plan_lifting('api_access') || ' plan does', '')));
  end if;
  if v_key.key_lim is not null and v_key.key_lim < v_key.lim then
    -- A key's bucket can only bind when it is smaller than the user's (every request of the
    -- key also takes from the user's), so it is kept only then.
    select * into v_key_rate from private.rate_limit_take('api:key:' || v_key.id, v_key.key_lim, interval '1 minute');
    if not v_key_rate.allowed then
      v_ids := jsonb_build_object('key_id', v_key.id, 'user_id', v_key.user_id)
        || case when v_key.organisation_id is null then '{}'::jsonb
                else jsonb_build_object('organisation_id', v_key.organisation_id) end;
      return v_ids || jsonb_build_object(
        'status', 429, 'limit', v_key.key_lim, 'remaining', v_key_rate.remaining, 'reset', v_key_rate.reset_seconds,
        'retry_after', v_key_rate.retry_after_seconds,
        'error', format('rate limit reached: the %s plan allows %s API requests a minute per key (api_key_requests_per_minute)',
                        v_key.plan_name, v_key.key_lim));
    end if;
    v_key_taken := true;
  end if;
  v_limit := v_key.lim;
  if v_limit >= 1 then
    -- private.rate_limit_take's GCRA step, inline: the bucket's row updated in place when the
    -- request fits, the insert … on conflict only for a new bucket or a refusal.
    v_now := clock_timestamp();
    v_t := interval '1 minute' / v_limit;
    update private.rate_limit_buckets b set tat = greatest(b.tat, v_now) + v_t
     where b.bucket = v_key.bucket and greatest(b.tat, v_now) + v_t <= v_now + interval '1 minute'
    returning b.tat into v_tat;
    if not found then
      insert into private.rate_limit_buckets as b (bucket, tat) values (v_key.bucket, v_now + v_t)
      on conflict (bucket) do update set tat = greatest(b.tat, v_now) + v_t
       where greatest(b.tat, v_now) + v_t <= v_now + interval '1 minute'
      returning b.tat into v_tat;
      if v_tat is null then
        v_refused := true;
        select b.tat into v_tat from private.rate_limit_buckets b where b.bucket = v_key.bucket;
        v_retry := greatest(ceil(extract(epoch from (v_tat + v_t - interval '1 minute' - v_now))), 1)::integer;
      end if;
    end if;
    v_remaining := greatest(floor(extract(epoch from (v_now + interval '1 minute' - v_tat)) / extract(epoch from v_t)), 0)::integer;
    v_reset := greatest(ceil(extract(epoch from (v_tat - v_now))), 0)::integer;
  else
    -- No allowance at all: refused, as private.rate_limit_take refuses it (writing nothing).
    select * into v_rate from private.rate_limit_take(v_key.bucket, v_limit, interval '1 minute');
    v_refused := true;
    v_retry := v_rate.retry_after_seconds;
    v_remaining := v_rate.remaining;
    v_reset := v_rate.reset_seconds;
  end if;
  if v_refused then
    if v_key_taken then
      perform private.rate_limit_give_back('api:key:' || v_key.id, v_key.key_lim, interval '1 minute');
    end if;
    v_ids := jsonb_build_object('key_id', v_key.id, 'user_id', v_key.user_id)
      || case when v_key.organisation_id is null then '{}'::jsonb
              else jsonb_build_object('organisation_id', v_key.organisation_id) end;
    return v_ids || jsonb_build_object(
      'status', 429, 'limit', v_limit, 'remaining', v_remaining, 'reset', v_reset, 'retry_after', v_retry,
      'error', format('rate limit reached: the %s plan allows %s API requests a minute (api_requests_per_minute)',
                      v_key.plan_name, v_limit));
  end if;
  if v_key_taken then
    if v_key_rate.remaining < v_remaining then
      v_limit := v_key.key_lim;
      v_remaining := v_key_rate.remaining;
      v_reset := v_key_rate.reset_seconds;
    end if;
  end if;
  -- The last use to the minute (and any change of address): a busy key is not rewritten on
  -- every request.
  if v_key.use_due then
    update public.api_keys k set last_used_at = now(), last_used_ip = p_ip where k.id = v_key.id;
  end if;
  -- The answer as text, parsed once: cheaper than building it with jsonb_build_object.
  return format('{"status": 200, "limit": %s, "remaining": %s, "reset": %s, "user_id": "%s", "organisation_id": %s,'
                ' "key_id": "%s", "scopes": %s, "claims": {"sub": "%s", "role": "authenticated", "aud": "authenticated",'
                ' "aal": "aal1", "app_metadata": {"role": "%s"}, "api_key_id": "%s"%s}}',
                v_limit, v_remaining, v_reset, v_key.user_id, coalesce('"' || v_key.organisation_id || '"', 'null'),
                v_key.id, to_json(v_key.scopes), v_key.user_id, v_key.role, v_key.id,
                coalesce(', "organisation_id": "' || v_key.organisation_id || '"', ''))::jsonb;
end;
$$;
ALTER FUNCTION public.api_authorize(p_key text, p_scope text, p_ip inet, p_calls jsonb) OWNER TO postgres;
CREATE FUNCTION public.api_record_calls(p_calls jsonb) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'only the service records API calls' using errcode = 'insufficient_privilege';
  end if;
  perform set_config('synchronous_commit', 'off', true);
  return private.api_calls_record(p_calls);
end;
$$;
ALTER FUNCTION public.api_record_calls(p_calls jsonb) OWNER TO postgres;
CREATE FUNCTION public.api_usage_rollup() RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_calls bigint;
  v_billed integer := 0;
  r record;
begin
  if not private.is_service() then
    raise exception 'only the service rolls up API usage' using errcode = 'insufficient_privilege';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('api_usage_rollup', 0));
  with moved as (
    delete from private.api_calls c
     where exists (select 1 from public.api_keys k where k.id = c.key_id)
    returning c.*
  ), minutes as (
    insert into public.api_usage_minutes as m (key_id, user_id, minute, endpoint, status, calls, latency_ms_sum,
                                               latency_ms_max)
    select key_id, user_id, date_trunc('minute', called_at), endpoint, status, count(*), sum(latency_ms), max(latency_ms)
      from moved group by 1, 2, 3, 4, 5
    on conflict (key_id, minute, endpoint, status) do update
      set calls = m.calls + excluded.calls, latency_ms_sum = m.latency_ms_sum + excluded.latency_ms_sum,
          latency_ms_max = greatest(m.latency_ms_max, excluded.latency_ms_max)
    returning 1
  ), days as (
    insert into public.api_usage_days as d (key_id, user_id, day, calls, errors, latency_ms_sum)
    select key_id, user_id, (called_at at time zone 'UTC')::date, count(*), count(*) filter (where status >= 400),
           sum(latency_ms)
      from moved group by 1, 2, 3
    on conflict (key_id, day) do update
      set calls = d.calls + excluded.calls, errors = d.errors + excluded.errors,
          latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum
    returning 1
  )
  select count(*) into v_calls from moved;
  -- Calls of keys deleted meanwhile have nothing to count against.
  delete from private.api_calls c where not exists (select 1 from public.api_keys k where k.id = c.key_id);
  -- A bucket whose theoretical arrival time has passed holds nothing a new one would not.
  delete from private.rate_limit_buckets b where b.tat < clock_timestamp();
  for r in
    select d.key_id, d.day from public.api_usage_days d
     where d.billed_at is null and d.day < ((now() - interval '5 minutes') at time zone 'UTC')::date
     order by d.day, d.key_id
     limit 5000
  loop
    perform private.api_usage_bill_day(r.key_id, r.day);
    v_billed := v_billed + 1;
  end loop;
  return jsonb_build_object('calls', v_calls, 'days_billed', v_billed);
end;
$$;
ALTER FUNCTION public.api_usage_rollup() OWNER TO postgres;
CREATE FUNCTION public.apply_ai_suggestion(p_analysis_id uuid, p_index integer DEFAULT 0) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_row public.ai_analyses;
  v_s jsonb;
  v_params jsonb;
  v_n integer;
begin
  if (select auth.uid()) is null then
    raise exception 'sign in to apply a suggestion' using errcode = 'insufficient_privilege';
  end if;
  select * into v_row from public.ai_analyses a where a.id = p_analysis_id and a.user_id = (select auth.uid());
  if not found then
    raise exception 'no analysis of yours has id %', p_analysis_id using errcode = 'no_data_found';
  end if;
  if v_row.status <> 'completed' then
    raise exception 'the analysis is %, not completed', v_row.status using errcode = 'invalid_parameter_value';
  end if;
  v_s := v_row.suggestions -> coalesce(p_index, -1);
  if v_s is null or jsonb_typeof(v_s -> 'parameters') <> 'object' then
    raise exception 'suggestion % of analysis % has no parameters to apply', p_index, p_analysis_id
      using errcode = 'invalid_parameter_value';
  end if;
  v_params := v_s -> 'parameters';
  if v_s ->> 'target' = 'strategy' and v_row.strategy_id is not null then
    update public.strategies s set parameters = s.parameters || v_params where s.id = v_row.strategy_id;
    get diagnostics v_n = row_count;
  elsif v_row.bot_id is not null then
    update public.bots b
       set parameters = b.parameters || (v_params - 'stop_loss' - 'take_profit'),
           stop_loss = coalesce((v_params ->> 'stop_loss')::numeric, b.stop_loss),
           take_profit = coalesce((v_params ->> 'take_profit')::numeric, b.take_profit)
     where b.id = v_row.bot_id;
    get diagnostics v_n = row_count;
  else
    v_n := 0;
  end if;
  if v_n = 0 then
    raise exception 'the bot or strategy of analysis % no longer exists', p_analysis_id using errcode = 'no_data_found';
  end if;
  return jsonb_build_object('analysis_id', v_row.id, 'bot_id', v_row.bot_id, 'strategy_id',
                            case when v_s ->> 'target' = 'strategy' then v_row.strategy_id end,
                            'applied', v_params);
end;
$$;
ALTER FUNCTION public.apply_ai_suggestion(p_analysis_id uuid, p_index integer) OWNER TO postgres;
CREATE FUNCTION public.backtest_run_check_grid(p_run_id uuid, p_sets integer) RETURNS integer
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_user uuid;
  v_plan public.plans;
  v_limit integer;
begin
  select r.user_id into v_user from public.backtest_runs r where r.id = p_run_id;
  if v_user is null then
    raise exception 'no backtest run has id %', p_run_id using errcode = 'no_data_found';
  end if;
  v_plan := private.current_plan(v_user);
  v_limit := coalesce((v_plan.features ->> 'max_optimization_sets')::integer, 500);
  if p_sets > v_limit then
    perform private.raise_plan_limit(v_plan, 'max_optimization_sets',
                                     format('allows %s parameter sets per optimisation', v_limit),
                                     p_sets, 'backtest_runs_plan_optimization_sets');
  end if;
  return v_limit;
end;
$$;
ALTER FUNCTION public.backtest_run_check_grid(p_run_id uuid, p_sets integer) OWNER TO postgres;
CREATE FUNCTION public.backtest_run_finish(p_run_id uuid, p_status text, p_compute_seconds numeric, p_credits_charged numeric, p_result jsonb DEFAULT NULL::jsonb, p_error text DEFAULT NULL::text) RETURNS uuid
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_run public.backtest_runs;
  v_result_id uuid;
  v_results jsonb;
begin
  if p_status not in ('completed', 'failed', 'cancelled') then
    raise exception 'a run finishes completed, failed or cancelled, not %', p_status
      using errcode = 'invalid_parameter_value';
  end if;
  select * into v_run from public.backtest_runs r where r.id = p_run_id for update;
  if not found then
    return null;
  end if;
  if v_run.status <> 'running' then
    update public.backtest_runs r
       set compute_seconds = coalesce(p_compute_seconds, r.compute_seconds),
           credits_charged = coalesce(p_credits_charged, r.credits_charged),
           finished_at = coalesce(r.finished_at, now())
     where r.id = p_run_id;
    return null;
  end if;
  if p_status = 'completed' then
    if p_result is null or jsonb_typeof(p_result) <> 'object' then
      raise exception 'a completed run needs its result' using errcode = 'not_null_violation';
    end if;
    v_results := case when p_result ? 'results' then p_result -> 'results'
                      else jsonb_build_array(p_result - 'summary' - 'report_html') end;
    if jsonb_typeof(v_results) <> 'array' or jsonb_array_length(v_results) = 0 then
      raise exception 'a completed run needs at least one result' using errcode = 'not_null_violation';
    end if;
    with stored as (
      insert into public.backtest_results
      select (jsonb_populate_record(null::public.backtest_results,
                e.value || jsonb_build_object(
                  'id', gen_random_uuid(), 'run_id', v_run.id, 'strategy_id', v_run.strategy_id,
                  'user_id', v_run.user_id,
                  'trading_pair', coalesce(e.value ->> 'trading_pair', v_run.trading_pair),
                  'timeframe', v_run.timeframe, 'created_at', now()))).*
        from jsonb_array_elements(v_results) with ordinality e(value, n)
       order by e.n
      returning id, trading_pair
    )
    select s.id into v_result_id from stored s
     order by s.trading_pair = v_run.trading_pair desc limit 1;
    if p_result ? 'report_html' then
      insert into public.backtest_reports (run_id, user_id, html)
      values (v_run.id, v_run.user_id, p_result ->> 'report_html')
      on conflict (run_id) do update set html = excluded.html, created_at = now();
    end if;
  end if;
  update public.backtest_runs r
     set status = p_status,
         progress = case when p_status = 'completed' then 1 else r.progress end,
         error = case when p_status = 'failed' then left(coalesce(p_error, 'failed'), 2000) end,
         summary = case when p_status = 'completed' then p_result -> 'summary' else r.summary end,
         compute_seconds = p_compute_seconds,
         credits_charged = p_credits_charged,
         finished_at = now()
   where r.id = p_run_id;
  return v_result_id;
end;
$$;
ALTER FUNCTION public.backtest_run_finish(p_run_id uuid, p_status text, p_compute_seconds numeric, p_credits_charged numeric, p_result jsonb, p_error text) OWNER TO postgres;
CREATE FUNCTION public.backtest_run_progress(p_run_id uuid, p_progress numeric) RETURNS text
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  with moved as (
    update public.backtest_runs r
       set progress = greatest(r.progress, least(greatest(p_progress, 0), 1))
     where r.id = p_run_id and r.status = 'running'
    returning r.status
  )
  select coalesce((select status from moved), (select r.status from public.backtest_runs r where r.id = p_run_id));
$$;
ALTER FUNCTION public.backtest_run_progress(p_run_id uuid, p_progress numeric) OWNER TO postgres;
CREATE TABLE public.backtest_runs (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid DEFAULT auth.uid() NOT NULL,
    strategy_id uuid,
    strategy text NOT NULL,
    parameters jsonb DEFAULT '{}'::jsonb NOT NULL,
    exchange text DEFAULT 'binance'::text NOT NULL,
    trading_pair text NOT NULL,
    timeframe text NOT NULL,
    start_date timestamp with time zone,
    end_date timestamp with time zone,
    settings jsonb DEFAULT '{}'::jsonb NOT NULL,
    status text DEFAULT 'queued'::text NOT NULL,
    progress numeric(5,4) DEFAULT 0 NOT NULL,
    error text,
    compute_seconds numeric(12,3),
    credits_charged numeric(24,8),
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    mode text DEFAULT 'backtest'::text NOT NULL,
    trading_pairs text[],
    optimization jsonb DEFAULT '{}'::jsonb NOT NULL,
    summary jsonb,
    CONSTRAINT backtest_runs_batch_pairs CHECK ((((mode = 'batch'::text) = (trading_pairs IS NOT NULL)) AND ((trading_pairs IS NULL) OR (((cardinality(trading_pairs) >= 1) AND (cardinality(trading_pairs) <= 20)) AND (trading_pair = trading_pairs[1]))))),
    CONSTRAINT backtest_runs_compute_seconds_finite CHECK ((compute_seconds <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_runs_credits_charged_finite CHECK ((credits_charged <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_runs_mode_known CHECK ((mode = ANY (ARRAY['backtest'::text, 'optimize'::text, 'batch'::text]))),
    CONSTRAINT backtest_runs_optimization_object CHECK (((jsonb_typeof(optimization) = 'object'::text) AND (pg_column_size(optimization) <= 16384))),
    CONSTRAINT backtest_runs_period_ordered CHECK (((end_date IS NULL) OR (start_date IS NULL) OR (end_date > start_date))),
    CONSTRAINT backtest_runs_progress_check CHECK (((progress >= (0)::numeric) AND (progress <= (1)::numeric))),
    CONSTRAINT backtest_runs_progress_finite CHECK ((progress <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_runs_status_known CHECK ((status = ANY (ARRAY['queued'::text, 'running'::text, 'completed'::text, 'failed'::text, 'cancelled'::text]))),
    CONSTRAINT backtest_runs_strategy_known CHECK ((strategy = ANY (ARRAY['sma_cross'::text, 'ema_cross'::text, 'rsi'::text, 'macd'::text, 'rsi_macd'::text, 'bollinger'::text, 'rules'::text]))),
    CONSTRAINT backtest_runs_timeframe_supported CHECK ((timeframe = ANY (ARRAY['1m'::text, '5m'::text, '15m'::text, '30m'::text, '1h'::text, '4h'::text, '1d'::text]))),
    CONSTRAINT backtest_runs_trading_pair_format CHECK ((trading_pair ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'::text))
);
ALTER TABLE public.backtest_runs OWNER TO postgres;
CREATE FUNCTION public.backtest_run_start(p_run_id uuid) RETURNS SETOF public.backtest_runs
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  update public.backtest_runs r
     set status = 'running', progress = 0, error = null, started_at = coalesce(r.started_at, now())
   where r.id = p_run_id and r.status in ('queued', 'running')
  returning r.*;
$$;
ALTER FUNCTION public.backtest_run_start(p_run_id uuid) OWNER TO postgres;
CREATE FUNCTION public.billing_apply_chargeback(p_invoice_id uuid, p_dispute_ref text, p_occurred_at timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_dispute_ref is null or btrim(p_dispute_ref) = '' or char_length(p_dispute_ref) > 200 then
    raise exception 'a chargeback names its dispute (at most 200 characters)' using errcode = 'invalid_parameter_value';
  end if;
  if not exists (select 1 from public.invoices i where i.id = p_invoice_id) then
    return 'not_found';
  end if;
  insert into private.billing_chargebacks (invoice_id, dispute_ref) values (p_invoice_id, p_dispute_ref)
  on conflict do nothing;
  return public.billing_apply_invoice_event(p_invoice_id, 'refunded', null, p_occurred_at, '{}');
end;
$$;
ALTER FUNCTION public.billing_apply_chargeback(p_invoice_id uuid, p_dispute_ref text, p_occurred_at timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION public.billing_apply_invoice_event(p_invoice_id uuid, p_status text, p_amount numeric DEFAULT NULL::numeric, p_occurred_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_details jsonb DEFAULT '{}'::jsonb) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_inv public.invoices;
  v_allowed boolean;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_status is null or p_status not in ('paid', 'failed', 'expired', 'cancelled', 'refunded') then
    raise exception 'unknown invoice status %', p_status using errcode = 'invalid_parameter_value';
  end if;
  select * into v_inv from public.invoices i where i.id = p_invoice_id for update;
  if not found then return 'not_found'; end if;
  v_allowed := case p_status
    when 'paid' then v_inv.status in ('pending', 'failed', 'expired')
    when 'failed' then v_inv.status = 'pending'
    when 'expired' then v_inv.status in ('pending', 'failed')
    when 'cancelled' then v_inv.status = 'pending'
    when 'refunded' then v_inv.status in ('paid', 'partially_refunded')
  end;
  if p_status = 'refunded' and v_inv.status in ('pending', 'failed', 'expired') then
    return 'not_paid_yet';
  end if;
  if not v_allowed then return 'unchanged'; end if;
  if p_status = 'paid' and p_amount is not null and p_amount < v_inv.amount then
    return 'amount_mismatch';
  end if;
  update public.invoices i
     set status = p_status,
         paid_at = case when p_status = 'paid' then coalesce(p_occurred_at, now()) else i.paid_at end,
         payment_method = coalesce(p_details ->> 'payment_method', i.payment_method),
         payment_channel = coalesce(p_details ->> 'payment_channel', i.payment_channel),
         transaction_id = coalesce(p_details ->> 'transaction_id', i.transaction_id)
   where i.id = v_inv.id
  returning * into v_inv;
  if p_status = 'paid' then
    perform private.billing_on_paid(v_inv);
  elsif p_status = 'refunded' then
    perform private.billing_on_refunded(v_inv);
  elsif p_status in ('failed', 'expired') then
    insert into public.notifications (user_id, kind, title, body, data)
    values (v_inv.user_id, 'payment', 'Payment ' || p_status,
            format('Your payment of %s %s %s.', v_inv.amount, v_inv.currency,
                   case p_status when 'failed' then 'failed' else 'expired before it was paid' end),
            jsonb_build_object('invoice_id', v_inv.id, 'status', p_status));
  end if;
  return 'applied';
end;
$$;
ALTER FUNCTION public.billing_apply_invoice_event(p_invoice_id uuid, p_status text, p_amount numeric, p_occurred_at timestamp with time zone, p_details jsonb) OWNER TO postgres;
CREATE FUNCTION public.billing_apply_refund(p_invoice_id uuid, p_refund_ref text, p_amount numeric, p_cumulative boolean, p_occurred_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_details jsonb DEFAULT '{}'::jsonb) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_inv public.invoices;
  v_total numeric;
  v_credits numeric;
  v_n integer;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_amount is null or p_amount <= 0 or p_amount in ('NaN'::numeric, 'Infinity'::numeric) then
    raise exception 'a refund is a positive amount, not %', p_amount using errcode = 'invalid_parameter_value',
      constraint = 'billing_refund_amount_positive';
  end if;
  if p_cumulative is null then
    raise exception 'say whether the amount is the total refunded so far' using errcode = 'invalid_parameter_value';
  end if;
  if not p_cumulative and (p_refund_ref is null or btrim(p_refund_ref) = '' or char_length(p_refund_ref) > 200) then
    raise exception 'a single refund names its reference (at most 200 characters)'
      using errcode = 'invalid_parameter_value', constraint = 'billing_refund_reference';
  end if;
  select * into v_inv from public.invoices i where i.id = p_invoice_id for update;
  if not found then return 'not_found'; end if;
  if v_inv.status in ('pending', 'failed', 'expired') then return 'not_paid_yet'; end if;
  if v_inv.status not in ('paid', 'partially_refunded') then return 'unchanged'; end if;
  if p_cumulative then
    v_total := least(greatest(v_inv.amount_refunded, p_amount), v_inv.amount);
    insert into private.billing_refunds (invoice_id, refund_ref, amount, cumulative)
    values (v_inv.id, 'total:' || p_amount::text, p_amount, true) on conflict do nothing;
  else
    insert into private.billing_refunds (invoice_id, refund_ref, amount, cumulative)
    values (v_inv.id, p_refund_ref, p_amount, false) on conflict do nothing;
    get diagnostics v_n = row_count;
    if v_n = 0 then return 'unchanged'; end if;
    v_total := least(v_inv.amount_refunded + p_amount, v_inv.amount);
  end if;
  if v_total <= v_inv.amount_refunded then return 'unchanged'; end if;
  if v_total >= v_inv.amount then
    return public.billing_apply_invoice_event(v_inv.id, 'refunded', null, p_occurred_at, p_details);
  end if;
  v_credits := trunc(v_inv.credits * v_total / v_inv.amount, 8);
  perform private.billing_claw_back(v_inv, v_credits - v_inv.credits_refunded, 'partial:' || v_total::text);
  update public.invoices i
     set status = 'partially_refunded', amount_refunded = v_total, credits_refunded = v_credits
   where i.id = v_inv.id
  returning * into v_inv;
  insert into public.notifications (user_id, kind, title, body, data)
  values (v_inv.user_id, 'payment', 'Payment partly refunded',
          format('%s %s of %s %s refunded%s.', v_inv.amount_refunded, v_inv.currency, v_inv.amount, v_inv.currency,
                 case when v_credits > 0 then format('; %s credits taken back', v_credits) else '' end),
          jsonb_build_object('invoice_id', v_inv.id, 'status', 'partially_refunded',
                             'amount_refunded', v_inv.amount_refunded, 'credits_refunded', v_credits));
  return 'applied';
end;
$$;
ALTER FUNCTION public.billing_apply_refund(p_invoice_id uuid, p_refund_ref text, p_amount numeric, p_cumulative boolean, p_occurred_at timestamp with time zone, p_details jsonb) OWNER TO postgres;
CREATE FUNCTION public.billing_cancel_at_period_end(p_cancel boolean DEFAULT true) RETURNS public.subscriptions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_user uuid := (select auth.uid());
  v_sub public.subscriptions;
  v_plan text;
begin
  if v_user is null or private.is_service() then
    raise exception 'only a signed-in user cancels their plan' using errcode = 'insufficient_privilege';
  end if;
  if p_cancel is null then
    raise exception 'p_cancel must be true or false' using errcode = 'invalid_parameter_value';
  end if;
  select * into v_sub from public.subscriptions s
   where s.user_id = v_user and s.status in ('active', 'trial') and s.expires_at <> 'infinity' for update;
  if not found then
    raise exception 'you have no paid plan to cancel' using errcode = 'no_data_found';
  end if;
  if v_sub.cancel_at_period_end = p_cancel then
    return v_sub;
  end if;
  update public.subscriptions s
     set cancel_at_period_end = p_cancel, auto_renew = not p_cancel and s.status = 'active'
   where s.id = v_sub.id
  returning * into v_sub;
  if p_cancel then
    update public.invoices i set status = 'cancelled' where i.subscription_id = v_sub.id and i.status = 'pending';
  end if;
  if v_sub.provider = 'stripe' then
    perform public.enqueue_job('billing.provider_cancel',
      jsonb_build_object('subscription_id', v_sub.id, 'cancel', p_cancel), 'default', null, 0, 10,
      format('billing-provider-cancel:%s:%s:%s', v_sub.id, p_cancel, extract(epoch from clock_timestamp())));
  end if;
  select p.name into v_plan from public.plans p where p.id = v_sub.plan_id;
  perform private.billing_tell(v_sub, case when p_cancel then 'Plan cancelled' else 'Plan renews again' end,
    case when p_cancel
         then format('Your %s plan ends on %s and will not renew.', v_plan, private.billing_day(coalesce(v_sub.renewal_due_at, v_sub.expires_at)))
         else format('Your %s plan renews on %s.', v_plan, private.billing_day(coalesce(v_sub.renewal_due_at, v_sub.expires_at))) end,
    jsonb_build_object('status', case when p_cancel then 'cancel_at_period_end' else 'renews' end));
  return v_sub;
end;
$$;
ALTER FUNCTION public.billing_cancel_at_period_end(p_cancel boolean) OWNER TO postgres;
CREATE FUNCTION public.billing_checkout_abort(p_invoice_id uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'only the service role aborts checkouts' using errcode = 'insufficient_privilege';
  end if;
  delete from public.invoices i
   where i.id = p_invoice_id and i.status = 'pending' and i.checkout_url is null and i.paid_at is null;
  return found;
end;
$$;
ALTER FUNCTION public.billing_checkout_abort(p_invoice_id uuid) OWNER TO postgres;
CREATE FUNCTION public.billing_checkout_open(p_user_id uuid, p_provider text, p_plan_id uuid DEFAULT NULL::uuid, p_credit_pack_id uuid DEFAULT NULL::uuid, p_period text DEFAULT 'month'::text) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_plan public.plans;
  v_pack public.credit_packs;
  v_amount numeric;
  v_currency text;
  v_key text;
  v_problem text;
  v_inv public.invoices;
begin
  if not private.is_service() then
    raise exception 'only the service role opens checkouts' using errcode = 'insufficient_privilege';
  end if;
  if p_provider is null or p_provider not in ('stripe', 'paystack', 'tripay') then
    raise exception 'provider must be stripe, paystack or tripay' using errcode = 'invalid_parameter_value',
      constraint = 'billing_provider_known';
  end if;
  if (p_plan_id is null) = (p_credit_pack_id is null) then
    raise exception 'name a plan or a credit pack' using errcode = 'invalid_parameter_value',
      constraint = 'billing_checkout_one_item';
  end if;
  if p_period is null or p_period not in ('month', 'year') then
    raise exception 'period must be month or year' using errcode = 'invalid_parameter_value',
      constraint = 'billing_period_known';
  end if;
  if not exists (select 1 from public.profiles p where p.id = p_user_id) then
    raise exception 'no such user' using errcode = 'no_data_found';
  end if;
  if p_plan_id is not null then
    select * into v_plan from public.plans p where p.id = p_plan_id and p.is_active;
    if not found then
      raise exception 'no plan for sale with this id' using errcode = 'no_data_found', constraint = 'billing_item_for_sale';
    end if;
    v_amount := case p_period when 'year' then v_plan.price_yearly else v_plan.price_monthly end;
    v_currency := v_plan.currency;
    v_key := format('plan:%s:%s', v_plan.id, p_period);
  else
    select * into v_pack from public.credit_packs c where c.id = p_credit_pack_id and c.is_active;
    if not found then
      raise exception 'no credit pack for sale with this id' using errcode = 'no_data_found', constraint = 'billing_item_for_sale';
    end if;
    v_amount := v_pack.price;
    v_currency := v_pack.currency;
    v_key := format('pack:%s', v_pack.id);
  end if;
  if v_amount is null or v_amount <= 0 then
    raise exception 'this plan is not sold for a %', p_period using errcode = 'check_violation',
      constraint = 'billing_item_for_sale';
  end if;
  v_problem := private.billing_currency_problem(p_provider, v_amount, v_currency);
  if v_problem is not null then
    raise exception '%', v_problem using errcode = 'check_violation', constraint = 'billing_currency_supported';
  end if;
  -- One checkout at a time per user and item: concurrent calls serialise here.
  perform pg_advisory_xact_lock(hashtextextended('billing-checkout:' || p_user_id || ':' || v_key, 0));
  select * into v_inv from public.invoices i
   where i.user_id = p_user_id and i.checkout_key = v_key and i.status = 'pending' for update;
  if found and v_inv.provider = p_provider and v_inv.checkout_url is not null
     and v_inv.amount = v_amount and v_inv.currency = v_currency then
    return to_jsonb(v_inv) || jsonb_build_object('existing', true, 'amount', v_inv.amount::text,
      'amount_minor', private.billing_amount_minor(p_provider, v_inv.amount, v_inv.currency));
  end if;
  if found and v_inv.checkout_url is null and v_inv.created_at > now() - interval '1 minute' then
    raise exception 'a checkout of this item is being started; try again in a minute' using errcode = 'check_violation',
      constraint = 'billing_checkout_in_progress';
  end if;
  if found then
    update public.invoices i set status = 'cancelled' where i.id = v_inv.id;
  end if;
  insert into public.invoices (user_id, plan_id, credit_pack_id, provider, amount, currency, credits, period,
                               checkout_key, description, expired_at, customer_email)
  values (p_user_id, v_plan.id, v_pack.id, p_provider, v_amount, v_currency, coalesce(v_pack.credits, 0), p_period,
          v_key, coalesce(v_plan.name || ' plan, 1 ' || p_period, v_pack.name), now() + interval '1 day',
          (select p.email from public.profiles p where p.id = p_user_id))
  returning * into v_inv;
  return to_jsonb(v_inv) || jsonb_build_object('existing', false, 'amount', v_inv.amount::text,
    'amount_minor', private.billing_amount_minor(p_provider, v_inv.amount, v_inv.currency));
end;
$$;
ALTER FUNCTION public.billing_checkout_open(p_user_id uuid, p_provider text, p_plan_id uuid, p_credit_pack_id uuid, p_period text) OWNER TO postgres;
CREATE FUNCTION public.billing_checkout_started(p_invoice_id uuid, p_url text, p_provider_invoice_id text, p_refs text[] DEFAULT '{}'::text[]) RETURNS public.invoices
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_inv public.invoices;
begin
  if not private.is_service() then
    raise exception 'only the service role records checkouts' using errcode = 'insufficient_privilege';
  end if;
  update public.invoices i
     set checkout_url = p_url,
         provider_invoice_id = coalesce(p_provider_invoice_id, i.provider_invoice_id),
         reference_id = coalesce(i.reference_id, p_provider_invoice_id),
         provider_refs = array(select distinct r from unnest(i.provider_refs || coalesce(p_refs, '{}')) r
                                where r is not null order by r)
   where i.id = p_invoice_id and i.status = 'pending'
  returning * into v_inv;
  if not found then
    raise exception 'no pending invoice with this id' using errcode = 'no_data_found';
  end if;
  return v_inv;
end;
$$;
ALTER FUNCTION public.billing_checkout_started(p_invoice_id uuid, p_url text, p_provider_invoice_id text, p_refs text[]) OWNER TO postgres;
CREATE FUNCTION public.billing_customer(p_user_id uuid, p_provider text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'only the service role reads payment methods' using errcode = 'insufficient_privilege';
  end if;
  return (select m.customer from private.billing_payment_methods m where m.user_id = p_user_id and m.provider = p_provider);
end;
$$;
ALTER FUNCTION public.billing_customer(p_user_id uuid, p_provider text) OWNER TO postgres;
CREATE FUNCTION public.billing_expire_due(p_now timestamp with time zone DEFAULT now()) RETURNS TABLE(invoices_expired integer, subscriptions_expired integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  r record;
begin
  if not private.is_service() then
    raise exception 'only the service role runs the billing sweep' using errcode = 'insufficient_privilege';
  end if;
  invoices_expired := 0;
  for r in select i.id from public.invoices i
            where i.status = 'pending' and i.expired_at is not null and i.expired_at <= p_now
            order by i.id for update skip locked loop
    if public.billing_apply_invoice_event(r.id, 'expired', null, p_now) = 'applied' then
      invoices_expired := invoices_expired + 1;
    end if;
  end loop;
  subscriptions_expired := 0;
  for r in update public.subscriptions s
              set status = 'expired'
            where s.id in (select x.id from public.subscriptions x
                            where x.status in ('active', 'trial') and x.expires_at <= p_now
                            for update skip locked)
           returning s.user_id, s.plan_id loop
    subscriptions_expired := subscriptions_expired + 1;
    perform private.billing_enforce_plan_limits(r.user_id);
    insert into public.notifications (user_id, kind, title, body, data)
    values (r.user_id, 'payment', 'Subscription expired',
            format('Your %s plan expired; you are on the Free plan now.',
                   (select p.name from public.plans p where p.id = r.plan_id)),
            jsonb_build_object('plan_id', r.plan_id, 'status', 'expired'));
  end loop;
  return next;
end;
$$;
ALTER FUNCTION public.billing_expire_due(p_now timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION public.billing_provider_renewal_failed(p_provider text, p_subscription_ref text, p_next_attempt_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_reason text DEFAULT NULL::text, p_occurred_at timestamp with time zone DEFAULT now()) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.subscriptions;
  v_plan text;
  v_due timestamptz;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  v_sub := private.billing_provider_subscription(p_provider, p_subscription_ref);
  if v_sub.id is null then
    -- Known but no longer current (ended or replaced): old news; unknown: not yet seen.
    return case when exists (select 1 from public.invoices i where i.provider = p_provider
                                and i.provider_refs @> array[p_subscription_ref])
                then 'unchanged' else 'not_found' end;
  end if;
  select * into v_sub from public.subscriptions s where s.id = v_sub.id for update;
  v_due := coalesce(v_sub.renewal_due_at, v_sub.expires_at);
  -- A failure of a period already paid (delivered after the recovery) is old news.
  if v_sub.status <> 'active' or p_occurred_at < v_due - interval '1 day' then return 'unchanged'; end if;
  select p.name into v_plan from public.plans p where p.id = v_sub.plan_id;
  update public.subscriptions s
     set renewal_due_at = v_due, grace_until = coalesce(s.grace_until, v_due + private.billing_grace()),
         expires_at = coalesce(s.grace_until, v_due + private.billing_grace()),
         renewal_attempts = s.renewal_attempts + 1, past_due_since = coalesce(s.past_due_since, p_occurred_at),
         next_renewal_attempt_at = null
   where s.id = v_sub.id
  returning * into v_sub;
  perform private.billing_tell(v_sub, 'Renewal payment failed',
    format('Your %s plan could not be renewed%s. %s Your plan stays active until %s; after that you move to the Free plan.',
           v_plan, coalesce(' (' || p_reason || ')', ''),
           case when p_next_attempt_at is not null
                then 'The payment will be tried again on ' || private.billing_day(p_next_attempt_at) || '.'
                else 'Update your payment method in the billing portal.' end,
           private.billing_day(v_sub.grace_until)),
    jsonb_build_object('status', 'renewal_failed', 'attempt', v_sub.renewal_attempts,
                       'next_attempt_at', p_next_attempt_at, 'grace_until', v_sub.grace_until));
  return 'applied';
end;
$$;
ALTER FUNCTION public.billing_provider_renewal_failed(p_provider text, p_subscription_ref text, p_next_attempt_at timestamp with time zone, p_reason text, p_occurred_at timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION public.billing_provider_subscription_ended(p_provider text, p_subscription_ref text, p_reason text DEFAULT NULL::text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.subscriptions;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  v_sub := private.billing_provider_subscription(p_provider, p_subscription_ref);
  if v_sub.id is null then
    return case when exists (select 1 from public.invoices i where i.provider = p_provider
                                and i.provider_refs @> array[p_subscription_ref])
                then 'unchanged' else 'not_found' end;
  end if;
  update public.subscriptions s
     set status = 'expired', expires_at = greatest(least(s.expires_at, now()), s.started_at + interval '1 second'),
         auto_renew = false, next_renewal_attempt_at = null
   where s.id = v_sub.id
  returning * into v_sub;
  update public.invoices i set status = 'cancelled'
   where i.subscription_id = v_sub.id and i.status = 'pending';
  perform private.billing_enforce_plan_limits(v_sub.user_id);
  perform private.billing_tell(v_sub, 'Subscription ended',
    format('Your %s plan ended%s; you are on the Free plan now.',
           (select p.name from public.plans p where p.id = v_sub.plan_id), coalesce(' (' || p_reason || ')', '')),
    jsonb_build_object('status', 'expired'));
  return 'applied';
end;
$$;
ALTER FUNCTION public.billing_provider_subscription_ended(p_provider text, p_subscription_ref text, p_reason text) OWNER TO postgres;
CREATE FUNCTION public.billing_provider_subscription_ref(p_subscription_id uuid) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'only the service role reads provider references' using errcode = 'insufficient_privilege';
  end if;
  return (select r from public.subscriptions s
            join public.invoices i on i.user_id = s.user_id and i.plan_id = s.plan_id and i.provider = s.provider
            cross join unnest(i.provider_refs) r
           where s.id = p_subscription_id and r like 'sub\_%'
           order by i.created_at desc limit 1);
end;
$$;
ALTER FUNCTION public.billing_provider_subscription_ref(p_subscription_id uuid) OWNER TO postgres;
CREATE FUNCTION public.billing_provider_subscription_updated(p_provider text, p_subscription_ref text, p_cancel_at_period_end boolean, p_occurred_at timestamp with time zone) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.subscriptions;
  v_plan text;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_cancel_at_period_end is null or p_occurred_at is null then
    raise exception 'cancel_at_period_end and the time of the change are required' using errcode = 'invalid_parameter_value';
  end if;
  v_sub := private.billing_provider_subscription(p_provider, p_subscription_ref);
  if v_sub.id is null then
    return case when exists (select 1 from public.invoices i where i.provider = p_provider
                                and i.provider_refs @> array[p_subscription_ref])
                then 'unchanged' else 'not_found' end;
  end if;
  select * into v_sub from public.subscriptions s where s.id = v_sub.id for update;
  if v_sub.provider_updated_at is not null and v_sub.provider_updated_at > p_occurred_at then
    return 'unchanged';
  end if;
  update public.subscriptions s set provider_updated_at = p_occurred_at where s.id = v_sub.id;
  if v_sub.cancel_at_period_end = p_cancel_at_period_end then
    return 'unchanged';
  end if;
  update public.subscriptions s
     set cancel_at_period_end = p_cancel_at_period_end, auto_renew = not p_cancel_at_period_end
   where s.id = v_sub.id
  returning * into v_sub;
  select p.name into v_plan from public.plans p where p.id = v_sub.plan_id;
  perform private.billing_tell(v_sub, case when p_cancel_at_period_end then 'Plan cancelled' else 'Plan renews again' end,
    case when p_cancel_at_period_end
         then format('Your %s plan ends on %s and will not renew.', v_plan, private.billing_day(coalesce(v_sub.renewal_due_at, v_sub.expires_at)))
         else format('Your %s plan renews on %s.', v_plan, private.billing_day(coalesce(v_sub.renewal_due_at, v_sub.expires_at))) end,
    jsonb_build_object('status', case when p_cancel_at_period_end then 'cancel_at_period_end' else 'renews' end));
  return 'applied';
end;
$$;
ALTER FUNCTION public.billing_provider_subscription_updated(p_provider text, p_subscription_ref text, p_cancel_at_period_end boolean, p_occurred_at timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION public.billing_provider_trial(p_provider text, p_subscription_ref text, p_user_id uuid, p_plan_id uuid, p_trial_ends_at timestamp with time zone, p_occurred_at timestamp with time zone) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_inv public.invoices;
  v_sub public.subscriptions;
  v_plan public.plans;
begin
  if not private.is_service() then
    raise exception 'only the service role applies payment events' using errcode = 'insufficient_privilege';
  end if;
  if p_provider is null or p_provider not in ('stripe', 'paystack', 'tripay')
     or p_subscription_ref is null or btrim(p_subscription_ref) = '' or char_length(p_subscription_ref) > 200
     or p_user_id is null or p_plan_id is null or p_trial_ends_at is null or p_occurred_at is null
     or p_trial_ends_at = 'infinity' then
    raise exception 'a trial names its provider, subscription, user, plan, end and the time of the report'
      using errcode = 'invalid_parameter_value', constraint = 'billing_trial_arguments';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('billing-trial:' || p_user_id, 0));
  select * into v_inv from public.invoices i
   where i.provider = p_provider and i.provider_refs @> array[p_subscription_ref]
   order by i.created_at limit 1 for update;
  if not found then
    select * into v_inv from public.invoices i
     where i.provider = p_provider and i.user_id = p_user_id and i.plan_id = p_plan_id and i.status = 'pending'
       and i.subscription_id is null and i.checkout_key like 'plan:%'
     order by i.created_at desc limit 1 for update;
    if not found then
      return 'not_found';
    end if;
    update public.invoices i
       set provider_refs = array(select distinct r from unnest(i.provider_refs || array[p_subscription_ref]) r order by r)
     where i.id = v_inv.id;
  end if;
  if v_inv.status <> 'pending' then
    return 'unchanged';
  end if;
  select * into v_sub from public.subscriptions s
   where s.user_id = v_inv.user_id and s.invoice_id = v_inv.id and s.status = 'trial' for update;
  if found then
    if v_sub.provider_updated_at is not null and v_sub.provider_updated_at > p_occurred_at
       or v_sub.trial_ends_at = p_trial_ends_at then
      return 'unchanged';
    end if;
    update public.subscriptions s
       set trial_ends_at = p_trial_ends_at, expires_at = p_trial_ends_at, provider_updated_at = p_occurred_at
     where s.id = v_sub.id;
    return 'applied';
  end if;
  if exists (select 1 from public.subscriptions s where s.user_id = v_inv.user_id and s.trial_ends_at is not null)
     or exists (select 1 from public.subscriptions s where s.user_id = v_inv.user_id and s.status in ('active', 'trial')
                   and s.expires_at <> 'infinity') then
    return 'no_trial';
  end if;
  select * into v_plan from public.plans p where p.id = v_inv.plan_id;
  update public.subscriptions s set status = 'cancelled', cancelled_at = now(), auto_renew = false
   where s.user_id = v_inv.user_id and s.status in ('active', 'trial');
  insert into public.subscriptions (user_id, plan_id, invoice_id, status, started_at, expires_at, trial_ends_at,
                                    auto_renew, provider, period, provider_updated_at)
  values (v_inv.user_id, v_inv.plan_id, v_inv.id, 'trial', now(), p_trial_ends_at, p_trial_ends_at,
          true, v_inv.provider, v_inv.period, p_occurred_at)
  returning * into v_sub;
  perform private.billing_enforce_plan_limits(v_inv.user_id);
  perform private.billing_tell(v_sub, v_plan.name || ' trial started',
    format('You are on the %s plan until %s; your card is charged then unless you cancel.', v_plan.name,
           private.billing_day(p_trial_ends_at)),
    jsonb_build_object('status', 'trial', 'trial_ends_at', p_trial_ends_at));
  return 'applied';
end;
$$;
ALTER FUNCTION public.billing_provider_trial(p_provider text, p_subscription_ref text, p_user_id uuid, p_plan_id uuid, p_trial_ends_at timestamp with time zone, p_occurred_at timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION public.billing_renewal_attempted(p_invoice_id uuid, p_outcome text, p_reason text DEFAULT NULL::text, p_url text DEFAULT NULL::text, p_reference text DEFAULT NULL::text, p_now timestamp with time zone DEFAULT now()) RETURNS public.subscriptions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_inv public.invoices;
  v_sub public.subscriptions;
  v_next timestamptz;
  v_plan text;
begin
  if not private.is_service() then
    raise exception 'only the service role records renewal attempts' using errcode = 'insufficient_privilege';
  end if;
  if p_outcome is null or p_outcome not in ('failed', 'link') then
    raise exception 'outcome must be failed or link' using errcode = 'invalid_parameter_value';
  end if;
  select * into v_inv from public.invoices i where i.id = p_invoice_id for update;
  if not found or v_inv.subscription_id is null then
    raise exception 'no renewal invoice with this id' using errcode = 'no_data_found';
  end if;
  select * into v_sub from public.subscriptions s where s.id = v_inv.subscription_id for update;
  if v_inv.status not in ('pending', 'failed') or v_sub.status <> 'active' or v_sub.renewal_due_at is null then
    return v_sub;  -- paid, cancelled or ended meanwhile: nothing to record
  end if;
  select p.name into v_plan from public.plans p where p.id = v_sub.plan_id;
  if p_outcome = 'link' then
    update public.invoices i
       set checkout_url = p_url, provider_invoice_id = coalesce(p_reference, i.provider_invoice_id),
           provider_refs = array(select distinct x from unnest(i.provider_refs || array[p_reference]) x
                                  where x is not null order by x)
     where i.id = v_inv.id;
    update public.subscriptions s set next_renewal_attempt_at = null where s.id = v_sub.id returning * into v_sub;
    perform private.billing_tell(v_sub, 'Renew your ' || v_plan || ' plan',
      format('Your %s plan renews on %s: pay %s %s here: %s', v_plan, private.billing_day(v_sub.renewal_due_at),
             v_inv.amount, v_inv.currency, p_url),
      jsonb_build_object('invoice_id', v_inv.id, 'status', 'renewal_invoice', 'url', p_url));
    return v_sub;
  end if;
  select min(v_sub.renewal_due_at + o) into v_next
    from unnest(private.billing_retry_offsets()) o
   where v_sub.renewal_due_at + o > p_now and v_sub.renewal_due_at + o < v_sub.grace_until;
  update public.invoices i set renewal_attempts = i.renewal_attempts + 1 where i.id = v_inv.id;
  update public.subscriptions s
     set renewal_attempts = s.renewal_attempts + 1, past_due_since = coalesce(s.past_due_since, p_now),
         next_renewal_attempt_at = v_next
   where s.id = v_sub.id
  returning * into v_sub;
  perform private.billing_tell(v_sub, 'Renewal payment failed',
    format('We could not charge %s %s for your %s plan%s. %s Your plan stays active until %s; after that you move to the Free plan.',
           v_inv.amount, v_inv.currency, v_plan, coalesce(' (' || p_reason || ')', ''),
           case when v_next is not null then 'We will try again on ' || private.billing_day(v_next) || '.'
                else 'We will not try again.' end,
           private.billing_day(v_sub.grace_until)),
    jsonb_build_object('invoice_id', v_inv.id, 'status', 'renewal_failed', 'attempt', v_sub.renewal_attempts,
                       'next_attempt_at', v_next, 'grace_until', v_sub.grace_until));
  return v_sub;
end;
$$;
ALTER FUNCTION public.billing_renewal_attempted(p_invoice_id uuid, p_outcome text, p_reason text, p_url text, p_reference text, p_now timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION public.billing_renewals_due(p_now timestamp with time zone DEFAULT now(), p_lead interval DEFAULT '01:00:00'::interval, p_limit integer DEFAULT 100) RETURNS TABLE(invoice_id uuid, subscription_id uuid, user_id uuid, provider text, amount numeric, currency text, email text, authorization_code text, channel text, attempt integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  r record;
  v_amount numeric;
begin
  if not private.is_service() then
    raise exception 'only the service role runs renewals' using errcode = 'insufficient_privilege';
  end if;
  for r in select s.*, p.price_monthly, p.price_yearly, p.currency as plan_currency, p.name as plan_name
             from public.subscriptions s join public.plans p on p.id = s.plan_id
            where s.status = 'active' and s.auto_renew and not s.cancel_at_period_end
              and s.provider in ('stripe', 'paystack', 'tripay') and s.renewal_due_at is null
              and s.expires_at <> 'infinity'
              and s.expires_at <= p_now + case s.provider when 'tripay' then greatest(p_lead, interval '3 days') else p_lead end
            order by s.expires_at
            limit greatest(coalesce(p_limit, 100), 0)
            for update of s skip locked loop
    v_amount := case r.period when 'year' then r.price_yearly else r.price_monthly end;
    update public.subscriptions s
       set renewal_due_at = r.expires_at, grace_until = r.expires_at + private.billing_grace(),
           expires_at = r.expires_at + private.billing_grace(), renewal_attempts = 0,
           next_renewal_attempt_at = case when r.provider = 'stripe' then null
                                          when r.provider = 'paystack' then r.expires_at else p_now end
     where s.id = r.id;
    if r.provider <> 'stripe' and coalesce(v_amount, 0) > 0 then
      insert into public.invoices (user_id, plan_id, subscription_id, provider, amount, currency, period,
                                   checkout_key, description, expired_at, customer_email)
      values (r.user_id, r.plan_id, r.id, r.provider, v_amount, r.plan_currency, r.period,
              format('renewal:%s:%s', r.id, r.expires_at), r.plan_name || ' plan renewal, 1 ' || r.period,
              r.expires_at + private.billing_grace(), (select p.email from public.profiles p where p.id = r.user_id))
      on conflict do nothing;
    end if;
  end loop;
  return query
  with due as (
    select i.id, s.id as sub_id, i.user_id, i.provider, i.amount, i.currency, s.renewal_attempts
      from public.invoices i join public.subscriptions s on s.id = i.subscription_id
     where i.status in ('pending', 'failed') and s.status = 'active' and s.next_renewal_attempt_at <= p_now
       and s.renewal_due_at is not null and i.provider in ('paystack', 'tripay')
       and (i.provider = 'paystack' or i.checkout_url is null)
     order by s.next_renewal_attempt_at
     limit greatest(coalesce(p_limit, 100), 0)
     for update of s skip locked
  ), claimed as (
    update public.subscriptions s set next_renewal_attempt_at = p_now + interval '30 minutes'
      from due where s.id = due.sub_id
    returning s.id
  )
  select d.id, d.sub_id, d.user_id, d.provider, d.amount, d.currency,
         coalesce(m.email, (select p.email from public.profiles p where p.id = d.user_id)),
         m.authorization_code, m.channel, d.renewal_attempts + 1
    from due d join claimed c on c.id = d.sub_id
    left join private.billing_payment_methods m on m.user_id = d.user_id and m.provider = d.provider;
end;
$$;
ALTER FUNCTION public.billing_renewals_due(p_now timestamp with time zone, p_lead interval, p_limit integer) OWNER TO postgres;
CREATE FUNCTION public.billing_save_payment_method(p_user_id uuid, p_provider text, p_customer text DEFAULT NULL::text, p_authorization_code text DEFAULT NULL::text, p_email text DEFAULT NULL::text, p_channel text DEFAULT NULL::text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'only the service role saves payment methods' using errcode = 'insufficient_privilege';
  end if;
  insert into private.billing_payment_methods as m (user_id, provider, customer, authorization_code, email, channel)
  values (p_user_id, p_provider, p_customer, p_authorization_code, p_email, p_channel)
  on conflict (user_id, provider) do update
    set customer = coalesce(excluded.customer, m.customer),
        authorization_code = coalesce(excluded.authorization_code, m.authorization_code),
        email = coalesce(excluded.email, m.email),
        channel = coalesce(excluded.channel, m.channel),
        updated_at = now();
end;
$$;
ALTER FUNCTION public.billing_save_payment_method(p_user_id uuid, p_provider text, p_customer text, p_authorization_code text, p_email text, p_channel text) OWNER TO postgres;
CREATE FUNCTION public.billing_send_reminders(p_now timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  r record;
  v_n integer := 0;
  v_end timestamptz;
  v_what text;
  v_url text;
begin
  if not private.is_service() then
    raise exception 'only the service role sends reminders' using errcode = 'insufficient_privilege';
  end if;
  for r in select s.*, p.name as plan_name, d.days
             from public.subscriptions s
             join public.plans p on p.id = s.plan_id
             cross join lateral (select min(x) as days from unnest(array[1, 3]) x
                                  where coalesce(s.renewal_due_at, s.expires_at) - p_now <= make_interval(days => x)) d
            where s.status in ('active', 'trial') and s.expires_at <> 'infinity' and p.price_monthly > 0
              and d.days is not null and coalesce(s.renewal_due_at, s.expires_at) > p_now
              and s.past_due_since is null
              and not exists (select 1 from private.billing_reminders b
                               where b.subscription_id = s.id and b.period_end = coalesce(s.renewal_due_at, s.expires_at)
                                 and b.days_before <= d.days)
            order by s.id loop
    v_end := coalesce(r.renewal_due_at, r.expires_at);
    insert into private.billing_reminders (subscription_id, period_end, days_before)
    values (r.id, v_end, r.days) on conflict do nothing;
    select i.checkout_url into v_url from public.invoices i
     where i.subscription_id = r.id and i.status = 'pending' and i.checkout_url is not null
     order by i.created_at desc limit 1;
    v_what := case
      when r.status = 'trial' and r.provider = 'stripe' and r.auto_renew and not r.cancel_at_period_end
        then format('Your %s trial ends on %s; your card will then be charged for the plan.', r.plan_name,
                    private.billing_day(v_end))
      when r.status = 'trial' then format('Your %s trial ends on %s. Check out to keep the plan.', r.plan_name, private.billing_day(v_end))
      when r.cancel_at_period_end or not r.auto_renew
        then format('Your %s plan ends on %s and will not renew; you then move to the Free plan.', r.plan_name, private.billing_day(v_end))
      when r.provider = 'tripay' and v_url is not null
        then format('Your %s plan renews on %s: pay here: %s', r.plan_name, private.billing_day(v_end), v_url)
      else format('Your %s plan renews on %s; your saved payment method will be charged.', r.plan_name, private.billing_day(v_end))
    end;
    insert into public.notifications (user_id, kind, title, body, data)
    values (r.user_id, 'payment',
            format('%s %s in %s day%s', r.plan_name, case when r.status = 'trial' then 'trial ends' else 'plan ends' end,
                   r.days, case when r.days = 1 then '' else 's' end),
            v_what,
            jsonb_build_object('subscription_id', r.id, 'plan_id', r.plan_id, 'status', 'reminder',
                               'days_before', r.days, 'ends_at', v_end, 'url', v_url));
    v_n := v_n + 1;
  end loop;
  return v_n;
end;
$$;
ALTER FUNCTION public.billing_send_reminders(p_now timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION public.billing_start_trial(p_plan_id uuid) RETURNS public.subscriptions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_user uuid := (select auth.uid());
  v_plan public.plans;
  v_sub public.subscriptions;
begin
  if v_user is null or private.is_service() then
    raise exception 'only a signed-in user starts a trial' using errcode = 'insufficient_privilege';
  end if;
  select * into v_plan from public.plans p where p.id = p_plan_id and p.is_active and p.trial_days > 0;
  if not found then
    raise exception 'no plan with a trial has this id' using errcode = 'no_data_found';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('billing-trial:' || v_user, 0));
  if exists (select 1 from public.subscriptions s where s.user_id = v_user and s.trial_ends_at is not null) then
    raise exception 'you have already had a trial' using errcode = 'check_violation', constraint = 'billing_one_trial_per_user';
  end if;
  select * into v_sub from public.subscriptions s
   where s.user_id = v_user and s.status in ('active', 'trial') for update;
  if found and v_sub.expires_at <> 'infinity' then
    raise exception 'you are already on a paid plan' using errcode = 'check_violation', constraint = 'billing_trial_from_free';
  end if;
  if found then
    update public.subscriptions s set status = 'cancelled', cancelled_at = now(), auto_renew = false where s.id = v_sub.id;
  end if;
  insert into public.subscriptions (user_id, plan_id, status, started_at, expires_at, trial_ends_at, auto_renew)
  values (v_user, v_plan.id, 'trial', now(), now() + make_interval(days => v_plan.trial_days),
          now() + make_interval(days => v_plan.trial_days), false)
  returning * into v_sub;
  perform private.billing_tell(v_sub, v_plan.name || ' trial started',
    format('You are on the %s plan until %s.', v_plan.name, private.billing_day(v_sub.trial_ends_at)),
    jsonb_build_object('status', 'trial', 'trial_ends_at', v_sub.trial_ends_at));
  return v_sub;
end;
$$;
ALTER FUNCTION public.billing_start_trial(p_plan_id uuid) OWNER TO postgres;
CREATE FUNCTION public.billing_trial_days(p_user_id uuid, p_plan_id uuid) RETURNS integer
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'only the service role opens checkouts' using errcode = 'insufficient_privilege';
  end if;
  if exists (select 1 from public.subscriptions s where s.user_id = p_user_id and s.trial_ends_at is not null)
     or exists (select 1 from public.subscriptions s where s.user_id = p_user_id and s.status in ('active', 'trial')
                   and s.expires_at <> 'infinity') then
    return 0;
  end if;
  return coalesce((select p.trial_days from public.plans p where p.id = p_plan_id and p.is_active), 0);
end;
$$;
ALTER FUNCTION public.billing_trial_days(p_user_id uuid, p_plan_id uuid) OWNER TO postgres;
CREATE FUNCTION public.bot_apply_steps(p_steps jsonb, p_orders jsonb DEFAULT '[]'::jsonb, p_trades jsonb DEFAULT '[]'::jsonb, p_logs jsonb DEFAULT '[]'::jsonb, p_notes jsonb DEFAULT '[]'::jsonb) RETURNS TABLE(stale_bot_id uuid)
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_ok uuid[];
begin
  -- Lock the leases of the batch first, in bot-id order: a takeover (epoch + 1) waits
  -- until this commits, and lease renewals lock in the same order.
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join jsonb_to_recordset(p_steps) as s(bot_id uuid, epoch bigint)
              on s.bot_id = l.bot_id and s.epoch = l.epoch
           order by l.bot_id
             for share of l) x;
  -- Then the bots, in the same order, before the step's rows (whose triggers update the
  -- bots' statistics): two batches of the same bots (a runner's and a signal's fan-out)
  -- queue behind each other instead of deadlocking.
  perform 1 from public.bots b where b.id = any (v_ok) order by b.id for no key update;
  insert into public.orders as o (id, bot_id, user_id, client_order_id, exchange_order_id, exchange, symbol, side,
                                  order_type, amount, price, stop_price, filled, average_price, fee, fee_currency,
                                  status, reason, is_paper_trade, lease_epoch, signal_id, decided_at)
  select r.id, r.bot_id, r.user_id, r.client_order_id, r.exchange_order_id, r.exchange, r.symbol, r.side,
         r.order_type, r.amount, r.price, r.stop_price, coalesce(r.filled, 0), r.average_price, coalesce(r.fee, 0),
         r.fee_currency, r.status, r.reason, coalesce(r.is_paper_trade, true), r.lease_epoch, r.signal_id,
         r.decided_at
    from jsonb_to_recordset(p_orders) as r(id uuid, bot_id uuid, user_id uuid, client_order_id text,
         exchange_order_id text, exchange text, symbol text, side text, order_type text, amount numeric,
         price numeric, stop_price numeric, filled numeric, average_price numeric, fee numeric, fee_currency text,
         status text, reason text, is_paper_trade boolean, lease_epoch bigint, signal_id uuid,
         decided_at timestamptz)
   where r.bot_id = any (v_ok)
   order by r.bot_id, r.client_order_id
  on conflict (client_order_id) do update
     set exchange_order_id = coalesce(excluded.exchange_order_id, o.exchange_order_id),
         filled = excluded.filled,
         average_price = coalesce(excluded.average_price, o.average_price),
         fee = excluded.fee,
         fee_currency = coalesce(excluded.fee_currency, o.fee_currency),
         status = excluded.status,
         lease_epoch = excluded.lease_epoch,
         decided_at = coalesce(o.decided_at, excluded.decided_at);
  insert into public.trades as t (id, bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount,
                                  price, exit_price, fee, profit, profit_percentage, status, exit_reason, entry_time,
                                  exit_time, entry_order_id, exit_order_id, is_paper_trade, stop_loss_price,
                                  take_profit_price, lease_epoch, metadata, signal_id, decided_at)
  select r.id, r.bot_id, r.user_id, r.exchange, r.trading_pair, r.side, r.direction, r.order_type, r.amount,
         r.price, r.exit_price, r.fee, coalesce(r.profit, 0), coalesce(r.profit_percentage, 0), r.status,
         r.exit_reason, r.entry_time, r.exit_time, r.entry_order_id, r.exit_order_id,
         coalesce(r.is_paper_trade, true), r.stop_loss_price, r.take_profit_price, r.lease_epoch,
         coalesce(r.metadata, '{}'), r.signal_id, r.decided_at
    from jsonb_to_recordset(p_trades) as r(id uuid, bot_id uuid, user_id uuid, exchange text, trading_pair text,
         side text, direction text, order_type text, amount numeric, price numeric, exit_price numeric, fee numeric,
         profit numeric, profit_percentage numeric, status text, exit_reason text, entry_time timestamptz,
         exit_time timestamptz, entry_order_id uuid, exit_order_id uuid, is_paper_trade boolean,
         stop_loss_price numeric, take_profit_price numeric, lease_epoch bigint, metadata jsonb, signal_id uuid,
         decided_at timestamptz)
   where r.bot_id = any (v_ok)
   order by r.bot_id, r.id
  on conflict (id) do update
     set exit_price = excluded.exit_price,
         fee = excluded.fee,
         profit = excluded.profit,
         profit_percentage = excluded.profit_percentage,
         status = excluded.status,
         exit_reason = excluded.exit_reason,
         exit_time = excluded.exit_time,
         exit_order_id = excluded.exit_order_id,
         lease_epoch = excluded.lease_epoch,
         metadata = t.metadata || excluded.metadata,
         decided_at = coalesce(t.decided_at, excluded.decided_at);
  insert into public.bot_logs (bot_id, user_id, log_level, message, context, source)
  select r.bot_id, r.user_id, r.log_level, r.message, coalesce(r.context, '{}'), 'bot'
    from jsonb_to_recordset(p_logs) as r(bot_id uuid, user_id uuid, log_level text, message text, context jsonb)
   where r.bot_id = any (v_ok);
  insert into public.notifications (user_id, kind, title, body, data)
  select r.user_id, r.kind, r.title, r.body, coalesce(r.data, '{}')
    from jsonb_to_recordset(p_notes) as r(user_id uuid, bot_id uuid, kind text, title text, body text, data jsonb)
   where r.bot_id = any (v_ok);
  update public.bots b
     set last_candle_at = greatest(b.last_candle_at, s.candle_at),
         status = coalesce(s.status, b.status),
         status_reason = case when s.status is not null then s.status_reason else b.status_reason end,
         error_message = case when s.status = 'error' then s.error_message else b.error_message end
    from jsonb_to_recordset(p_steps) as s(bot_id uuid, candle_at timestamptz, status text, status_reason text,
                                          error_message text)
   where b.id = s.bot_id and b.id = any (v_ok)
     and (s.status is not null or b.last_candle_at is distinct from greatest(b.last_candle_at, s.candle_at));
  return query
    select s.bot_id from jsonb_to_recordset(p_steps) as s(bot_id uuid) where not (s.bot_id = any (v_ok));
end;
$$;
ALTER FUNCTION public.bot_apply_steps(p_steps jsonb, p_orders jsonb, p_trades jsonb, p_logs jsonb, p_notes jsonb) OWNER TO postgres;
CREATE FUNCTION public.bot_fence_holds(p_bots jsonb) RETURNS TABLE(stale_bot_id uuid)
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_ok uuid[];
begin
  if p_bots is null or jsonb_typeof(p_bots) <> 'array' then
    raise exception 'p_bots must be a JSON array of {bot_id, epoch}' using errcode = '22023';
  end if;
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join jsonb_to_recordset(p_bots) as s(bot_id uuid, epoch bigint)
              on s.bot_id = l.bot_id and s.epoch = l.epoch
           order by l.bot_id
             for share of l) x;
  return query
    select distinct s.bot_id from jsonb_to_recordset(p_bots) as s(bot_id uuid)
     where s.bot_id is not null and not (s.bot_id = any (v_ok));
end;
$$;
ALTER FUNCTION public.bot_fence_holds(p_bots jsonb) OWNER TO postgres;
CREATE FUNCTION public.bot_orphan_holds(p_bots jsonb) RETURNS TABLE(bot_id uuid, hold_id uuid, client_order_id text, decided_at timestamp with time zone)
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_ok uuid[];
begin
  if p_bots is null or jsonb_typeof(p_bots) <> 'array' then
    raise exception 'p_bots must be a JSON array of {bot_id, epoch}' using errcode = '22023';
  end if;
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join jsonb_to_recordset(p_bots) as s(bot_id uuid, epoch bigint)
              on s.bot_id = l.bot_id and s.epoch = l.epoch
           order by l.bot_id
             for share of l) x;
  return query
    select b.id, t.id, t.reference_id, (t.metadata ->> 'decided_at')::timestamptz
      from public.bots b
      join public.credit_transfers t
        on t.reference_type = 'order'
       and t.phase = 'pending'
       and t.metadata ->> 'bot_id' = b.id::text
     where b.id = any (v_ok)
       and t.metadata ? 'decided_at'
       and (t.metadata ->> 'decided_at')::timestamptz <= b.last_candle_at
       and not exists (select 1 from public.credit_transfers r where r.pending_id = t.id)
       and not exists (select 1 from public.orders o where o.client_order_id = t.reference_id)
       and not exists (select 1 from public.position_requests q
                        where q.bot_id = b.id
                          and q.status in ('pending', 'working')
                          and q.id::text = t.metadata ->> 'request_id')
     order by b.id, t.id;
end;
$$;
ALTER FUNCTION public.bot_orphan_holds(p_bots jsonb) OWNER TO postgres;
CREATE FUNCTION public.bot_record_equity(p_rows jsonb, p_trades jsonb DEFAULT '[]'::jsonb) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_ok uuid[];
  v_n integer;
begin
  if jsonb_typeof(coalesce(p_rows, 'null')) <> 'array' or jsonb_typeof(coalesce(p_trades, 'null')) <> 'array' then
    raise exception 'p_rows and p_trades must be JSON arrays' using errcode = '22023';
  end if;
  if jsonb_array_length(p_trades) > 0 then
    select coalesce(array_agg(x.bot_id), '{}') into v_ok
      from (select l.bot_id
              from public.bot_leases l
              join (select distinct r.bot_id, r.lease_epoch
                      from jsonb_to_recordset(p_trades) as r(bot_id uuid, lease_epoch bigint)) s
                on s.bot_id = l.bot_id and s.lease_epoch = l.epoch
             order by l.bot_id
               for share of l) x;
    update public.trades t
       set amount = r.amount,
           fee = r.fee,
           price = coalesce(r.price, t.price),
           lease_epoch = r.lease_epoch
      from jsonb_to_recordset(p_trades) as r(id uuid, bot_id uuid, lease_epoch bigint, amount numeric, fee numeric,
                                             price numeric)
     where t.id = r.id and t.bot_id = r.bot_id and t.status = 'open' and r.bot_id = any (v_ok);
  end if;
  insert into public.bot_equity as e (bot_id, user_id, candle_at, price, position_amount, unrealized_pnl,
                                      realized_pnl, equity, lease_epoch)
  select r.bot_id, r.user_id, r.candle_at, r.price, coalesce(r.position_amount, 0),
         coalesce(r.unrealized_pnl, 0), coalesce(r.realized_pnl, 0), r.equity, r.lease_epoch
    from jsonb_to_recordset(p_rows) as r(bot_id uuid, user_id uuid, candle_at timestamptz, price numeric,
         position_amount numeric, unrealized_pnl numeric, realized_pnl numeric, equity numeric,
         lease_epoch bigint)
    join public.bot_leases l on l.bot_id = r.bot_id and l.epoch = r.lease_epoch
   order by r.bot_id
  on conflict (bot_id) do update
     set candle_at = excluded.candle_at,
         price = excluded.price,
         position_amount = excluded.position_amount,
         unrealized_pnl = excluded.unrealized_pnl,
         realized_pnl = excluded.realized_pnl,
         equity = excluded.equity,
         lease_epoch = excluded.lease_epoch,
         updated_at = now()
   where e.candle_at <= excluded.candle_at
     and coalesce(e.lease_epoch, 0) <= excluded.lease_epoch;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
ALTER FUNCTION public.bot_record_equity(p_rows jsonb, p_trades jsonb) OWNER TO postgres;
CREATE FUNCTION public.bot_record_protection(p_orders jsonb, p_trades jsonb DEFAULT '[]'::jsonb) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_ok uuid[];
  v_n integer;
begin
  if jsonb_typeof(coalesce(p_orders, 'null')) <> 'array' or jsonb_typeof(coalesce(p_trades, 'null')) <> 'array' then
    raise exception 'p_orders and p_trades must be JSON arrays' using errcode = '22023';
  end if;
  select coalesce(array_agg(x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join (select distinct r.bot_id, r.lease_epoch
                    from jsonb_to_recordset(p_orders || p_trades) as r(bot_id uuid, lease_epoch bigint)) s
              on s.bot_id = l.bot_id and s.lease_epoch = l.epoch
           order by l.bot_id
             for share of l) x;
  update public.trades t
     set stop_loss_price = r.stop_loss_price,
         take_profit_price = r.take_profit_price,
         lease_epoch = r.lease_epoch
    from jsonb_to_recordset(p_trades) as r(id uuid, bot_id uuid, lease_epoch bigint, stop_loss_price numeric,
                                           take_profit_price numeric)
   where t.id = r.id and t.bot_id = r.bot_id and t.status = 'open' and r.bot_id = any (v_ok);
  insert into public.protective_orders as p (id, bot_id, user_id, trade_id, client_order_id, exchange_order_id,
                                             exchange, symbol, kind, side, amount, trigger_price, limit_price,
                                             status, status_reason, filled_at, lease_epoch)
  select r.id, r.bot_id, r.user_id, r.trade_id, r.client_order_id, r.exchange_order_id, r.exchange, r.symbol,
         r.kind, r.side, r.amount, r.trigger_price, r.limit_price, coalesce(r.status, 'open'), r.status_reason,
         r.filled_at, r.lease_epoch
    from jsonb_to_recordset(p_orders) as r(id uuid, bot_id uuid, user_id uuid, trade_id uuid, client_order_id text,
         exchange_order_id text, exchange text, symbol text, kind text, side text, amount numeric,
         trigger_price numeric, limit_price numeric, status text, status_reason text, filled_at timestamptz,
         lease_epoch bigint)
   where r.bot_id = any (v_ok)
   order by r.bot_id, r.client_order_id
  on conflict (client_order_id) do update
     set exchange_order_id = coalesce(excluded.exchange_order_id, p.exchange_order_id),
         status = excluded.status,
         status_reason = coalesce(excluded.status_reason, p.status_reason),
         filled_at = coalesce(excluded.filled_at, p.filled_at),
         lease_epoch = excluded.lease_epoch,
         updated_at = now();
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
ALTER FUNCTION public.bot_record_protection(p_orders jsonb, p_trades jsonb) OWNER TO postgres;
CREATE FUNCTION public.bot_trade_prices(p_user_ids uuid[]) RETURNS TABLE(user_id uuid, credits_per_trade numeric, account_id uuid, live_trading boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select u.id,
         coalesce((p.features ->> 'credits_per_trade')::numeric, 0),
         (select a.id from public.credit_accounts a where a.user_id = u.id and a.kind = 'user'),
         p.live_trading
    from unnest(p_user_ids) as u(id)
   cross join lateral private.current_plan(u.id) p
$$;
ALTER FUNCTION public.bot_trade_prices(p_user_ids uuid[]) OWNER TO postgres;
CREATE FUNCTION public.cancel_strategy_subscription(p_subscription_id uuid) RETURNS public.strategy_subscriptions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.status in ('cancelled', 'expired') then
    return v_sub;
  end if;
  update public.strategy_subscriptions s
     set status = 'cancelled', cancelled_at = now(), auto_execute = false
   where s.id = v_sub.id
  returning * into v_sub;
  return v_sub;
end;
$$;
ALTER FUNCTION public.cancel_strategy_subscription(p_subscription_id uuid) OWNER TO postgres;
CREATE FUNCTION public.claim_jobs(p_worker_id uuid, p_queues text[], p_limit integer, p_lock_s double precision DEFAULT 30, p_kinds text[] DEFAULT NULL::text[]) RETURNS SETOF public.jobs
    LANGUAGE sql
    SET search_path TO ''
    SET jit TO 'off'
    AS $$
  with recursive priorities (queue, priority) as (
    select q.name, (select j.priority from public.jobs j
                     where j.status = 'queued' and j.queue = q.name
                     order by j.priority desc limit 1)
    from unnest(p_queues) as q(name)
    union all
    select p.queue, (select j.priority from public.jobs j
                      where j.status = 'queued' and j.queue = p.queue and j.priority < p.priority
                      order by j.priority desc limit 1)
    from priorities p
    where p.priority is not null
  ), ready as (
    select c.id
    from priorities p
    cross join lateral (
      select j.id, j.priority, j.run_at
      from public.jobs j
      where j.status = 'queued'
        and j.queue = p.queue
        and j.priority = p.priority
        and j.run_at <= now()
        and (p_kinds is null or j.kind = any (p_kinds))
      order by j.run_at, j.id
      limit greatest(p_limit, 0)
      for update skip locked
    ) c
    where p.priority is not null
    order by c.priority desc, c.run_at, c.id
    limit greatest(p_limit, 0)
  )
  update public.jobs j
  set status = 'running',
      attempts = j.attempts + 1,
      locked_by = p_worker_id,
      locked_until = now() + make_interval(secs => p_lock_s),
      started_at = now(),
      updated_at = now()
  where j.id = any (array(select ready.id from ready))
  returning j.*;
$$;
ALTER FUNCTION public.claim_jobs(p_worker_id uuid, p_queues text[], p_limit integer, p_lock_s double precision, p_kinds text[]) OWNER TO postgres;
CREATE TABLE public.position_requests (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    bot_id uuid NOT NULL,
    trade_id uuid,
    kind text NOT NULL,
    origin text DEFAULT 'user'::text NOT NULL,
    side text,
    amount numeric(28,12),
    stake numeric(28,12),
    order_type text DEFAULT 'market'::text NOT NULL,
    limit_price numeric(28,12),
    timeout_s integer,
    on_timeout text,
    stop_after boolean DEFAULT false NOT NULL,
    is_paper_trade boolean NOT NULL,
    idempotency_key text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    status_reason text,
    client_order_id text,
    deadline_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    completed_at timestamp with time zone,
    pair text,
    stop_status text,
    stop_reason text,
    CONSTRAINT position_requests_amount_positive CHECK (((amount > (0)::numeric) AND (amount <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric])))),
    CONSTRAINT position_requests_kind_known CHECK ((kind = ANY (ARRAY['close'::text, 'open'::text]))),
    CONSTRAINT position_requests_limit_price_positive CHECK (((limit_price > (0)::numeric) AND (limit_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric])))),
    CONSTRAINT position_requests_limit_terms CHECK ((((order_type = 'market'::text) AND (limit_price IS NULL) AND (timeout_s IS NULL)) OR ((order_type = 'limit'::text) AND (limit_price IS NOT NULL) AND (timeout_s IS NOT NULL) AND (on_timeout IS NOT NULL)))),
    CONSTRAINT position_requests_on_timeout_known CHECK ((on_timeout = ANY (ARRAY['market'::text, 'cancel'::text]))),
    CONSTRAINT position_requests_open_has_side CHECK (((kind <> 'open'::text) OR ((side IS NOT NULL) AND ((amount IS NULL) <> (stake IS NULL))))),
    CONSTRAINT position_requests_order_type_known CHECK ((order_type = ANY (ARRAY['market'::text, 'limit'::text]))),
    CONSTRAINT position_requests_origin_known CHECK ((origin = ANY (ARRAY['user'::text, 'stop'::text]))),
    CONSTRAINT position_requests_pair_length CHECK (((char_length(pair) >= 1) AND (char_length(pair) <= 64))),
    CONSTRAINT position_requests_side_known CHECK ((side = ANY (ARRAY['buy'::text, 'sell'::text]))),
    CONSTRAINT position_requests_stake_positive CHECK (((stake > (0)::numeric) AND (stake <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric])))),
    CONSTRAINT position_requests_status_known CHECK ((status = ANY (ARRAY['pending'::text, 'working'::text, 'done'::text, 'cancelled'::text, 'failed'::text]))),
    CONSTRAINT position_requests_status_reason_length CHECK ((char_length(status_reason) <= 2000)),
    CONSTRAINT position_requests_stop_status_known CHECK (((stop_status IS NULL) OR ((stop_status = ANY (ARRAY['paused'::text, 'error'::text])) AND stop_after))),
    CONSTRAINT position_requests_timeout_range CHECK (((timeout_s >= 5) AND (timeout_s <= 86400)))
);
ALTER TABLE public.position_requests OWNER TO postgres;
COMMENT ON COLUMN public.position_requests.pair IS 'The pair a manual entry trades (one of the bot''s pairs); null on older requests: the bot''s trading_pair.';
COMMENT ON COLUMN public.position_requests.stop_status IS 'With stop_after: the status (paused, error) the bot goes to once its worker has cancelled this working close and rested the stop again; null for stop_bot (stopped).';
COMMENT ON COLUMN public.position_requests.stop_reason IS 'The status_reason the bot was paused (or set to error) with, restored when it goes there.';
CREATE FUNCTION public.close_position(p_trade_id uuid, p_is_paper_trade boolean, p_order_type text DEFAULT 'market'::text, p_limit_price private.finite_number DEFAULT NULL::numeric, p_timeout_s integer DEFAULT NULL::integer, p_on_timeout text DEFAULT 'market'::text, p_idempotency_key text DEFAULT NULL::text, p_pair text DEFAULT NULL::text, p_amount private.finite_number DEFAULT NULL::numeric, p_fraction private.finite_number DEFAULT NULL::numeric) RETURNS public.position_requests
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := auth.uid();
  v_amount numeric;
  v_trade public.trades;
  v_bot public.bots;
  v_key text := private.position_request_key(p_idempotency_key);
  v_req public.position_requests;
begin
  if v_uid is null then
    raise exception 'position requests are made by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  if p_order_type is null or p_order_type not in ('market', 'limit') then
    raise exception 'order type must be market or limit'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_order_type_known';
  end if;
  if p_order_type = 'market' and (p_limit_price is not null or p_timeout_s is not null) then
    raise exception 'a market close takes no limit price and no timeout'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_limit_terms';
  end if;
  if p_order_type = 'limit' then
    if p_limit_price is null or p_limit_price <= 0 or p_limit_price > 1e15 then
      raise exception 'a limit close needs a limit price above 0'
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_limit_price_positive';
    end if;
    if p_timeout_s is null or p_timeout_s not between 5 and 86400 then
      raise exception 'a limit close needs a timeout of 5 to 86400 seconds'
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_timeout_range';
    end if;
    if p_on_timeout is null or p_on_timeout not in ('market', 'cancel') then
      raise exception 'on timeout a limit close goes to market or is cancelled'
        using errcode = 'invalid_parameter_value', constraint = 'position_requests_on_timeout_known';
    end if;
  end if;
  if p_amount is not null and p_fraction is not null then
    raise exception 'give an amount (base currency) or a fraction of the position, not both'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_amount_or_fraction';
  end if;
  if p_amount <= 0 or p_amount > 1e15 then
    raise exception 'the amount to close must be above 0 and at most 10^15'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_amount_positive';
  end if;
  if p_fraction <= 0 or p_fraction > 1 then
    raise exception 'the fraction to close must be above 0 and at most 1, got %', p_fraction
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_fraction_range';
  end if;
  if v_key is not null then
    select * into v_req from public.position_requests r
     where r.user_id = v_uid and r.idempotency_key = v_uid::text || ':' || v_key;
    if found then
      if v_req.kind <> 'close' or v_req.trade_id is distinct from p_trade_id then
        raise exception 'this idempotency key was used for another request'
          using errcode = 'check_violation', constraint = 'position_requests_idempotency_key_reused';
      end if;
      return v_req;
    end if;
  end if;
  -- The bot's own trades only: copies of signals close with their signal.
  select * into v_trade from public.trades t
   where t.id = p_trade_id and t.signal_id is null
     and (t.user_id = v_uid
          or exists (select 1 from public.bots b
                      where b.id = t.bot_id and b.organisation_id = any (private.organisation_ids())));
  if not found then
    raise exception 'no position of yours with id %', p_trade_id
      using errcode = 'no_data_found', constraint = 'position_requests_trade_owned';
  end if;
  if p_pair is not null and p_pair is distinct from v_trade.trading_pair then
    raise exception 'the trade is on %, not on %', v_trade.trading_pair, left(p_pair, 64)
      using errcode = 'check_violation', constraint = 'position_requests_pair_of_trade';
  end if;
  if v_trade.status <> 'open' then
    raise exception 'the trade is % already', v_trade.status
      using errcode = 'check_violation', constraint = 'position_requests_trade_open';
  end if;
  v_bot := private.position_request_bot(v_trade.bot_id, p_is_paper_trade);
  -- A part of the position (null: all of it; a part as large as the position is all of it).
  v_amount := coalesce(p_amount, v_trade.amount * p_fraction);
  if v_amount >= v_trade.amount then
    v_amount := null;
  end if;
  select * into v_req from public.position_requests r
   where r.trade_id = p_trade_id and r.kind = 'close' and r.status in ('pending', 'working');
  if found then
    return v_req;
  end if;
  insert into public.position_requests as r (user_id, bot_id, trade_id, kind, order_type, limit_price, timeout_s,
                                             on_timeout, pair, amount, is_paper_trade, idempotency_key)
  values (v_uid, v_bot.id, p_trade_id, 'close', p_order_type,
          case when p_order_type = 'limit' then p_limit_price end,
          case when p_order_type = 'limit' then p_timeout_s end,
          case when p_order_type = 'limit' then p_on_timeout end,
          v_trade.trading_pair, round(v_amount, 12), v_bot.is_paper_trade, v_uid::text || ':' || coalesce(v_key, gen_random_uuid()::text))
  returning * into v_req;
  return v_req;
end;
$$;
ALTER FUNCTION public.close_position(p_trade_id uuid, p_is_paper_trade boolean, p_order_type text, p_limit_price private.finite_number, p_timeout_s integer, p_on_timeout text, p_idempotency_key text, p_pair text, p_amount private.finite_number, p_fraction private.finite_number) OWNER TO postgres;
CREATE FUNCTION public.complete_job(p_worker_id uuid, p_job_id bigint, p_result jsonb DEFAULT NULL::jsonb) RETURNS boolean
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  select exists (select 1 from public.complete_jobs(p_worker_id, array[p_job_id], array[p_result]));
$$;
ALTER FUNCTION public.complete_job(p_worker_id uuid, p_job_id bigint, p_result jsonb) OWNER TO postgres;
CREATE FUNCTION public.complete_jobs(p_worker_id uuid, p_job_ids bigint[], p_results jsonb[] DEFAULT NULL::jsonb[]) RETURNS SETOF bigint
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  perform 1 from public.jobs j
  where j.id = any (p_job_ids) and j.status = 'running' and j.locked_by = p_worker_id
  order by j.id
  for update;
  return query
    update public.jobs j
    set status = 'succeeded',
        result = r.result,
        finished_at = now(),
        locked_by = null,
        locked_until = null,
        updated_at = now()
    from unnest(p_job_ids, coalesce(p_results, array[]::jsonb[])) as r(id, result)
    where j.id = r.id
      and j.status = 'running'
      and j.locked_by = p_worker_id
    returning j.id;
end;
$$;
ALTER FUNCTION public.complete_jobs(p_worker_id uuid, p_job_ids bigint[], p_results jsonb[]) OWNER TO postgres;
CREATE TABLE public.payout_destinations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    provider text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    currency text NOT NULL,
    stripe_account_id text,
    onboarding_url text,
    paystack_recipient_code text,
    bank_code text,
    account_last4 text,
    account_name text,
    error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT payout_destinations_account_last4_format CHECK ((account_last4 ~ '^[0-9]{1,4}$'::text)),
    CONSTRAINT payout_destinations_account_name_length CHECK ((char_length(account_name) <= 255)),
    CONSTRAINT payout_destinations_bank_code_format CHECK ((bank_code ~ '^[0-9A-Za-z]{1,20}$'::text)),
    CONSTRAINT payout_destinations_currency_format CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT payout_destinations_error_length CHECK ((char_length(error) <= 1000)),
    CONSTRAINT payout_destinations_onboarding_url_length CHECK ((char_length(onboarding_url) <= 2000)),
    CONSTRAINT payout_destinations_provider_known CHECK ((provider = ANY (ARRAY['stripe'::text, 'paystack'::text]))),
    CONSTRAINT payout_destinations_recipient_length CHECK ((char_length(paystack_recipient_code) <= 255)),
    CONSTRAINT payout_destinations_status_known CHECK ((status = ANY (ARRAY['pending'::text, 'ready'::text, 'rejected'::text]))),
    CONSTRAINT payout_destinations_stripe_account_length CHECK ((char_length(stripe_account_id) <= 255))
);
ALTER TABLE public.payout_destinations OWNER TO postgres;
CREATE FUNCTION public.connect_payout_destination(p_provider text, p_currency text DEFAULT NULL::text, p_bank_code text DEFAULT NULL::text, p_account_number text DEFAULT NULL::text) RETURNS public.payout_destinations
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  v_user uuid := (select auth.uid());
  v_row public.payout_destinations;
begin
  if v_user is null or private.is_service() then
    raise exception 'providers connect their own payout destination' using errcode = 'insufficient_privilege';
  end if;
  if coalesce(auth.jwt() -> 'app_metadata' ->> 'role', '') <> 'provider' then
    raise exception 'only providers connect a payout destination' using errcode = 'insufficient_privilege';
  end if;
  if p_provider is null or p_provider not in ('stripe', 'paystack') then
    raise exception 'payouts go through stripe or paystack, not %', p_provider
      using errcode = 'invalid_parameter_value';
  end if;
  if p_currency is not null and p_currency !~ '^[A-Za-z]{3}$' then
    raise exception 'a currency is a three-letter code' using errcode = 'check_violation',
      constraint = 'payout_destinations_currency_format';
  end if;
  if p_provider = 'paystack' and (p_bank_code is null or p_bank_code !~ '^[0-9A-Za-z]{1,20}$') then
    raise exception 'a paystack destination needs a bank code' using errcode = 'check_violation',
      constraint = 'payout_destinations_bank_code_format';
  end if;
  if p_provider = 'paystack' and (p_account_number is null or p_account_number !~ '^[0-9]{6,20}$') then
    raise exception 'a paystack destination needs an account number of 6 to 20 digits'
      using errcode = 'check_violation', constraint = 'payout_destinations_account_number_format';
  end if;
  if exists (select 1 from public.payouts p
              where p.user_id = v_user and p.status in ('requested', 'approved', 'sent')) then
    raise exception 'a payout is on its way: change the destination once it has settled'
      using errcode = 'check_violation', constraint = 'payout_destinations_no_payout_in_flight';
  end if;
  insert into public.payout_destinations as d (user_id, provider, status, currency, bank_code, account_last4)
  values (v_user, p_provider, 'pending',
          upper(coalesce(p_currency, case p_provider when 'stripe' then 'USD' else 'NGN' end)),
          case when p_provider = 'paystack' then p_bank_code end,
          case when p_provider = 'paystack' then right(p_account_number, 4) end)
  on conflict (user_id) do update
     set provider = excluded.provider, status = 'pending', currency = excluded.currency,
         bank_code = excluded.bank_code, account_last4 = excluded.account_last4,
         -- A Stripe account already created is kept: onboarding continues where it stopped.
         stripe_account_id = case when excluded.provider = 'stripe' then d.stripe_account_id end,
         paystack_recipient_code = null, account_name = null, onboarding_url = null, error = null,
         updated_at = now()
  returning * into v_row;
  perform public.enqueue_job('billing.payout_destination',
                             jsonb_build_object('destination_id', v_row.id, 'account_number', p_account_number),
                             'default', null, 0, 5,
                             'payout-destination:' || v_row.id || ':' || extract(epoch from v_row.updated_at));
  return v_row;
end;
$_$;
ALTER FUNCTION public.connect_payout_destination(p_provider text, p_currency text, p_bank_code text, p_account_number text) OWNER TO postgres;
CREATE FUNCTION public.create_api_key(p_name text, p_scopes text[], p_expires_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_environment text DEFAULT 'live'::text) RETURNS TABLE(id uuid, key text, prefix text, name text, environment text, scopes text[], expires_at timestamp with time zone, created_at timestamp with time zone)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
#variable_conflict use_column
declare
  v_user uuid := (select auth.uid());
  v_plan public.plans;
  v_key text;
  v_row public.api_keys;
begin
  if v_user is null or private.is_service() then
    raise exception 'API keys are created by a signed-in user'
      using errcode = 'insufficient_privilege';
  end if;
  if p_name is null or char_length(btrim(p_name)) not between 1 and 100 then
    raise exception 'name must be 1 to 100 characters' using errcode = 'invalid_parameter_value';
  end if;
  if p_scopes is null or cardinality(p_scopes) not between 1 and 16 or array_position(p_scopes, null) is not null
     or not p_scopes <@ private.api_scopes() then
    raise exception 'scopes must be one or more of %', array_to_string(private.api_scopes(), ', ')
      using errcode = 'invalid_parameter_value';
  end if;
  if p_environment is null or p_environment not in ('live', 'test') then
    raise exception 'environment must be live or test' using errcode = 'invalid_parameter_value';
  end if;
  if p_expires_at is not null and (p_expires_at <= now() or p_expires_at > now() + interval '2 years'
                                   or not isfinite(p_expires_at)) then
    raise exception 'expires_at must be in the future and at most two years away' using errcode = 'invalid_parameter_value';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('api_keys:' || v_user::text, 0));
  v_plan := private.current_plan(v_user);
  if not v_plan.api_access then
    perform private.raise_plan_limit(v_plan, 'api_access', 'does not include API access', null,
                                     'api_keys_plan_api_access');
  end if;
  if (select count(*) from public.api_keys k where k.user_id = v_user and k.revoked_at is null) >= 25 then
    raise exception 'at most 25 API keys may be active at once; revoke one first'
      using errcode = 'check_violation', constraint = 'api_keys_max_active';
  end if;
  v_key := 'tf_' || p_environment || '_'
           || translate(encode(extensions.gen_random_bytes(24), 'base64'), '+/', 'xy');
  insert into public.api_keys (user_id, name, environment, prefix, key_hash, scopes, expires_at)
  values (v_user, btrim(p_name), p_environment, left(v_key, 16), private.api_key_hash(v_key),
          array(select distinct s from unnest(p_scopes) s order by s), p_expires_at)
  returning * into v_row;
  return query select v_row.id, v_key, v_row.prefix, v_row.name, v_row.environment, v_row.scopes, v_row.expires_at,
                      v_row.created_at;
end;
$$;
ALTER FUNCTION public.create_api_key(p_name text, p_scopes text[], p_expires_at timestamp with time zone, p_environment text) OWNER TO postgres;
CREATE FUNCTION public.create_history_partitions() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  v_n integer := 0;
  v_table text;
  v_key text;
  v_step interval;
  v_ahead interval;
  v_fill boolean;
  v_at timestamptz;
begin
  if not private.is_service() then
    raise exception 'create_history_partitions is for the fleet only' using errcode = '42501';
  end if;
  -- Creating a partition locks its parent briefly; never queue behind a long transaction.
  perform pg_catalog.set_config('lock_timeout', '5s', true);
  for v_table, v_key, v_step, v_ahead, v_fill in
    select h.table_name, h.partition_key, h.step, h.ahead, h.fill_from_default
      from private.history_partitions h order by h.table_name
  loop
    v_n := v_n + private.create_history_partitions(v_table, now() + v_ahead);
    if v_fill then
      for v_at in
        execute pg_catalog.format('select distinct private.history_step_start($1, d.%I) from partitions.%I d',
                                  v_key, v_table || '_default')
          using v_step
      loop
        if private.create_history_partition(v_table, v_at) then
          v_n := v_n + 1;
        end if;
      end loop;
    end if;
  end loop;
  return v_n;
end;
$_$;
ALTER FUNCTION public.create_history_partitions() OWNER TO postgres;
CREATE FUNCTION public.create_history_partitions_between(p_history text, p_from timestamp with time zone, p_until timestamp with time zone) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_step interval := (select h.step from private.history_partitions h where h.table_name = p_history);
  v_at timestamptz;
  v_n integer := 0;
begin
  if not private.is_service() then
    raise exception 'create_history_partitions_between is for the fleet only' using errcode = '42501';
  end if;
  if v_step is null then
    raise exception 'create_history_partitions_between: history must be one of %',
      (select pg_catalog.string_agg(h.table_name, ', ' order by h.table_name) from private.history_partitions h)
      using errcode = '22023';
  end if;
  if p_from is null or p_until is null or p_until < p_from or p_until > p_from + interval '100 years'
     or not pg_catalog.isfinite(p_from) or not pg_catalog.isfinite(p_until) then
    raise exception 'create_history_partitions_between: from and until must be finite, from <= until, at most 100 years apart'
      using errcode = '22023';
  end if;
  perform pg_catalog.set_config('lock_timeout', '5s', true);
  for v_at in
    select pg_catalog.generate_series(private.history_step_start(v_step, p_from), p_until, v_step) union select p_until
  loop
    if private.create_history_partition(p_history, v_at) then
      v_n := v_n + 1;
    end if;
  end loop;
  return v_n;
end;
$$;
ALTER FUNCTION public.create_history_partitions_between(p_history text, p_from timestamp with time zone, p_until timestamp with time zone) OWNER TO postgres;
CREATE TABLE public.organisations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    owner_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT organisations_name_length CHECK (((char_length(btrim(name)) >= 1) AND (char_length(btrim(name)) <= 100)))
);
ALTER TABLE public.organisations OWNER TO postgres;
CREATE FUNCTION public.create_organisation(p_name text) RETURNS public.organisations
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := private.organisation_caller();
  v_org public.organisations;
begin
  if p_name is null or char_length(btrim(p_name)) not between 1 and 100 then
    raise exception 'an organisation''s name has 1 to 100 characters'
      using errcode = 'invalid_parameter_value', constraint = 'organisations_name_length';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('organisations:' || v_uid::text, 0));
  if (select count(*) from public.organisations o where o.owner_id = v_uid) >= 20 then
    raise exception 'a user pays for at most 20 organisations'
      using errcode = 'check_violation', constraint = 'organisations_max_per_owner';
  end if;
  insert into public.organisations (name, owner_id) values (btrim(p_name), v_uid) returning * into v_org;
  insert into public.organisation_members (user_id, organisation_id, role) values (v_uid, v_org.id, 'owner');
  return v_org;
end;
$$;
ALTER FUNCTION public.create_organisation(p_name text) OWNER TO postgres;
CREATE FUNCTION public.create_organisation_api_key(p_organisation_id uuid, p_name text, p_scopes text[], p_expires_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_environment text DEFAULT 'live'::text) RETURNS TABLE(id uuid, key text, prefix text, name text, environment text, scopes text[], expires_at timestamp with time zone, created_at timestamp with time zone)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
#variable_conflict use_column
declare
  v_owner uuid;
  v_plan public.plans;
  v_key text;
  v_row public.api_keys;
begin
  perform private.organisation_caller();
  if p_name is null or char_length(btrim(p_name)) not between 1 and 100 then
    raise exception 'name must be 1 to 100 characters' using errcode = 'invalid_parameter_value';
  end if;
  if p_scopes is null or cardinality(p_scopes) not between 1 and 16 or array_position(p_scopes, null) is not null
     or not p_scopes <@ array['bots:read', 'bots:write', 'trades:read']::text[] then
    raise exception 'an organisation''s key takes one or more of bots:read, bots:write, trades:read'
      using errcode = 'invalid_parameter_value', constraint = 'api_keys_organisation_scopes';
  end if;
  if p_environment is null or p_environment not in ('live', 'test') then
    raise exception 'environment must be live or test' using errcode = 'invalid_parameter_value';
  end if;
  if p_expires_at is not null and (p_expires_at <= now() or p_expires_at > now() + interval '2 years'
                                   or not isfinite(p_expires_at)) then
    raise exception 'expires_at must be in the future and at most two years away' using errcode = 'invalid_parameter_value';
  end if;
  perform private.organisation_require(p_organisation_id, 'admin');
  perform pg_advisory_xact_lock(hashtextextended('api_keys:org:' || p_organisation_id::text, 0));
  select o.owner_id into v_owner from public.organisations o where o.id = p_organisation_id;
  v_plan := private.current_plan(v_owner);
  if not v_plan.api_access then
    perform private.raise_plan_limit(v_plan, 'api_access', 'does not include API access', null,
                                     'api_keys_plan_api_access');
  end if;
  if (select count(*) from public.api_keys k where k.organisation_id = p_organisation_id and k.revoked_at is null) >= 25 then
    raise exception 'at most 25 API keys may be active at once; revoke one first'
      using errcode = 'check_violation', constraint = 'api_keys_max_active';
  end if;
  v_key := 'tf_' || p_environment || '_'
           || translate(encode(extensions.gen_random_bytes(24), 'base64'), '+/', 'xy');
  insert into public.api_keys (organisation_id, name, environment, prefix, key_hash, scopes, expires_at)
  values (p_organisation_id, btrim(p_name), p_environment, left(v_key, 16), private.api_key_hash(v_key),
          array(select distinct s from unnest(p_scopes) s order by s), p_expires_at)
  returning * into v_row;
  return query select v_row.id, v_key, v_row.prefix, v_row.name, v_row.environment, v_row.scopes, v_row.expires_at,
                      v_row.created_at;
end;
$$;
ALTER FUNCTION public.create_organisation_api_key(p_organisation_id uuid, p_name text, p_scopes text[], p_expires_at timestamp with time zone, p_environment text) OWNER TO postgres;
CREATE FUNCTION public.credit_audit() RETURNS TABLE(rule text, account_id uuid, detail text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  with sides as (
    select t.debit_account_id as account_id, t.amount as debit, 0::numeric as credit, t.phase, t.id, t.pending_id
      from public.credit_transfers t
    union all
    select t.credit_account_id, 0::numeric, t.amount, t.phase, t.id, t.pending_id
      from public.credit_transfers t
  ),
  expected as (
    select s.account_id,
           coalesce(sum(s.debit) filter (where s.phase in ('posted', 'post_pending')), 0) as debits_posted,
           coalesce(sum(s.credit) filter (where s.phase in ('posted', 'post_pending')), 0) as credits_posted,
           coalesce(sum(s.debit) filter (where s.phase = 'pending' and not exists (
             select 1 from public.credit_transfers r where r.pending_id = s.id)), 0) as debits_pending,
           coalesce(sum(s.credit) filter (where s.phase = 'pending' and not exists (
             select 1 from public.credit_transfers r where r.pending_id = s.id)), 0) as credits_pending
      from sides s group by s.account_id
  )
  select 'debits_must_not_exceed_credits', a.id,
         format('balance %s, pending debits %s', a.balance, a.debits_pending)
    from public.credit_accounts a
   where not a.allow_negative and a.credits_posted - a.debits_posted - a.debits_pending < 0
  union all
  select 'ledger_sums_to_zero', null::uuid, format('sum of balances %s, pending %s / %s', sum(a.balance),
         sum(a.debits_pending), sum(a.credits_pending))
    from public.credit_accounts a
  having sum(a.balance) <> 0 or sum(a.debits_pending) <> sum(a.credits_pending)
  union all
  select 'balance_equals_transfers', a.id,
         format('columns %s/%s/%s/%s, transfers %s/%s/%s/%s', a.debits_posted, a.credits_posted, a.debits_pending,
                a.credits_pending, coalesce(e.debits_posted, 0), coalesce(e.credits_posted, 0),
                coalesce(e.debits_pending, 0), coalesce(e.credits_pending, 0))
    from public.credit_accounts a left join expected e on e.account_id = a.id
   where (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
         is distinct from (coalesce(e.debits_posted, 0), coalesce(e.credits_posted, 0),
                           coalesce(e.debits_pending, 0), coalesce(e.credits_pending, 0))
  union all
  select 'hold_resolves_once', null::uuid, format('hold %s resolved %s times', t.pending_id, count(*))
    from public.credit_transfers t where t.pending_id is not null
   group by t.pending_id having count(*) > 1
  union all
  select 'post_within_hold', null::uuid, format('post %s of %s exceeds hold %s', r.id, r.amount, h.amount)
    from public.credit_transfers r join public.credit_transfers h on h.id = r.pending_id
   where r.phase = 'post_pending' and r.amount > h.amount
  union all
  select 'open_holds_match', null::uuid, format('hold %s open-state mismatch', t.id)
    from public.credit_transfers t
   where t.phase = 'pending'
     and (exists (select 1 from private.credit_open_holds o where o.transfer_id = t.id))
         = (exists (select 1 from public.credit_transfers r where r.pending_id = t.id))
$$;
ALTER FUNCTION public.credit_audit() OWNER TO postgres;
CREATE FUNCTION public.credit_charge_usage(p_id uuid, p_user_id uuid, p_usage text, p_quantity numeric DEFAULT 1, p_reference_type text DEFAULT NULL::text, p_reference_id text DEFAULT NULL::text, p_metadata jsonb DEFAULT '{}'::jsonb) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform private.credit_require_service();
  return private.credit_apply_usage(p_id, 'transfer', p_user_id, p_usage, p_quantity, null,
                                    p_reference_type, p_reference_id, p_metadata);
end;
$$;
ALTER FUNCTION public.credit_charge_usage(p_id uuid, p_user_id uuid, p_usage text, p_quantity numeric, p_reference_type text, p_reference_id text, p_metadata jsonb) OWNER TO postgres;
CREATE FUNCTION public.credit_correct(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_reason text) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not (private.is_service() or private.is_admin()) then
    raise exception 'only admins can correct the credit ledger' using errcode = 'insufficient_privilege';
  end if;
  perform p_amount::private.credit_amount;
  if p_reason is null or btrim(p_reason) = '' then
    raise exception 'a correction needs a reason' using errcode = 'check_violation',
      constraint = 'credit_corrections_reason_required';
  end if;
  if char_length(p_reason) > 1000 then
    raise exception 'a correction''s reason is at most 1000 characters' using errcode = 'check_violation',
      constraint = 'credit_corrections_reason_length';
  end if;
  return private.credit_apply_or_raise(
    case when private.is_service() then p_id else md5('credit-correction:' || p_id::text)::uuid end,
    'transfer', p_debit_account_id, p_credit_account_id, p_amount, 'correction', null, null,
    'correction', p_id::text, jsonb_build_object('reason', p_reason, 'corrected_by', (select auth.uid())));
end;
$$;
ALTER FUNCTION public.credit_correct(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_reason text) OWNER TO postgres;
CREATE FUNCTION public.credit_create_transfer(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_reference_type text DEFAULT NULL::text, p_reference_id text DEFAULT NULL::text, p_metadata jsonb DEFAULT '{}'::jsonb, p_pending boolean DEFAULT false, p_timeout interval DEFAULT NULL::interval) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_code text;
  v_row public.credit_transfers;
begin
  perform private.credit_require_service();
  v_code := private.credit_apply(p_id, case when p_pending then 'hold' else 'transfer' end,
                                 p_debit_account_id, p_credit_account_id, p_amount, p_kind, null,
                                 case when p_pending and p_timeout is not null then now() + p_timeout end,
                                 p_reference_type, p_reference_id, p_metadata);
  if v_code not in ('ok', 'exists') then
    perform private.credit_raise(v_code, p_id, p_debit_account_id, p_amount);
  end if;
  select * into v_row from public.credit_transfers t where t.id = p_id;
  return v_row;
end;
$$;
ALTER FUNCTION public.credit_create_transfer(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_reference_type text, p_reference_id text, p_metadata jsonb, p_pending boolean, p_timeout interval) OWNER TO postgres;
CREATE FUNCTION public.credit_create_transfers(p_transfers jsonb) RETURNS TABLE(idx integer, id uuid, result text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_items private.credit_batch_item[];
  v_work private.credit_batch_work[];
  w private.credit_batch_work;
  r private.credit_batch_item;
  v_pending_ids uuid[];
  v_holds public.credit_transfers[];
  v_all_early boolean;
  v_n_early integer;
  -- the batch's accounts in lock order: id, system?, may go negative, available, net changes
  a_id uuid[];
  a_system boolean[];
  a_allow boolean[];
  a_avail numeric[];
  a_dp numeric[];
  a_cp numeric[];
  a_dpe numeric[];
  a_cpe numeric[];
  -- accepted in this batch: every row; the tracked ones also by id; tracked resolutions
  n_row public.credit_transfers[] := '{}'::public.credit_transfers[];
  t_id uuid[] := '{}'::uuid[];
  t_row public.credit_transfers[] := '{}'::public.credit_transfers[];
  t_dpos integer[] := '{}'::integer[];
  t_cpos integer[] := '{}'::integer[];
  c_pending uuid[] := '{}'::uuid[];
  c_phase text[] := '{}'::text[];
  o_id uuid[] := '{}'::uuid[];
  o_timeout timestamptz[] := '{}'::timestamptz[];
  v_resolved uuid[] := '{}'::uuid[];
  v_row public.credit_transfers;
  v_hold public.credit_transfers;
  v_action text;
  v_amount numeric;
  v_pos integer;
  v_d integer;
  v_c integer;
  v_phase text;
  v_count bigint;
begin
  perform private.credit_require_service();
  if p_transfers is null or jsonb_typeof(p_transfers) <> 'array' then
    raise exception 'credit_create_transfers expects a JSON array of transfers' using errcode = 'invalid_parameter_value';
  end if;
  v_items := array(select b from private.credit_parse_batch(p_transfers) b order by b.idx);
  v_pending_ids := array(select distinct b.pending_id from unnest(v_items) b where b.pending_id is not null);
  -- Holds are immutable: read them before locking, to know their accounts.
  v_holds := array(select t from public.credit_transfers t where t.id = any(v_pending_ids));
  select array_agg(a.id order by a.user_id is null, a.id),
         array_agg(a.user_id is null order by a.user_id is null, a.id),
         array_agg(a.allow_negative order by a.user_id is null, a.id)
    into a_id, a_system, a_allow
    from public.credit_accounts a
   where a.id in (select b.debit_account_id from unnest(v_items) b where b.early_result is null
                  union select b.credit_account_id from unnest(v_items) b where b.early_result is null
                  union select h.debit_account_id from unnest(v_holds) h
                  union select h.credit_account_id from unnest(v_holds) h);
  a_id := coalesce(a_id, '{}');
  -- System accounts are locked early too when a check needs their balance (a system
  -- account that may not go negative is debited) or no user-owned account serializes an
  -- element (system to system).
  select coalesce(bool_or(
           (b.action in ('transfer', 'hold', 'usage') and (
              (d.system and not d.allow) or (d.system and c.system)))
           or (b.pending_id is not null and hd.system and hc.system)), false)
    into v_all_early
    from unnest(v_items) b
    left join unnest(a_id, a_system, a_allow) d(id, system, allow) on d.id = b.debit_account_id
    left join unnest(a_id, a_system, a_allow) c(id, system, allow) on c.id = b.credit_account_id
    left join unnest(v_holds) h on h.id = b.pending_id
    left join unnest(a_id, a_system) hd(id, system) on hd.id = h.debit_account_id
    left join unnest(a_id, a_system) hc(id, system) on hc.id = h.credit_account_id
   where b.early_result is null;
  a_avail := array(
    select l.available from (
      select a.credits_posted - a.debits_posted - a.debits_pending as available
        from public.credit_accounts a
       where a.id = any(a_id) and (v_all_early or a.user_id is not null)
       order by a.user_id is null, a.id
       for no key update) l);
  v_n_early := case when v_all_early then cardinality(a_id)
                    else (select count(*) from unnest(a_system) s where not s) end;
  if cardinality(a_avail) <> v_n_early then
    raise exception 'an account of this batch was removed concurrently; retry the batch'
      using errcode = 'serialization_failure';
  end if;
  a_avail := a_avail || array_fill(0::numeric, array[cardinality(a_id) - v_n_early]);
  a_dp := array_fill(0::numeric, array[cardinality(a_id)]);
  a_cp := a_dp;
  a_dpe := a_dp;
  a_cpe := a_dp;
  -- Under the locks: what exists already and which holds are resolved; account positions.
  v_work := array(
    select row(b, d.pos, c.pos, x, h, hd.pos, hc.pos, s.phase,
               b.id in (select b2.pending_id from unnest(v_items) b2 where b2.pending_id is not null)
                 or count(*) over (partition by b.id) > 1,
               b.pending_id is not null and count(*) over (partition by b.pending_id) > 1
              )::private.credit_batch_work
      from unnest(v_items) b
      left join unnest(a_id) with ordinality d(id, pos) on d.id = b.debit_account_id
      left join unnest(a_id) with ordinality c(id, pos) on c.id = b.credit_account_id
      left join public.credit_transfers x on x.id = b.id
      left join unnest(v_holds) h on h.id = b.pending_id
      left join unnest(a_id) with ordinality hd(id, pos) on hd.id = h.debit_account_id
      left join unnest(a_id) with ordinality hc(id, pos) on hc.id = h.credit_account_id
      left join public.credit_transfers s on s.pending_id = b.pending_id
     order by b.idx);
  foreach w in array v_work loop
    r := w.item;
    idx := r.idx;
    id := r.id;
    result := r.early_result;
    v_action := case r.action when 'usage' then 'transfer' else r.action end;
    v_amount := round(r.amount, 8);
    if result is not null then
      null;
    elsif r.id is null then
      result := 'id_must_not_be_null';
    elsif v_action not in ('transfer', 'hold', 'post', 'void') then
      result := 'action_unknown';
    elsif v_action in ('transfer', 'hold') then
      if v_amount is null or v_amount <= 0 then result := 'amount_must_be_positive';
      elsif r.kind is null or r.kind not in ('grant', 'purchase', 'usage', 'revenue_share', 'payout', 'refund', 'correction') then
        result := 'kind_unknown';
      elsif r.debit_account_id is null then result := 'debit_account_id_must_not_be_null';
      elsif r.credit_account_id is null then result := 'credit_account_id_must_not_be_null';
      elsif r.debit_account_id = r.credit_account_id then result := 'accounts_must_be_different';
      elsif r.pending_id is not null then result := 'pending_id_must_be_null';
      end if;
    else
      if r.pending_id is null then result := 'pending_id_must_not_be_null';
      elsif r.pending_id = r.id then result := 'pending_id_must_be_different';
      elsif v_amount is not null and v_amount <= 0 then result := 'amount_must_be_positive';
      end if;
    end if;
    -- Same id seen before, in this batch or in the ledger?
    if result is null then
      v_pos := case when w.track_id then array_position(t_id, r.id) end;
      if v_pos is not null then
        result := private.credit_compare(t_row[v_pos], v_action, r.debit_account_id, r.credit_account_id, v_amount,
                                         r.kind, r.pending_id, r.reference_type, r.reference_id);
      elsif (w.existing).id is not null then
        result := private.credit_compare(w.existing, v_action, r.debit_account_id, r.credit_account_id, v_amount,
                                         r.kind, r.pending_id, r.reference_type, r.reference_id);
      end if;
    end if;
    if result is null and v_action in ('transfer', 'hold') then
      v_d := w.d_pos;
      v_c := w.c_pos;
      if v_d is null then result := 'debit_account_not_found';
      elsif v_c is null then result := 'credit_account_not_found';
      elsif not a_allow[v_d] and a_avail[v_d] < v_amount then result := 'exceeds_credits';
      else
        v_row := row(r.id, r.debit_account_id, r.credit_account_id, v_amount, r.kind,
                     case v_action when 'hold' then 'pending' else 'posted' end, null,
                     case v_action when 'hold' then r.timeout_at end, r.reference_type, r.reference_id,
                     coalesce(r.metadata, '{}'), now())::public.credit_transfers;
        a_avail[v_d] := a_avail[v_d] - v_amount;
        if v_action = 'transfer' then
          a_dp[v_d] := a_dp[v_d] + v_amount;
          a_cp[v_c] := a_cp[v_c] + v_amount;
          a_avail[v_c] := a_avail[v_c] + v_amount;
        else
          a_dpe[v_d] := a_dpe[v_d] + v_amount;
          a_cpe[v_c] := a_cpe[v_c] + v_amount;
          o_id := o_id || r.id;
          o_timeout := o_timeout || r.timeout_at;
        end if;
        result := 'ok';
      end if;
    elsif result is null then
      -- post / void: the hold is in the ledger, or was created earlier in this batch
      v_hold := w.hold;
      v_d := w.hold_d_pos;
      v_c := w.hold_c_pos;
      if v_hold.id is null then
        v_pos := array_position(t_id, r.pending_id);
        if v_pos is not null then
          v_hold := t_row[v_pos];
          v_d := t_dpos[v_pos];
          v_c := t_cpos[v_pos];
        end if;
      end if;
      v_phase := w.resolved_phase;
      if v_phase is null and w.track_pending then
        v_phase := c_phase[array_position(c_pending, r.pending_id)];
      end if;
      if v_hold.id is null then result := 'pending_transfer_not_found';
      elsif v_hold.phase <> 'pending' then result := 'pending_transfer_not_pending';
      elsif r.debit_account_id is not null and r.debit_account_id <> v_hold.debit_account_id then
        result := 'pending_transfer_has_different_debit_account_id';
      elsif r.credit_account_id is not null and r.credit_account_id <> v_hold.credit_account_id then
        result := 'pending_transfer_has_different_credit_account_id';
      elsif v_action = 'post' and coalesce(v_amount, v_hold.amount) > v_hold.amount then
        result := 'exceeds_pending_transfer_amount';
      elsif v_action = 'void' and v_amount is not null and v_amount <> v_hold.amount then
        result := 'pending_transfer_has_different_amount';
      elsif v_phase is not null then
        result := case v_phase when 'post_pending' then 'pending_transfer_already_posted'
                               else 'pending_transfer_already_voided' end;
      elsif v_action = 'post' and v_hold.timeout_at is not null and v_hold.timeout_at <= now() then
        result := 'pending_transfer_expired';
      else
        v_amount := case v_action when 'post' then coalesce(v_amount, v_hold.amount) else v_hold.amount end;
        v_phase := case v_action when 'post' then 'post_pending' else 'void_pending' end;
        v_row := row(r.id, v_hold.debit_account_id, v_hold.credit_account_id, v_amount, v_hold.kind,
                     v_phase, r.pending_id, null,
                     coalesce(r.reference_type, v_hold.reference_type), coalesce(r.reference_id, v_hold.reference_id),
                     coalesce(r.metadata, '{}'), now())::public.credit_transfers;
        a_dpe[v_d] := a_dpe[v_d] - v_hold.amount;
        a_cpe[v_c] := a_cpe[v_c] - v_hold.amount;
        a_avail[v_d] := a_avail[v_d] + v_hold.amount;
        if v_action = 'post' then
          a_dp[v_d] := a_dp[v_d] + v_amount;
          a_cp[v_c] := a_cp[v_c] + v_amount;
          a_avail[v_d] := a_avail[v_d] - v_amount;
          a_avail[v_c] := a_avail[v_c] + v_amount;
        end if;
        v_resolved := v_resolved || r.pending_id;
        if w.track_pending then
          c_pending := c_pending || r.pending_id;
          c_phase := c_phase || v_phase;
        end if;
        result := 'ok';
      end if;
    end if;
    if result = 'ok' then
      n_row := n_row || v_row;
      if w.track_id then
        t_id := t_id || r.id;
        t_row := t_row || v_row;
        t_dpos := t_dpos || w.d_pos;
        t_cpos := t_cpos || w.c_pos;
      end if;
    end if;
    return next;
  end loop;
  if cardinality(n_row) = 0 then
    return;
  end if;
  insert into public.credit_transfers select * from unnest(n_row) on conflict do nothing;
  get diagnostics v_count = row_count;
  if v_count <> cardinality(n_row) then
    -- Only a concurrent transfer reusing one of these ids with other accounts gets here.
    raise exception 'a transfer id of this batch was used concurrently by another transfer; retry the batch'
      using errcode = 'serialization_failure';
  end if;
  insert into private.credit_open_holds (transfer_id, timeout_at)
  select o.id, o.timeout_at from unnest(o_id, o_timeout) as o(id, timeout_at)
   where o.id <> all(v_resolved);
  delete from private.credit_open_holds h where h.transfer_id = any(v_resolved);
  -- The late system accounts, locked now in lock order, then every account updated once.
  perform 1 from public.credit_accounts a
   where a.id = any(a_id[v_n_early + 1:])
   order by a.id
   for no key update;
  update public.credit_accounts a
     set debits_posted = a.debits_posted + d.dp, credits_posted = a.credits_posted + d.cp,
         debits_pending = a.debits_pending + d.dpe, credits_pending = a.credits_pending + d.cpe
    from unnest(a_id, a_dp, a_cp, a_dpe, a_cpe) as d(id, dp, cp, dpe, cpe)
   where a.id = d.id and (d.dp <> 0 or d.cp <> 0 or d.dpe <> 0 or d.cpe <> 0);
end;
$$;
ALTER FUNCTION public.credit_create_transfers(p_transfers jsonb) OWNER TO postgres;
CREATE FUNCTION public.credit_expire_holds(p_limit integer DEFAULT 1000) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_count integer;
begin
  perform private.credit_require_service();
  select count(*) filter (where r.result = 'ok')::integer into v_count
    from public.credit_create_transfers(coalesce((
      select jsonb_agg(jsonb_build_object(
               'action', 'void', 'id', md5('credit-hold-expired:' || h.transfer_id::text)::uuid,
               'pending_id', h.transfer_id, 'metadata', jsonb_build_object('reason', 'expired')))
        from (select oh.transfer_id from private.credit_open_holds oh
               where oh.timeout_at <= now() order by oh.timeout_at limit p_limit) h), '[]')) r;
  return v_count;
end;
$$;
ALTER FUNCTION public.credit_expire_holds(p_limit integer) OWNER TO postgres;
CREATE FUNCTION public.credit_grant(p_id uuid, p_user_id uuid, p_amount numeric, p_reference_type text DEFAULT NULL::text, p_reference_id text DEFAULT NULL::text, p_metadata jsonb DEFAULT '{}'::jsonb) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform private.credit_require_service();
  return private.credit_apply_or_raise(
    p_id, 'transfer', private.credit_system_account('system:grants'), private.credit_user_account(p_user_id),
    p_amount, 'grant', null, null, p_reference_type, p_reference_id, p_metadata);
end;
$$;
ALTER FUNCTION public.credit_grant(p_id uuid, p_user_id uuid, p_amount numeric, p_reference_type text, p_reference_id text, p_metadata jsonb) OWNER TO postgres;
CREATE FUNCTION public.credit_grant_monthly(p_subscription_id uuid) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.subscriptions;
  v_credits numeric;
begin
  perform private.credit_require_service();
  select * into v_sub from public.subscriptions s where s.id = p_subscription_id;
  if not found or v_sub.status not in ('active', 'trial') or v_sub.expires_at <= now() then
    return null;
  end if;
  select (p.features ->> 'monthly_credits')::numeric into v_credits from public.plans p where p.id = v_sub.plan_id;
  if coalesce(v_credits, 0) <= 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    private.credit_monthly_grant_id(v_sub.id, v_sub.started_at), 'transfer',
    private.credit_system_account('system:grants'), private.credit_user_account(v_sub.user_id),
    v_credits, 'grant', null, null, 'subscription', v_sub.id::text,
    jsonb_build_object('reason', 'monthly_credits', 'plan_id', v_sub.plan_id));
end;
$$;
ALTER FUNCTION public.credit_grant_monthly(p_subscription_id uuid) OWNER TO postgres;
CREATE FUNCTION public.credit_grant_monthly_all(p_limit integer DEFAULT 5000) RETURNS TABLE(result text, transfers bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_grants uuid := private.credit_system_account('system:grants');
begin
  perform private.credit_require_service();
  return query
  select r.result, count(*)
    from public.credit_create_transfers(coalesce((
      select jsonb_agg(jsonb_build_object(
               'action', 'transfer', 'id', g.grant_id, 'debit_account_id', v_grants,
               'credit_account_id', a.id, 'amount', g.credits, 'kind', 'grant',
               'reference_type', 'subscription', 'reference_id', g.subscription_id::text,
               'metadata', jsonb_build_object('reason', 'monthly_credits', 'plan_id', g.plan_id)))
        from (select s.id as subscription_id, s.user_id, s.plan_id,
                     private.credit_monthly_grant_id(s.id, s.started_at) as grant_id,
                     (p.features ->> 'monthly_credits')::numeric as credits
                from public.subscriptions s join public.plans p on p.id = s.plan_id
               where s.status in ('active', 'trial') and s.expires_at > now()
                 and coalesce((p.features ->> 'monthly_credits')::numeric, 0) > 0
                 and not exists (select 1 from public.credit_transfers t
                                  where t.id = private.credit_monthly_grant_id(s.id, s.started_at))
               order by s.id
               limit p_limit) g
        join public.credit_accounts a on a.user_id = g.user_id and a.kind = 'user'), '[]')) r
   group by r.result;
end;
$$;
ALTER FUNCTION public.credit_grant_monthly_all(p_limit integer) OWNER TO postgres;
CREATE FUNCTION public.credit_hold(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_timeout interval DEFAULT '00:15:00'::interval, p_reference_type text DEFAULT NULL::text, p_reference_id text DEFAULT NULL::text, p_metadata jsonb DEFAULT '{}'::jsonb) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform private.credit_require_service();
  return private.credit_apply_or_raise(p_id, 'hold', p_debit_account_id, p_credit_account_id, p_amount, p_kind,
                                       null, case when p_timeout is not null then now() + p_timeout end,
                                       p_reference_type, p_reference_id, p_metadata);
end;
$$;
ALTER FUNCTION public.credit_hold(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_timeout interval, p_reference_type text, p_reference_id text, p_metadata jsonb) OWNER TO postgres;
CREATE FUNCTION public.credit_hold_usage(p_id uuid, p_user_id uuid, p_usage text, p_quantity numeric DEFAULT 1, p_timeout interval DEFAULT '00:15:00'::interval, p_reference_type text DEFAULT NULL::text, p_reference_id text DEFAULT NULL::text, p_metadata jsonb DEFAULT '{}'::jsonb) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform private.credit_require_service();
  return private.credit_apply_usage(
    p_id, 'hold', p_user_id, p_usage, p_quantity,
    now() + coalesce(p_timeout, (select s.default_hold_timeout from private.credit_settings s)),
    p_reference_type, p_reference_id, p_metadata);
end;
$$;
ALTER FUNCTION public.credit_hold_usage(p_id uuid, p_user_id uuid, p_usage text, p_quantity numeric, p_timeout interval, p_reference_type text, p_reference_id text, p_metadata jsonb) OWNER TO postgres;
CREATE FUNCTION public.credit_min_payout() RETURNS numeric
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select s.min_payout from private.credit_settings s
$$;
ALTER FUNCTION public.credit_min_payout() OWNER TO postgres;
CREATE FUNCTION public.credit_pay_strategy_subscription(p_id uuid, p_strategy_subscription_id uuid, p_amount numeric DEFAULT NULL::numeric) RETURNS SETOF public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.strategy_subscriptions;
  v_strategy public.strategies;
  v_amount numeric;
  v_provider_part numeric;
  v_subscriber_account uuid;
  v_provider_account uuid;
  v_platform_account uuid := private.credit_system_account('system:platform_revenue');
  v_platform_id uuid := md5('credit-revenue-share-platform:' || p_id::text)::uuid;
  v_reference text;
begin
  perform private.credit_require_service();
  select * into v_sub from public.strategy_subscriptions s where s.id = p_strategy_subscription_id;
  if not found then
    raise exception 'strategy subscription % does not exist', p_strategy_subscription_id using errcode = 'no_data_found';
  end if;
  select * into v_strategy from public.strategies s where s.id = v_sub.strategy_id;
  v_amount := coalesce(p_amount, nullif(v_sub.price, 0), v_strategy.monthly_price);
  if v_amount is null or v_amount <= 0 then
    perform private.credit_raise('amount_must_be_positive', p_id, null, v_amount);
  end if;
  v_provider_part := round(v_amount * v_strategy.provider_share, 8);
  v_subscriber_account := private.credit_user_account(v_sub.subscriber_id);
  v_provider_account := private.credit_user_account(v_strategy.user_id, 'provider_earnings');
  v_reference := v_sub.id::text;
  perform 1 from public.credit_accounts a
   where a.id in (v_subscriber_account, v_provider_account, v_platform_account)
   order by a.user_id is null, a.id for no key update;
  if v_provider_part > 0 then
    return next private.credit_apply_or_raise(
      p_id, 'transfer', v_subscriber_account, v_provider_account, v_provider_part, 'revenue_share', null, null,
      'strategy_subscription', v_reference,
      jsonb_build_object('share', 'provider', 'provider_share', v_strategy.provider_share, 'payment', v_amount));
  end if;
  if v_amount - v_provider_part > 0 then
    return next private.credit_apply_or_raise(
      case when v_provider_part > 0 then v_platform_id else p_id end, 'transfer', v_subscriber_account,
      v_platform_account, v_amount - v_provider_part, 'revenue_share', null, null,
      'strategy_subscription', v_reference,
      jsonb_build_object('share', 'platform', 'provider_share', v_strategy.provider_share, 'payment', v_amount));
  end if;
end;
$$;
ALTER FUNCTION public.credit_pay_strategy_subscription(p_id uuid, p_strategy_subscription_id uuid, p_amount numeric) OWNER TO postgres;
CREATE FUNCTION public.credit_post(p_id uuid, p_pending_id uuid, p_amount numeric DEFAULT NULL::numeric, p_metadata jsonb DEFAULT '{}'::jsonb) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_code text;
  v_row public.credit_transfers;
begin
  perform private.credit_require_service();
  v_code := private.credit_apply(p_id, 'post', null, null, p_amount, null, p_pending_id, null, null, null, p_metadata);
  if v_code not in ('ok', 'exists') then
    perform private.credit_raise(v_code, p_id, null, p_amount);
  end if;
  select * into v_row from public.credit_transfers t where t.id = p_id;
  return v_row;
end;
$$;
ALTER FUNCTION public.credit_post(p_id uuid, p_pending_id uuid, p_amount numeric, p_metadata jsonb) OWNER TO postgres;
CREATE FUNCTION public.credit_price(p_user_id uuid, p_usage text) RETURNS numeric
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform private.credit_require_service();
  return (private.credit_usage_price(p_user_id, p_usage)).price;
end;
$$;
ALTER FUNCTION public.credit_price(p_user_id uuid, p_usage text) OWNER TO postgres;
CREATE FUNCTION public.credit_purchase_from_invoice(p_invoice_id uuid) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_invoice public.invoices;
begin
  perform private.credit_require_service();
  select * into v_invoice from public.invoices i where i.id = p_invoice_id;
  if not found then
    raise exception 'invoice % does not exist', p_invoice_id using errcode = 'no_data_found';
  end if;
  if v_invoice.status <> 'paid' then
    raise exception 'invoice % is %, not paid: no credits to add', p_invoice_id, v_invoice.status
      using errcode = 'check_violation', constraint = 'credit_purchases_invoice_paid';
  end if;
  if v_invoice.credits <= 0 then
    return null;
  end if;
  return private.credit_apply_or_raise(
    md5('credit-purchase:' || v_invoice.id::text)::uuid, 'transfer',
    private.credit_system_account('system:purchases'), private.credit_user_account(v_invoice.user_id),
    v_invoice.credits, 'purchase', null, null, 'invoice', v_invoice.id::text,
    jsonb_build_object('amount', v_invoice.amount, 'currency', v_invoice.currency, 'provider', v_invoice.provider));
end;
$$;
ALTER FUNCTION public.credit_purchase_from_invoice(p_invoice_id uuid) OWNER TO postgres;
CREATE FUNCTION public.credit_quote(p_user_id uuid, p_usage text, p_quantity numeric) RETURNS numeric
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform private.credit_require_service();
  return round((private.credit_usage_price(p_user_id, p_usage)).price * p_quantity, 8);
end;
$$;
ALTER FUNCTION public.credit_quote(p_user_id uuid, p_usage text, p_quantity numeric) OWNER TO postgres;
CREATE FUNCTION public.credit_request_payout(p_amount numeric DEFAULT NULL::numeric, p_id uuid DEFAULT NULL::uuid, p_user_id uuid DEFAULT NULL::uuid) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_user uuid;
  v_account public.credit_accounts;
  v_available numeric;
  v_amount numeric;
  v_min numeric := (select s.min_payout from private.credit_settings s);
begin
  perform p_amount::private.credit_amount;
  if private.is_service() then
    v_user := coalesce(p_user_id, (select auth.uid()));
  else
    v_user := (select auth.uid());
    if v_user is null or (p_user_id is not null and p_user_id <> v_user) then
      raise exception 'providers can request payouts of their own earnings only' using errcode = 'insufficient_privilege';
    end if;
  end if;
  select * into v_account from public.credit_accounts a
   where a.user_id = v_user and a.kind = 'provider_earnings' for no key update;
  if not found then
    raise exception 'no provider earnings to pay out' using errcode = 'no_data_found',
      detail = 'result: debit_account_not_found';
  end if;
  v_available := v_account.credits_posted - v_account.debits_posted - v_account.debits_pending;
  v_amount := coalesce(p_amount, v_available);
  if v_amount < v_min then
    raise exception 'payouts start at % credits; % requested, % available', v_min, v_amount, v_available
      using errcode = 'check_violation', constraint = 'credit_payouts_minimum', detail = 'result: below_min_payout';
  end if;
  return private.credit_apply_or_raise(
    case when p_id is null then gen_random_uuid()
         else md5('credit-payout-request:' || v_account.id::text || ':' || p_id::text)::uuid end,
    'hold', v_account.id, private.credit_system_account('system:payouts'),
    v_amount, 'payout', null, null, 'payout_request', p_id::text,
    jsonb_build_object('requested_by', (select auth.uid())));
end;
$$;
ALTER FUNCTION public.credit_request_payout(p_amount numeric, p_id uuid, p_user_id uuid) OWNER TO postgres;
CREATE FUNCTION public.credit_void(p_id uuid, p_pending_id uuid, p_metadata jsonb DEFAULT '{}'::jsonb) RETURNS public.credit_transfers
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_code text;
  v_row public.credit_transfers;
begin
  perform private.credit_require_service();
  v_code := private.credit_apply(p_id, 'void', null, null, null, null, p_pending_id, null, null, null, p_metadata);
  if v_code not in ('ok', 'exists') then
    perform private.credit_raise(v_code, p_id);
  end if;
  select * into v_row from public.credit_transfers t where t.id = p_id;
  return v_row;
end;
$$;
ALTER FUNCTION public.credit_void(p_id uuid, p_pending_id uuid, p_metadata jsonb) OWNER TO postgres;
CREATE FUNCTION public.custom_access_token_hook(event jsonb) RETURNS jsonb
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select case
    when event -> 'claims' -> 'app_metadata' ->> 'role' = 'admin'
      then jsonb_set(event, '{claims,role}', '"tradefleet_admin"')
    else event
  end
$$;
ALTER FUNCTION public.custom_access_token_hook(event jsonb) OWNER TO postgres;
CREATE FUNCTION public.db_pre_request() RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_table text;
begin
  if current_setting('request.method', true) is distinct from 'POST' then
    return;
  end if;
  v_table := substring(current_setting('request.path', true) from '^/(?:rest/v1/)?(backtest_runs|sync_runs|signals|reviews)/?$');
  if v_table is not null then
    perform private.write_limit_take(v_table);
  end if;
end;
$_$;
ALTER FUNCTION public.db_pre_request() OWNER TO postgres;
CREATE FUNCTION public.decline_organisation_invitation(p_invitation_id uuid) RETURNS public.organisation_invitations
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_inv public.organisation_invitations := private.organisation_invitation_for_caller(p_invitation_id);
begin
  update public.organisation_invitations i set status = 'declined', responded_at = now()
   where i.id = v_inv.id
  returning * into v_inv;
  return v_inv;
end;
$$;
ALTER FUNCTION public.decline_organisation_invitation(p_invitation_id uuid) OWNER TO postgres;
CREATE FUNCTION public.delete_organisation(p_organisation_id uuid) RETURNS public.organisations
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_org public.organisations;
begin
  perform private.organisation_caller();
  perform private.organisation_require(p_organisation_id, 'owner');
  delete from public.organisations o where o.id = p_organisation_id returning * into v_org;
  return v_org;
end;
$$;
ALTER FUNCTION public.delete_organisation(p_organisation_id uuid) OWNER TO postgres;
CREATE FUNCTION public.drop_history_partitions(p_history text, p_keep interval) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_part record;
  v_n integer := 0;
begin
  if not private.is_service() then
    raise exception 'drop_history_partitions is for the fleet only' using errcode = '42501';
  end if;
  if p_history is null or not exists (select 1 from private.history_partitions h where h.table_name = p_history) then
    raise exception 'drop_history_partitions: history must be one of %',
      (select pg_catalog.string_agg(h.table_name, ', ' order by h.table_name) from private.history_partitions h)
      using errcode = '22023';
  end if;
  if p_keep is null or p_keep <= interval '0' or p_keep > interval '100 years' then
    raise exception 'drop_history_partitions: keep must be positive and at most 100 years' using errcode = '22023';
  end if;
  perform pg_catalog.set_config('lock_timeout', '5s', true);
  if (select h.kept from private.history_partitions h where h.table_name = p_history) is not null then
    return private.fold_history_partitions(p_history, now() - p_keep, now() - p_keep);
  end if;
  for v_part in
    select c.oid::regclass as part, c.relname, r.hi
      from pg_catalog.pg_inherits i
      join pg_catalog.pg_class c on c.oid = i.inhrelid
      cross join lateral private.history_partition_range(c.oid::regclass) r
     where i.inhparent = pg_catalog.format('public.%I', p_history)::regclass
       and r.hi is not null and r.hi <= now() - p_keep
     order by r.hi
  loop
    execute pg_catalog.format('alter table public.%I detach partition partitions.%I', p_history, v_part.relname);
    execute pg_catalog.format('drop table partitions.%I', v_part.relname);
    v_n := v_n + 1;
  end loop;
  return v_n;
end;
$$;
ALTER FUNCTION public.drop_history_partitions(p_history text, p_keep interval) OWNER TO postgres;
CREATE FUNCTION public.enqueue_job(p_kind text, p_payload jsonb DEFAULT '{}'::jsonb, p_queue text DEFAULT 'default'::text, p_run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_priority integer DEFAULT 0, p_max_attempts integer DEFAULT 5, p_idempotency_key text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_id bigint;
begin
  insert into public.jobs (queue, kind, payload, run_at, priority, max_attempts, idempotency_key)
  values (p_queue, p_kind, coalesce(p_payload, '{}'), coalesce(p_run_at, now()), p_priority,
          p_max_attempts, p_idempotency_key)
  on conflict (idempotency_key) do nothing
  returning id into v_id;
  if v_id is null then
    -- The same key enqueued twice yields one job: hand back the existing one.
    select j.id into v_id from public.jobs j where j.idempotency_key = p_idempotency_key;
    return v_id;
  end if;
  perform pg_notify('tradefleet_jobs', p_queue);
  return v_id;
end;
$$;
ALTER FUNCTION public.enqueue_job(p_kind text, p_payload jsonb, p_queue text, p_run_at timestamp with time zone, p_priority integer, p_max_attempts integer, p_idempotency_key text) OWNER TO postgres;
CREATE FUNCTION public.enqueue_jobs(p_kind text, p_payloads jsonb[], p_queue text DEFAULT 'default'::text, p_priority integer DEFAULT 0, p_max_attempts integer DEFAULT 5) RETURNS SETOF bigint
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  return query
    insert into public.jobs (queue, kind, payload, priority, max_attempts)
    select p_queue, p_kind, coalesce(p.payload, '{}'), p_priority, p_max_attempts
    from unnest(p_payloads) with ordinality as p(payload, n)
    order by p.n
    returning id;
  perform pg_notify('tradefleet_jobs', p_queue);
end;
$$;
ALTER FUNCTION public.enqueue_jobs(p_kind text, p_payloads jsonb[], p_queue text, p_priority integer, p_max_attempts integer) OWNER TO postgres;
CREATE FUNCTION public.exchange_markets_claim_refresh(p_exchange text, p_min_interval_s double precision) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  v_claimed boolean;
begin
  if not private.is_service() then
    raise exception 'only the fleet refreshes market definitions' using errcode = 'insufficient_privilege';
  end if;
  if p_exchange is null or p_exchange !~ '^[a-z0-9]{2,32}$' then
    raise exception 'exchange must be a ccxt exchange id, got %', coalesce(p_exchange, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  if p_min_interval_s is null or p_min_interval_s < 0 or p_min_interval_s <> p_min_interval_s then
    raise exception 'the minimum interval must be zero or more seconds' using errcode = 'invalid_parameter_value';
  end if;
  insert into public.exchange_market_loads as l (exchange, refresh_started_at)
  values (p_exchange, now())
  on conflict (exchange) do update
     set refresh_started_at = now()
   where l.refresh_started_at is null
      or l.refresh_started_at <= now() - make_interval(secs => p_min_interval_s)
  returning true into v_claimed;
  return coalesce(v_claimed, false);
end;
$_$;
ALTER FUNCTION public.exchange_markets_claim_refresh(p_exchange text, p_min_interval_s double precision) OWNER TO postgres;
CREATE FUNCTION public.exchange_markets_store(p_exchange text, p_markets jsonb, p_fetched_at timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  v_n integer;
begin
  if not private.is_service() then
    raise exception 'only the fleet stores market definitions' using errcode = 'insufficient_privilege';
  end if;
  if p_exchange is null or p_exchange !~ '^[a-z0-9]{2,32}$' then
    raise exception 'exchange must be a ccxt exchange id, got %', coalesce(p_exchange, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  if p_markets is null or jsonb_typeof(p_markets) <> 'object' then
    raise exception 'markets must be a JSON object of symbol to market' using errcode = 'invalid_parameter_value';
  end if;
  if p_fetched_at is null then
    raise exception 'fetched_at is required' using errcode = 'invalid_parameter_value';
  end if;
  with incoming as (
    select e.key as symbol, e.value as m
      from jsonb_each(p_markets) e
     where jsonb_typeof(e.value) = 'object'
  )
  insert into public.exchange_markets as x (exchange, symbol, market_id, base, quote, settle, type, active,
                                            contract, linear, inverse, contract_size, amount_precision,
                                            price_precision, min_amount, max_amount, min_cost, max_cost,
                                            min_price, max_price, max_leverage, maker, taker, market,
                                            delisted_at, fetched_at)
  select p_exchange, i.symbol, i.m ->> 'id', coalesce(i.m ->> 'base', split_part(i.symbol, '/', 1)),
         coalesce(i.m ->> 'quote', split_part(split_part(i.symbol, '/', 2), ':', 1)), i.m ->> 'settle',
         case when i.m ->> 'type' in ('spot', 'margin', 'swap', 'future', 'option') then i.m ->> 'type' else 'spot' end,
         coalesce((i.m -> 'active') <> 'false'::jsonb, true),
         coalesce((i.m -> 'contract') = 'true'::jsonb, false),
         case jsonb_typeof(i.m -> 'linear') when 'boolean' then (i.m ->> 'linear')::boolean end,
         case jsonb_typeof(i.m -> 'inverse') when 'boolean' then (i.m ->> 'inverse')::boolean end,
         private.sizing_number(i.m -> 'contractSize'),
         private.sizing_number(i.m #> '{precision,amount}'),
         private.sizing_number(i.m #> '{precision,price}'),
         private.sizing_number(i.m #> '{limits,amount,min}'),
         private.sizing_number(i.m #> '{limits,amount,max}'),
         private.sizing_number(i.m #> '{limits,cost,min}'),
         private.sizing_number(i.m #> '{limits,cost,max}'),
         private.sizing_number(i.m #> '{limits,price,min}'),
         private.sizing_number(i.m #> '{limits,price,max}'),
         private.sizing_number(i.m #> '{limits,leverage,max}'),
         private.sizing_number(i.m -> 'maker'),
         private.sizing_number(i.m -> 'taker'),
         i.m, null, p_fetched_at
    from incoming i
  on conflict (exchange, symbol) do update
     set market_id = excluded.market_id, base = excluded.base, quote = excluded.quote,
         settle = excluded.settle, type = excluded.type, active = excluded.active,
         contract = excluded.contract, linear = excluded.linear, inverse = excluded.inverse,
         contract_size = excluded.contract_size, amount_precision = excluded.amount_precision,
         price_precision = excluded.price_precision, min_amount = excluded.min_amount,
         max_amount = excluded.max_amount, min_cost = excluded.min_cost, max_cost = excluded.max_cost,
         min_price = excluded.min_price, max_price = excluded.max_price,
         max_leverage = excluded.max_leverage, maker = excluded.maker, taker = excluded.taker,
         market = excluded.market, delisted_at = null, fetched_at = excluded.fetched_at;
  get diagnostics v_n = row_count;
  update public.exchange_markets x
     set active = false, delisted_at = coalesce(x.delisted_at, p_fetched_at)
   where x.exchange = p_exchange
     and not p_markets ? x.symbol;
  insert into public.exchange_market_loads as l (exchange, loaded_at, markets, last_error)
  values (p_exchange, p_fetched_at, v_n, null)
  on conflict (exchange) do update
     set loaded_at = excluded.loaded_at, markets = excluded.markets, last_error = null;
  -- Running bots the new definitions no longer admit (inactive or delisted market, stake
  -- below the minimum order value, leverage above the maximum), with the save rules' words,
  -- every refused pair of a multi-pair bot named in its list's order. A bot stops only when
  -- it holds no open trade and none of its pairs can trade; otherwise it keeps running: its
  -- open positions stay managed, the refused pairs take no new entries, the others trade.
  with refused_pairs as (
    select b.id, p.ord, cardinality(coalesce(b.pairs, array[b.trading_pair])) as n_pairs,
           case
             when not x.active and x.delisted_at is null then
               format('the market %s on %s is not active: no new entries', p.pair, b.exchange)
             when not x.active then
               format('the market %s is no longer listed on %s: no new entries', p.pair, b.exchange)
             when x.max_leverage > 0 and b.leverage > x.max_leverage then
               format('leverage %s is above the maximum %s of %s on %s', trim_scale(b.leverage),
                      trim_scale(x.max_leverage), p.pair, b.exchange)
             when coalesce(b.metadata ->> 'sizing', 'stake') = 'stake' and x.min_cost is not null
                  and b.stake_amount * case when x.contract then b.leverage else 1 end < x.min_cost then
               format('stake %s %s is below the minimum order value %s %s of %s on %s', trim_scale(b.stake_amount),
                      x.quote, trim_scale(x.min_cost), x.quote, p.pair, b.exchange)
           end as reason
      from public.bots b
      cross join lateral unnest(coalesce(b.pairs, array[b.trading_pair])) with ordinality as p(pair, ord)
      join public.exchange_markets x on x.exchange = b.exchange and x.symbol = p.pair
     where x.exchange = p_exchange and b.status = 'running'
  ), refused as (
    select r.id,
           exists (select 1 from public.trades t where t.bot_id = r.id and t.status = 'open') as holding,
           count(*) = max(r.n_pairs) as every_pair,
           max(r.n_pairs) > 1 as multi,
           string_agg(r.reason, '; ' order by r.ord) as reason
      from refused_pairs r
     where r.reason is not null
     group by r.id
  ), decided as (
    select r.id, r.holding or not r.every_pair as keeps_running,
           r.reason || case when r.holding then '; the open position is still managed'
                            when not r.every_pair then '; the other pairs still trade'
                            else '' end as message
      from refused r
  )
  update public.bots b
     set status = case when d.keeps_running then b.status else 'error' end,
         error_message = d.message
    from decided d
   where b.id = d.id
     and b.error_message is distinct from d.message;
  return v_n;
end;
$_$;
ALTER FUNCTION public.exchange_markets_store(p_exchange text, p_markets jsonb, p_fetched_at timestamp with time zone) OWNER TO postgres;
CREATE FUNCTION public.extend_job_lock(p_worker_id uuid, p_job_id bigint, p_lock_s double precision) RETURNS boolean
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  with extended as (
    update public.jobs j
    set locked_until = now() + make_interval(secs => p_lock_s), updated_at = now()
    where j.id = p_job_id and j.status = 'running' and j.locked_by = p_worker_id
    returning 1
  )
  select exists (select 1 from extended);
$$;
ALTER FUNCTION public.extend_job_lock(p_worker_id uuid, p_job_id bigint, p_lock_s double precision) OWNER TO postgres;
CREATE FUNCTION public.fail_job(p_worker_id uuid, p_job_id bigint, p_error text, p_retry boolean DEFAULT true, p_retry_after_s double precision DEFAULT NULL::double precision, p_backoff_base_s double precision DEFAULT 2, p_backoff_cap_s double precision DEFAULT 3600) RETURNS text
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  update public.jobs j
  set status = case when p_retry and j.attempts < j.max_attempts then 'queued' else 'dead' end,
      run_at = case
        when p_retry and j.attempts < j.max_attempts then
          now() + make_interval(secs => coalesce(
            p_retry_after_s,
            least(p_backoff_base_s * power(2, greatest(j.attempts - 1, 0)), p_backoff_cap_s)
              * (0.5 + random() / 2)))
        else j.run_at end,
      finished_at = case when p_retry and j.attempts < j.max_attempts then null else now() end,
      last_error = left(p_error, 4000),
      locked_by = null,
      locked_until = null,
      updated_at = now()
  where j.id = p_job_id
    and j.status = 'running'
    and j.locked_by = p_worker_id
  returning j.status;
$$;
ALTER FUNCTION public.fail_job(p_worker_id uuid, p_job_id bigint, p_error text, p_retry boolean, p_retry_after_s double precision, p_backoff_base_s double precision, p_backoff_cap_s double precision) OWNER TO postgres;
CREATE TABLE public.credit_accounts (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid,
    kind text DEFAULT 'user'::text NOT NULL,
    code text,
    currency text DEFAULT 'CREDIT'::text NOT NULL,
    debits_posted numeric(24,8) DEFAULT 0 NOT NULL,
    credits_posted numeric(24,8) DEFAULT 0 NOT NULL,
    debits_pending numeric(24,8) DEFAULT 0 NOT NULL,
    credits_pending numeric(24,8) DEFAULT 0 NOT NULL,
    balance numeric(24,8) GENERATED ALWAYS AS ((credits_posted - debits_posted)) STORED,
    allow_negative boolean DEFAULT false NOT NULL,
    low_balance_threshold numeric(24,8) DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credit_accounts_credits_pending_check CHECK ((credits_pending >= (0)::numeric)),
    CONSTRAINT credit_accounts_credits_pending_finite CHECK ((credits_pending <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_accounts_credits_posted_check CHECK ((credits_posted >= (0)::numeric)),
    CONSTRAINT credit_accounts_credits_posted_finite CHECK ((credits_posted <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_accounts_debits_must_not_exceed_credits CHECK ((allow_negative OR (((credits_posted - debits_posted) - debits_pending) >= (0)::numeric))),
    CONSTRAINT credit_accounts_debits_pending_check CHECK ((debits_pending >= (0)::numeric)),
    CONSTRAINT credit_accounts_debits_pending_finite CHECK ((debits_pending <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_accounts_debits_posted_check CHECK ((debits_posted >= (0)::numeric)),
    CONSTRAINT credit_accounts_debits_posted_finite CHECK ((debits_posted <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_accounts_kind_known CHECK ((kind = ANY (ARRAY['user'::text, 'provider_earnings'::text, 'platform_revenue'::text, 'grants'::text, 'purchases'::text, 'payouts'::text, 'usage'::text]))),
    CONSTRAINT credit_accounts_low_balance_threshold_finite CHECK ((low_balance_threshold <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_accounts_owner_matches_kind CHECK (((kind = ANY (ARRAY['user'::text, 'provider_earnings'::text])) = (user_id IS NOT NULL)))
);
ALTER TABLE public.credit_accounts OWNER TO postgres;
CREATE VIEW public.credit_balances WITH (security_invoker='true') AS
 SELECT a.id AS account_id,
    a.user_id,
    a.kind,
    a.code,
    a.currency,
    a.balance,
    a.debits_pending AS held,
    ((a.credits_posted - a.debits_posted) - a.debits_pending) AS available,
    a.credits_pending AS incoming,
    a.low_balance_threshold,
    a.updated_at
   FROM public.credit_accounts a;
ALTER TABLE public.credit_balances OWNER TO postgres;
CREATE FUNCTION public.get_credit_balance(p_kind text DEFAULT 'user'::text) RETURNS SETOF public.credit_balances
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select b.* from public.credit_balances b
   where b.user_id = (select auth.uid()) and b.kind = private.credit_user_kind(p_kind)
$$;
ALTER FUNCTION public.get_credit_balance(p_kind text) OWNER TO postgres;
CREATE VIEW public.credit_statement WITH (security_invoker='true') AS
 SELECT a.id AS account_id,
    a.user_id,
    a.kind AS account_kind,
    t.id AS transfer_id,
    t.created_at,
    t.kind,
    t.phase,
        CASE
            WHEN (t.phase = ANY (ARRAY['posted'::text, 'post_pending'::text])) THEN (- t.amount)
            ELSE (0)::numeric
        END AS amount,
        CASE t.phase
            WHEN 'posted'::text THEN (- t.amount)
            WHEN 'pending'::text THEN (- t.amount)
            WHEN 'post_pending'::text THEN (h.amount - t.amount)
            WHEN 'void_pending'::text THEN t.amount
            ELSE NULL::numeric
        END AS available_change,
    t.credit_account_id AS counterparty_account_id,
    t.pending_id,
    t.timeout_at,
    t.reference_type,
    t.reference_id,
    t.metadata
   FROM ((public.credit_transfers t
     JOIN public.credit_accounts a ON ((a.id = t.debit_account_id)))
     LEFT JOIN public.credit_transfers h ON ((h.id = t.pending_id)))
UNION ALL
 SELECT a.id AS account_id,
    a.user_id,
    a.kind AS account_kind,
    t.id AS transfer_id,
    t.created_at,
    t.kind,
    t.phase,
        CASE
            WHEN (t.phase = ANY (ARRAY['posted'::text, 'post_pending'::text])) THEN t.amount
            ELSE (0)::numeric
        END AS amount,
        CASE
            WHEN (t.phase = ANY (ARRAY['posted'::text, 'post_pending'::text])) THEN t.amount
            ELSE (0)::numeric
        END AS available_change,
    t.debit_account_id AS counterparty_account_id,
    t.pending_id,
    t.timeout_at,
    t.reference_type,
    t.reference_id,
    t.metadata
   FROM (public.credit_transfers t
     JOIN public.credit_accounts a ON ((a.id = t.credit_account_id)));
ALTER TABLE public.credit_statement OWNER TO postgres;
CREATE FUNCTION public.get_credit_statement(p_limit integer DEFAULT 50, p_before timestamp with time zone DEFAULT NULL::timestamp with time zone, p_kind text DEFAULT 'user'::text) RETURNS SETOF public.credit_statement
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
begin
  if p_limit is not null and (p_limit < 1 or p_limit > 500) then
    raise exception 'a statement page holds 1 to 500 rows, not %', p_limit
      using errcode = 'invalid_parameter_value';
  end if;
  return query
  select s.* from public.credit_statement s
   where s.account_id = (select a.id from public.credit_accounts a
                          where a.user_id = (select auth.uid()) and a.kind = private.credit_user_kind(p_kind))
     and (p_before is null or s.created_at < p_before)
   order by s.created_at desc, s.transfer_id
   limit coalesce(p_limit, 50);
end;
$$;
ALTER FUNCTION public.get_credit_statement(p_limit integer, p_before timestamp with time zone, p_kind text) OWNER TO postgres;
CREATE FUNCTION public.get_strategy_content(p_strategy_id uuid) RETURNS TABLE(id uuid, content text, parameters jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if p_strategy_id is null then
    raise exception 'a strategy id is required' using errcode = 'not_null_violation';
  end if;
  return query
  select s.id, s.content, s.parameters
    from public.strategies s
   where s.id = p_strategy_id
     and (s.user_id = (select auth.uid())
          or private.is_admin()
          or private.is_service()
          or exists (select 1 from public.strategy_subscriptions ss
                      where ss.strategy_id = s.id and ss.subscriber_id = (select auth.uid()) and ss.status = 'active'));
  if not found then
    raise exception 'no strategy whose rules you may read' using errcode = 'insufficient_privilege';
  end if;
end;
$$;
ALTER FUNCTION public.get_strategy_content(p_strategy_id uuid) OWNER TO postgres;
CREATE FUNCTION public.get_strategy_subscribers(p_strategy_id uuid) RETURNS TABLE(subscription_id uuid, status text, price numeric, next_price numeric, current_period_end timestamp with time zone, created_at timestamp with time zone)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if p_strategy_id is null then
    raise exception 'a strategy id is required' using errcode = 'not_null_violation';
  end if;
  if not (private.owns_strategy(p_strategy_id) or private.is_admin() or private.is_service()) then
    raise exception 'only the strategy''s author sees its subscribers' using errcode = 'insufficient_privilege';
  end if;
  return query
  select s.id, s.status, s.price, s.next_price, s.current_period_end, s.created_at
    from public.strategy_subscriptions s
   where s.strategy_id = p_strategy_id
   order by s.created_at, s.id;
end;
$$;
ALTER FUNCTION public.get_strategy_subscribers(p_strategy_id uuid) OWNER TO postgres;
CREATE FUNCTION public.get_user_trading_performance(days_back integer DEFAULT 30, user_uuid uuid DEFAULT NULL::uuid) RETURNS TABLE(user_id uuid, quote_currency text, total_trades bigint, winning_trades bigint, losing_trades bigint, win_rate numeric, total_profit numeric, avg_profit numeric, best_trade numeric, worst_trade numeric, total_volume numeric, total_bots bigint, active_bots bigint)
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  v_user uuid := coalesce(user_uuid, auth.uid());
begin
  if v_user is null then
    raise exception 'get_user_trading_performance needs a signed-in user or user_uuid'
      using errcode = 'invalid_parameter_value';
  end if;
  if days_back is null or days_back < 1 or days_back > 3650 then
    raise exception 'days_back must be between 1 and 3650, got %', days_back using errcode = 'invalid_parameter_value';
  end if;
  if v_user is distinct from auth.uid() and not private.is_admin() and not private.is_service() then
    raise exception 'not allowed to read another user''s performance' using errcode = 'insufficient_privilege';
  end if;
  return query
  with t as (
    select split_part(split_part(tr.trading_pair, '/', 2), ':', 1) as quote, tr.profit,
           tr.amount * tr.price as volume
      from public.trades tr
     where tr.user_id = v_user and tr.status = 'closed'
       and tr.entry_time >= now() - make_interval(days => days_back)
  ), b as (
    select split_part(split_part(bo.trading_pair, '/', 2), ':', 1) as quote,
           count(*) as total_bots, count(*) filter (where bo.status = 'running') as active_bots
      from public.bots bo where bo.user_id = v_user
     group by 1
  ), q as (
    select t.quote from t union select b.quote from b
  ), quotes as (
    select q.quote from q
    union all
    select null::text where not exists (select 1 from q)
  )
  select v_user,
         qs.quote,
         count(t.quote),
         count(*) filter (where t.profit > 0),
         count(*) filter (where t.profit < 0),
         case when count(t.quote) > 0
              then round(count(*) filter (where t.profit > 0)::numeric / count(t.quote) * 100, 2) else 0 end,
         coalesce(sum(t.profit), 0),
         coalesce(round(avg(t.profit), 8), 0),
         coalesce(max(t.profit), 0),
         coalesce(min(t.profit), 0),
         coalesce(sum(t.volume), 0),
         coalesce(max(b.total_bots), 0),
         coalesce(max(b.active_bots), 0)
    from quotes qs
    left join t on t.quote = qs.quote
    left join b on b.quote = qs.quote
   group by qs.quote
   order by qs.quote;
end;
$$;
ALTER FUNCTION public.get_user_trading_performance(days_back integer, user_uuid uuid) OWNER TO postgres;
CREATE FUNCTION public.hook_password_verification_attempt(event jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  v_user uuid;
  v_row private.password_failures;
  v_max constant integer := 5;
  v_window constant interval := interval '15 minutes';
  v_lock constant interval := interval '15 minutes';
begin
  if jsonb_typeof(event -> 'user_id') is distinct from 'string' or jsonb_typeof(event -> 'valid') is distinct from 'boolean'
     or (event ->> 'user_id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    raise exception 'event must hold user_id (a UUID) and valid (a boolean)' using errcode = 'invalid_parameter_value';
  end if;
  v_user := (event ->> 'user_id')::uuid;
  select * into v_row from private.password_failures f where f.user_id = v_user for update;
  if found and v_row.locked_until > now() then
    return jsonb_build_object('decision', 'reject', 'should_logout_user', false,
      'message', format('Too many failed sign-in attempts. Try again in %s minute(s).',
                        ceil(extract(epoch from v_row.locked_until - now()) / 60)));
  end if;
  if (event ->> 'valid')::boolean then
    delete from private.password_failures f where f.user_id = v_user;
    return jsonb_build_object('decision', 'continue');
  end if;
  if not exists (select 1 from auth.users u where u.id = v_user) then
    return jsonb_build_object('decision', 'continue');
  end if;
  insert into private.password_failures as f (user_id, failures, first_failed_at)
  values (v_user, 1, now())
  on conflict (user_id) do update
    set failures = case when f.first_failed_at > now() - v_window then f.failures + 1 else 1 end,
        first_failed_at = case when f.first_failed_at > now() - v_window then f.first_failed_at else now() end,
        locked_until = null
  returning * into v_row;
  if v_row.failures >= v_max then
    update private.password_failures f set locked_until = now() + v_lock, failures = 0, first_failed_at = now()
     where f.user_id = v_user;
    return jsonb_build_object('decision', 'reject', 'should_logout_user', false,
      'message', format('Too many failed sign-in attempts. Try again in %s minutes.', extract(epoch from v_lock) / 60));
  end if;
  return jsonb_build_object('decision', 'continue');
end;
$_$;
ALTER FUNCTION public.hook_password_verification_attempt(event jsonb) OWNER TO postgres;
CREATE FUNCTION public.ingest_tradingview_alert(p_token text, p_alert jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_strategy public.strategies;
  v_action text := lower(coalesce(p_alert ->> 'action', 'entry'));
  v_signal_id uuid;
begin
  if not private.is_service() then
    raise exception 'only the service role ingests TradingView alerts' using errcode = 'insufficient_privilege';
  end if;
  select s.* into v_strategy
    from private.tradingview_tokens t join public.strategies s on s.id = t.strategy_id
   where t.token_hash = sha256(convert_to(coalesce(p_token, ''), 'UTF8'));
  if not found then
    return jsonb_build_object('status', 'invalid_token');
  end if;
  if v_action = 'entry' then
    insert into public.signals (strategy_id, provider_id, pair, side, entry_price, stop_loss, take_profit, leverage,
                                indicators, note, source, idempotency_key)
    values (v_strategy.id, v_strategy.user_id, p_alert ->> 'pair', p_alert ->> 'side',
            (p_alert ->> 'price')::numeric, (p_alert ->> 'stop_loss')::numeric, (p_alert ->> 'take_profit')::numeric,
            coalesce((p_alert ->> 'leverage')::numeric, 1), coalesce(p_alert -> 'indicators', '{}'),
            p_alert ->> 'note', 'tradingview', p_alert ->> 'idempotency_key')
    on conflict (strategy_id, idempotency_key) do nothing
    returning id into v_signal_id;
    if v_signal_id is null then
      select g.id into v_signal_id from public.signals g
       where g.strategy_id = v_strategy.id and g.idempotency_key = p_alert ->> 'idempotency_key';
      return jsonb_build_object('status', 'duplicate', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
    end if;
    return jsonb_build_object('status', 'created', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
  end if;
  select g.id into v_signal_id from public.signals g
   where g.strategy_id = v_strategy.id and g.pair = p_alert ->> 'pair' and g.status in ('open', 'updated')
     and (p_alert ->> 'side' is null or g.side = p_alert ->> 'side')
   order by g.created_at desc limit 1
   for update;
  if v_signal_id is null then
    return jsonb_build_object('status', 'no_open_signal', 'strategy_id', v_strategy.id);
  end if;
  if v_action in ('exit', 'close') then
    update public.signals g set action = 'close', exit_price = (p_alert ->> 'price')::numeric where g.id = v_signal_id;
    return jsonb_build_object('status', 'closed', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
  elsif v_action = 'cancel' then
    update public.signals g set status = 'cancelled' where g.id = v_signal_id;
    return jsonb_build_object('status', 'cancelled', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
  end if;
  update public.signals g
     set action = 'update',
         stop_loss = coalesce((p_alert ->> 'stop_loss')::numeric, g.stop_loss),
         take_profit = coalesce((p_alert ->> 'take_profit')::numeric, g.take_profit),
         indicators = g.indicators || coalesce(p_alert -> 'indicators', '{}'),
         note = coalesce(p_alert ->> 'note', g.note)
   where g.id = v_signal_id;
  return jsonb_build_object('status', 'updated', 'signal_id', v_signal_id, 'strategy_id', v_strategy.id);
end;
$$;
ALTER FUNCTION public.ingest_tradingview_alert(p_token text, p_alert jsonb) OWNER TO postgres;
CREATE FUNCTION public.invite_to_organisation(p_organisation_id uuid, p_email text, p_role text) RETURNS public.organisation_invitations
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  v_uid uuid := private.organisation_caller();
  v_role text;
  v_email text := lower(btrim(p_email));
  v_inv public.organisation_invitations;
begin
  if p_role is null or private.organisation_rank(p_role) is null then
    raise exception 'role must be owner, admin, member or read_only'
      using errcode = 'invalid_parameter_value', constraint = 'organisation_invitations_role_known';
  end if;
  if v_email is null or char_length(v_email) > 320 or v_email !~ '^[^@\s]+@[^@\s]+$' then
    raise exception 'an invitation goes to an email address'
      using errcode = 'invalid_parameter_value', constraint = 'organisation_invitations_email_format';
  end if;
  v_role := private.organisation_require(p_organisation_id, 'admin');
  if p_role = 'owner' and v_role <> 'owner' then
    raise exception 'only an owner invites owners'
      using errcode = 'insufficient_privilege', constraint = 'organisation_members_role_owner';
  end if;
  if exists (select 1 from public.organisation_members m join auth.users u on u.id = m.user_id
              where m.organisation_id = p_organisation_id and lower(u.email) = v_email) then
    raise exception 'this address belongs to a member already'
      using errcode = 'unique_violation', constraint = 'organisation_members_pkey';
  end if;
  if (select count(*) from public.organisation_invitations i
       where i.organisation_id = p_organisation_id and i.status = 'pending') >= 100 then
    raise exception 'an organisation has at most 100 pending invitations'
      using errcode = 'check_violation', constraint = 'organisation_invitations_max_pending';
  end if;
  update public.organisation_invitations i set status = 'revoked', responded_at = now()
   where i.organisation_id = p_organisation_id and i.email = v_email and i.status = 'pending';
  insert into public.organisation_invitations (organisation_id, email, role, invited_by)
  values (p_organisation_id, v_email, p_role, v_uid)
  returning * into v_inv;
  return v_inv;
end;
$_$;
ALTER FUNCTION public.invite_to_organisation(p_organisation_id uuid, p_email text, p_role text) OWNER TO postgres;
CREATE FUNCTION public.latest_trades(p_limit integer DEFAULT 50, p_before timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF public.trades
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    SET enable_bitmapscan TO 'off'
    AS $$
declare
  v_uid uuid := (select auth.uid());
  v_org_bots uuid[];
begin
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    raise exception 'latest_trades reads 1 to 1,000 trades a call, not %', coalesce(p_limit::text, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  -- Other members' bots of the caller's organisations, as the bots table shows them.
  v_org_bots := array(
    select b.id from public.bots b
     where b.organisation_id = any (array(
             select m.organisation_id from public.organisation_members m where m.user_id = v_uid))
       and b.user_id <> v_uid);
  if cardinality(v_org_bots) = 0 then
    return query
    select t.*
      from public.trades t
     where t.user_id = v_uid
       and (p_before is null or t.entry_time < p_before)
     order by t.entry_time desc
     limit p_limit;
    return;
  end if;
  return query
  select l.*
  from (
    (select t.*
       from public.trades t
      where t.user_id = v_uid
        and (p_before is null or t.entry_time < p_before)
      order by t.entry_time desc
      limit p_limit)
    union all
    (select t.*
       from public.trades t
      where t.bot_id = any (v_org_bots)
        and t.user_id <> v_uid
        and (p_before is null or t.entry_time < p_before)
      order by t.entry_time desc
      limit p_limit)
  ) l
  order by l.entry_time desc, l.id
  limit p_limit;
end;
$$;
ALTER FUNCTION public.latest_trades(p_limit integer, p_before timestamp with time zone) OWNER TO postgres;
COMMENT ON FUNCTION public.latest_trades(p_limit integer, p_before timestamp with time zone) IS 'The caller''s latest trades, newest first: their own and their organisations'' bots'', p_limit (1 to 1,000) entered before p_before.';
CREATE FUNCTION public.leave_organisation(p_organisation_id uuid) RETURNS public.organisation_members
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := private.organisation_caller();
begin
  perform private.organisation_require(p_organisation_id, 'read_only');
  return private.organisation_drop_member(p_organisation_id, v_uid);
end;
$$;
ALTER FUNCTION public.leave_organisation(p_organisation_id uuid) OWNER TO postgres;
CREATE FUNCTION public.manual_trade(p_bot_id uuid, p_is_paper_trade boolean, p_side text, p_amount private.finite_number DEFAULT NULL::numeric, p_stake private.finite_number DEFAULT NULL::numeric, p_idempotency_key text DEFAULT NULL::text, p_pair text DEFAULT NULL::text) RETURNS public.position_requests
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := auth.uid();
  v_bot public.bots;
  v_key text := private.position_request_key(p_idempotency_key);
  v_req public.position_requests;
  v_pair text;
begin
  if v_uid is null then
    raise exception 'position requests are made by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  if p_side is null or p_side not in ('buy', 'sell') then
    raise exception 'side must be buy or sell'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_side_known';
  end if;
  if (p_amount is null) = (p_stake is null) then
    raise exception 'give either an amount (base currency) or a stake (quote currency)'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_amount_or_stake';
  end if;
  if coalesce(p_amount, p_stake) <= 0 or coalesce(p_amount, p_stake) > 1e15 then
    raise exception 'the amount or stake must be above 0 and at most 10^15'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_amount_positive';
  end if;
  if char_length(p_pair) > 64 then
    raise exception 'a pair is at most 64 characters'
      using errcode = 'invalid_parameter_value', constraint = 'position_requests_pair_length';
  end if;
  if v_key is not null then
    select * into v_req from public.position_requests r
     where r.user_id = v_uid and r.idempotency_key = v_uid::text || ':' || v_key;
    if found then
      if v_req.kind <> 'open' or v_req.bot_id <> p_bot_id
         or (p_pair is not null and v_req.pair is distinct from p_pair) then
        raise exception 'this idempotency key was used for another request'
          using errcode = 'check_violation', constraint = 'position_requests_idempotency_key_reused';
      end if;
      return v_req;
    end if;
  end if;
  v_bot := private.position_request_bot(p_bot_id, p_is_paper_trade);
  v_pair := private.position_request_pair(v_bot, p_pair);
  if p_side = 'sell' and not v_bot.allow_short then
    raise exception 'the bot does not allow shorts: a manual sell opens a short'
      using errcode = 'check_violation', constraint = 'position_requests_short_allowed',
            hint = 'Close a long with close_position.';
  end if;
  if exists (select 1 from public.trades t
              where t.bot_id = v_bot.id and t.status = 'open' and t.signal_id is null
                and t.trading_pair = v_pair)
     or exists (select 1 from public.position_requests r
                 where r.bot_id = v_bot.id and r.kind = 'open' and r.status in ('pending', 'working')
                   and coalesce(r.pair, v_bot.trading_pair) = v_pair) then
    raise exception 'the bot holds a position on % (or is opening one): close it first', v_pair
      using errcode = 'check_violation', constraint = 'position_requests_bot_flat';
  end if;
  insert into public.position_requests (user_id, bot_id, kind, side, amount, stake, pair, is_paper_trade,
                                        idempotency_key)
  values (v_uid, v_bot.id, 'open', p_side, p_amount, p_stake, v_pair, v_bot.is_paper_trade,
          v_uid::text || ':' || coalesce(v_key, gen_random_uuid()::text))
  returning * into v_req;
  return v_req;
end;
$$;
ALTER FUNCTION public.manual_trade(p_bot_id uuid, p_is_paper_trade boolean, p_side text, p_amount private.finite_number, p_stake private.finite_number, p_idempotency_key text, p_pair text) OWNER TO postgres;
CREATE FUNCTION public.mark_dead_workers(p_stale_s double precision) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_dead uuid[];
  v_id uuid;
begin
  with dead as (
    update public.workers w
    set status = 'dead', stopped_at = now()
    where w.status in ('running', 'draining')
      and w.heartbeat_at < now() - make_interval(secs => p_stale_s)
    returning w.id
  )
  select coalesce(array_agg(dead.id order by dead.id), '{}') into v_dead from dead;
  perform 1 from public.bot_leases l where l.worker_id = any (v_dead) order by l.bot_id for update;
  foreach v_id in array v_dead loop
    perform private.fleet_forget_worker(v_id, 'worker ' || v_id || ' stopped heartbeating');
  end loop;
  return cardinality(v_dead);
end;
$$;
ALTER FUNCTION public.mark_dead_workers(p_stale_s double precision) OWNER TO postgres;
CREATE FUNCTION public.offer_exchange_keys_to_organisation(p_organisation_id uuid, p_offer boolean DEFAULT true) RETURNS public.organisation_members
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := private.organisation_caller();
  v_member public.organisation_members;
begin
  if p_organisation_id is null or p_offer is null then
    raise exception 'say which organisation and whether you offer your exchange keys'
      using errcode = 'invalid_parameter_value', constraint = 'organisation_members_offer_arguments';
  end if;
  perform private.organisation_require(p_organisation_id, 'member');
  update public.organisation_members m set offers_exchange_keys = p_offer, updated_at = now()
   where m.organisation_id = p_organisation_id and m.user_id = v_uid
  returning * into v_member;
  return v_member;
end;
$$;
ALTER FUNCTION public.offer_exchange_keys_to_organisation(p_organisation_id uuid, p_offer boolean) OWNER TO postgres;
CREATE FUNCTION public.pause_strategy_subscription(p_subscription_id uuid) RETURNS public.strategy_subscriptions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.status not in ('active', 'paused') then
    raise exception 'only an active subscription can be paused (this one is %)', v_sub.status
      using errcode = 'check_violation', constraint = 'strategy_subscriptions_pause_active';
  end if;
  update public.strategy_subscriptions s set status = 'paused' where s.id = v_sub.id returning * into v_sub;
  return v_sub;
end;
$$;
ALTER FUNCTION public.pause_strategy_subscription(p_subscription_id uuid) OWNER TO postgres;
CREATE FUNCTION public.payout_connect_begin(p_user_id uuid, p_provider text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'only the service role connects payout destinations' using errcode = 'insufficient_privilege';
  end if;
  perform private.payout_connect_check(p_user_id, p_provider);
  return jsonb_build_object('stripe_account_id',
    (select d.stripe_account_id from public.payout_destinations d
      where d.user_id = p_user_id and d.provider = 'stripe' and p_provider = 'stripe'));
end;
$$;
ALTER FUNCTION public.payout_connect_begin(p_user_id uuid, p_provider text) OWNER TO postgres;
CREATE FUNCTION public.payout_connect_save(p_user_id uuid, p_provider text, p_currency text, p_stripe_account_id text DEFAULT NULL::text, p_onboarding_url text DEFAULT NULL::text, p_bank_code text DEFAULT NULL::text, p_account_last4 text DEFAULT NULL::text, p_recipient_code text DEFAULT NULL::text, p_account_name text DEFAULT NULL::text) RETURNS public.payout_destinations
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  v_row public.payout_destinations;
begin
  if not private.is_service() then
    raise exception 'only the service role connects payout destinations' using errcode = 'insufficient_privilege';
  end if;
  perform pg_advisory_xact_lock(hashtextextended('payout-connect:' || p_user_id, 0));
  perform private.payout_connect_check(p_user_id, p_provider);
  if p_currency is null or p_currency !~ '^[A-Z]{3}$' then
    raise exception 'a currency is a three-letter code' using errcode = 'check_violation',
      constraint = 'payout_destinations_currency_format';
  end if;
  if p_provider = 'stripe' and (p_stripe_account_id is null or p_onboarding_url is null) then
    raise exception 'a stripe destination needs its account and onboarding link' using errcode = 'invalid_parameter_value';
  end if;
  if p_provider = 'paystack' and (p_recipient_code is null or p_bank_code is null or p_account_last4 is null) then
    raise exception 'a paystack destination needs its recipient and bank details' using errcode = 'invalid_parameter_value';
  end if;
  insert into public.payout_destinations as d (user_id, provider, status, currency, stripe_account_id, onboarding_url,
                                               paystack_recipient_code, bank_code, account_last4, account_name)
  values (p_user_id, p_provider, case p_provider when 'paystack' then 'ready' else 'pending' end, p_currency,
          case when p_provider = 'stripe' then p_stripe_account_id end,
          case when p_provider = 'stripe' then p_onboarding_url end,
          case when p_provider = 'paystack' then p_recipient_code end,
          case when p_provider = 'paystack' then p_bank_code end,
          case when p_provider = 'paystack' then p_account_last4 end,
          case when p_provider = 'paystack' then p_account_name end)
  on conflict (user_id) do update
     set provider = excluded.provider, status = excluded.status, currency = excluded.currency,
         stripe_account_id = excluded.stripe_account_id, onboarding_url = excluded.onboarding_url,
         paystack_recipient_code = excluded.paystack_recipient_code, bank_code = excluded.bank_code,
         account_last4 = excluded.account_last4, account_name = excluded.account_name, error = null,
         updated_at = now()
  returning * into v_row;
  return v_row;
end;
$_$;
ALTER FUNCTION public.payout_connect_save(p_user_id uuid, p_provider text, p_currency text, p_stripe_account_id text, p_onboarding_url text, p_bank_code text, p_account_last4 text, p_recipient_code text, p_account_name text) OWNER TO postgres;
CREATE FUNCTION public.payout_mark_sent(p_payout_id uuid, p_provider_transfer_id text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'only the service role records payouts' using errcode = 'insufficient_privilege';
  end if;
  update public.payouts p
     set status = case when p.status = 'approved' then 'sent' else p.status end,
         provider_transfer_id = coalesce(p.provider_transfer_id, p_provider_transfer_id), updated_at = now()
   where p.id = p_payout_id and p.status in ('approved', 'sent', 'paid');
  return case when found then 'applied' else 'unchanged' end;
end;
$$;
ALTER FUNCTION public.payout_mark_sent(p_payout_id uuid, p_provider_transfer_id text) OWNER TO postgres;
CREATE FUNCTION public.payout_request_monthly(p_month date DEFAULT NULL::date) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_month date := date_trunc('month', coalesce(p_month, (now() at time zone 'utc')::date))::date;
  v_min numeric := (select s.min_payout from private.credit_settings s);
  v_user uuid;
  v_n integer := 0;
begin
  if not private.is_service() then
    raise exception 'only the service role runs the monthly payouts' using errcode = 'insufficient_privilege';
  end if;
  for v_user in
    select d.user_id from public.payout_destinations d
      join public.credit_accounts a on a.user_id = d.user_id and a.kind = 'provider_earnings'
     where d.status = 'ready' and a.credits_posted - a.debits_posted - a.debits_pending >= v_min
       and not exists (select 1 from public.payouts p
                        where p.user_id = d.user_id
                          and (p.status in ('requested', 'approved', 'sent')
                               or (p.source = 'monthly' and p.created_at >= v_month)))
     order by d.user_id
  loop
    perform public.request_payout(null, md5('monthly-payout:' || v_month || ':' || v_user)::uuid, v_user, 'monthly');
    v_n := v_n + 1;
  end loop;
  return v_n;
end;
$$;
ALTER FUNCTION public.payout_request_monthly(p_month date) OWNER TO postgres;
CREATE FUNCTION public.payout_settle(p_payout_id uuid, p_outcome text, p_provider_transfer_id text DEFAULT NULL::text, p_reason text DEFAULT NULL::text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_row public.payouts;
  v_open boolean;
  v_account uuid;
begin
  if not private.is_service() then
    raise exception 'only the service role settles payouts' using errcode = 'insufficient_privilege';
  end if;
  if p_outcome is null or p_outcome not in ('paid', 'failed', 'reversed') then
    raise exception 'a payout is paid, failed or reversed, not %', p_outcome using errcode = 'invalid_parameter_value';
  end if;
  select * into v_row from public.payouts p where p.id = p_payout_id for update;
  if not found then
    return 'not_found';
  end if;
  v_open := exists (select 1 from private.credit_open_holds h where h.transfer_id = v_row.hold_id);
  if p_outcome = 'paid' and v_row.status in ('approved', 'sent') and v_open then
    perform public.credit_post(md5('payout-post:' || v_row.id)::uuid, v_row.hold_id, null,
                               jsonb_build_object('payout_id', v_row.id, 'provider_transfer_id', p_provider_transfer_id));
  elsif p_outcome in ('failed', 'reversed') and v_row.status in ('approved', 'sent') and v_open then
    perform public.credit_void(md5('payout-void:' || v_row.id)::uuid, v_row.hold_id,
                               jsonb_build_object('payout_id', v_row.id, 'reason', p_reason));
  elsif p_outcome = 'reversed' and v_row.status = 'paid' then
    v_account := (select t.debit_account_id from public.credit_transfers t where t.id = v_row.hold_id);
    perform 1 from public.credit_accounts a
     where a.id in (v_account, private.credit_system_account('system:payouts'))
     order by a.user_id is null, a.id for no key update;
    perform public.credit_create_transfer(md5('payout-reversal:' || v_row.id)::uuid,
                                          private.credit_system_account('system:payouts'), v_account,
                                          v_row.amount, 'payout', 'payout', v_row.id::text,
                                          jsonb_build_object('payout_id', v_row.id, 'reversed', true));
  else
    return 'unchanged';
  end if;
  update public.payouts p
     set status = case p_outcome when 'paid' then 'paid' when 'failed' then 'failed' else 'reversed' end,
         provider_transfer_id = coalesce(p.provider_transfer_id, p_provider_transfer_id),
         failure = case when p_outcome = 'paid' then null else left(coalesce(p_reason, p_outcome), 1000) end,
         settled_at = now(), updated_at = now()
   where p.id = v_row.id
  returning * into v_row;
  insert into public.notifications (user_id, kind, title, body, data)
  values (v_row.user_id, 'payment', 'Payout ' || v_row.status,
          format('Your payout of %s credits was %s.', v_row.amount,
                 case v_row.status when 'paid' then 'sent' when 'failed' then 'not sent; the credits are available again'
                                   else 'reversed; the credits are available again' end),
          jsonb_build_object('payout_id', v_row.id, 'status', v_row.status));
  return 'applied';
end;
$$;
ALTER FUNCTION public.payout_settle(p_payout_id uuid, p_outcome text, p_provider_transfer_id text, p_reason text) OWNER TO postgres;
CREATE FUNCTION public.prune_history(p_history text, p_keep interval, p_batch integer DEFAULT 1000) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if not private.is_service() then
    raise exception 'prune_history is for the fleet only' using errcode = '42501';
  end if;
  if p_history is null
     or p_history not in ('bot_logs', 'webhook_events', 'notifications', 'jobs', 'service_checks', 'api_usage_minutes') then
    raise exception 'prune_history: history must be bot_logs, webhook_events, notifications, jobs, service_checks or api_usage_minutes'
      using errcode = '22023';
  end if;
  if p_keep is null or p_keep <= interval '0' or p_keep > interval '100 years' then
    raise exception 'prune_history: keep must be positive and at most 100 years' using errcode = '22023';
  end if;
  if p_batch is null or p_batch < 1 or p_batch > 10000 then
    raise exception 'prune_history: batch must be between 1 and 10000' using errcode = '22023';
  end if;
  return private.prune_history(p_history, now() - p_keep, p_batch);
end;
$$;
ALTER FUNCTION public.prune_history(p_history text, p_keep interval, p_batch integer) OWNER TO postgres;
CREATE FUNCTION public.reclaim_expired_jobs() RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_n integer;
  v_queues text[];
begin
  with expired as (
    select j.id from public.jobs j
    where j.status = 'running' and j.locked_until < now()
    for update skip locked
  ), moved as (
    update public.jobs j
    set status = case when j.attempts < j.max_attempts then 'queued' else 'dead' end,
        run_at = now(),
        finished_at = case when j.attempts < j.max_attempts then null else now() end,
        last_error = 'lock expired: worker ' || coalesce(j.locked_by::text, '?')
          || ' stopped heartbeating during attempt ' || j.attempts,
        locked_by = null,
        locked_until = null,
        updated_at = now()
    from expired
    where j.id = expired.id
    returning j.queue
  )
  select count(*), array_agg(distinct moved.queue) into v_n, v_queues from moved;
  if v_n > 0 then
    perform pg_notify('tradefleet_jobs', q) from unnest(v_queues) q;
  end if;
  return v_n;
end;
$$;
ALTER FUNCTION public.reclaim_expired_jobs() OWNER TO postgres;
CREATE TABLE public.service_status (
    service text NOT NULL,
    target text DEFAULT ''::text NOT NULL,
    status text NOT NULL,
    latency_ms numeric,
    error text,
    failures integer DEFAULT 0 NOT NULL,
    checked_at timestamp with time zone NOT NULL,
    changed_at timestamp with time zone NOT NULL,
    CONSTRAINT service_status_failures_positive CHECK ((failures >= 0)),
    CONSTRAINT service_status_status_known CHECK ((status = ANY (ARRAY['healthy'::text, 'degraded'::text, 'down'::text])))
);
ALTER TABLE public.service_status OWNER TO postgres;
CREATE FUNCTION public.record_service_check(p_service text, p_target text, p_ok boolean, p_latency_ms numeric, p_error text, p_slow_ms numeric DEFAULT 2000, p_down_after integer DEFAULT 3) RETURNS public.service_status
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
declare
  v_prev public.service_status;
  v_now public.service_status;
  v_failures integer;
  v_status text;
  v_error text := left(p_error, 1000);
begin
  if not private.is_service() then
    raise exception 'record_service_check is for the fleet only' using errcode = '42501';
  end if;
  if p_service is null or p_service !~ '^[a-z][a-z0-9_]{0,31}$' then
    raise exception 'record_service_check: service must be a short lower-case name' using errcode = '22023';
  end if;
  if p_ok is null then
    raise exception 'record_service_check: ok must be true or false' using errcode = '22023';
  end if;
  if p_latency_ms is not null and (p_latency_ms < 0 or p_latency_ms = 'NaN'::numeric) then
    raise exception 'record_service_check: latency_ms must not be negative' using errcode = '22023';
  end if;
  if p_slow_ms is null or p_slow_ms <= 0 or p_down_after is null or p_down_after < 1 then
    raise exception 'record_service_check: slow_ms must be positive and down_after at least 1'
      using errcode = '22023';
  end if;
  select * into v_prev from public.service_status s
   where s.service = p_service and s.target = coalesce(p_target, '')
     for update;
  v_failures := case when p_ok then 0 else coalesce(v_prev.failures, 0) + 1 end;
  v_status := case
    when not p_ok and v_failures >= p_down_after then 'down'
    when not p_ok then 'degraded'
    when p_latency_ms > p_slow_ms then 'degraded'
    else 'healthy'
  end;
  insert into public.service_checks (service, target, status, ok, latency_ms, error)
  values (p_service, coalesce(p_target, ''), v_status, p_ok, p_latency_ms, v_error);
  insert into public.service_status as s (service, target, status, latency_ms, error, failures, checked_at, changed_at)
  values (p_service, coalesce(p_target, ''), v_status, p_latency_ms, v_error, v_failures, now(), now())
  on conflict (service, target) do update
     set status = excluded.status,
         latency_ms = excluded.latency_ms,
         error = excluded.error,
         failures = excluded.failures,
         checked_at = excluded.checked_at,
         changed_at = case when s.status = excluded.status then s.changed_at else excluded.changed_at end
  returning * into v_now;
  if v_prev.status is distinct from v_status then
    perform pg_notify('tradefleet_service_health', jsonb_build_object(
      'service', p_service, 'target', coalesce(p_target, ''), 'status', v_status,
      'previous', v_prev.status, 'latency_ms', p_latency_ms, 'error', left(v_error, 200),
      'checked_at', v_now.checked_at)::text);
  end if;
  return v_now;
end;
$_$;
ALTER FUNCTION public.record_service_check(p_service text, p_target text, p_ok boolean, p_latency_ms numeric, p_error text, p_slow_ms numeric, p_down_after integer) OWNER TO postgres;
CREATE FUNCTION public.register_worker(p_name text, p_host text, p_pid integer, p_version text, p_queues text[] DEFAULT '{default}'::text[], p_capacity integer DEFAULT 1000, p_metadata jsonb DEFAULT '{}'::jsonb) RETURNS uuid
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  insert into public.workers (name, host, pid, version, queues, capacity, metadata)
  values (p_name, p_host, p_pid, p_version, p_queues, p_capacity, coalesce(p_metadata, '{}'))
  returning id;
$$;
ALTER FUNCTION public.register_worker(p_name text, p_host text, p_pid integer, p_version text, p_queues text[], p_capacity integer, p_metadata jsonb) OWNER TO postgres;
CREATE FUNCTION public.release_bot_leases(p_worker_id uuid, p_bot_ids uuid[] DEFAULT NULL::uuid[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_n integer;
begin
  perform 1 from public.bot_leases l
  where l.worker_id = p_worker_id and (p_bot_ids is null or l.bot_id = any (p_bot_ids))
  order by l.bot_id for update;
  update public.bot_leases l set worker_id = null, expires_at = least(l.expires_at, now())
  where l.worker_id = p_worker_id and (p_bot_ids is null or l.bot_id = any (p_bot_ids));
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
ALTER FUNCTION public.release_bot_leases(p_worker_id uuid, p_bot_ids uuid[]) OWNER TO postgres;
CREATE FUNCTION public.release_jobs(p_worker_id uuid, p_job_ids bigint[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_n integer;
begin
  update public.jobs j
  set status = 'queued', attempts = greatest(j.attempts - 1, 0), locked_by = null,
      locked_until = null, started_at = null, updated_at = now()
  where j.id = any (p_job_ids) and j.status = 'running' and j.locked_by = p_worker_id;
  get diagnostics v_n = row_count;
  if v_n > 0 then
    perform pg_notify('tradefleet_jobs', q.queue)
    from (select distinct j.queue from public.jobs j where j.id = any (p_job_ids)) q;
  end if;
  return v_n;
end;
$$;
ALTER FUNCTION public.release_jobs(p_worker_id uuid, p_job_ids bigint[]) OWNER TO postgres;
CREATE FUNCTION public.remove_organisation_member(p_organisation_id uuid, p_user_id uuid) RETURNS public.organisation_members
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  perform private.organisation_caller();
  perform private.organisation_managed_member(p_organisation_id, p_user_id, null);
  return private.organisation_drop_member(p_organisation_id, p_user_id);
end;
$$;
ALTER FUNCTION public.remove_organisation_member(p_organisation_id uuid, p_user_id uuid) OWNER TO postgres;
CREATE FUNCTION public.renew_strategy_subscriptions(p_limit integer DEFAULT 1000) RETURNS TABLE(renewed integer, expired integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.strategy_subscriptions;
  v_name text;
begin
  if not private.is_service() then
    raise exception 'only the service role renews subscriptions' using errcode = 'insufficient_privilege';
  end if;
  renewed := 0;
  expired := 0;
  for v_sub in select * from public.strategy_subscriptions s
                where s.status = 'active' and s.current_period_end <= now()
                order by s.current_period_end
                limit greatest(coalesce(p_limit, 1000), 0)
                for update skip locked loop
    begin
      perform private.charge_strategy_period(v_sub, v_sub.current_period_end);
      renewed := renewed + 1;
    exception
      when check_violation or invalid_parameter_value then
        update public.strategy_subscriptions s set status = 'expired', auto_execute = false where s.id = v_sub.id;
        select st.name into v_name from public.strategies st where st.id = v_sub.strategy_id;
        insert into public.notifications (user_id, kind, title, body, data)
        values (v_sub.subscriber_id, 'low_credits', 'Subscription expired',
                format('Your subscription to %s could not renew: %s', v_name, sqlerrm),
                jsonb_build_object('strategy_id', v_sub.strategy_id, 'subscription_id', v_sub.id));
        expired := expired + 1;
      when others then
        raise warning 'strategy subscription % did not renew: % (%)', v_sub.id, sqlerrm, sqlstate;
    end;
  end loop;
  return next;
end;
$$;
ALTER FUNCTION public.renew_strategy_subscriptions(p_limit integer) OWNER TO postgres;
CREATE TABLE public.ai_analyses (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    bot_id uuid,
    strategy_id uuid,
    analysis_type text NOT NULL,
    input_data jsonb NOT NULL,
    results jsonb DEFAULT '{}'::jsonb NOT NULL,
    recommendations text[] DEFAULT '{}'::text[] NOT NULL,
    confidence_score numeric(3,2) DEFAULT 0 NOT NULL,
    model_used text,
    tokens_used integer DEFAULT 0 NOT NULL,
    processing_time_ms integer,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    backtest_run_id uuid,
    status text DEFAULT 'queued'::text NOT NULL,
    error_code text,
    error text,
    summary text,
    findings jsonb DEFAULT '[]'::jsonb NOT NULL,
    suggestions jsonb DEFAULT '[]'::jsonb NOT NULL,
    figures jsonb DEFAULT '{}'::jsonb NOT NULL,
    generated_strategy jsonb,
    result_backtest_run_id uuid,
    saved_strategy_id uuid,
    prompt_tokens integer DEFAULT 0 NOT NULL,
    completion_tokens integer DEFAULT 0 NOT NULL,
    credits_charged numeric(24,8) DEFAULT 0 NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT ai_analyses_completion_tokens_not_negative CHECK ((completion_tokens >= 0)),
    CONSTRAINT ai_analyses_confidence_score_check CHECK (((confidence_score >= (0)::numeric) AND (confidence_score <= (1)::numeric))),
    CONSTRAINT ai_analyses_confidence_score_finite CHECK ((confidence_score <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT ai_analyses_credits_not_negative CHECK ((credits_charged >= (0)::numeric)),
    CONSTRAINT ai_analyses_figures_object CHECK ((jsonb_typeof(figures) = 'object'::text)),
    CONSTRAINT ai_analyses_findings_array CHECK ((jsonb_typeof(findings) = 'array'::text)),
    CONSTRAINT ai_analyses_prompt_tokens_not_negative CHECK ((prompt_tokens >= 0)),
    CONSTRAINT ai_analyses_status_known CHECK ((status = ANY (ARRAY['queued'::text, 'running'::text, 'completed'::text, 'failed'::text]))),
    CONSTRAINT ai_analyses_suggestions_array CHECK ((jsonb_typeof(suggestions) = 'array'::text)),
    CONSTRAINT ai_analyses_tokens_used_check CHECK ((tokens_used >= 0)),
    CONSTRAINT ai_analyses_type_known CHECK ((analysis_type = ANY (ARRAY['performance'::text, 'risk'::text, 'optimization'::text, 'backtest'::text, 'strategy_generation'::text, 'portfolio'::text])))
);
ALTER TABLE public.ai_analyses OWNER TO postgres;
CREATE FUNCTION public.request_ai_analysis(p_type text, p_bot_id uuid DEFAULT NULL::uuid, p_strategy_id uuid DEFAULT NULL::uuid, p_backtest_run_id uuid DEFAULT NULL::uuid, p_input jsonb DEFAULT '{}'::jsonb) RETURNS public.ai_analyses
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := (select auth.uid());
  v_plan public.plans;
  v_limit integer;
  v_take record;
  v_row public.ai_analyses;
begin
  if v_uid is null or current_user = 'anon' then
    raise exception 'sign in to request an AI analysis' using errcode = 'insufficient_privilege';
  end if;
  if p_type is null or p_type not in ('performance', 'risk', 'backtest', 'portfolio', 'strategy_generation') then
    raise exception 'unknown analysis type %; expected performance, risk, backtest, portfolio or strategy_generation',
      coalesce(p_type, 'null') using errcode = 'invalid_parameter_value';
  end if;
  if p_input is null or jsonb_typeof(p_input) <> 'object' or pg_column_size(p_input) > 16384 then
    raise exception 'p_input must be a JSON object of at most 16 KiB' using errcode = 'invalid_parameter_value';
  end if;
  if p_type in ('performance', 'risk') and (p_bot_id is null) = (p_strategy_id is null) then
    raise exception 'a % analysis needs exactly one of p_bot_id and p_strategy_id', p_type
      using errcode = 'invalid_parameter_value';
  end if;
  if p_type = 'performance' and p_bot_id is null then
    raise exception 'a performance review is of a bot: pass p_bot_id' using errcode = 'invalid_parameter_value';
  end if;
  if p_type = 'backtest' and p_backtest_run_id is null then
    raise exception 'a backtest explanation needs p_backtest_run_id' using errcode = 'invalid_parameter_value';
  end if;
  if p_type = 'strategy_generation' and coalesce(btrim(p_input ->> 'description'), '') = '' then
    raise exception 'describe the strategy in p_input.description' using errcode = 'invalid_parameter_value';
  end if;
  if p_bot_id is not null and not exists (select 1 from public.bots b where b.id = p_bot_id and b.user_id = v_uid) then
    raise exception 'no bot of yours has id %', p_bot_id using errcode = 'insufficient_privilege';
  end if;
  if p_strategy_id is not null
     and not exists (select 1 from public.strategies s where s.id = p_strategy_id and s.user_id = v_uid) then
    raise exception 'no strategy of yours has id %', p_strategy_id using errcode = 'insufficient_privilege';
  end if;
  if p_backtest_run_id is not null
     and not exists (select 1 from public.backtest_runs r where r.id = p_backtest_run_id and r.user_id = v_uid) then
    raise exception 'no backtest run of yours has id %', p_backtest_run_id using errcode = 'insufficient_privilege';
  end if;
  v_plan := private.current_plan(v_uid);
  v_limit := coalesce((v_plan.features ->> 'ai_requests_per_minute')::integer, 5);
  select * into v_take from private.rate_limit_take('ai:' || v_uid::text, v_limit, interval '1 minute');
  if not v_take.allowed then
    raise exception 'rate limited: at most % AI requests a minute; try again in % seconds',
      v_limit, v_take.retry_after_seconds
      using errcode = 'PT429', hint = format('retry after %s seconds', v_take.retry_after_seconds);
  end if;
  insert into public.ai_analyses (user_id, bot_id, strategy_id, backtest_run_id, analysis_type, input_data)
  values (v_uid, p_bot_id, p_strategy_id, p_backtest_run_id, p_type, p_input)
  returning * into v_row;
  return v_row;
end;
$$;
ALTER FUNCTION public.request_ai_analysis(p_type text, p_bot_id uuid, p_strategy_id uuid, p_backtest_run_id uuid, p_input jsonb) OWNER TO postgres;
CREATE FUNCTION public.request_payout(p_amount numeric DEFAULT NULL::numeric, p_id uuid DEFAULT NULL::uuid, p_user_id uuid DEFAULT NULL::uuid, p_source text DEFAULT 'request'::text) RETURNS public.payouts
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_user uuid;
  v_dest public.payout_destinations;
  v_hold public.credit_transfers;
  v_row public.payouts;
  v_auto boolean;
begin
  if private.is_service() then
    v_user := coalesce(p_user_id, (select auth.uid()));
  else
    v_user := (select auth.uid());
    if v_user is null or (p_user_id is not null and p_user_id <> v_user) or p_source is distinct from 'request' then
      raise exception 'providers can request payouts of their own earnings only' using errcode = 'insufficient_privilege';
    end if;
  end if;
  if p_source is null or p_source not in ('request', 'monthly') then
    raise exception 'a payout comes from a request or the monthly run, not %', p_source
      using errcode = 'invalid_parameter_value';
  end if;
  select * into v_dest from public.payout_destinations d where d.user_id = v_user;
  if not found or v_dest.status <> 'ready' then
    raise exception 'connect a payout destination first (%)', coalesce(v_dest.status, 'none')
      using errcode = 'check_violation', constraint = 'payouts_destination_ready',
            detail = 'result: payout_destination_not_ready';
  end if;
  v_hold := public.credit_request_payout(p_amount, p_id, v_user);
  select * into v_row from public.payouts p where p.hold_id = v_hold.id;
  if found then
    return v_row;
  end if;
  v_auto := v_hold.amount <= (select s.auto_approve_max from private.payout_settings s);
  insert into public.payouts (id, user_id, destination_id, hold_id, amount, status, source, approved_at)
  values (md5('payout:' || v_hold.id)::uuid, v_user, v_dest.id, v_hold.id, v_hold.amount,
          case when v_auto then 'approved' else 'requested' end, p_source,
          case when v_auto then now() end)
  returning * into v_row;
  return v_row;
end;
$$;
ALTER FUNCTION public.request_payout(p_amount numeric, p_id uuid, p_user_id uuid, p_source text) OWNER TO postgres;
CREATE FUNCTION public.resume_strategy_subscription(p_subscription_id uuid) RETURNS public.strategy_subscriptions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_sub public.strategy_subscriptions := private.own_strategy_subscription(p_subscription_id);
begin
  if v_sub.status = 'active' then
    return v_sub;
  end if;
  if v_sub.status <> 'paused' then
    raise exception 'only a paused subscription can be resumed (this one is %): subscribe again', v_sub.status
      using errcode = 'check_violation', constraint = 'strategy_subscriptions_resume_paused';
  end if;
  if v_sub.current_period_end is null or v_sub.current_period_end <= now() then
    return private.charge_strategy_period(v_sub, now());
  end if;
  update public.strategy_subscriptions s set status = 'active' where s.id = v_sub.id returning * into v_sub;
  return v_sub;
end;
$$;
ALTER FUNCTION public.resume_strategy_subscription(p_subscription_id uuid) OWNER TO postgres;
CREATE FUNCTION public.revoke_api_key(p_id uuid) RETURNS TABLE(id uuid, revoked_at timestamp with time zone)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
#variable_conflict use_column
declare
  v_user uuid := (select auth.uid());
  v_service boolean := private.is_service();
begin
  if not v_service and v_user is null then
    raise exception 'API keys are revoked by a signed-in user' using errcode = 'insufficient_privilege';
  end if;
  return query
    with changed as (
      update public.api_keys k set revoked_at = coalesce(k.revoked_at, now())
       where k.id = p_id
         and (v_service or k.user_id = v_user or k.organisation_id = any (private.organisation_ids('admin')))
      returning k.id, k.revoked_at
    )
    select c.id, c.revoked_at from changed c;
  if not found then
    raise exception 'no such API key' using errcode = 'no_data_found';
  end if;
end;
$$;
ALTER FUNCTION public.revoke_api_key(p_id uuid) OWNER TO postgres;
CREATE FUNCTION public.revoke_organisation_invitation(p_invitation_id uuid) RETURNS public.organisation_invitations
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_inv public.organisation_invitations;
  v_role text;
begin
  perform private.organisation_caller();
  select i.* into v_inv from public.organisation_invitations i where i.id = p_invitation_id for update;
  if not found or private.organisation_role(v_inv.organisation_id) is null then
    raise exception 'no invitation of your organisations with id %', p_invitation_id
      using errcode = 'no_data_found', constraint = 'organisation_invitations_invitation';
  end if;
  v_role := private.organisation_require(v_inv.organisation_id, 'admin');
  if v_inv.role = 'owner' and v_role <> 'owner' then
    raise exception 'only an owner revokes an invitation to owner'
      using errcode = 'insufficient_privilege', constraint = 'organisation_members_role_owner';
  end if;
  if v_inv.status <> 'pending' then
    raise exception 'the invitation is % already; only a pending one can be revoked', v_inv.status
      using errcode = 'check_violation', constraint = 'organisation_invitations_pending';
  end if;
  update public.organisation_invitations i set status = 'revoked', responded_at = now()
   where i.id = v_inv.id
  returning * into v_inv;
  return v_inv;
end;
$$;
ALTER FUNCTION public.revoke_organisation_invitation(p_invitation_id uuid) OWNER TO postgres;
CREATE FUNCTION public.rotate_tradingview_token(p_strategy_id uuid) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_token text := 'tv_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
begin
  if not exists (select 1 from public.strategies s where s.id = p_strategy_id and s.user_id = (select auth.uid()))
     or private.app_role() not in ('provider', 'admin') then
    raise exception 'only the provider of strategy % can set its TradingView token', p_strategy_id
      using errcode = 'insufficient_privilege';
  end if;
  insert into private.tradingview_tokens (strategy_id, token_hash)
  values (p_strategy_id, sha256(convert_to(v_token, 'UTF8')))
  on conflict (strategy_id) do update set token_hash = excluded.token_hash, created_at = now();
  return v_token;
end;
$$;
ALTER FUNCTION public.rotate_tradingview_token(p_strategy_id uuid) OWNER TO postgres;
CREATE FUNCTION public.save_ai_strategy(p_analysis_id uuid, p_name text DEFAULT NULL::text) RETURNS uuid
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_row public.ai_analyses;
  v_id uuid;
begin
  if (select auth.uid()) is null then
    raise exception 'sign in to save a strategy' using errcode = 'insufficient_privilege';
  end if;
  select * into v_row from public.ai_analyses a where a.id = p_analysis_id and a.user_id = (select auth.uid());
  if not found then
    raise exception 'no analysis of yours has id %', p_analysis_id using errcode = 'no_data_found';
  end if;
  if v_row.analysis_type <> 'strategy_generation' or v_row.status <> 'completed' or v_row.generated_strategy is null then
    raise exception 'analysis % has no generated strategy to save', p_analysis_id using errcode = 'invalid_parameter_value';
  end if;
  if v_row.saved_strategy_id is not null then
    return v_row.saved_strategy_id;
  end if;
  insert into public.strategies (user_id, name, description, strategy_type, engine, content, tags)
  values ((select auth.uid()),
          coalesce(nullif(btrim(p_name), ''), v_row.generated_strategy ->> 'name', 'Assistant strategy'),
          left(v_row.input_data ->> 'description', 4000), 'ai_generated', 'rules',
          (v_row.generated_strategy -> 'rules')::text, array['assistant'])
  returning id into v_id;
  perform private.ai_link_saved_strategy(v_row.id, v_id);
  return v_id;
end;
$$;
ALTER FUNCTION public.save_ai_strategy(p_analysis_id uuid, p_name text) OWNER TO postgres;
CREATE FUNCTION public.set_organisation_member_role(p_organisation_id uuid, p_user_id uuid, p_role text) RETURNS public.organisation_members
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_member public.organisation_members;
begin
  perform private.organisation_caller();
  if p_role is null or private.organisation_rank(p_role) is null then
    raise exception 'role must be owner, admin, member or read_only'
      using errcode = 'invalid_parameter_value', constraint = 'organisation_members_role_known';
  end if;
  v_member := private.organisation_managed_member(p_organisation_id, p_user_id, p_role);
  if p_role <> 'owner' and exists (select 1 from public.organisations o
                                    where o.id = p_organisation_id and o.owner_id = p_user_id) then
    raise exception 'the paying owner stays an owner'
      using errcode = 'check_violation', constraint = 'organisations_owner_stays';
  end if;
  update public.organisation_members m set role = p_role, updated_at = now()
   where m.organisation_id = p_organisation_id and m.user_id = p_user_id
  returning * into v_member;
  return v_member;
end;
$$;
ALTER FUNCTION public.set_organisation_member_role(p_organisation_id uuid, p_user_id uuid, p_role text) OWNER TO postgres;
CREATE FUNCTION public.set_worker_status(p_worker_id uuid, p_status text) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if p_status not in ('running', 'draining', 'stopped') then
    raise exception 'a worker can set itself running, draining or stopped, not %', p_status
      using errcode = 'check_violation';
  end if;
  update public.workers w
  set status = p_status,
      heartbeat_at = now(),
      stopped_at = case when p_status = 'stopped' then now() else null end
  where w.id = p_worker_id;
  if p_status = 'stopped' then
    perform private.fleet_forget_worker(p_worker_id, 'worker ' || p_worker_id || ' stopped');
  end if;
end;
$$;
ALTER FUNCTION public.set_worker_status(p_worker_id uuid, p_status text) OWNER TO postgres;
CREATE FUNCTION public.signal_charge_copies(p_signal_id uuid, p_limit integer DEFAULT 500) RETURNS TABLE(charged integer, rejected integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET jit TO 'off'
    SET work_mem TO '64MB'
    AS $$
declare
  v_usage uuid := (select a.id from public.credit_accounts a where a.code = 'system:usage');
  v_rows private.copy_charge[];
  a_id uuid[];
  a_avail numeric[];
  a_allow boolean[];
  v_accounts integer;
  v_locked integer;
  v_total numeric;
  v_count bigint;
begin
  if not private.is_service() then
    raise exception 'only the fleet charges copy trades' using errcode = 'insufficient_privilege';
  end if;
  charged := 0;
  rejected := 0;
  -- The chunk: the next pending executions, locked, with their payers' accounts.
  v_rows := array(
    select row(e.id, e.subscription_id, e.subscriber_id, a.id,
               md5('copy-trade-credits:' || e.signal_id || ':' || e.subscription_id)::uuid,
               round(e.credits_due, 8), null, null)::private.copy_charge
      from public.signal_executions e
      join public.credit_accounts a on a.user_id = e.subscriber_id and a.kind = 'user'
     where e.signal_id = p_signal_id and e.charge_status = 'pending'
     order by e.id
     limit p_limit
       for update of e skip locked);
  if cardinality(v_rows) = 0 then
    return next;
    return;
  end if;
  -- The payers' accounts, locked in the ledger's lock order (user-owned accounts by id; the
  -- system account last, by its update), with what each can spend.
  select coalesce(array_agg(l.id), '{}'::uuid[]), coalesce(array_agg(l.available), '{}'::numeric[]),
         coalesce(array_agg(l.allow_negative), '{}'::boolean[])
    into a_id, a_avail, a_allow
    from (select a.id, a.credits_posted - a.debits_posted - a.debits_pending as available, a.allow_negative
            from public.credit_accounts a
           where a.id in (select c.account_id from unnest(v_rows) c)
           order by a.id
             for no key update) l;
  -- Every charge decided at once, in the batch's order (transfer id), against running sums.
  select array_agg(row(d.execution_id, d.subscription_id, d.subscriber_id, d.account_id, d.transfer_id, d.amount,
                       d.fresh,
                       case
                         when d.amount is null or d.amount <= 0 then 'amount_must_be_positive'
                         when not d.fresh then
                           private.credit_compare(d.existing, 'transfer', d.account_id, v_usage, d.amount, 'usage',
                                                  null, 'signal', p_signal_id::text)
                         when d.locked_id is null then 'debit_account_not_found'
                         when v_usage is null then 'credit_account_not_found'
                         when d.allow_negative or d.available >= d.running then 'ok'
                         else 'exceeds_credits'
                       end)::private.copy_charge order by d.transfer_id),
         count(distinct d.account_id), count(distinct d.locked_id)
    into v_rows, v_accounts, v_locked
    from (select c.execution_id, c.subscription_id, c.subscriber_id, c.account_id, c.transfer_id, c.amount,
                 x.id is null as fresh, x as existing, l.available, l.allow_negative, l.id as locked_id,
                 sum(c.amount) filter (where x.id is null and c.amount > 0)
                   over (partition by c.account_id order by c.transfer_id) as running
            from unnest(v_rows) c
            left join unnest(a_id, a_avail, a_allow) l(id, available, allow_negative) on l.id = c.account_id
            left join public.credit_transfers x on x.id = c.transfer_id) d;
  if v_locked <> v_accounts then
    raise exception 'an account of this charge was removed concurrently; retry the charge'
      using errcode = 'serialization_failure';
  end if;
  -- A payer with several charges, one of them refused: the running sums may not be what the
  -- ledger decides one by one (a refused charge leaves its credits to the later ones).
  if exists (select 1 from unnest(v_rows) c
              group by c.account_id
             having count(*) filter (where c.fresh and c.amount > 0) > 1
                and bool_or(c.result = 'exceeds_credits')) then
    return query select * from private.signal_charge_copies_by_batch(p_signal_id, p_limit);
    return;
  end if;
  insert into public.credit_transfers (id, debit_account_id, credit_account_id, amount, kind, phase, pending_id,
                                       timeout_at, reference_type, reference_id, metadata, created_at)
  select c.transfer_id, c.account_id, v_usage, c.amount, 'usage', 'posted', null, null, 'signal', p_signal_id::text,
         jsonb_build_object('usage', 'trade', 'quantity', 1, 'unit_price', c.amount,
                            'subscription_id', c.subscription_id),
         now()
    from unnest(v_rows) c
   where c.result = 'ok'
   order by c.transfer_id
  on conflict do nothing;
  get diagnostics v_count = row_count;
  if v_count <> (select count(*) from unnest(v_rows) c where c.result = 'ok') then
    -- Only a concurrent transfer reusing one of these ids gets here.
    raise exception 'a transfer id of this charge was used concurrently by another transfer; retry the charge'
      using errcode = 'serialization_failure';
  end if;
  update public.credit_accounts a
     set debits_posted = a.debits_posted + p.amount
    from (select c.account_id, sum(c.amount) as amount
            from unnest(v_rows) c where c.result = 'ok' group by c.account_id) p
   where a.id = p.account_id;
  with marked as (
    update public.signal_executions e
       set charge_status = case when c.result in ('ok', 'exists') then 'charged' else 'rejected' end
      from unnest(v_rows) c
     where e.id = c.execution_id
    returning e.charge_status, e.subscriber_id, e.signal_id
  ), notes as (
    insert into public.notifications (user_id, kind, title, body, data)
    select m.subscriber_id, 'low_credits', 'Copy trade not charged',
           'Your credits no longer covered a copied trade; top up to keep copying signals.',
           jsonb_build_object('signal_id', m.signal_id)
      from marked m where m.charge_status = 'rejected'
  )
  select count(*) filter (where m.charge_status = 'charged')::integer,
         count(*) filter (where m.charge_status = 'rejected')::integer
    into charged, rejected
    from marked m;
  -- Last, the hot account: credited by the sum, locked from here until commit.
  v_total := (select sum(c.amount) from unnest(v_rows) c where c.result = 'ok');
  if v_total > 0 then
    update public.credit_accounts a set credits_posted = a.credits_posted + v_total where a.id = v_usage;
  end if;
  return next;
end;
$$;
ALTER FUNCTION public.signal_charge_copies(p_signal_id uuid, p_limit integer) OWNER TO postgres;
CREATE FUNCTION public.signal_fan_out(p_signal_id uuid, p_phase text DEFAULT 'open'::text) RETURNS TABLE(executed integer, skipped integer, notified integer)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    SET jit TO 'off'
    SET work_mem TO '64MB'
    AS $$
declare
  v_sig public.signals;
  v_strategy_name text;
  v_price numeric;
  v_label text;
  v_announce boolean;
  v_fee_rate numeric := private.copy_fee_rate();
  v_free_plan uuid;
  v_cands private.fanout_candidate[];
  v_ok uuid[];                     -- the copying bots whose lease epoch still holds
  v_lost uuid[] := '{}'::uuid[];   -- copied, then skipped: the bot's lease moved on
begin
  if not private.is_service() then
    raise exception 'only the fleet fans signals out' using errcode = 'insufficient_privilege';
  end if;
  if p_phase not in ('open', 'close', 'update') then
    raise exception 'unknown fan-out phase %', p_phase using errcode = 'invalid_parameter_value';
  end if;
  executed := 0; skipped := 0; notified := 0;
  select * into v_sig from public.signals g where g.id = p_signal_id;
  if not found then
    return next;
    return;
  end if;
  select s.name into v_strategy_name from public.strategies s where s.id = v_sig.strategy_id;
  v_label := format('%s %s %s', v_strategy_name, upper(v_sig.side), v_sig.pair);
  if p_phase = 'update' then
    if not private.signal_first_announcement(v_sig.id, 'update:' || v_sig.updated_at) then
      return next;
      return;
    end if;
    insert into public.notifications (user_id, kind, title, body, data)
    select ss.subscriber_id, 'signal', 'Signal updated: ' || v_label,
           format('Stop-loss %s, take-profit %s.', coalesce(v_sig.stop_loss::text, '-'), coalesce(v_sig.take_profit::text, '-')),
           jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id, 'status', v_sig.status)
      from public.strategy_subscriptions ss
     where ss.strategy_id = v_sig.strategy_id and ss.status = 'active';
    get diagnostics notified = row_count;
    return next;
    return;
  end if;
  if p_phase = 'close' then
    return query select * from private.signal_fan_out_close(v_sig, v_label);
    return;
  end if;
  -- 'open' ------------------------------------------------------------------------------
  if v_sig.status not in ('open', 'updated') then
    return next;   -- closed before it could be copied: nothing to open
    return;
  end if;
  v_free_plan := (select pl.id from public.plans pl where pl.name = 'Free');
  -- A signal without an entry price copies at the last close of its market.
  v_price := coalesce(v_sig.entry_price,
                      private.market_last_close(v_sig.pair));
  select coalesce(array_agg(x.c), '{}'::private.fanout_candidate[]) into v_cands
    from (
  -- An amount an order, a trade and an execution row cannot hold (numeric(28,12): below 1e16)
  -- is kept as no amount, and skips the copy as invalid_sizing.
  select row(c.subscription_id, c.subscriber_id, c.bot_id, c.epoch, c.exchange,
         case when c.amount < 1e16 then c.amount end, c.leverage, c.credits,
         case
           when c.bot_id is null then 'no_bot'
           when not c.sizing_valid then 'invalid_sizing'
           when not c.is_paper_trade then 'live_bot_not_supported'
           when c.bot_status <> 'running' or c.epoch is null then 'bot_not_running'
           when v_sig.side = 'short' and not c.allow_short then 'short_not_allowed'
           when v_price is null then 'no_price'
           when c.amount is null or c.amount <= 0 or c.amount >= 1e16 then 'invalid_sizing'
           when c.open_trades >= c.max_open_trades then 'max_open_trades'
           when c.daily_loss_limit is not null and -c.daily_pnl >= c.daily_loss_limit then 'daily_loss_limit'
           when c.amount * v_price / c.leverage > c.current_balance then 'insufficient_balance'
           when c.credits > c.available then 'insufficient_credits'
         end,
         ((row_number() over (order by c.bot_id)) - 1)::integer / 1000)::private.fanout_candidate as c
    from (
      select ss.id as subscription_id, ss.subscriber_id, b.id as bot_id, l.epoch, b.exchange, b.status as bot_status,
             b.is_paper_trade, b.allow_short, b.max_open_trades, b.daily_loss_limit, b.current_balance,
             ss.sizing_valid,
             least(v_sig.leverage, b.leverage, coalesce((ss.safe_sizing ->> 'max_leverage')::numeric, 125)) as leverage,
             round(least(
               case coalesce(ss.safe_sizing ->> 'mode', 'stake')
                 when 'fixed_base' then (ss.safe_sizing ->> 'amount')::numeric
                 when 'fixed_quote' then (ss.safe_sizing ->> 'amount')::numeric / v_price
                 when 'percent_balance' then b.current_balance * (ss.safe_sizing ->> 'percent')::numeric / 100 / v_price
                 else b.stake_amount / v_price
               end,
               coalesce((ss.safe_sizing ->> 'max_amount')::numeric, 'infinity'::numeric)), 8) as amount,
             coalesce((p.features ->> 'credits_per_trade')::numeric, 0) as credits,
             coalesce(a.credits_posted - a.debits_posted - a.debits_pending, 0) as available,
             (select count(*) from public.trades t where t.bot_id = b.id and t.status = 'open') as open_trades,
             case when b.daily_loss_limit is null then 0 else
               (select coalesce(sum(t.profit), 0) from public.trades t
                 where t.bot_id = b.id and t.status = 'closed' and t.exit_time >= date_trunc('day', now())) end as daily_pnl
        -- Each distinct sizing is validated once: the check is a function PostgreSQL cannot
        -- inline, and without 'offset 0' the planner pulls it up into every expression that
        -- reads the sizing (a dozen calls per subscription).
        from (select s0.*, v.sizing_valid, case when v.sizing_valid then s0.sizing else '{}'::jsonb end as safe_sizing
                from public.strategy_subscriptions s0
                join (select d.sizing, private.sizing_is_valid(d.sizing) as sizing_valid
                        from (select distinct s1.sizing from public.strategy_subscriptions s1
                               where s1.strategy_id = v_sig.strategy_id and s1.status = 'active' and s1.auto_execute) d
                      offset 0) v on v.sizing = s0.sizing) ss
        left join public.bots b on b.id = ss.bot_id and b.user_id = ss.subscriber_id
        left join public.bot_leases l on l.bot_id = b.id
        left join public.credit_accounts a on a.user_id = ss.subscriber_id and a.kind = 'user'
        -- The subscriber's current plan (private.current_plan, inlined for the whole set).
        left join lateral (select cs.plan_id from public.subscriptions cs
                            where cs.user_id = ss.subscriber_id and cs.status in ('active', 'trial')
                              and cs.expires_at > now() limit 1) cur on true
        left join public.plans p on p.id = coalesce(cur.plan_id, v_free_plan)
       where ss.strategy_id = v_sig.strategy_id and ss.status = 'active' and ss.auto_execute
         and not exists (select 1 from public.signal_executions e
                          where e.signal_id = v_sig.id and e.subscription_id = ss.id and e.phase = 'open')
    ) c
    ) x;
  -- The gate: one execution row per (signal, subscription); a concurrent or repeated pass
  -- finds them and writes nothing more.
  with gate as (
    insert into public.signal_executions (signal_id, subscription_id, subscriber_id, bot_id, phase, status, reason,
                                          order_id, trade_id, amount, price, credits_due, charge_status)
    select v_sig.id, f.subscription_id, f.subscriber_id, f.bot_id, 'open',
           case when f.reason is null then 'executed' else 'skipped' end, f.reason,
           case when f.reason is null then md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid end,
           case when f.reason is null then md5('copy-trade:' || v_sig.id || ':' || f.subscription_id)::uuid end,
           f.amount, v_price, case when f.reason is null then f.credits else 0 end,
           case when f.reason is null and f.credits > 0 then 'pending' else 'none' end
      from unnest(v_cands) f
    on conflict (signal_id, subscription_id, phase) do nothing
    returning subscription_id
  )
  select coalesce(array_agg(f order by f.bot_id), '{}'::private.fanout_candidate[]) into v_cands
    from unnest(v_cands) f where exists (select 1 from gate where gate.subscription_id = f.subscription_id);
  select count(*) filter (where f.reason is null), count(*) filter (where f.reason is not null)
    into executed, skipped from unnest(v_cands) f;
  -- Lock the leases of the copying bots for share, in bot-id order, and keep the bots whose
  -- epoch still holds; then the bots, in the same order, before their orders and trades.
  select coalesce(array_agg(x.bot_id order by x.bot_id), '{}') into v_ok
    from (select l.bot_id
            from public.bot_leases l
            join unnest(v_cands) f on f.bot_id = l.bot_id and f.epoch = l.epoch and f.reason is null
           order by l.bot_id
             for share of l) x;
  perform 1 from public.bots b join unnest(v_ok) k(id) on k.id = b.id order by b.id for no key update of b;
  -- The copies whose bot's lease moved on since the candidates were read.
  select coalesce(array_agg(f.subscription_id), '{}'::uuid[]) into v_lost
    from unnest(v_cands) f
   where f.reason is null and not exists (select 1 from unnest(v_ok) k(id) where k.id = f.bot_id);
  if cardinality(v_lost) > 0 then
    update public.signal_executions e
       set status = 'skipped', reason = 'bot_lease_changed', order_id = null, trade_id = null,
           credits_due = 0, charge_status = 'none'
     where e.signal_id = v_sig.id and e.phase = 'open' and e.subscription_id = any (v_lost);
    select array_agg(row(f.subscription_id, f.subscriber_id, f.bot_id, f.epoch, f.exchange, f.amount, f.leverage,
                         f.credits, case when l.id is null then f.reason else 'bot_lease_changed' end,
                         f.chunk)::private.fanout_candidate order by f.bot_id)
      into v_cands
      from unnest(v_cands) f left join unnest(v_lost) l(id) on l.id = f.subscription_id;
    executed := executed - cardinality(v_lost);
    skipped := skipped + cardinality(v_lost);
  end if;
  -- Filled paper orders and open trades, in bot order (the order bot_apply_steps writes in).
  insert into public.orders (id, bot_id, user_id, client_order_id, exchange, symbol, side, order_type, amount,
                             filled, average_price, fee, fee_currency, status, reason, is_paper_trade, lease_epoch,
                             signal_id)
  select md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid, f.bot_id, f.subscriber_id,
         'tfc-' || substr(md5(v_sig.id || ':' || f.subscription_id || ':open'), 1, 28), f.exchange, v_sig.pair,
         case v_sig.side when 'long' then 'buy' else 'sell' end, 'market', f.amount, f.amount, v_price,
         round(f.amount * v_price * v_fee_rate, 12), split_part(split_part(v_sig.pair, '/', 2), ':', 1),
         'closed', 'copy of signal ' || v_sig.id, true, f.epoch, v_sig.id
    from unnest(v_cands) f
   where f.reason is null
   order by f.bot_id;
  insert into public.trades (id, bot_id, user_id, exchange, trading_pair, side, direction, order_type, amount, price,
                             fee, profit, profit_percentage, status, entry_time, entry_order_id, is_paper_trade,
                             stop_loss_price, take_profit_price, lease_epoch, metadata, signal_id)
  select md5('copy-trade:' || v_sig.id || ':' || f.subscription_id)::uuid, f.bot_id, f.subscriber_id, f.exchange,
         v_sig.pair, case v_sig.side when 'long' then 'buy' else 'sell' end, v_sig.side, 'market', f.amount, v_price,
         round(f.amount * v_price * v_fee_rate, 12), 0, 0, 'open', now(),
         md5('copy-order:' || v_sig.id || ':' || f.subscription_id || ':open')::uuid, true,
         v_sig.stop_loss, v_sig.take_profit, f.epoch,
         jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id,
                            'subscription_id', f.subscription_id, 'leverage', f.leverage),
         v_sig.id
    from unnest(v_cands) f
   where f.reason is null
   order by f.bot_id;
  v_announce := private.signal_first_announcement(v_sig.id, 'open');
  -- Everyone subscribed hears about the signal: a fill for those copied, the reason for
  -- those skipped, the signal itself for those who only follow.
  insert into public.notifications (user_id, kind, title, body, data)
  select ss.subscriber_id,
         case when f.subscription_id is null then 'signal'
              when f.reason is null then 'fill'
              when f.reason = 'insufficient_credits' then 'low_credits'
              else 'error' end,
         case when f.subscription_id is null then 'New signal: ' || v_label
              when f.reason is null then 'Copied: ' || v_label
              else 'Not copied: ' || v_label end,
         case when f.subscription_id is null
                then format('Entry %s, stop-loss %s, take-profit %s, leverage %s.', coalesce(v_sig.entry_price::text, 'market'),
                            coalesce(v_sig.stop_loss::text, '-'), coalesce(v_sig.take_profit::text, '-'), v_sig.leverage)
              when f.reason is null then format('Bought %s at %s on your paper bot.', f.amount, v_price)
              else 'Skipped: ' || replace(f.reason, '_', ' ') || '.' end,
         jsonb_build_object('signal_id', v_sig.id, 'strategy_id', v_sig.strategy_id, 'reason', f.reason)
    from public.strategy_subscriptions ss
    left join unnest(v_cands) f on f.subscription_id = ss.id
   where ss.strategy_id = v_sig.strategy_id and ss.status = 'active'
     and (f.subscription_id is not null
          or (not ss.auto_execute and v_announce));
  get diagnostics notified = row_count;
  return next;
end;
$$;
ALTER FUNCTION public.signal_fan_out(p_signal_id uuid, p_phase text) OWNER TO postgres;
CREATE FUNCTION public.stop_bot(p_bot_id uuid, p_positions text) RETURNS public.bots
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := auth.uid();
  v_bot public.bots;
  v_trade uuid;
  v_req public.position_requests;
begin
  if v_uid is null then
    raise exception 'bots are stopped by a signed-in user'
      using errcode = 'insufficient_privilege', constraint = 'position_requests_caller';
  end if;
  if p_positions is null or p_positions not in ('close', 'keep') then
    raise exception 'say what happens to the open positions: close or keep'
      using errcode = 'invalid_parameter_value', constraint = 'bots_stop_positions_known';
  end if;
  select * into v_bot from public.bots b
   where b.id = p_bot_id and (b.user_id = v_uid or b.organisation_id = any (private.organisation_ids()))
  for update;
  if not found then
    raise exception 'no bot of yours with id %', p_bot_id
      using errcode = 'no_data_found', constraint = 'position_requests_bot_owned';
  end if;
  perform private.bot_actor_check(v_bot);
  select t.id into v_trade from public.trades t
   where t.bot_id = v_bot.id and t.status = 'open' and t.signal_id is null
   order by t.entry_time limit 1;
  if p_positions = 'close' and v_trade is not null then
    perform private.position_request_bot(v_bot.id, v_bot.is_paper_trade);
    select * into v_req from public.position_requests r
     where r.trade_id = v_trade and r.kind = 'close' and r.status in ('pending', 'working');
    if found then
      update public.position_requests r set stop_after = true, stop_status = null, stop_reason = null, updated_at = now() where r.id = v_req.id;
    else
      insert into public.position_requests (user_id, bot_id, trade_id, kind, origin, stop_after, is_paper_trade,
                                            idempotency_key)
      values (v_uid, v_bot.id, v_trade, 'close', 'stop', true, v_bot.is_paper_trade,
              v_uid::text || ':' || gen_random_uuid()::text);
    end if;
    update public.bots b set stop_positions = 'close', status_reason = 'stopping: closing the open position'
     where b.id = v_bot.id
    returning * into v_bot;
    return v_bot;
  end if;
  if p_positions = 'keep' and v_bot.status = 'running' then
    -- A close working on the exchange took the stop off: the worker cancels it and rests
    -- the stop again before the bot stops.
    update public.position_requests r set stop_after = true, stop_status = null, stop_reason = null, updated_at = now()
     where r.bot_id = v_bot.id and r.kind = 'close' and r.status = 'working';
    if found then
      update public.bots b
         set stop_positions = 'keep',
             status_reason = 'stopping: cancelling the working close, the position is kept'
       where b.id = v_bot.id
      returning * into v_bot;
      return v_bot;
    end if;
  end if;
  if p_positions = 'keep' then
    -- An earlier stop_bot(…, 'close') gave way: its request is no longer the bot's last.
    update public.position_requests r set stop_after = false, stop_status = null, stop_reason = null, updated_at = now()
     where r.bot_id = v_bot.id and r.stop_after and r.status in ('pending', 'working');
  end if;
  update public.bots b
     set status = 'stopped', stop_positions = p_positions,
         status_reason = case when v_trade is null then 'stopped by its owner'
                              else 'stopped by its owner: the open position is kept' end
   where b.id = v_bot.id
  returning * into v_bot;
  return v_bot;
end;
$$;
ALTER FUNCTION public.stop_bot(p_bot_id uuid, p_positions text) OWNER TO postgres;
CREATE FUNCTION public.subscribe_to_strategy(p_strategy_id uuid, p_auto_execute boolean DEFAULT false, p_bot_id uuid DEFAULT NULL::uuid, p_sizing jsonb DEFAULT '{}'::jsonb) RETURNS public.strategy_subscriptions
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_user uuid := (select auth.uid());
  v_strategy public.strategies;
  v_sub public.strategy_subscriptions;
begin
  if v_user is null then
    raise exception 'sign in to subscribe' using errcode = 'insufficient_privilege';
  end if;
  select * into v_strategy from public.strategies s
   where s.id = p_strategy_id and s.is_public and s.strategy_type = 'marketplace' and s.is_verified;
  if not found then
    raise exception 'strategy % is not on the marketplace', p_strategy_id using errcode = 'no_data_found';
  end if;
  if v_strategy.user_id = v_user then
    raise exception 'providers cannot subscribe to their own strategy' using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_not_own_strategy';
  end if;
  if p_bot_id is not null and not exists (select 1 from public.bots b where b.id = p_bot_id and b.user_id = v_user) then
    raise exception 'bot % is not yours', p_bot_id using errcode = 'insufficient_privilege';
  end if;
  if p_auto_execute and p_bot_id is null then
    raise exception 'auto-execution needs a bot' using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_auto_execute_needs_bot';
  end if;
  insert into public.strategy_subscriptions (strategy_id, subscriber_id, status, auto_execute, bot_id, sizing, price,
                                             current_period_start, current_period_end)
  values (p_strategy_id, v_user, 'expired', p_auto_execute, p_bot_id, coalesce(p_sizing, '{}'),
          v_strategy.monthly_price, now(), now())
  on conflict (strategy_id, subscriber_id) do nothing;
  select * into v_sub from public.strategy_subscriptions s
   where s.strategy_id = p_strategy_id and s.subscriber_id = v_user for update;
  if v_sub.status = 'active' then
    return v_sub;
  end if;
  if v_sub.status = 'paused' then
    raise exception 'subscription % is paused: resume it instead', v_sub.id using errcode = 'check_violation',
      constraint = 'strategy_subscriptions_resume_paused';
  end if;
  update public.strategy_subscriptions s
     set auto_execute = p_auto_execute, bot_id = p_bot_id, sizing = coalesce(p_sizing, '{}')
   where s.id = v_sub.id
  returning * into v_sub;
  return private.charge_strategy_period(v_sub, now());
end;
$$;
ALTER FUNCTION public.subscribe_to_strategy(p_strategy_id uuid, p_auto_execute boolean, p_bot_id uuid, p_sizing jsonb) OWNER TO postgres;
CREATE FUNCTION public.transfer_organisation_ownership(p_organisation_id uuid, p_new_owner_id uuid) RETURNS public.organisations
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_uid uuid := private.organisation_caller();
  v_org public.organisations;
  v_member public.organisation_members;
  v_plan public.plans;
  v_n integer;
  v_exchanges text[];
  v_missing text[];
begin
  if p_organisation_id is null or p_new_owner_id is null then
    raise exception 'say which organisation and which member takes it over'
      using errcode = 'invalid_parameter_value', constraint = 'organisations_transfer_arguments';
  end if;
  perform private.organisation_require(p_organisation_id, 'read_only');
  select o.* into v_org from public.organisations o where o.id = p_organisation_id for update;
  if v_org.owner_id <> v_uid then
    raise exception 'only the paying owner hands the organisation over'
      using errcode = 'insufficient_privilege', constraint = 'organisations_transfer_paying_owner';
  end if;
  if p_new_owner_id = v_uid then
    raise exception 'you are the paying owner already'
      using errcode = 'check_violation', constraint = 'organisations_transfer_new_owner';
  end if;
  select m.* into v_member from public.organisation_members m
   where m.organisation_id = p_organisation_id and m.user_id = p_new_owner_id
  for update;
  if not found then
    raise exception 'no member % in this organisation', p_new_owner_id
      using errcode = 'no_data_found', constraint = 'organisation_members_member';
  end if;
  if v_member.role = 'read_only' then
    raise exception 'the organisation is handed to an owner, admin or member, not to a read_only member'
      using errcode = 'check_violation', constraint = 'organisations_transfer_role';
  end if;
  -- The locks the new owner's own limits are checked under (create_organisation and the
  -- bot and strategy plan-limit triggers take the same ones).
  perform pg_advisory_xact_lock(hashtextextended('organisations:' || p_new_owner_id::text, 0));
  perform pg_advisory_xact_lock(hashtextextended('bots:' || p_new_owner_id::text, 0));
  perform pg_advisory_xact_lock(hashtextextended('strategies:' || p_new_owner_id::text, 0));
  if (select count(*) from public.organisations o where o.owner_id = p_new_owner_id) >= 20 then
    raise exception 'a user pays for at most 20 organisations'
      using errcode = 'check_violation', constraint = 'organisations_max_per_owner';
  end if;
  perform 1 from public.bots b where b.organisation_id = p_organisation_id order by b.id for update;
  if exists (select 1 from public.trades t join public.bots b on b.id = t.bot_id
              where b.organisation_id = p_organisation_id and t.status = 'open')
     or exists (select 1 from public.position_requests r join public.bots b on b.id = r.bot_id
                 where b.organisation_id = p_organisation_id and r.status in ('pending', 'working'))
     -- An entry resting on the book: its credit hold is the old owner's, its fill the new one's.
     or exists (select 1 from public.orders o join public.bots b on b.id = o.bot_id
                 where b.organisation_id = p_organisation_id and o.status in ('pending', 'open')) then
    raise exception 'the organisation''s bots hold open positions, resting orders or pending requests, paid by the paying owner; close or cancel them first'
      using errcode = 'check_violation', constraint = 'organisations_transfer_open_positions';
  end if;
  -- Live bots trade with the paying owner's exchange keys, which stay theirs: they move to
  -- keys of the new owner on the same exchanges (live or testnet as before), which the new
  -- owner offered for the organisation (offer_exchange_keys_to_organisation). Moving what
  -- live bots trade with needs the caller's two-factor session, as any change of a live
  -- bot's key does.
  select array_agg(distinct b.exchange || case when c.is_testnet then ' (testnet)' else '' end order by
                   b.exchange || case when c.is_testnet then ' (testnet)' else '' end)
    into v_exchanges
    from public.bots b left join public.exchange_credentials c on c.id = b.exchange_credential_id
   where b.organisation_id = p_organisation_id and not b.is_paper_trade;
  if v_exchanges is not null then
    if coalesce(auth.jwt() ->> 'aal', 'aal1') <> 'aal2' then
      raise exception 'handing over live bots needs a session with two-factor authentication (aal2)'
        using errcode = 'insufficient_privilege', constraint = 'organisations_transfer_live_bots_aal2';
    end if;
    if not v_member.offers_exchange_keys then
      raise exception 'the organisation''s live bots (on %) trade with your exchange keys, which stay yours; the new owner first offers their own keys for them (offer_exchange_keys_to_organisation), or delete the bots or make them paper bots',
        array_to_string(v_exchanges, ', ')
        using errcode = 'check_violation', constraint = 'organisations_transfer_live_bots';
    end if;
    select array_agg(x order by x) into v_missing
      from unnest(v_exchanges) x
     where not exists (select 1 from public.exchange_credentials c
                        where c.user_id = p_new_owner_id
                          and c.exchange || case when c.is_testnet then ' (testnet)' else '' end = x);
    if v_missing is not null then
      raise exception 'the new owner has no exchange key on % for the organisation''s live bots; they add one first, or the bots are deleted or made paper bots',
        array_to_string(v_missing, ', ')
        using errcode = 'check_violation', constraint = 'organisations_transfer_exchange_keys';
    end if;
  end if;
  v_plan := private.current_plan(p_new_owner_id);
  select count(*) into v_n from public.bots b
   where b.user_id = p_new_owner_id or b.organisation_id = p_organisation_id;
  if v_n > v_plan.max_bots then
    perform private.raise_plan_limit(v_plan, 'max_bots', format('allows %s bots', v_plan.max_bots), v_n,
                                     'organisations_transfer_plan_max_bots');
  end if;
  select count(*) into v_n from public.strategies s
   where s.user_id = p_new_owner_id or s.organisation_id = p_organisation_id;
  if v_n > v_plan.max_strategies then
    perform private.raise_plan_limit(v_plan, 'max_strategies', format('allows %s strategies', v_plan.max_strategies),
                                     v_n, 'organisations_transfer_plan_max_strategies');
  end if;
  if not v_plan.custom_strategies
     and exists (select 1 from public.strategies s
                  where s.organisation_id = p_organisation_id and s.strategy_type = 'custom') then
    perform private.raise_plan_limit(v_plan, 'custom_strategies', 'does not include custom strategies', null,
                                     'organisations_transfer_plan_custom_strategies');
  end if;
  update public.organisations o set owner_id = p_new_owner_id where o.id = p_organisation_id returning * into v_org;
  update public.organisation_members m
     set role = case when m.user_id = p_new_owner_id then 'owner' else 'admin' end, updated_at = now()
   where m.organisation_id = p_organisation_id and m.user_id in (p_new_owner_id, v_uid);
  update public.strategies s set user_id = p_new_owner_id where s.organisation_id = p_organisation_id;
  -- The bots move to the new owner; live ones to the new owner's key on their exchange (the
  -- 'default' label first, then the oldest), and those running are paused: a person with a
  -- two-factor session starts them again on the new key.
  update public.bots b
     set user_id = p_new_owner_id,
         exchange_credential_id = coalesce(
           (select c.id from public.exchange_credentials c
             where not b.is_paper_trade and c.user_id = p_new_owner_id and c.exchange = b.exchange
               and c.is_testnet = coalesce((select o.is_testnet from public.exchange_credentials o
                                             where o.id = b.exchange_credential_id), false)
             order by c.label = 'default' desc, c.created_at, c.id
             limit 1),
           case when b.is_paper_trade then b.exchange_credential_id end),
         status = case when not b.is_paper_trade and b.status = 'running' then 'paused' else b.status end,
         status_reason = case when not b.is_paper_trade and b.status = 'running'
                              then 'the organisation was handed over: start the bot again to trade with its new paying owner''s exchange key'
                              else b.status_reason end
   where b.organisation_id = p_organisation_id;
  -- Copying a marketplace strategy into the organisation's bots was paid for by whoever
  -- subscribed; bots they no longer pay for stop copying (their subscriptions stay theirs,
  -- without the bot). The new owner subscribes with a bot of the organisation to copy again.
  update public.strategy_subscriptions ss
     set auto_execute = false, bot_id = null
   where ss.bot_id in (select b.id from public.bots b where b.organisation_id = p_organisation_id)
     and ss.subscriber_id <> p_new_owner_id;
  update public.bots b
     set status = 'paused', pause_cause = 'subscription',
         status_reason = 'the organisation''s new paying owner does not subscribe to this bot''s marketplace strategy'
   where b.organisation_id = p_organisation_id and b.status = 'running'
     and exists (select 1 from public.strategies s
                  where s.id = b.strategy_id and s.user_id <> p_new_owner_id
                    and not exists (select 1 from public.strategy_subscriptions ss
                                     where ss.strategy_id = s.id and ss.subscriber_id = p_new_owner_id
                                       and ss.status = 'active'));
  return v_org;
end;
$$;
ALTER FUNCTION public.transfer_organisation_ownership(p_organisation_id uuid, p_new_owner_id uuid) OWNER TO postgres;
CREATE FUNCTION public.update_bot_statistics() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  -- Each branch reads only the transition tables its event has.
  if tg_op = 'INSERT' then
    perform private.apply_bot_stat_deltas(array_agg(bot_id), array_agg(n), array_agg(w), array_agg(l), array_agg(p), array_agg(t))
      from (select bot_id, count(*) n, count(*) filter (where profit > 0) w, count(*) filter (where profit < 0) l,
                   sum(profit) p, max(coalesce(exit_time, entry_time)) t
              from new_rows where status = 'closed' group by bot_id) d;
  elsif tg_op = 'DELETE' then
    perform private.apply_bot_stat_deltas(array_agg(bot_id), array_agg(n), array_agg(w), array_agg(l), array_agg(p), array_agg(t))
      from (select bot_id, -count(*) n, -count(*) filter (where profit > 0) w, -count(*) filter (where profit < 0) l,
                   -sum(profit) p, null::timestamptz t
              from old_rows where status = 'closed' group by bot_id) d;
  else
    perform private.apply_bot_stat_deltas(array_agg(bot_id), array_agg(n), array_agg(w), array_agg(l), array_agg(p), array_agg(t))
      from (select bot_id, sum(s) n, sum(s * (profit > 0)::int) w, sum(s * (profit < 0)::int) l,
                   sum(s * profit) p, max(at) t
              from (select bot_id, 1 s, profit, coalesce(exit_time, entry_time) at from new_rows where status = 'closed'
                    union all
                    select bot_id, -1, profit, null from old_rows where status = 'closed') c
             group by bot_id) d;
  end if;
  return null;
end;
$$;
ALTER FUNCTION public.update_bot_statistics() OWNER TO postgres;
CREATE FUNCTION public.webhook_rate_take(p_source text, p_per_minute integer) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  v_rate record;
begin
  if not private.is_service() then
    raise exception 'only the service limits webhooks' using errcode = 'insufficient_privilege';
  end if;
  if p_source is null or char_length(p_source) not between 1 and 200 or p_per_minute is null
     or p_per_minute not between 1 and 1000000 then
    raise exception 'source must be 1 to 200 characters and the limit 1 to 1000000 a minute'
      using errcode = 'invalid_parameter_value';
  end if;
  perform set_config('synchronous_commit', 'off', true);
  select * into v_rate from private.rate_limit_take('webhook:' || p_source, p_per_minute, interval '1 minute');
  return jsonb_build_object('allowed', v_rate.allowed, 'limit', p_per_minute, 'remaining', v_rate.remaining,
                            'reset', v_rate.reset_seconds, 'retry_after', v_rate.retry_after_seconds);
end;
$$;
ALTER FUNCTION public.webhook_rate_take(p_source text, p_per_minute integer) OWNER TO postgres;
CREATE FUNCTION public.worker_heartbeat(p_worker_id uuid, p_lock_s double precision DEFAULT 30, p_job_ids bigint[] DEFAULT '{}'::bigint[]) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  v_status text;
begin
  update public.workers w
  set heartbeat_at = now(),
      status = case when w.status in ('dead', 'stopped') then 'running' else w.status end,
      stopped_at = case when w.status in ('dead', 'stopped') then null else w.stopped_at end
  where w.id = p_worker_id
  returning w.status into v_status;
  if v_status is not null and cardinality(p_job_ids) > 0 then
    perform 1 from public.jobs j
    where j.id = any (p_job_ids) and j.locked_by = p_worker_id and j.status = 'running'
    order by j.id
    for update;
    update public.jobs j
    set locked_until = now() + make_interval(secs => p_lock_s), updated_at = now()
    where j.id = any (p_job_ids) and j.locked_by = p_worker_id and j.status = 'running';
  end if;
  return v_status;
end;
$$;
ALTER FUNCTION public.worker_heartbeat(p_worker_id uuid, p_lock_s double precision, p_job_ids bigint[]) OWNER TO postgres;
CREATE TABLE auth.users (
    instance_id uuid,
    id uuid NOT NULL,
    aud character varying(255),
    role character varying(255),
    email character varying(255),
    encrypted_password character varying(255),
    email_confirmed_at timestamp with time zone,
    invited_at timestamp with time zone,
    confirmation_token character varying(255),
    confirmation_sent_at timestamp with time zone,
    recovery_token character varying(255),
    recovery_sent_at timestamp with time zone,
    email_change_token_new character varying(255),
    email_change character varying(255),
    email_change_sent_at timestamp with time zone,
    last_sign_in_at timestamp with time zone,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    phone text,
    phone_confirmed_at timestamp with time zone,
    phone_change text DEFAULT ''::text,
    phone_change_token character varying(255) DEFAULT ''::character varying,
    phone_change_sent_at timestamp with time zone,
    confirmed_at timestamp with time zone GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
    email_change_token_current character varying(255) DEFAULT ''::character varying,
    email_change_confirm_status smallint DEFAULT 0,
    banned_until timestamp with time zone,
    reauthentication_token character varying(255) DEFAULT ''::character varying,
    reauthentication_sent_at timestamp with time zone,
    is_sso_user boolean DEFAULT false NOT NULL,
    deleted_at timestamp with time zone,
    is_anonymous boolean DEFAULT false NOT NULL,
    CONSTRAINT users_email_change_confirm_status_check CHECK (((email_change_confirm_status >= 0) AND (email_change_confirm_status <= 2)))
);
ALTER TABLE auth.users OWNER TO supabase_auth_admin;
CREATE TABLE public.api_usage_minutes (
    key_id uuid NOT NULL,
    user_id uuid NOT NULL,
    minute timestamp with time zone NOT NULL,
    endpoint text NOT NULL,
    status smallint NOT NULL,
    calls integer NOT NULL,
    latency_ms_sum bigint NOT NULL,
    latency_ms_max integer NOT NULL
)
PARTITION BY RANGE (minute);
ALTER TABLE public.api_usage_minutes OWNER TO postgres;
CREATE TABLE public.bot_logs (
    id bigint NOT NULL,
    user_id uuid NOT NULL,
    bot_id uuid,
    strategy_id uuid,
    log_level text NOT NULL,
    message text NOT NULL,
    context jsonb DEFAULT '{}'::jsonb NOT NULL,
    source text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT bot_logs_level_known CHECK ((log_level = ANY (ARRAY['debug'::text, 'info'::text, 'warning'::text, 'error'::text])))
)
PARTITION BY RANGE (created_at);
ALTER TABLE public.bot_logs OWNER TO postgres;
CREATE TABLE public.candles (
    exchange text NOT NULL,
    symbol text NOT NULL,
    timeframe text NOT NULL,
    open_time timestamp with time zone NOT NULL,
    open numeric(28,12) NOT NULL,
    high numeric(28,12) NOT NULL,
    low numeric(28,12) NOT NULL,
    close numeric(28,12) NOT NULL,
    volume numeric(32,12) DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT candles_close_finite CHECK ((close <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT candles_high_finite CHECK ((high <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT candles_high_low_consistent CHECK (((high >= low) AND (high >= open) AND (high >= close) AND (low <= open) AND (low <= close))),
    CONSTRAINT candles_low_finite CHECK ((low <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT candles_open_finite CHECK ((open <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT candles_volume_finite CHECK ((volume <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric])))
)
PARTITION BY RANGE (open_time);
ALTER TABLE public.candles OWNER TO postgres;
CREATE TABLE public.notifications (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    kind text NOT NULL,
    title text NOT NULL,
    body text,
    data jsonb DEFAULT '{}'::jsonb NOT NULL,
    channels jsonb DEFAULT '{}'::jsonb NOT NULL,
    read_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT notifications_kind_known CHECK ((kind = ANY (ARRAY['signal'::text, 'fill'::text, 'error'::text, 'low_credits'::text, 'payment'::text, 'sync'::text, 'system'::text])))
)
PARTITION BY RANGE (created_at);
ALTER TABLE public.notifications OWNER TO postgres;
CREATE TABLE private.api_calls (
    id bigint NOT NULL,
    key_id uuid NOT NULL,
    user_id uuid NOT NULL,
    endpoint text NOT NULL,
    status smallint NOT NULL,
    latency_ms integer NOT NULL,
    called_at timestamp with time zone NOT NULL
);
ALTER TABLE private.api_calls OWNER TO postgres;
ALTER TABLE private.api_calls ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME private.api_calls_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE private.api_key_secret (
    id boolean DEFAULT true NOT NULL,
    secret bytea DEFAULT extensions.gen_random_bytes(32) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT api_key_secret_one_row CHECK (id)
);
ALTER TABLE private.api_key_secret OWNER TO postgres;
CREATE TABLE private.billing_chargebacks (
    invoice_id uuid NOT NULL,
    dispute_ref text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE private.billing_chargebacks OWNER TO postgres;
CREATE TABLE private.billing_clawback_parts (
    invoice_id uuid NOT NULL,
    payment_transfer_id uuid NOT NULL,
    attributed numeric(24,8) NOT NULL,
    CONSTRAINT billing_clawback_parts_attributed_check CHECK ((attributed > (0)::numeric))
);
ALTER TABLE private.billing_clawback_parts OWNER TO postgres;
CREATE TABLE private.billing_payment_methods (
    user_id uuid NOT NULL,
    provider text NOT NULL,
    customer text,
    authorization_code text,
    email text,
    channel text,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT billing_payment_methods_provider_check CHECK ((provider = ANY (ARRAY['stripe'::text, 'paystack'::text, 'tripay'::text])))
);
ALTER TABLE private.billing_payment_methods OWNER TO postgres;
CREATE TABLE private.billing_refunds (
    invoice_id uuid NOT NULL,
    refund_ref text NOT NULL,
    amount numeric(24,8) NOT NULL,
    cumulative boolean NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT billing_refunds_amount_check CHECK ((amount > (0)::numeric))
);
ALTER TABLE private.billing_refunds OWNER TO postgres;
CREATE TABLE private.billing_reminders (
    subscription_id uuid NOT NULL,
    period_end timestamp with time zone NOT NULL,
    days_before integer NOT NULL,
    sent_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE private.billing_reminders OWNER TO postgres;
CREATE TABLE private.bots_legacy_values (
    bot_id uuid NOT NULL,
    field text NOT NULL,
    value jsonb,
    repaired_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE private.bots_legacy_values OWNER TO postgres;
CREATE TABLE private.candle_empty_ranges (
    exchange text NOT NULL,
    symbol text NOT NULL,
    timeframe text NOT NULL,
    empty_from timestamp with time zone NOT NULL,
    empty_until timestamp with time zone NOT NULL,
    recorded_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT candle_empty_ranges_ordered CHECK ((empty_from < empty_until))
);
ALTER TABLE private.candle_empty_ranges OWNER TO postgres;
COMMENT ON TABLE private.candle_empty_ranges IS 'Periods [empty_from, empty_until) in which the exchange had no candle of the market, found by downloads';
CREATE TABLE private.credit_delegations (
    xact xid8 NOT NULL,
    purpose text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE private.credit_delegations OWNER TO postgres;
CREATE TABLE private.credit_open_holds (
    transfer_id uuid NOT NULL,
    timeout_at timestamp with time zone
);
ALTER TABLE private.credit_open_holds OWNER TO postgres;
CREATE TABLE private.credit_settings (
    id boolean DEFAULT true NOT NULL,
    min_payout numeric(24,8) DEFAULT 50 NOT NULL,
    default_hold_timeout interval DEFAULT '00:15:00'::interval NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credit_settings_min_payout_finite CHECK ((min_payout <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_settings_min_payout_positive CHECK ((min_payout > (0)::numeric)),
    CONSTRAINT credit_settings_single_row CHECK (id)
);
ALTER TABLE private.credit_settings OWNER TO postgres;
CREATE TABLE private.history_partitions (
    table_name text NOT NULL,
    partition_key text NOT NULL,
    step interval DEFAULT '7 days'::interval NOT NULL,
    ahead interval DEFAULT '7 days'::interval NOT NULL,
    fill_from_default boolean DEFAULT false NOT NULL,
    kept text,
    CONSTRAINT history_partitions_ahead_range CHECK (((ahead >= '1 day'::interval) AND (ahead <= '366 days'::interval))),
    CONSTRAINT history_partitions_step_days CHECK (((step = '1 mon'::interval) OR ((step >= '1 day'::interval) AND (step <= '31 days'::interval) AND (((date_part('epoch'::text, step))::bigint % (86400)::bigint) = 0) AND (date_part('month'::text, step) = (0)::double precision))))
);
ALTER TABLE private.history_partitions OWNER TO postgres;
COMMENT ON COLUMN private.history_partitions.fill_from_default IS 'Rows waiting in the default partition get a partition of their own range from create_history_partitions.';
CREATE TABLE private.holdings_pending_aggregates (
    user_id uuid NOT NULL,
    job_id bigint,
    requested_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE private.holdings_pending_aggregates OWNER TO postgres;
CREATE TABLE private.password_failures (
    user_id uuid NOT NULL,
    failures integer DEFAULT 0 NOT NULL,
    first_failed_at timestamp with time zone DEFAULT now() NOT NULL,
    locked_until timestamp with time zone
);
ALTER TABLE private.password_failures OWNER TO postgres;
CREATE TABLE private.payout_settings (
    id boolean DEFAULT true NOT NULL,
    auto_approve_max numeric(24,8) DEFAULT 500 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT payout_settings_auto_approve_max_not_negative CHECK ((auto_approve_max >= (0)::numeric)),
    CONSTRAINT payout_settings_single_row CHECK (id)
);
ALTER TABLE private.payout_settings OWNER TO postgres;
CREATE UNLOGGED TABLE private.rate_limit_buckets (
    bucket text NOT NULL,
    tat timestamp with time zone NOT NULL
)
WITH (fillfactor='50');
ALTER TABLE private.rate_limit_buckets OWNER TO postgres;
CREATE TABLE private.signal_fanouts (
    signal_id uuid NOT NULL,
    phase text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE private.signal_fanouts OWNER TO postgres;
CREATE TABLE private.strategy_subscriptions_legacy_sizing (
    subscription_id uuid NOT NULL,
    sizing jsonb,
    repaired_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE private.strategy_subscriptions_legacy_sizing OWNER TO postgres;
CREATE TABLE private.trade_daily_totals (
    day date NOT NULL,
    quote text NOT NULL,
    shard smallint NOT NULL,
    trades bigint DEFAULT 0 NOT NULL,
    volume numeric DEFAULT 0 NOT NULL
);
ALTER TABLE private.trade_daily_totals OWNER TO postgres;
CREATE TABLE private.tradingview_tokens (
    strategy_id uuid NOT NULL,
    token_hash bytea NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE private.tradingview_tokens OWNER TO postgres;
CREATE TABLE public.brokerage_positions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    account_id uuid NOT NULL,
    user_id uuid NOT NULL,
    symbol text NOT NULL,
    description text,
    instrument_type text,
    units numeric(28,12) NOT NULL,
    price numeric(28,12),
    average_cost numeric(28,12),
    currency text DEFAULT 'USD'::text NOT NULL,
    provider_as_of timestamp with time zone DEFAULT now() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT brokerage_positions_average_cost_finite CHECK ((average_cost <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT brokerage_positions_price_finite CHECK ((price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT brokerage_positions_units_finite CHECK ((units <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric])))
);
ALTER TABLE public.brokerage_positions OWNER TO postgres;
CREATE VIEW private.watched_symbols WITH (security_invoker='true') AS
 SELECT bp.symbol,
    'brokerage'::text AS source,
    count(DISTINCT bp.user_id) AS holders
   FROM public.brokerage_positions bp
  GROUP BY bp.symbol
UNION ALL
 SELECT b.trading_pair AS symbol,
    'bot'::text AS source,
    count(DISTINCT b.user_id) AS holders
   FROM public.bots b
  WHERE (b.status = 'running'::text)
  GROUP BY b.trading_pair;
ALTER TABLE private.watched_symbols OWNER TO postgres;
CREATE TABLE private.webhook_event_keys (
    provider text NOT NULL,
    event_id text NOT NULL,
    id uuid NOT NULL,
    received_at timestamp with time zone NOT NULL
);
ALTER TABLE private.webhook_event_keys OWNER TO postgres;
CREATE TABLE public.aggregated_holdings (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    symbol text NOT NULL,
    currency text DEFAULT 'USD'::text NOT NULL,
    total_units numeric(28,12) NOT NULL,
    market_value numeric(24,8),
    average_cost numeric(28,12),
    unrealized_pnl numeric(24,8),
    account_ids uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    account_count integer DEFAULT 0 NOT NULL,
    last_price numeric(28,12),
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT aggregated_holdings_average_cost_finite CHECK ((average_cost <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT aggregated_holdings_last_price_finite CHECK ((last_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT aggregated_holdings_market_value_finite CHECK ((market_value <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT aggregated_holdings_total_units_finite CHECK ((total_units <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT aggregated_holdings_unrealized_pnl_finite CHECK ((unrealized_pnl <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric])))
);
ALTER TABLE public.aggregated_holdings OWNER TO postgres;
CREATE TABLE public.alert_incidents (
    id bigint NOT NULL,
    rule text NOT NULL,
    key text DEFAULT ''::text NOT NULL,
    summary text NOT NULL,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    opened_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    notified_at timestamp with time zone,
    resolved_at timestamp with time zone,
    recovery_notified_at timestamp with time zone,
    CONSTRAINT alert_incidents_key_length CHECK ((char_length(key) <= 200)),
    CONSTRAINT alert_incidents_rule_format CHECK ((rule ~ '^[a-z][a-z_]{0,63}$'::text)),
    CONSTRAINT alert_incidents_summary_length CHECK ((char_length(summary) <= 2000))
);
ALTER TABLE public.alert_incidents OWNER TO postgres;
ALTER TABLE public.alert_incidents ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.alert_incidents_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE public.api_keys (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid,
    name text NOT NULL,
    environment text NOT NULL,
    prefix text NOT NULL,
    key_hash bytea NOT NULL,
    scopes text[] NOT NULL,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone,
    last_used_at timestamp with time zone,
    last_used_ip inet,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    organisation_id uuid
)
WITH (fillfactor='70');
ALTER TABLE public.api_keys OWNER TO postgres;
CREATE TABLE public.api_usage_days (
    key_id uuid NOT NULL,
    user_id uuid NOT NULL,
    day date NOT NULL,
    calls bigint NOT NULL,
    errors bigint NOT NULL,
    latency_ms_sum bigint NOT NULL,
    billed_calls bigint,
    credits_charged numeric(24,8),
    billed_at timestamp with time zone,
    billing_error text
);
ALTER TABLE public.api_usage_days OWNER TO postgres;
CREATE VIEW public.api_usage_per_day WITH (security_invoker='true') AS
 SELECT d.key_id,
    k.name AS key_name,
    k.prefix AS key_prefix,
    d.user_id,
    d.day,
    d.calls,
    d.errors,
    round(((d.latency_ms_sum)::numeric / (NULLIF(d.calls, 0))::numeric), 1) AS latency_ms_avg,
    d.billed_calls,
    d.credits_charged,
    d.billed_at
   FROM (public.api_usage_days d
     JOIN public.api_keys k ON ((k.id = d.key_id)));
ALTER TABLE public.api_usage_per_day OWNER TO postgres;
CREATE VIEW public.api_usage_per_minute WITH (security_invoker='true') AS
 SELECT m.key_id,
    k.name AS key_name,
    k.prefix AS key_prefix,
    m.user_id,
    m.minute,
    m.endpoint,
    m.status,
    m.calls,
    round(((m.latency_ms_sum)::numeric / (NULLIF(m.calls, 0))::numeric), 1) AS latency_ms_avg,
    m.latency_ms_max
   FROM (public.api_usage_minutes m
     JOIN public.api_keys k ON ((k.id = m.key_id)));
ALTER TABLE public.api_usage_per_minute OWNER TO postgres;
CREATE TABLE public.backtest_reports (
    run_id uuid NOT NULL,
    user_id uuid NOT NULL,
    html text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE public.backtest_reports OWNER TO postgres;
CREATE TABLE public.backtest_results (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    run_id uuid,
    strategy_id uuid,
    user_id uuid NOT NULL,
    trading_pair text NOT NULL,
    timeframe text NOT NULL,
    start_date timestamp with time zone NOT NULL,
    end_date timestamp with time zone NOT NULL,
    initial_balance numeric(20,8) NOT NULL,
    final_balance numeric(20,8) NOT NULL,
    total_return numeric(20,8) NOT NULL,
    total_return_percentage numeric(12,4) NOT NULL,
    max_drawdown numeric(12,4) NOT NULL,
    sharpe_ratio numeric(12,4),
    sortino_ratio numeric(12,4),
    win_rate numeric(5,2) NOT NULL,
    profit_factor numeric(12,4),
    total_trades integer NOT NULL,
    winning_trades integer NOT NULL,
    losing_trades integer NOT NULL,
    best_trade numeric(20,8) NOT NULL,
    worst_trade numeric(20,8) NOT NULL,
    avg_trade numeric(20,8),
    max_consecutive_wins integer DEFAULT 0 NOT NULL,
    max_consecutive_losses integer DEFAULT 0 NOT NULL,
    calmar_ratio numeric(12,4),
    stats jsonb DEFAULT '{}'::jsonb NOT NULL,
    trades jsonb DEFAULT '[]'::jsonb NOT NULL,
    equity_curve jsonb DEFAULT '[]'::jsonb NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT backtest_results_avg_trade_finite CHECK ((avg_trade <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_best_trade_finite CHECK ((best_trade <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_calmar_ratio_finite CHECK ((calmar_ratio <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_final_balance_finite CHECK ((final_balance <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_initial_balance_finite CHECK ((initial_balance <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_max_drawdown_finite CHECK ((max_drawdown <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_profit_factor_finite CHECK ((profit_factor <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_sharpe_ratio_finite CHECK ((sharpe_ratio <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_sortino_ratio_finite CHECK ((sortino_ratio <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_total_return_finite CHECK ((total_return <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_total_return_percentage_finite CHECK ((total_return_percentage <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_win_rate_finite CHECK ((win_rate <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT backtest_results_worst_trade_finite CHECK ((worst_trade <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric])))
);
ALTER TABLE public.backtest_results OWNER TO postgres;
CREATE TABLE public.bot_equity (
    bot_id uuid NOT NULL,
    user_id uuid NOT NULL,
    candle_at timestamp with time zone NOT NULL,
    price numeric(28,12),
    position_amount numeric(28,12) DEFAULT 0 NOT NULL,
    unrealized_pnl numeric(28,12) DEFAULT 0 NOT NULL,
    realized_pnl numeric(28,12) DEFAULT 0 NOT NULL,
    equity numeric(28,12) NOT NULL,
    lease_epoch bigint,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
)
WITH (fillfactor='50');
ALTER TABLE public.bot_equity OWNER TO postgres;
CREATE TABLE public.bot_leases (
    bot_id uuid NOT NULL,
    worker_id uuid,
    epoch bigint DEFAULT 1 NOT NULL,
    acquired_at timestamp with time zone DEFAULT now() NOT NULL,
    renewed_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    last_worker_id uuid,
    taken_over_at timestamp with time zone,
    taken_over_from uuid
);
ALTER TABLE public.bot_leases OWNER TO postgres;
ALTER TABLE public.bot_logs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.bot_logs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE VIEW public.bot_performance_summary WITH (security_invoker='true') AS
 SELECT b.id,
    b.user_id,
    b.strategy_id,
    b.exchange_credential_id,
    b.name,
    b.exchange,
    b.trading_pair,
    b.timeframe,
    b.strategy,
    b.parameters,
    b.status,
    b.initial_balance,
    b.current_balance,
    b.total_trades,
    b.winning_trades,
    b.losing_trades,
    b.profit,
    b.profit_percentage,
    b.max_open_trades,
    b.stake_amount,
    b.stop_loss,
    b.take_profit,
    b.risk_percentage,
    b.daily_loss_limit,
    b.leverage,
    b.allow_short,
    b.is_paper_trade,
    b.last_trade_at,
    b.error_message,
    b.status_reason,
    b.metadata,
    b.created_at,
    b.updated_at,
        CASE
            WHEN (b.total_trades > 0) THEN round((((b.winning_trades)::numeric / (b.total_trades)::numeric) * (100)::numeric), 2)
            ELSE (0)::numeric
        END AS win_rate_percentage,
    p.email AS user_email,
    p.full_name AS user_name
   FROM (public.bots b
     JOIN public.profiles p ON ((p.id = b.user_id)));
ALTER TABLE public.bot_performance_summary OWNER TO postgres;
CREATE TABLE public.brokerage_accounts (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    connection_id uuid NOT NULL,
    user_id uuid NOT NULL,
    provider_account_id text NOT NULL,
    name text,
    number_masked text,
    institution_name text,
    currency text DEFAULT 'USD'::text NOT NULL,
    total_value numeric(24,8),
    cash numeric(24,8),
    provider_as_of timestamp with time zone,
    last_synced_at timestamp with time zone,
    sync_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT brokerage_accounts_cash_finite CHECK ((cash <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT brokerage_accounts_total_value_finite CHECK ((total_value <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric])))
);
ALTER TABLE public.brokerage_accounts OWNER TO postgres;
CREATE TABLE public.brokerage_connections (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    provider text NOT NULL,
    provider_user_id text,
    provider_connection_id text,
    sealed_user_secret text,
    brokerage_name text,
    status text DEFAULT 'pending'::text NOT NULL,
    status_reason text,
    last_synced_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    status_event_at timestamp with time zone,
    CONSTRAINT brokerage_connections_provider_known CHECK ((provider = ANY (ARRAY['snaptrade'::text, 'alpaca'::text]))),
    CONSTRAINT brokerage_connections_status_known CHECK ((status = ANY (ARRAY['pending'::text, 'active'::text, 'broken'::text, 'deleted'::text])))
);
ALTER TABLE public.brokerage_connections OWNER TO postgres;
CREATE TABLE public.credit_packs (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    credits numeric(20,8) NOT NULL,
    price numeric(12,2) NOT NULL,
    currency text DEFAULT 'USD'::text NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    sort_order integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT credit_packs_credits_finite CHECK ((credits <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_packs_credits_positive CHECK ((credits > (0)::numeric)),
    CONSTRAINT credit_packs_currency_code CHECK ((currency ~ '^[A-Z]{3}$'::text)),
    CONSTRAINT credit_packs_price_finite CHECK ((price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT credit_packs_price_positive CHECK ((price > (0)::numeric))
);
ALTER TABLE public.credit_packs OWNER TO postgres;
CREATE TABLE public.data_requests (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid DEFAULT auth.uid() NOT NULL,
    exchange text DEFAULT 'binance'::text NOT NULL,
    trading_pair text NOT NULL,
    timeframe text NOT NULL,
    start_date timestamp with time zone NOT NULL,
    end_date timestamp with time zone,
    status text DEFAULT 'queued'::text NOT NULL,
    progress numeric(5,4) DEFAULT 0 NOT NULL,
    candles_stored integer,
    missing_candles integer,
    gaps jsonb,
    error text,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    idempotency_key text,
    CONSTRAINT data_requests_exchange_format CHECK ((exchange ~ '^[a-z0-9_]{1,40}$'::text)),
    CONSTRAINT data_requests_idempotency_key_length CHECK (((char_length(idempotency_key) >= 1) AND (char_length(idempotency_key) <= 200))),
    CONSTRAINT data_requests_period_ordered CHECK (((end_date IS NULL) OR (end_date > start_date))),
    CONSTRAINT data_requests_progress_check CHECK (((progress >= (0)::numeric) AND (progress <= (1)::numeric))),
    CONSTRAINT data_requests_status_known CHECK ((status = ANY (ARRAY['queued'::text, 'running'::text, 'completed'::text, 'failed'::text]))),
    CONSTRAINT data_requests_timeframe_supported CHECK ((timeframe = ANY (ARRAY['1m'::text, '5m'::text, '15m'::text, '30m'::text, '1h'::text, '4h'::text, '1d'::text]))),
    CONSTRAINT data_requests_trading_pair_format CHECK ((trading_pair ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'::text))
);
ALTER TABLE public.data_requests OWNER TO postgres;
CREATE TABLE public.exchange_credentials (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid NOT NULL,
    exchange text NOT NULL,
    label text DEFAULT 'default'::text NOT NULL,
    sealed_secret text NOT NULL,
    key_id text NOT NULL,
    api_key_hint text,
    is_testnet boolean DEFAULT false NOT NULL,
    last_used_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT exchange_credentials_exchange_format CHECK ((exchange ~ '^[a-z0-9]{2,32}$'::text))
);
ALTER TABLE public.exchange_credentials OWNER TO postgres;
CREATE TABLE public.exchange_market_loads (
    exchange text NOT NULL,
    loaded_at timestamp with time zone,
    markets integer DEFAULT 0 NOT NULL,
    refresh_started_at timestamp with time zone,
    last_error text,
    CONSTRAINT exchange_market_loads_error_length CHECK ((char_length(last_error) <= 2000)),
    CONSTRAINT exchange_market_loads_exchange_format CHECK ((exchange ~ '^[a-z0-9]{2,32}$'::text))
);
ALTER TABLE public.exchange_market_loads OWNER TO postgres;
CREATE TABLE public.exchange_markets (
    exchange text NOT NULL,
    symbol text NOT NULL,
    market_id text,
    base text NOT NULL,
    quote text NOT NULL,
    settle text,
    type text NOT NULL,
    active boolean DEFAULT true NOT NULL,
    contract boolean DEFAULT false NOT NULL,
    linear boolean,
    inverse boolean,
    contract_size numeric,
    amount_precision numeric,
    price_precision numeric,
    min_amount numeric,
    max_amount numeric,
    min_cost numeric,
    max_cost numeric,
    min_price numeric,
    max_price numeric,
    max_leverage numeric,
    maker numeric,
    taker numeric,
    market jsonb NOT NULL,
    delisted_at timestamp with time zone,
    fetched_at timestamp with time zone NOT NULL,
    CONSTRAINT exchange_markets_exchange_format CHECK ((exchange ~ '^[a-z0-9]{2,32}$'::text)),
    CONSTRAINT exchange_markets_market_object CHECK ((jsonb_typeof(market) = 'object'::text)),
    CONSTRAINT exchange_markets_symbol_length CHECK (((char_length(symbol) >= 3) AND (char_length(symbol) <= 100))),
    CONSTRAINT exchange_markets_type_known CHECK ((type = ANY (ARRAY['spot'::text, 'margin'::text, 'swap'::text, 'future'::text, 'option'::text])))
);
ALTER TABLE public.exchange_markets OWNER TO postgres;
CREATE TABLE public.workers (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    version text NOT NULL,
    queues text[] DEFAULT '{default}'::text[] NOT NULL,
    capacity integer DEFAULT 1000 NOT NULL,
    status text DEFAULT 'running'::text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp with time zone DEFAULT now() NOT NULL,
    stopped_at timestamp with time zone,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT workers_capacity_positive CHECK ((capacity > 0)),
    CONSTRAINT workers_status_known CHECK ((status = ANY (ARRAY['running'::text, 'draining'::text, 'stopped'::text, 'dead'::text])))
);
ALTER TABLE public.workers OWNER TO postgres;
CREATE VIEW public.fleet_health WITH (security_invoker='true') AS
 SELECT w.id,
    w.name,
    w.host,
    w.pid,
    w.version,
    w.status,
    w.queues,
    w.capacity,
    w.started_at,
    w.heartbeat_at,
    (EXTRACT(epoch FROM (now() - w.heartbeat_at)))::double precision AS heartbeat_age_s,
    ( SELECT count(*) AS count
           FROM public.jobs j
          WHERE ((j.locked_by = w.id) AND (j.status = 'running'::text))) AS running_jobs,
    ( SELECT count(*) AS count
           FROM public.bot_leases l
          WHERE ((l.worker_id = w.id) AND (l.expires_at > now()))) AS leased_bots,
    COALESCE(( SELECT (EXTRACT(epoch FROM (now() - min(j.run_at))))::double precision AS "extract"
           FROM public.jobs j
          WHERE ((j.status = 'queued'::text) AND (j.run_at <= now()) AND (j.queue = ANY (w.queues)))), (0)::double precision) AS queue_lag_s
   FROM public.workers w
  WHERE ((w.status = ANY (ARRAY['running'::text, 'draining'::text])) OR (w.heartbeat_at > (now() - '1 day'::interval)));
ALTER TABLE public.fleet_health OWNER TO postgres;
CREATE VIEW public.job_queue_stats WITH (security_invoker='true') AS
 SELECT j.queue,
    j.kind,
    count(*) FILTER (WHERE ((j.status = 'queued'::text) AND (j.run_at <= now()))) AS ready,
    count(*) FILTER (WHERE ((j.status = 'queued'::text) AND (j.run_at > now()))) AS scheduled,
    count(*) FILTER (WHERE ((j.status = 'queued'::text) AND (j.last_error IS NOT NULL))) AS failed,
    count(*) FILTER (WHERE (j.status = 'running'::text)) AS running,
    count(*) FILTER (WHERE (j.status = 'dead'::text)) AS dead,
    count(*) FILTER (WHERE (j.status = 'succeeded'::text)) AS succeeded,
    min(j.run_at) FILTER (WHERE ((j.status = 'queued'::text) AND (j.run_at <= now()))) AS oldest_ready_at,
    (COALESCE(EXTRACT(epoch FROM (now() - min(j.run_at) FILTER (WHERE ((j.status = 'queued'::text) AND (j.run_at <= now()))))), (0)::numeric))::double precision AS oldest_ready_age_s,
    (array_agg(j.last_error ORDER BY j.updated_at DESC) FILTER (WHERE (j.status = 'dead'::text)))[1] AS last_dead_error
   FROM public.jobs j
  GROUP BY j.queue, j.kind;
ALTER TABLE public.job_queue_stats OWNER TO postgres;
ALTER TABLE public.jobs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.jobs_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE public.market_latest_candles (
    exchange text NOT NULL,
    symbol text NOT NULL,
    timeframe text NOT NULL,
    open_time timestamp with time zone NOT NULL,
    open numeric(28,12) NOT NULL,
    high numeric(28,12) NOT NULL,
    low numeric(28,12) NOT NULL,
    close numeric(28,12) NOT NULL,
    volume numeric(32,12) DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE public.market_latest_candles OWNER TO postgres;
COMMENT ON TABLE public.market_latest_candles IS 'The latest stored candle of each market (exchange, symbol, timeframe), kept from candles by a trigger; published through Realtime.';
CREATE TABLE public.orders (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    bot_id uuid NOT NULL,
    user_id uuid NOT NULL,
    client_order_id text NOT NULL,
    exchange_order_id text,
    exchange text NOT NULL,
    symbol text NOT NULL,
    side text NOT NULL,
    order_type text NOT NULL,
    amount numeric(28,12) NOT NULL,
    price numeric(28,12),
    stop_price numeric(28,12),
    filled numeric(28,12) DEFAULT 0 NOT NULL,
    average_price numeric(28,12),
    fee numeric(28,12) DEFAULT 0 NOT NULL,
    fee_currency text,
    status text DEFAULT 'pending'::text NOT NULL,
    reason text,
    is_paper_trade boolean DEFAULT true NOT NULL,
    lease_epoch bigint NOT NULL,
    signal_id uuid,
    raw jsonb,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    decided_at timestamp with time zone,
    CONSTRAINT orders_amount_finite CHECK ((amount <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT orders_amount_positive CHECK ((amount > (0)::numeric)),
    CONSTRAINT orders_average_price_finite CHECK ((average_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT orders_fee_finite CHECK ((fee <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT orders_filled_check CHECK ((filled >= (0)::numeric)),
    CONSTRAINT orders_filled_finite CHECK ((filled <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT orders_price_finite CHECK ((price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT orders_price_positive CHECK ((price > (0)::numeric)),
    CONSTRAINT orders_side_known CHECK ((side = ANY (ARRAY['buy'::text, 'sell'::text]))),
    CONSTRAINT orders_status_known CHECK ((status = ANY (ARRAY['pending'::text, 'open'::text, 'closed'::text, 'canceled'::text, 'rejected'::text, 'expired'::text]))),
    CONSTRAINT orders_stop_price_finite CHECK ((stop_price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT orders_stop_price_positive CHECK ((stop_price > (0)::numeric)),
    CONSTRAINT orders_type_known CHECK ((order_type = ANY (ARRAY['market'::text, 'limit'::text, 'stop'::text, 'stop_limit'::text])))
);
ALTER TABLE public.orders OWNER TO postgres;
COMMENT ON COLUMN public.orders.decided_at IS 'Open time of the candle whose close decided this order (null: a copy of a signal, or older rows).';
CREATE TABLE public.symbol_prices (
    symbol text NOT NULL,
    price numeric(28,12) NOT NULL,
    previous_close numeric(28,12),
    currency text DEFAULT 'USD'::text NOT NULL,
    source text NOT NULL,
    as_of timestamp with time zone NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT symbol_prices_previous_close_finite CHECK ((previous_close <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT symbol_prices_previous_close_positive CHECK ((previous_close > (0)::numeric)),
    CONSTRAINT symbol_prices_price_finite CHECK ((price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT symbol_prices_price_positive CHECK ((price > (0)::numeric))
);
ALTER TABLE public.symbol_prices OWNER TO postgres;
CREATE VIEW public.portfolio_holdings WITH (security_invoker='true') AS
 SELECT h.user_id,
    h.symbol,
    h.currency,
    h.total_units,
    h.average_cost,
    h.account_count,
    h.account_ids,
    COALESCE(sp.price, h.last_price) AS price,
    sp.previous_close,
    (h.total_units * COALESCE(sp.price, h.last_price)) AS market_value,
    (h.total_units * (COALESCE(sp.price, h.last_price) - h.average_cost)) AS unrealized_pnl,
    (h.total_units * (sp.price - sp.previous_close)) AS day_change,
    GREATEST(h.updated_at, sp.updated_at) AS updated_at
   FROM (public.aggregated_holdings h
     LEFT JOIN public.symbol_prices sp ON ((sp.symbol = h.symbol)));
ALTER TABLE public.portfolio_holdings OWNER TO postgres;
CREATE VIEW public.portfolio_value WITH (security_invoker='true') AS
 WITH held AS (
         SELECT ph.user_id,
            sum(ph.market_value) AS market_value,
            sum(ph.unrealized_pnl) AS unrealized_pnl,
            COALESCE(sum(ph.day_change), (0)::numeric) AS day_change,
            round((((100)::numeric * sum(ph.day_change)) / NULLIF(sum((ph.total_units * ph.previous_close)), (0)::numeric)), 4) AS day_change_percent,
            count(*) AS holdings_count,
            max(ph.updated_at) AS updated_at
           FROM public.portfolio_holdings ph
          GROUP BY ph.user_id
        ), cash AS (
         SELECT a.user_id,
            sum(a.cash) AS cash,
            max(a.updated_at) AS updated_at
           FROM (public.brokerage_accounts a
             JOIN public.brokerage_connections c_1 ON ((c_1.id = a.connection_id)))
          WHERE ((c_1.status <> 'deleted'::text) AND (a.cash IS NOT NULL))
          GROUP BY a.user_id
        )
 SELECT COALESCE(h.user_id, c.user_id) AS user_id,
    h.market_value,
    h.unrealized_pnl,
    COALESCE(h.day_change, (0)::numeric) AS day_change,
    h.day_change_percent,
    COALESCE(h.holdings_count, (0)::bigint) AS holdings_count,
    GREATEST(h.updated_at, c.updated_at) AS updated_at,
    COALESCE(c.cash, (0)::numeric) AS cash,
    (COALESCE(h.market_value, (0)::numeric) + COALESCE(c.cash, (0)::numeric)) AS total_value
   FROM (held h
     FULL JOIN cash c ON ((c.user_id = h.user_id)));
ALTER TABLE public.portfolio_value OWNER TO postgres;
CREATE TABLE public.protective_orders (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    bot_id uuid NOT NULL,
    user_id uuid NOT NULL,
    trade_id uuid NOT NULL,
    client_order_id text NOT NULL,
    exchange_order_id text,
    exchange text NOT NULL,
    symbol text NOT NULL,
    kind text NOT NULL,
    side text NOT NULL,
    amount numeric(28,12) NOT NULL,
    trigger_price numeric(28,12) NOT NULL,
    limit_price numeric(28,12),
    status text DEFAULT 'open'::text NOT NULL,
    status_reason text,
    filled_at timestamp with time zone,
    lease_epoch bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT protective_orders_amount_positive CHECK ((amount > (0)::numeric)),
    CONSTRAINT protective_orders_kind_known CHECK ((kind = ANY (ARRAY['stop_loss'::text, 'take_profit'::text]))),
    CONSTRAINT protective_orders_limit_positive CHECK ((limit_price > (0)::numeric)),
    CONSTRAINT protective_orders_side_known CHECK ((side = ANY (ARRAY['buy'::text, 'sell'::text]))),
    CONSTRAINT protective_orders_status_known CHECK ((status = ANY (ARRAY['open'::text, 'filled'::text, 'canceled'::text, 'rejected'::text]))),
    CONSTRAINT protective_orders_trigger_positive CHECK ((trigger_price > (0)::numeric))
);
ALTER TABLE public.protective_orders OWNER TO postgres;
CREATE VIEW public.provider_statement WITH (security_invoker='true') AS
 SELECT s.user_id,
    s.transfer_id,
    s.created_at,
        CASE
            WHEN (s.kind = 'revenue_share'::text) THEN 'earning'::text
            WHEN (s.kind = 'refund'::text) THEN 'clawback'::text
            WHEN ((s.kind = 'payout'::text) AND (s.phase = 'pending'::text)) THEN 'payout_held'::text
            WHEN ((s.kind = 'payout'::text) AND (s.phase = 'post_pending'::text)) THEN 'payout_paid'::text
            WHEN ((s.kind = 'payout'::text) AND (s.phase = 'void_pending'::text)) THEN 'payout_released'::text
            WHEN (s.kind = 'payout'::text) THEN 'payout_reversed'::text
            ELSE s.kind
        END AS entry,
        CASE
            WHEN (s.kind = 'revenue_share'::text) THEN ((s.metadata ->> 'payment'::text))::numeric
            ELSE NULL::numeric
        END AS gross,
        CASE
            WHEN (s.kind = 'revenue_share'::text) THEN (((s.metadata ->> 'payment'::text))::numeric - s.amount)
            ELSE NULL::numeric
        END AS fee,
    s.amount,
    s.available_change,
    s.reference_type,
    s.reference_id
   FROM public.credit_statement s
  WHERE (s.account_kind = 'provider_earnings'::text);
ALTER TABLE public.provider_statement OWNER TO postgres;
CREATE TABLE public.reviews (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    strategy_id uuid NOT NULL,
    user_id uuid DEFAULT auth.uid() NOT NULL,
    rating smallint NOT NULL,
    comment text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT reviews_comment_length CHECK ((char_length(comment) <= 4000)),
    CONSTRAINT reviews_rating_range CHECK (((rating >= 1) AND (rating <= 5)))
);
ALTER TABLE public.reviews OWNER TO postgres;
CREATE TABLE public.service_checks (
    id bigint NOT NULL,
    service text NOT NULL,
    target text DEFAULT ''::text NOT NULL,
    status text NOT NULL,
    ok boolean NOT NULL,
    latency_ms numeric,
    error text,
    checked_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT service_checks_error_length CHECK ((char_length(error) <= 1000)),
    CONSTRAINT service_checks_latency_positive CHECK ((latency_ms >= (0)::numeric)),
    CONSTRAINT service_checks_service_format CHECK ((service ~ '^[a-z][a-z0-9_]{0,31}$'::text)),
    CONSTRAINT service_checks_status_known CHECK ((status = ANY (ARRAY['healthy'::text, 'degraded'::text, 'down'::text]))),
    CONSTRAINT service_checks_target_length CHECK ((char_length(target) <= 200))
);
ALTER TABLE public.service_checks OWNER TO postgres;
ALTER TABLE public.service_checks ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.service_checks_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE public.signal_executions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    signal_id uuid NOT NULL,
    subscription_id uuid NOT NULL,
    subscriber_id uuid NOT NULL,
    bot_id uuid,
    phase text NOT NULL,
    status text NOT NULL,
    reason text,
    order_id uuid,
    trade_id uuid,
    amount numeric(28,12),
    price numeric(28,12),
    credits_due numeric(24,8) DEFAULT 0 NOT NULL,
    charge_status text DEFAULT 'none'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT signal_executions_amount_finite CHECK ((amount <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT signal_executions_charge_status_known CHECK ((charge_status = ANY (ARRAY['none'::text, 'pending'::text, 'charged'::text, 'rejected'::text]))),
    CONSTRAINT signal_executions_credits_due_finite CHECK ((credits_due <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT signal_executions_phase_known CHECK ((phase = ANY (ARRAY['open'::text, 'close'::text]))),
    CONSTRAINT signal_executions_price_finite CHECK ((price <> ALL (ARRAY['NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric]))),
    CONSTRAINT signal_executions_status_known CHECK ((status = ANY (ARRAY['executed'::text, 'skipped'::text])))
);
ALTER TABLE public.signal_executions OWNER TO postgres;
CREATE VIEW public.strategy_marketplace WITH (security_invoker='true') AS
 SELECT s.id,
    s.user_id AS author_id,
    private.author_name(s.user_id) AS author_name,
    s.name,
    s.description,
    s.engine,
    s.category,
    s.tags,
    s.risk_level,
    s.monthly_price,
    s.performance,
    s.avg_backtest_return AS avg_return_percentage,
    s.backtest_count,
    COALESCE(r.avg_rating, (0)::numeric) AS avg_rating,
    COALESCE(r.review_count, (0)::bigint) AS review_count,
    s.created_at
   FROM (public.strategies s
     LEFT JOIN LATERAL ( SELECT round(avg(rv.rating), 2) AS avg_rating,
            count(*) AS review_count
           FROM public.reviews rv
          WHERE (rv.strategy_id = s.id)) r ON (true))
  WHERE (s.is_public AND (s.strategy_type = 'marketplace'::text) AND s.is_verified);
ALTER TABLE public.strategy_marketplace OWNER TO postgres;
CREATE TABLE public.sync_runs (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    user_id uuid DEFAULT auth.uid() NOT NULL,
    connection_id uuid,
    account_id uuid,
    trigger text DEFAULT 'manual'::text NOT NULL,
    scope text DEFAULT 'full'::text NOT NULL,
    status text DEFAULT 'requested'::text NOT NULL,
    accounts_synced integer DEFAULT 0 NOT NULL,
    positions_upserted integer DEFAULT 0 NOT NULL,
    positions_removed integer DEFAULT 0 NOT NULL,
    duration_ms integer,
    errors jsonb DEFAULT '[]'::jsonb NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sync_runs_scope_known CHECK ((scope = ANY (ARRAY['full'::text, 'incremental'::text, 'accounts'::text]))),
    CONSTRAINT sync_runs_status_known CHECK ((status = ANY (ARRAY['requested'::text, 'running'::text, 'completed'::text, 'partial'::text, 'failed'::text]))),
    CONSTRAINT sync_runs_trigger_known CHECK ((trigger = ANY (ARRAY['manual'::text, 'webhook'::text, 'nightly'::text, 'connection_added'::text])))
);
ALTER TABLE public.sync_runs OWNER TO postgres;
CREATE TABLE supabase_migrations.schema_migrations (
    version text NOT NULL,
    statements text[],
    name text
);
ALTER TABLE supabase_migrations.schema_migrations OWNER TO postgres;
ALTER TABLE ONLY auth.users
    ADD CONSTRAINT users_phone_key UNIQUE (phone);
ALTER TABLE ONLY auth.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);
ALTER TABLE ONLY private.api_calls
    ADD CONSTRAINT api_calls_pkey PRIMARY KEY (id);
ALTER TABLE ONLY private.api_key_secret
    ADD CONSTRAINT api_key_secret_pkey PRIMARY KEY (id);
ALTER TABLE ONLY private.billing_chargebacks
    ADD CONSTRAINT billing_chargebacks_pkey PRIMARY KEY (invoice_id, dispute_ref);
ALTER TABLE ONLY private.billing_clawback_parts
    ADD CONSTRAINT billing_clawback_parts_pkey PRIMARY KEY (payment_transfer_id, invoice_id);
ALTER TABLE ONLY private.billing_payment_methods
    ADD CONSTRAINT billing_payment_methods_pkey PRIMARY KEY (user_id, provider);
ALTER TABLE ONLY private.billing_refunds
    ADD CONSTRAINT billing_refunds_pkey PRIMARY KEY (invoice_id, refund_ref);
ALTER TABLE ONLY private.billing_reminders
    ADD CONSTRAINT billing_reminders_pkey PRIMARY KEY (subscription_id, period_end, days_before);
ALTER TABLE ONLY private.bots_legacy_values
    ADD CONSTRAINT bots_legacy_values_pkey PRIMARY KEY (bot_id, field);
ALTER TABLE ONLY private.candle_empty_ranges
    ADD CONSTRAINT candle_empty_ranges_pkey PRIMARY KEY (exchange, symbol, timeframe, empty_from);
ALTER TABLE ONLY private.credit_delegations
    ADD CONSTRAINT credit_delegations_pkey PRIMARY KEY (xact);
ALTER TABLE ONLY private.credit_open_holds
    ADD CONSTRAINT credit_open_holds_pkey PRIMARY KEY (transfer_id);
ALTER TABLE ONLY private.credit_settings
    ADD CONSTRAINT credit_settings_pkey PRIMARY KEY (id);
ALTER TABLE ONLY private.history_partitions
    ADD CONSTRAINT history_partitions_pkey PRIMARY KEY (table_name);
ALTER TABLE ONLY private.holdings_pending_aggregates
    ADD CONSTRAINT holdings_pending_aggregates_pkey PRIMARY KEY (user_id);
ALTER TABLE ONLY private.password_failures
    ADD CONSTRAINT password_failures_pkey PRIMARY KEY (user_id);
ALTER TABLE ONLY private.payout_settings
    ADD CONSTRAINT payout_settings_pkey PRIMARY KEY (id);
ALTER TABLE ONLY private.rate_limit_buckets
    ADD CONSTRAINT rate_limit_buckets_pkey PRIMARY KEY (bucket);
ALTER TABLE ONLY private.signal_fanouts
    ADD CONSTRAINT signal_fanouts_pkey PRIMARY KEY (signal_id, phase);
ALTER TABLE ONLY private.strategy_subscriptions_legacy_sizing
    ADD CONSTRAINT strategy_subscriptions_legacy_sizing_pkey PRIMARY KEY (subscription_id);
ALTER TABLE ONLY private.trade_daily_totals
    ADD CONSTRAINT trade_daily_totals_pkey PRIMARY KEY (day, quote, shard);
ALTER TABLE ONLY private.tradingview_tokens
    ADD CONSTRAINT tradingview_tokens_hash_unique UNIQUE (token_hash);
ALTER TABLE ONLY private.tradingview_tokens
    ADD CONSTRAINT tradingview_tokens_pkey PRIMARY KEY (strategy_id);
ALTER TABLE ONLY private.webhook_event_keys
    ADD CONSTRAINT webhook_events_once_per_provider_event PRIMARY KEY (provider, event_id);
ALTER TABLE ONLY public.admin_audit_log
    ADD CONSTRAINT admin_audit_log_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.aggregated_holdings
    ADD CONSTRAINT aggregated_holdings_one_per_symbol UNIQUE (user_id, symbol);
ALTER TABLE ONLY public.aggregated_holdings
    ADD CONSTRAINT aggregated_holdings_pkey PRIMARY KEY (id);
ALTER TABLE public.ai_analyses
    ADD CONSTRAINT ai_analyses_input_object CHECK (((jsonb_typeof(input_data) = 'object'::text) AND (pg_column_size(input_data) <= 16384))) NOT VALID;
ALTER TABLE ONLY public.ai_analyses
    ADD CONSTRAINT ai_analyses_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.alert_incidents
    ADD CONSTRAINT alert_incidents_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_key_hash_unique UNIQUE (key_hash);
ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.api_usage_days
    ADD CONSTRAINT api_usage_days_pkey PRIMARY KEY (key_id, day);
ALTER TABLE ONLY public.api_usage_minutes
    ADD CONSTRAINT api_usage_minutes_pkey PRIMARY KEY (key_id, minute, endpoint, status);
ALTER TABLE ONLY public.backtest_reports
    ADD CONSTRAINT backtest_reports_pkey PRIMARY KEY (run_id);
ALTER TABLE ONLY public.backtest_results
    ADD CONSTRAINT backtest_results_pkey PRIMARY KEY (id);
ALTER TABLE public.backtest_runs
    ADD CONSTRAINT backtest_runs_parameters_object CHECK (((jsonb_typeof(parameters) = 'object'::text) AND (pg_column_size(parameters) <= 16384))) NOT VALID;
ALTER TABLE ONLY public.backtest_runs
    ADD CONSTRAINT backtest_runs_pkey PRIMARY KEY (id);
ALTER TABLE public.backtest_runs
    ADD CONSTRAINT backtest_runs_settings_object CHECK (((jsonb_typeof(settings) = 'object'::text) AND (pg_column_size(settings) <= 16384))) NOT VALID;
ALTER TABLE ONLY public.bot_equity
    ADD CONSTRAINT bot_equity_pkey PRIMARY KEY (bot_id);
ALTER TABLE ONLY public.bot_leases
    ADD CONSTRAINT bot_leases_pkey PRIMARY KEY (bot_id);
ALTER TABLE ONLY public.bot_logs
    ADD CONSTRAINT bot_logs_pkey PRIMARY KEY (id, created_at);
ALTER TABLE ONLY public.bots
    ADD CONSTRAINT bots_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.brokerage_accounts
    ADD CONSTRAINT brokerage_accounts_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.brokerage_accounts
    ADD CONSTRAINT brokerage_accounts_provider_account_unique UNIQUE (connection_id, provider_account_id);
ALTER TABLE ONLY public.brokerage_connections
    ADD CONSTRAINT brokerage_connections_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.brokerage_connections
    ADD CONSTRAINT brokerage_connections_provider_connection_unique UNIQUE (provider, provider_connection_id);
ALTER TABLE ONLY public.brokerage_positions
    ADD CONSTRAINT brokerage_positions_one_per_symbol UNIQUE (account_id, symbol);
ALTER TABLE ONLY public.brokerage_positions
    ADD CONSTRAINT brokerage_positions_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.candles
    ADD CONSTRAINT candles_pkey PRIMARY KEY (exchange, symbol, timeframe, open_time);
ALTER TABLE ONLY public.credit_accounts
    ADD CONSTRAINT credit_accounts_code_key UNIQUE (code);
ALTER TABLE ONLY public.credit_accounts
    ADD CONSTRAINT credit_accounts_one_per_user_and_kind UNIQUE (user_id, kind);
ALTER TABLE ONLY public.credit_accounts
    ADD CONSTRAINT credit_accounts_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.credit_exposures
    ADD CONSTRAINT credit_exposures_one_per_invoice_and_account UNIQUE (invoice_id, user_id, account_kind);
ALTER TABLE ONLY public.credit_exposures
    ADD CONSTRAINT credit_exposures_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.credit_packs
    ADD CONSTRAINT credit_packs_name_unique UNIQUE (name);
ALTER TABLE ONLY public.credit_packs
    ADD CONSTRAINT credit_packs_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.credit_transfers
    ADD CONSTRAINT credit_transfers_hold_resolves_once UNIQUE (pending_id);
ALTER TABLE ONLY public.credit_transfers
    ADD CONSTRAINT credit_transfers_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.data_requests
    ADD CONSTRAINT data_requests_idempotency_key_unique UNIQUE (user_id, idempotency_key);
ALTER TABLE ONLY public.data_requests
    ADD CONSTRAINT data_requests_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.exchange_credentials
    ADD CONSTRAINT exchange_credentials_one_label_per_exchange UNIQUE (user_id, exchange, label);
ALTER TABLE ONLY public.exchange_credentials
    ADD CONSTRAINT exchange_credentials_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.exchange_market_loads
    ADD CONSTRAINT exchange_market_loads_pkey PRIMARY KEY (exchange);
ALTER TABLE ONLY public.exchange_markets
    ADD CONSTRAINT exchange_markets_pkey PRIMARY KEY (exchange, symbol);
ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_provider_invoice_unique UNIQUE (provider, provider_invoice_id);
ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_idempotency_key_unique UNIQUE (idempotency_key);
ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.market_latest_candles
    ADD CONSTRAINT market_latest_candles_pkey PRIMARY KEY (exchange, symbol, timeframe);
ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (id, created_at);
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_client_order_id_unique UNIQUE (client_order_id);
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.organisation_invitations
    ADD CONSTRAINT organisation_invitations_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.organisation_members
    ADD CONSTRAINT organisation_members_pkey PRIMARY KEY (user_id, organisation_id);
ALTER TABLE ONLY public.organisations
    ADD CONSTRAINT organisations_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.payout_destinations
    ADD CONSTRAINT payout_destinations_one_per_user UNIQUE (user_id);
ALTER TABLE ONLY public.payout_destinations
    ADD CONSTRAINT payout_destinations_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.payouts
    ADD CONSTRAINT payouts_one_per_hold UNIQUE (hold_id);
ALTER TABLE ONLY public.payouts
    ADD CONSTRAINT payouts_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.plans
    ADD CONSTRAINT plans_name_key UNIQUE (name);
ALTER TABLE ONLY public.plans
    ADD CONSTRAINT plans_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.position_requests
    ADD CONSTRAINT position_requests_idempotency_key_unique UNIQUE (user_id, idempotency_key);
ALTER TABLE ONLY public.position_requests
    ADD CONSTRAINT position_requests_pkey PRIMARY KEY (id);
ALTER TABLE public.profiles
    ADD CONSTRAINT profiles_avatar_url_length CHECK ((char_length(avatar_url) <= 2000)) NOT VALID;
ALTER TABLE public.profiles
    ADD CONSTRAINT profiles_discord_webhook_url_is_discord CHECK (((discord_webhook_url IS NULL) OR (discord_webhook_url ~ '^https://(ptb\.|canary\.)?(discord|discordapp)\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+$'::text))) NOT VALID;
ALTER TABLE public.profiles
    ADD CONSTRAINT profiles_discord_webhook_url_length CHECK ((char_length(discord_webhook_url) <= 500)) NOT VALID;
ALTER TABLE ONLY public.profiles
    ADD CONSTRAINT profiles_pkey PRIMARY KEY (id);
ALTER TABLE public.profiles
    ADD CONSTRAINT profiles_preferences_object CHECK (((jsonb_typeof(preferences) = 'object'::text) AND (pg_column_size(preferences) <= 16384))) NOT VALID;
ALTER TABLE public.profiles
    ADD CONSTRAINT profiles_telegram_chat_id_format CHECK ((telegram_chat_id ~ '^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$'::text)) NOT VALID;
ALTER TABLE ONLY public.protective_orders
    ADD CONSTRAINT protective_orders_client_order_id_unique UNIQUE (client_order_id);
ALTER TABLE ONLY public.protective_orders
    ADD CONSTRAINT protective_orders_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.reviews
    ADD CONSTRAINT reviews_one_per_subscriber UNIQUE (strategy_id, user_id);
ALTER TABLE ONLY public.reviews
    ADD CONSTRAINT reviews_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.service_checks
    ADD CONSTRAINT service_checks_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.service_status
    ADD CONSTRAINT service_status_pkey PRIMARY KEY (service, target);
ALTER TABLE ONLY public.signal_executions
    ADD CONSTRAINT signal_executions_once_per_phase UNIQUE (signal_id, subscription_id, phase);
ALTER TABLE ONLY public.signal_executions
    ADD CONSTRAINT signal_executions_pkey PRIMARY KEY (id);
ALTER TABLE public.signals
    ADD CONSTRAINT signals_idempotency_key_length CHECK ((char_length(idempotency_key) <= 200)) NOT VALID;
ALTER TABLE ONLY public.signals
    ADD CONSTRAINT signals_idempotency_key_unique UNIQUE (strategy_id, idempotency_key);
ALTER TABLE public.signals
    ADD CONSTRAINT signals_indicators_object CHECK (((jsonb_typeof(indicators) = 'object'::text) AND (pg_column_size(indicators) <= 8192))) NOT VALID;
ALTER TABLE public.signals
    ADD CONSTRAINT signals_note_length CHECK ((char_length(note) <= 2000)) NOT VALID;
ALTER TABLE ONLY public.signals
    ADD CONSTRAINT signals_pkey PRIMARY KEY (id);
ALTER TABLE public.strategies
    ADD CONSTRAINT strategies_category_length CHECK ((char_length(category) <= 100)) NOT VALID;
ALTER TABLE public.strategies
    ADD CONSTRAINT strategies_content_length CHECK ((char_length(content) <= 200000)) NOT VALID;
ALTER TABLE public.strategies
    ADD CONSTRAINT strategies_description_length CHECK ((char_length(description) <= 4000)) NOT VALID;
ALTER TABLE public.strategies
    ADD CONSTRAINT strategies_name_length CHECK ((char_length(name) <= 200)) NOT VALID;
ALTER TABLE public.strategies
    ADD CONSTRAINT strategies_parameters_object CHECK (((jsonb_typeof(parameters) = 'object'::text) AND (pg_column_size(parameters) <= 16384))) NOT VALID;
ALTER TABLE ONLY public.strategies
    ADD CONSTRAINT strategies_pkey PRIMARY KEY (id);
ALTER TABLE public.strategies
    ADD CONSTRAINT strategies_tags_bounded CHECK ((cardinality(tags) <= 20)) NOT VALID;
ALTER TABLE ONLY public.strategy_subscriptions
    ADD CONSTRAINT strategy_subscriptions_one_per_subscriber UNIQUE (strategy_id, subscriber_id);
ALTER TABLE ONLY public.strategy_subscriptions
    ADD CONSTRAINT strategy_subscriptions_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.subscriptions
    ADD CONSTRAINT subscriptions_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.symbol_prices
    ADD CONSTRAINT symbol_prices_pkey PRIMARY KEY (symbol);
ALTER TABLE ONLY public.sync_runs
    ADD CONSTRAINT sync_runs_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.trades
    ADD CONSTRAINT trades_pkey PRIMARY KEY (id);
ALTER TABLE ONLY public.webhook_events
    ADD CONSTRAINT webhook_events_pkey PRIMARY KEY (id, received_at);
ALTER TABLE ONLY public.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (id);
ALTER TABLE ONLY supabase_migrations.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);
CREATE UNIQUE INDEX users_email_partial_key ON auth.users USING btree (email) WHERE (is_sso_user = false);
CREATE INDEX users_instance_id_idx ON auth.users USING btree (instance_id);
CREATE INDEX billing_clawback_parts_invoice_idx ON private.billing_clawback_parts USING btree (invoice_id);
CREATE INDEX credit_open_holds_timeout_idx ON private.credit_open_holds USING btree (timeout_at) WHERE (timeout_at IS NOT NULL);
CREATE INDEX admin_audit_log_actor_idx ON public.admin_audit_log USING btree (actor_id, at DESC);
CREATE INDEX admin_audit_log_at_idx ON public.admin_audit_log USING btree (at DESC);
CREATE INDEX admin_audit_log_target_idx ON public.admin_audit_log USING btree (target_type, target_id, at DESC);
CREATE INDEX ai_analyses_backtest_run_id_idx ON public.ai_analyses USING btree (backtest_run_id);
CREATE INDEX ai_analyses_bot_id_idx ON public.ai_analyses USING btree (bot_id);
CREATE INDEX ai_analyses_result_backtest_run_id_idx ON public.ai_analyses USING btree (result_backtest_run_id);
CREATE INDEX ai_analyses_saved_strategy_id_idx ON public.ai_analyses USING btree (saved_strategy_id);
CREATE INDEX ai_analyses_strategy_id_idx ON public.ai_analyses USING btree (strategy_id);
CREATE INDEX ai_analyses_user_id_idx ON public.ai_analyses USING btree (user_id, created_at DESC);
CREATE UNIQUE INDEX alert_incidents_open_idx ON public.alert_incidents USING btree (rule, key) WHERE (resolved_at IS NULL);
CREATE INDEX alert_incidents_opened_at_idx ON public.alert_incidents USING btree (opened_at DESC);
CREATE INDEX api_keys_organisation_id_idx ON public.api_keys USING btree (organisation_id, created_at DESC) WHERE (organisation_id IS NOT NULL);
CREATE INDEX api_keys_user_id_idx ON public.api_keys USING btree (user_id, created_at DESC);
CREATE INDEX api_usage_days_unbilled_idx ON public.api_usage_days USING btree (day) WHERE (billed_at IS NULL);
CREATE INDEX api_usage_days_user_day_idx ON public.api_usage_days USING btree (user_id, day DESC);
CREATE INDEX api_usage_minutes_user_minute_idx ON ONLY public.api_usage_minutes USING btree (user_id, minute DESC);
CREATE INDEX backtest_reports_user_id_idx ON public.backtest_reports USING btree (user_id);
CREATE INDEX backtest_results_run_id_idx ON public.backtest_results USING btree (run_id);
CREATE INDEX backtest_results_strategy_id_idx ON public.backtest_results USING btree (strategy_id);
CREATE INDEX backtest_results_user_id_idx ON public.backtest_results USING btree (user_id, created_at DESC);
CREATE INDEX backtest_runs_finished_at_idx ON public.backtest_runs USING btree (finished_at) INCLUDE (compute_seconds) WHERE (finished_at IS NOT NULL);
CREATE INDEX backtest_runs_strategy_id_idx ON public.backtest_runs USING btree (strategy_id);
CREATE INDEX backtest_runs_user_id_idx ON public.backtest_runs USING btree (user_id, created_at DESC);
CREATE INDEX bot_equity_user_id_idx ON public.bot_equity USING btree (user_id);
CREATE INDEX bot_leases_expires_idx ON public.bot_leases USING btree (expires_at);
CREATE INDEX bot_leases_last_worker_id_idx ON public.bot_leases USING btree (last_worker_id);
CREATE INDEX bot_leases_taken_over_from_idx ON public.bot_leases USING btree (taken_over_from);
CREATE INDEX bot_leases_taken_over_idx ON public.bot_leases USING btree (taken_over_at DESC) WHERE (taken_over_at IS NOT NULL);
CREATE INDEX bot_leases_worker_id_idx ON public.bot_leases USING btree (worker_id);
CREATE INDEX bot_logs_bot_id_idx ON ONLY public.bot_logs USING btree (bot_id, created_at DESC);
CREATE INDEX bot_logs_created_at_idx ON ONLY public.bot_logs USING btree (created_at);
CREATE INDEX bot_logs_strategy_id_idx ON ONLY public.bot_logs USING btree (strategy_id);
CREATE INDEX bot_logs_user_id_idx ON ONLY public.bot_logs USING btree (user_id, created_at DESC);
CREATE INDEX bots_exchange_credential_id_idx ON public.bots USING btree (exchange_credential_id);
CREATE INDEX bots_market_idx ON public.bots USING btree (exchange, trading_pair, timeframe) WHERE (status = 'running'::text);
CREATE INDEX bots_organisation_id_idx ON public.bots USING btree (organisation_id) WHERE (organisation_id IS NOT NULL);
CREATE INDEX bots_status_idx ON public.bots USING btree (status) WHERE (status = 'running'::text);
CREATE INDEX bots_strategy_id_idx ON public.bots USING btree (strategy_id);
CREATE INDEX bots_user_id_idx ON public.bots USING btree (user_id);
CREATE INDEX brokerage_accounts_user_id_idx ON public.brokerage_accounts USING btree (user_id);
CREATE INDEX brokerage_connections_provider_user_idx ON public.brokerage_connections USING btree (provider, provider_user_id);
CREATE INDEX brokerage_connections_user_id_idx ON public.brokerage_connections USING btree (user_id);
CREATE INDEX brokerage_positions_user_symbol_idx ON public.brokerage_positions USING btree (user_id, symbol);
CREATE INDEX credit_accounts_user_id_idx ON public.credit_accounts USING btree (user_id);
CREATE INDEX credit_exposures_open_idx ON public.credit_exposures USING btree (created_at) WHERE (status = 'open'::text);
CREATE INDEX credit_exposures_resolved_by_idx ON public.credit_exposures USING btree (resolved_by);
CREATE INDEX credit_exposures_user_id_idx ON public.credit_exposures USING btree (user_id);
CREATE INDEX credit_transfers_credit_account_idx ON public.credit_transfers USING btree (credit_account_id, created_at);
CREATE INDEX credit_transfers_debit_account_idx ON public.credit_transfers USING btree (debit_account_id, created_at);
CREATE INDEX credit_transfers_pending_bot_idx ON public.credit_transfers USING btree (((metadata ->> 'bot_id'::text))) WHERE ((phase = 'pending'::text) AND (reference_type = 'order'::text));
CREATE INDEX credit_transfers_pending_timeout_idx ON public.credit_transfers USING btree (timeout_at) WHERE (phase = 'pending'::text);
CREATE INDEX credit_transfers_reference_idx ON public.credit_transfers USING btree (reference_type, reference_id);
CREATE INDEX data_requests_user_id_idx ON public.data_requests USING btree (user_id, created_at DESC);
CREATE INDEX exchange_credentials_user_id_idx ON public.exchange_credentials USING btree (user_id);
CREATE INDEX exchange_markets_type_idx ON public.exchange_markets USING btree (exchange, type, symbol);
CREATE INDEX invoices_credit_pack_id_idx ON public.invoices USING btree (credit_pack_id);
CREATE UNIQUE INDEX invoices_open_checkout_unique ON public.invoices USING btree (user_id, checkout_key) WHERE ((status = 'pending'::text) AND (checkout_key IS NOT NULL));
CREATE INDEX invoices_paid_at_idx ON public.invoices USING btree (paid_at) INCLUDE (provider, currency, amount, amount_refunded) WHERE (status = ANY (ARRAY['paid'::text, 'partially_refunded'::text]));
CREATE INDEX invoices_plan_id_idx ON public.invoices USING btree (plan_id);
CREATE INDEX invoices_provider_refs_idx ON public.invoices USING gin (provider_refs);
CREATE INDEX invoices_subscription_id_idx ON public.invoices USING btree (subscription_id);
CREATE INDEX invoices_user_id_idx ON public.invoices USING btree (user_id, created_at DESC);
CREATE INDEX jobs_claim_idx ON public.jobs USING btree (queue, priority DESC, run_at, id) WHERE (status = 'queued'::text);
CREATE INDEX jobs_dead_idx ON public.jobs USING btree (finished_at DESC) WHERE (status = 'dead'::text);
CREATE INDEX jobs_finished_idx ON public.jobs USING btree (finished_at) WHERE (status = ANY (ARRAY['succeeded'::text, 'cancelled'::text]));
CREATE INDEX jobs_kind_status_idx ON public.jobs USING btree (kind, status);
CREATE INDEX jobs_locked_by_idx ON public.jobs USING btree (locked_by);
CREATE INDEX jobs_running_idx ON public.jobs USING btree (locked_until) WHERE (status = 'running'::text);
CREATE INDEX market_latest_candles_symbol ON public.market_latest_candles USING btree (symbol);
CREATE INDEX notifications_read_at_idx ON ONLY public.notifications USING btree (read_at) WHERE (read_at IS NOT NULL);
CREATE INDEX notifications_user_id_idx ON ONLY public.notifications USING btree (user_id, created_at DESC);
CREATE INDEX orders_bot_id_idx ON public.orders USING btree (bot_id, created_at DESC);
CREATE INDEX orders_open_idx ON public.orders USING btree (bot_id) WHERE (status = ANY (ARRAY['pending'::text, 'open'::text]));
CREATE INDEX orders_user_id_idx ON public.orders USING btree (user_id, created_at DESC);
CREATE INDEX organisation_invitations_email_idx ON public.organisation_invitations USING btree (email) WHERE (status = 'pending'::text);
CREATE INDEX organisation_invitations_invited_by_idx ON public.organisation_invitations USING btree (invited_by);
CREATE UNIQUE INDEX organisation_invitations_one_pending ON public.organisation_invitations USING btree (organisation_id, email) WHERE (status = 'pending'::text);
CREATE INDEX organisation_members_invited_by_idx ON public.organisation_members USING btree (invited_by);
CREATE INDEX organisation_members_organisation_id_idx ON public.organisation_members USING btree (organisation_id, role);
CREATE INDEX organisations_owner_id_idx ON public.organisations USING btree (owner_id);
CREATE INDEX payouts_approved_by_idx ON public.payouts USING btree (approved_by);
CREATE INDEX payouts_destination_id_idx ON public.payouts USING btree (destination_id);
CREATE INDEX payouts_to_send_idx ON public.payouts USING btree (created_at) WHERE (status = 'approved'::text);
CREATE INDEX payouts_user_id_idx ON public.payouts USING btree (user_id, created_at DESC);
CREATE INDEX position_requests_bot_active_idx ON public.position_requests USING btree (bot_id) WHERE (status = ANY (ARRAY['pending'::text, 'working'::text]));
CREATE UNIQUE INDEX position_requests_one_close_per_trade ON public.position_requests USING btree (trade_id) WHERE ((kind = 'close'::text) AND (status = ANY (ARRAY['pending'::text, 'working'::text])));
CREATE INDEX position_requests_trade_id_idx ON public.position_requests USING btree (trade_id);
CREATE INDEX position_requests_user_idx ON public.position_requests USING btree (user_id, created_at DESC);
CREATE INDEX protective_orders_bot_open_idx ON public.protective_orders USING btree (bot_id) WHERE (status = 'open'::text);
CREATE INDEX protective_orders_trade_id_idx ON public.protective_orders USING btree (trade_id);
CREATE INDEX protective_orders_user_id_idx ON public.protective_orders USING btree (user_id);
CREATE INDEX reviews_user_id_idx ON public.reviews USING btree (user_id);
CREATE INDEX service_checks_checked_at_idx ON public.service_checks USING btree (checked_at);
CREATE INDEX service_checks_service_idx ON public.service_checks USING btree (service, target, checked_at DESC);
CREATE INDEX signal_executions_charge_pending_idx ON public.signal_executions USING btree (signal_id, id) WHERE (charge_status = 'pending'::text);
CREATE INDEX signal_executions_created_at_idx ON public.signal_executions USING btree (created_at) INCLUDE (status);
CREATE INDEX signal_executions_subscriber_id_idx ON public.signal_executions USING btree (subscriber_id, created_at DESC);
CREATE INDEX signal_executions_subscription_id_idx ON public.signal_executions USING btree (subscription_id);
CREATE INDEX signals_created_at_idx ON public.signals USING btree (created_at);
CREATE INDEX signals_provider_id_idx ON public.signals USING btree (provider_id);
CREATE INDEX signals_strategy_id_idx ON public.signals USING btree (strategy_id, created_at DESC);
CREATE INDEX strategies_awaiting_verification_idx ON public.strategies USING btree (created_at) WHERE (is_public AND (strategy_type = 'marketplace'::text) AND (NOT is_verified));
CREATE INDEX strategies_marketplace_idx ON public.strategies USING btree (is_public, strategy_type, is_verified) WHERE (is_public AND (strategy_type = 'marketplace'::text));
CREATE INDEX strategies_organisation_id_idx ON public.strategies USING btree (organisation_id) WHERE (organisation_id IS NOT NULL);
CREATE INDEX strategies_user_id_idx ON public.strategies USING btree (user_id);
CREATE INDEX strategy_subscriptions_active_idx ON public.strategy_subscriptions USING btree (strategy_id) WHERE (status = 'active'::text);
CREATE INDEX strategy_subscriptions_bot_id_idx ON public.strategy_subscriptions USING btree (bot_id);
CREATE INDEX strategy_subscriptions_subscriber_idx ON public.strategy_subscriptions USING btree (subscriber_id);
CREATE INDEX subscriptions_invoice_id_idx ON public.subscriptions USING btree (invoice_id);
CREATE UNIQUE INDEX subscriptions_one_current_per_user ON public.subscriptions USING btree (user_id) WHERE (status = ANY (ARRAY['active'::text, 'trial'::text]));
CREATE INDEX subscriptions_plan_id_idx ON public.subscriptions USING btree (plan_id);
CREATE INDEX subscriptions_renewal_idx ON public.subscriptions USING btree (expires_at) WHERE ((status = ANY (ARRAY['active'::text, 'trial'::text])) AND (expires_at <> 'infinity'::timestamp with time zone));
CREATE INDEX subscriptions_user_id_idx ON public.subscriptions USING btree (user_id);
CREATE INDEX sync_runs_account_id_idx ON public.sync_runs USING btree (account_id);
CREATE INDEX sync_runs_connection_id_idx ON public.sync_runs USING btree (connection_id);
CREATE INDEX sync_runs_requested_idx ON public.sync_runs USING btree (created_at) WHERE (status = 'requested'::text);
CREATE INDEX sync_runs_user_id_idx ON public.sync_runs USING btree (user_id, created_at DESC);
CREATE INDEX trades_bot_id_idx ON public.trades USING btree (bot_id);
CREATE INDEX trades_entry_order_id_idx ON public.trades USING btree (entry_order_id);
CREATE INDEX trades_entry_time_idx ON public.trades USING btree (entry_time);
CREATE INDEX trades_exit_order_id_idx ON public.trades USING btree (exit_order_id);
CREATE INDEX trades_open_idx ON public.trades USING btree (bot_id) WHERE (status = 'open'::text);
CREATE INDEX trades_user_entry_idx ON public.trades USING btree (user_id, entry_time DESC);
CREATE INDEX webhook_events_done_idx ON ONLY public.webhook_events USING btree (processed_at) WHERE (status = ANY (ARRAY['processed'::text, 'ignored'::text]));
CREATE INDEX webhook_events_pending_idx ON ONLY public.webhook_events USING btree (received_at) WHERE (status = ANY (ARRAY['received'::text, 'failed'::text]));
CREATE INDEX webhook_events_waiting_idx ON ONLY public.webhook_events USING gin (waiting_for) WHERE (status = 'waiting'::text);
CREATE INDEX webhook_events_waiting_since_idx ON ONLY public.webhook_events USING btree (provider, received_at) WHERE (status = 'waiting'::text);
CREATE INDEX workers_alive_idx ON public.workers USING btree (heartbeat_at) WHERE (status = ANY (ARRAY['running'::text, 'draining'::text]));
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION private.handle_new_user();
CREATE TRIGGER on_auth_user_updated AFTER UPDATE OF raw_app_meta_data, email ON auth.users FOR EACH ROW EXECUTE FUNCTION private.sync_user_role();
CREATE TRIGGER admin_audit_log_console_notify AFTER INSERT ON public.admin_audit_log FOR EACH STATEMENT EXECUTE FUNCTION private.console_notify('audit');
CREATE TRIGGER ai_analyses_enqueue AFTER INSERT ON public.ai_analyses FOR EACH ROW EXECUTE FUNCTION private.enqueue_ai_analysis();
CREATE TRIGGER ai_analyses_plan_ai_requests BEFORE INSERT ON public.ai_analyses FOR EACH ROW EXECUTE FUNCTION private.validate_ai_requests();
CREATE TRIGGER ai_analyses_updated_at BEFORE UPDATE ON public.ai_analyses FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER api_keys_checks BEFORE INSERT OR UPDATE OF environment, name, user_id, organisation_id, scopes ON public.api_keys FOR EACH ROW EXECUTE FUNCTION private.api_keys_check();
CREATE TRIGGER backtest_results_ai_analyses AFTER INSERT ON public.backtest_results FOR EACH ROW WHEN ((new.run_id IS NOT NULL)) EXECUTE FUNCTION private.ai_backtest_reported();
CREATE TRIGGER backtest_results_refresh_strategy AFTER INSERT OR DELETE OR UPDATE OF strategy_id, total_return_percentage ON public.backtest_results FOR EACH ROW EXECUTE FUNCTION private.refresh_strategy_backtest_figures();
CREATE TRIGGER backtest_runs_batch_market BEFORE INSERT ON public.backtest_runs FOR EACH ROW EXECUTE FUNCTION private.backtest_run_batch_market();
CREATE TRIGGER backtest_runs_enqueue AFTER INSERT ON public.backtest_runs FOR EACH ROW WHEN ((new.status = 'queued'::text)) EXECUTE FUNCTION private.enqueue_backtest_run();
CREATE TRIGGER backtest_runs_guard_changes BEFORE UPDATE ON public.backtest_runs FOR EACH ROW EXECUTE FUNCTION private.guard_backtest_run_changes();
CREATE TRIGGER backtest_runs_updated_at BEFORE UPDATE ON public.backtest_runs FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER backtest_runs_validate_minutes BEFORE INSERT ON public.backtest_runs FOR EACH ROW EXECUTE FUNCTION private.validate_backtest_minutes();
CREATE TRIGGER backtest_runs_validate_queue BEFORE INSERT ON public.backtest_runs FOR EACH ROW EXECUTE FUNCTION private.validate_backtest_queue();
CREATE TRIGGER bot_leases_track_takeover BEFORE INSERT ON public.bot_leases FOR EACH ROW EXECUTE FUNCTION private.bot_leases_track_takeover();
CREATE TRIGGER bot_leases_track_takeover_change BEFORE UPDATE OF worker_id, epoch ON public.bot_leases FOR EACH ROW WHEN (((old.worker_id IS DISTINCT FROM new.worker_id) OR (old.epoch IS DISTINCT FROM new.epoch))) EXECUTE FUNCTION private.bot_leases_track_takeover();
CREATE TRIGGER bots_assign_organisation_owner BEFORE INSERT ON public.bots FOR EACH ROW EXECUTE FUNCTION private.assign_organisation_owner();
CREATE TRIGGER bots_cancel_position_requests AFTER UPDATE OF status ON public.bots FOR EACH ROW WHEN (((old.status = 'running'::text) AND (new.status <> 'running'::text))) EXECUTE FUNCTION private.cancel_position_requests();
CREATE TRIGGER bots_check_pairs BEFORE INSERT OR UPDATE OF pairs, trading_pair ON public.bots FOR EACH ROW EXECUTE FUNCTION private.bot_check_pairs();
CREATE TRIGGER bots_console_notify AFTER INSERT OR DELETE OR UPDATE OF status ON public.bots FOR EACH STATEMENT EXECUTE FUNCTION private.console_notify('bots');
CREATE TRIGGER bots_guard_changes BEFORE INSERT ON public.bots FOR EACH ROW EXECUTE FUNCTION private.guard_bot_changes();
CREATE TRIGGER bots_guard_changes_on_update BEFORE UPDATE ON public.bots FOR EACH ROW WHEN (((old.status IS DISTINCT FROM new.status) OR (old.is_paper_trade IS DISTINCT FROM new.is_paper_trade))) EXECUTE FUNCTION private.guard_bot_changes();
CREATE TRIGGER bots_guard_organisation_changes BEFORE UPDATE ON public.bots FOR EACH ROW WHEN (((((((((((((((((((new.strategy_id IS DISTINCT FROM old.strategy_id) OR (new.exchange_credential_id IS DISTINCT FROM old.exchange_credential_id)) OR (new.name IS DISTINCT FROM old.name)) OR (new.exchange IS DISTINCT FROM old.exchange)) OR (new.trading_pair IS DISTINCT FROM old.trading_pair)) OR (new.timeframe IS DISTINCT FROM old.timeframe)) OR (new.strategy IS DISTINCT FROM old.strategy)) OR (new.parameters IS DISTINCT FROM old.parameters)) OR (new.max_open_trades IS DISTINCT FROM old.max_open_trades)) OR (new.stake_amount IS DISTINCT FROM old.stake_amount)) OR (new.stop_loss IS DISTINCT FROM old.stop_loss)) OR (new.take_profit IS DISTINCT FROM old.take_profit)) OR (new.risk_percentage IS DISTINCT FROM old.risk_percentage)) OR (new.daily_loss_limit IS DISTINCT FROM old.daily_loss_limit)) OR (new.leverage IS DISTINCT FROM old.leverage)) OR (new.allow_short IS DISTINCT FROM old.allow_short)) OR (new.is_paper_trade IS DISTINCT FROM old.is_paper_trade)) OR (new.metadata IS DISTINCT FROM old.metadata))) EXECUTE FUNCTION private.guard_organisation_bot_changes();
CREATE TRIGGER bots_live_pairs_aal2 BEFORE UPDATE OF pairs ON public.bots FOR EACH ROW WHEN ((old.pairs IS DISTINCT FROM new.pairs)) EXECUTE FUNCTION private.bot_live_pairs_aal2();
CREATE TRIGGER bots_market_rules BEFORE INSERT ON public.bots FOR EACH ROW EXECUTE FUNCTION private.bot_market_rules();
CREATE TRIGGER bots_market_rules_on_change BEFORE UPDATE OF exchange, trading_pair, pairs, stake_amount, leverage, metadata ON public.bots FOR EACH ROW WHEN (((((((old.exchange IS DISTINCT FROM new.exchange) OR (old.trading_pair IS DISTINCT FROM new.trading_pair)) OR (old.pairs IS DISTINCT FROM new.pairs)) OR (old.stake_amount IS DISTINCT FROM new.stake_amount)) OR (old.leverage IS DISTINCT FROM new.leverage)) OR (COALESCE((old.metadata ->> 'sizing'::text), 'stake'::text) IS DISTINCT FROM COALESCE((new.metadata ->> 'sizing'::text), 'stake'::text)))) EXECUTE FUNCTION private.bot_market_rules();
CREATE TRIGGER bots_notify_status_insert AFTER INSERT ON public.bots FOR EACH ROW EXECUTE FUNCTION private.notify_bot_status();
CREATE TRIGGER bots_notify_status_update AFTER UPDATE OF status ON public.bots FOR EACH ROW WHEN ((old.status IS DISTINCT FROM new.status)) EXECUTE FUNCTION private.notify_bot_status();
CREATE TRIGGER bots_owner_running_cancels_pause BEFORE UPDATE OF status ON public.bots FOR EACH ROW WHEN (((old.status = 'running'::text) AND (new.status = 'running'::text) AND (auth.uid() IS NOT NULL))) EXECUTE FUNCTION private.bots_running_overrides_pause();
CREATE TRIGGER bots_pause_settles_close BEFORE UPDATE OF status ON public.bots FOR EACH ROW WHEN (((old.status = 'running'::text) AND (new.status = ANY (ARRAY['paused'::text, 'error'::text, 'stopped'::text])))) EXECUTE FUNCTION private.bots_pause_settles_close();
CREATE TRIGGER bots_platform_rules BEFORE INSERT ON public.bots FOR EACH ROW EXECUTE FUNCTION private.bot_rules();
CREATE TRIGGER bots_platform_rules_on_update BEFORE UPDATE ON public.bots FOR EACH ROW WHEN (((old.status IS DISTINCT FROM new.status) OR ((((((((((((((((new.leverage IS DISTINCT FROM old.leverage) OR (new.stake_amount IS DISTINCT FROM old.stake_amount)) OR (new.exchange IS DISTINCT FROM old.exchange)) OR (new.trading_pair IS DISTINCT FROM old.trading_pair)) OR (new.timeframe IS DISTINCT FROM old.timeframe)) OR (new.exchange_credential_id IS DISTINCT FROM old.exchange_credential_id)) OR (new.stop_loss IS DISTINCT FROM old.stop_loss)) OR (new.take_profit IS DISTINCT FROM old.take_profit)) OR (new.risk_percentage IS DISTINCT FROM old.risk_percentage)) OR (new.daily_loss_limit IS DISTINCT FROM old.daily_loss_limit)) OR (new.max_open_trades IS DISTINCT FROM old.max_open_trades)) OR (new.allow_short IS DISTINCT FROM old.allow_short)) OR (new.strategy IS DISTINCT FROM old.strategy)) OR (new.strategy_id IS DISTINCT FROM old.strategy_id)) OR (new.parameters IS DISTINCT FROM old.parameters)) OR ((new.metadata -> 'sizing'::text) IS DISTINCT FROM (old.metadata -> 'sizing'::text))))) EXECUTE FUNCTION private.bot_rules();
CREATE TRIGGER bots_updated_at BEFORE UPDATE ON public.bots FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER bots_validate_limits BEFORE INSERT ON public.bots FOR EACH ROW EXECUTE FUNCTION private.validate_bot_limits();
CREATE TRIGGER bots_void_holds_deleted AFTER DELETE ON public.bots FOR EACH ROW EXECUTE FUNCTION private.bot_void_idle_holds();
CREATE TRIGGER bots_void_idle_holds AFTER UPDATE OF status, last_candle_at ON public.bots FOR EACH ROW WHEN (((new.status = ANY (ARRAY['stopped'::text, 'error'::text])) AND ((old.status IS DISTINCT FROM new.status) OR (old.last_candle_at IS DISTINCT FROM new.last_candle_at)))) EXECUTE FUNCTION private.bot_void_idle_holds();
CREATE TRIGGER brokerage_accounts_updated_at BEFORE UPDATE ON public.brokerage_accounts FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER brokerage_connections_updated_at BEFORE UPDATE ON public.brokerage_connections FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER brokerage_positions_updated_at BEFORE UPDATE ON public.brokerage_positions FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER candles_publish_latest AFTER INSERT ON public.candles REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.publish_latest_candles();
CREATE TRIGGER credit_accounts_keep_history BEFORE DELETE ON public.credit_accounts FOR EACH ROW EXECUTE FUNCTION private.credit_account_keep_history();
CREATE TRIGGER credit_accounts_updated_at BEFORE UPDATE ON public.credit_accounts FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER credit_packs_updated_at BEFORE UPDATE ON public.credit_packs FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER credit_transfers_immutable BEFORE DELETE OR UPDATE ON public.credit_transfers FOR EACH ROW EXECUTE FUNCTION private.forbid_transfer_changes();
CREATE TRIGGER data_requests_enqueue AFTER INSERT ON public.data_requests FOR EACH ROW EXECUTE FUNCTION private.enqueue_data_request();
CREATE TRIGGER data_requests_updated_at BEFORE UPDATE ON public.data_requests FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER data_requests_validate_quota BEFORE INSERT ON public.data_requests FOR EACH ROW EXECUTE FUNCTION private.validate_data_request();
CREATE TRIGGER exchange_credentials_updated_at BEFORE UPDATE ON public.exchange_credentials FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER invoices_paid_credit_purchase AFTER INSERT OR UPDATE OF status ON public.invoices FOR EACH ROW EXECUTE FUNCTION private.credit_invoice_paid();
CREATE TRIGGER invoices_updated_at BEFORE UPDATE ON public.invoices FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER jobs_console_notify AFTER INSERT OR DELETE OR UPDATE OF status, last_error ON public.jobs FOR EACH STATEMENT EXECUTE FUNCTION private.console_notify('queue');
CREATE TRIGGER notifications_enqueue_outbound AFTER INSERT ON public.notifications REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.notify_enqueue_outbound();
CREATE TRIGGER orders_check_lease_epoch_insert AFTER INSERT ON public.orders REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.check_lease_epochs();
CREATE TRIGGER orders_check_lease_epoch_update AFTER UPDATE ON public.orders REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.check_lease_epochs();
CREATE TRIGGER orders_updated_at BEFORE UPDATE ON public.orders FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER organisations_updated_at BEFORE UPDATE ON public.organisations FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER payout_destinations_updated_at BEFORE UPDATE ON public.payout_destinations FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER plans_updated_at BEFORE UPDATE ON public.plans FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER position_requests_notify AFTER INSERT ON public.position_requests FOR EACH ROW EXECUTE FUNCTION private.notify_position_request();
CREATE TRIGGER position_requests_set_updated_at BEFORE UPDATE ON public.position_requests FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER profiles_updated_at BEFORE UPDATE ON public.profiles FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER protective_orders_set_updated_at BEFORE UPDATE ON public.protective_orders FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER reviews_updated_at BEFORE UPDATE ON public.reviews FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER signals_after_change AFTER INSERT OR UPDATE ON public.signals FOR EACH ROW EXECUTE FUNCTION private.signal_after_change();
CREATE TRIGGER signals_exit_needs_market BEFORE UPDATE ON public.signals FOR EACH ROW EXECUTE FUNCTION private.signal_exit_needs_market();
CREATE TRIGGER signals_lifecycle BEFORE INSERT OR UPDATE ON public.signals FOR EACH ROW EXECUTE FUNCTION private.signal_lifecycle();
CREATE TRIGGER signals_rate_limit BEFORE INSERT ON public.signals FOR EACH ROW EXECUTE FUNCTION private.signal_rate_limit();
CREATE TRIGGER signals_update_rate_limit BEFORE UPDATE ON public.signals FOR EACH ROW EXECUTE FUNCTION private.signal_update_rate_limit();
CREATE TRIGGER signals_updated_at BEFORE UPDATE ON public.signals FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER strategies_assign_organisation_owner BEFORE INSERT ON public.strategies FOR EACH ROW EXECUTE FUNCTION private.assign_organisation_owner();
CREATE TRIGGER strategies_material_edit BEFORE UPDATE ON public.strategies FOR EACH ROW EXECUTE FUNCTION private.strategy_material_edit();
CREATE TRIGGER strategies_plan_custom_strategies BEFORE INSERT OR UPDATE OF strategy_type ON public.strategies FOR EACH ROW EXECUTE FUNCTION private.validate_custom_strategy();
CREATE TRIGGER strategies_price_changed AFTER UPDATE OF monthly_price ON public.strategies FOR EACH ROW WHEN ((new.monthly_price IS DISTINCT FROM old.monthly_price)) EXECUTE FUNCTION private.strategy_price_changed();
CREATE TRIGGER strategies_updated_at BEFORE UPDATE ON public.strategies FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER strategies_validate_limits BEFORE INSERT ON public.strategies FOR EACH ROW EXECUTE FUNCTION private.validate_bot_limits();
CREATE TRIGGER strategy_subscriptions_lapsed AFTER UPDATE OF status ON public.strategy_subscriptions FOR EACH ROW WHEN (((old.status = 'active'::text) AND (new.status <> 'active'::text))) EXECUTE FUNCTION private.strategy_subscription_lapsed();
CREATE TRIGGER strategy_subscriptions_updated_at BEFORE UPDATE ON public.strategy_subscriptions FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER subscriptions_updated_at BEFORE UPDATE ON public.subscriptions FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER sync_runs_enqueue_requested AFTER INSERT ON public.sync_runs FOR EACH ROW WHEN ((new.status = 'requested'::text)) EXECUTE FUNCTION private.holdings_enqueue_sync_run();
CREATE TRIGGER sync_runs_rate_limit BEFORE INSERT ON public.sync_runs FOR EACH ROW EXECUTE FUNCTION private.limit_manual_sync_requests();
CREATE TRIGGER sync_runs_updated_at BEFORE UPDATE ON public.sync_runs FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER trades_check_lease_epoch_insert AFTER INSERT ON public.trades REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.check_lease_epochs();
CREATE TRIGGER trades_check_lease_epoch_update AFTER UPDATE ON public.trades REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.check_lease_epochs();
CREATE TRIGGER trades_daily_totals_delete AFTER DELETE ON public.trades REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION private.trade_totals_apply();
CREATE TRIGGER trades_daily_totals_insert AFTER INSERT ON public.trades REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.trade_totals_apply();
CREATE TRIGGER trades_daily_totals_truncate AFTER TRUNCATE ON public.trades FOR EACH STATEMENT EXECUTE FUNCTION private.trade_totals_truncate();
CREATE TRIGGER trades_daily_totals_update AFTER UPDATE ON public.trades REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.trade_totals_apply();
CREATE TRIGGER trades_update_bot_statistics_delete AFTER DELETE ON public.trades REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.update_bot_statistics();
CREATE TRIGGER trades_update_bot_statistics_insert AFTER INSERT ON public.trades REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.update_bot_statistics();
CREATE TRIGGER trades_update_bot_statistics_update AFTER UPDATE ON public.trades REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.update_bot_statistics();
CREATE TRIGGER trades_updated_at BEFORE UPDATE ON public.trades FOR EACH ROW EXECUTE FUNCTION private.set_updated_at();
CREATE TRIGGER webhook_events_console_notify AFTER INSERT OR DELETE OR UPDATE OF status, error ON public.webhook_events FOR EACH STATEMENT EXECUTE FUNCTION private.console_notify('webhooks');
CREATE TRIGGER webhook_events_enqueue_billing AFTER INSERT ON public.webhook_events FOR EACH ROW WHEN ((new.provider = ANY (ARRAY['stripe'::text, 'paystack'::text, 'tripay'::text]))) EXECUTE FUNCTION private.billing_enqueue_webhook_event();
CREATE TRIGGER webhook_events_enqueue_snaptrade AFTER INSERT ON public.webhook_events FOR EACH ROW WHEN ((new.provider = 'snaptrade'::text)) EXECUTE FUNCTION private.holdings_enqueue_snaptrade_event();
CREATE TRIGGER webhook_events_once BEFORE INSERT OR UPDATE OF provider, event_id ON public.webhook_events FOR EACH ROW EXECUTE FUNCTION private.webhook_events_once();
CREATE TRIGGER webhook_events_requeue_billing AFTER UPDATE OF status ON public.webhook_events FOR EACH ROW WHEN (((old.status = ANY (ARRAY['waiting'::text, 'failed'::text])) AND (new.status = 'received'::text) AND (new.provider = ANY (ARRAY['stripe'::text, 'paystack'::text, 'tripay'::text])))) EXECUTE FUNCTION private.billing_requeue_webhook_event();
CREATE TRIGGER webhook_events_requeue_snaptrade AFTER UPDATE OF status ON public.webhook_events FOR EACH ROW WHEN (((old.status = ANY (ARRAY['waiting'::text, 'failed'::text])) AND (new.status = 'received'::text) AND (new.provider = 'snaptrade'::text))) EXECUTE FUNCTION private.holdings_requeue_snaptrade_event();
CREATE TRIGGER workers_console_notify AFTER INSERT OR DELETE OR UPDATE OF status ON public.workers FOR EACH STATEMENT EXECUTE FUNCTION private.console_notify('fleet');
ALTER TABLE ONLY private.billing_chargebacks
    ADD CONSTRAINT billing_chargebacks_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES public.invoices(id) ON DELETE CASCADE;
ALTER TABLE ONLY private.billing_clawback_parts
    ADD CONSTRAINT billing_clawback_parts_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES public.invoices(id) ON DELETE CASCADE;
ALTER TABLE ONLY private.billing_payment_methods
    ADD CONSTRAINT billing_payment_methods_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY private.billing_refunds
    ADD CONSTRAINT billing_refunds_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES public.invoices(id) ON DELETE CASCADE;
ALTER TABLE ONLY private.billing_reminders
    ADD CONSTRAINT billing_reminders_subscription_id_fkey FOREIGN KEY (subscription_id) REFERENCES public.subscriptions(id) ON DELETE CASCADE;
ALTER TABLE ONLY private.credit_open_holds
    ADD CONSTRAINT credit_open_holds_transfer_id_fkey FOREIGN KEY (transfer_id) REFERENCES public.credit_transfers(id);
ALTER TABLE ONLY private.holdings_pending_aggregates
    ADD CONSTRAINT holdings_pending_aggregates_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY private.password_failures
    ADD CONSTRAINT password_failures_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE;
ALTER TABLE ONLY private.signal_fanouts
    ADD CONSTRAINT signal_fanouts_signal_id_fkey FOREIGN KEY (signal_id) REFERENCES public.signals(id) ON DELETE CASCADE;
ALTER TABLE ONLY private.tradingview_tokens
    ADD CONSTRAINT tradingview_tokens_strategy_id_fkey FOREIGN KEY (strategy_id) REFERENCES public.strategies(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.aggregated_holdings
    ADD CONSTRAINT aggregated_holdings_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.ai_analyses
    ADD CONSTRAINT ai_analyses_backtest_run_id_fkey FOREIGN KEY (backtest_run_id) REFERENCES public.backtest_runs(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.ai_analyses
    ADD CONSTRAINT ai_analyses_bot_id_fkey FOREIGN KEY (bot_id) REFERENCES public.bots(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.ai_analyses
    ADD CONSTRAINT ai_analyses_result_backtest_run_id_fkey FOREIGN KEY (result_backtest_run_id) REFERENCES public.backtest_runs(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.ai_analyses
    ADD CONSTRAINT ai_analyses_saved_strategy_id_fkey FOREIGN KEY (saved_strategy_id) REFERENCES public.strategies(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.ai_analyses
    ADD CONSTRAINT ai_analyses_strategy_id_fkey FOREIGN KEY (strategy_id) REFERENCES public.strategies(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.ai_analyses
    ADD CONSTRAINT ai_analyses_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_organisation_id_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisations(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.api_usage_days
    ADD CONSTRAINT api_usage_days_key_id_fkey FOREIGN KEY (key_id) REFERENCES public.api_keys(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.api_usage_days
    ADD CONSTRAINT api_usage_days_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE public.api_usage_minutes
    ADD CONSTRAINT api_usage_minutes_key_id_fkey FOREIGN KEY (key_id) REFERENCES public.api_keys(id) ON DELETE CASCADE;
ALTER TABLE public.api_usage_minutes
    ADD CONSTRAINT api_usage_minutes_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.backtest_reports
    ADD CONSTRAINT backtest_reports_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.backtest_runs(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.backtest_reports
    ADD CONSTRAINT backtest_reports_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.backtest_results
    ADD CONSTRAINT backtest_results_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.backtest_runs(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.backtest_results
    ADD CONSTRAINT backtest_results_strategy_id_fkey FOREIGN KEY (strategy_id) REFERENCES public.strategies(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.backtest_results
    ADD CONSTRAINT backtest_results_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.backtest_runs
    ADD CONSTRAINT backtest_runs_strategy_id_fkey FOREIGN KEY (strategy_id) REFERENCES public.strategies(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.backtest_runs
    ADD CONSTRAINT backtest_runs_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.bot_equity
    ADD CONSTRAINT bot_equity_bot_id_fkey FOREIGN KEY (bot_id) REFERENCES public.bots(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.bot_equity
    ADD CONSTRAINT bot_equity_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.bot_leases
    ADD CONSTRAINT bot_leases_bot_id_fkey FOREIGN KEY (bot_id) REFERENCES public.bots(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.bot_leases
    ADD CONSTRAINT bot_leases_last_worker_id_fkey FOREIGN KEY (last_worker_id) REFERENCES public.workers(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.bot_leases
    ADD CONSTRAINT bot_leases_taken_over_from_fkey FOREIGN KEY (taken_over_from) REFERENCES public.workers(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.bot_leases
    ADD CONSTRAINT bot_leases_worker_id_fkey FOREIGN KEY (worker_id) REFERENCES public.workers(id) ON DELETE SET NULL;
ALTER TABLE public.bot_logs
    ADD CONSTRAINT bot_logs_bot_id_fkey FOREIGN KEY (bot_id) REFERENCES public.bots(id) ON DELETE CASCADE;
ALTER TABLE public.bot_logs
    ADD CONSTRAINT bot_logs_strategy_id_fkey FOREIGN KEY (strategy_id) REFERENCES public.strategies(id) ON DELETE CASCADE;
ALTER TABLE public.bot_logs
    ADD CONSTRAINT bot_logs_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.bots
    ADD CONSTRAINT bots_exchange_credential_id_fkey FOREIGN KEY (exchange_credential_id) REFERENCES public.exchange_credentials(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.bots
    ADD CONSTRAINT bots_organisation_id_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisations(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.bots
    ADD CONSTRAINT bots_strategy_id_fkey FOREIGN KEY (strategy_id) REFERENCES public.strategies(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.bots
    ADD CONSTRAINT bots_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.brokerage_accounts
    ADD CONSTRAINT brokerage_accounts_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES public.brokerage_connections(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.brokerage_accounts
    ADD CONSTRAINT brokerage_accounts_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.brokerage_connections
    ADD CONSTRAINT brokerage_connections_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.brokerage_positions
    ADD CONSTRAINT brokerage_positions_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.brokerage_accounts(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.brokerage_positions
    ADD CONSTRAINT brokerage_positions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.credit_accounts
    ADD CONSTRAINT credit_accounts_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.credit_exposures
    ADD CONSTRAINT credit_exposures_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES public.invoices(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.credit_exposures
    ADD CONSTRAINT credit_exposures_resolved_by_fkey FOREIGN KEY (resolved_by) REFERENCES public.profiles(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.credit_exposures
    ADD CONSTRAINT credit_exposures_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.credit_transfers
    ADD CONSTRAINT credit_transfers_pending_id_fkey FOREIGN KEY (pending_id) REFERENCES public.credit_transfers(id);
ALTER TABLE ONLY public.data_requests
    ADD CONSTRAINT data_requests_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.exchange_credentials
    ADD CONSTRAINT exchange_credentials_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_credit_pack_id_fkey FOREIGN KEY (credit_pack_id) REFERENCES public.credit_packs(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_plan_id_fkey FOREIGN KEY (plan_id) REFERENCES public.plans(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_subscription_id_fkey FOREIGN KEY (subscription_id) REFERENCES public.subscriptions(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.invoices
    ADD CONSTRAINT invoices_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_locked_by_fkey FOREIGN KEY (locked_by) REFERENCES public.workers(id) ON DELETE SET NULL;
ALTER TABLE public.notifications
    ADD CONSTRAINT notifications_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_bot_id_fkey FOREIGN KEY (bot_id) REFERENCES public.bots(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.orders
    ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.organisation_invitations
    ADD CONSTRAINT organisation_invitations_invited_by_fkey FOREIGN KEY (invited_by) REFERENCES public.profiles(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.organisation_invitations
    ADD CONSTRAINT organisation_invitations_organisation_id_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisations(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.organisation_members
    ADD CONSTRAINT organisation_members_invited_by_fkey FOREIGN KEY (invited_by) REFERENCES public.profiles(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.organisation_members
    ADD CONSTRAINT organisation_members_organisation_id_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisations(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.organisation_members
    ADD CONSTRAINT organisation_members_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.organisations
    ADD CONSTRAINT organisations_owner_id_fkey FOREIGN KEY (owner_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.payout_destinations
    ADD CONSTRAINT payout_destinations_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.payouts
    ADD CONSTRAINT payouts_approved_by_fkey FOREIGN KEY (approved_by) REFERENCES public.profiles(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.payouts
    ADD CONSTRAINT payouts_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES public.payout_destinations(id) ON DELETE RESTRICT;
ALTER TABLE ONLY public.payouts
    ADD CONSTRAINT payouts_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.position_requests
    ADD CONSTRAINT position_requests_bot_id_fkey FOREIGN KEY (bot_id) REFERENCES public.bots(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.position_requests
    ADD CONSTRAINT position_requests_trade_id_fkey FOREIGN KEY (trade_id) REFERENCES public.trades(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.position_requests
    ADD CONSTRAINT position_requests_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.profiles
    ADD CONSTRAINT profiles_id_fkey FOREIGN KEY (id) REFERENCES auth.users(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.protective_orders
    ADD CONSTRAINT protective_orders_bot_id_fkey FOREIGN KEY (bot_id) REFERENCES public.bots(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.protective_orders
    ADD CONSTRAINT protective_orders_trade_id_fkey FOREIGN KEY (trade_id) REFERENCES public.trades(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.protective_orders
    ADD CONSTRAINT protective_orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.reviews
    ADD CONSTRAINT reviews_strategy_id_fkey FOREIGN KEY (strategy_id) REFERENCES public.strategies(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.reviews
    ADD CONSTRAINT reviews_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.signal_executions
    ADD CONSTRAINT signal_executions_signal_id_fkey FOREIGN KEY (signal_id) REFERENCES public.signals(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.signal_executions
    ADD CONSTRAINT signal_executions_subscription_id_fkey FOREIGN KEY (subscription_id) REFERENCES public.strategy_subscriptions(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.signals
    ADD CONSTRAINT signals_provider_id_fkey FOREIGN KEY (provider_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.signals
    ADD CONSTRAINT signals_strategy_id_fkey FOREIGN KEY (strategy_id) REFERENCES public.strategies(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.strategies
    ADD CONSTRAINT strategies_organisation_id_fkey FOREIGN KEY (organisation_id) REFERENCES public.organisations(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.strategies
    ADD CONSTRAINT strategies_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.strategy_subscriptions
    ADD CONSTRAINT strategy_subscriptions_bot_id_fkey FOREIGN KEY (bot_id) REFERENCES public.bots(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.strategy_subscriptions
    ADD CONSTRAINT strategy_subscriptions_strategy_id_fkey FOREIGN KEY (strategy_id) REFERENCES public.strategies(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.strategy_subscriptions
    ADD CONSTRAINT strategy_subscriptions_subscriber_id_fkey FOREIGN KEY (subscriber_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.subscriptions
    ADD CONSTRAINT subscriptions_invoice_id_fkey FOREIGN KEY (invoice_id) REFERENCES public.invoices(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.subscriptions
    ADD CONSTRAINT subscriptions_plan_id_fkey FOREIGN KEY (plan_id) REFERENCES public.plans(id) ON DELETE RESTRICT;
ALTER TABLE ONLY public.subscriptions
    ADD CONSTRAINT subscriptions_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.sync_runs
    ADD CONSTRAINT sync_runs_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.brokerage_accounts(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.sync_runs
    ADD CONSTRAINT sync_runs_connection_id_fkey FOREIGN KEY (connection_id) REFERENCES public.brokerage_connections(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.sync_runs
    ADD CONSTRAINT sync_runs_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.trades
    ADD CONSTRAINT trades_bot_id_fkey FOREIGN KEY (bot_id) REFERENCES public.bots(id) ON DELETE CASCADE;
ALTER TABLE ONLY public.trades
    ADD CONSTRAINT trades_entry_order_id_fkey FOREIGN KEY (entry_order_id) REFERENCES public.orders(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.trades
    ADD CONSTRAINT trades_exit_order_id_fkey FOREIGN KEY (exit_order_id) REFERENCES public.orders(id) ON DELETE SET NULL;
ALTER TABLE ONLY public.trades
    ADD CONSTRAINT trades_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.profiles(id) ON DELETE CASCADE;
ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Active subscribers can read signals" ON public.signals FOR SELECT TO authenticated USING (private.is_active_subscriber(strategy_id));
CREATE POLICY "Admins can read alert incidents" ON public.alert_incidents FOR SELECT TO tradefleet_admin USING (( SELECT private.is_admin() AS is_admin));
CREATE POLICY "Admins can read bot leases" ON public.bot_leases FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every AI analysis" ON public.ai_analyses FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every backtest report" ON public.backtest_reports FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every backtest result" ON public.backtest_results FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every backtest run" ON public.backtest_runs FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every bot" ON public.bots FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every bot log" ON public.bot_logs FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every bot's equity" ON public.bot_equity FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every copy execution" ON public.signal_executions FOR SELECT TO authenticated USING (( SELECT private.is_admin() AS is_admin));
CREATE POLICY "Admins can read every credit account" ON public.credit_accounts FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every credit exposure" ON public.credit_exposures FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every credit pack" ON public.credit_packs FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every data request" ON public.data_requests FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every invoice" ON public.invoices FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every order" ON public.orders FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every organisation" ON public.organisations FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every organisation invitation" ON public.organisation_invitations FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every organisation member" ON public.organisation_members FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every payout" ON public.payouts FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every payout destination" ON public.payout_destinations FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every plan" ON public.plans FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every position request" ON public.position_requests FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every profile" ON public.profiles FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every protective order" ON public.protective_orders FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every signal" ON public.signals FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every strategy" ON public.strategies FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every subscription" ON public.subscriptions FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every subscription to a strategy" ON public.strategy_subscriptions FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every sync run" ON public.sync_runs FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every trade" ON public.trades FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read every transfer" ON public.credit_transfers FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read jobs" ON public.jobs FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read service checks" ON public.service_checks FOR SELECT TO tradefleet_admin USING (( SELECT private.is_admin() AS is_admin));
CREATE POLICY "Admins can read service status" ON public.service_status FOR SELECT TO tradefleet_admin USING (( SELECT private.is_admin() AS is_admin));
CREATE POLICY "Admins can read the audit log" ON public.admin_audit_log FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read webhook events" ON public.webhook_events FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Admins can read workers" ON public.workers FOR SELECT TO tradefleet_admin USING (true);
CREATE POLICY "Anyone can read active plans" ON public.plans FOR SELECT TO anon, authenticated USING (is_active);
CREATE POLICY "Anyone can read credit packs for sale" ON public.credit_packs FOR SELECT TO anon, authenticated USING (is_active);
CREATE POLICY "Anyone can read reviews of marketplace strategies" ON public.reviews FOR SELECT TO anon, authenticated USING ((EXISTS ( SELECT 1
   FROM public.strategies s
  WHERE (s.id = reviews.strategy_id))));
CREATE POLICY "Anyone can read verified marketplace strategies" ON public.strategies FOR SELECT TO anon, authenticated USING ((is_public AND (strategy_type = 'marketplace'::text) AND is_verified));
CREATE POLICY "Key owners and organisation admins can read usage per day" ON public.api_usage_days FOR SELECT TO authenticated USING ((key_id = ANY (( SELECT private.api_usage_key_ids() AS api_usage_key_ids)::uuid[])));
CREATE POLICY "Key owners and organisation admins can read usage per minute" ON public.api_usage_minutes FOR SELECT TO authenticated USING ((key_id = ANY (( SELECT private.api_usage_key_ids() AS api_usage_key_ids)::uuid[])));
CREATE POLICY "Members can read their organisations" ON public.organisations FOR SELECT TO authenticated USING ((id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE (m.user_id = ( SELECT auth.uid() AS uid))) AS "array")::uuid[])));
CREATE POLICY "Members can read their organisations' members" ON public.organisation_members FOR SELECT TO authenticated USING (((user_id = ( SELECT auth.uid() AS uid)) OR (organisation_id = ANY (( SELECT private.organisation_ids() AS organisation_ids)::uuid[]))));
CREATE POLICY "Organisation API keys reach only its bots" ON public.bots AS RESTRICTIVE TO authenticated USING ((((( SELECT auth.jwt() AS jwt) ->> 'organisation_id'::text) IS NULL) OR (organisation_id = ((( SELECT auth.jwt() AS jwt) ->> 'organisation_id'::text))::uuid))) WITH CHECK ((((( SELECT auth.jwt() AS jwt) ->> 'organisation_id'::text) IS NULL) OR (organisation_id = ((( SELECT auth.jwt() AS jwt) ->> 'organisation_id'::text))::uuid)));
CREATE POLICY "Organisation API keys reach only its orders" ON public.orders AS RESTRICTIVE FOR SELECT TO authenticated USING ((((( SELECT auth.jwt() AS jwt) ->> 'organisation_id'::text) IS NULL) OR (bot_id = ANY (( SELECT private.organisation_key_bot_ids() AS organisation_key_bot_ids)::uuid[]))));
CREATE POLICY "Organisation API keys reach only its strategies" ON public.strategies AS RESTRICTIVE TO authenticated USING ((((( SELECT auth.jwt() AS jwt) ->> 'organisation_id'::text) IS NULL) OR (organisation_id = ((( SELECT auth.jwt() AS jwt) ->> 'organisation_id'::text))::uuid) OR (is_public AND (strategy_type = 'marketplace'::text) AND is_verified))) WITH CHECK ((((( SELECT auth.jwt() AS jwt) ->> 'organisation_id'::text) IS NULL) OR (organisation_id = ((( SELECT auth.jwt() AS jwt) ->> 'organisation_id'::text))::uuid)));
CREATE POLICY "Organisation API keys reach only its trades" ON public.trades AS RESTRICTIVE FOR SELECT TO authenticated USING ((((( SELECT auth.jwt() AS jwt) ->> 'organisation_id'::text) IS NULL) OR (bot_id = ANY (( SELECT private.organisation_key_bot_ids() AS organisation_key_bot_ids)::uuid[]))));
CREATE POLICY "Organisation admins and invitees can read invitations" ON public.organisation_invitations FOR SELECT TO authenticated USING (((organisation_id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE ((m.user_id = ( SELECT auth.uid() AS uid)) AND (m.role = ANY (ARRAY['owner'::text, 'admin'::text])))) AS "array")::uuid[])) OR (email = ( SELECT private.caller_email() AS caller_email))));
CREATE POLICY "Organisation admins can create its bots" ON public.bots FOR INSERT TO authenticated WITH CHECK (((organisation_id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE ((m.user_id = ( SELECT auth.uid() AS uid)) AND (m.role = ANY (ARRAY['owner'::text, 'admin'::text])))) AS "array")::uuid[])) AND ((strategy_id IS NULL) OR (EXISTS ( SELECT 1
   FROM public.strategies s
  WHERE (s.id = bots.strategy_id)))) AND ((exchange_credential_id IS NULL) OR (EXISTS ( SELECT 1
   FROM public.exchange_credentials c
  WHERE ((c.id = bots.exchange_credential_id) AND (c.user_id = ( SELECT auth.uid() AS uid)) AND (c.user_id = bots.user_id)))))));
CREATE POLICY "Organisation admins can create its strategies" ON public.strategies FOR INSERT TO authenticated WITH CHECK (((organisation_id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE ((m.user_id = ( SELECT auth.uid() AS uid)) AND (m.role = ANY (ARRAY['owner'::text, 'admin'::text])))) AS "array")::uuid[])) AND (strategy_type = ANY (ARRAY['custom'::text, 'ai_generated'::text]))));
CREATE POLICY "Organisation admins can delete its bots" ON public.bots FOR DELETE TO authenticated USING ((organisation_id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE ((m.user_id = ( SELECT auth.uid() AS uid)) AND (m.role = ANY (ARRAY['owner'::text, 'admin'::text])))) AS "array")::uuid[])));
CREATE POLICY "Organisation admins can delete its strategies" ON public.strategies FOR DELETE TO authenticated USING ((organisation_id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE ((m.user_id = ( SELECT auth.uid() AS uid)) AND (m.role = ANY (ARRAY['owner'::text, 'admin'::text])))) AS "array")::uuid[])));
CREATE POLICY "Organisation admins can read its API keys" ON public.api_keys FOR SELECT TO authenticated USING ((organisation_id = ANY (( SELECT private.organisation_ids('admin'::text) AS organisation_ids)::uuid[])));
CREATE POLICY "Organisation admins can update its strategies" ON public.strategies FOR UPDATE TO authenticated USING ((organisation_id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE ((m.user_id = ( SELECT auth.uid() AS uid)) AND (m.role = ANY (ARRAY['owner'::text, 'admin'::text])))) AS "array")::uuid[]))) WITH CHECK (((organisation_id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE ((m.user_id = ( SELECT auth.uid() AS uid)) AND (m.role = ANY (ARRAY['owner'::text, 'admin'::text])))) AS "array")::uuid[])) AND (strategy_type = ANY (ARRAY['custom'::text, 'ai_generated'::text]))));
CREATE POLICY "Organisation members can read its bots" ON public.bots FOR SELECT TO authenticated USING ((organisation_id = ANY (( SELECT private.organisation_ids() AS organisation_ids)::uuid[])));
CREATE POLICY "Organisation members can read its bots' logs" ON public.bot_logs FOR SELECT TO authenticated USING ((bot_id = ANY (( SELECT private.organisation_bot_ids() AS organisation_bot_ids)::uuid[])));
CREATE POLICY "Organisation members can read its bots' orders" ON public.orders FOR SELECT TO authenticated USING ((bot_id = ANY (( SELECT private.organisation_bot_ids() AS organisation_bot_ids)::uuid[])));
CREATE POLICY "Organisation members can read its bots' position requests" ON public.position_requests FOR SELECT TO authenticated USING ((bot_id = ANY (( SELECT private.organisation_bot_ids() AS organisation_bot_ids)::uuid[])));
CREATE POLICY "Organisation members can read its bots' protective orders" ON public.protective_orders FOR SELECT TO authenticated USING ((bot_id = ANY (( SELECT private.organisation_bot_ids() AS organisation_bot_ids)::uuid[])));
CREATE POLICY "Organisation members can read its bots' trades" ON public.trades FOR SELECT TO authenticated USING ((bot_id = ANY (( SELECT private.organisation_bot_ids() AS organisation_bot_ids)::uuid[])));
CREATE POLICY "Organisation members can read its strategies" ON public.strategies FOR SELECT TO authenticated USING ((organisation_id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE (m.user_id = ( SELECT auth.uid() AS uid))) AS "array")::uuid[])));
CREATE POLICY "Organisation members can update its bots" ON public.bots FOR UPDATE TO authenticated USING ((organisation_id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE ((m.user_id = ( SELECT auth.uid() AS uid)) AND (m.role <> 'read_only'::text))) AS "array")::uuid[]))) WITH CHECK ((organisation_id = ANY (( SELECT ARRAY( SELECT m.organisation_id
           FROM public.organisation_members m
          WHERE ((m.user_id = ( SELECT auth.uid() AS uid)) AND (m.role <> 'read_only'::text))) AS "array")::uuid[])));
CREATE POLICY "Providers can publish signals on their own strategies" ON public.signals FOR INSERT TO authenticated WITH CHECK (((provider_id = ( SELECT auth.uid() AS uid)) AND (( SELECT private.app_role() AS app_role) = ANY (ARRAY['provider'::text, 'admin'::text])) AND private.owns_strategy(strategy_id)));
CREATE POLICY "Providers can read signals of their strategies" ON public.signals FOR SELECT TO authenticated USING ((provider_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Providers can read their own payout destination" ON public.payout_destinations FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Providers can read their own payouts" ON public.payouts FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Providers can update their own signals" ON public.signals FOR UPDATE TO authenticated USING ((provider_id = ( SELECT auth.uid() AS uid))) WITH CHECK ((provider_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Signed-in users can read market candles" ON public.candles FOR SELECT TO authenticated USING (true);
CREATE POLICY "Signed-in users can read the exchanges' markets" ON public.exchange_markets FOR SELECT TO authenticated USING (true);
CREATE POLICY "Signed-in users can read when markets were loaded" ON public.exchange_market_loads FOR SELECT TO authenticated USING (true);
CREATE POLICY "Subscribers can change execution of their own subscriptions" ON public.strategy_subscriptions FOR UPDATE TO authenticated USING ((subscriber_id = ( SELECT auth.uid() AS uid))) WITH CHECK (((subscriber_id = ( SELECT auth.uid() AS uid)) AND ((bot_id IS NULL) OR (EXISTS ( SELECT 1
   FROM public.bots b
  WHERE ((b.id = strategy_subscriptions.bot_id) AND (b.user_id = ( SELECT auth.uid() AS uid))))))));
CREATE POLICY "Subscribers can read their own copy executions" ON public.signal_executions FOR SELECT TO authenticated USING ((subscriber_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Subscribers can read their own subscriptions" ON public.strategy_subscriptions FOR SELECT TO authenticated USING ((subscriber_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Subscribers can review a strategy once" ON public.reviews FOR INSERT TO authenticated WITH CHECK (((user_id = ( SELECT auth.uid() AS uid)) AND private.has_subscribed(strategy_id)));
CREATE POLICY "Users can cancel their own backtest runs" ON public.backtest_runs FOR UPDATE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid))) WITH CHECK ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can change auto-renew of their own subscriptions" ON public.subscriptions FOR UPDATE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid))) WITH CHECK ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can create their own bots" ON public.bots FOR INSERT TO authenticated WITH CHECK (((user_id = ( SELECT auth.uid() AS uid)) AND ((strategy_id IS NULL) OR (EXISTS ( SELECT 1
   FROM public.strategies s
  WHERE (s.id = bots.strategy_id)))) AND ((exchange_credential_id IS NULL) OR (EXISTS ( SELECT 1
   FROM public.exchange_credentials c
  WHERE ((c.id = bots.exchange_credential_id) AND (c.user_id = ( SELECT auth.uid() AS uid))))))));
CREATE POLICY "Users can create their own strategies" ON public.strategies FOR INSERT TO authenticated WITH CHECK (((user_id = ( SELECT auth.uid() AS uid)) AND (strategy_type <> 'builtin'::text) AND ((strategy_type <> 'marketplace'::text) OR (( SELECT private.app_role() AS app_role) = ANY (ARRAY['provider'::text, 'admin'::text])))));
CREATE POLICY "Users can delete their own backtest runs" ON public.backtest_runs FOR DELETE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can delete their own bots" ON public.bots FOR DELETE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can delete their own exchange credentials" ON public.exchange_credentials FOR DELETE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can delete their own notifications" ON public.notifications FOR DELETE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can delete their own reviews" ON public.reviews FOR DELETE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can delete their own strategies" ON public.strategies FOR DELETE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can edit their own reviews" ON public.reviews FOR UPDATE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid))) WITH CHECK ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can mark their own notifications read" ON public.notifications FOR UPDATE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid))) WITH CHECK ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own AI analyses" ON public.ai_analyses FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own API keys" ON public.api_keys FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own aggregated holdings" ON public.aggregated_holdings FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own backtest reports" ON public.backtest_reports FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own backtest results" ON public.backtest_results FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own backtest runs" ON public.backtest_runs FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own bot logs" ON public.bot_logs FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own bots" ON public.bots FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own bots' equity" ON public.bot_equity FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own brokerage accounts" ON public.brokerage_accounts FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own brokerage connections" ON public.brokerage_connections FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own brokerage positions" ON public.brokerage_positions FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own credit accounts" ON public.credit_accounts FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own data requests" ON public.data_requests FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own exchange credentials" ON public.exchange_credentials FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own invoices" ON public.invoices FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own notifications" ON public.notifications FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own orders" ON public.orders FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own position requests" ON public.position_requests FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own profile" ON public.profiles FOR SELECT TO authenticated USING ((id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own protective orders" ON public.protective_orders FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own strategies" ON public.strategies FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own subscriptions" ON public.subscriptions FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own sync runs" ON public.sync_runs FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read their own trades" ON public.trades FOR SELECT TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can read transfers of their own accounts" ON public.credit_transfers FOR SELECT TO authenticated USING ((EXISTS ( SELECT 1
   FROM public.credit_accounts a
  WHERE ((a.user_id = ( SELECT auth.uid() AS uid)) AND (a.id = ANY (ARRAY[credit_transfers.debit_account_id, credit_transfers.credit_account_id]))))));
CREATE POLICY "Users can rename their own exchange credentials" ON public.exchange_credentials FOR UPDATE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid))) WITH CHECK ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can request a refresh of their own holdings" ON public.sync_runs FOR INSERT TO authenticated WITH CHECK (((user_id = ( SELECT auth.uid() AS uid)) AND ((connection_id IS NULL) OR (EXISTS ( SELECT 1
   FROM public.brokerage_connections c
  WHERE ((c.id = sync_runs.connection_id) AND (c.user_id = ( SELECT auth.uid() AS uid))))))));
CREATE POLICY "Users can request their own backtest runs" ON public.backtest_runs FOR INSERT TO authenticated WITH CHECK (((user_id = ( SELECT auth.uid() AS uid)) AND ((strategy_id IS NULL) OR (EXISTS ( SELECT 1
   FROM public.strategies s
  WHERE (s.id = backtest_runs.strategy_id))))));
CREATE POLICY "Users can request their own data downloads" ON public.data_requests FOR INSERT TO authenticated WITH CHECK ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can unlink their own brokerage connections" ON public.brokerage_connections FOR DELETE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can update their own bots" ON public.bots FOR UPDATE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid))) WITH CHECK (((user_id = ( SELECT auth.uid() AS uid)) AND ((strategy_id IS NULL) OR (EXISTS ( SELECT 1
   FROM public.strategies s
  WHERE (s.id = bots.strategy_id)))) AND ((exchange_credential_id IS NULL) OR (EXISTS ( SELECT 1
   FROM public.exchange_credentials c
  WHERE ((c.id = bots.exchange_credential_id) AND (c.user_id = ( SELECT auth.uid() AS uid))))))));
CREATE POLICY "Users can update their own profile" ON public.profiles FOR UPDATE TO authenticated USING ((id = ( SELECT auth.uid() AS uid))) WITH CHECK ((id = ( SELECT auth.uid() AS uid)));
CREATE POLICY "Users can update their own strategies" ON public.strategies FOR UPDATE TO authenticated USING ((user_id = ( SELECT auth.uid() AS uid))) WITH CHECK (((user_id = ( SELECT auth.uid() AS uid)) AND (strategy_type <> 'builtin'::text) AND ((strategy_type <> 'marketplace'::text) OR (( SELECT private.app_role() AS app_role) = ANY (ARRAY['provider'::text, 'admin'::text])))));
CREATE POLICY "Users read the latest candles of their bots' markets" ON public.market_latest_candles FOR SELECT TO authenticated USING ((EXISTS ( SELECT 1
   FROM public.bots b
  WHERE ((b.user_id = ( SELECT auth.uid() AS uid)) AND (b.exchange = market_latest_candles.exchange) AND (market_latest_candles.symbol = ANY (COALESCE(b.pairs, ARRAY[b.trading_pair])))))));
CREATE POLICY "Users read the prices of what they hold or trade" ON public.symbol_prices FOR SELECT TO authenticated USING (((EXISTS ( SELECT 1
   FROM public.brokerage_positions p
  WHERE ((p.user_id = ( SELECT auth.uid() AS uid)) AND (p.symbol = symbol_prices.symbol)))) OR (EXISTS ( SELECT 1
   FROM public.aggregated_holdings h
  WHERE ((h.user_id = ( SELECT auth.uid() AS uid)) AND (h.symbol = symbol_prices.symbol)))) OR (EXISTS ( SELECT 1
   FROM public.bots b
  WHERE ((b.user_id = ( SELECT auth.uid() AS uid)) AND (symbol_prices.symbol = ANY (COALESCE(b.pairs, ARRAY[b.trading_pair]))))))));
ALTER TABLE public.admin_audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.aggregated_holdings ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.ai_analyses ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.alert_incidents ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.api_usage_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.api_usage_minutes ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.backtest_reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.backtest_results ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.backtest_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.bot_equity ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.bot_leases ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.bot_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.bots ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.brokerage_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.brokerage_connections ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.brokerage_positions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.candles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.credit_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.credit_exposures ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.credit_packs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.credit_transfers ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.data_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.exchange_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.exchange_market_loads ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.exchange_markets ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.invoices ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.market_latest_candles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organisation_invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organisation_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.organisations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.payout_destinations ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.payouts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.position_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.protective_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.reviews ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.service_checks ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.service_status ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.signal_executions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.signals ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.strategies ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.strategy_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.symbol_prices ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.sync_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.trades ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.workers ENABLE ROW LEVEL SECURITY;
CREATE PUBLICATION supabase_realtime WITH (publish = 'insert, update, delete, truncate', publish_via_partition_root = true);
ALTER PUBLICATION supabase_realtime OWNER TO postgres;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.aggregated_holdings;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.ai_analyses;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.api_usage_days;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.api_usage_minutes;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.backtest_runs;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.bot_equity;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.bot_logs;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.bots;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.data_requests;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.jobs;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.market_latest_candles;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.notifications;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.orders;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.position_requests;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.signals;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.symbol_prices;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.sync_runs;
ALTER PUBLICATION supabase_realtime ADD TABLE ONLY public.trades;
GRANT USAGE ON SCHEMA auth TO postgres;
GRANT USAGE ON SCHEMA auth TO anon;
GRANT USAGE ON SCHEMA auth TO authenticated;
GRANT USAGE ON SCHEMA auth TO service_role;
GRANT USAGE ON SCHEMA extensions TO anon;
GRANT USAGE ON SCHEMA extensions TO authenticated;
GRANT USAGE ON SCHEMA extensions TO service_role;
GRANT USAGE ON SCHEMA private TO anon;
GRANT USAGE ON SCHEMA private TO authenticated;
GRANT USAGE ON SCHEMA private TO service_role;
GRANT USAGE ON SCHEMA private TO tradefleet_admin;
GRANT USAGE ON SCHEMA public TO postgres;
GRANT USAGE ON SCHEMA public TO anon;
GRANT USAGE ON SCHEMA public TO authenticated;
GRANT USAGE ON SCHEMA public TO service_role;
GRANT USAGE ON SCHEMA public TO tradefleet_admin;
GRANT ALL ON TYPE private.finite_number TO anon;
GRANT ALL ON TYPE private.finite_number TO authenticated;
GRANT ALL ON TYPE private.finite_number TO service_role;
GRANT ALL ON TYPE private.credit_amount TO anon;
GRANT ALL ON TYPE private.credit_amount TO authenticated;
GRANT ALL ON TYPE private.credit_amount TO service_role;
GRANT ALL ON TABLE public.credit_transfers TO service_role;
GRANT SELECT ON TABLE public.credit_transfers TO authenticated;
REVOKE ALL ON TYPE private.fanout_candidate FROM PUBLIC;
GRANT ALL ON TABLE public.trades TO service_role;
GRANT SELECT ON TABLE public.trades TO authenticated;
REVOKE ALL ON TYPE private.fanout_close FROM PUBLIC;
GRANT ALL ON FUNCTION auth.email() TO postgres;
GRANT ALL ON FUNCTION auth.email() TO anon;
GRANT ALL ON FUNCTION auth.email() TO authenticated;
GRANT ALL ON FUNCTION auth.email() TO service_role;
GRANT ALL ON FUNCTION auth.jwt() TO postgres;
GRANT ALL ON FUNCTION auth.jwt() TO anon;
GRANT ALL ON FUNCTION auth.jwt() TO authenticated;
GRANT ALL ON FUNCTION auth.jwt() TO service_role;
GRANT ALL ON FUNCTION auth.role() TO postgres;
GRANT ALL ON FUNCTION auth.role() TO anon;
GRANT ALL ON FUNCTION auth.role() TO authenticated;
GRANT ALL ON FUNCTION auth.role() TO service_role;
GRANT ALL ON FUNCTION auth.uid() TO postgres;
GRANT ALL ON FUNCTION auth.uid() TO anon;
GRANT ALL ON FUNCTION auth.uid() TO authenticated;
GRANT ALL ON FUNCTION auth.uid() TO service_role;
GRANT SELECT ON TABLE public.admin_audit_log TO authenticated;
GRANT SELECT ON TABLE public.admin_audit_log TO service_role;
REVOKE ALL ON FUNCTION private.admin_audit(p_actor uuid, p_action text, p_target_type text, p_target_id text, p_reason text, p_before jsonb, p_after jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.admin_check_reason(p_reason text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.ai_backtest_reported() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.ai_link_saved_strategy(p_analysis_id uuid, p_strategy_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION private.ai_link_saved_strategy(p_analysis_id uuid, p_strategy_id uuid) TO authenticated;
REVOKE ALL ON FUNCTION private.api_calls_record(p_calls jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.api_key_hash(p_key text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.api_keys_check() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.api_scopes() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.api_usage_bill_day(p_key_id uuid, p_day date) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.api_usage_key_ids() FROM PUBLIC;
GRANT ALL ON FUNCTION private.api_usage_key_ids() TO authenticated;
GRANT ALL ON FUNCTION private.api_usage_key_ids() TO service_role;
REVOKE ALL ON FUNCTION private.app_role() FROM PUBLIC;
GRANT ALL ON FUNCTION private.app_role() TO anon;
GRANT ALL ON FUNCTION private.app_role() TO authenticated;
GRANT ALL ON FUNCTION private.app_role() TO service_role;
REVOKE ALL ON FUNCTION private.apply_bot_stat_deltas(p_bot uuid[], p_total bigint[], p_win bigint[], p_loss bigint[], p_profit numeric[], p_last timestamp with time zone[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.assign_organisation_owner() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.author_name(p_user_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION private.author_name(p_user_id uuid) TO anon;
GRANT ALL ON FUNCTION private.author_name(p_user_id uuid) TO authenticated;
GRANT ALL ON FUNCTION private.author_name(p_user_id uuid) TO service_role;
REVOKE ALL ON FUNCTION private.backtest_run_batch_market() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.billing_amount_minor(p_provider text, p_amount numeric, p_currency text) FROM PUBLIC;
GRANT ALL ON FUNCTION private.billing_amount_minor(p_provider text, p_amount numeric, p_currency text) TO service_role;
GRANT ALL ON TABLE public.invoices TO service_role;
GRANT SELECT ON TABLE public.invoices TO authenticated;
REVOKE ALL ON FUNCTION private.billing_claw_back(p_invoice public.invoices, p_credits numeric, p_step text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.billing_currency_problem(p_provider text, p_amount numeric, p_currency text) FROM PUBLIC;
GRANT ALL ON FUNCTION private.billing_currency_problem(p_provider text, p_amount numeric, p_currency text) TO service_role;
REVOKE ALL ON FUNCTION private.billing_day(p_at timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.billing_enforce_plan_limits(p_user_id uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.billing_enqueue_webhook_event() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.billing_grace() FROM PUBLIC;
GRANT ALL ON FUNCTION private.billing_grace() TO service_role;
REVOKE ALL ON FUNCTION private.billing_on_paid(p_invoice public.invoices) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.billing_on_refunded(p_invoice public.invoices) FROM PUBLIC;
GRANT ALL ON TABLE public.subscriptions TO service_role;
GRANT SELECT ON TABLE public.subscriptions TO authenticated;
GRANT UPDATE(auto_renew) ON TABLE public.subscriptions TO authenticated;
REVOKE ALL ON FUNCTION private.billing_provider_subscription(p_provider text, p_ref text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.billing_record_exposure(p_invoice public.invoices, p_user_id uuid, p_kind text, p_due numeric, p_recovered numeric) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.billing_requeue_webhook_event() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.billing_retry_offsets() FROM PUBLIC;
GRANT ALL ON FUNCTION private.billing_retry_offsets() TO service_role;
REVOKE ALL ON FUNCTION private.billing_tell(p_sub public.subscriptions, p_title text, p_body text, p_data jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.sizing_number(p_value jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION private.sizing_number(p_value jsonb) TO anon;
GRANT ALL ON FUNCTION private.sizing_number(p_value jsonb) TO authenticated;
GRANT ALL ON FUNCTION private.sizing_number(p_value jsonb) TO service_role;
GRANT ALL ON TABLE public.bots TO service_role;
GRANT SELECT,DELETE ON TABLE public.bots TO authenticated;
GRANT INSERT(id) ON TABLE public.bots TO authenticated;
GRANT INSERT(user_id) ON TABLE public.bots TO authenticated;
GRANT INSERT(strategy_id),UPDATE(strategy_id) ON TABLE public.bots TO authenticated;
GRANT INSERT(exchange_credential_id),UPDATE(exchange_credential_id) ON TABLE public.bots TO authenticated;
GRANT INSERT(name),UPDATE(name) ON TABLE public.bots TO authenticated;
GRANT INSERT(exchange),UPDATE(exchange) ON TABLE public.bots TO authenticated;
GRANT INSERT(trading_pair),UPDATE(trading_pair) ON TABLE public.bots TO authenticated;
GRANT INSERT(timeframe),UPDATE(timeframe) ON TABLE public.bots TO authenticated;
GRANT INSERT(strategy),UPDATE(strategy) ON TABLE public.bots TO authenticated;
GRANT INSERT(parameters),UPDATE(parameters) ON TABLE public.bots TO authenticated;
GRANT INSERT(status),UPDATE(status) ON TABLE public.bots TO authenticated;
GRANT INSERT(initial_balance) ON TABLE public.bots TO authenticated;
GRANT INSERT(max_open_trades),UPDATE(max_open_trades) ON TABLE public.bots TO authenticated;
GRANT INSERT(stake_amount),UPDATE(stake_amount) ON TABLE public.bots TO authenticated;
GRANT INSERT(stop_loss),UPDATE(stop_loss) ON TABLE public.bots TO authenticated;
GRANT INSERT(take_profit),UPDATE(take_profit) ON TABLE public.bots TO authenticated;
GRANT INSERT(risk_percentage),UPDATE(risk_percentage) ON TABLE public.bots TO authenticated;
GRANT INSERT(daily_loss_limit),UPDATE(daily_loss_limit) ON TABLE public.bots TO authenticated;
GRANT INSERT(leverage),UPDATE(leverage) ON TABLE public.bots TO authenticated;
GRANT INSERT(allow_short),UPDATE(allow_short) ON TABLE public.bots TO authenticated;
GRANT INSERT(is_paper_trade),UPDATE(is_paper_trade) ON TABLE public.bots TO authenticated;
GRANT INSERT(metadata),UPDATE(metadata) ON TABLE public.bots TO authenticated;
GRANT INSERT(pairs),UPDATE(pairs) ON TABLE public.bots TO authenticated;
GRANT INSERT(entry_order_type),UPDATE(entry_order_type) ON TABLE public.bots TO authenticated;
GRANT INSERT(exit_order_type),UPDATE(exit_order_type) ON TABLE public.bots TO authenticated;
GRANT INSERT(limit_offset),UPDATE(limit_offset) ON TABLE public.bots TO authenticated;
GRANT INSERT(order_timeout_unit),UPDATE(order_timeout_unit) ON TABLE public.bots TO authenticated;
GRANT INSERT(entry_timeout),UPDATE(entry_timeout) ON TABLE public.bots TO authenticated;
GRANT INSERT(exit_timeout),UPDATE(exit_timeout) ON TABLE public.bots TO authenticated;
GRANT INSERT(timeout_action),UPDATE(timeout_action) ON TABLE public.bots TO authenticated;
GRANT INSERT(organisation_id) ON TABLE public.bots TO authenticated;
GRANT INSERT(exit_timeout_count),UPDATE(exit_timeout_count) ON TABLE public.bots TO authenticated;
REVOKE ALL ON FUNCTION private.bot_actor_check(p_bot public.bots) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.bot_check_pairs() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.bot_leases_track_takeover() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.bot_live_pairs_aal2() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.bot_market_rules() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.bot_rules() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.bot_void_idle_holds() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.bots_pause_settles_close() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.bots_repair_legacy_rows() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.bots_running_overrides_pause() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.caller_email() FROM PUBLIC;
GRANT ALL ON FUNCTION private.caller_email() TO authenticated;
GRANT ALL ON FUNCTION private.caller_email() TO service_role;
REVOKE ALL ON FUNCTION private.cancel_position_requests() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.sizing_is_valid(p_sizing jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION private.sizing_is_valid(p_sizing jsonb) TO anon;
GRANT ALL ON FUNCTION private.sizing_is_valid(p_sizing jsonb) TO authenticated;
GRANT ALL ON FUNCTION private.sizing_is_valid(p_sizing jsonb) TO service_role;
GRANT ALL ON TABLE public.strategy_subscriptions TO service_role;
GRANT SELECT ON TABLE public.strategy_subscriptions TO authenticated;
GRANT UPDATE(auto_execute) ON TABLE public.strategy_subscriptions TO authenticated;
GRANT UPDATE(bot_id) ON TABLE public.strategy_subscriptions TO authenticated;
GRANT UPDATE(sizing) ON TABLE public.strategy_subscriptions TO authenticated;
REVOKE ALL ON FUNCTION private.charge_strategy_period(p_sub public.strategy_subscriptions, p_start timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.check_lease_epochs() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.console_notify() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.create_history_partition(p_table text, p_at timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.create_history_partitions(p_table text, p_until timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_account_keep_history() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_apply(p_id uuid, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_pending_id uuid, p_timeout_at timestamp with time zone, p_reference_type text, p_reference_id text, p_metadata jsonb, p_prelocked boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_apply_or_raise(p_id uuid, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_pending_id uuid, p_timeout_at timestamp with time zone, p_reference_type text, p_reference_id text, p_metadata jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_apply_usage(p_id uuid, p_action text, p_user_id uuid, p_usage text, p_quantity numeric, p_timeout_at timestamp with time zone, p_reference_type text, p_reference_id text, p_metadata jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_compare(e public.credit_transfers, p_action text, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_pending_id uuid, p_reference_type text, p_reference_id text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_delegate(p_purpose text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_invoice_paid() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_monthly_grant_id(p_subscription_id uuid, p_started_at timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_parse_batch(p_transfers jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_raise(p_code text, p_id uuid, p_debit_account_id uuid, p_amount numeric) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_require_service() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_system_account(p_code text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_usage_price(p_user_id uuid, p_usage text, OUT account_id uuid, OUT price numeric, OUT plan text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_user_account(p_user_id uuid, p_kind text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.credit_user_kind(p_kind text) FROM PUBLIC;
GRANT ALL ON FUNCTION private.credit_user_kind(p_kind text) TO authenticated;
GRANT ALL ON FUNCTION private.credit_user_kind(p_kind text) TO service_role;
GRANT ALL ON TABLE public.plans TO service_role;
GRANT SELECT ON TABLE public.plans TO anon;
GRANT SELECT ON TABLE public.plans TO authenticated;
REVOKE ALL ON FUNCTION private.current_plan(p_user_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION private.current_plan(p_user_id uuid) TO service_role;
REVOKE ALL ON FUNCTION private.enqueue_ai_analysis() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.enqueue_backtest_run() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.enqueue_data_request() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.fleet_forget_worker(p_worker_id uuid, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION private.fleet_forget_worker(p_worker_id uuid, p_reason text) TO service_role;
REVOKE ALL ON FUNCTION private.fold_history_partitions(p_table text, p_before timestamp with time zone, p_cutoff timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.guard_backtest_run_changes() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.guard_bot_changes() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.guard_organisation_bot_changes() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.handle_new_user() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.has_subscribed(p_strategy_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION private.has_subscribed(p_strategy_id uuid) TO authenticated;
GRANT ALL ON FUNCTION private.has_subscribed(p_strategy_id uuid) TO service_role;
REVOKE ALL ON FUNCTION private.history_kept_end(p_table text) FROM PUBLIC;
GRANT ALL ON FUNCTION private.history_kept_end(p_table text) TO service_role;
REVOKE ALL ON FUNCTION private.history_partition_range(p_partition regclass, OUT lo timestamp with time zone, OUT hi timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.history_step_start(p_step interval, p_at timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.holdings_aggregate_pending(p_user_ids uuid[]) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_aggregate_pending(p_user_ids uuid[]) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_apply_positions(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, OUT applied boolean, OUT upserted integer, OUT removed integer) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_apply_positions(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, OUT applied boolean, OUT upserted integer, OUT removed integer) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_apply_prices(p_prices jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_apply_prices(p_prices jsonb) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_connection_event(p_provider text, p_provider_connection_id text, p_status text, p_reason text, p_occurred_at timestamp with time zone, OUT id uuid, OUT user_id uuid, OUT applied boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_connection_event(p_provider text, p_provider_connection_id text, p_status text, p_reason text, p_occurred_at timestamp with time zone, OUT id uuid, OUT user_id uuid, OUT applied boolean) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_enqueue_snaptrade_event() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.holdings_enqueue_sync_run() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.holdings_ensure_connection(p_provider text, p_provider_user_id text, p_provider_connection_id text, p_brokerage_name text) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_ensure_connection(p_provider text, p_provider_user_id text, p_provider_connection_id text, p_brokerage_name text) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_finish_account_sync(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, p_webhook_event_id uuid, p_duration_ms integer, OUT applied boolean, OUT upserted integer, OUT removed integer) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_finish_account_sync(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, p_webhook_event_id uuid, p_duration_ms integer, OUT applied boolean, OUT upserted integer, OUT removed integer) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_finish_account_syncs(p_items jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_finish_account_syncs(p_items jsonb) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_prices_from_candles() FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_prices_from_candles() TO service_role;
REVOKE ALL ON FUNCTION private.holdings_refresh_aggregates(p_user_ids uuid[]) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_refresh_aggregates(p_user_ids uuid[]) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_request_aggregate(p_user_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_request_aggregate(p_user_id uuid) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_request_aggregates(p_user_ids uuid[]) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_request_aggregates(p_user_ids uuid[]) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_requeue_snaptrade_event() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.holdings_write_account_sync(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, p_webhook_event_id uuid, p_duration_ms integer, OUT applied boolean, OUT upserted integer, OUT removed integer, OUT user_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_write_account_sync(p_account_id uuid, p_as_of timestamp with time zone, p_positions jsonb, p_webhook_event_id uuid, p_duration_ms integer, OUT applied boolean, OUT upserted integer, OUT removed integer, OUT user_id uuid) TO service_role;
REVOKE ALL ON FUNCTION private.holdings_write_account_syncs(p_items jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION private.holdings_write_account_syncs(p_items jsonb) TO service_role;
REVOKE ALL ON FUNCTION private.is_active_subscriber(p_strategy_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION private.is_active_subscriber(p_strategy_id uuid) TO authenticated;
GRANT ALL ON FUNCTION private.is_active_subscriber(p_strategy_id uuid) TO service_role;
REVOKE ALL ON FUNCTION private.is_admin() FROM PUBLIC;
GRANT ALL ON FUNCTION private.is_admin() TO anon;
GRANT ALL ON FUNCTION private.is_admin() TO authenticated;
GRANT ALL ON FUNCTION private.is_admin() TO service_role;
REVOKE ALL ON FUNCTION private.is_service() FROM PUBLIC;
GRANT ALL ON FUNCTION private.is_service() TO anon;
GRANT ALL ON FUNCTION private.is_service() TO authenticated;
GRANT ALL ON FUNCTION private.is_service() TO service_role;
GRANT ALL ON TABLE public.jobs TO service_role;
GRANT SELECT ON TABLE public.jobs TO authenticated;
REVOKE ALL ON FUNCTION private.job_audit_state(p_job public.jobs) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.limit_manual_sync_requests() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.market_last_close(p_symbol text) FROM PUBLIC;
GRANT ALL ON FUNCTION private.market_last_close(p_symbol text) TO authenticated;
GRANT ALL ON FUNCTION private.market_last_close(p_symbol text) TO service_role;
REVOKE ALL ON FUNCTION private.market_range(p_symbol text, p_since timestamp with time zone) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.notify_bot_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.notify_enqueue_outbound() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.notify_position_request() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.organisation_bot_ids() FROM PUBLIC;
GRANT ALL ON FUNCTION private.organisation_bot_ids() TO authenticated;
REVOKE ALL ON FUNCTION private.organisation_caller() FROM PUBLIC;
GRANT ALL ON FUNCTION private.organisation_caller() TO authenticated;
GRANT ALL ON FUNCTION private.organisation_caller() TO service_role;
GRANT ALL ON TABLE public.organisation_members TO service_role;
GRANT SELECT ON TABLE public.organisation_members TO authenticated;
REVOKE ALL ON FUNCTION private.organisation_drop_member(p_organisation_id uuid, p_user_id uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.organisation_ids(p_min_role text) FROM PUBLIC;
GRANT ALL ON FUNCTION private.organisation_ids(p_min_role text) TO authenticated;
GRANT ALL ON FUNCTION private.organisation_ids(p_min_role text) TO service_role;
GRANT ALL ON TABLE public.organisation_invitations TO service_role;
GRANT SELECT ON TABLE public.organisation_invitations TO authenticated;
REVOKE ALL ON FUNCTION private.organisation_invitation_for_caller(p_invitation_id uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.organisation_key_bot_ids() FROM PUBLIC;
GRANT ALL ON FUNCTION private.organisation_key_bot_ids() TO authenticated;
REVOKE ALL ON FUNCTION private.organisation_managed_member(p_organisation_id uuid, p_user_id uuid, p_new_role text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.organisation_rank(p_role text) FROM PUBLIC;
GRANT ALL ON FUNCTION private.organisation_rank(p_role text) TO authenticated;
GRANT ALL ON FUNCTION private.organisation_rank(p_role text) TO service_role;
REVOKE ALL ON FUNCTION private.organisation_require(p_organisation_id uuid, p_min_role text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.organisation_role(p_organisation_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION private.organisation_role(p_organisation_id uuid) TO authenticated;
GRANT ALL ON FUNCTION private.organisation_role(p_organisation_id uuid) TO service_role;
REVOKE ALL ON FUNCTION private.own_strategy_subscription(p_subscription_id uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.owns_strategy(p_strategy_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION private.owns_strategy(p_strategy_id uuid) TO authenticated;
GRANT ALL ON FUNCTION private.owns_strategy(p_strategy_id uuid) TO service_role;
REVOKE ALL ON FUNCTION private.partition_history_acl(p_rel regclass, p_name text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.partition_history_table(p_table text, p_key text, p_step interval, p_from timestamp with time zone, p_until timestamp with time zone, p_ahead interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.payout_connect_check(p_user_id uuid, p_provider text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.plan_lifting(p_limit text, p_needed numeric) FROM PUBLIC;
GRANT ALL ON FUNCTION private.plan_lifting(p_limit text, p_needed numeric) TO service_role;
REVOKE ALL ON FUNCTION private.plan_limit_value(p_plan public.plans, p_limit text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.position_request_bot(p_bot_id uuid, p_is_paper_trade boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.position_request_key(p_key text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.position_request_pair(p_bot public.bots, p_pair text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.prune_history(p_history text, p_before timestamp with time zone, p_batch integer) FROM PUBLIC;
GRANT ALL ON FUNCTION private.prune_history(p_history text, p_before timestamp with time zone, p_batch integer) TO service_role;
REVOKE ALL ON FUNCTION private.publish_latest_candles() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.raise_plan_limit(p_plan public.plans, p_limit text, p_allows text, p_needed numeric, p_constraint text, p_errcode text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.rate_limit_give_back(p_bucket text, p_limit integer, p_period interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.rate_limit_take(p_bucket text, p_limit integer, p_period interval, OUT allowed boolean, OUT remaining integer, OUT reset_seconds integer, OUT retry_after_seconds integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.refresh_signal_performance(p_strategy_id uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.refresh_strategy_backtest_figures() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.require_admin() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.set_updated_at() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.signal_after_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.signal_charge_copies_by_batch(p_signal_id uuid, p_limit integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.signal_exit_needs_market() FROM PUBLIC;
GRANT ALL ON TABLE public.signals TO service_role;
GRANT SELECT ON TABLE public.signals TO authenticated;
GRANT INSERT(strategy_id) ON TABLE public.signals TO authenticated;
GRANT INSERT(provider_id) ON TABLE public.signals TO authenticated;
GRANT INSERT(action),UPDATE(action) ON TABLE public.signals TO authenticated;
GRANT UPDATE(status) ON TABLE public.signals TO authenticated;
GRANT INSERT(pair) ON TABLE public.signals TO authenticated;
GRANT INSERT(side) ON TABLE public.signals TO authenticated;
GRANT INSERT(entry_price) ON TABLE public.signals TO authenticated;
GRANT INSERT(stop_loss),UPDATE(stop_loss) ON TABLE public.signals TO authenticated;
GRANT INSERT(take_profit),UPDATE(take_profit) ON TABLE public.signals TO authenticated;
GRANT INSERT(leverage) ON TABLE public.signals TO authenticated;
GRANT UPDATE(exit_price) ON TABLE public.signals TO authenticated;
GRANT INSERT(indicators),UPDATE(indicators) ON TABLE public.signals TO authenticated;
GRANT INSERT(note),UPDATE(note) ON TABLE public.signals TO authenticated;
GRANT INSERT(idempotency_key) ON TABLE public.signals TO authenticated;
REVOKE ALL ON FUNCTION private.signal_fan_out_close(p_sig public.signals, p_label text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.signal_first_announcement(p_signal_id uuid, p_phase text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.signal_lifecycle() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.signal_rate_limit() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.signal_update_rate_limit() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.strategy_material_edit() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.strategy_price_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.strategy_subscription_lapsed() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.subscriptions_repair_legacy_sizing() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.sync_user_role() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.trade_totals_apply() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.trade_totals_truncate() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.validate_ai_requests() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.validate_backtest_minutes() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.validate_backtest_queue() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.validate_bot_limits() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.validate_custom_strategy() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.validate_data_request() FROM PUBLIC;
GRANT ALL ON TABLE public.webhook_events TO service_role;
GRANT SELECT ON TABLE public.webhook_events TO authenticated;
REVOKE ALL ON FUNCTION private.webhook_event_audit_state(p_event public.webhook_events) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.webhook_events_once() FROM PUBLIC;
REVOKE ALL ON FUNCTION private.write_limit_default(p_table text) FROM PUBLIC;
REVOKE ALL ON FUNCTION private.write_limit_take(p_table text) FROM PUBLIC;
GRANT ALL ON FUNCTION private.write_limit_take(p_table text) TO anon;
GRANT ALL ON FUNCTION private.write_limit_take(p_table text) TO authenticated;
GRANT ALL ON FUNCTION private.write_limit_take(p_table text) TO service_role;
REVOKE ALL ON FUNCTION public.accept_organisation_invitation(p_invitation_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.accept_organisation_invitation(p_invitation_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.accept_organisation_invitation(p_invitation_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.accept_strategy_price(p_subscription_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.accept_strategy_price(p_subscription_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.accept_strategy_price(p_subscription_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.acquire_bot_leases(p_worker_id uuid, p_ttl_s double precision, p_live_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION public.acquire_bot_leases(p_worker_id uuid, p_ttl_s double precision, p_live_s double precision) TO service_role;
REVOKE ALL ON FUNCTION public.admin_credit_audit() FROM PUBLIC;
GRANT ALL ON FUNCTION public.admin_credit_audit() TO authenticated;
GRANT ALL ON FUNCTION public.admin_credit_audit() TO service_role;
REVOKE ALL ON FUNCTION public.admin_discard_job(p_job_id bigint, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.admin_discard_job(p_job_id bigint, p_reason text) TO authenticated;
GRANT ALL ON FUNCTION public.admin_discard_job(p_job_id bigint, p_reason text) TO service_role;
REVOKE ALL ON FUNCTION public.admin_platform_overview() FROM PUBLIC;
GRANT ALL ON FUNCTION public.admin_platform_overview() TO authenticated;
GRANT ALL ON FUNCTION public.admin_platform_overview() TO service_role;
REVOKE ALL ON FUNCTION public.admin_replay_webhook_event(p_event_id uuid, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.admin_replay_webhook_event(p_event_id uuid, p_reason text) TO authenticated;
GRANT ALL ON FUNCTION public.admin_replay_webhook_event(p_event_id uuid, p_reason text) TO service_role;
GRANT ALL ON TABLE public.credit_exposures TO service_role;
GRANT SELECT ON TABLE public.credit_exposures TO authenticated;
REVOKE ALL ON FUNCTION public.admin_resolve_credit_exposure(p_id uuid, p_status text, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.admin_resolve_credit_exposure(p_id uuid, p_status text, p_reason text) TO authenticated;
GRANT ALL ON FUNCTION public.admin_resolve_credit_exposure(p_id uuid, p_status text, p_reason text) TO service_role;
REVOKE ALL ON FUNCTION public.admin_retry_job(p_job_id bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION public.admin_retry_job(p_job_id bigint) TO authenticated;
GRANT ALL ON FUNCTION public.admin_retry_job(p_job_id bigint) TO service_role;
GRANT ALL ON TABLE public.payouts TO service_role;
GRANT SELECT ON TABLE public.payouts TO authenticated;
REVOKE ALL ON FUNCTION public.admin_review_payout(p_payout_id uuid, p_approve boolean, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.admin_review_payout(p_payout_id uuid, p_approve boolean, p_reason text) TO authenticated;
GRANT ALL ON FUNCTION public.admin_review_payout(p_payout_id uuid, p_approve boolean, p_reason text) TO service_role;
REVOKE ALL ON FUNCTION public.admin_service_health() FROM PUBLIC;
GRANT ALL ON FUNCTION public.admin_service_health() TO authenticated;
GRANT ALL ON FUNCTION public.admin_service_health() TO service_role;
GRANT ALL ON TABLE public.profiles TO service_role;
GRANT SELECT ON TABLE public.profiles TO authenticated;
GRANT UPDATE(full_name) ON TABLE public.profiles TO authenticated;
GRANT UPDATE(avatar_url) ON TABLE public.profiles TO authenticated;
GRANT UPDATE(preferences) ON TABLE public.profiles TO authenticated;
GRANT UPDATE(telegram_chat_id) ON TABLE public.profiles TO authenticated;
GRANT UPDATE(discord_webhook_url) ON TABLE public.profiles TO authenticated;
REVOKE ALL ON FUNCTION public.admin_set_user_role(p_user_id uuid, p_role text, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.admin_set_user_role(p_user_id uuid, p_role text, p_reason text) TO authenticated;
GRANT ALL ON FUNCTION public.admin_set_user_role(p_user_id uuid, p_role text, p_reason text) TO service_role;
GRANT ALL ON TABLE public.strategies TO service_role;
GRANT DELETE ON TABLE public.strategies TO authenticated;
GRANT SELECT ON TABLE public.strategies TO tradefleet_admin;
GRANT SELECT(id) ON TABLE public.strategies TO anon;
GRANT SELECT(id),INSERT(id) ON TABLE public.strategies TO authenticated;
GRANT SELECT(user_id) ON TABLE public.strategies TO anon;
GRANT SELECT(user_id),INSERT(user_id) ON TABLE public.strategies TO authenticated;
GRANT SELECT(name) ON TABLE public.strategies TO anon;
GRANT SELECT(name),INSERT(name),UPDATE(name) ON TABLE public.strategies TO authenticated;
GRANT SELECT(description) ON TABLE public.strategies TO anon;
GRANT SELECT(description),INSERT(description),UPDATE(description) ON TABLE public.strategies TO authenticated;
GRANT SELECT(strategy_type) ON TABLE public.strategies TO anon;
GRANT SELECT(strategy_type),INSERT(strategy_type),UPDATE(strategy_type) ON TABLE public.strategies TO authenticated;
GRANT SELECT(engine) ON TABLE public.strategies TO anon;
GRANT SELECT(engine),INSERT(engine),UPDATE(engine) ON TABLE public.strategies TO authenticated;
GRANT INSERT(content),UPDATE(content) ON TABLE public.strategies TO authenticated;
GRANT INSERT(parameters),UPDATE(parameters) ON TABLE public.strategies TO authenticated;
GRANT SELECT(performance) ON TABLE public.strategies TO anon;
GRANT SELECT(performance) ON TABLE public.strategies TO authenticated;
GRANT SELECT(is_public) ON TABLE public.strategies TO anon;
GRANT SELECT(is_public),INSERT(is_public),UPDATE(is_public) ON TABLE public.strategies TO authenticated;
GRANT SELECT(is_verified) ON TABLE public.strategies TO anon;
GRANT SELECT(is_verified) ON TABLE public.strategies TO authenticated;
GRANT SELECT(backtest_results) ON TABLE public.strategies TO authenticated;
GRANT SELECT(backtest_count) ON TABLE public.strategies TO anon;
GRANT SELECT(backtest_count) ON TABLE public.strategies TO authenticated;
GRANT SELECT(avg_backtest_return) ON TABLE public.strategies TO anon;
GRANT SELECT(avg_backtest_return) ON TABLE public.strategies TO authenticated;
GRANT SELECT(tags) ON TABLE public.strategies TO anon;
GRANT SELECT(tags),INSERT(tags),UPDATE(tags) ON TABLE public.strategies TO authenticated;
GRANT SELECT(category) ON TABLE public.strategies TO anon;
GRANT SELECT(category),INSERT(category),UPDATE(category) ON TABLE public.strategies TO authenticated;
GRANT SELECT(risk_level) ON TABLE public.strategies TO anon;
GRANT SELECT(risk_level),INSERT(risk_level),UPDATE(risk_level) ON TABLE public.strategies TO authenticated;
GRANT SELECT(monthly_price) ON TABLE public.strategies TO anon;
GRANT SELECT(monthly_price),INSERT(monthly_price),UPDATE(monthly_price) ON TABLE public.strategies TO authenticated;
GRANT SELECT(provider_share) ON TABLE public.strategies TO anon;
GRANT SELECT(provider_share) ON TABLE public.strategies TO authenticated;
GRANT SELECT(created_at) ON TABLE public.strategies TO anon;
GRANT SELECT(created_at) ON TABLE public.strategies TO authenticated;
GRANT SELECT(updated_at) ON TABLE public.strategies TO anon;
GRANT SELECT(updated_at) ON TABLE public.strategies TO authenticated;
GRANT SELECT(organisation_id),INSERT(organisation_id) ON TABLE public.strategies TO authenticated;
REVOKE ALL ON FUNCTION public.admin_verify_strategy(p_strategy_id uuid, p_verified boolean, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.admin_verify_strategy(p_strategy_id uuid, p_verified boolean, p_reason text) TO authenticated;
GRANT ALL ON FUNCTION public.admin_verify_strategy(p_strategy_id uuid, p_verified boolean, p_reason text) TO service_role;
REVOKE ALL ON FUNCTION public.ai_token_price(p_user_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ai_token_price(p_user_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.api_authorize(p_key text, p_scope text, p_ip inet, p_calls jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.api_authorize(p_key text, p_scope text, p_ip inet, p_calls jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.api_record_calls(p_calls jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.api_record_calls(p_calls jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.api_usage_rollup() FROM PUBLIC;
GRANT ALL ON FUNCTION public.api_usage_rollup() TO service_role;
REVOKE ALL ON FUNCTION public.apply_ai_suggestion(p_analysis_id uuid, p_index integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.apply_ai_suggestion(p_analysis_id uuid, p_index integer) TO authenticated;
GRANT ALL ON FUNCTION public.apply_ai_suggestion(p_analysis_id uuid, p_index integer) TO service_role;
REVOKE ALL ON FUNCTION public.backtest_run_check_grid(p_run_id uuid, p_sets integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.backtest_run_check_grid(p_run_id uuid, p_sets integer) TO service_role;
REVOKE ALL ON FUNCTION public.backtest_run_finish(p_run_id uuid, p_status text, p_compute_seconds numeric, p_credits_charged numeric, p_result jsonb, p_error text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.backtest_run_finish(p_run_id uuid, p_status text, p_compute_seconds numeric, p_credits_charged numeric, p_result jsonb, p_error text) TO service_role;
REVOKE ALL ON FUNCTION public.backtest_run_progress(p_run_id uuid, p_progress numeric) FROM PUBLIC;
GRANT ALL ON FUNCTION public.backtest_run_progress(p_run_id uuid, p_progress numeric) TO service_role;
GRANT ALL ON TABLE public.backtest_runs TO service_role;
GRANT SELECT,DELETE ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(id) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(user_id) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(strategy_id) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(strategy) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(parameters) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(exchange) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(trading_pair) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(timeframe) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(start_date) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(end_date) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(settings) ON TABLE public.backtest_runs TO authenticated;
GRANT UPDATE(status) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(mode) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(trading_pairs) ON TABLE public.backtest_runs TO authenticated;
GRANT INSERT(optimization) ON TABLE public.backtest_runs TO authenticated;
REVOKE ALL ON FUNCTION public.backtest_run_start(p_run_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.backtest_run_start(p_run_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.billing_apply_chargeback(p_invoice_id uuid, p_dispute_ref text, p_occurred_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_apply_chargeback(p_invoice_id uuid, p_dispute_ref text, p_occurred_at timestamp with time zone) TO service_role;
REVOKE ALL ON FUNCTION public.billing_apply_invoice_event(p_invoice_id uuid, p_status text, p_amount numeric, p_occurred_at timestamp with time zone, p_details jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_apply_invoice_event(p_invoice_id uuid, p_status text, p_amount numeric, p_occurred_at timestamp with time zone, p_details jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.billing_apply_refund(p_invoice_id uuid, p_refund_ref text, p_amount numeric, p_cumulative boolean, p_occurred_at timestamp with time zone, p_details jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_apply_refund(p_invoice_id uuid, p_refund_ref text, p_amount numeric, p_cumulative boolean, p_occurred_at timestamp with time zone, p_details jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.billing_cancel_at_period_end(p_cancel boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_cancel_at_period_end(p_cancel boolean) TO authenticated;
GRANT ALL ON FUNCTION public.billing_cancel_at_period_end(p_cancel boolean) TO service_role;
REVOKE ALL ON FUNCTION public.billing_checkout_abort(p_invoice_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_checkout_abort(p_invoice_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.billing_checkout_open(p_user_id uuid, p_provider text, p_plan_id uuid, p_credit_pack_id uuid, p_period text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_checkout_open(p_user_id uuid, p_provider text, p_plan_id uuid, p_credit_pack_id uuid, p_period text) TO service_role;
REVOKE ALL ON FUNCTION public.billing_checkout_started(p_invoice_id uuid, p_url text, p_provider_invoice_id text, p_refs text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_checkout_started(p_invoice_id uuid, p_url text, p_provider_invoice_id text, p_refs text[]) TO service_role;
REVOKE ALL ON FUNCTION public.billing_customer(p_user_id uuid, p_provider text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_customer(p_user_id uuid, p_provider text) TO service_role;
REVOKE ALL ON FUNCTION public.billing_expire_due(p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_expire_due(p_now timestamp with time zone) TO service_role;
REVOKE ALL ON FUNCTION public.billing_provider_renewal_failed(p_provider text, p_subscription_ref text, p_next_attempt_at timestamp with time zone, p_reason text, p_occurred_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_provider_renewal_failed(p_provider text, p_subscription_ref text, p_next_attempt_at timestamp with time zone, p_reason text, p_occurred_at timestamp with time zone) TO service_role;
REVOKE ALL ON FUNCTION public.billing_provider_subscription_ended(p_provider text, p_subscription_ref text, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_provider_subscription_ended(p_provider text, p_subscription_ref text, p_reason text) TO service_role;
REVOKE ALL ON FUNCTION public.billing_provider_subscription_ref(p_subscription_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_provider_subscription_ref(p_subscription_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.billing_provider_subscription_updated(p_provider text, p_subscription_ref text, p_cancel_at_period_end boolean, p_occurred_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_provider_subscription_updated(p_provider text, p_subscription_ref text, p_cancel_at_period_end boolean, p_occurred_at timestamp with time zone) TO service_role;
REVOKE ALL ON FUNCTION public.billing_provider_trial(p_provider text, p_subscription_ref text, p_user_id uuid, p_plan_id uuid, p_trial_ends_at timestamp with time zone, p_occurred_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_provider_trial(p_provider text, p_subscription_ref text, p_user_id uuid, p_plan_id uuid, p_trial_ends_at timestamp with time zone, p_occurred_at timestamp with time zone) TO service_role;
REVOKE ALL ON FUNCTION public.billing_renewal_attempted(p_invoice_id uuid, p_outcome text, p_reason text, p_url text, p_reference text, p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_renewal_attempted(p_invoice_id uuid, p_outcome text, p_reason text, p_url text, p_reference text, p_now timestamp with time zone) TO service_role;
REVOKE ALL ON FUNCTION public.billing_renewals_due(p_now timestamp with time zone, p_lead interval, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_renewals_due(p_now timestamp with time zone, p_lead interval, p_limit integer) TO service_role;
REVOKE ALL ON FUNCTION public.billing_save_payment_method(p_user_id uuid, p_provider text, p_customer text, p_authorization_code text, p_email text, p_channel text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_save_payment_method(p_user_id uuid, p_provider text, p_customer text, p_authorization_code text, p_email text, p_channel text) TO service_role;
REVOKE ALL ON FUNCTION public.billing_send_reminders(p_now timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_send_reminders(p_now timestamp with time zone) TO service_role;
REVOKE ALL ON FUNCTION public.billing_start_trial(p_plan_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_start_trial(p_plan_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.billing_start_trial(p_plan_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.billing_trial_days(p_user_id uuid, p_plan_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.billing_trial_days(p_user_id uuid, p_plan_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.bot_apply_steps(p_steps jsonb, p_orders jsonb, p_trades jsonb, p_logs jsonb, p_notes jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.bot_apply_steps(p_steps jsonb, p_orders jsonb, p_trades jsonb, p_logs jsonb, p_notes jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.bot_fence_holds(p_bots jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.bot_fence_holds(p_bots jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.bot_orphan_holds(p_bots jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.bot_orphan_holds(p_bots jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.bot_record_equity(p_rows jsonb, p_trades jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.bot_record_equity(p_rows jsonb, p_trades jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.bot_record_protection(p_orders jsonb, p_trades jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.bot_record_protection(p_orders jsonb, p_trades jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.bot_trade_prices(p_user_ids uuid[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.bot_trade_prices(p_user_ids uuid[]) TO service_role;
REVOKE ALL ON FUNCTION public.cancel_strategy_subscription(p_subscription_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.cancel_strategy_subscription(p_subscription_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.cancel_strategy_subscription(p_subscription_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.claim_jobs(p_worker_id uuid, p_queues text[], p_limit integer, p_lock_s double precision, p_kinds text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.claim_jobs(p_worker_id uuid, p_queues text[], p_limit integer, p_lock_s double precision, p_kinds text[]) TO service_role;
GRANT ALL ON TABLE public.position_requests TO service_role;
GRANT SELECT ON TABLE public.position_requests TO authenticated;
REVOKE ALL ON FUNCTION public.close_position(p_trade_id uuid, p_is_paper_trade boolean, p_order_type text, p_limit_price private.finite_number, p_timeout_s integer, p_on_timeout text, p_idempotency_key text, p_pair text, p_amount private.finite_number, p_fraction private.finite_number) FROM PUBLIC;
GRANT ALL ON FUNCTION public.close_position(p_trade_id uuid, p_is_paper_trade boolean, p_order_type text, p_limit_price private.finite_number, p_timeout_s integer, p_on_timeout text, p_idempotency_key text, p_pair text, p_amount private.finite_number, p_fraction private.finite_number) TO authenticated;
GRANT ALL ON FUNCTION public.close_position(p_trade_id uuid, p_is_paper_trade boolean, p_order_type text, p_limit_price private.finite_number, p_timeout_s integer, p_on_timeout text, p_idempotency_key text, p_pair text, p_amount private.finite_number, p_fraction private.finite_number) TO service_role;
REVOKE ALL ON FUNCTION public.complete_job(p_worker_id uuid, p_job_id bigint, p_result jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.complete_job(p_worker_id uuid, p_job_id bigint, p_result jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.complete_jobs(p_worker_id uuid, p_job_ids bigint[], p_results jsonb[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.complete_jobs(p_worker_id uuid, p_job_ids bigint[], p_results jsonb[]) TO service_role;
GRANT ALL ON TABLE public.payout_destinations TO service_role;
GRANT SELECT ON TABLE public.payout_destinations TO authenticated;
REVOKE ALL ON FUNCTION public.connect_payout_destination(p_provider text, p_currency text, p_bank_code text, p_account_number text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.connect_payout_destination(p_provider text, p_currency text, p_bank_code text, p_account_number text) TO authenticated;
GRANT ALL ON FUNCTION public.connect_payout_destination(p_provider text, p_currency text, p_bank_code text, p_account_number text) TO service_role;
REVOKE ALL ON FUNCTION public.create_api_key(p_name text, p_scopes text[], p_expires_at timestamp with time zone, p_environment text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.create_api_key(p_name text, p_scopes text[], p_expires_at timestamp with time zone, p_environment text) TO authenticated;
GRANT ALL ON FUNCTION public.create_api_key(p_name text, p_scopes text[], p_expires_at timestamp with time zone, p_environment text) TO service_role;
REVOKE ALL ON FUNCTION public.create_history_partitions() FROM PUBLIC;
GRANT ALL ON FUNCTION public.create_history_partitions() TO service_role;
REVOKE ALL ON FUNCTION public.create_history_partitions_between(p_history text, p_from timestamp with time zone, p_until timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.create_history_partitions_between(p_history text, p_from timestamp with time zone, p_until timestamp with time zone) TO service_role;
GRANT ALL ON TABLE public.organisations TO service_role;
GRANT SELECT ON TABLE public.organisations TO authenticated;
REVOKE ALL ON FUNCTION public.create_organisation(p_name text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.create_organisation(p_name text) TO authenticated;
GRANT ALL ON FUNCTION public.create_organisation(p_name text) TO service_role;
REVOKE ALL ON FUNCTION public.create_organisation_api_key(p_organisation_id uuid, p_name text, p_scopes text[], p_expires_at timestamp with time zone, p_environment text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.create_organisation_api_key(p_organisation_id uuid, p_name text, p_scopes text[], p_expires_at timestamp with time zone, p_environment text) TO authenticated;
GRANT ALL ON FUNCTION public.create_organisation_api_key(p_organisation_id uuid, p_name text, p_scopes text[], p_expires_at timestamp with time zone, p_environment text) TO service_role;
REVOKE ALL ON FUNCTION public.credit_audit() FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_audit() TO service_role;
REVOKE ALL ON FUNCTION public.credit_charge_usage(p_id uuid, p_user_id uuid, p_usage text, p_quantity numeric, p_reference_type text, p_reference_id text, p_metadata jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_charge_usage(p_id uuid, p_user_id uuid, p_usage text, p_quantity numeric, p_reference_type text, p_reference_id text, p_metadata jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.credit_correct(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_correct(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_reason text) TO authenticated;
GRANT ALL ON FUNCTION public.credit_correct(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_reason text) TO service_role;
REVOKE ALL ON FUNCTION public.credit_create_transfer(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_reference_type text, p_reference_id text, p_metadata jsonb, p_pending boolean, p_timeout interval) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_create_transfer(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_reference_type text, p_reference_id text, p_metadata jsonb, p_pending boolean, p_timeout interval) TO service_role;
REVOKE ALL ON FUNCTION public.credit_create_transfers(p_transfers jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_create_transfers(p_transfers jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.credit_expire_holds(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_expire_holds(p_limit integer) TO service_role;
REVOKE ALL ON FUNCTION public.credit_grant(p_id uuid, p_user_id uuid, p_amount numeric, p_reference_type text, p_reference_id text, p_metadata jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_grant(p_id uuid, p_user_id uuid, p_amount numeric, p_reference_type text, p_reference_id text, p_metadata jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.credit_grant_monthly(p_subscription_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_grant_monthly(p_subscription_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.credit_grant_monthly_all(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_grant_monthly_all(p_limit integer) TO service_role;
REVOKE ALL ON FUNCTION public.credit_hold(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_timeout interval, p_reference_type text, p_reference_id text, p_metadata jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_hold(p_id uuid, p_debit_account_id uuid, p_credit_account_id uuid, p_amount numeric, p_kind text, p_timeout interval, p_reference_type text, p_reference_id text, p_metadata jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.credit_hold_usage(p_id uuid, p_user_id uuid, p_usage text, p_quantity numeric, p_timeout interval, p_reference_type text, p_reference_id text, p_metadata jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_hold_usage(p_id uuid, p_user_id uuid, p_usage text, p_quantity numeric, p_timeout interval, p_reference_type text, p_reference_id text, p_metadata jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.credit_min_payout() FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_min_payout() TO authenticated;
GRANT ALL ON FUNCTION public.credit_min_payout() TO service_role;
REVOKE ALL ON FUNCTION public.credit_pay_strategy_subscription(p_id uuid, p_strategy_subscription_id uuid, p_amount numeric) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_pay_strategy_subscription(p_id uuid, p_strategy_subscription_id uuid, p_amount numeric) TO service_role;
REVOKE ALL ON FUNCTION public.credit_post(p_id uuid, p_pending_id uuid, p_amount numeric, p_metadata jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_post(p_id uuid, p_pending_id uuid, p_amount numeric, p_metadata jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.credit_price(p_user_id uuid, p_usage text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_price(p_user_id uuid, p_usage text) TO service_role;
REVOKE ALL ON FUNCTION public.credit_purchase_from_invoice(p_invoice_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_purchase_from_invoice(p_invoice_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.credit_quote(p_user_id uuid, p_usage text, p_quantity numeric) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_quote(p_user_id uuid, p_usage text, p_quantity numeric) TO service_role;
REVOKE ALL ON FUNCTION public.credit_request_payout(p_amount numeric, p_id uuid, p_user_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_request_payout(p_amount numeric, p_id uuid, p_user_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.credit_request_payout(p_amount numeric, p_id uuid, p_user_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.credit_void(p_id uuid, p_pending_id uuid, p_metadata jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.credit_void(p_id uuid, p_pending_id uuid, p_metadata jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.custom_access_token_hook(event jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.custom_access_token_hook(event jsonb) TO service_role;
GRANT ALL ON FUNCTION public.custom_access_token_hook(event jsonb) TO supabase_auth_admin;
REVOKE ALL ON FUNCTION public.db_pre_request() FROM PUBLIC;
GRANT ALL ON FUNCTION public.db_pre_request() TO anon;
GRANT ALL ON FUNCTION public.db_pre_request() TO authenticated;
GRANT ALL ON FUNCTION public.db_pre_request() TO service_role;
REVOKE ALL ON FUNCTION public.decline_organisation_invitation(p_invitation_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.decline_organisation_invitation(p_invitation_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.decline_organisation_invitation(p_invitation_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.delete_organisation(p_organisation_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.delete_organisation(p_organisation_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.delete_organisation(p_organisation_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.drop_history_partitions(p_history text, p_keep interval) FROM PUBLIC;
GRANT ALL ON FUNCTION public.drop_history_partitions(p_history text, p_keep interval) TO service_role;
REVOKE ALL ON FUNCTION public.enqueue_job(p_kind text, p_payload jsonb, p_queue text, p_run_at timestamp with time zone, p_priority integer, p_max_attempts integer, p_idempotency_key text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.enqueue_job(p_kind text, p_payload jsonb, p_queue text, p_run_at timestamp with time zone, p_priority integer, p_max_attempts integer, p_idempotency_key text) TO service_role;
REVOKE ALL ON FUNCTION public.enqueue_jobs(p_kind text, p_payloads jsonb[], p_queue text, p_priority integer, p_max_attempts integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.enqueue_jobs(p_kind text, p_payloads jsonb[], p_queue text, p_priority integer, p_max_attempts integer) TO service_role;
REVOKE ALL ON FUNCTION public.exchange_markets_claim_refresh(p_exchange text, p_min_interval_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION public.exchange_markets_claim_refresh(p_exchange text, p_min_interval_s double precision) TO service_role;
REVOKE ALL ON FUNCTION public.exchange_markets_store(p_exchange text, p_markets jsonb, p_fetched_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.exchange_markets_store(p_exchange text, p_markets jsonb, p_fetched_at timestamp with time zone) TO service_role;
REVOKE ALL ON FUNCTION public.extend_job_lock(p_worker_id uuid, p_job_id bigint, p_lock_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION public.extend_job_lock(p_worker_id uuid, p_job_id bigint, p_lock_s double precision) TO service_role;
REVOKE ALL ON FUNCTION public.fail_job(p_worker_id uuid, p_job_id bigint, p_error text, p_retry boolean, p_retry_after_s double precision, p_backoff_base_s double precision, p_backoff_cap_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION public.fail_job(p_worker_id uuid, p_job_id bigint, p_error text, p_retry boolean, p_retry_after_s double precision, p_backoff_base_s double precision, p_backoff_cap_s double precision) TO service_role;
GRANT ALL ON TABLE public.credit_accounts TO service_role;
GRANT SELECT ON TABLE public.credit_accounts TO authenticated;
GRANT ALL ON TABLE public.credit_balances TO service_role;
GRANT SELECT ON TABLE public.credit_balances TO authenticated;
REVOKE ALL ON FUNCTION public.get_credit_balance(p_kind text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.get_credit_balance(p_kind text) TO authenticated;
GRANT ALL ON FUNCTION public.get_credit_balance(p_kind text) TO service_role;
GRANT ALL ON TABLE public.credit_statement TO service_role;
GRANT SELECT ON TABLE public.credit_statement TO authenticated;
REVOKE ALL ON FUNCTION public.get_credit_statement(p_limit integer, p_before timestamp with time zone, p_kind text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.get_credit_statement(p_limit integer, p_before timestamp with time zone, p_kind text) TO authenticated;
GRANT ALL ON FUNCTION public.get_credit_statement(p_limit integer, p_before timestamp with time zone, p_kind text) TO service_role;
REVOKE ALL ON FUNCTION public.get_strategy_content(p_strategy_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.get_strategy_content(p_strategy_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.get_strategy_content(p_strategy_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.get_strategy_subscribers(p_strategy_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.get_strategy_subscribers(p_strategy_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.get_strategy_subscribers(p_strategy_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.get_user_trading_performance(days_back integer, user_uuid uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.get_user_trading_performance(days_back integer, user_uuid uuid) TO authenticated;
GRANT ALL ON FUNCTION public.get_user_trading_performance(days_back integer, user_uuid uuid) TO service_role;
REVOKE ALL ON FUNCTION public.hook_password_verification_attempt(event jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.hook_password_verification_attempt(event jsonb) TO service_role;
GRANT ALL ON FUNCTION public.hook_password_verification_attempt(event jsonb) TO supabase_auth_admin;
REVOKE ALL ON FUNCTION public.ingest_tradingview_alert(p_token text, p_alert jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.ingest_tradingview_alert(p_token text, p_alert jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.invite_to_organisation(p_organisation_id uuid, p_email text, p_role text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.invite_to_organisation(p_organisation_id uuid, p_email text, p_role text) TO authenticated;
GRANT ALL ON FUNCTION public.invite_to_organisation(p_organisation_id uuid, p_email text, p_role text) TO service_role;
REVOKE ALL ON FUNCTION public.latest_trades(p_limit integer, p_before timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.latest_trades(p_limit integer, p_before timestamp with time zone) TO authenticated;
GRANT ALL ON FUNCTION public.latest_trades(p_limit integer, p_before timestamp with time zone) TO service_role;
REVOKE ALL ON FUNCTION public.leave_organisation(p_organisation_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.leave_organisation(p_organisation_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.leave_organisation(p_organisation_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.manual_trade(p_bot_id uuid, p_is_paper_trade boolean, p_side text, p_amount private.finite_number, p_stake private.finite_number, p_idempotency_key text, p_pair text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.manual_trade(p_bot_id uuid, p_is_paper_trade boolean, p_side text, p_amount private.finite_number, p_stake private.finite_number, p_idempotency_key text, p_pair text) TO authenticated;
GRANT ALL ON FUNCTION public.manual_trade(p_bot_id uuid, p_is_paper_trade boolean, p_side text, p_amount private.finite_number, p_stake private.finite_number, p_idempotency_key text, p_pair text) TO service_role;
REVOKE ALL ON FUNCTION public.mark_dead_workers(p_stale_s double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION public.mark_dead_workers(p_stale_s double precision) TO service_role;
REVOKE ALL ON FUNCTION public.offer_exchange_keys_to_organisation(p_organisation_id uuid, p_offer boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION public.offer_exchange_keys_to_organisation(p_organisation_id uuid, p_offer boolean) TO authenticated;
GRANT ALL ON FUNCTION public.offer_exchange_keys_to_organisation(p_organisation_id uuid, p_offer boolean) TO service_role;
REVOKE ALL ON FUNCTION public.pause_strategy_subscription(p_subscription_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pause_strategy_subscription(p_subscription_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.pause_strategy_subscription(p_subscription_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.payout_connect_begin(p_user_id uuid, p_provider text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.payout_connect_begin(p_user_id uuid, p_provider text) TO service_role;
REVOKE ALL ON FUNCTION public.payout_connect_save(p_user_id uuid, p_provider text, p_currency text, p_stripe_account_id text, p_onboarding_url text, p_bank_code text, p_account_last4 text, p_recipient_code text, p_account_name text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.payout_connect_save(p_user_id uuid, p_provider text, p_currency text, p_stripe_account_id text, p_onboarding_url text, p_bank_code text, p_account_last4 text, p_recipient_code text, p_account_name text) TO service_role;
REVOKE ALL ON FUNCTION public.payout_mark_sent(p_payout_id uuid, p_provider_transfer_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.payout_mark_sent(p_payout_id uuid, p_provider_transfer_id text) TO service_role;
REVOKE ALL ON FUNCTION public.payout_request_monthly(p_month date) FROM PUBLIC;
GRANT ALL ON FUNCTION public.payout_request_monthly(p_month date) TO service_role;
REVOKE ALL ON FUNCTION public.payout_settle(p_payout_id uuid, p_outcome text, p_provider_transfer_id text, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.payout_settle(p_payout_id uuid, p_outcome text, p_provider_transfer_id text, p_reason text) TO service_role;
REVOKE ALL ON FUNCTION public.prune_history(p_history text, p_keep interval, p_batch integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.prune_history(p_history text, p_keep interval, p_batch integer) TO service_role;
REVOKE ALL ON FUNCTION public.reclaim_expired_jobs() FROM PUBLIC;
GRANT ALL ON FUNCTION public.reclaim_expired_jobs() TO service_role;
GRANT ALL ON TABLE public.service_status TO service_role;
GRANT SELECT ON TABLE public.service_status TO authenticated;
REVOKE ALL ON FUNCTION public.record_service_check(p_service text, p_target text, p_ok boolean, p_latency_ms numeric, p_error text, p_slow_ms numeric, p_down_after integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.record_service_check(p_service text, p_target text, p_ok boolean, p_latency_ms numeric, p_error text, p_slow_ms numeric, p_down_after integer) TO service_role;
REVOKE ALL ON FUNCTION public.register_worker(p_name text, p_host text, p_pid integer, p_version text, p_queues text[], p_capacity integer, p_metadata jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.register_worker(p_name text, p_host text, p_pid integer, p_version text, p_queues text[], p_capacity integer, p_metadata jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.release_bot_leases(p_worker_id uuid, p_bot_ids uuid[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.release_bot_leases(p_worker_id uuid, p_bot_ids uuid[]) TO service_role;
REVOKE ALL ON FUNCTION public.release_jobs(p_worker_id uuid, p_job_ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.release_jobs(p_worker_id uuid, p_job_ids bigint[]) TO service_role;
REVOKE ALL ON FUNCTION public.remove_organisation_member(p_organisation_id uuid, p_user_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.remove_organisation_member(p_organisation_id uuid, p_user_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.remove_organisation_member(p_organisation_id uuid, p_user_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.renew_strategy_subscriptions(p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.renew_strategy_subscriptions(p_limit integer) TO service_role;
GRANT ALL ON TABLE public.ai_analyses TO service_role;
GRANT SELECT ON TABLE public.ai_analyses TO authenticated;
REVOKE ALL ON FUNCTION public.request_ai_analysis(p_type text, p_bot_id uuid, p_strategy_id uuid, p_backtest_run_id uuid, p_input jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.request_ai_analysis(p_type text, p_bot_id uuid, p_strategy_id uuid, p_backtest_run_id uuid, p_input jsonb) TO authenticated;
GRANT ALL ON FUNCTION public.request_ai_analysis(p_type text, p_bot_id uuid, p_strategy_id uuid, p_backtest_run_id uuid, p_input jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.request_payout(p_amount numeric, p_id uuid, p_user_id uuid, p_source text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.request_payout(p_amount numeric, p_id uuid, p_user_id uuid, p_source text) TO authenticated;
GRANT ALL ON FUNCTION public.request_payout(p_amount numeric, p_id uuid, p_user_id uuid, p_source text) TO service_role;
REVOKE ALL ON FUNCTION public.resume_strategy_subscription(p_subscription_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.resume_strategy_subscription(p_subscription_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.resume_strategy_subscription(p_subscription_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.revoke_api_key(p_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.revoke_api_key(p_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.revoke_api_key(p_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.revoke_organisation_invitation(p_invitation_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.revoke_organisation_invitation(p_invitation_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.revoke_organisation_invitation(p_invitation_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.rotate_tradingview_token(p_strategy_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.rotate_tradingview_token(p_strategy_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.rotate_tradingview_token(p_strategy_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.save_ai_strategy(p_analysis_id uuid, p_name text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.save_ai_strategy(p_analysis_id uuid, p_name text) TO authenticated;
GRANT ALL ON FUNCTION public.save_ai_strategy(p_analysis_id uuid, p_name text) TO service_role;
REVOKE ALL ON FUNCTION public.set_organisation_member_role(p_organisation_id uuid, p_user_id uuid, p_role text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.set_organisation_member_role(p_organisation_id uuid, p_user_id uuid, p_role text) TO authenticated;
GRANT ALL ON FUNCTION public.set_organisation_member_role(p_organisation_id uuid, p_user_id uuid, p_role text) TO service_role;
REVOKE ALL ON FUNCTION public.set_worker_status(p_worker_id uuid, p_status text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.set_worker_status(p_worker_id uuid, p_status text) TO service_role;
REVOKE ALL ON FUNCTION public.signal_charge_copies(p_signal_id uuid, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.signal_charge_copies(p_signal_id uuid, p_limit integer) TO service_role;
REVOKE ALL ON FUNCTION public.signal_fan_out(p_signal_id uuid, p_phase text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.signal_fan_out(p_signal_id uuid, p_phase text) TO service_role;
REVOKE ALL ON FUNCTION public.stop_bot(p_bot_id uuid, p_positions text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.stop_bot(p_bot_id uuid, p_positions text) TO authenticated;
GRANT ALL ON FUNCTION public.stop_bot(p_bot_id uuid, p_positions text) TO service_role;
REVOKE ALL ON FUNCTION public.subscribe_to_strategy(p_strategy_id uuid, p_auto_execute boolean, p_bot_id uuid, p_sizing jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION public.subscribe_to_strategy(p_strategy_id uuid, p_auto_execute boolean, p_bot_id uuid, p_sizing jsonb) TO authenticated;
GRANT ALL ON FUNCTION public.subscribe_to_strategy(p_strategy_id uuid, p_auto_execute boolean, p_bot_id uuid, p_sizing jsonb) TO service_role;
REVOKE ALL ON FUNCTION public.transfer_organisation_ownership(p_organisation_id uuid, p_new_owner_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.transfer_organisation_ownership(p_organisation_id uuid, p_new_owner_id uuid) TO authenticated;
GRANT ALL ON FUNCTION public.transfer_organisation_ownership(p_organisation_id uuid, p_new_owner_id uuid) TO service_role;
REVOKE ALL ON FUNCTION public.update_bot_statistics() FROM PUBLIC;
GRANT ALL ON FUNCTION public.update_bot_statistics() TO service_role;
REVOKE ALL ON FUNCTION public.webhook_rate_take(p_source text, p_per_minute integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.webhook_rate_take(p_source text, p_per_minute integer) TO service_role;
REVOKE ALL ON FUNCTION public.worker_heartbeat(p_worker_id uuid, p_lock_s double precision, p_job_ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION public.worker_heartbeat(p_worker_id uuid, p_lock_s double precision, p_job_ids bigint[]) TO service_role;
GRANT ALL ON TABLE auth.users TO postgres;
GRANT ALL ON TABLE auth.users TO service_role;
GRANT SELECT ON TABLE public.api_usage_minutes TO authenticated;
GRANT SELECT ON TABLE public.api_usage_minutes TO service_role;
GRANT ALL ON TABLE public.bot_logs TO service_role;
GRANT SELECT ON TABLE public.bot_logs TO authenticated;
GRANT ALL ON TABLE public.candles TO service_role;
GRANT SELECT ON TABLE public.candles TO authenticated;
GRANT SELECT,DELETE ON TABLE public.notifications TO authenticated;
GRANT ALL ON TABLE public.notifications TO service_role;
GRANT UPDATE(read_at) ON TABLE public.notifications TO authenticated;
GRANT ALL ON TABLE private.billing_payment_methods TO service_role;
GRANT ALL ON TABLE private.billing_reminders TO service_role;
GRANT SELECT,INSERT,UPDATE ON TABLE private.candle_empty_ranges TO service_role;
GRANT SELECT ON TABLE private.history_partitions TO service_role;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE private.holdings_pending_aggregates TO service_role;
GRANT ALL ON TABLE public.brokerage_positions TO service_role;
GRANT SELECT ON TABLE public.brokerage_positions TO authenticated;
GRANT SELECT ON TABLE private.watched_symbols TO service_role;
GRANT SELECT ON TABLE private.webhook_event_keys TO service_role;
GRANT ALL ON TABLE public.aggregated_holdings TO service_role;
GRANT SELECT ON TABLE public.aggregated_holdings TO authenticated;
GRANT ALL ON TABLE public.alert_incidents TO service_role;
GRANT SELECT ON TABLE public.alert_incidents TO authenticated;
GRANT ALL ON SEQUENCE public.alert_incidents_id_seq TO service_role;
GRANT SELECT(id) ON TABLE public.api_keys TO service_role;
GRANT SELECT(id) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(user_id) ON TABLE public.api_keys TO service_role;
GRANT SELECT(user_id) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(name) ON TABLE public.api_keys TO service_role;
GRANT SELECT(name) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(environment) ON TABLE public.api_keys TO service_role;
GRANT SELECT(environment) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(prefix) ON TABLE public.api_keys TO service_role;
GRANT SELECT(prefix) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(scopes) ON TABLE public.api_keys TO service_role;
GRANT SELECT(scopes) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(expires_at) ON TABLE public.api_keys TO service_role;
GRANT SELECT(expires_at) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(revoked_at) ON TABLE public.api_keys TO service_role;
GRANT SELECT(revoked_at) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(last_used_at) ON TABLE public.api_keys TO service_role;
GRANT SELECT(last_used_at) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(last_used_ip) ON TABLE public.api_keys TO service_role;
GRANT SELECT(last_used_ip) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(created_at) ON TABLE public.api_keys TO service_role;
GRANT SELECT(created_at) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(organisation_id) ON TABLE public.api_keys TO authenticated;
GRANT SELECT(organisation_id) ON TABLE public.api_keys TO service_role;
GRANT SELECT ON TABLE public.api_usage_days TO authenticated;
GRANT SELECT ON TABLE public.api_usage_days TO service_role;
GRANT SELECT ON TABLE public.api_usage_per_day TO authenticated;
GRANT SELECT ON TABLE public.api_usage_per_day TO service_role;
GRANT SELECT ON TABLE public.api_usage_per_minute TO authenticated;
GRANT SELECT ON TABLE public.api_usage_per_minute TO service_role;
GRANT ALL ON TABLE public.backtest_reports TO service_role;
GRANT SELECT ON TABLE public.backtest_reports TO authenticated;
GRANT ALL ON TABLE public.backtest_results TO service_role;
GRANT SELECT ON TABLE public.backtest_results TO authenticated;
GRANT ALL ON TABLE public.bot_equity TO service_role;
GRANT SELECT ON TABLE public.bot_equity TO authenticated;
GRANT ALL ON TABLE public.bot_leases TO service_role;
GRANT SELECT ON TABLE public.bot_leases TO authenticated;
GRANT ALL ON SEQUENCE public.bot_logs_id_seq TO service_role;
GRANT ALL ON TABLE public.bot_performance_summary TO service_role;
GRANT SELECT ON TABLE public.bot_performance_summary TO authenticated;
GRANT ALL ON TABLE public.brokerage_accounts TO service_role;
GRANT SELECT ON TABLE public.brokerage_accounts TO authenticated;
GRANT ALL ON TABLE public.brokerage_connections TO service_role;
GRANT DELETE ON TABLE public.brokerage_connections TO authenticated;
GRANT SELECT(id) ON TABLE public.brokerage_connections TO authenticated;
GRANT SELECT(user_id) ON TABLE public.brokerage_connections TO authenticated;
GRANT SELECT(provider) ON TABLE public.brokerage_connections TO authenticated;
GRANT SELECT(provider_connection_id) ON TABLE public.brokerage_connections TO authenticated;
GRANT SELECT(brokerage_name) ON TABLE public.brokerage_connections TO authenticated;
GRANT SELECT(status) ON TABLE public.brokerage_connections TO authenticated;
GRANT SELECT(status_reason) ON TABLE public.brokerage_connections TO authenticated;
GRANT SELECT(last_synced_at) ON TABLE public.brokerage_connections TO authenticated;
GRANT SELECT(created_at) ON TABLE public.brokerage_connections TO authenticated;
GRANT SELECT(updated_at) ON TABLE public.brokerage_connections TO authenticated;
GRANT ALL ON TABLE public.credit_packs TO service_role;
GRANT SELECT ON TABLE public.credit_packs TO anon;
GRANT SELECT ON TABLE public.credit_packs TO authenticated;
GRANT ALL ON TABLE public.data_requests TO service_role;
GRANT SELECT ON TABLE public.data_requests TO authenticated;
GRANT INSERT(id) ON TABLE public.data_requests TO authenticated;
GRANT INSERT(user_id) ON TABLE public.data_requests TO authenticated;
GRANT INSERT(exchange) ON TABLE public.data_requests TO authenticated;
GRANT INSERT(trading_pair) ON TABLE public.data_requests TO authenticated;
GRANT INSERT(timeframe) ON TABLE public.data_requests TO authenticated;
GRANT INSERT(start_date) ON TABLE public.data_requests TO authenticated;
GRANT INSERT(end_date) ON TABLE public.data_requests TO authenticated;
GRANT INSERT(idempotency_key) ON TABLE public.data_requests TO authenticated;
GRANT ALL ON TABLE public.exchange_credentials TO service_role;
GRANT DELETE ON TABLE public.exchange_credentials TO authenticated;
GRANT SELECT(id) ON TABLE public.exchange_credentials TO authenticated;
GRANT SELECT(user_id) ON TABLE public.exchange_credentials TO authenticated;
GRANT SELECT(exchange) ON TABLE public.exchange_credentials TO authenticated;
GRANT SELECT(label),UPDATE(label) ON TABLE public.exchange_credentials TO authenticated;
GRANT SELECT(key_id) ON TABLE public.exchange_credentials TO authenticated;
GRANT SELECT(api_key_hint) ON TABLE public.exchange_credentials TO authenticated;
GRANT SELECT(is_testnet) ON TABLE public.exchange_credentials TO authenticated;
GRANT SELECT(last_used_at) ON TABLE public.exchange_credentials TO authenticated;
GRANT SELECT(created_at) ON TABLE public.exchange_credentials TO authenticated;
GRANT SELECT(updated_at) ON TABLE public.exchange_credentials TO authenticated;
GRANT ALL ON TABLE public.exchange_market_loads TO service_role;
GRANT SELECT ON TABLE public.exchange_market_loads TO authenticated;
GRANT ALL ON TABLE public.exchange_markets TO service_role;
GRANT SELECT ON TABLE public.exchange_markets TO authenticated;
GRANT ALL ON TABLE public.workers TO service_role;
GRANT SELECT ON TABLE public.workers TO authenticated;
GRANT ALL ON TABLE public.fleet_health TO service_role;
GRANT SELECT ON TABLE public.fleet_health TO authenticated;
GRANT ALL ON TABLE public.job_queue_stats TO service_role;
GRANT SELECT ON TABLE public.job_queue_stats TO authenticated;
GRANT ALL ON SEQUENCE public.jobs_id_seq TO service_role;
GRANT ALL ON TABLE public.market_latest_candles TO service_role;
GRANT SELECT ON TABLE public.market_latest_candles TO authenticated;
GRANT ALL ON TABLE public.orders TO service_role;
GRANT SELECT ON TABLE public.orders TO authenticated;
GRANT ALL ON TABLE public.symbol_prices TO service_role;
GRANT SELECT ON TABLE public.symbol_prices TO authenticated;
GRANT ALL ON TABLE public.portfolio_holdings TO service_role;
GRANT SELECT ON TABLE public.portfolio_holdings TO authenticated;
GRANT ALL ON TABLE public.portfolio_value TO service_role;
GRANT SELECT ON TABLE public.portfolio_value TO authenticated;
GRANT ALL ON TABLE public.protective_orders TO service_role;
GRANT SELECT ON TABLE public.protective_orders TO authenticated;
GRANT ALL ON TABLE public.provider_statement TO service_role;
GRANT SELECT ON TABLE public.provider_statement TO authenticated;
GRANT ALL ON TABLE public.reviews TO service_role;
GRANT SELECT,DELETE ON TABLE public.reviews TO authenticated;
GRANT SELECT(id) ON TABLE public.reviews TO anon;
GRANT INSERT(strategy_id) ON TABLE public.reviews TO authenticated;
GRANT SELECT(strategy_id) ON TABLE public.reviews TO anon;
GRANT INSERT(user_id) ON TABLE public.reviews TO authenticated;
GRANT INSERT(rating),UPDATE(rating) ON TABLE public.reviews TO authenticated;
GRANT SELECT(rating) ON TABLE public.reviews TO anon;
GRANT INSERT(comment),UPDATE(comment) ON TABLE public.reviews TO authenticated;
GRANT SELECT(comment) ON TABLE public.reviews TO anon;
GRANT SELECT(created_at) ON TABLE public.reviews TO anon;
GRANT SELECT(updated_at) ON TABLE public.reviews TO anon;
GRANT ALL ON TABLE public.service_checks TO service_role;
GRANT SELECT ON TABLE public.service_checks TO authenticated;
GRANT ALL ON SEQUENCE public.service_checks_id_seq TO service_role;
GRANT ALL ON TABLE public.signal_executions TO service_role;
GRANT SELECT ON TABLE public.signal_executions TO authenticated;
GRANT ALL ON TABLE public.strategy_marketplace TO service_role;
GRANT SELECT ON TABLE public.strategy_marketplace TO anon;
GRANT SELECT ON TABLE public.strategy_marketplace TO authenticated;
GRANT ALL ON TABLE public.sync_runs TO service_role;
GRANT SELECT ON TABLE public.sync_runs TO authenticated;
GRANT INSERT(user_id) ON TABLE public.sync_runs TO authenticated;
GRANT INSERT(connection_id) ON TABLE public.sync_runs TO authenticated;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON SEQUENCES  TO postgres;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON SEQUENCES  TO service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON FUNCTIONS  TO postgres;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON FUNCTIONS  TO anon;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON FUNCTIONS  TO authenticated;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON FUNCTIONS  TO service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES  TO postgres;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES  TO anon;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES  TO authenticated;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES  TO service_role;
