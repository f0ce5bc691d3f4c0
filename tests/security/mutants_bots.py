"""Holes in who decides a bot's status that the security suite must catch (see
``mutants``): each is (kind, name, SQL that opens it)."""

from __future__ import annotations


def _rewrite(signature: str, old: str, new: str) -> str:
    """Replace ``old`` by ``new`` in the function's definition, in the database copy."""
    return f"""
    do $$
    declare
      v_src text := pg_get_functiondef('{signature}'::regprocedure);
    begin
      if position($m${old}$m$ in v_src) = 0 then
        raise exception 'the mutant finds nothing to change in {signature}';
      end if;
      execute replace(v_src, $m${old}$m$, $m${new}$m$);
    end;
    $$;
    """


BOT_MUTANTS: list[tuple[str, str, str]] = [
    (
        "platform rule removed from a function",
        "an owner's running overrides a platform pause waiting for the worker",
        _rewrite(
            "private.bots_running_overrides_pause()",
            "if old.pause_cause is not null then",
            "if false then",
        ),
    ),
    (
        "last request rule removed from a function",
        "an owner's running leaves a stop waiting for the worker in place",
        _rewrite(
            "private.bots_running_overrides_pause()",
            "r.status in ('pending', 'working') and r.stop_after;",
            "r.status in ('pending', 'working') and r.stop_after and r.stop_status is not null;",
        ),
    ),
    (
        "last request rule removed from a function",
        "a worker's settled stop or pause wins over the owner's later running",
        _rewrite(
            "private.bots_pause_settles_close()",
            "if exists (select 1 from public.position_requests r",
            "if true or exists (select 1 from public.position_requests r",
        ),
    ),
]
