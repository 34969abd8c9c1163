-- Trimming today: when one New York day of data is more than the storage
-- budget holds (50 tickers with their option bands on a 500 MB plan), whole
-- past days are not enough. The keeper (common/store/budget.py) then
-- archives today's older hours of each high-volume table as a Parquet piece
-- of the day (common/store/archive.py), verified read back, and deletes
-- exactly those rows; the day's later rows reuse their space (VACUUM,
-- autovacuum on Supabase), so the database stops growing while the feed
-- goes on. The house rule holds: nothing is deleted that is not kept
-- elsewhere first, and the database says so itself.
--
--   archive_log.trimmed_before  NULL for a whole partition archived as it
--                       was (025); for a piece trimmed off a day, the
--                       instant its rows were before: the piece holds every
--                       row of the partition with "timestamp" < it that an
--                       earlier piece did not.
--   partition_checksum  (table, day[, before]): 025's count and checksum,
--                       of the rows before `before` when it is given.
--   drop_archived_day   as 025, matching only whole-partition rows of
--                       archive_log (a piece never stands for a partition).
--   trim_archived_rows  (table, day, before, rows, checksum, location,
--                       bytes) -> rows deleted: deletes the partition's rows
--                       before `before` and records the piece in
--                       archive_log, in one statement, only if what it
--                       deleted is what the piece holds (the same count and
--                       checksum, summed over the deleted rows themselves);
--                       otherwise raises and deletes nothing. Refuses a day
--                       ahead of today, a table that is not partitioned,
--                       and equity_bars (bars are revised and repaired
--                       after the fact: only whole past days of them go).
--
-- SECURITY DEFINER like 025's (the writer role may not delete), search_path
-- pinned, every name quoted, the row's text pinned as 025 pins it.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

ALTER TABLE public.archive_log ADD COLUMN IF NOT EXISTS trimmed_before timestamptz;

DROP FUNCTION IF EXISTS public.partition_checksum(text, date);
CREATE OR REPLACE FUNCTION public.partition_checksum(table_name text, day date, before timestamptz DEFAULT NULL)
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
        ' FROM %s AS p WHERE $1 IS NULL OR p."timestamp" < $1', part) USING before;
END
$$;
REVOKE ALL ON FUNCTION public.partition_checksum(text, date, timestamptz) FROM PUBLIC, anon, authenticated,
    service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.partition_checksum(text, date, timestamptz) TO service_role, streaming_writer;

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
                                  AND a.trimmed_before IS NULL AND a.row_count = held AND a.checksum = total) THEN
        IF EXISTS (SELECT FROM public.archive_log a
                   WHERE a.table_name = drop_archived_day.table_name AND a.day = drop_archived_day.day
                     AND a.trimmed_before IS NULL) THEN
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

CREATE OR REPLACE FUNCTION public.trim_archived_rows(table_name text, day date, before timestamptz,
                                                     row_count bigint, checksum text, location text,
                                                     file_bytes bigint)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 3
SET lock_timeout = '10s'
AS $$
DECLARE
    part regclass;
    deleted bigint;
    total text;
BEGIN
    IF table_name IS NULL OR NOT table_name = ANY (public.partitioned_tables()) THEN
        RAISE EXCEPTION 'trim_archived_rows: % is not a partitioned table (%)',
            coalesce(table_name, 'NULL'), array_to_string(public.partitioned_tables(), ', ');
    END IF;
    IF table_name = 'equity_bars' THEN
        RAISE EXCEPTION 'trim_archived_rows: equity_bars are revised and repaired after the fact; only whole past '
                        'days of them are archived and dropped';
    END IF;
    IF day IS NULL OR before IS NULL OR row_count IS NULL OR checksum IS NULL OR location IS NULL
       OR file_bytes IS NULL THEN
        RAISE EXCEPTION 'trim_archived_rows: every argument is required';
    END IF;
    IF day > (now() AT TIME ZONE 'America/New_York')::date THEN
        RAISE EXCEPTION 'trim_archived_rows: % is ahead of today in New York', day;
    END IF;
    part := to_regclass(format('streaming_partitions.%I', table_name || '_' || to_char(day, 'YYYYMMDD')));
    IF part IS NULL THEN
        RAISE EXCEPTION 'trim_archived_rows: % has no partition for %', table_name, day;
    END IF;
    EXECUTE format(
        'WITH gone AS (DELETE FROM %s AS p WHERE p."timestamp" < $1 RETURNING p)'
        ' SELECT count(*), coalesce(sum((''x'' || left(md5(gone.p::text), 16))::bit(64)::bigint::numeric), 0)::text'
        ' FROM gone', part) INTO deleted, total USING before;
    IF deleted <> trim_archived_rows.row_count OR total <> trim_archived_rows.checksum THEN
        RAISE EXCEPTION 'trim_archived_rows: % of % before % holds % rows (checksum %), not the piece''s % (checksum '
                        '%): nothing deleted', table_name, day, before, deleted, total, trim_archived_rows.row_count,
                        trim_archived_rows.checksum;
    END IF;
    INSERT INTO public.archive_log (table_name, day, row_count, checksum, location, file_bytes, trimmed_before)
    VALUES (trim_archived_rows.table_name, trim_archived_rows.day, deleted, total, trim_archived_rows.location,
            trim_archived_rows.file_bytes, before)
    ON CONFLICT DO NOTHING;
    RETURN deleted;
END
$$;
REVOKE ALL ON FUNCTION public.trim_archived_rows(text, date, timestamptz, bigint, text, text, bigint)
    FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.trim_archived_rows(text, date, timestamptz, bigint, text, text, bigint)
    TO service_role, streaming_writer;
