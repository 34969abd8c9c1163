-- Where pg_cron exists (Supabase: Database → Extensions → pg_cron), the
-- database keeps itself tidy: the daily stats view is refreshed every 5
-- minutes and rows past the retention are deleted nightly (03:30 UTC,
-- after the US session). Without pg_cron this does nothing, and
-- `SELECT refresh_equity_stats()` / `SELECT * FROM cleanup_old_equity_data(30)`
-- can be run by any scheduler as service_role.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_cron')
       AND NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        BEGIN
            CREATE EXTENSION pg_cron;
        EXCEPTION WHEN OTHERS THEN  -- not a superuser, or not in shared_preload_libraries
            RAISE NOTICE 'pg_cron is available but cannot be enabled here (%); enable it in the dashboard', SQLERRM;
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        -- cron.schedule(name, …) replaces a job of the same name: applying this twice is harmless.
        PERFORM cron.schedule('streaming-refresh-equity-stats', '*/5 * * * *',
                              'SELECT public.refresh_equity_stats()');
        PERFORM cron.schedule('streaming-retention-cleanup', '30 3 * * *',
                              'SELECT public.cleanup_old_equity_data(30)');
    ELSE
        RAISE NOTICE 'pg_cron not installed: schedule refresh_equity_stats() and cleanup_old_equity_data() elsewhere';
    END IF;
END $$;
