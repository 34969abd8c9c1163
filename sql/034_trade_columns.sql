-- The columns the writer writes since issue 26, for futures and index options.
--
-- A future's trade is a trade: shares (contracts) that changed hands at a
-- price, derived from its cumulative volume as a stock's are. So it is stored
-- where every trade is, in equity_data under its symbol ('/ES'), and its
-- SMA9 and VWAP in indicators (the VWAP over CME's trading day, from 18:00
-- New York); its one-minute bars in equity_bars. One table of trades means
-- one key, one way to query and chart, one budget:
--
--   equity_data.contract   the contract a future's trade was in: Schwab's
--                          active contract of a continuous symbol ('/ESZ26'
--                          for '/ES' until the roll), the symbol itself of an
--                          explicit one; NULL for a stock's trade.
--   option_prices.indicative_bid, indicative_ask, indicative_at
--                          Schwab's indicative quote of an index option
--                          (SPXW) and its time; NULL for a stock's option
--                          (Schwab sends none).
-- Columns only, on the parents (partitions take them): it applies as well to
-- a database from before the partitions (022), which its upgrade carries.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

ALTER TABLE public.equity_data ADD COLUMN IF NOT EXISTS contract text;

ALTER TABLE public.option_prices
    ADD COLUMN IF NOT EXISTS indicative_bid numeric(18, 6),
    ADD COLUMN IF NOT EXISTS indicative_ask numeric(18, 6),
    ADD COLUMN IF NOT EXISTS indicative_at  timestamptz;
