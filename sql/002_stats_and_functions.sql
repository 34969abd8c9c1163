-- Daily statistics and the helper functions. Idempotent; runs unchanged on
-- Supabase and on plain PostgreSQL 15+. Privileges are set in 003_security.sql.

-- One row per ticker and New York trading day. Open and close are the first
-- and last trade by (timestamp, day_volume), found through the unique key's
-- index; the unique index lets refresh_equity_stats() refresh CONCURRENTLY.
CREATE MATERIALIZED VIEW IF NOT EXISTS public.equity_data_stats AS
SELECT d.ticker,
       d.trade_date,
       d.trade_count,
       o.price AS open,
       d.high,
       d.low,
       c.price AS close,
       d.total_volume,
       d.vwap,
       d.first_trade_at,
       d.last_trade_at
FROM (
    SELECT e.ticker,
           (e.timestamp AT TIME ZONE 'America/New_York')::date AS trade_date,
           count(*) AS trade_count,
           max(e.price) AS high,
           min(e.price) AS low,
           sum(e.volume) AS total_volume,
           round(sum(e.price * e.volume) / nullif(sum(e.volume), 0), 6) AS vwap,
           min(e.timestamp) AS first_trade_at,
           max(e.timestamp) AS last_trade_at
    FROM public.equity_data e
    GROUP BY 1, 2
) d
CROSS JOIN LATERAL (
    SELECT f.price FROM public.equity_data f
    WHERE f.ticker = d.ticker AND f.timestamp = d.first_trade_at
    ORDER BY f.day_volume LIMIT 1
) o
CROSS JOIN LATERAL (
    SELECT l.price FROM public.equity_data l
    WHERE l.ticker = d.ticker AND l.timestamp = d.last_trade_at
    ORDER BY l.day_volume DESC LIMIT 1
) c;

CREATE UNIQUE INDEX IF NOT EXISTS equity_data_stats_ticker_trade_date_key
    ON public.equity_data_stats (ticker, trade_date);

-- Is `p_ticker` streaming? 'healthy': a trade in the last 5 minutes; 'stale':
-- trades, but none that recent (also outside market hours); 'no_data': never.
-- Metrics rows count when they are the ticker's or service-wide (ticker NULL).
-- SECURITY INVOKER: anon may call it and can read both tables anyway.
CREATE OR REPLACE FUNCTION public.get_streaming_health(p_ticker text)
RETURNS TABLE (
    ticker text,
    last_tick_at timestamptz,
    seconds_since_last_tick double precision,
    ticks_last_5m bigint,
    last_metric_at timestamptz,
    errors_last_hour bigint,
    status text
)
LANGUAGE sql
STABLE
SET search_path = public, pg_temp
AS $$
    SELECT t.ticker,
           t.last_tick_at,
           extract(epoch FROM now() - t.last_tick_at)::double precision,
           (SELECT count(*) FROM public.equity_data e
            WHERE e.ticker = t.ticker AND e.timestamp > now() - interval '5 minutes'),
           greatest((SELECT max(s.timestamp) FROM public.streaming_metrics s WHERE s.ticker = t.ticker),
                    (SELECT max(s.timestamp) FROM public.streaming_metrics s WHERE s.ticker IS NULL)),
           (SELECT coalesce(sum(s.error_count), 0)::bigint FROM public.streaming_metrics s
            WHERE s.timestamp > now() - interval '1 hour' AND (s.ticker = t.ticker OR s.ticker IS NULL)),
           CASE
               WHEN t.last_tick_at IS NULL THEN 'no_data'
               WHEN t.last_tick_at > now() - interval '5 minutes' THEN 'healthy'
               ELSE 'stale'
           END
    FROM (
        SELECT upper(p_ticker) AS ticker,
               (SELECT max(e.timestamp) FROM public.equity_data e WHERE e.ticker = upper(p_ticker)) AS last_tick_at
    ) t
$$;

-- Delete rows older than `retention_days` from all four tables; one row per
-- table with the count deleted. SECURITY INVOKER: its callers (service_role,
-- the owner) may delete anyway; 003 leaves only them EXECUTE.
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
END
$$;

-- Only the view's owner may refresh it, so SECURITY DEFINER: service_role
-- calls this instead. CONCURRENTLY keeps the view readable during the
-- refresh, but needs a populated view.
CREATE OR REPLACE FUNCTION public.refresh_equity_stats()
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF (SELECT relispopulated FROM pg_catalog.pg_class WHERE oid = 'public.equity_data_stats'::regclass) THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY public.equity_data_stats;
    ELSE
        REFRESH MATERIALIZED VIEW public.equity_data_stats;
    END IF;
END
$$;
