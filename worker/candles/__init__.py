"""Candles: the exact candle and its float arrays, timeframes, series with their gaps,
where candles come from (exchanges, recorded files), the shared market windows, and the
one store of ``public.candles``. Bots and backtests both use this package.

    from worker.candles import load_csv, timeframe_ms

    series = load_csv("data/candles/ETH_BTC-5m.csv")     # gaps in series.gaps
    series.timeframe, series.missing
"""

from __future__ import annotations

from worker.candles import store
from worker.candles.market import GapReport, MarketData, MarketWindow
from worker.candles.model import Candle, Candles, exact, to_arrays
from worker.candles.series import (
    CandleDataError,
    CandleSeries,
    Gap,
    csv_name,
    find_gaps,
    infer_timeframe,
    load_csv,
    period,
)
from worker.candles.sources import CandleSource, ExchangeSource, ReplaySource, market_name
from worker.candles.store import MarketKey
from worker.candles.timeframes import (
    TIMEFRAMES,
    datetime_to_ms,
    iso,
    ms_to_datetime,
    timeframe_label,
    timeframe_ms,
    timeframe_seconds,
)

__all__ = [
    "TIMEFRAMES",
    "Candle",
    "CandleDataError",
    "CandleSeries",
    "CandleSource",
    "Candles",
    "ExchangeSource",
    "Gap",
    "GapReport",
    "MarketData",
    "MarketKey",
    "MarketWindow",
    "ReplaySource",
    "csv_name",
    "datetime_to_ms",
    "exact",
    "find_gaps",
    "infer_timeframe",
    "iso",
    "load_csv",
    "market_name",
    "ms_to_datetime",
    "period",
    "store",
    "timeframe_label",
    "timeframe_ms",
    "timeframe_seconds",
    "to_arrays",
]
