-- Where each consumer has committed each bus stream: the basis of exactly-once.
-- The writer upserts its row for a stream in the same transaction as the rows
-- that frame carried, so after any crash the table says exactly which frames
-- are stored; everything after that position is replayed from the journal.
CREATE TABLE IF NOT EXISTS public.stream_offsets (
    consumer     text        NOT NULL,
    stream       text        NOT NULL,
    epoch        bigint      NOT NULL,
    seq          bigint      NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, stream)
);

REVOKE ALL ON TABLE public.stream_offsets FROM PUBLIC, anon, authenticated;
GRANT SELECT ON TABLE public.stream_offsets TO anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE public.stream_offsets TO service_role;

ALTER TABLE public.stream_offsets ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS stream_offsets_service_role_all ON public.stream_offsets;
CREATE POLICY stream_offsets_service_role_all ON public.stream_offsets
    FOR ALL TO service_role USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS stream_offsets_read ON public.stream_offsets;
CREATE POLICY stream_offsets_read ON public.stream_offsets
    FOR SELECT TO anon, authenticated USING (true);
