-- Real-time or delayed (issue 26): whether Schwab sends this account real-time
-- data. A user who thinks they stream real-time SPX and get 15-minute-old
-- quotes must be told.
--
--   streaming_metrics.entitlement        the status Schwab's LOGIN reply gave
--                      the account (`status=` in its message: PN non-paying
--                      professional, NP non-professional, PP paying
--                      professional); NULL on other actors' rows and before
--                      a login.
--   streaming_metrics.delayed_services   the level-one services whose latest
--                      item Schwab marked `"delayed": true`, comma-separated
--                      ('LEVELONE_EQUITIES,LEVELONE_OPTIONS'); '' when every
--                      service is real-time. `make health` WARNs while it is
--                      not empty, and the status page says so.
-- Idempotent; runs unchanged on Supabase and on plain PostgreSQL 15+.

ALTER TABLE public.streaming_metrics
    ADD COLUMN IF NOT EXISTS entitlement      text,
    ADD COLUMN IF NOT EXISTS delayed_services text NOT NULL DEFAULT '';
