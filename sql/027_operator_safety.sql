-- What an operator meets, made safe (issue 25):
--
--   schema_migrations_applied()  the versions and checksums applied, for a
--                       login that is not the owner (the README's
--                       streaming_ingest, a member of streaming_writer): it
--                       may start when everything is applied, and is told in
--                       one line to run `make migrate` with the owner's URL
--                       when something is not (common/store/migrate.py).
--                       SECURITY DEFINER, reads one internal table, takes no
--                       argument; service_role and streaming_writer only.
--   create_partitions   its bounds no longer depend on the caller's session:
--                       the New York midnights were written as literals in
--                       the session's DateStyle and TimeZone and read back,
--                       so a 'SQL, DMY' session in Asia/Kolkata made a day
--                       3.5 hours off ('IST' read as Israel's), after which
--                       every later call failed with "would overlap". The
--                       function now runs with its own TimeZone (UTC) and
--                       DateStyle (ISO), whoever calls it.
--   storage_report      runs as its owner (it reads every partition and the
--                       catalog's helpers, which 022 took from service_role),
--                       so `make storage` works for service_role and for the
--                       writer's login; it returns sizes and counts only.
--
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

CREATE OR REPLACE FUNCTION public.schema_migrations_applied()
RETURNS TABLE (version text, checksum text)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.version, m.checksum FROM public.schema_migrations AS m ORDER BY m.version
$$;
REVOKE ALL ON FUNCTION public.schema_migrations_applied() FROM PUBLIC, anon, authenticated, service_role,
    streaming_writer;
GRANT EXECUTE ON FUNCTION public.schema_migrations_applied() TO service_role, streaming_writer;

ALTER FUNCTION public.create_partitions(date, date, text) SET TimeZone = 'UTC';
ALTER FUNCTION public.create_partitions(date, date, text) SET DateStyle = 'ISO';
ALTER FUNCTION public.create_partitions(date, date, text) SET IntervalStyle = 'postgres';

ALTER FUNCTION public.storage_report(integer, integer, timestamptz) SECURITY DEFINER;
REVOKE ALL ON FUNCTION public.storage_report(integer, integer, timestamptz)
    FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.storage_report(integer, integer, timestamptz) TO service_role, streaming_writer;
REVOKE ALL ON FUNCTION public.storage_report(integer, integer) FROM PUBLIC, anon, authenticated, service_role,
    streaming_writer;
GRANT EXECUTE ON FUNCTION public.storage_report(integer, integer) TO service_role, streaming_writer;
