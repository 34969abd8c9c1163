-- A row inserted by hand with the seed's columns works:
--   INSERT INTO equity_data (ticker, timestamp, price, volume) VALUES (…);
--   INSERT INTO indicators (ticker, timestamp, sma9, vwap) VALUES (…);
-- Both failed on NOT NULL day_volume (and indicators.price). Idempotent; runs
-- unchanged on Supabase and on plain PostgreSQL 15+ (NULLS NOT DISTINCT is 15+).
--
-- day_volume stays in the key, so two trades in one millisecond (different
-- cumulative volumes) are still two rows, and a replayed trade is still the
-- same key. The key becomes NULLS NOT DISTINCT: a NULL day_volume is one
-- value, so a ticker holds at most one hand-made row per millisecond instead
-- of any number of identical ones. The writer always sets day_volume, and its
-- `ON CONFLICT (ticker, timestamp, day_volume) DO NOTHING` infers the new key
-- exactly as it did the old one (same columns, same constraint name).
--
-- indicators likewise, since it shares equity_data's key: day_volume and price
-- become nullable (the seed's indicator rows have neither). A hand-made
-- indicator row joins its trade with `IS NOT DISTINCT FROM` on day_volume,
-- not with `USING`.
--
-- equity_data_stats needs no change: NULL sorts after every volume both in
-- its open (ORDER BY day_volume) and in its close (ORDER BY day_volume DESC),
-- so a hand-made row is consistently the last of its millisecond.
--
-- Replacing the key rebuilds its index under a lock: writers wait for it
-- (the service's writer retries); on a big table run this in a quiet hour.

ALTER TABLE public.equity_data ALTER COLUMN day_volume DROP NOT NULL;
ALTER TABLE public.indicators ALTER COLUMN day_volume DROP NOT NULL;
ALTER TABLE public.indicators ALTER COLUMN price DROP NOT NULL;

DO $$
DECLARE
    t text;
    key text;
BEGIN
    FOREACH t IN ARRAY ARRAY['equity_data', 'indicators'] LOOP
        key := t || '_ticker_timestamp_day_volume_key';
        IF NOT coalesce((SELECT i.indnullsnotdistinct FROM pg_catalog.pg_constraint c
                         JOIN pg_catalog.pg_index i ON i.indexrelid = c.conindid
                         WHERE c.conrelid = format('public.%I', t)::regclass AND c.conname = key), false) THEN
            EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT IF EXISTS %I,'
                           ' ADD CONSTRAINT %I UNIQUE NULLS NOT DISTINCT (ticker, timestamp, day_volume)',
                           t, key, key);
        END IF;
    END LOOP;
END $$;
