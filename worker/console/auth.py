"""Signing in: a Supabase session token (JWT), verified as the Edge Functions verify one.

Asymmetric keys (ES256, RS256) come from ``SUPABASE_JWKS`` or from the project's
``/auth/v1/.well-known/jwks.json`` (cached ten minutes); HS256 only with the legacy
secret (``TRADEFLEET_JWT_SECRET``, or a symmetric key in ``SUPABASE_JWKS``). Every token
must name the issuer, the ``authenticated`` audience, a subject and an expiry. The console
then wants an admin: the role the access token hook gives admins, and ``app_metadata.role``
``admin``; the database has the last word (an admin demoted since is refused there).
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

import jwt

from worker.console.settings import ConsoleSettings

ADMIN_DB_ROLE = "tradefleet_admin"
ASYMMETRIC = ["ES256", "RS256"]
JWKS_CACHE_S = 600
LEEWAY_S = 30


class SignInError(Exception):
    """The token is refused: sign in again."""


class TokenExpired(SignInError):
    """The session is over: back to the login page."""


class NotAdmin(SignInError):
    """A valid session of someone who is not an admin: 403."""


@dataclass(frozen=True)
class Session:
    """A verified admin session: the token and its claims."""

    token: str
    claims: dict[str, Any]

    @property
    def user_id(self) -> str:
        return str(self.claims["sub"])

    @property
    def email(self) -> str:
        return str(self.claims.get("email") or self.user_id)

    @property
    def db_role(self) -> str:
        return str(self.claims["role"])

    @property
    def expires_at(self) -> int:
        return int(self.claims["exp"])


class Verifier:
    """Verifies tokens with the project's keys; one per console process (it caches keys)."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self._issuer = settings.issuer
        self._secrets: list[bytes] = []
        self._keys: dict[str, Any] = {}
        self._client: jwt.PyJWKClient | None = None
        if settings.tradefleet_jwt_secret is not None:
            self._secrets.append(settings.tradefleet_jwt_secret.get_secret_value().encode())
        if settings.supabase_jwks is not None:
            self._load_inline(settings.supabase_jwks.get_secret_value())
        elif settings.supabase_url:
            url = f"{settings.supabase_url.rstrip('/')}/auth/v1/.well-known/jwks.json"
            self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=JWKS_CACHE_S)

    def _load_inline(self, text: str) -> None:
        try:
            keys = json.loads(text)["keys"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"SUPABASE_JWKS is not a JSON Web Key Set ({e})") from None
        for key in keys:
            if key.get("kty") == "oct" and isinstance(key.get("k"), str):
                padded = key["k"] + "=" * (-len(key["k"]) % 4)
                self._secrets.append(base64.urlsafe_b64decode(padded))
            else:
                self._keys[str(key.get("kid", ""))] = jwt.PyJWK.from_dict(key)

    async def verify(self, token: str) -> Session:
        """The admin session of ``token``; raises :class:`SignInError` (or a subclass)."""
        token = token.strip().removeprefix("Bearer ").strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise SignInError("this is not a session token") from None
        alg = header.get("alg")
        options: dict[str, Any] = {"require": ["exp", "sub", "iss", "aud"]}
        checks: dict[str, Any] = {
            "audience": "authenticated",
            "issuer": self._issuer,
            "leeway": LEEWAY_S,
            "options": options,
        }
        try:
            if alg == "HS256":
                claims = self._verify_hs256(token, checks)
            elif alg in ASYMMETRIC:
                key = await self._signing_key(token, str(header.get("kid", "")))
                claims = jwt.decode(token, key, algorithms=ASYMMETRIC, **checks)
            else:
                raise SignInError(f"tokens signed with {alg!r} are not accepted")
        except jwt.ExpiredSignatureError:
            raise TokenExpired("the session has expired: sign in again") from None
        except jwt.PyJWTError as e:
            raise SignInError(f"the token is refused ({e})") from None
        if claims.get("role") not in ("authenticated", ADMIN_DB_ROLE) or not claims.get("sub"):
            raise SignInError("not a signed-in user's token")
        app_role = (claims.get("app_metadata") or {}).get("role")
        if claims["role"] != ADMIN_DB_ROLE or app_role != "admin":
            raise NotAdmin("this account is not an admin")
        return Session(token, claims)

    def _verify_hs256(self, token: str, checks: dict[str, Any]) -> dict[str, Any]:
        if not self._secrets:
            raise SignInError("HS256 tokens are not accepted: no legacy JWT secret is set")
        for i, secret in enumerate(self._secrets):
            try:
                claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"], **checks)
                return claims
            except jwt.InvalidSignatureError:
                if i == len(self._secrets) - 1:
                    raise
        raise SignInError("no key to verify the token with")  # pragma: no cover

    async def _signing_key(self, token: str, kid: str) -> Any:
        if self._keys:
            key = self._keys.get(kid) or (next(iter(self._keys.values())) if not kid else None)
            if key is None:
                raise SignInError("the token names a signing key the project does not have")
            return key
        if self._client is None:
            raise SignInError("no signing keys are configured for ES256 or RS256 tokens")
        client = self._client
        try:
            return await asyncio.to_thread(client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientError as e:
            raise SignInError(f"could not get the project's signing keys ({e})") from None
