-- Sequences belong to the tables that use them: apps never call nextval or setval. A
-- setval on the job id sequence would otherwise break every later job insert.
revoke all on all sequences in schema public from anon, authenticated;
revoke all on all sequences in schema private from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges for role postgres in schema public revoke all on sequences from anon, authenticated;
