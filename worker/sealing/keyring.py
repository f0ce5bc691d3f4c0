"""Sealing of secrets (exchange API keys, brokerage user secrets) with AES-256-GCM.

Envelope format (text, one line, ASCII)::

    v1:<key_id>:<base64(nonce)>:<base64(ciphertext || tag)>

- ``v1``: format version.
- ``key_id``: id of the master key in the keyring, ``[A-Za-z0-9_-]{1,64}`` (no colon).
- ``nonce``: 12 random bytes, standard base64 with padding (16 characters).
- ``ciphertext || tag``: AES-256-GCM output with the 16-byte tag appended (what both
  ``cryptography``'s ``AESGCM.encrypt`` and WebCrypto's ``encrypt`` return), standard
  base64 with padding.
- additional authenticated data: the key id as UTF-8 bytes.
- plaintext: the secret's bytes (exchange keys seal a UTF-8 JSON object, see
  ``worker.exchanges.ExchangeCredentials``).

A Deno Edge Function produces the same envelope with WebCrypto::

    const raw = Uint8Array.from(atob(b64Key), c => c.charCodeAt(0));      // 32 bytes
    const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt"]);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = new TextEncoder().encode(JSON.stringify({api_key, secret, password}));
    const ct = new Uint8Array(await crypto.subtle.encrypt(
        {name: "AES-GCM", iv, additionalData: new TextEncoder().encode(keyId)}, key, data));
    const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
    const envelope = `v1:${keyId}:${b64(iv)}:${b64(ct)}`;

Master keys come from ``TRADEFLEET_MASTER_KEYS="kid1:<base64 32 bytes>,kid2:<...>"``
(``SealingSettings``); the first is current (used to seal), the others only open older
envelopes until ``reseal`` has moved them to the current key (``tradefleet keys rotate``).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from worker.errors import Fatal

VERSION = "v1"
MASTER_KEYS_ENV = "TRADEFLEET_MASTER_KEYS"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SealError(Fatal):
    """A sealed value cannot be opened (unknown key id, tampered or malformed envelope)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """The parts of a sealed value (``v1:<key_id>:<nonce>:<ciphertext>``)."""

    key_id: str
    nonce: bytes
    ciphertext: bytes

    def __str__(self) -> str:
        nonce = base64.b64encode(self.nonce).decode()
        body = base64.b64encode(self.ciphertext).decode()
        return f"{VERSION}:{self.key_id}:{nonce}:{body}"

    @classmethod
    def parse(cls, text: str) -> Envelope:
        parts = text.strip().split(":")
        if len(parts) != 4 or parts[0] != VERSION:
            raise SealError(f"not a sealed value (expected '{VERSION}:<key_id>:<nonce>:<data>')")
        _, key_id, nonce_b64, body_b64 = parts
        if not _KEY_ID_RE.match(key_id):
            raise SealError("sealed value has an invalid key id")
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
            body = base64.b64decode(body_b64, validate=True)
        except (binascii.Error, ValueError) as e:
            raise SealError("sealed value is not valid base64") from e
        if len(nonce) != NONCE_BYTES or len(body) < 16:
            raise SealError("sealed value has a wrong nonce or data length")
        return cls(key_id=key_id, nonce=nonce, ciphertext=body)


def key_id_of(sealed: str) -> str:
    """The master key id a sealed value was made with (for rotation queries)."""
    return Envelope.parse(sealed).key_id


def generate_master_key() -> str:
    """A new random master key, base64 encoded, for ``TRADEFLEET_MASTER_KEYS``."""
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


class Keyring:
    """Master keys by id; the first one is current and seals new values."""

    def __init__(self, keys: Mapping[str, bytes], current: str | None = None) -> None:
        if not keys:
            raise Fatal(f"no master keys configured (set {MASTER_KEYS_ENV})")
        for kid, key in keys.items():
            if not _KEY_ID_RE.match(kid):
                raise Fatal(f"master key id {kid!r} must be 1-64 characters of [A-Za-z0-9_-]")
            if len(key) != KEY_BYTES:
                raise Fatal(
                    f"master key {kid!r} must be {KEY_BYTES} bytes (AES-256), got {len(key)}"
                )
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.current_key_id = current or next(iter(keys))
        if self.current_key_id not in self._keys:
            raise Fatal(f"current master key {self.current_key_id!r} is not in the keyring")

    def __repr__(self) -> str:
        return f"Keyring(current={self.current_key_id!r}, key_ids={list(self._keys)!r})"

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Parse ``"kid1:base64key,kid2:base64key"`` (first is current)."""
        keys: dict[str, bytes] = {}
        for item in (p.strip() for p in spec.split(",")):
            if not item:
                continue
            kid, sep, b64 = item.partition(":")
            if not sep:
                raise Fatal(f"{MASTER_KEYS_ENV} entries must look like '<key_id>:<base64 key>'")
            try:
                keys[kid.strip()] = base64.b64decode(b64.strip(), validate=True)
            except (binascii.Error, ValueError) as e:
                raise Fatal(f"master key {kid.strip()!r} is not valid base64") from e
        return cls(keys)

    def seal_bytes(self, plaintext: bytes) -> str:
        kid = self.current_key_id
        nonce = os.urandom(NONCE_BYTES)
        body = self._keys[kid].encrypt(nonce, plaintext, kid.encode())
        return str(Envelope(kid, nonce, body))

    def open_bytes(self, sealed: str) -> bytes:
        envelope = Envelope.parse(sealed)
        aead = self._keys.get(envelope.key_id)
        if aead is None:
            raise SealError(
                f"sealed with master key {envelope.key_id!r}, which is not in {MASTER_KEYS_ENV}"
            )
        try:
            return aead.decrypt(envelope.nonce, envelope.ciphertext, envelope.key_id.encode())
        except InvalidTag as e:
            raise SealError(
                f"sealed value does not open with master key {envelope.key_id!r} (tampered or wrong key)"
            ) from e

    def needs_reseal(self, sealed: str) -> bool:
        return key_id_of(sealed) != self.current_key_id

    def reseal(self, sealed: str) -> str:
        """Re-encrypt under the current master key (rotation); unchanged if already current."""
        if not self.needs_reseal(sealed):
            return sealed
        return self.seal_bytes(self.open_bytes(sealed))
