"""``tradefleet keys rotate`` moves every sealed secret to the new master key, leaves the
plaintext unchanged, and is idempotent; a live bot's key is opened only in memory."""

from __future__ import annotations

import base64
import os
import subprocess
from typing import Any

import psycopg

from tests.support.db import ROOT, User
from worker.exchanges import ExchangeCredentials
from worker.sealing import Keyring
from worker.sealing.rotate import rotate

K1 = base64.b64encode(os.urandom(32)).decode()
K2 = base64.b64encode(os.urandom(32)).decode()


async def test_rotate_reseals_everything_under_the_new_key_once(
    conn: psycopg.AsyncConnection[Any], users: dict[str, User], db_url: str
) -> None:
    old = Keyring.parse(f"k1:{K1}")
    creds = ExchangeCredentials("api-key-1234", "the-secret", None)
    alice = users["alice"]
    await conn.execute(
        "insert into public.exchange_credentials (user_id, exchange, sealed_secret, key_id, api_key_hint) "
        "values (%s, 'binance', %s, 'k1', '****1234')",
        (alice.id, creds.seal(old)),
    )
    await conn.execute(
        "insert into public.brokerage_connections (user_id, provider, sealed_user_secret) values (%s, 'snaptrade', %s)",
        (alice.id, old.seal_bytes(b"snaptrade-user-secret")),
    )

    new = Keyring.parse(f"k2:{K2},k1:{K1}")
    report = await rotate(db_url, new)
    assert report.ok and report.resealed == {"exchange_credentials": 1, "brokerage_connections": 1}

    ((sealed, kid),) = await (
        await conn.execute("select sealed_secret, key_id from public.exchange_credentials")
    ).fetchall()
    assert kid == "k2" and sealed.startswith("v1:k2:")
    assert (
        ExchangeCredentials.open(Keyring.parse(f"k2:{K2}"), sealed) == creds
    )  # the old key is no longer needed
    ((user_secret,),) = await (
        await conn.execute("select sealed_user_secret from public.brokerage_connections")
    ).fetchall()
    assert Keyring.parse(f"k2:{K2}").open_bytes(user_secret) == b"snaptrade-user-secret"

    again = await rotate(db_url, new)
    assert again.resealed == {"exchange_credentials": 0, "brokerage_connections": 0}


def test_the_command_reports_and_never_prints_secrets(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as c:
        user = c.execute(
            "insert into auth.users (id, aud, role, email) values (gen_random_uuid(), 'authenticated', "
            "'authenticated', 'k@test.local') returning id"
        ).fetchone()
        assert user is not None
        c.execute(
            "insert into public.exchange_credentials (user_id, exchange, sealed_secret, key_id) values (%s, 'bybit', %s, 'k1')",
            (
                user[0],
                ExchangeCredentials("plain-api", "plain-secret").seal(Keyring.parse(f"k1:{K1}")),
            ),
        )
    env = {**os.environ, "TRADEFLEET_MASTER_KEYS": f"k2:{K2},k1:{K1}", "DATABASE_URL": db_url}
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "tradefleet"), "keys", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "exchange_credentials: 1 resealed under k2" in out.stdout
    assert "plain" not in out.stdout + out.stderr
