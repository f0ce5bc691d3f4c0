"""SQL that the security mutants use to open their holes."""

from __future__ import annotations

from tests.support import db as support


def policy(table: str, command: str, clause: str) -> str:
    """A permissive policy for ``authenticated`` on ``public.table``."""
    return (
        f'create policy "Mutant {command} on {table}" on public.{table} '
        f"for {command} to authenticated {clause};"
    )


def migration_function(path: str, signature: str) -> str:
    """The ``create or replace function`` statement of ``signature`` in a migration."""
    text = (support.ROOT / "supabase" / "migrations" / path).read_text()
    start = text.index(f"create or replace function {signature}")
    return text[start : text.index("$$;", start) + 3]


def rewrite(signature: str, old: str, new: str) -> str:
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
