"""Brokerage holdings: SnapTrade and Alpaca providers, sync jobs, aggregation, prices, routing."""

from worker.holdings.jobs import HoldingsDeps, register
from worker.holdings.settings import HoldingsSettings

__all__ = ["HoldingsDeps", "HoldingsSettings", "register"]
