"""Sealing: AES-256-GCM envelopes of secrets under rotating master keys.

A shared tool with no capability knowledge: exchanges seal API keys with it, holdings
opens brokerage user secrets, and ``tradefleet keys rotate`` re-encrypts everything
under the current master key.
"""

from __future__ import annotations

from worker.sealing.keyring import (
    MASTER_KEYS_ENV,
    Envelope,
    Keyring,
    SealError,
    generate_master_key,
    key_id_of,
)
from worker.sealing.settings import SealingSettings

__all__ = [
    "MASTER_KEYS_ENV",
    "Envelope",
    "Keyring",
    "SealError",
    "SealingSettings",
    "generate_master_key",
    "key_id_of",
]
