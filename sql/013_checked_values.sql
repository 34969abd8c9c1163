-- Defence in depth behind the edge decoder (common/edge.py): values no market
-- has are refused by the tables themselves. Prices are above zero (numeric
-- NaN, which compares above every number, is refused too), sizes, volumes
-- and open interest are not negative. The writer moves a row that fails
-- these to its dead-letter file with the reason; the rest of its batch is
-- stored.
--
-- Each constraint is added NOT VALID (new rows are checked at once, without
-- scanning the table under a lock) and then validated; rows stored before it
-- existed that break it leave it NOT VALID, with a NOTICE saying which, for
-- an owner to clean up and `ALTER TABLE … VALIDATE CONSTRAINT` later.
--
-- streaming_metrics gains, per actor and interval, the items refused where
-- data enters: how many, and by reason ('price_not_finite=2,key_implausible=1').
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.
ALTER TABLE public.streaming_metrics
    ADD COLUMN IF NOT EXISTS rejected_count   bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS rejected_reasons text   NOT NULL DEFAULT '';

DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT * FROM (VALUES
        ('equity_data', 'equity_data_price_check',
         'price > 0 AND price <> ''NaN''::numeric'),
        ('equity_data', 'equity_data_quote_check',
         '(bid IS NULL OR (bid > 0 AND bid <> ''NaN''::numeric)) AND (ask IS NULL OR (ask > 0 AND ask <> ''NaN''::numeric))'),
        ('equity_data', 'equity_data_volume_check',
         'volume >= 0 AND (day_volume IS NULL OR day_volume >= 0) AND (last_size IS NULL OR last_size >= 0)'),
        ('indicators', 'indicators_values_check',
         '(price IS NULL OR (price > 0 AND price <> ''NaN''::numeric)) AND vwap > 0 AND vwap <> ''NaN''::numeric'
         ' AND (sma9 IS NULL OR (sma9 > 0 AND sma9 <> ''NaN''::numeric)) AND (day_volume IS NULL OR day_volume >= 0)'),
        ('option_prices', 'option_prices_prices_check',
         'strike_price > 0 AND strike_price <> ''NaN''::numeric'
         ' AND (last_price IS NULL OR (last_price > 0 AND last_price <> ''NaN''::numeric))'
         ' AND (bid IS NULL OR (bid > 0 AND bid <> ''NaN''::numeric))'
         ' AND (ask IS NULL OR (ask > 0 AND ask <> ''NaN''::numeric))'
         ' AND (mark IS NULL OR (mark > 0 AND mark <> ''NaN''::numeric))'
         ' AND (underlying_price IS NULL OR (underlying_price > 0 AND underlying_price <> ''NaN''::numeric))'),
        ('option_prices', 'option_prices_counts_check',
         '(volume IS NULL OR volume >= 0) AND (open_interest IS NULL OR open_interest >= 0)'
         ' AND (implied_volatility IS NULL OR implied_volatility >= 0)')
    ) AS t (table_name, constraint_name, expression) LOOP
        IF NOT EXISTS (SELECT FROM pg_constraint
                       WHERE conname = c.constraint_name AND conrelid = to_regclass('public.' || c.table_name)) THEN
            EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I CHECK (%s) NOT VALID',
                           c.table_name, c.constraint_name, c.expression);
        END IF;
        BEGIN
            EXECUTE format('ALTER TABLE public.%I VALIDATE CONSTRAINT %I', c.table_name, c.constraint_name);
        EXCEPTION WHEN check_violation THEN
            RAISE NOTICE '%.% stays NOT VALID: rows stored before it break it (%)',
                c.table_name, c.constraint_name, SQLERRM;
        END;
    END LOOP;
END $$;
