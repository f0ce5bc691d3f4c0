"""Console sign-in: tokens are verified as the Edge Functions verify them (issuer,
audience, expiry, signing keys from the JWKS or the legacy secret), then only admins pass."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from worker.console.auth import NotAdmin, SignInError, TokenExpired, Verifier
from worker.console.settings import ConsoleSettings

ISSUER = "https://project.supabase.co/auth/v1"
SECRET = "legacy-secret-of-the-project-0123456789"


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": "authenticated",
        "sub": str(uuid.uuid4()),
        "email": "ops@example.com",
        "exp": now + 600,
        "iat": now,
        "role": "tradefleet_admin",
        "app_metadata": {"role": "admin"},
    }
    return {**base, **over}


def settings(**kw: Any) -> ConsoleSettings:
    base: dict[str, Any] = {
        "database_url": "postgresql://x",
        "supabase_url": "https://project.supabase.co",
    }
    return ConsoleSettings(**{**base, **kw})


@pytest.fixture
def es256() -> tuple[Any, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": "ES256", "use": "sig"})
    secret = base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("=")
    jwks = json.dumps({"keys": [jwk, {"kty": "oct", "k": secret}]})
    return key, jwks


async def test_an_admin_token_signed_with_the_projects_key_passes(es256: tuple[Any, str]) -> None:
    key, jwks = es256
    v = Verifier(settings(supabase_jwks=jwks))
    token = jwt.encode(claims(), key, algorithm="ES256", headers={"kid": "k1"})
    session = await v.verify(token)
    assert session.email == "ops@example.com" and session.db_role == "tradefleet_admin"
    # the local secret, given as an "oct" key of the set, verifies HS256 tokens
    assert await v.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"iss": "https://other.supabase.co/auth/v1"}, SignInError),
        ({"aud": "service"}, SignInError),
        ({"exp": int(time.time()) - 120}, TokenExpired),
        ({"role": "anon"}, SignInError),
        ({"role": "authenticated"}, NotAdmin),
        ({"app_metadata": {"role": "provider"}}, NotAdmin),
    ],
)
async def test_refused_tokens(es256: tuple[Any, str], change: dict[str, Any], error: type) -> None:
    key, jwks = es256
    v = Verifier(settings(supabase_jwks=jwks))
    token = jwt.encode(claims(**change), key, algorithm="ES256", headers={"kid": "k1"})
    with pytest.raises(error):
        await v.verify(token)


async def test_hs256_needs_the_legacy_secret(es256: tuple[Any, str]) -> None:
    _, jwks = es256
    only_public = json.dumps({"keys": [json.loads(jwks)["keys"][0]]})
    v = Verifier(settings(supabase_jwks=only_public))
    with pytest.raises(SignInError, match="no legacy JWT secret"):
        await v.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))
    v = Verifier(settings(tradefleet_jwt_secret=SECRET, supabase_jwks=only_public))
    with pytest.raises(SignInError, match="refused"):
        await v.verify(
            jwt.encode(claims(), "another-secret-entirely-0123456789", algorithm="HS256")
        )
    with pytest.raises(SignInError, match="not a session token"):
        await v.verify("hello")


def test_the_console_will_not_start_without_a_way_to_verify_tokens() -> None:
    with pytest.raises(ValueError, match="cannot verify sign-ins"):
        ConsoleSettings(database_url="postgresql://x", supabase_url=None, supabase_jwks=None,
                        tradefleet_jwt_secret=None)  # fmt: skip
