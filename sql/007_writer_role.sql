-- A role for the writer alone, so the service on the nano never holds
-- Supabase's service_role key: it can read and insert into the tables it
-- writes and move its own delivery offsets, and nothing else (no UPDATE or
-- DELETE of data, no TRUNCATE, no other table). Log in as a member of it:
--   CREATE ROLE streaming_ingest LOGIN PASSWORD '…' IN ROLE streaming_writer;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'streaming_writer') THEN
        CREATE ROLE streaming_writer NOLOGIN;
    END IF;
    -- The writer stages each batch in temporary tables (COPY, then INSERT … SELECT).
    EXECUTE format('GRANT TEMPORARY, CONNECT ON DATABASE %I TO streaming_writer', current_database());
END $$;

GRANT USAGE ON SCHEMA public TO streaming_writer;
GRANT SELECT, INSERT ON TABLE public.equity_data, public.indicators, public.option_prices,
    public.streaming_metrics, public.stream_metrics TO streaming_writer;
GRANT USAGE ON SEQUENCE public.equity_data_id_seq, public.indicators_id_seq, public.option_prices_id_seq,
    public.streaming_metrics_id_seq, public.stream_metrics_id_seq TO streaming_writer;
-- Offsets move forward in the same transaction as the rows: an upsert.
GRANT SELECT, INSERT, UPDATE ON TABLE public.stream_offsets TO streaming_writer;

-- Row level security is on for every table: the writer's policies.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['equity_data', 'indicators', 'option_prices', 'streaming_metrics', 'stream_metrics',
                             'stream_offsets'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', t || '_writer_read', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO streaming_writer USING (true)',
                       t || '_writer_read', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['equity_data', 'indicators', 'option_prices', 'streaming_metrics', 'stream_metrics'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', t || '_writer_insert', t);
        EXECUTE format('CREATE POLICY %I ON public.%I FOR INSERT TO streaming_writer WITH CHECK (true)',
                       t || '_writer_insert', t);
    END LOOP;
END $$;
-- Offsets: its own only (other consumers keep theirs in files; a row under their name would lie).
DROP POLICY IF EXISTS stream_offsets_writer_insert ON public.stream_offsets;
CREATE POLICY stream_offsets_writer_insert ON public.stream_offsets
    FOR INSERT TO streaming_writer WITH CHECK (consumer = 'writer');
DROP POLICY IF EXISTS stream_offsets_writer_update ON public.stream_offsets;
CREATE POLICY stream_offsets_writer_update ON public.stream_offsets
    FOR UPDATE TO streaming_writer USING (consumer = 'writer') WITH CHECK (consumer = 'writer');
