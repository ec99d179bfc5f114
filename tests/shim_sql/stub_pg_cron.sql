-- The pg_cron stub: schedules are recorded (and validated), never run.
-- Skipped (NOTICE) when the server offers the real pg_cron instead of db-ci's
-- stub (the real one cannot be created in a throwaway database: it needs
-- shared_preload_libraries and cron.database_name). Everything is undone.
DO $$
DECLARE
  id bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron' AND comment LIKE '%db-ci stub%') THEN
    RAISE NOTICE 'pg_cron: the server''s own extension is used, stub checks skipped';
    RETURN;
  END IF;
  BEGIN
    CREATE EXTENSION pg_cron;
    id := cron.schedule('refresh-caches', '0 */6 * * *',
      $cmd$SELECT net.http_post('https://your-project.supabase.co/functions/v1/refresh-caches')$cmd$);
    ASSERT (SELECT schedule = '0 */6 * * *' AND active FROM cron.job WHERE jobid = id), 'named job recorded';
    ASSERT cron.schedule('refresh-caches', '@daily', 'SELECT 1') = id, 'same name replaces the job';
    ASSERT (SELECT schedule FROM cron.job WHERE jobid = id) = '@daily', 'replaced schedule';
    ASSERT cron.schedule('30 seconds', 'SELECT 2') IS NOT NULL, 'unnamed job, seconds schedule';
    PERFORM cron.alter_job(id, active := false);
    ASSERT NOT (SELECT active FROM cron.job WHERE jobid = id), 'alter_job';
    ASSERT cron.unschedule('refresh-caches'), 'unschedule by name';
    ASSERT NOT EXISTS (SELECT 1 FROM cron.job_run_details), 'nothing ever runs';
    BEGIN
      PERFORM cron.schedule('every minute-ish', 'SELECT 1');
      RAISE EXCEPTION 'invalid schedule accepted';
    EXCEPTION WHEN raise_exception THEN
      IF SQLERRM NOT LIKE 'invalid schedule%' THEN RAISE; END IF;
    END;
    DROP EXTENSION pg_cron;
    -- the dashboard's form
    CREATE EXTENSION pg_cron WITH SCHEMA pg_catalog;
    ASSERT cron.schedule('x', '* * * * *', 'SELECT 1') IS NOT NULL, 'pg_cron with schema pg_catalog';
    RAISE SQLSTATE 'DB001';  -- undo the block
  EXCEPTION WHEN SQLSTATE 'DB001' THEN
    NULL;
  END;
END
$$;
