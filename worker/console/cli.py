"""``tradefleet console`` (serve the console) and ``tradefleet console-token`` (a local
admin session token, for a development database whose tokens use an HS256 secret)."""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from pydantic import ValidationError

from worker.console.settings import ConsoleSettings
from worker.errors import ConfigError, Fatal
from worker.fleet.settings import describe

DB_HELP = "database to show (default: DATABASE_URL)"


def load(args: argparse.Namespace) -> ConsoleSettings:
    overrides: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    if getattr(args, "host", None):
        overrides["console_host"] = args.host
    if getattr(args, "port", None):
        overrides["console_port"] = args.port
    try:
        return ConsoleSettings(**overrides)
    except ValidationError as e:
        raise ConfigError(describe(e)) from None


def add_commands(subparsers: Any) -> None:
    console = subparsers.add_parser(
        "console",
        help="serve the live operator console (web) for admins",
        description="Serve the operator console: the platform's overview, fleet, queue, bots, "
        "webhooks, ledger, services, marketplace and audit log, updated live. Admins sign in "
        "with their Supabase session token. Configured from the environment (see "
        ".env.example): DATABASE_URL, CONSOLE_HOST, CONSOLE_PORT and the token settings "
        "SUPABASE_URL, SUPABASE_JWKS, TRADEFLEET_JWT_SECRET, TRADEFLEET_JWT_ISSUER.",
    )
    console.add_argument("--database-url", help=DB_HELP)
    console.add_argument("--host", help="address to listen on (default: CONSOLE_HOST)")
    console.add_argument("--port", type=int, help="port to listen on (default: CONSOLE_PORT)")
    console.set_defaults(handler=run_console)

    token = subparsers.add_parser(
        "console-token",
        help="print a session token of an admin, signed with the local HS256 secret",
        description="Print an access token for the user with EMAIL, with the claims Supabase "
        "Auth and the access token hook would give them, signed with TRADEFLEET_JWT_SECRET. "
        "For a local database (scripts/demo): a real project's sessions come from Supabase "
        "Auth.",
    )
    token.add_argument("email", help="the user's email")
    token.add_argument("--minutes", type=int, default=60, help="how long the token is valid")
    token.add_argument("--database-url", help=DB_HELP)
    token.set_defaults(handler=run_token)


def run_console(args: argparse.Namespace) -> int:
    import uvicorn

    from worker.console.app import create_app

    settings = load(args)
    app = create_app(settings)
    print(
        f"tradefleet console: http://{settings.console_host}:{settings.console_port}/",
        flush=True,
    )
    uvicorn.run(
        app,
        host=settings.console_host,
        port=settings.console_port,
        log_level="warning",
        access_log=False,
        # Live pages hold their event streams open; a stop does not wait for them.
        timeout_graceful_shutdown=2,
    )
    return 0


def run_token(args: argparse.Namespace) -> int:
    settings = load(args)
    if settings.tradefleet_jwt_secret is None:
        raise ConfigError("TRADEFLEET_JWT_SECRET is not set: console-token signs with it")
    claims = asyncio.run(_claims(settings.database_url.get_secret_value(), args.email))
    if claims is None:
        raise Fatal(f"no user with the email {args.email!r}")
    print(sign(settings, claims, minutes=args.minutes))
    return 0


async def _claims(url: str, email: str) -> dict[str, Any] | None:
    import psycopg
    from psycopg.types.json import Jsonb

    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "select id, email, raw_app_meta_data from auth.users where lower(email) = lower(%s)",
            (email,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        hook = await conn.execute(
            "select public.custom_access_token_hook(jsonb_build_object('user_id', %s::uuid, "
            "'claims', jsonb_build_object('role', 'authenticated', 'app_metadata', %s::jsonb)))",
            (row[0], Jsonb(row[2] or {})),
        )
        found = await hook.fetchone()
    event: dict[str, Any] = (found[0] if found else None) or {}
    role = (event.get("claims") or {}).get("role", "authenticated")
    return {"sub": str(row[0]), "email": row[1], "app_metadata": row[2] or {}, "role": role}


def sign(settings: ConsoleSettings, claims: dict[str, Any], *, minutes: int = 60) -> str:
    """An HS256 access token with ``claims``, as Supabase Auth shapes one."""
    import jwt

    assert settings.tradefleet_jwt_secret is not None
    now = int(time.time())
    payload = {
        "iss": settings.issuer,
        "aud": "authenticated",
        "iat": now,
        "exp": now + minutes * 60,
        "aal": "aal1",
        "session_id": str(uuid.uuid4()),
        "is_anonymous": False,
        **claims,
    }
    secret = settings.tradefleet_jwt_secret.get_secret_value()
    return jwt.encode(payload, secret, algorithm="HS256")
