-- Who may do what: everyone reads, only service_role (and the owner, which
-- the writer connects as) writes. Idempotent; runs unchanged on Supabase and
-- on plain PostgreSQL 15+.
--
-- Supabase's default privileges grant ALL on every new public table, sequence
-- and function to anon and authenticated, so privileges are revoked
-- explicitly here, not just left ungranted. RLS is the second wall: anon and
-- authenticated have a SELECT policy only.

-- Supabase has these roles; plain PostgreSQL may not. service_role bypasses
-- RLS on Supabase; creating a BYPASSRLS role needs a superuser, and the
-- policies below give service_role full access either way.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT;
        IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            ALTER ROLE service_role BYPASSRLS;
        END IF;
    END IF;
END $$;

-- Tables: read for everyone, write for service_role.
REVOKE ALL ON TABLE public.equity_data, public.indicators, public.option_prices, public.streaming_metrics
    FROM PUBLIC, anon, authenticated;
GRANT SELECT ON TABLE public.equity_data, public.indicators, public.option_prices, public.streaming_metrics
    TO anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE
    public.equity_data, public.indicators, public.option_prices, public.streaming_metrics
    TO service_role;

-- The identity sequences: nobody but the owner needs them (inserts draw ids without privileges).
REVOKE ALL ON SEQUENCE public.equity_data_id_seq, public.indicators_id_seq,
    public.option_prices_id_seq, public.streaming_metrics_id_seq
    FROM PUBLIC, anon, authenticated, service_role;

-- The statistics view (RLS does not apply to materialized views).
REVOKE ALL ON TABLE public.equity_data_stats FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT ON TABLE public.equity_data_stats TO anon, authenticated, service_role;

ALTER TABLE public.equity_data ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.indicators ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.option_prices ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.streaming_metrics ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS equity_data_service_role_all ON public.equity_data;
CREATE POLICY equity_data_service_role_all ON public.equity_data
    FOR ALL TO service_role USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS equity_data_read ON public.equity_data;
CREATE POLICY equity_data_read ON public.equity_data
    FOR SELECT TO anon, authenticated USING (true);

DROP POLICY IF EXISTS indicators_service_role_all ON public.indicators;
CREATE POLICY indicators_service_role_all ON public.indicators
    FOR ALL TO service_role USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS indicators_read ON public.indicators;
CREATE POLICY indicators_read ON public.indicators
    FOR SELECT TO anon, authenticated USING (true);

DROP POLICY IF EXISTS option_prices_service_role_all ON public.option_prices;
CREATE POLICY option_prices_service_role_all ON public.option_prices
    FOR ALL TO service_role USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS option_prices_read ON public.option_prices;
CREATE POLICY option_prices_read ON public.option_prices
    FOR SELECT TO anon, authenticated USING (true);

DROP POLICY IF EXISTS streaming_metrics_service_role_all ON public.streaming_metrics;
CREATE POLICY streaming_metrics_service_role_all ON public.streaming_metrics
    FOR ALL TO service_role USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS streaming_metrics_read ON public.streaming_metrics;
CREATE POLICY streaming_metrics_read ON public.streaming_metrics
    FOR SELECT TO anon, authenticated USING (true);

-- Functions are executable by PUBLIC by default, and by anon through Supabase's defaults.
REVOKE ALL ON FUNCTION public.get_streaming_health(text) FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.get_streaming_health(text) TO anon, authenticated, service_role;
REVOKE ALL ON FUNCTION public.cleanup_old_equity_data(integer), public.refresh_equity_stats()
    FROM PUBLIC, anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.cleanup_old_equity_data(integer), public.refresh_equity_stats()
    TO service_role;
