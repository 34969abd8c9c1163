-- A storage budget the service keeps (STORAGE_BUDGET_MB, measured as
-- Supabase measures a plan: pg_database_size), and rows that cost less.
--
--   storage_budget   one row per deployment, written by its writer at each
--                    check (common/store/budget.py): the budget, the
--                    database's size, the bytes a trading day adds, the
--                    days left at that rate, and a level (ok, warn, crit)
--                    with a sentence saying why. Internal, like
--                    stream_metrics: service_role reads it, the writer role
--                    writes its own rows, no API role sees it;
--                    get_streaming_health() sums it up for them.
--   stored_days()    every daily partition (022) with its table, its New
--                    York day (from the partition's name, which
--                    create_partitions makes, so not from the bound's text,
--                    whose spelling follows the session's DateStyle) and its
--                    size: what the budget keeper chooses from.
--   indexes          indexes that serve no query in SCHEMA.md are dropped,
--                    and the B-tree on `timestamp` of the append-only tables
--                    becomes a BRIN (a few pages a day instead of ~30 bytes
--                    a row): time ranges across tickers still read only the
--                    pages they need. option_prices keeps its key (ticker,
--                    timestamp, option_type, strike_price, expiration_date),
--                    which serves a ticker's chain at a time and, with the
--                    strike, one contract's history; (expiration_date),
--                    (ticker, strike_price) and (option_symbol, timestamp)
--                    go. SCHEMA.md says which query each kept index serves.
--
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

-- The index changes below are made one per step (common/store/migrate.py,
-- STEPS): dropping or making an index of a partitioned table locks every
-- partition (about two locks each), so all of them in one transaction on a
-- year of daily partitions would run out of the shared lock table.
-- storage_index_step() makes the next change still to make and says whether
-- it made one.
CREATE OR REPLACE FUNCTION public.storage_index_step()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
AS $$
DECLARE
    t text;
    change text;
BEGIN
    SELECT format('DROP INDEX public.%I', name) INTO change
    FROM unnest(ARRAY['option_prices_expiration_date_idx', 'option_prices_ticker_strike_price_idx',
                      'option_prices_option_symbol_timestamp_idx']) AS name
    WHERE to_regclass(format('public.%I', name)) IS NOT NULL
    LIMIT 1;
    IF change IS NOT NULL THEN
        EXECUTE change;
        RETURN true;
    END IF;
    FOREACH t IN ARRAY ARRAY['equity_data', 'indicators', 'equity_quotes', 'streaming_metrics', 'stream_metrics']
    LOOP
        -- The B-tree (timestamp) index, whatever the upgrade of 022 named it, becomes a BRIN.
        SELECT format('DROP INDEX public.%I', i.relname) INTO change
        FROM pg_catalog.pg_index x
        JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
        JOIN pg_catalog.pg_am a ON a.oid = i.relam
        WHERE x.indrelid = format('public.%I', t)::regclass AND a.amname = 'btree'
          AND NOT x.indisunique AND NOT x.indisprimary
          AND pg_catalog.pg_get_indexdef(x.indexrelid) LIKE '%("timestamp")'
        LIMIT 1;
        IF change IS NULL AND to_regclass(format('public.%I', t || '_timestamp_brin')) IS NULL THEN
            change := format('CREATE INDEX %I ON public.%I USING brin (timestamp)', t || '_timestamp_brin', t);
        END IF;
        IF change IS NOT NULL THEN
            EXECUTE change;
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;
REVOKE ALL ON FUNCTION public.storage_index_step() FROM PUBLIC, anon, authenticated, service_role;

CREATE TABLE IF NOT EXISTS public.storage_budget (
    deployment     text        PRIMARY KEY,
    budget_bytes   bigint      NOT NULL CHECK (budget_bytes >= 0),
    database_bytes bigint      NOT NULL CHECK (database_bytes >= 0),
    bytes_per_day  bigint      CHECK (bytes_per_day >= 0),
    days_left      numeric,
    level          text        NOT NULL CHECK (level IN ('ok', 'warn', 'crit')),
    detail         text        NOT NULL,
    checked_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE public.storage_budget ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON TABLE public.storage_budget FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.storage_budget TO service_role;
GRANT SELECT, INSERT, UPDATE ON TABLE public.storage_budget TO streaming_writer;
DROP POLICY IF EXISTS storage_budget_service_role_all ON public.storage_budget;
CREATE POLICY storage_budget_service_role_all ON public.storage_budget
    FOR ALL TO service_role USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS storage_budget_writer ON public.storage_budget;
CREATE POLICY storage_budget_writer ON public.storage_budget
    FOR ALL TO streaming_writer USING (true) WITH CHECK (true);

-- Every daily partition: its table, New York day and size (table, indexes and TOAST). Measuring a relation
-- locks it, and a year of partitions would fill a small plan's lock table: so the last week's and later are
-- measured (the rate is taken from them), and an older one, no longer written, is counted from the catalog's
-- page counts (kept by vacuum and analyze; the keeper measures the database again after each day it drops). SECURITY DEFINER only to read sizes of partitions the
-- caller may not touch; it returns no row data.
CREATE OR REPLACE FUNCTION public.stored_days()
RETURNS TABLE (table_name text, day date, total_bytes bigint)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.parent, d.day,
           CASE WHEN d.day >= (now() AT TIME ZONE 'America/New_York')::date - 7 THEN pg_total_relation_size(d.oid)
                ELSE d.pages * current_setting('block_size')::bigint END
    FROM (SELECT p.relname::text AS parent, to_date(right(c.relname, 8), 'YYYYMMDD') AS day, c.oid,
                 c.relpages::bigint + coalesce((SELECT t.relpages FROM pg_catalog.pg_class t WHERE t.oid = c.reltoastrelid), 0)
                 + coalesce((SELECT sum(i.relpages) FROM pg_catalog.pg_index x
                             JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid), 0) AS pages
          FROM pg_catalog.pg_inherits h
          JOIN pg_catalog.pg_class c ON c.oid = h.inhrelid
          JOIN pg_catalog.pg_class p ON p.oid = h.inhparent
          JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace
          WHERE n.nspname = 'public' AND p.relname::text = ANY (public.partitioned_tables())
            AND c.relname ~ '_[0-9]{8}$') AS d
    ORDER BY 2, 1
$$;
REVOKE ALL ON FUNCTION public.stored_days() FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.stored_days() TO service_role, streaming_writer;

-- get_streaming_health (016) with the storage budget: the database's size, the budget, the days left at the
-- measured rate and the level the writer judged (ok, warn, crit; NULL before its first check), the worst of
-- the deployments writing here; `source` and `status` stay the last columns. A new result needs DROP and CREATE: its grants are made again
-- below, anon's as the public-read switch says.
DROP FUNCTION IF EXISTS public.get_streaming_health(text);
CREATE FUNCTION public.get_streaming_health(p_ticker text)
RETURNS TABLE (
    ticker text,
    last_tick_at timestamptz,
    seconds_since_last_tick double precision,
    ticks_last_5m bigint,
    last_metric_at timestamptz,
    errors_last_hour bigint,
    gaps_last_hour bigint,
    lag_records bigint,
    lag_seconds double precision,
    journal_bytes bigint,
    reconnects_last_hour bigint,
    ingest_status text,
    database_mb numeric,
    budget_mb numeric,
    budget_days_left numeric,
    budget_status text,
    source text,
    status text
)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (
        SELECT upper(p_ticker) AS ticker,
               (SELECT max(e.timestamp) FROM public.equity_data e WHERE e.ticker = upper(p_ticker)) AS last_tick_at
    ), lag AS (
        SELECT coalesce(max(l.lag_records), 0)::bigint AS records, coalesce(max(l.lag_seconds), 0) AS seconds
        FROM (SELECT DISTINCT ON (m.stream) m.lag_records, m.lag_seconds
              FROM public.stream_metrics m
              WHERE (m.stream LIKE '%/ingest/trade' OR m.stream LIKE '%/indicator/indicator'
                     OR m.stream LIKE '%/ingest/option')
                AND m.timestamp > now() - interval '1 hour'
              ORDER BY m.stream, m.timestamp DESC) l
    ), recent AS (
        SELECT coalesce(sum(s.error_count), 0)::bigint AS errors, coalesce(sum(s.gap_count), 0)::bigint AS gaps
        FROM public.streaming_metrics s, t
        WHERE s.timestamp > now() - interval '1 hour' AND (s.ticker = t.ticker OR s.ticker IS NULL)
    ), ingest AS (
        SELECT (SELECT s.service_status FROM public.streaming_metrics s
                WHERE s.actor = 'ingest' AND s.timestamp > now() - interval '1 hour'
                ORDER BY s.timestamp DESC LIMIT 1) AS status,
               (SELECT coalesce(sum(s.reconnect_count), 0) FROM public.streaming_metrics s
                WHERE s.actor = 'ingest' AND s.timestamp > now() - interval '1 hour')::bigint AS reconnects
    ), journal AS (
        SELECT coalesce(sum(j.journal_bytes), 0)::bigint AS bytes
        FROM (SELECT DISTINCT ON (s.deployment, s.actor) s.journal_bytes FROM public.streaming_metrics s
              WHERE s.timestamp > now() - interval '1 hour' ORDER BY s.deployment, s.actor, s.timestamp DESC) j
    ), src AS (
        SELECT (SELECT s.source FROM public.streaming_metrics s
                WHERE s.timestamp > now() - interval '1 hour'
                ORDER BY s.timestamp DESC, s.id DESC LIMIT 1) AS source
    ), budget AS (
        SELECT (SELECT b FROM public.storage_budget b
                ORDER BY array_position(ARRAY['crit', 'warn', 'ok'], b.level), b.days_left NULLS LAST
                LIMIT 1) AS b
    )
    SELECT t.ticker,
           t.last_tick_at,
           extract(epoch FROM now() - t.last_tick_at)::double precision,
           (SELECT count(*) FROM public.equity_data e
            WHERE e.ticker = t.ticker AND e.timestamp > now() - interval '5 minutes'),
           greatest((SELECT max(s.timestamp) FROM public.streaming_metrics s WHERE s.ticker = t.ticker),
                    (SELECT max(s.timestamp) FROM public.streaming_metrics s WHERE s.ticker IS NULL)),
           recent.errors,
           recent.gaps,
           lag.records,
           lag.seconds,
           journal.bytes,
           ingest.reconnects,
           ingest.status,
           round(pg_database_size(current_database()) / 1048576.0, 1),
           round((budget.b).budget_bytes / 1048576.0, 1),
           (budget.b).days_left,
           (budget.b).level,
           src.source,
           CASE
               WHEN ingest.status IN ('token_expired', 'connection_limit') THEN ingest.status
               WHEN t.last_tick_at IS NULL THEN 'no_data'
               WHEN lag.seconds > 60 THEN 'lagging'
               WHEN t.last_tick_at > now() - interval '5 minutes' THEN 'healthy'
               WHEN ingest.status = 'market_closed' THEN 'market_closed'
               ELSE 'stale'
           END
    FROM t, lag, recent, ingest, journal, src, budget
$$;
REVOKE ALL ON FUNCTION public.get_streaming_health(text) FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.get_streaming_health(text) TO authenticated, service_role;
SELECT public.set_public_read(public.public_read_enabled());

-- storage_report (022) with an honest rate. A day that is not over yet no
-- longer counts as a whole trading day: the rate is the rows of the complete
-- New York days in the window over their number, and only when there is none
-- yet, today's rows scaled by how much of today has passed (of the regular
-- session, 09:30-16:00, for market data; of the whole day for the service's
-- metrics, which come round the clock). `as_of` is the moment the report
-- speaks for (now(), but for tests). The bar rollups (024), kept forever
-- and not partitioned, are measured too. Same result as before.
CREATE OR REPLACE FUNCTION public.storage_report(budget_mb integer, window_days integer, as_of timestamptz)
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
    today date := (as_of AT TIME ZONE 'America/New_York')::date;
    local_now timestamp := as_of AT TIME ZONE 'America/New_York';
    complete_rows bigint;
    today_rows bigint;
    passed numeric;
    daily numeric := 0;
BEGIN
    IF budget_mb IS NULL OR budget_mb < 1 THEN
        RAISE EXCEPTION 'budget_mb must be at least 1 (MB), not %', budget_mb;
    END IF;
    IF window_days IS NULL OR window_days < 1 THEN
        RAISE EXCEPTION 'window_days must be at least 1, not %', window_days;
    END IF;
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must be a time, not NULL';
    END IF;
    FOREACH table_name IN ARRAY public.partitioned_tables() || ARRAY['equity_bar_rollups'] LOOP
        CONTINUE WHEN to_regclass(format('public.%I', table_name)) IS NULL;
        SELECT coalesce(sum(pg_total_relation_size(p.relid)), 0), coalesce(sum(pg_table_size(p.relid)), 0),
               coalesce(sum(pg_indexes_size(p.relid)), 0)
        INTO total_bytes, table_bytes, index_bytes
        FROM pg_partition_tree(format('public.%I', table_name)::regclass) AS p
        WHERE p.isleaf;
        EXECUTE format(
            'SELECT count(*),'
            ' count(*) FILTER (WHERE timestamp > $2 - make_interval(days => $1) AND (timestamp AT TIME ZONE ''America/New_York'')::date < $3),'
            ' count(*) FILTER (WHERE (timestamp AT TIME ZONE ''America/New_York'')::date = $3 AND timestamp <= $2),'
            ' count(DISTINCT (timestamp AT TIME ZONE ''America/New_York'')::date)'
            '     FILTER (WHERE timestamp > $2 - make_interval(days => $1) AND (timestamp AT TIME ZONE ''America/New_York'')::date < $3)'
            ' FROM public.%I', table_name)
            INTO row_count, complete_rows, today_rows, trading_days USING window_days, as_of, today;
        passed := CASE WHEN table_name IN ('streaming_metrics', 'stream_metrics')
                       THEN extract(epoch FROM local_now - today::timestamp) / 86400
                       ELSE least(greatest(extract(epoch FROM local_now - (today + time '09:30')) / 23400, 0), 1) END;
        bytes_per_row := CASE WHEN row_count > 0 THEN round(total_bytes::numeric / row_count, 1) END;
        rows_per_day := CASE WHEN trading_days > 0 THEN round(complete_rows::numeric / trading_days, 1)
                             WHEN today_rows > 0 AND passed > 0 THEN round(today_rows / passed, 1)
                             ELSE today_rows END;
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
REVOKE ALL ON FUNCTION public.storage_report(integer, integer, timestamptz)
    FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.storage_report(integer, integer, timestamptz) TO service_role;

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
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM public.storage_report(budget_mb, window_days, now())
$$;
REVOKE ALL ON FUNCTION public.storage_report(integer, integer) FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.storage_report(integer, integer) TO service_role;
