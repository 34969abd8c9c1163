-- Supabase Realtime for dashboards, opt-in: `SELECT public.set_realtime(true)`
-- adds the low-volume tables, `equity_bars` (one row per ticker a minute)
-- and `indicators`, to Supabase's `supabase_realtime` publication, so a
-- dashboard can draw live bars over a websocket (README shows a minimal
-- supabase-js subscription); `set_realtime(false)` takes them out again.
-- Realtime sends a subscriber only the rows its role may read (RLS, 010), so
-- with public read off only signed-in users get them.
--
-- The high-volume tables are left out on purpose: every row of equity_data,
-- option_prices or equity_quotes would become a Realtime message (50
-- tickers' trades at Schwab's throttled maximum are about 1.2 million a day,
-- against the 2 million a month Supabase's free plan included when this was
-- written), and each change is also decoded from the WAL.
--
-- Where no `supabase_realtime` publication exists (plain PostgreSQL), there
-- is nothing to switch, and it says so. Owner only, like set_public_read.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.
CREATE OR REPLACE FUNCTION public.realtime_tables()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['equity_bars', 'indicators']
$$;

CREATE OR REPLACE FUNCTION public.set_realtime(enabled boolean)
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
BEGIN
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'set_realtime takes true or false, not NULL';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = 'supabase_realtime') THEN
        RAISE EXCEPTION 'no supabase_realtime publication in this database: Realtime is Supabase''s, '
                        'so on plain PostgreSQL there is nothing to switch';
    END IF;
    FOREACH t IN ARRAY public.realtime_tables() LOOP
        IF enabled AND NOT EXISTS (SELECT FROM pg_catalog.pg_publication_tables
                                   WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = t) THEN
            EXECUTE format('ALTER PUBLICATION supabase_realtime ADD TABLE public.%I', t);
        ELSIF NOT enabled AND EXISTS (SELECT FROM pg_catalog.pg_publication_tables
                                      WHERE pubname = 'supabase_realtime' AND schemaname = 'public' AND tablename = t) THEN
            EXECUTE format('ALTER PUBLICATION supabase_realtime DROP TABLE public.%I', t);
        END IF;
    END LOOP;
    RETURN ARRAY(SELECT tablename::text FROM pg_catalog.pg_publication_tables
                 WHERE pubname = 'supabase_realtime' AND schemaname = 'public' ORDER BY tablename);
END
$$;
REVOKE ALL ON FUNCTION public.realtime_tables(), public.set_realtime(boolean)
    FROM PUBLIC, anon, authenticated, service_role;
