-- Retention covers stream_metrics too (one row per stored stream per
-- METRICS_INTERVAL, so it grew without bound). Same signature and result
-- (one row per table: table_name, rows_deleted), so pg_cron's job of 008
-- and every caller keep working; the grants are 003's (service_role and the owner).
-- stream_offsets is never pruned: one row per stream, the writer's position.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.
CREATE OR REPLACE FUNCTION public.cleanup_old_equity_data(retention_days integer DEFAULT 30)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    cutoff timestamptz;
BEGIN
    IF retention_days IS NULL OR retention_days < 1 THEN
        RAISE EXCEPTION 'retention_days must be at least 1, not %', retention_days;
    END IF;
    cutoff := now() - make_interval(days => retention_days);

    DELETE FROM public.equity_data WHERE timestamp < cutoff;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'equity_data';
    RETURN NEXT;

    DELETE FROM public.indicators WHERE timestamp < cutoff;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'indicators';
    RETURN NEXT;

    DELETE FROM public.option_prices WHERE timestamp < cutoff;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'option_prices';
    RETURN NEXT;

    DELETE FROM public.streaming_metrics WHERE timestamp < cutoff;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'streaming_metrics';
    RETURN NEXT;

    DELETE FROM public.stream_metrics WHERE timestamp < cutoff;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'stream_metrics';
    RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION public.cleanup_old_equity_data(integer) FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.cleanup_old_equity_data(integer) TO service_role;
