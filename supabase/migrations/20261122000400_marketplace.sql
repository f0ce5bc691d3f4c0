-- Marketplace: provider signals, strategy subscriptions, reviews and notifications.

create table public.signals (
  id uuid primary key default gen_random_uuid(),
  strategy_id uuid not null references public.strategies (id) on delete cascade,
  provider_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  action text not null default 'entry' constraint signals_action_known check (action in ('entry', 'update', 'exit', 'close')),
  status text not null default 'open' constraint signals_status_known check (status in ('open', 'updated', 'closed', 'cancelled')),
  pair text not null constraint signals_pair_format check (pair ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'),
  side text not null constraint signals_side_known check (side in ('long', 'short')),
  entry_price numeric(28, 12) constraint signals_entry_price_positive check (entry_price > 0),
  stop_loss numeric(28, 12) constraint signals_stop_loss_positive check (stop_loss > 0),
  take_profit numeric(28, 12) constraint signals_take_profit_positive check (take_profit > 0),
  leverage numeric(6, 2) not null default 1 constraint signals_leverage_range check (leverage between 1 and 125),
  exit_price numeric(28, 12) constraint signals_exit_price_positive check (exit_price > 0),
  result_pct numeric(12, 4),
  indicators jsonb not null default '{}',
  note text,
  source text not null default 'manual' constraint signals_source_known check (source in ('manual', 'tradingview', 'api')),
  idempotency_key text,
  closed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint signals_idempotency_key_unique unique (strategy_id, idempotency_key)
);
create index signals_strategy_id_idx on public.signals (strategy_id, created_at desc);
create index signals_provider_id_idx on public.signals (provider_id);
create trigger signals_updated_at before update on public.signals
  for each row execute function private.set_updated_at();

create table public.strategy_subscriptions (
  id uuid primary key default gen_random_uuid(),
  strategy_id uuid not null references public.strategies (id) on delete cascade,
  subscriber_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  status text not null default 'active' constraint strategy_subscriptions_status_known
    check (status in ('active', 'paused', 'cancelled', 'expired')),
  auto_execute boolean not null default false,
  bot_id uuid references public.bots (id) on delete set null,
  sizing jsonb not null default '{}',
  price numeric(12, 2) not null default 0 constraint strategy_subscriptions_price_not_negative check (price >= 0),
  current_period_start timestamptz not null default now(),
  current_period_end timestamptz,
  cancelled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint strategy_subscriptions_one_per_subscriber unique (strategy_id, subscriber_id),
  constraint strategy_subscriptions_auto_execute_needs_bot check (not auto_execute or bot_id is not null)
);
create index strategy_subscriptions_subscriber_idx on public.strategy_subscriptions (subscriber_id);
create index strategy_subscriptions_bot_id_idx on public.strategy_subscriptions (bot_id);
create index strategy_subscriptions_active_idx on public.strategy_subscriptions (strategy_id) where status = 'active';
create trigger strategy_subscriptions_updated_at before update on public.strategy_subscriptions
  for each row execute function private.set_updated_at();

create table public.reviews (
  id uuid primary key default gen_random_uuid(),
  strategy_id uuid not null references public.strategies (id) on delete cascade,
  user_id uuid not null default auth.uid() references public.profiles (id) on delete cascade,
  rating smallint not null constraint reviews_rating_range check (rating between 1 and 5),
  comment text constraint reviews_comment_length check (char_length(comment) <= 4000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint reviews_one_per_subscriber unique (strategy_id, user_id)
);
create index reviews_user_id_idx on public.reviews (user_id);
create trigger reviews_updated_at before update on public.reviews
  for each row execute function private.set_updated_at();

create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.profiles (id) on delete cascade,
  kind text not null constraint notifications_kind_known
    check (kind in ('signal', 'fill', 'error', 'low_credits', 'payment', 'sync', 'system')),
  title text not null,
  body text,
  data jsonb not null default '{}',
  channels jsonb not null default '{}',
  read_at timestamptz,
  created_at timestamptz not null default now()
);
create index notifications_user_id_idx on public.notifications (user_id, created_at desc);

revoke all on public.signals, public.strategy_subscriptions, public.reviews, public.notifications from anon, authenticated;
grant all on public.signals, public.strategy_subscriptions, public.reviews, public.notifications to service_role;
grant select on public.signals, public.strategy_subscriptions, public.reviews, public.notifications to authenticated;
grant select on public.reviews to anon;
grant insert (strategy_id, provider_id, action, pair, side, entry_price, stop_loss, take_profit, leverage, indicators,
              note, idempotency_key)
  on public.signals to authenticated;
grant update (action, status, stop_loss, take_profit, exit_price, indicators, note) on public.signals to authenticated;
grant update (auto_execute, bot_id, sizing) on public.strategy_subscriptions to authenticated;
grant insert (strategy_id, user_id, rating, comment) on public.reviews to authenticated;
grant update (rating, comment) on public.reviews to authenticated;
grant delete on public.reviews to authenticated;
grant update (read_at) on public.notifications to authenticated;
grant delete on public.notifications to authenticated;

alter table public.signals enable row level security;
alter table public.strategy_subscriptions enable row level security;
alter table public.reviews enable row level security;
alter table public.notifications enable row level security;

-- Who subscribes to what, readable inside policies without recursing through RLS.
create or replace function private.is_active_subscriber(p_strategy_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.strategy_subscriptions ss
     where ss.strategy_id = p_strategy_id and ss.subscriber_id = auth.uid() and ss.status = 'active'
  )
$$;
create or replace function private.has_subscribed(p_strategy_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.strategy_subscriptions ss
     where ss.strategy_id = p_strategy_id and ss.subscriber_id = auth.uid()
  )
$$;
create or replace function private.owns_strategy(p_strategy_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (select 1 from public.strategies s where s.id = p_strategy_id and s.user_id = auth.uid())
$$;
revoke all on function private.is_active_subscriber(uuid), private.has_subscribed(uuid), private.owns_strategy(uuid) from public;
grant execute on function private.is_active_subscriber(uuid), private.has_subscribed(uuid), private.owns_strategy(uuid)
  to authenticated, service_role;

create policy "Providers can read signals of their strategies" on public.signals
  for select to authenticated using (provider_id = (select auth.uid()));
create policy "Active subscribers can read signals" on public.signals
  for select to authenticated using (private.is_active_subscriber(strategy_id));
create policy "Admins can read every signal" on public.signals
  for select to tradefleet_admin using (true);
create policy "Providers can publish signals on their own strategies" on public.signals
  for insert to authenticated with check (
    provider_id = (select auth.uid())
    and (select private.app_role()) in ('provider', 'admin')
    and private.owns_strategy(strategy_id)
  );
create policy "Providers can update their own signals" on public.signals
  for update to authenticated using (provider_id = (select auth.uid())) with check (provider_id = (select auth.uid()));

create policy "Subscribers can read their own subscriptions" on public.strategy_subscriptions
  for select to authenticated using (subscriber_id = (select auth.uid()));
create policy "Providers can read subscriptions to their strategies" on public.strategy_subscriptions
  for select to authenticated using (private.owns_strategy(strategy_id));
create policy "Admins can read every subscription to a strategy" on public.strategy_subscriptions
  for select to tradefleet_admin using (true);
create policy "Subscribers can change execution of their own subscriptions" on public.strategy_subscriptions
  for update to authenticated using (subscriber_id = (select auth.uid())) with check (
    subscriber_id = (select auth.uid())
    and (bot_id is null or exists (select 1 from public.bots b where b.id = bot_id and b.user_id = (select auth.uid())))
  );

create policy "Anyone can read reviews of marketplace strategies" on public.reviews
  for select to anon, authenticated using (exists (select 1 from public.strategies s where s.id = strategy_id));
create policy "Subscribers can review a strategy once" on public.reviews
  for insert to authenticated with check (user_id = (select auth.uid()) and private.has_subscribed(strategy_id));
create policy "Users can edit their own reviews" on public.reviews
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "Users can delete their own reviews" on public.reviews
  for delete to authenticated using (user_id = (select auth.uid()));

create policy "Users can read their own notifications" on public.notifications
  for select to authenticated using (user_id = (select auth.uid()));
create policy "Users can mark their own notifications read" on public.notifications
  for update to authenticated using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy "Users can delete their own notifications" on public.notifications
  for delete to authenticated using (user_id = (select auth.uid()));
