-- Daily partitions: every time-series table is partitioned by New York day
-- on `timestamp` (PostgreSQL's declarative partitioning), so retention drops
-- whole days instead of deleting rows (no dead tuples, no vacuum debt, space
-- back at once), and a query by ticker and time range reads only the days it
-- touches, each through that day's own small index.
--
--   tables     partitioned_tables(): equity_data, indicators, option_prices,
--              equity_bars, equity_quotes, streaming_metrics, stream_metrics.
--              stream_offsets stays one small table.
--   a day      [00:00, next 00:00) America/New_York, so a partition is one
--              trading day with its pre- and after-market (23 or 25 hours
--              on the days the clocks change).
--   where      schema `streaming_partitions`, one table per table and day
--              (equity_data_20261202). No API role may use the schema, and
--              each partition has RLS on with no policy: the data is read
--              through the parent in `public`, whose grants and policies
--              (003, 007, 010, 017, 018) are the only wall to keep.
--   created    create_partitions(first_day, last_day[, table]): the writer
--              calls it for yesterday to a week ahead when it connects and
--              every hour; pg_cron (where it exists) nightly; and the writer
--              for any day a batch needs that has none (a replay, a backfill
--              of last year). No default partition: a row for a day nobody
--              created is refused with "no partition of relation … found
--              for row", never parked where retention cannot drop it. A
--              hand insert far back: SELECT create_partitions('2026-10-01',
--              '2026-10-31') first (service_role may).
--   retention  cleanup_old_equity_data(retention_days), the seed's signature
--              and result: drops each partition that ends at or before
--              now() - retention_days, and says how many rows it held. A day
--              goes whole, so up to a day more than `retention_days` stays.
--              The bars are still kept (017).
--
-- Upgrading: a table still unpartitioned is converted in place, in this
-- migration's one transaction: renamed aside, a partitioned table made
-- LIKE it (columns, defaults, identity), a partition created for every day
-- its rows have, every row copied with its id, then its keys, checks and
-- indexes, grants, RLS, policies and publications put back as they were
-- (read from the catalog, not restated here); the primary key becomes
-- (id, timestamp), as a partitioned table's keys must hold the partition
-- column. The statistics view depends on equity_data: it is made again from
-- its own definition. Needs free space for one more copy of the largest
-- table while it runs (on a nearly full free tier, run the retention first),
-- and holds the tables locked: run it when the market is closed. A view of
-- your own on one of these tables stops it before it changes anything, with
-- an error naming the views: drop them, migrate, make them again.
--
-- Idempotent (a table already partitioned is left alone); runs unchanged on
-- Supabase and on plain PostgreSQL 15+.

CREATE SCHEMA IF NOT EXISTS streaming_partitions;
REVOKE ALL ON SCHEMA streaming_partitions FROM PUBLIC, anon, authenticated, service_role;

-- The partitioned tables, said once: what is created ahead, dropped by retention and measured by storage_report.
CREATE OR REPLACE FUNCTION public.partitioned_tables()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['equity_data', 'indicators', 'option_prices', 'equity_bars', 'equity_quotes',
                 'streaming_metrics', 'stream_metrics']
$$;
REVOKE ALL ON FUNCTION public.partitioned_tables() FROM PUBLIC, anon, authenticated, service_role;

-- The partitions of every partitioned table (or of `only_table`) for the New
-- York days first_day..last_day, those missing; returns how many it made. At
-- most 366 days a call. SECURITY DEFINER: only the tables' owner may add a
-- partition, and the writer's role is not the owner. Safe as a definer: its
-- arguments are used only as values and checked against the list above,
-- every name it makes is quoted, and its search_path is pinned. One caller at
-- a time (an advisory lock), so the writer and pg_cron never race; a lock
-- it cannot have within 10 s fails it rather than stall its caller.
CREATE OR REPLACE FUNCTION public.create_partitions(first_day date, last_day date, only_table text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
AS $$
DECLARE
    t text;
    day date;
    part text;
    created integer := 0;
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR last_day < first_day OR last_day - first_day > 366 THEN
        RAISE EXCEPTION 'create_partitions takes a first and a last day at most 366 days apart, not % and %',
            first_day, last_day;
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

-- The upgrade of tables made before this migration, one at a time.
DO $$
DECLARE
    t text;
    old regclass;
    keys text[];
    checks text[];
    indexes text[];
    grants text[];
    policies text[];
    publications text[];
    sequence_grants text[];
    stats_view text;
    stats_indexes text[];
    stats_grants text[];
    last_id bigint;
    id_called boolean;
    statement text;
    day date;
    views text;
BEGIN
    -- A view of the user's on a table to convert would stop the DROP below half-way through: say which, first.
    SELECT string_agg(DISTINCT format('%s (on %s)', v.oid::regclass, d.refobjid::regclass), ', ')
    INTO views
    FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
    WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
      AND d.refobjid IN (SELECT to_regclass(format('public.%I', name))
                         FROM unnest(public.partitioned_tables()) AS name)
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_partitioned_table WHERE partrelid = d.refobjid)
      AND v.oid <> d.refobjid AND v.oid IS DISTINCT FROM to_regclass('public.equity_data_stats');
    IF views IS NOT NULL THEN
        RAISE EXCEPTION 'views of your own read the tables this migration partitions: %', views
            USING HINT = 'Save their definitions (pg_get_viewdef), drop them, migrate again, and create them again.';
    END IF;

    -- The statistics view reads equity_data: kept aside while its table is rebuilt.
    IF to_regclass('public.equity_data_stats') IS NOT NULL
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_partitioned_table WHERE partrelid = 'public.equity_data'::regclass) THEN
        stats_view := pg_get_viewdef('public.equity_data_stats'::regclass);
        SELECT array_agg(indexdef) INTO stats_indexes
        FROM pg_catalog.pg_indexes WHERE schemaname = 'public' AND tablename = 'equity_data_stats';
        SELECT array_agg(format('GRANT %s ON TABLE public.equity_data_stats TO %s', a.privilege_type,
                                CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END))
        INTO stats_grants
        FROM pg_catalog.pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = 'public.equity_data_stats'::regclass AND a.grantee <> c.relowner;
        DROP MATERIALIZED VIEW public.equity_data_stats;
    END IF;

    FOREACH t IN ARRAY public.partitioned_tables() LOOP
        old := to_regclass(format('public.%I', t));
        CONTINUE WHEN old IS NULL OR EXISTS (SELECT FROM pg_catalog.pg_partitioned_table WHERE partrelid = old);
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', old);

        -- What makes the table what it is, read before it is renamed (the definitions name it).
        SELECT array_agg(format('ALTER TABLE public.%I ADD CONSTRAINT %I %s%s', t, c.conname,
                                CASE WHEN c.contype = 'p' AND NOT pg_get_constraintdef(c.oid) LIKE '%"timestamp"%'
                                     THEN replace(pg_get_constraintdef(c.oid), ')', ', "timestamp")')
                                     ELSE pg_get_constraintdef(c.oid) END,
                                CASE WHEN c.convalidated THEN '' ELSE ' NOT VALID' END)
                         ORDER BY c.contype DESC, c.conname)
        INTO keys
        FROM pg_catalog.pg_constraint c WHERE c.conrelid = old AND c.contype IN ('p', 'u');
        SELECT array_agg(format('ALTER TABLE public.%I ADD CONSTRAINT %I %s%s', t, c.conname,
                                pg_get_constraintdef(c.oid), CASE WHEN c.convalidated THEN '' ELSE ' NOT VALID' END)
                         ORDER BY c.conname)
        INTO checks
        FROM pg_catalog.pg_constraint c WHERE c.conrelid = old AND c.contype = 'c';
        SELECT array_agg(pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid)
        INTO indexes
        FROM pg_catalog.pg_index i
        WHERE i.indrelid = old AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid);
        SELECT array_agg(format('GRANT %s ON TABLE public.%I TO %s', a.privilege_type, t,
                                CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END))
        INTO grants
        FROM pg_catalog.pg_class c, aclexplode(c.relacl) a WHERE c.oid = old AND a.grantee <> c.relowner;
        SELECT array_agg(format('CREATE POLICY %I ON public.%I AS %s FOR %s TO %s%s%s', p.policyname, t, p.permissive,
                                p.cmd, (SELECT string_agg(CASE r WHEN 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ')
                                        FROM unnest(p.roles) AS r),
                                ' USING (' || p.qual || ')', ' WITH CHECK (' || p.with_check || ')')
                         ORDER BY p.policyname)
        INTO policies
        FROM pg_catalog.pg_policies p WHERE p.schemaname = 'public' AND p.tablename = t;
        SELECT array_agg(p.pubname::text) INTO publications
        FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid
        WHERE r.prrelid = old;
        SELECT array_agg(format('GRANT %s ON SEQUENCE public.%I TO %s', a.privilege_type, t || '_id_seq',
                                CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END))
        INTO sequence_grants
        FROM pg_catalog.pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = pg_get_serial_sequence(format('public.%I', t), 'id')::regclass AND a.grantee <> c.relowner;
        EXECUTE format('SELECT last_value, is_called FROM %s', pg_get_serial_sequence(format('public.%I', t), 'id'))
            INTO last_id, id_called;

        -- The new table, a partition for each day the old one has rows on, and the rows.
        EXECUTE format('ALTER TABLE public.%I RENAME TO %I', t, t || '_unpartitioned');
        EXECUTE format('CREATE TABLE public.%I (LIKE %s INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING STORAGE'
                       ' INCLUDING COMMENTS) PARTITION BY RANGE (timestamp)', t, old);
        FOR day IN EXECUTE format('SELECT DISTINCT (timestamp AT TIME ZONE ''America/New_York'')::date FROM %s', old)
        LOOP
            PERFORM public.create_partitions(day, day, t);
        END LOOP;
        EXECUTE format('INSERT INTO public.%I OVERRIDING SYSTEM VALUE SELECT * FROM %s', t, old);
        EXECUTE format('DROP TABLE %s', old);

        -- Everything else as it was, on the new table.
        EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', pg_get_serial_sequence(format('public.%I', t), 'id'),
                       t || '_id_seq');
        PERFORM setval(format('public.%I', t || '_id_seq'), last_id, id_called);
        FOREACH statement IN ARRAY coalesce(keys, '{}') || coalesce(checks, '{}') || coalesce(indexes, '{}') LOOP
            EXECUTE statement;
        END LOOP;
        -- Supabase's default privileges gave the new table to the API roles: the old grants exactly, no more.
        EXECUTE format('REVOKE ALL ON TABLE public.%I FROM PUBLIC, anon, authenticated, service_role', t);
        EXECUTE format('REVOKE ALL ON SEQUENCE public.%I FROM PUBLIC, anon, authenticated, service_role',
                       t || '_id_seq');
        FOREACH statement IN ARRAY coalesce(grants, '{}') || coalesce(sequence_grants, '{}')
                                   || coalesce(policies, '{}') LOOP
            EXECUTE statement;
        END LOOP;
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        FOREACH statement IN ARRAY coalesce(publications, '{}') LOOP
            -- Changes of a partition are published under its parent's name, which subscribers know.
            EXECUTE format('ALTER PUBLICATION %I SET (publish_via_partition_root = true)', statement);
            EXECUTE format('ALTER PUBLICATION %I ADD TABLE public.%I', statement, t);
        END LOOP;
    END LOOP;

    IF stats_view IS NOT NULL THEN
        EXECUTE 'CREATE MATERIALIZED VIEW public.equity_data_stats AS ' || stats_view;
        FOREACH statement IN ARRAY coalesce(stats_indexes, '{}') LOOP
            EXECUTE statement;
        END LOOP;
        REVOKE ALL ON TABLE public.equity_data_stats FROM PUBLIC, anon, authenticated, service_role;
        FOREACH statement IN ARRAY coalesce(stats_grants, '{}') LOOP
            EXECUTE statement;
        END LOOP;
    END IF;
END $$;

-- Yesterday to a week ahead, so the writer's first batch finds its day (the writer keeps this up from here).
SELECT public.create_partitions(current_date - 1, current_date + 7);

-- Retention by partition: same signature and result as 012/018 (one row per
-- table: table_name, rows_deleted), so pg_cron's job (008) and every caller
-- keep working. SECURITY DEFINER now: dropping a partition needs the owner,
-- and service_role may call it (003). Safe as a definer: one integer, checked;
-- it drops only partitions of the tables listed, found in the catalog.
-- Dropping a partition locks its parent: a reader's transaction held open
-- past 10 s fails the run (tomorrow's takes what it left) instead of
-- queueing the writer behind it.
CREATE OR REPLACE FUNCTION public.cleanup_old_equity_data(retention_days integer DEFAULT 30)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
AS $$
DECLARE
    cutoff timestamptz;
    part regclass;
    held bigint;
BEGIN
    IF retention_days IS NULL OR retention_days < 1 THEN
        RAISE EXCEPTION 'retention_days must be at least 1, not %', retention_days;
    END IF;
    cutoff := now() - make_interval(days => retention_days);
    FOREACH table_name IN ARRAY public.partitioned_tables() LOOP
        CONTINUE WHEN table_name = 'equity_bars';  -- the small, long history (017)
        rows_deleted := 0;
        FOR part IN
            SELECT c.oid::regclass
            FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = format('public.%I', table_name)::regclass
              AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz <= cutoff
        LOOP
            EXECUTE format('SELECT count(*) FROM %s', part) INTO held;
            EXECUTE format('DROP TABLE %s', part);
            rows_deleted := rows_deleted + held;
        END LOOP;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION public.cleanup_old_equity_data(integer) FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.cleanup_old_equity_data(integer) TO service_role;

-- storage_report (019) measures a partitioned table by its partitions (the
-- parent itself holds nothing); the rest of it is unchanged.
CREATE OR REPLACE FUNCTION public.storage_report(budget_mb integer DEFAULT 500, window_days integer DEFAULT 7)
RETURNS TABLE (
    table_name text,
    total_bytes bigint,
    table_bytes bigint,
    index_bytes bigint,
    row_count bigint,
    bytes_per_row numeric,
    trading_days integer,
    rows_per_day numeric,
    bytes_per_day numeric,
    days_until_full numeric
)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    recent bigint;
    daily numeric := 0;
BEGIN
    IF budget_mb IS NULL OR budget_mb < 1 THEN
        RAISE EXCEPTION 'budget_mb must be at least 1 (MB), not %', budget_mb;
    END IF;
    IF window_days IS NULL OR window_days < 1 THEN
        RAISE EXCEPTION 'window_days must be at least 1, not %', window_days;
    END IF;
    FOREACH table_name IN ARRAY public.partitioned_tables() LOOP
        SELECT coalesce(sum(pg_total_relation_size(p.relid)), 0), coalesce(sum(pg_table_size(p.relid)), 0),
               coalesce(sum(pg_indexes_size(p.relid)), 0)
        INTO total_bytes, table_bytes, index_bytes
        FROM pg_partition_tree(format('public.%I', table_name)::regclass) AS p
        WHERE p.isleaf;
        EXECUTE format(
            'SELECT count(*), count(*) FILTER (WHERE timestamp > now() - make_interval(days => $1)),'
            ' count(DISTINCT (timestamp AT TIME ZONE ''America/New_York'')::date)'
            '     FILTER (WHERE timestamp > now() - make_interval(days => $1))'
            ' FROM public.%I', table_name)
            INTO row_count, recent, trading_days USING window_days;
        bytes_per_row := CASE WHEN row_count > 0 THEN round(total_bytes::numeric / row_count, 1) END;
        rows_per_day := CASE WHEN trading_days > 0 THEN round(recent::numeric / trading_days, 1) ELSE 0 END;
        bytes_per_day := round(rows_per_day * coalesce(bytes_per_row, 0));
        days_until_full := NULL;
        daily := daily + bytes_per_day;
        RETURN NEXT;
    END LOOP;
    table_name := 'total';
    total_bytes := pg_database_size(current_database());
    table_bytes := NULL;
    index_bytes := NULL;
    row_count := NULL;
    bytes_per_row := NULL;
    trading_days := NULL;
    rows_per_day := NULL;
    bytes_per_day := daily;
    days_until_full := CASE WHEN daily > 0
                            THEN round(greatest(budget_mb::numeric * 1048576 - total_bytes, 0) / daily, 1) END;
    RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION public.storage_report(integer, integer) FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.storage_report(integer, integer) TO service_role;

-- set_realtime (020) as it was, but a partitioned table's changes must be
-- published under its own name, the one a dashboard subscribes to, not its
-- day's partition's: switching on sets publish_via_partition_root on
-- `supabase_realtime` (a publication's setting, for every partitioned table
-- in it; with it off, Realtime would see none of them).
CREATE OR REPLACE FUNCTION public.set_realtime(enabled boolean)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
BEGIN
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'set_realtime takes true or false, not NULL';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = 'supabase_realtime') THEN
        RAISE EXCEPTION 'no supabase_realtime publication in this database: Realtime is Supabase''s, '
                        'so on plain PostgreSQL there is nothing to switch';
    END IF;
    IF enabled AND NOT (SELECT pubviaroot FROM pg_catalog.pg_publication WHERE pubname = 'supabase_realtime') THEN
        ALTER PUBLICATION supabase_realtime SET (publish_via_partition_root = true);
    END IF;
    FOREACH t IN ARRAY public.realtime_tables() LOOP
        IF enabled AND NOT EXISTS (SELECT FROM pg_catalog.pg_publication_tables
                                   WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = t) THEN
            EXECUTE format('ALTER PUBLICATION supabase_realtime ADD TABLE public.%I', t);
        ELSIF NOT enabled AND EXISTS (SELECT FROM pg_catalog.pg_publication_tables
                                      WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = t) THEN
            EXECUTE format('ALTER PUBLICATION supabase_realtime DROP TABLE public.%I', t);
        END IF;
    END LOOP;
    RETURN ARRAY(SELECT tablename::text FROM pg_catalog.pg_publication_tables
                 WHERE pubname = 'supabase_realtime' AND schemaname = 'public' ORDER BY tablename);
END
$$;
REVOKE ALL ON FUNCTION public.set_realtime(boolean) FROM PUBLIC, anon, authenticated, service_role;

-- pg_cron, where it exists (008): partitions a week ahead, nightly, beside the retention job.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.schedule('streaming-create-partitions', '15 3 * * *',
                              'SELECT public.create_partitions(current_date - 1, current_date + 7)');
    END IF;
END $$;

-- Where it was: the recreated view and tables readable by anon again if public read is on.
SELECT public.set_public_read(public.public_read_enabled());
