"""Brokerage holdings: SnapTrade and Alpaca providers, sync jobs, aggregation, prices, routing."""

from worker.holdings.jobs import HoldingsDeps, register

__all__ = ["HoldingsDeps", "register"]
