"""Holes an audit of copy trading found that the security suite must catch (see
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


AUDIT_MUTANTS: list[tuple[str, str, str]] = [
    (
        "size bound removed from a function",
        "one subscriber's copy too large for an order stops the whole fan-out (amount kept)",
        _rewrite(
            "public.signal_fan_out(uuid, text)",
            "case when c.amount < 1e16 then c.amount end",
            "c.amount",
        ),
    ),
    (
        "size bound removed from a function",
        "one subscriber's copy too large for an order stops the whole fan-out (copy not skipped)",
        _rewrite(
            "public.signal_fan_out(uuid, text)",
            "when c.amount is null or c.amount <= 0 or c.amount >= 1e16 then 'invalid_sizing'",
            "when c.amount is null or c.amount <= 0 then 'invalid_sizing'",
        ),
    ),
]
