-- The archive: a New York day's partition is kept elsewhere (Parquet, on
-- disk or in an S3 bucket: `make archive`, common/store/archive.py) and
-- verified before it may be dropped. House rule: nothing is dropped that was
-- not kept elsewhere first.
--
--   archive_log         one row per archived (table, day, checksum): how many
--                       rows, the checksum below, where the file is, its
--                       bytes. Written by the archive only after the file was
--                       read back from its destination and found equal to the
--                       rows exported. Internal: RLS on; service_role reads,
--                       streaming_writer reads and inserts, no other API role.
--   partition_checksum  (table, day) -> row count and an order-independent
--                       checksum of every row of that day's partition: the
--                       sum, as numeric, of the first 64 bits (signed) of
--                       md5(row::text). The row's text is pinned by the
--                       function's own settings (TimeZone UTC, DateStyle ISO,
--                       extra_float_digits 3), never the caller's session.
--   drop_archived_day   (table, day) -> rows dropped: refuses today's (New
--                       York) partition or a later one, a day with no
--                       partition, and a day whose partition, locked against
--                       writes and summed again, equals no archive_log row
--                       (never archived, or changed since). An empty
--                       partition holds nothing to keep and may go.
--   retention           cleanup_old_equity_data(retention_days), 022's
--                       signature and result, drops a partition past the
--                       cutoff only under the same rule, and names in a
--                       NOTICE each one it kept for want of an archive.
--
-- The three functions are SECURITY DEFINER (the writer role may not read a
-- partition, and only the owner may drop one); safe as definers: their
-- arguments are values, the table checked against partitioned_tables(), every
-- name quoted, search_path pinned. A lock they cannot have within 10 s fails
-- them rather than queue the writer behind them.
--
-- Idempotent; runs unchanged on Supabase (the non-superuser `postgres`) and
-- on plain PostgreSQL 15+.

CREATE TABLE IF NOT EXISTS public.archive_log (
    table_name  text        NOT NULL,
    day         date        NOT NULL,
    row_count   bigint      NOT NULL CHECK (row_count >= 0),
    checksum    text        NOT NULL,
    location    text        NOT NULL,
    file_bytes  bigint      NOT NULL CHECK (file_bytes >= 0),
    archived_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT archive_log_pkey PRIMARY KEY (table_name, day, checksum)
);
ALTER TABLE public.archive_log ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON TABLE public.archive_log FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT SELECT ON TABLE public.archive_log TO service_role;
GRANT SELECT, INSERT ON TABLE public.archive_log TO streaming_writer;
DROP POLICY IF EXISTS archive_log_service_read ON public.archive_log;
CREATE POLICY archive_log_service_read ON public.archive_log FOR SELECT TO service_role USING (true);
DROP POLICY IF EXISTS archive_log_writer_read ON public.archive_log;
CREATE POLICY archive_log_writer_read ON public.archive_log FOR SELECT TO streaming_writer USING (true);
DROP POLICY IF EXISTS archive_log_writer_insert ON public.archive_log;
CREATE POLICY archive_log_writer_insert ON public.archive_log FOR INSERT TO streaming_writer WITH CHECK (true);

-- The rows and checksum of one table's partition for one New York day. An
-- error if the table is not partitioned or the day has no partition.
CREATE OR REPLACE FUNCTION public.partition_checksum(table_name text, day date)
RETURNS TABLE (row_count bigint, checksum text)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 3
AS $$
DECLARE
    part regclass;
BEGIN
    IF table_name IS NULL OR NOT table_name = ANY (public.partitioned_tables()) THEN
        RAISE EXCEPTION 'partition_checksum: % is not a partitioned table (%)',
            coalesce(table_name, 'NULL'), array_to_string(public.partitioned_tables(), ', ');
    END IF;
    part := to_regclass(format('streaming_partitions.%I', table_name || '_' || to_char(day, 'YYYYMMDD')));
    IF day IS NULL OR part IS NULL THEN
        RAISE EXCEPTION 'partition_checksum: % has no partition for %', table_name, coalesce(day::text, 'NULL');
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT count(*), coalesce(sum((''x'' || left(md5(p::text), 16))::bit(64)::bigint::numeric), 0)::text'
        ' FROM %s AS p', part);
END
$$;
REVOKE ALL ON FUNCTION public.partition_checksum(text, date) FROM PUBLIC, anon, authenticated, service_role,
    streaming_writer;
GRANT EXECUTE ON FUNCTION public.partition_checksum(text, date) TO service_role, streaming_writer;

-- Drop one day's partition that the archive has kept; returns the rows it held.
CREATE OR REPLACE FUNCTION public.drop_archived_day(table_name text, day date)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO'
SET lock_timeout = '10s'
AS $$
DECLARE
    part regclass;
    held bigint;
    total text;
BEGIN
    IF table_name IS NULL OR NOT table_name = ANY (public.partitioned_tables()) THEN
        RAISE EXCEPTION 'drop_archived_day: % is not a partitioned table (%)',
            coalesce(table_name, 'NULL'), array_to_string(public.partitioned_tables(), ', ');
    END IF;
    IF day IS NULL OR day >= (now() AT TIME ZONE 'America/New_York')::date THEN
        RAISE EXCEPTION 'drop_archived_day: % of % is not a past New York day (today is %): still being written',
            table_name, coalesce(day::text, 'NULL'), (now() AT TIME ZONE 'America/New_York')::date;
    END IF;
    part := to_regclass(format('streaming_partitions.%I', table_name || '_' || to_char(day, 'YYYYMMDD')));
    IF part IS NULL THEN
        RAISE EXCEPTION 'drop_archived_day: % has no partition for %', table_name, day;
    END IF;
    -- No row may arrive between the checksum and the drop (SHARE: readers go on, writers wait).
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
    SELECT c.row_count, c.checksum INTO held, total FROM public.partition_checksum(table_name, day) AS c;
    IF held > 0 AND NOT EXISTS (SELECT FROM public.archive_log a
                                WHERE a.table_name = drop_archived_day.table_name AND a.day = drop_archived_day.day
                                  AND a.row_count = held AND a.checksum = total) THEN
        IF EXISTS (SELECT FROM public.archive_log a
                   WHERE a.table_name = drop_archived_day.table_name AND a.day = drop_archived_day.day) THEN
            RAISE EXCEPTION 'drop_archived_day: % of % changed since it was archived (% rows, checksum %, '
                            'match no archive_log row): kept; archive it again first', table_name, day, held, total;
        END IF;
        RAISE EXCEPTION 'drop_archived_day: % of % (% rows) was never archived: kept; archive it first',
            table_name, day, held;
    END IF;
    EXECUTE format('DROP TABLE %s', part);
    RETURN held;
END
$$;
REVOKE ALL ON FUNCTION public.drop_archived_day(text, date) FROM PUBLIC, anon, authenticated, service_role,
    streaming_writer;
GRANT EXECUTE ON FUNCTION public.drop_archived_day(text, date) TO service_role, streaming_writer;

-- Retention (022) under the archive's rule: same signature and result (one
-- row per table: table_name, rows_deleted); each partition past the cutoff
-- goes through drop_archived_day, the rule said once, and each one that
-- refuses is kept and named in a NOTICE with the reason.
CREATE OR REPLACE FUNCTION public.cleanup_old_equity_data(retention_days integer DEFAULT 30)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
AS $$
DECLARE
    last_day date;
    part_day date;
BEGIN
    IF retention_days IS NULL OR retention_days < 1 THEN
        RAISE EXCEPTION 'retention_days must be at least 1, not %', retention_days;
    END IF;
    -- The last New York day that ends at or before now() - retention_days.
    last_day := ((now() - make_interval(days => retention_days)) AT TIME ZONE 'America/New_York')::date - 1;
    FOREACH table_name IN ARRAY public.partitioned_tables() LOOP
        CONTINUE WHEN table_name = 'equity_bars';  -- the small, long history (017)
        rows_deleted := 0;
        FOR part_day IN
            SELECT to_date(right(c.relname, 8), 'YYYYMMDD')
            FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = format('public.%I', table_name)::regclass AND c.relname ~ '_[0-9]{8}$'
              AND to_date(right(c.relname, 8), 'YYYYMMDD') <= last_day
            ORDER BY 1
        LOOP
            BEGIN
                rows_deleted := rows_deleted + public.drop_archived_day(table_name, part_day);
            EXCEPTION WHEN raise_exception THEN
                RAISE NOTICE 'cleanup_old_equity_data kept %: %', table_name || '_' || to_char(part_day, 'YYYYMMDD'),
                    SQLERRM;
            END;
        END LOOP;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION public.cleanup_old_equity_data(integer) FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.cleanup_old_equity_data(integer) TO service_role;
