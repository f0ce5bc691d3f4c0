-- private.is_service() in PL/pgSQL, unchanged otherwise.
--
-- As a SQL function with a pinned search_path it is never inlined, and PostgreSQL 15 plans
-- a SQL function's body again in every transaction that calls it. Every ledger call checks
-- its caller through it (private.credit_require_service), so each single transfer paid for
-- parsing and planning this one expression. PL/pgSQL keeps the compiled function and its
-- expression's plan for the session.

-- ======================================================================================
-- Functions
-- ======================================================================================

create or replace function private.is_service() returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
  return current_user not in ('anon', 'authenticated', 'tradefleet_admin')
     and coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', 'service_role')
         = 'service_role';
end;
$$;
