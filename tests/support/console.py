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


def screenshot(
    url: str, email: str, out: Path, page: str = "/", size: tuple[int, int] = (1280, 1000)
) -> None:
    """Serve the console on ``url``, sign in as the admin ``email`` and save ``page``."""
    import asyncio
    import tempfile

    from tests.support import browser
    from worker.console.cli import _claims

    found = asyncio.run(_claims(url, email))
    if found is None:
        raise SystemExit(f"no user with the email {email!r}")
    claims = {**found, "iss": ISSUER, "aud": "authenticated"}
    now = int(time.time())
    signed = jwt.encode({**claims, "iat": now, "exp": now + 600}, SECRET, algorithm="HS256")
    with tempfile.TemporaryDirectory() as tmp, serve(url, Path(tmp) / "console.log") as base:
        with browser.chromium(*size) as driver:
            driver.get(f"{base}/login")
            driver.add_cookie({"name": "tradefleet_console", "value": signed})
            driver.get(f"{base}{page}")
            time.sleep(1)  # the charts draw after the page loads
            driver.save_screenshot(str(out))


if __name__ == "__main__":
    import sys

    # python -m tests.support.console DATABASE_URL EMAIL OUT.png [PAGE]
    screenshot(sys.argv[1], sys.argv[2], Path(sys.argv[3]), *(sys.argv[4:5] or ["/"]))
