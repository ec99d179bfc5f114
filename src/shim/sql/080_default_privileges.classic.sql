-- db-ci platform shim, part 080 (classic mode only): default privileges on
-- schema public as Supabase shipped them until 2026.
--
-- Every table, view, sequence and function that postgres or supabase_admin
-- creates in public is granted ALL to postgres, anon, authenticated and
-- service_role: row level security is then the only protection of a table.
--
-- Applied instead of 080_default_privileges.no-expose.sql, never together.
-- Re-applying either file over the other leaves exactly the state a fresh
-- database in that mode has (dev-test.sh checks both directions).

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
END
$shim$;
