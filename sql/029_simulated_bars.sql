-- Simulated bars are marked. The minute bars are kept for ever (retention
-- never drops them), and the simulator's were stored as `source = 'stream'`
-- like Schwab's: pointed once at a production database, `make run` left
-- invented bars among the real ones for good, with nothing to tell them
-- apart. `equity_bars.simulated` is true for every bar a writer or `make
-- backfill` stored while the simulator stood in for Schwab
-- (STREAM_SOURCE=simulator): their sessions say so
-- (`SET streaming.simulated = on`, common/store/db.py) and the column's
-- default reads it, so no statement that stores a bar changes. Delete them
-- with `DELETE FROM equity_bars WHERE simulated` (as service_role or the
-- owner; the rollups follow, 024).
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

ALTER TABLE public.equity_bars ADD COLUMN IF NOT EXISTS simulated boolean NOT NULL DEFAULT false;
ALTER TABLE public.equity_bars ALTER COLUMN simulated
    SET DEFAULT coalesce(nullif(current_setting('streaming.simulated', true), '')::boolean, false);
COMMENT ON COLUMN public.equity_bars.simulated IS
    'true: stored while the simulator stood in for Schwab (STREAM_SOURCE=simulator); not market data';
