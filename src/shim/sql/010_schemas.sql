-- db-ci platform shim, part 010: platform schemas, database-level settings,
-- schema privileges.
--
-- Schemas are created only when missing (a supabase/postgres image already has
-- most of them). Owners follow the platform: supabase_admin owns the service
-- schemas, the connected role (postgres) owns `extensions` and
-- `supabase_migrations` (the CLI creates the latter as postgres).
-- Schemas vault, graphql and net come from the (stub) extensions, see 020.

DO $shim$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT * FROM (VALUES
      ('extensions',          NULL),
      ('auth',                'supabase_admin'),
      ('storage',             'supabase_admin'),
      ('realtime',            'supabase_admin'),
      ('graphql_public',      'supabase_admin'),
      ('supabase_functions',  'supabase_admin'),
      ('supabase_migrations', NULL)
    ) AS t(name, owner)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = r.name) THEN
      IF r.owner IS NULL THEN
        EXECUTE format('CREATE SCHEMA %I', r.name);
      ELSE
        BEGIN
          EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', r.name, r.owner);
        EXCEPTION WHEN insufficient_privilege THEN
          -- not a member of the owner (non-superuser on a supabase/postgres image)
          EXECUTE format('CREATE SCHEMA %I', r.name);
          RAISE WARNING 'db-ci shim: schema % created owned by % (may not create it for %)',
            r.name, current_user, r.owner;
        END;
      END IF;
    END IF;
  END LOOP;
END
$shim$;

-- Database-level settings. They take effect for sessions that connect after
-- the shim: the harness must reconnect (or RESET ALL on a new session) before
-- replaying migrations. ALTER DATABASE cannot take current_database()
-- directly, hence EXECUTE.
DO $shim$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET search_path TO "$user", public, extensions',
                 current_database());
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'db-ci shim: % may not ALTER DATABASE %; search_path not set',
    current_user, current_database();
END
$shim$;

-- PostgREST's exposed schemas (read by splinter's lints). A placeholder
-- setting: on PG15 only a superuser may store it.
DO $shim$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET pgrst.db_schemas TO %L',
                 current_database(), 'public, graphql_public');
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'db-ci shim: % may not ALTER DATABASE %; pgrst.db_schemas not set',
    current_user, current_database();
END
$shim$;

-- Schema privileges, as on the platform. GRANT is idempotent; a role without
-- the grant option only gets a warning, never an error.
GRANT USAGE ON SCHEMA public         TO postgres, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA extensions     TO postgres, anon, authenticated, service_role;
GRANT ALL   ON SCHEMA extensions     TO postgres, dashboard_user;
GRANT USAGE ON SCHEMA auth           TO anon, authenticated, service_role;
GRANT ALL   ON SCHEMA auth           TO supabase_auth_admin, postgres, dashboard_user;
GRANT USAGE ON SCHEMA storage        TO postgres, anon, authenticated, service_role;
GRANT ALL   ON SCHEMA storage        TO supabase_storage_admin WITH GRANT OPTION;
GRANT ALL   ON SCHEMA storage        TO dashboard_user;
GRANT USAGE ON SCHEMA realtime       TO postgres, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA graphql_public TO postgres, anon, authenticated, service_role;
GRANT USAGE ON SCHEMA supabase_functions TO postgres, anon, authenticated, service_role;
GRANT ALL   ON SCHEMA supabase_functions TO supabase_functions_admin;
