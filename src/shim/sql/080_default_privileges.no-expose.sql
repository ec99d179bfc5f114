-- db-ci platform shim, part 080 (no-expose mode only): default privileges on
-- schema public for projects created with "Default privileges for new
-- entities" off — the CLI's `[api] auto_expose_new_tables = false`, the
-- implicit default for new projects since 2026.
--
-- What the platform does (the SQL Studio runs and the CLI reuses): starting
-- from the classic grants, it revokes, for objects created by postgres in
-- public only,
--   tables:    SELECT, INSERT, UPDATE, DELETE      from anon, authenticated, service_role
--   functions: EXECUTE                             from anon, authenticated, service_role (and PUBLIC)
--   sequences: USAGE, SELECT                       from anon, authenticated, service_role
-- Consequences reproduced here on purpose:
--   * service_role loses them too: BYPASSRLS does not replace a GRANT, so a
--     new table needs an explicit grant even for the service key;
--   * TRUNCATE, REFERENCES, TRIGGER (and MAINTAIN on PG17) on tables and
--     UPDATE on sequences stay granted;
--   * the revoke from PUBLIC on functions is a no-op in PostgreSQL (a
--     per-schema default cannot take away the global EXECUTE-to-PUBLIC
--     default), so new functions stay executable by everyone unless the
--     migration revokes it;
--   * objects created by supabase_admin keep the classic ALL grants.
--
-- Applied instead of 080_default_privileges.classic.sql, never together. The
-- classic grants are (re)stated first, so applying this file over a classic
-- database gives exactly the state of a fresh no-expose database.

DO $shim$
DECLARE
  creator text;
  kind    text;
BEGIN
  FOREACH creator IN ARRAY ARRAY['postgres', 'supabase_admin'] LOOP
    FOREACH kind IN ARRAY ARRAY['TABLES', 'FUNCTIONS', 'SEQUENCES'] LOOP
      BEGIN
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public '
                       'GRANT ALL ON %s TO postgres, anon, authenticated, service_role',
                       creator, kind);
      EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'db-ci shim: % may not set default privileges for %', current_user, creator;
      END;
    END LOOP;
  END LOOP;

  BEGIN
    ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
      REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM anon, authenticated, service_role;
    ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
      REVOKE EXECUTE ON FUNCTIONS FROM anon, authenticated, service_role;
    ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
      REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
    ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
      REVOKE USAGE, SELECT ON SEQUENCES FROM anon, authenticated, service_role;
  EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'db-ci shim: % may not revoke default privileges of postgres', current_user;
  END;
END
$shim$;
