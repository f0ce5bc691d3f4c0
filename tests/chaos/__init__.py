"""Differential chaos runs of the bot fleet (``scripts/chaos``).

Paper bots trade replayed candles twice: once fault-free (the reference) and once per
scenario while faults are injected from outside (signals to worker processes, PostgreSQL
restarts, a failing write, lease churn). Whatever the faults, a correct fleet leaves the
same trades behind, and orders, trades and credit holds that agree with each other.
"""
