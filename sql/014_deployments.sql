-- Streams are per deployment and kind now, not per ticker: a stream is
-- `{deployment}/{publisher}/{kind}` (common/streams.py), so that several
-- deployments (one per Schwab login, each its own tickers) write into one
-- database without their offsets, lags and metrics colliding.
--
-- streaming_metrics says which deployment a row is from, and its key takes
-- the deployment in: two deployments' metrics actors write a row for each
-- actor at the same instant, and one would otherwise be skipped as a
-- duplicate. Rows from before this migration keep a NULL deployment.
--
-- get_streaming_health's lag looks at every deployment's stored streams (a
-- stream no longer names its tickers), and its journal size sums each
-- deployment's journals; the rest of it is unchanged. Same
-- signature and result, so CREATE OR REPLACE keeps its grants.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.
ALTER TABLE public.streaming_metrics ADD COLUMN IF NOT EXISTS deployment text;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'streaming_metrics_deployment_actor_timestamp_key') THEN
        ALTER TABLE public.streaming_metrics
            ADD CONSTRAINT streaming_metrics_deployment_actor_timestamp_key
            UNIQUE NULLS NOT DISTINCT (deployment, actor, timestamp);
        ALTER TABLE public.streaming_metrics DROP CONSTRAINT IF EXISTS streaming_metrics_actor_timestamp_key;
    END IF;
END $$;
-- The old key's index served "an actor's latest rows"; this one does now.
CREATE INDEX IF NOT EXISTS streaming_metrics_actor_timestamp_idx ON public.streaming_metrics (actor, timestamp);

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
        -- The latest row of each stored stream ({deployment}/{publisher}/{kind}): a stream
        -- carries every ticker of its deployment, so the worst of them speaks for the ticker.
        SELECT coalesce(max(l.lag_records), 0)::bigint AS records, coalesce(max(l.lag_seconds), 0) AS seconds
        FROM (SELECT DISTINCT ON (m.stream) m.lag_records, m.lag_seconds
              FROM public.stream_metrics m
              WHERE (m.stream LIKE '%/ingest/trade' OR m.stream LIKE '%/indicator/indicator'
                     OR m.stream LIKE '%/options/option_row')
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
