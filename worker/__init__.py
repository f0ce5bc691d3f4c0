"""Tradefleet: the worker fleet behind a Supabase trading platform."""

__version__ = "0.1.0"
