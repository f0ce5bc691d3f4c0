"""``tradefleet keys rotate``: re-encrypt every sealed secret under the current master key.

Put the new key first in ``TRADEFLEET_MASTER_KEYS`` (keeping the old ones after it), run
``tradefleet keys rotate``, and once it reports nothing left on old keys, drop them. It is
idempotent: values already under the current key are left alone, and each row is
updated only if it still holds what was read (a concurrent change wins, the next run
catches it up). Plaintext exists only in this process's memory and is never printed.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Any

import psycopg

from worker.db import wait_for_database
from worker.errors import Fatal
from worker.sealing.keyring import Keyring, key_id_of
from worker.sealing.settings import SealingSettings

# (table, column, key id column or None)
SEALED_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("exchange_credentials", "sealed_secret", "key_id"),
    ("brokerage_connections", "sealed_user_secret", None),
)
SELECT = {
    "exchange_credentials": "select id, sealed_secret from public.exchange_credentials "
    "where split_part(sealed_secret, ':', 2) <> %(kid)s order by id",
    "brokerage_connections": "select id, sealed_user_secret from public.brokerage_connections "
    "where sealed_user_secret is not null "
    "and split_part(sealed_user_secret, ':', 2) <> %(kid)s order by id",
}
UPDATE = {
    "exchange_credentials": "update public.exchange_credentials set sealed_secret = %(new)s, key_id = %(kid)s "
    "where id = %(id)s and sealed_secret = %(old)s",
    "brokerage_connections": "update public.brokerage_connections set sealed_user_secret = %(new)s "
    "where id = %(id)s and sealed_user_secret = %(old)s",
}


@dataclass
class RotationReport:
    resealed: dict[str, int]
    failed: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not any(self.failed.values())


async def rotate(database_url: str, keyring: Keyring) -> RotationReport:
    """Reseal every value not under ``keyring.current_key_id``."""
    report = RotationReport({}, {})
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for table, _column, _kid in SEALED_COLUMNS:
            rows = await (
                await conn.execute(SELECT[table], {"kid": keyring.current_key_id})
            ).fetchall()
            done, failed = 0, []
            for row_id, sealed in rows:
                try:
                    new = keyring.reseal(str(sealed))
                except Fatal as e:
                    failed.append(f"{row_id}: {e}")
                    continue
                params: dict[str, Any] = {
                    "new": new,
                    "kid": key_id_of(new),
                    "id": row_id,
                    "old": sealed,
                }
                cur = await conn.execute(UPDATE[table], params)
                done += cur.rowcount
            report.resealed[table] = done
            report.failed[table] = failed
    return report


def add_commands(subparsers: Any, settings: SealingSettings | None = None) -> None:
    """Register ``tradefleet keys rotate`` (master keys from ``settings``, by default the
    environment's, read when the command runs)."""
    keys = subparsers.add_parser(
        "keys",
        help="sealed exchange keys and brokerage secrets",
        description="Manage the sealed exchange keys and brokerage secrets in the database.",
    )
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    rot = sub.add_parser(
        "rotate",
        help="re-encrypt every sealed secret under the first key of TRADEFLEET_MASTER_KEYS",
        description="Re-encrypt every sealed secret under the current master key. Put the "
        "new key first in TRADEFLEET_MASTER_KEYS (keeping the old ones after it), run this, "
        "and once it reports nothing left on old keys, drop them. Safe to run again.",
    )
    rot.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL of the database (default: the DATABASE_URL environment variable)",
    )
    # The keys are checked before the database is tried: _rotate checks it itself.
    rot.set_defaults(
        handler=lambda args: _rotate(args, settings or SealingSettings()), check_database=False
    )


def _rotate(args: Any, settings: SealingSettings) -> int:
    url = args.database_url or settings.database_url_value
    if not url:
        print("set DATABASE_URL or pass --database-url", file=sys.stderr)
        return 2
    try:
        keyring = settings.keyring()
    except Fatal as e:
        print(f"keys rotate: {e}", file=sys.stderr)
        return 2
    asyncio.run(wait_for_database(url))
    report = asyncio.run(rotate(url, keyring))
    for table, n in report.resealed.items():
        print(f"{table}: {n} resealed under {keyring.current_key_id}")
        for line in report.failed[table]:
            print(f"{table}: could not reseal {line}", file=sys.stderr)
    return 0 if report.ok else 1
