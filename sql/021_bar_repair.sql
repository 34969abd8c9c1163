-- The minutes the stream missed, in streaming_metrics: per actor and
-- interval, `bars_missing` (bars the market had, by Schwab's minute price
-- history, that the stream did not deliver while ingest was not streaming:
-- a restart, a reconnect, an outage, a token wait) and `bars_repaired`
-- (those stored in equity_bars as source 'repaired'; the rest were refused
-- at the edge). common/feed/bar_repair.py.
-- Rows from before this migration read 0.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.
ALTER TABLE public.streaming_metrics
    ADD COLUMN IF NOT EXISTS bars_missing  bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS bars_repaired bigint NOT NULL DEFAULT 0;
