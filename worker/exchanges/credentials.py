"""Exchange API credentials, sealed at rest with the worker's keyring (``worker.sealing``).

The sealed plaintext is the UTF-8 JSON object
``{"api_key": "...", "secret": "...", "password": "..."}`` (``password`` may be ``null``
or absent), which is also what an Edge Function seals with WebCrypto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from worker.sealing import Keyring, SealError


@dataclass(frozen=True, slots=True, repr=False)
class ExchangeCredentials:
    """Plaintext exchange credentials; lives only in memory and never prints its secrets."""

    api_key: str
    secret: str
    password: str | None = None

    def __repr__(self) -> str:
        password = "None" if self.password is None else "'***'"
        return f"ExchangeCredentials(api_key='***', secret='***', password={password})"

    __str__ = __repr__

    def to_json(self) -> str:
        return json.dumps(
            {"api_key": self.api_key, "secret": self.secret, "password": self.password},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ExchangeCredentials:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise SealError("sealed credentials are not valid JSON") from e
        if not isinstance(data, dict):
            raise SealError("sealed credentials must be a JSON object")
        api_key, secret, password = data.get("api_key"), data.get("secret"), data.get("password")
        if not isinstance(api_key, str) or not isinstance(secret, str) or not api_key or not secret:
            raise SealError("sealed credentials need non-empty string 'api_key' and 'secret'")
        if password is not None and not isinstance(password, str):
            raise SealError("sealed credentials 'password' must be a string or null")
        return cls(api_key=api_key, secret=secret, password=password or None)

    def seal(self, keyring: Keyring) -> str:
        """Encrypt these credentials under the keyring's current master key."""
        return keyring.seal_bytes(self.to_json().encode())

    @classmethod
    def open(cls, keyring: Keyring, sealed: str) -> ExchangeCredentials:
        """Decrypt credentials sealed with any key of the keyring."""
        return cls.from_json(keyring.open_bytes(sealed).decode())
