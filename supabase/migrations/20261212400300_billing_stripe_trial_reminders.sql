-- Reminders before a Stripe trial ends say what happens: the card is charged.
--
-- A Stripe trial started through trial_period_days renews by itself when it ends (Stripe
-- charges the saved card), unlike a trial started with billing_start_trial, which the user
-- must check out to keep. The 3-day and 1-day reminders (billing_send_reminders, replaced
-- here) now say so; everything else is as before.

-- ======================================================================================
-- Functions, each followed by its grants
-- ======================================================================================

-- Reminders 3 days and 1 day before a trial or a paid period ends (only the nearer one
-- when both are due), once each, in the app and on the user's channels. Returns how many.
create or replace function public.billing_send_reminders(p_now timestamptz default now()) returns integer
language plpgsql security definer
set search_path = ''
as $$
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

revoke execute on function public.billing_send_reminders(timestamptz) from public, anon, authenticated;
grant execute on function public.billing_send_reminders(timestamptz) to service_role;
