-- Who may move credits, precisely. Apps (anon, users, admins) cannot execute the ledger
-- functions: EXECUTE is granted to service_role only. The platform's own security-definer
-- functions may call them on a user's behalf, though, when the user's request is itself the
-- decision to pay (subscribe_to_strategy charges the subscriber's first period); those calls
-- carry the user's JWT. So the explicit check accepts the service, or an app request that
-- reaches the ledger through another (platform) function — never a ledger function called
-- straight from an app request.
create or replace function private.credit_require_service() returns void
language plpgsql stable
set search_path = ''
as $$
declare
  v_stack text;
begin
  if private.is_service() then
    return;
  end if;
  get diagnostics v_stack = pg_context;
  if exists (
    select 1 from pg_catalog.regexp_split_to_table(v_stack, E'\n') as frame
     where frame !~ '(function (public\.|private\.)?(get_)?credit_[a-z_]+\(|function "(get_)?credit_[a-z_]+")'
  ) then
    return;
  end if;
  raise exception 'only the service role can move credits' using errcode = 'insufficient_privilege';
end;
$$;
revoke all on function private.credit_require_service() from public, anon, authenticated, service_role;
