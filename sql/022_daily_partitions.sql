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
-- Upgrading: a table still unpartitioned is converted in place, in steps
-- of their own transactions (partition_upgrade_step(), below): renamed
-- aside, a partitioned table made LIKE it (columns, defaults, identity) with
-- its keys, checks and indexes, grants, RLS, policies and publications as
-- they were (read from the catalog, not restated here; the primary key
-- becomes (id, timestamp), as a partitioned table's keys must hold the
-- partition column), then a partition for each day its rows have and the
-- rows, ids and all, 14 days a step, then the old table dropped. The
-- statistics view depends on equity_data: it is made again from its own
-- definition. Needs free space for one more copy of the largest table while
-- it runs (on a nearly full free tier, run the retention first); stop the
-- writer and run it when the market is closed. What it would not carry over
-- (a view, a trigger or a foreign key of your own, a REPLICA IDENTITY or
-- storage parameters set on these tables) stops it before it changes
-- anything, with an error naming each: save, drop or reset, migrate, make
-- again. Revised after release only in how it works (it ran out of the
-- shared lock table on six months of history in one transaction): a
-- database that applied it before has what this leaves
-- (common/store/migrate.py, REVISED).
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

-- The upgrade of tables made before this migration, in steps, each its own
-- transaction: `make migrate` (common/store/migrate.py, STEPS) calls
-- partition_upgrade_step() until it returns false, and records 022 only
-- then. A year of history is about 2,500 partitions at about nine locks
-- each; one transaction for all of them ran out of the shared lock table
-- (64 locks per connection) at about six months. A step holds at most
-- UPGRADE_DAYS days' partitions of one table. Per table:
--
--   start   (one step) what makes the table what it is is read from the
--           catalog; it is renamed aside (`<table>_unpartitioned`), a
--           partitioned table made LIKE it with its keys (the primary key
--           becomes (id, timestamp)), checks, indexes, grants, RLS, policies
--           and publications, so each partition made later has them; the
--           statistics view (on equity_data) is kept aside in the state.
--   copy    (a step per UPGRADE_DAYS days that have rows) their partitions
--           made and their rows copied, ids and all.
--   finish  (one step) the old table dropped, the id sequence named and set
--           as it was, the statistics view made again.
--
-- partition_upgrade holds where each table is, so a run stopped half-way
-- (a lock it could not have within 10 s, a lost connection) goes on from
-- there the next time. While a table is being copied its newer rows are not
-- all there yet: stop the writer while migrating (`make deploy` and the
-- entry points do).
--
-- Before anything changes, what the upgrade would not carry over stops it,
-- named: a view of your own on these tables, a trigger of your own, a
-- REPLICA IDENTITY other than the default (Realtime users set FULL for old
-- values), storage parameters (reloptions), and a foreign key to or from
-- one of them.
CREATE TABLE IF NOT EXISTS public.partition_upgrade (
    table_name   text PRIMARY KEY,
    next_day     date,
    last_id      bigint,
    id_called    boolean,
    keep_view    text,
    view_indexes text[],
    view_grants  text[]
);
ALTER TABLE public.partition_upgrade ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON TABLE public.partition_upgrade FROM PUBLIC, anon, authenticated, service_role;

-- What the upgrade would lose, one line each; NULL when nothing.
CREATE OR REPLACE FUNCTION public.partition_upgrade_obstacles()
RETURNS text
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH old AS (
        SELECT c.oid FROM unnest(public.partitioned_tables()) AS name
        JOIN pg_catalog.pg_class c ON c.oid = to_regclass(format('public.%I', name))
        WHERE c.relkind = 'r'
    ), found AS (
        SELECT format('view %s (on %s)', v.oid::regclass, d.refobjid::regclass) AS what
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
        JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
        WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
          AND d.refobjid IN (SELECT oid FROM old) AND v.oid <> d.refobjid
          AND v.oid IS DISTINCT FROM to_regclass('public.equity_data_stats')
        UNION
        SELECT format('trigger %s on %s', t.tgname, t.tgrelid::regclass)
        FROM pg_catalog.pg_trigger t WHERE t.tgrelid IN (SELECT oid FROM old) AND NOT t.tgisinternal
        UNION
        SELECT format('REPLICA IDENTITY %s on %s',
                      CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING' ELSE 'USING INDEX' END, c.oid::regclass)
        FROM pg_catalog.pg_class c WHERE c.oid IN (SELECT oid FROM old) AND c.relreplident <> 'd'
        UNION
        SELECT format('storage parameters (%s) on %s', array_to_string(c.reloptions, ', '), c.oid::regclass)
        FROM pg_catalog.pg_class c WHERE c.oid IN (SELECT oid FROM old) AND c.reloptions IS NOT NULL
        UNION
        SELECT format('foreign key %s of %s', k.conname, k.conrelid::regclass)
        FROM pg_catalog.pg_constraint k
        WHERE k.contype = 'f' AND (k.confrelid IN (SELECT oid FROM old) OR k.conrelid IN (SELECT oid FROM old))
    )
    SELECT string_agg(what, '; ' ORDER BY what) FROM found
$$;
REVOKE ALL ON FUNCTION public.partition_upgrade_obstacles() FROM PUBLIC, anon, authenticated, service_role;

-- One step of the upgrade (above); true while there is more to do.
CREATE OR REPLACE FUNCTION public.partition_upgrade_step()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
AS $$
DECLARE
    upgrade_days constant integer := 14;
    t text;
    old regclass;
    state public.partition_upgrade;
    obstacles text;
    earliest timestamptz;
    days date[];
    first_day date;
    last_day date;
BEGIN
    FOREACH t IN ARRAY public.partitioned_tables() LOOP
        old := to_regclass(format('public.%I', t));
        SELECT * INTO state FROM public.partition_upgrade u WHERE u.table_name = t;
        CONTINUE WHEN state.table_name IS NULL
                      AND (old IS NULL OR EXISTS (SELECT FROM pg_catalog.pg_partitioned_table WHERE partrelid = old));
        IF state.table_name IS NULL THEN
            IF NOT EXISTS (SELECT FROM public.partition_upgrade) THEN
                obstacles := public.partition_upgrade_obstacles();
                IF obstacles IS NOT NULL THEN
                    RAISE EXCEPTION 'the partition upgrade (022) would not carry these over: %', obstacles
                        USING HINT = 'Nothing was changed. Save each (pg_get_viewdef, pg_get_triggerdef, '
                                     'pg_get_constraintdef, the settings), drop or reset it, migrate again, then '
                                     'make it again on the partitioned table.';
                END IF;
            END IF;
            PERFORM public.partition_upgrade_start(t, old);
            RETURN true;
        END IF;
        old := to_regclass(format('public.%I', t || '_unpartitioned'));
        EXECUTE format('SELECT min(timestamp) FROM %s WHERE timestamp >= ($1::timestamp AT TIME ZONE ''America/New_York'')',
                       old) INTO earliest USING state.next_day;
        IF earliest IS NOT NULL THEN
            first_day := (earliest AT TIME ZONE 'America/New_York')::date;
            last_day := first_day + upgrade_days - 1;
            EXECUTE format('SELECT array_agg(DISTINCT (timestamp AT TIME ZONE ''America/New_York'')::date) FROM %s'
                           ' WHERE timestamp >= ($1::timestamp AT TIME ZONE ''America/New_York'')'
                           ' AND timestamp < (($2 + 1)::timestamp AT TIME ZONE ''America/New_York'')', old)
                INTO days USING first_day, last_day;
            FOR i IN 1 .. cardinality(days) LOOP
                PERFORM public.create_partitions(days[i], days[i], t);
            END LOOP;
            EXECUTE format('INSERT INTO public.%I OVERRIDING SYSTEM VALUE SELECT * FROM %s'
                           ' WHERE timestamp >= ($1::timestamp AT TIME ZONE ''America/New_York'')'
                           ' AND timestamp < (($2 + 1)::timestamp AT TIME ZONE ''America/New_York'')', t, old)
                USING first_day, last_day;
            UPDATE public.partition_upgrade u SET next_day = last_day + 1 WHERE u.table_name = t;
            RETURN true;
        END IF;
        PERFORM public.partition_upgrade_finish(t, old, state);
        RETURN true;
    END LOOP;
    RETURN false;
END
$$;
REVOKE ALL ON FUNCTION public.partition_upgrade_step() FROM PUBLIC, anon, authenticated, service_role;

CREATE OR REPLACE FUNCTION public.partition_upgrade_start(t text, old regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keep text[];
    statement text;
    state public.partition_upgrade;
BEGIN
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', old);
    state.table_name := t;
    EXECUTE format('SELECT (min(timestamp) AT TIME ZONE ''America/New_York'')::date FROM %s', old) INTO state.next_day;
    EXECUTE format('SELECT last_value, is_called FROM %s', pg_get_serial_sequence(old::text, 'id'))
        INTO state.last_id, state.id_called;

    -- The statistics view reads equity_data: kept aside in the state while its table is rebuilt.
    IF t = 'equity_data' AND to_regclass('public.equity_data_stats') IS NOT NULL THEN
        state.keep_view := pg_get_viewdef('public.equity_data_stats'::regclass);
        SELECT array_agg(indexdef) INTO state.view_indexes
        FROM pg_catalog.pg_indexes WHERE schemaname = 'public' AND tablename = 'equity_data_stats';
        SELECT array_agg(format('GRANT %s ON TABLE public.equity_data_stats TO %s', a.privilege_type,
                                CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END))
        INTO state.view_grants
        FROM pg_catalog.pg_class c, aclexplode(c.relacl) a
        WHERE c.oid = 'public.equity_data_stats'::regclass AND a.grantee <> c.relowner;
        DROP MATERIALIZED VIEW public.equity_data_stats;
    END IF;

    -- What makes the table what it is, read before it is renamed (the definitions name it).
    SELECT coalesce(array_agg(format('ALTER TABLE public.%I ADD CONSTRAINT %I %s%s', t, c.conname,
                                     CASE WHEN c.contype = 'p' AND NOT pg_get_constraintdef(c.oid) LIKE '%"timestamp"%'
                                          THEN replace(pg_get_constraintdef(c.oid), ')', ', "timestamp")')
                                          ELSE pg_get_constraintdef(c.oid) END,
                                     CASE WHEN c.convalidated THEN '' ELSE ' NOT VALID' END)
                              ORDER BY c.contype DESC, c.conname), '{}')
    INTO keep
    FROM pg_catalog.pg_constraint c WHERE c.conrelid = old AND c.contype IN ('p', 'u');
    SELECT keep || coalesce(array_agg(format('ALTER TABLE public.%I ADD CONSTRAINT %I %s%s', t, c.conname,
                                             pg_get_constraintdef(c.oid),
                                             CASE WHEN c.convalidated THEN '' ELSE ' NOT VALID' END)
                                      ORDER BY c.conname), '{}')
    INTO keep
    FROM pg_catalog.pg_constraint c WHERE c.conrelid = old AND c.contype = 'c';
    SELECT keep || coalesce(array_agg(pg_get_indexdef(i.indexrelid) ORDER BY i.indexrelid), '{}')
    INTO keep
    FROM pg_catalog.pg_index i
    WHERE i.indrelid = old AND NOT EXISTS (SELECT FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid);
    -- Supabase's default privileges give a new table to the API roles: the old grants exactly, no more.
    keep := keep || format('REVOKE ALL ON TABLE public.%I FROM PUBLIC, anon, authenticated, service_role', t);
    SELECT keep || coalesce(array_agg(format('GRANT %s ON TABLE public.%I TO %s', a.privilege_type, t,
                                             CASE a.grantee WHEN 0 THEN 'PUBLIC'
                                                  ELSE quote_ident(a.grantee::regrole::text) END)), '{}')
    INTO keep
    FROM pg_catalog.pg_class c, aclexplode(c.relacl) a WHERE c.oid = old AND a.grantee <> c.relowner;
    SELECT keep || coalesce(array_agg(format('CREATE POLICY %I ON public.%I AS %s FOR %s TO %s%s%s', p.policyname, t,
                                             p.permissive, p.cmd,
                                             (SELECT string_agg(CASE r WHEN 'public' THEN 'PUBLIC' ELSE quote_ident(r) END,
                                                                ', ') FROM unnest(p.roles) AS r),
                                             ' USING (' || p.qual || ')', ' WITH CHECK (' || p.with_check || ')')
                                      ORDER BY p.policyname), '{}')
    INTO keep
    FROM pg_catalog.pg_policies p WHERE p.schemaname = 'public' AND p.tablename = t;
    keep := keep || format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
    -- Changes of a partition are published under its parent's name, which subscribers know.
    SELECT keep || coalesce(array_agg(one ORDER BY p.pubname, step), '{}')
    INTO keep
    FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid,
         LATERAL unnest(ARRAY[format('ALTER PUBLICATION %I SET (publish_via_partition_root = true)', p.pubname),
                              format('ALTER PUBLICATION %I ADD TABLE public.%I', p.pubname, t)])
                 WITH ORDINALITY AS s(one, step)
    WHERE r.prrelid = old;

    EXECUTE format('ALTER TABLE public.%I RENAME TO %I', t, t || '_unpartitioned');
    -- Its indexes (and so its keys) step aside too: the new table's take their names.
    FOR statement IN SELECT format('ALTER INDEX %s RENAME TO %I', i.indexrelid::regclass, left(c.relname, 50) || '_old')
                     FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
                     WHERE i.indrelid = old LOOP
        EXECUTE statement;
    END LOOP;
    EXECUTE format('CREATE TABLE public.%I (LIKE %s INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING STORAGE'
                   ' INCLUDING COMMENTS) PARTITION BY RANGE (timestamp)', t, old);
    FOREACH statement IN ARRAY keep LOOP
        EXECUTE statement;
    END LOOP;
    INSERT INTO public.partition_upgrade VALUES (state.*);
END
$$;
REVOKE ALL ON FUNCTION public.partition_upgrade_start(text, regclass) FROM PUBLIC, anon, authenticated, service_role;

CREATE OR REPLACE FUNCTION public.partition_upgrade_finish(t text, old regclass, state public.partition_upgrade)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    statement text;
    sequence_grants text[];
BEGIN
    SELECT array_agg(format('GRANT %s ON SEQUENCE public.%I TO %s', a.privilege_type, t || '_id_seq',
                            CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END))
    INTO sequence_grants
    FROM pg_catalog.pg_class c, aclexplode(c.relacl) a
    WHERE c.oid = pg_get_serial_sequence(old::text, 'id')::regclass AND a.grantee <> c.relowner;
    EXECUTE format('DROP TABLE %s', old);
    EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', pg_get_serial_sequence(format('public.%I', t), 'id'),
                   t || '_id_seq');
    PERFORM setval(format('public.%I', t || '_id_seq'), state.last_id, state.id_called);
    EXECUTE format('REVOKE ALL ON SEQUENCE public.%I FROM PUBLIC, anon, authenticated, service_role', t || '_id_seq');
    FOREACH statement IN ARRAY coalesce(sequence_grants, '{}') LOOP
        EXECUTE statement;
    END LOOP;
    IF state.keep_view IS NOT NULL THEN
        EXECUTE 'CREATE MATERIALIZED VIEW public.equity_data_stats AS ' || state.keep_view;
        FOREACH statement IN ARRAY coalesce(state.view_indexes, '{}') LOOP
            EXECUTE statement;
        END LOOP;
        REVOKE ALL ON TABLE public.equity_data_stats FROM PUBLIC, anon, authenticated, service_role;
        FOREACH statement IN ARRAY coalesce(state.view_grants, '{}') LOOP
            EXECUTE statement;
        END LOOP;
    END IF;
    PERFORM public.create_partitions(current_date - 1, current_date + 7, t);
    DELETE FROM public.partition_upgrade u WHERE u.table_name = t;
END
$$;
REVOKE ALL ON FUNCTION public.partition_upgrade_finish(text, regclass, public.partition_upgrade)
    FROM PUBLIC, anon, authenticated, service_role;

-- Yesterday to a week ahead are made as each table is converted (partition_upgrade_finish), so the writer's
-- first batch finds its day; the writer keeps this up from here. Not made here again: applied again over a later
-- layout (031's monthly bars), this file's create_partitions would not know it.

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
