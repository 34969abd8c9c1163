-- equity_quotes gets a key, so a replay stores each quote once.
--
-- 018 gave the table no key, trusting the writer's offsets to keep a replay
-- out; but a replay (STREAM_SOURCE=replay, a recording played again) is a new
-- epoch of ingest, so each of its quotes was a new row, contrary to the
-- README. A quote is now the ticker's top of book at its quote time: (ticker,
-- timestamp, bid, ask, bid_size, ask_size), NULLS NOT DISTINCT (a side with
-- no price is still that quote), and the writer skips one already stored, as
-- it does a trade. Two changes in one millisecond stay two rows; only the
-- same book twice in one millisecond is one (at Schwab's throttled rate, one
-- update a second per symbol, that is a replay or a resend).
--
-- The key's index replaces the (ticker, timestamp) B-tree, which it serves
-- as well (a ticker's quotes over a time range read its prefix). Rows stored
-- twice before this are removed first, the one with the lowest id kept.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

-- In steps (common/store/migrate.py, STEPS), each its own transaction, as
-- each touches every daily partition: the duplicates removed, the key made,
-- the old index dropped. quote_key_step() makes the next and says whether
-- it made one.
CREATE OR REPLACE FUNCTION public.quote_key_step()
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint
                   WHERE conrelid = 'public.equity_quotes'::regclass AND conname = 'equity_quotes_quote_key') THEN
        IF EXISTS (SELECT FROM public.equity_quotes AS q JOIN public.equity_quotes AS earlier
                   ON q.ticker = earlier.ticker AND q.timestamp = earlier.timestamp
                  AND q.bid IS NOT DISTINCT FROM earlier.bid AND q.ask IS NOT DISTINCT FROM earlier.ask
                  AND q.bid_size = earlier.bid_size AND q.ask_size = earlier.ask_size AND q.id > earlier.id) THEN
            DELETE FROM public.equity_quotes AS q
            USING public.equity_quotes AS earlier
            WHERE q.ticker = earlier.ticker AND q.timestamp = earlier.timestamp
              AND q.bid IS NOT DISTINCT FROM earlier.bid AND q.ask IS NOT DISTINCT FROM earlier.ask
              AND q.bid_size = earlier.bid_size AND q.ask_size = earlier.ask_size
              AND q.id > earlier.id;
            RETURN true;
        END IF;
        ALTER TABLE public.equity_quotes ADD CONSTRAINT equity_quotes_quote_key
            UNIQUE NULLS NOT DISTINCT (ticker, timestamp, bid, ask, bid_size, ask_size);
        RETURN true;
    END IF;
    IF to_regclass('public.equity_quotes_ticker_timestamp_idx') IS NOT NULL THEN
        DROP INDEX public.equity_quotes_ticker_timestamp_idx;
        RETURN true;
    END IF;
    RETURN false;
END
$$;
REVOKE ALL ON FUNCTION public.quote_key_step() FROM PUBLIC, anon, authenticated, service_role;
