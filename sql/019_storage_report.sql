-- How much room is left: storage_report(budget_mb, window_days) gives, per
-- table of the service, its size (table and indexes), its rows, bytes per
-- row, and rows and bytes per trading day at the current rate; and a
-- `total` row whose size is the whole database's (what Supabase's plan
-- counts) and whose `days_until_full` is the trading days left before
-- `budget_mb` (default 500, Supabase's free tier) is full at that rate.
--
-- "Per trading day" is the rows of the last `window_days` (default 7)
-- divided by the New York dates among them that have rows, so a weekend or a
-- holiday does not dilute the rate. It counts every row of every table
-- (exact, not the planner's estimate): on a table of hundreds of MB that is a
-- few seconds of reading, which is why it is a report you ask for, not a
-- check that runs by itself. `make storage` prints it.
--
-- Executable by service_role and the owner, like retention. Idempotent; runs
-- unchanged on Supabase and on plain PostgreSQL 15+.
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
    t text;
    recent bigint;
    daily numeric := 0;
BEGIN
    IF budget_mb IS NULL OR budget_mb < 1 THEN
        RAISE EXCEPTION 'budget_mb must be at least 1 (MB), not %', budget_mb;
    END IF;
    IF window_days IS NULL OR window_days < 1 THEN
        RAISE EXCEPTION 'window_days must be at least 1, not %', window_days;
    END IF;
    FOREACH t IN ARRAY ARRAY['equity_data', 'indicators', 'option_prices', 'equity_bars', 'equity_quotes',
                             'streaming_metrics', 'stream_metrics'] LOOP
        table_name := t;
        total_bytes := pg_total_relation_size(format('public.%I', t)::regclass);
        table_bytes := pg_table_size(format('public.%I', t)::regclass);
        index_bytes := pg_indexes_size(format('public.%I', t)::regclass);
        EXECUTE format(
            'SELECT count(*), count(*) FILTER (WHERE timestamp > now() - make_interval(days => $1)),'
            ' count(DISTINCT (timestamp AT TIME ZONE ''America/New_York'')::date)'
            '     FILTER (WHERE timestamp > now() - make_interval(days => $1))'
            ' FROM public.%I', t)
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
