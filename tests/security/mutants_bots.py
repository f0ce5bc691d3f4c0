"""Holes in who decides a bot's status that the security suite must catch (see
``mutants``): each is (kind, name, SQL that opens it)."""

from __future__ import annotations

from tests.security.mutant_sql import rewrite

BOT_MUTANTS: list[tuple[str, str, str]] = [
    (
        "platform rule removed from a function",
        "an owner's running overrides a daily loss pause waiting for the worker",
        rewrite(
            "private.bots_pause_settles_close()",
            "new.pause_cause := 'daily_loss';",
            "null;",
        ),
    ),
    (
        "platform rule removed from a function",
        "an owner's running overrides a platform pause waiting for the worker",
        rewrite(
            "private.bots_running_overrides_pause()",
            "if old.pause_cause is not null then",
            "if false then",
        ),
    ),
    (
        "last request rule removed from a function",
        "an owner's running leaves a stop waiting for the worker in place",
        rewrite(
            "private.bots_running_overrides_pause()",
            "r.status in ('pending', 'working') and r.stop_after;",
            "r.status in ('pending', 'working') and r.stop_after and r.stop_status is not null;",
        ),
    ),
    (
        "last request rule removed from a function",
        "a worker's settled stop or pause wins over the owner's later running",
        rewrite(
            "private.bots_pause_settles_close()",
            "if exists (select 1 from public.position_requests r",
            "if true or exists (select 1 from public.position_requests r",
        ),
    ),
]
