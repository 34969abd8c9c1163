-- Market reads are off for every API role until the owner names who reads.
--
-- Until now `authenticated` read every market table (010, 017, 018, 024
-- granted it with policies USING (true)), and on Supabase anyone can sign up
-- with the public anon key: anyone could read real-time Schwab data, which
-- Schwab's terms restrict to the account holder. From here on the market
-- data (market_data_tables(), the equity_data_stats view) is read by
-- service_role (and the owner) only, until the owner, in the SQL editor:
--
--   SELECT public.set_market_read(ARRAY['claim:market_data']);
--       signed-in users whose JWT carries app_metadata.market_data = true
--       (set it per user in Supabase: auth.users.raw_app_meta_data, or the
--       admin API); the claim is read from `request.jwt.claims`, which
--       PostgREST and Realtime set per request; any other user reads nothing
--   SELECT public.set_market_read(ARRAY['authenticated']);
--       every signed-in user (turn off open sign-ups first)
--   SELECT public.set_market_read(ARRAY['anon']);
--       anyone with the public key (only data you may publish)
--   SELECT public.set_market_read(ARRAY[]::text[]);
--       nobody but service_role again
--
-- One switch, idempotent, kept across migrations (the `market_read` row);
-- `market_readers()` says what it is. set_public_read(boolean) and
-- public_read_enabled() (010) stay as its shorthand for 'anon'. Each reader
-- gets the table privilege and its RLS policy together (`<table>_read` for
-- authenticated or a claim, `<table>_public_read` for anon); a claim cannot
-- filter the view, so the view is granted to authenticated only when every
-- signed-in user reads. The internal tables never open, whatever it says.
-- Realtime delivers rows by the same policies. Owner only.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

CREATE TABLE IF NOT EXISTS public.market_read (
    only_row   boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    readers    text[]      NOT NULL DEFAULT '{}',
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE public.market_read ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON TABLE public.market_read FROM PUBLIC, anon, authenticated, service_role, streaming_writer;

-- The first time: anon keeps public read if the owner had turned it on (a choice); authenticated's open read,
-- a default nobody chose, ends.
INSERT INTO public.market_read (readers)
SELECT CASE WHEN public.public_read_enabled() THEN ARRAY['anon'] ELSE '{}'::text[] END
ON CONFLICT (only_row) DO NOTHING;

CREATE OR REPLACE FUNCTION public.market_readers()
RETURNS text[]
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT m.readers FROM public.market_read AS m), '{}'::text[])
$$;

CREATE OR REPLACE FUNCTION public.set_market_read(readers text[])
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reader text;
    t text;
    claims text[] := '{}';
    everyone boolean;
    public_read boolean;
    signed_in text;
BEGIN
    IF readers IS NULL THEN
        RAISE EXCEPTION 'set_market_read takes an array of readers (ARRAY[]::text[] for none), not NULL';
    END IF;
    FOREACH reader IN ARRAY readers LOOP
        IF reader ~ '^claim:[a-z_][a-z0-9_]{0,62}$' THEN
            claims := claims || substr(reader, 7);
        ELSIF reader IS NULL OR reader NOT IN ('anon', 'authenticated') THEN
            RAISE EXCEPTION 'set_market_read: % is not a reader; accepted: anon, authenticated, or claim:<key> (signed-in '
                            'users whose JWT app_metadata.<key> is true; key of a-z, 0-9 and _)',
                            coalesce(quote_literal(reader), 'NULL');
        END IF;
    END LOOP;
    everyone := 'authenticated' = ANY (readers);
    public_read := 'anon' = ANY (readers);
    IF everyone AND cardinality(claims) > 0 THEN
        RAISE EXCEPTION 'set_market_read: authenticated already lets every signed-in user read; a claim narrows it: '
                        'name one or the other';
    END IF;
    INSERT INTO public.market_read (readers, changed_at)
    VALUES (ARRAY(SELECT DISTINCT r FROM unnest(readers) AS r ORDER BY r), clock_timestamp())
    ON CONFLICT (only_row) DO UPDATE SET readers = excluded.readers, changed_at = excluded.changed_at;

    signed_in := CASE WHEN everyone THEN 'true'
                      WHEN cardinality(claims) > 0 THEN (
                          SELECT string_agg(format(
                              '(nullif(current_setting(''request.jwt.claims'', true), '''')::jsonb'
                              ' -> ''app_metadata'' ->> %L) = ''true''', c), ' OR ')
                          FROM unnest(claims) AS c) END;
    FOREACH t IN ARRAY public.market_data_tables() LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', t || '_read', t);
        EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', t || '_public_read', t);
        EXECUTE format('REVOKE ALL ON TABLE public.%I FROM anon, authenticated', t);
        IF signed_in IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON TABLE public.%I TO authenticated', t);
            EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO authenticated USING (%s)', t || '_read', t,
                           signed_in);
        END IF;
        IF public_read THEN
            EXECUTE format('GRANT SELECT ON TABLE public.%I TO anon', t);
            EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO anon USING (true)', t || '_public_read', t);
        END IF;
    END LOOP;
    -- A materialized view has no RLS: the grant is the wall.
    REVOKE ALL ON TABLE public.equity_data_stats FROM anon, authenticated;
    IF everyone THEN
        GRANT SELECT ON TABLE public.equity_data_stats TO authenticated;
    END IF;
    IF public_read THEN
        GRANT SELECT ON TABLE public.equity_data_stats TO anon;
        GRANT EXECUTE ON FUNCTION public.get_streaming_health(text) TO anon;
    ELSE
        REVOKE ALL ON FUNCTION public.get_streaming_health(text) FROM anon;
    END IF;
    -- Whatever the switch says, no API role reads an internal table.
    REVOKE ALL ON TABLE public.stream_offsets, public.stream_metrics FROM anon, authenticated;
    IF to_regclass('public.schema_migrations') IS NOT NULL THEN
        REVOKE ALL ON TABLE public.schema_migrations FROM anon, authenticated;
    END IF;
    RETURN public.market_readers();
END
$$;

CREATE OR REPLACE FUNCTION public.public_read_enabled()
RETURNS boolean
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'anon' = ANY (public.market_readers())
$$;

CREATE OR REPLACE FUNCTION public.set_public_read(enabled boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF enabled IS NULL THEN
        RAISE EXCEPTION 'set_public_read takes true or false, not NULL';
    END IF;
    PERFORM public.set_market_read(array_remove(public.market_readers(), 'anon')
                                   || CASE WHEN enabled THEN ARRAY['anon'] ELSE '{}'::text[] END);
END
$$;

REVOKE ALL ON FUNCTION public.market_readers(), public.set_market_read(text[]), public.public_read_enabled(),
    public.set_public_read(boolean) FROM PUBLIC, anon, authenticated, service_role;

SELECT public.set_market_read(public.market_readers());
