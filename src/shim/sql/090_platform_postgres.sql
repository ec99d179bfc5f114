-- db-ci platform shim, part 090: what the platform gives its demoted postgres.
--
-- Only where postgres is not a superuser and the shim runs as one (db-ci's own
-- clusters, bootstrapped as supabase_admin like the platform): a url server's
-- superuser postgres needs none of it, and a non-superuser cannot give it.
--
-- As on the platform: postgres owns the database (so `public`, owned by
-- pg_database_owner, is its own), `extensions`, the CLI's ledger and the
-- realtime publication; it gets ALL on auth, storage and extensions (with
-- grant option on extensions, also for what supabase_admin creates there
-- later, i.e. privileged extensions), membership of pg_read_all_data,
-- pg_signal_backend, pg_monitor, supabase_auth_admin and supabase_storage_admin
-- (owners of auth and storage tables: triggers on auth.users, policies on
-- storage.objects), and may set supautils' allowed superuser settings
-- (`GRANT SET ON PARAMETER`, PostgreSQL 15+).

DO $shim$
DECLARE
  r text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'postgres' AND NOT rolsuper)
     OR NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    RETURN;
  END IF;
  -- Memberships and parameter grants are cluster-wide: serialised with 000.
  LOCK TABLE pg_catalog.pg_authid IN SHARE ROW EXCLUSIVE MODE;

  EXECUTE format('ALTER DATABASE %I OWNER TO postgres', current_database());
  ALTER SCHEMA extensions OWNER TO postgres;
  ALTER SCHEMA supabase_migrations OWNER TO postgres;
  ALTER TABLE supabase_migrations.schema_migrations OWNER TO postgres;
  ALTER TABLE supabase_migrations.seed_files OWNER TO postgres;
  ALTER PUBLICATION supabase_realtime OWNER TO postgres;

  GRANT ALL ON SCHEMA auth, storage, extensions TO postgres;
  GRANT ALL ON ALL TABLES    IN SCHEMA auth, storage TO postgres;
  GRANT ALL ON ALL SEQUENCES IN SCHEMA auth, storage TO postgres;
  GRANT ALL ON ALL ROUTINES  IN SCHEMA auth, storage TO postgres;
  GRANT ALL ON ALL TABLES    IN SCHEMA extensions TO postgres WITH GRANT OPTION;
  GRANT ALL ON ALL SEQUENCES IN SCHEMA extensions TO postgres WITH GRANT OPTION;
  GRANT ALL ON ALL ROUTINES  IN SCHEMA extensions TO postgres WITH GRANT OPTION;
  ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA extensions
    GRANT ALL ON TABLES TO postgres WITH GRANT OPTION;
  ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA extensions
    GRANT ALL ON ROUTINES TO postgres WITH GRANT OPTION;
  ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA extensions
    GRANT ALL ON SEQUENCES TO postgres WITH GRANT OPTION;

  FOREACH r IN ARRAY ARRAY['pg_read_all_data', 'pg_signal_backend', 'pg_monitor',
                           'supabase_auth_admin', 'supabase_storage_admin'] LOOP
    IF NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_auth_members m
      WHERE m.roleid = r::regrole AND m.member = 'postgres'::regrole
    ) THEN
      EXECUTE format('GRANT %I TO postgres', r);
    END IF;
  END LOOP;

  -- supautils' privileged_role_allowed_configs that PostgreSQL knows as
  -- superuser-only (`pgrst.*` and other placeholders are user settings).
  FOREACH r IN ARRAY ARRAY['session_replication_role', 'log_min_messages',
                           'log_lock_waits', 'track_io_timing'] LOOP
    EXECUTE format('GRANT SET ON PARAMETER %s TO postgres', r);
  END LOOP;
END
$shim$;
