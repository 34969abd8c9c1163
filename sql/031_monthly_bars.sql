-- Bars by the month (issue 25, item 3).
--
-- equity_bars is kept for ever: retention never drops it, and the storage
-- keeper archives its days last of all. With a partition a day (022) it grew
-- a partition per calendar day for ever, and a query on it that the planner
-- cannot prune (a user's `WHERE ticker = 'SPY' ORDER BY timestamp DESC
-- LIMIT 100`, the status page's newest bar) plans and locks every one: 1,536
-- locks at a year, 4,464 at three, against the 3,840 a Supabase nano's whole
-- lock table holds. From here equity_bars has one partition per New York
-- calendar month, streaming_partitions.equity_bars_YYYYMM, from the month's
-- first midnight in New York to the next month's: 36 partitions at three
-- years. The other tables keep a partition a day: they are archived and
-- dropped by the day, and are never kept long.
--
--   partition_span(table, day) -> (name, first_day, next_day)
--                       the partition that holds a New York day's rows of a
--                       partitioned table and the days it spans: the grain
--                       of each table, said once. Every function below finds
--                       a day's partition through it.
--   partition_days(relname) -> (first_day, next_day)
--                       its inverse, from a partition's name (NULLs for a
--                       name that is not a partition's).
--   missing_partitions(first_day, last_day[, table]) -> (table_name, name,
--                       first_day, next_day): the partitions those days need
--                       that do not exist, each table at its grain; a month
--                       whose days still have partitions of their own (before
--                       the step below has merged them) is left to the step.
--   create_partitions   makes them. At most 64 a call still (027), but counted
--                       as what it would make, not as days times tables: the
--                       writer's and pg_cron's yesterday-to-a-week-ahead is 9
--                       days of every table, more than 64 once there are 8
--                       tables, though it makes one new day's on most calls.
--   partition_checksum  as 026, over the day's rows of the partition that
--                       holds them.
--   drop_archived_day   as 026. A day of a month's partition is deleted, not
--                       dropped (checked against its archive as before, with
--                       writers held off meanwhile); the month's partition
--                       itself is dropped once the month is past and empty.
--                       Its room is reused by the month's later bars, and
--                       given back when the month's partition goes.
--   stored_days         as 023, a month's partition shared evenly among its
--                       calendar days so far (the keeper's rate is a daily
--                       one; bars are the smallest table).
--   bars_by_month_step  the upgrade, in steps (common/store/migrate.py,
--                       STEPS): the daily partitions of the oldest month that
--                       has them become that month's partition, rows and ids
--                       kept; true while it did one. Each step holds
--                       equity_bars exclusively while it copies a month
--                       (seconds at 50 tickers; the writer is stopped for
--                       migrations, readers wait).
--
-- SECURITY DEFINER where 022-027 were, search_path pinned, every name quoted.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

CREATE OR REPLACE FUNCTION public.partition_span(table_name text, day date,
                                                 OUT name text, OUT first_day date, OUT next_day date)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN monthly THEN table_name || '_' || to_char(day, 'YYYYMM')
                ELSE table_name || '_' || to_char(day, 'YYYYMMDD') END,
           CASE WHEN monthly THEN date_trunc('month', day::timestamp)::date ELSE day END,
           CASE WHEN monthly THEN (date_trunc('month', day::timestamp) + interval '1 month')::date ELSE day + 1 END
    FROM (SELECT table_name = 'equity_bars' AS monthly) AS grain
$$;
REVOKE ALL ON FUNCTION public.partition_span(text, date) FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.partition_span(text, date) TO service_role, streaming_writer;

CREATE OR REPLACE FUNCTION public.partition_days(relname text, OUT first_day date, OUT next_day date)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN relname ~ '_[0-9]{8}$' THEN to_date(right(relname, 8), 'YYYYMMDD')
                WHEN relname ~ '_[0-9]{6}$' THEN to_date(right(relname, 6) || '01', 'YYYYMMDD') END,
           CASE WHEN relname ~ '_[0-9]{8}$' THEN to_date(right(relname, 8), 'YYYYMMDD') + 1
                WHEN relname ~ '_[0-9]{6}$'
                THEN (to_date(right(relname, 6) || '01', 'YYYYMMDD') + interval '1 month')::date END
$$;
REVOKE ALL ON FUNCTION public.partition_days(text) FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.partition_days(text) TO service_role, streaming_writer;

-- The partitions first_day..last_day need that do not exist (of only_table, or of every table).
CREATE OR REPLACE FUNCTION public.missing_partitions(first_day date, last_day date, only_table text DEFAULT NULL)
RETURNS TABLE (table_name text, name text, first_day date, next_day date)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.name, s.name, s.first_day, s.next_day
    FROM unnest(public.partitioned_tables()) AS t (name),
         LATERAL (SELECT DISTINCT p.name, p.first_day, p.next_day
                  FROM generate_series(missing_partitions.first_day, missing_partitions.last_day,
                                       interval '1 day') AS d,
                       LATERAL public.partition_span(t.name, d::date) AS p) AS s
    WHERE (only_table IS NULL OR t.name = only_table)
      -- A table 022's upgrade has not converted yet has no partitions to make.
      AND EXISTS (SELECT FROM pg_catalog.pg_partitioned_table
                  WHERE partrelid = to_regclass(format('public.%I', t.name)))
      AND to_regclass(format('streaming_partitions.%I', s.name)) IS NULL
      -- Days that still have partitions of their own are bars_by_month_step's to merge.
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i
                      JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid,
                      LATERAL public.partition_days(c.relname) AS r
                      WHERE i.inhparent = format('public.%I', t.name)::regclass
                        AND r.first_day < s.next_day AND s.first_day < r.next_day)
    ORDER BY 1, 3
$$;
REVOKE ALL ON FUNCTION public.missing_partitions(date, date, text)
    FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.missing_partitions(date, date, text) TO service_role, streaming_writer;

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
    span record;
    missing integer;
    created integer := 0;
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR last_day < first_day OR last_day - first_day > 366 THEN
        RAISE EXCEPTION 'create_partitions takes a first and a last day, in order, at most 366 days apart, not % and %',
            first_day, last_day;
    END IF;
    IF only_table IS NOT NULL AND NOT only_table = ANY (public.partitioned_tables()) THEN
        RAISE EXCEPTION 'create_partitions: % is not a partitioned table (%)',
            only_table, array_to_string(public.partitioned_tables(), ', ');
    END IF;
    SELECT count(*) INTO missing FROM public.missing_partitions(first_day, last_day, only_table);
    IF missing > 64 THEN
        RAISE EXCEPTION 'create_partitions makes at most 64 partitions a call (about 13 locks each, from a lock table '
                        'every session shares), not the % that % to % lack: ask for fewer days, or one table at a '
                        'time', missing, first_day, last_day;
    END IF;
    FOR span IN SELECT * FROM public.missing_partitions(first_day, last_day, only_table) LOOP
        -- Made alone, then attached: ATTACH locks the parent only against other DDL (CREATE … PARTITION
        -- OF would lock out every reader and the writer until a dashboard's open transaction ends).
        EXECUTE format('CREATE TABLE streaming_partitions.%I (LIKE public.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       span.name, span.table_name);
        EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION streaming_partitions.%I FOR VALUES FROM (%L) TO (%L)',
                       span.table_name, span.name, span.first_day::timestamp AT TIME ZONE 'America/New_York',
                       span.next_day::timestamp AT TIME ZONE 'America/New_York');
        EXECUTE format('ALTER TABLE streaming_partitions.%I ENABLE ROW LEVEL SECURITY', span.name);
        EXECUTE format('REVOKE ALL ON TABLE streaming_partitions.%I FROM PUBLIC, anon, authenticated, service_role',
                       span.name);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION public.create_partitions(date, date, text)
    FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.create_partitions(date, date, text) TO service_role, streaming_writer;

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
    part := to_regclass(format('streaming_partitions.%I', (public.partition_span(table_name, day)).name));
    IF day IS NULL OR part IS NULL THEN
        RAISE EXCEPTION 'partition_checksum: % has no partition for %', table_name, coalesce(day::text, 'NULL');
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT count(*), coalesce(sum((''x'' || left(md5(p::text), 16))::bit(64)::bigint::numeric), 0)::text'
        ' FROM %s AS p WHERE p."timestamp" >= $2 AND p."timestamp" < $3 AND ($1 IS NULL OR p."timestamp" < $1)', part)
        USING before, day::timestamp AT TIME ZONE 'America/New_York', (day + 1)::timestamp AT TIME ZONE 'America/New_York';
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
    span record;
    part regclass;
    today date := (now() AT TIME ZONE 'America/New_York')::date;
    held bigint;
    total text;
    emptied boolean;
BEGIN
    IF table_name IS NULL OR NOT table_name = ANY (public.partitioned_tables()) THEN
        RAISE EXCEPTION 'drop_archived_day: % is not a partitioned table (%)',
            coalesce(table_name, 'NULL'), array_to_string(public.partitioned_tables(), ', ');
    END IF;
    IF day IS NULL OR day >= today THEN
        RAISE EXCEPTION 'drop_archived_day: % of % is not a past New York day (today is %): still being written',
            table_name, coalesce(day::text, 'NULL'), today;
    END IF;
    span := public.partition_span(table_name, day);
    part := to_regclass(format('streaming_partitions.%I', span.name));
    IF part IS NULL THEN
        RAISE EXCEPTION 'drop_archived_day: % has no partition for %', table_name, day;
    END IF;
    -- No row may arrive between the checksum and the drop or delete: writers wait, readers go on (a day's
    -- partition is only dropped: SHARE; a month's has the day deleted: SHARE ROW EXCLUSIVE, which two callers
    -- cannot both hold, so neither waits on the other's to delete).
    EXECUTE format('LOCK TABLE %s IN %s MODE', part,
                   CASE WHEN span.next_day = span.first_day + 1 THEN 'SHARE' ELSE 'SHARE ROW EXCLUSIVE' END);
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
    IF span.next_day = span.first_day + 1 THEN
        EXECUTE format('DROP TABLE %s', part);
        RETURN held;
    END IF;
    EXECUTE format('DELETE FROM %s AS p WHERE p."timestamp" >= $1 AND p."timestamp" < $2', part)
        USING day::timestamp AT TIME ZONE 'America/New_York', (day + 1)::timestamp AT TIME ZONE 'America/New_York';
    IF span.next_day <= today THEN
        EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s)', part) INTO emptied;
        IF emptied THEN
            EXECUTE format('DROP TABLE %s', part);
        END IF;
    END IF;
    RETURN held;
END
$$;
REVOKE ALL ON FUNCTION public.drop_archived_day(text, date) FROM PUBLIC, anon, authenticated, service_role,
    streaming_writer;
GRANT EXECUTE ON FUNCTION public.drop_archived_day(text, date) TO service_role, streaming_writer;

-- Every partition's size, per New York day: see the header; measured as 023 measures (the last week's and
-- later by size, older ones from the catalog's page counts, so that a year of partitions is not locked).
CREATE OR REPLACE FUNCTION public.stored_days()
RETURNS TABLE (table_name text, day date, total_bytes bigint)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.parent, s.day::date,
           (CASE WHEN d.next_day > (now() AT TIME ZONE 'America/New_York')::date - 7 THEN pg_total_relation_size(d.oid)
                 ELSE d.pages * current_setting('block_size')::bigint END) / s.shares
    FROM (SELECT p.relname::text AS parent, r.first_day, r.next_day, c.oid,
                 c.relpages::bigint + coalesce((SELECT t.relpages FROM pg_catalog.pg_class t WHERE t.oid = c.reltoastrelid), 0)
                 + coalesce((SELECT sum(i.relpages) FROM pg_catalog.pg_index x
                             JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid), 0) AS pages
          FROM pg_catalog.pg_inherits h
          JOIN pg_catalog.pg_class c ON c.oid = h.inhrelid
          JOIN pg_catalog.pg_class p ON p.oid = h.inhparent
          JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace,
          LATERAL public.partition_days(c.relname) AS r
          WHERE n.nspname = 'public' AND p.relname::text = ANY (public.partitioned_tables())
            AND r.first_day IS NOT NULL) AS d,
    -- A partition's days so far (a month's first day only, for a month not begun).
    LATERAL (SELECT g AS day, count(*) OVER () AS shares
             FROM generate_series(d.first_day,
                                  greatest(d.first_day, least(d.next_day - 1,
                                                              (now() AT TIME ZONE 'America/New_York')::date)),
                                  interval '1 day') AS g) AS s
    ORDER BY 2, 1
$$;
REVOKE ALL ON FUNCTION public.stored_days() FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.stored_days() TO service_role, streaming_writer;

CREATE OR REPLACE FUNCTION public.bars_by_month_step()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
SET TimeZone = 'UTC'
SET DateStyle = 'ISO'
AS $$
DECLARE
    oldest date;
    span record;
    day_part regclass;
    columns text;
BEGIN
    SELECT min(r.first_day) INTO oldest
    FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid,
         LATERAL public.partition_days(c.relname) AS r
    WHERE i.inhparent = 'public.equity_bars'::regclass AND r.next_day = r.first_day + 1;
    IF oldest IS NULL THEN
        RETURN false;
    END IF;
    span := public.partition_span('equity_bars', oldest);
    LOCK TABLE public.equity_bars IN ACCESS EXCLUSIVE MODE;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = 'public.equity_bars'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format('CREATE TABLE streaming_partitions.%I (LIKE public.equity_bars INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                   span.name);
    FOR day_part IN SELECT c.oid::regclass
                    FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid,
                         LATERAL public.partition_days(c.relname) AS r
                    WHERE i.inhparent = 'public.equity_bars'::regclass AND r.next_day = r.first_day + 1
                      AND r.first_day >= span.first_day AND r.first_day < span.next_day
                    ORDER BY r.first_day LOOP
        EXECUTE format('INSERT INTO streaming_partitions.%I (%s) SELECT %s FROM %s', span.name, columns, columns,
                       day_part);
        EXECUTE format('ALTER TABLE public.equity_bars DETACH PARTITION %s', day_part);
        EXECUTE format('DROP TABLE %s', day_part);
    END LOOP;
    EXECUTE format('ALTER TABLE public.equity_bars ATTACH PARTITION streaming_partitions.%I FOR VALUES FROM (%L) TO (%L)',
                   span.name, span.first_day::timestamp AT TIME ZONE 'America/New_York',
                   span.next_day::timestamp AT TIME ZONE 'America/New_York');
    EXECUTE format('ALTER TABLE streaming_partitions.%I ENABLE ROW LEVEL SECURITY', span.name);
    EXECUTE format('REVOKE ALL ON TABLE streaming_partitions.%I FROM PUBLIC, anon, authenticated, service_role',
                   span.name);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.bars_by_month_step() FROM PUBLIC, anon, authenticated, service_role;
