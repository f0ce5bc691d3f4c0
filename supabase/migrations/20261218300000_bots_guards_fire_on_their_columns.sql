-- A bot's guards run when a column they guard changes, not on every write of the row.
--
-- Every close, the fleet writes each stepping bot's progress (`last_candle_at`, and the
-- status it keeps) in `bot_apply_steps`: about 2,000 rows a close for 10,000 bots. Each of
-- those rows ran four guard functions that, for that write, could only return the row
-- unchanged: `guard_bot_changes`, `guard_organisation_bot_changes`, `bot_rules` and
-- `bots_running_overrides_pause` (plpgsql with their own `search_path`, about a third of the
-- progress write's time). Each trigger now has a `when` clause that is true exactly when
-- its function could refuse or change something: one of the columns it compares between
-- the old and the new row changed (or, for `bots_running_overrides_pause`, a user's session
-- set a running bot running). The functions are unchanged and still decide everything;
-- the `when` clause only skips calls that would have returned the row as it was. A trigger
-- on insert cannot see the old row, so `bots_guard_changes` and `bots_platform_rules` keep
-- their names for inserts and get a twin `…_on_update` for updates, named to fire in the
-- same place among the update triggers (they fire in name order).
--
-- Keep each `when` clause in step with its function: a guard that starts comparing another
-- column needs that column in its trigger's clause (tests/security/mutants_bots.py holds
-- mutants that drop a column from a clause).

-- ======================================================================================
-- Triggers
-- ======================================================================================

drop trigger bots_guard_changes on public.bots;
create trigger bots_guard_changes before insert on public.bots
  for each row execute function private.guard_bot_changes();
-- guard_bot_changes compares status and is_paper_trade.
create trigger bots_guard_changes_on_update before update on public.bots
  for each row when (old.status is distinct from new.status
                     or old.is_paper_trade is distinct from new.is_paper_trade)
  execute function private.guard_bot_changes();

-- guard_organisation_bot_changes compares what a member may not change (status aside).
drop trigger bots_guard_organisation_changes on public.bots;
create trigger bots_guard_organisation_changes before update on public.bots
  for each row when ((new.strategy_id, new.exchange_credential_id, new.name, new.exchange, new.trading_pair,
                      new.timeframe, new.strategy, new.parameters, new.max_open_trades, new.stake_amount,
                      new.stop_loss, new.take_profit, new.risk_percentage, new.daily_loss_limit, new.leverage,
                      new.allow_short, new.is_paper_trade, new.metadata)
                     is distinct from
                     (old.strategy_id, old.exchange_credential_id, old.name, old.exchange, old.trading_pair,
                      old.timeframe, old.strategy, old.parameters, old.max_open_trades, old.stake_amount,
                      old.stop_loss, old.take_profit, old.risk_percentage, old.daily_loss_limit, old.leverage,
                      old.allow_short, old.is_paper_trade, old.metadata))
  execute function private.guard_organisation_bot_changes();

drop trigger bots_platform_rules on public.bots;
create trigger bots_platform_rules before insert on public.bots
  for each row execute function private.bot_rules();
-- bot_rules compares status and a live bot's trading settings (strategy_id among them).
create trigger bots_platform_rules_on_update before update on public.bots
  for each row when (old.status is distinct from new.status
                     or (new.leverage, new.stake_amount, new.exchange, new.trading_pair, new.timeframe,
                         new.exchange_credential_id, new.stop_loss, new.take_profit, new.risk_percentage,
                         new.daily_loss_limit, new.max_open_trades, new.allow_short, new.strategy,
                         new.strategy_id, new.parameters, new.metadata -> 'sizing')
                        is distinct from
                        (old.leverage, old.stake_amount, old.exchange, old.trading_pair, old.timeframe,
                         old.exchange_credential_id, old.stop_loss, old.take_profit, old.risk_percentage,
                         old.daily_loss_limit, old.max_open_trades, old.allow_short, old.strategy,
                         old.strategy_id, old.parameters, old.metadata -> 'sizing'))
  execute function private.bot_rules();

-- bots_running_overrides_pause returns at once for the fleet's own writes (no user).
drop trigger bots_owner_running_cancels_pause on public.bots;
create trigger bots_owner_running_cancels_pause before update of status on public.bots
  for each row when (old.status = 'running' and new.status = 'running' and auth.uid() is not null)
  execute function private.bots_running_overrides_pause();
