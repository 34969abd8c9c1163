-- Bar rollups: 5-minute, 15-minute, hourly and daily OHLCV bars per ticker,
-- derived from the one-minute bars (equity_bars, 017) and kept forever. The
-- minute bars are the long history, but they grow by about 390 rows per
-- ticker per session; the rollups are what a chart of months or years
-- reads, and they stay when minute bars go. The table is not partitioned and
-- is in none of the lists retention or storage keeping work through
-- (partitioned_tables(), cleanup_old_equity_data): nothing drops it.
--
--   buckets    New York session-aligned. '5m' and '15m' on the clock (09:30
--              is a boundary); '1h' starts at :30 (08:30, 09:30, …, 15:30,
--              16:30); these include pre- and post-market minutes (the 15:30
--              hour holds 15:30-16:29). New York's offsets from UTC are whole
--              hours, so every such bucket is exactly 5, 15 or 60 minutes,
--              on the days the clocks change too. '1d' is the regular session
--              only: minutes starting in [09:30, 16:00) New York, stamped
--              09:30 New York of that date. By the clock: on an early-close
--              day (13:00) the daily still covers 09:30-16:00, i.e. whatever
--              post-market minutes fall before 16:00.
--   values     open = the first minute's open, close = the last minute's
--              close, high/low = max/min, volume = sum, bar_count = minutes
--              in the bucket; vwap = sum(typical * volume) / sum(volume)
--              with typical = (high + low + close) / 3 of each minute,
--              computed exactly and rounded to 6 places (half away from
--              zero); NULL when the bucket's volume is 0.
--   maintained statement-level AFTER INSERT and AFTER UPDATE triggers on
--              equity_bars (two: a trigger with a transition table has one
--              event). They fire for the writer's INSERT … ON CONFLICT DO
--              UPDATE too (inserted rows through the first, revised through
--              the second), once per statement, on the partitioned parent.
--              Each bucket a new or revised minute falls in is recomputed
--              from equity_bars and upserted: a revised or repaired minute
--              corrects every rollup it is in.
--   kept       A recomputation never shrinks a bucket: one with fewer
--              minutes than the stored rollup (its minute bars deleted or
--              their day dropped, then a stray minute stored again) leaves
--              the rollup as it was. Deleting minute bars never changes or
--              removes a rollup. To correct one by hand, delete it
--              (service_role may) and call equity_bar_rollups_rebuild().
--
-- This migration computes the rollups of every minute bar already stored;
-- applied again it changes nothing (a rollup is written only when its values
-- change).
--
-- Same walls as the other market data (003, 010, 017): RLS on; authenticated
-- and service_role read (service_role also writes, as everywhere), anon only
-- while public read is on (market_data_tables() below). streaming_writer has
-- no privilege on it: its inserts and revisions of bars roll up through the
-- triggers' function, which runs as the owner.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

CREATE TABLE IF NOT EXISTS public.equity_bar_rollups (
    ticker     text           NOT NULL,
    "interval" text           NOT NULL,
    timestamp  timestamptz    NOT NULL,
    open       numeric(18, 6) NOT NULL,
    high       numeric(18, 6) NOT NULL,
    low        numeric(18, 6) NOT NULL,
    close      numeric(18, 6) NOT NULL,
    volume     numeric(20, 4) NOT NULL,
    vwap       numeric(18, 6),
    bar_count  integer        NOT NULL,
    updated_at timestamptz    NOT NULL DEFAULT clock_timestamp(),
    -- Serves "a ticker's bars of one interval over a time range".
    CONSTRAINT equity_bar_rollups_pkey PRIMARY KEY (ticker, "interval", timestamp),
    CONSTRAINT equity_bar_rollups_interval_check CHECK ("interval" IN ('5m', '15m', '1h', '1d'))
);

-- service_role too: Supabase's default privileges gave it ALL, TRUNCATE included, which only the owner has.
REVOKE ALL ON TABLE public.equity_bar_rollups FROM PUBLIC, anon, service_role, streaming_writer;
DO $$
BEGIN
    -- Supabase's default privileges gave authenticated ALL: down to SELECT (once; a re-run changes nothing).
    IF has_table_privilege('authenticated', 'public.equity_bar_rollups', 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
       OR NOT has_table_privilege('authenticated', 'public.equity_bar_rollups', 'SELECT') THEN
        REVOKE ALL ON TABLE public.equity_bar_rollups FROM authenticated;
        GRANT SELECT ON TABLE public.equity_bar_rollups TO authenticated;
    END IF;
END $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.equity_bar_rollups TO service_role;
ALTER TABLE public.equity_bar_rollups ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS equity_bar_rollups_service_role_all ON public.equity_bar_rollups;
CREATE POLICY equity_bar_rollups_service_role_all ON public.equity_bar_rollups
    FOR ALL TO service_role USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS equity_bar_rollups_read ON public.equity_bar_rollups;
CREATE POLICY equity_bar_rollups_read ON public.equity_bar_rollups FOR SELECT TO authenticated USING (true);

-- The buckets a minute falls in: (interval, bucket start, bucket length), four rows, or three outside the
-- regular session (no '1d'). The one place the alignment above is written down. Owner and service_role.
-- No pinned search_path, unlike every other function here, on purpose: a SQL function with a SET clause is
-- never inlined, and called once per minute bar it cost 100 times more. It names only pg_catalog's functions,
-- qualified, and its callers (below) pin their own path, which the inlined body is planned under.
CREATE OR REPLACE FUNCTION public.equity_bar_rollup_buckets(minute timestamptz)
RETURNS TABLE ("interval" text, bucket timestamptz, span interval)
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
    SELECT k.name, k.bucket, k.span
    FROM (VALUES
        ('5m',  pg_catalog.date_bin('5 minutes', minute, timestamptz '2000-01-03 00:00+00'), interval '5 minutes'),
        ('15m', pg_catalog.date_bin('15 minutes', minute, timestamptz '2000-01-03 00:00+00'), interval '15 minutes'),
        ('1h',  pg_catalog.date_bin('1 hour', minute, timestamptz '2000-01-03 00:30+00'), interval '1 hour'),
        ('1d',  CASE WHEN (minute AT TIME ZONE 'America/New_York')::time >= time '09:30'
                      AND (minute AT TIME ZONE 'America/New_York')::time < time '16:00'
                     THEN ((minute AT TIME ZONE 'America/New_York')::date + time '09:30')
                          AT TIME ZONE 'America/New_York' END,
                interval '6 hours 30 minutes')
    ) AS k (name, bucket, span)
    WHERE k.bucket IS NOT NULL
$$;

-- Recompute every rollup bucket that the minutes (tickers[i], minutes[i]) fall in, from equity_bars, and
-- upsert them; returns how many rollup rows it wrote (0 when nothing changed). Rollups of one ticker are
-- computed one transaction at a time (an advisory lock per ticker, taken in order): two writers storing
-- minutes of one bucket at once would otherwise each miss the other's. Owner and service_role; the
-- triggers call it as the owner.
CREATE OR REPLACE FUNCTION public.equity_bar_rollups_refresh(tickers text[], minutes timestamptz[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
    written integer;
BEGIN
    FOR t IN SELECT DISTINCT u.ticker FROM unnest(tickers) AS u (ticker) WHERE u.ticker IS NOT NULL ORDER BY 1 LOOP
        PERFORM pg_catalog.pg_advisory_xact_lock(730115524, pg_catalog.hashtext(t));
    END LOOP;
    WITH touched AS (
        SELECT DISTINCT m.ticker, k."interval", k.bucket, k.span
        FROM unnest(tickers, minutes) AS m (ticker, minute)
        CROSS JOIN LATERAL public.equity_bar_rollup_buckets(m.minute) AS k
        WHERE m.ticker IS NOT NULL AND m.minute IS NOT NULL
    ), spans AS (
        -- Per ticker, the stretch of minute bars the touched buckets cover (a live minute: its session).
        SELECT s.ticker, min(s.bucket) AS first, max(s.bucket + s.span) AS last FROM touched s GROUP BY s.ticker
    ), bucketed AS MATERIALIZED (
        -- Each of those minutes in each of its buckets (once: the planner would rather join first, per bucket).
        SELECT b.ticker, k."interval", k.bucket, b.timestamp, b.open, b.high, b.low, b.close, b.volume
        FROM spans s
        JOIN public.equity_bars b ON b.ticker = s.ticker AND b.timestamp >= s.first AND b.timestamp < s.last
        CROSS JOIN LATERAL public.equity_bar_rollup_buckets(b.timestamp) AS k
    ), rolled AS (
        SELECT b.ticker, b."interval", b.bucket,
               (array_agg(b.open ORDER BY b.timestamp))[1] AS open,
               max(b.high) AS high,
               min(b.low) AS low,
               (array_agg(b.close ORDER BY b.timestamp DESC))[1] AS close,
               sum(b.volume) AS volume,
               -- Exactly: the division carries 30 places, then one rounding to the column's 6.
               CASE WHEN sum(b.volume) > 0
                    THEN (sum((b.high + b.low + b.close) * b.volume)::numeric(1000, 30)
                          / (3 * sum(b.volume)))::numeric(18, 6) END AS vwap,
               count(*)::integer AS bar_count
        FROM bucketed b
        WHERE (b.ticker, b."interval", b.bucket) IN (SELECT x.ticker, x."interval", x.bucket FROM touched x)
        GROUP BY b.ticker, b."interval", b.bucket
    )
    INSERT INTO public.equity_bar_rollups AS r
        (ticker, "interval", timestamp, open, high, low, close, volume, vwap, bar_count)
    SELECT rolled.ticker, rolled."interval", rolled.bucket, rolled.open, rolled.high, rolled.low, rolled.close,
           rolled.volume, rolled.vwap, rolled.bar_count
    FROM rolled
    ON CONFLICT (ticker, "interval", timestamp) DO UPDATE
        SET (open, high, low, close, volume, vwap, bar_count, updated_at)
            = (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.vwap,
               excluded.bar_count, pg_catalog.clock_timestamp())
        -- Never shrunk (see the top); the same values again change nothing.
        WHERE excluded.bar_count >= r.bar_count
          AND (r.open, r.high, r.low, r.close, r.volume, r.vwap, r.bar_count)
              IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume,
                                excluded.vwap, excluded.bar_count);
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- Recompute the rollups of every minute bar stored on the New York days first_day..last_day (NULL: from the
-- first, to the last), one day at a time; returns how many rollup rows it wrote. The backfill below; call it
-- again after deleting rollups by hand. Owner and service_role.
CREATE OR REPLACE FUNCTION public.equity_bar_rollups_rebuild(first_day date DEFAULT NULL, last_day date DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    day date;
    tickers text[];
    minutes timestamptz[];
    written integer := 0;
BEGIN
    FOR day IN
        SELECT DISTINCT (b.timestamp AT TIME ZONE 'America/New_York')::date
        FROM public.equity_bars b
        WHERE (first_day IS NULL OR b.timestamp >= first_day::timestamp AT TIME ZONE 'America/New_York')
          AND (last_day IS NULL OR b.timestamp < (last_day + 1)::timestamp AT TIME ZONE 'America/New_York')
        ORDER BY 1
    LOOP
        SELECT array_agg(b.ticker), array_agg(b.timestamp) INTO tickers, minutes
        FROM public.equity_bars b
        WHERE b.timestamp >= day::timestamp AT TIME ZONE 'America/New_York'
          AND b.timestamp < (day + 1)::timestamp AT TIME ZONE 'America/New_York';
        written := written + public.equity_bar_rollups_refresh(tickers, minutes);
    END LOOP;
    RETURN written;
END
$$;

-- The triggers' function: the minutes the statement inserted or revised (its transition table), rolled up.
-- SECURITY DEFINER: the writer's role may not touch the rollups, and must not need to. Safe as a definer:
-- it takes no argument, reads only the statement's own new rows, writes only the rollups of those minutes,
-- names everything with its schema, and pins its search_path. Called by the triggers alone.
CREATE OR REPLACE FUNCTION public.equity_bars_roll_up()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tickers text[];
    minutes timestamptz[];
BEGIN
    SELECT array_agg(c.ticker), array_agg(c.timestamp) INTO tickers, minutes FROM changed_bars c;
    IF tickers IS NOT NULL THEN  -- an UPDATE trigger fires for statements that changed no row, too
        PERFORM public.equity_bar_rollups_refresh(tickers, minutes);
    END IF;
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION public.equity_bar_rollup_buckets(timestamptz), public.equity_bar_rollups_refresh(text[], timestamptz[]),
    public.equity_bar_rollups_rebuild(date, date), public.equity_bars_roll_up()
    FROM PUBLIC, anon, authenticated, service_role, streaming_writer;
GRANT EXECUTE ON FUNCTION public.equity_bar_rollup_buckets(timestamptz), public.equity_bar_rollups_refresh(text[], timestamptz[]),
    public.equity_bar_rollups_rebuild(date, date) TO service_role;

DROP TRIGGER IF EXISTS equity_bars_roll_up_inserted ON public.equity_bars;
CREATE TRIGGER equity_bars_roll_up_inserted
    AFTER INSERT ON public.equity_bars
    REFERENCING NEW TABLE AS changed_bars
    FOR EACH STATEMENT EXECUTE FUNCTION public.equity_bars_roll_up();
DROP TRIGGER IF EXISTS equity_bars_roll_up_revised ON public.equity_bars;
CREATE TRIGGER equity_bars_roll_up_revised
    AFTER UPDATE ON public.equity_bars
    REFERENCING NEW TABLE AS changed_bars
    FOR EACH STATEMENT EXECUTE FUNCTION public.equity_bars_roll_up();

-- The bars already stored (the triggers above hold off the writer until this transaction ends, so none is
-- missed in between).
SELECT public.equity_bar_rollups_rebuild();

-- The market data tables (017, 018), the rollups now among them: the public-read switch opens and closes them
-- with the rest.
CREATE OR REPLACE FUNCTION public.market_data_tables()
RETURNS text[]
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['equity_data', 'indicators', 'option_prices', 'streaming_metrics', 'equity_bars', 'equity_quotes',
                 'equity_bar_rollups']
$$;
REVOKE ALL ON FUNCTION public.market_data_tables() FROM PUBLIC, anon, authenticated, service_role;

-- Where it was: on a database with public read on, the rollups are public too.
SELECT public.set_public_read(public.public_read_enabled());
