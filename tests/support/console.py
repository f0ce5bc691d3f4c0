"""The operator console in tests: its settings, admins' session tokens, a real server."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt

from tests.support.db import User
from tests.support.processes import TRADEFLEET, free_port
from worker.console.settings import ConsoleSettings

SECRET = "console-test-secret-of-at-least-32-bytes"
ISSUER = "http://127.0.0.1:54321/auth/v1"


def settings(url: str, **extra: Any) -> ConsoleSettings:
    return ConsoleSettings(
        database_url=url,
        tradefleet_jwt_secret=SECRET,
        tradefleet_jwt_issuer=ISSUER,
        supabase_url=None,
        supabase_jwks=None,
        **extra,
    )


def token(user: User, *, expires_in: int = 3600, secret: str = SECRET) -> str:
    """The access token Supabase Auth would issue ``user`` (signed with the test secret)."""
    claims = user.claims()
    claims["exp"] = int(time.time()) + expires_in
    if expires_in <= 0:
        claims["iat"] = claims["exp"] - 3600
    return jwt.encode(claims, secret, algorithm="HS256")


@contextlib.contextmanager
def serve(url: str, log: Path, **env: str) -> Iterator[str]:
    """``tradefleet console`` on a free port of its own; yields its base URL."""
    port = free_port()
    full = {
        **os.environ,
        "DATABASE_URL": url,
        "CONSOLE_HOST": "127.0.0.1",
        "CONSOLE_PORT": str(port),
        "TRADEFLEET_JWT_SECRET": SECRET,
        "TRADEFLEET_JWT_ISSUER": ISSUER,
        **env,
    }
    for name in ("SUPABASE_URL", "SUPABASE_JWKS"):
        full.pop(name, None)
    with log.open("wb") as out:
        proc = subprocess.Popen([TRADEFLEET, "console"], env=full, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the console did not start: {log.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
