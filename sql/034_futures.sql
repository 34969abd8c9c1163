-- Futures (issue 26): `/ES`, `/NQ`, `/MES` and explicit contracts (`/ESZ26`)
-- in STREAM_TICKERS stream LEVELONE_FUTURES and CHART_FUTURES.
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
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

ALTER TABLE public.equity_data ADD COLUMN IF NOT EXISTS contract text;
