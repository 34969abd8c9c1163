-- Reads are a choice, not a leak. Supabase's anon key is public (it ships in
-- every web page that uses the project), so anon SELECT on the market data
-- republished Schwab's real-time quotes to anyone, which Schwab's terms
-- restrict. From here on:
--
--   data (equity_data, indicators, option_prices, streaming_metrics, the
--   equity_data_stats view, get_streaming_health):
--       authenticated and service_role read; anon only after
--       `SELECT public.set_public_read(true)`, and no more after
--       `SELECT public.set_public_read(false)`.
--   internal (stream_offsets, stream_metrics, schema_migrations):
--       service_role and the writer role (007) only, whatever the switch says.
--       authenticated is any user who can sign in to the project (with sign-ups
--       open, anyone); the writer's positions and lag are the service's
--       business, and get_streaming_health() already sums them up.
--
-- Writes are unchanged: service_role and the owner; streaming_writer keeps
-- exactly the grants and policies of 007. Idempotent, and a second run keeps
-- the switch where it was; runs unchanged on Supabase (PostgreSQL 15/17, the
-- non-superuser `postgres` owning the tables) and on plain PostgreSQL 15+.
--
-- A later migration that re-creates one of the data objects (its anon grant
-- goes with it) ends with `SELECT public.set_public_read(public.public_read_enabled());`.

-- Data: read by authenticated (and service_role, 003), not by anon.
REVOKE ALL ON TABLE public.equity_data, public.indicators, public.option_prices, public.streaming_metrics,
    public.equity_data_stats FROM PUBLIC, anon;
GRANT SELECT ON TABLE public.equity_data, public.indicators, public.option_prices, public.streaming_metrics,
    public.equity_data_stats TO authenticated;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['equity_data', 'indicators', 'option_prices', 'streaming_metrics'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', t || '_read', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO authenticated USING (true)', t || '_read', t);
    END LOOP;
END $$;

-- Internal: no API role but service_role reads them (its 004/005 policies and
-- grants stay, as do streaming_writer's).
REVOKE ALL ON TABLE public.stream_offsets, public.stream_metrics FROM PUBLIC, anon, authenticated;
DROP POLICY IF EXISTS stream_offsets_read ON public.stream_offsets;
DROP POLICY IF EXISTS stream_metrics_read ON public.stream_metrics;

-- The health function reads stream_metrics, which its callers no longer may:
-- SECURITY DEFINER, so it runs as the owner and hands out only its summary
-- (one row about one ticker), not the tables. Safe as a definer: it takes one
-- text argument used only as a value, writes nothing, names every table with
-- its schema, and its search_path is pinned to pg_catalog then pg_temp (last),
-- so no object a caller creates can stand in for one it uses. The alternative,
-- letting authenticated read the internal tables, would hand out far more.
ALTER FUNCTION public.get_streaming_health(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION public.get_streaming_health(text) FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.get_streaming_health(text) TO authenticated, service_role;

-- Is public read on? The switch's own anon policy on equity_data is the mark:
-- only set_public_read(true) creates it (a re-run of 003 grants anon again,
-- but under other names, which this file takes back).
CREATE OR REPLACE FUNCTION public.public_read_enabled()
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM pg_catalog.pg_policies
                   WHERE schemaname = 'public' AND tablename = 'equity_data' AND policyname = 'equity_data_public_read')
$$;

-- The switch. Public read makes the data readable with the anon key, i.e. by
-- anyone on the internet: Schwab's terms restrict redistributing its
-- real-time data, so turn it on only for data you may publish (the
-- simulator's, say). Both directions are idempotent and atomic (one
-- transaction). SECURITY INVOKER and executable by the owner only: granting
-- and creating policies needs the tables' owner anyway, so no API role (not
-- even service_role, whose key more software holds) can flip it.
CREATE OR REPLACE FUNCTION public.set_public_read(enabled boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
BEGIN
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'set_public_read takes true or false, not NULL';
    END IF;
    FOREACH t IN ARRAY ARRAY['equity_data', 'indicators', 'option_prices', 'streaming_metrics'] LOOP
        IF enabled THEN
            EXECUTE format('GRANT SELECT ON TABLE public.%I TO anon', t);
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_policies
                           WHERE schemaname = 'public' AND tablename = t AND policyname = t || '_public_read') THEN
                EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO anon USING (true)', t || '_public_read', t);
            END IF;
        ELSE
            EXECUTE format('REVOKE ALL ON TABLE public.%I FROM anon', t);
            IF EXISTS (SELECT FROM pg_catalog.pg_policies
                       WHERE schemaname = 'public' AND tablename = t AND policyname = t || '_public_read') THEN
                EXECUTE format('DROP POLICY %I ON public.%I', t || '_public_read', t);
            END IF;
        END IF;
    END LOOP;
    IF enabled THEN
        GRANT SELECT ON TABLE public.equity_data_stats TO anon;  -- a materialized view: no RLS, the grant is the wall
        GRANT EXECUTE ON FUNCTION public.get_streaming_health(text) TO anon;
    ELSE
        REVOKE ALL ON TABLE public.equity_data_stats FROM anon;
        REVOKE ALL ON FUNCTION public.get_streaming_health(text) FROM anon;
    END IF;
    -- Whatever the switch says, anon reads no internal table.
    REVOKE ALL ON TABLE public.stream_offsets, public.stream_metrics FROM anon;
    IF to_regclass('public.schema_migrations') IS NOT NULL THEN
        REVOKE ALL ON TABLE public.schema_migrations FROM anon;
    END IF;
END
$$;

-- Supabase's default privileges give new functions to anon, authenticated and service_role: take them back.
REVOKE ALL ON FUNCTION public.set_public_read(boolean), public.public_read_enabled()
    FROM PUBLIC, anon, authenticated, service_role;

-- Off the first time; on a re-run, where it was.
SELECT public.set_public_read(public.public_read_enabled());
