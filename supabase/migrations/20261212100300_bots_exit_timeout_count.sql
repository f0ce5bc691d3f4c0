-- exit_timeout_count (freqtrade's unfilledtimeout.exit_timeout_count): after that many limit
-- exits of one position timed out, the bot exits that position at market. 0 (the default)
-- never gives up on limit exits. At most 100.
-- metadata.paper_volume_share (paper bots, optional): a resting limit order fills at most
-- that share (above 0, at most 1) of a candle's volume, the rest rests on (partial fills).

-- Tables ---------------------------------------------------------------------------------

alter table public.bots
  add column exit_timeout_count integer not null default 0
    constraint bots_exit_timeout_count_range check (exit_timeout_count between 0 and 100);

alter table public.bots add constraint bots_metadata_paper_volume_share_range
  check (not metadata ? 'paper_volume_share'
         or coalesce(private.sizing_number(metadata -> 'paper_volume_share') > 0
                     and private.sizing_number(metadata -> 'paper_volume_share') <= 1, false)) not valid;

comment on column public.bots.exit_timeout_count is
  'After this many timed-out limit exits of one position the bot exits at market; 0: never.';

-- RLS ------------------------------------------------------------------------------------

grant insert (exit_timeout_count), update (exit_timeout_count) on public.bots to authenticated;
