-- A replay is recognisable too: streaming_metrics.source gains 'replay', for
-- rows written while ingest replayed a recording (STREAM_SOURCE=replay,
-- common/replay.py) instead of streaming. get_streaming_health() reports it
-- as it reports the others. The check is replaced only while it lacks
-- 'replay', so a second run changes nothing; NOT VALID then VALIDATE checks
-- the rows already there without holding the table locked while it scans.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint
                   WHERE conname = 'streaming_metrics_source_check'
                     AND conrelid = 'public.streaming_metrics'::regclass
                     AND pg_get_constraintdef(oid) LIKE '%''replay''%') THEN
        ALTER TABLE public.streaming_metrics
            DROP CONSTRAINT IF EXISTS streaming_metrics_source_check,
            ADD CONSTRAINT streaming_metrics_source_check
                CHECK (source IS NULL OR source IN ('schwab', 'simulator', 'replay')) NOT VALID;
        ALTER TABLE public.streaming_metrics VALIDATE CONSTRAINT streaming_metrics_source_check;
    END IF;
END $$;
