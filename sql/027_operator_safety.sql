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
--                       DateStyle (ISO), whoever calls it. And it makes at
--                       most 64 partitions a call (9 days of every table, 64
--                       of one): 366 days of every table took about 33,000
--                       locks of a lock table of 64 per connection that
--                       every session shares.
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

-- create_partitions as 022 made it, with its own TimeZone and DateStyle and at most 64 partitions a call.
CREATE OR REPLACE FUNCTION public.create_partitions(first_day date, last_day date, only_table text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
SET TimeZone = 'UTC'
SET DateStyle = 'ISO'
SET IntervalStyle = 'postgres'
AS $$
DECLARE
    t text;
    day date;
    part text;
    created integer := 0;
    tables integer;
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR last_day < first_day THEN
        RAISE EXCEPTION 'create_partitions takes a first and a last day, in order, not % and %', first_day, last_day;
    END IF;
    tables := CASE WHEN only_table IS NULL THEN cardinality(public.partitioned_tables()) ELSE 1 END;
    IF (last_day - first_day + 1) * tables > 64 THEN
        RAISE EXCEPTION 'create_partitions makes at most 64 partitions a call (about 13 locks each, from a lock table '
                        'every session shares), not % days of % tables: ask for fewer days, or one table at a time '
                        '(64 days of one)', last_day - first_day + 1, tables;
    END IF;
    IF only_table IS NOT NULL AND NOT only_table = ANY (public.partitioned_tables()) THEN
        RAISE EXCEPTION 'create_partitions: % is not a partitioned table (%)',
            only_table, array_to_string(public.partitioned_tables(), ', ');
    END IF;
    PERFORM pg_advisory_xact_lock(7301155424002);
    FOREACH t IN ARRAY public.partitioned_tables() LOOP
        CONTINUE WHEN only_table IS NOT NULL AND t <> only_table;
        -- A table the upgrade below has not converted yet has no partitions to make.
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_partitioned_table
                                  WHERE partrelid = to_regclass(format('public.%I', t)));
        FOR day IN SELECT d::date FROM generate_series(first_day, last_day, interval '1 day') AS d LOOP
            part := t || '_' || to_char(day, 'YYYYMMDD');
            CONTINUE WHEN to_regclass(format('streaming_partitions.%I', part)) IS NOT NULL;
            -- Made alone, then attached: ATTACH locks the parent only against other DDL (CREATE … PARTITION
            -- OF would lock out every reader and the writer until a dashboard's open transaction ends).
            EXECUTE format('CREATE TABLE streaming_partitions.%I (LIKE public.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                           part, t);
            EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION streaming_partitions.%I FOR VALUES FROM (%L) TO (%L)',
                           t, part, day::timestamp AT TIME ZONE 'America/New_York',
                           (day + 1)::timestamp AT TIME ZONE 'America/New_York');
            EXECUTE format('ALTER TABLE streaming_partitions.%I ENABLE ROW LEVEL SECURITY', part);
            EXECUTE format('REVOKE ALL ON TABLE streaming_partitions.%I FROM PUBLIC, anon, authenticated, service_role',
                           part);
            created := created + 1;
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION public.create_partitions(date, date, text)
    FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.create_partitions(date, date, text) TO service_role, streaming_writer;

ALTER FUNCTION public.storage_report(integer, integer, timestamptz) SECURITY DEFINER;
REVOKE ALL ON FUNCTION public.storage_report(integer, integer, timestamptz)
    FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.storage_report(integer, integer, timestamptz) TO service_role, streaming_writer;
REVOKE ALL ON FUNCTION public.storage_report(integer, integer) FROM PUBLIC, anon, authenticated, service_role,
    streaming_writer;
GRANT EXECUTE ON FUNCTION public.storage_report(integer, integer) TO service_role, streaming_writer;
