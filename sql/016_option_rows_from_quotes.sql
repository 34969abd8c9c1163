-- Option rows are stored from ingest's option stream now: the writer makes
-- each quote a row (common/streams.py), and the options actor no longer
-- forwards or journals them. get_streaming_health's lag therefore reads the
-- option stream ingest publishes instead of `{deployment}/options/option_row`;
-- the rest of it is unchanged. Same signature and result, so CREATE OR
-- REPLACE keeps its grants.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.
CREATE OR REPLACE FUNCTION public.get_streaming_health(p_ticker text)
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
        -- The latest row of each stored stream ({deployment}/{publisher}/{kind}, as
        -- common/streams.py declares them): a stream carries every ticker of its
        -- deployment, so the worst of them speaks for the ticker.
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
        -- ingest's own word on the connection: token_expired, connection_limit, market_closed, reconnecting…
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
        -- One service writes every row, so the newest row speaks for it; NULL: no
        -- metrics within the hour, or only rows from before the column existed.
        SELECT (SELECT s.source FROM public.streaming_metrics s
                WHERE s.timestamp > now() - interval '1 hour'
                ORDER BY s.timestamp DESC, s.id DESC LIMIT 1) AS source
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
           src.source,
           CASE
               WHEN ingest.status IN ('token_expired', 'connection_limit') THEN ingest.status
               WHEN t.last_tick_at IS NULL THEN 'no_data'
               WHEN lag.seconds > 60 THEN 'lagging'
               WHEN t.last_tick_at > now() - interval '5 minutes' THEN 'healthy'
               WHEN ingest.status = 'market_closed' THEN 'market_closed'
               ELSE 'stale'
           END
    FROM t, lag, recent, ingest, journal, src
$$;
