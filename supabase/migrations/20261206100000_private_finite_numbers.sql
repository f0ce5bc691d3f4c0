-- Numbers are finite everywhere. PostgreSQL's numeric accepts 'NaN' (and, unconstrained,
-- '±Infinity'); NaN compares greater than every number, so "amount > 0" or "available <
-- amount" checks pass for it and a NaN balance would pass every "insufficient" check.

-- The domain RPCs cast their numeric arguments to: a named error (23514, constraint
-- finite_number_is_finite) for NaN and ±Infinity.
create domain private.finite_number as numeric
  constraint finite_number_is_finite check (value not in ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric));
grant usage on type private.finite_number to anon, authenticated, service_role;

-- Credit amounts an app may ask for: finite, positive and at most 10^12 credits (the
-- ledger's columns hold 10^16); a named error for each.
create domain private.credit_amount as private.finite_number
  constraint credit_amount_positive check (value > 0)
  constraint credit_amount_within_bounds check (value <= 1000000000000);
grant usage on type private.credit_amount to anon, authenticated, service_role;

-- Every stored numeric column refuses them too: <table>_<column>_finite.
do $$
declare
  c record;
begin
  for c in
    select n.nspname as sch, cl.relname as tbl, a.attname as col
      from pg_attribute a
      join pg_class cl on cl.oid = a.attrelid
      join pg_namespace n on n.oid = cl.relnamespace
     where n.nspname in ('public', 'private') and cl.relkind in ('r', 'p')
       and a.atttypid = 'numeric'::regtype and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
     order by 1, 2, 3
  loop
    execute format(
      'alter table %I.%I add constraint %I check (%I not in (''NaN''::numeric, ''Infinity''::numeric, ''-Infinity''::numeric))',
      c.sch, c.tbl, left(c.tbl || '_' || c.col, 54) || '_finite', c.col);
  end loop;
end
$$;
