-- db-ci's supabase-test-helpers 0.0.6 API, written from the documented behaviour:
-- tests.create_supabase_user / get_supabase_user / get_supabase_uid,
-- tests.authenticate_as / authenticate_as_service_role / clear_authentication,
-- tests.rls_enabled (pgTAP assertions), tests.freeze_time / unfreeze_time.
\echo Use "CREATE EXTENSION ""basejump-supabase_test_helpers""" to load this file. \quit

CREATE SCHEMA IF NOT EXISTS tests;
GRANT USAGE ON SCHEMA tests TO anon, authenticated, service_role;

-- A user in auth.users, remembered by `identifier` (kept in raw_user_meta_data under
-- test_identifier). Callable by any role without changing it: SECURITY DEFINER.
CREATE FUNCTION tests.create_supabase_user(
  identifier text,
  email text DEFAULT NULL,
  phone text DEFAULT NULL,
  metadata jsonb DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $dbci$
DECLARE
  user_id uuid := pg_catalog.gen_random_uuid();
  address text := email;
BEGIN
  IF address IS NULL THEN
    -- A distinct address per user: triggers copying new.email into a profile need one, and
    -- the same identifier may be created twice.
    address := identifier || '@test.com';
    IF EXISTS (SELECT 1 FROM auth.users u WHERE u.email = address) THEN
      address := identifier || '+' || pg_catalog.left(user_id::text, 8) || '@test.com';
    END IF;
  END IF;
  INSERT INTO auth.users (id, aud, role, email, phone, raw_user_meta_data, raw_app_meta_data,
                          email_confirmed_at, created_at, updated_at)
  VALUES (user_id, 'authenticated', 'authenticated', address, phone,
          COALESCE(metadata, '{}'::jsonb) || pg_catalog.jsonb_build_object('test_identifier', identifier),
          '{}'::jsonb, pg_catalog.now(), pg_catalog.now(), pg_catalog.now());
  RETURN user_id;
END
$dbci$;

-- The user as JSON: id, email, phone, raw_user_meta_data, raw_app_meta_data.
CREATE FUNCTION tests.get_supabase_user(identifier text) RETURNS json
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = ''
AS $dbci$
DECLARE
  found json;
BEGIN
  SELECT pg_catalog.json_build_object(
           'id', u.id, 'email', u.email, 'phone', u.phone,
           'raw_user_meta_data', u.raw_user_meta_data, 'raw_app_meta_data', u.raw_app_meta_data)
    INTO found
    FROM auth.users u
   WHERE u.raw_user_meta_data ->> 'test_identifier' = identifier
   ORDER BY u.created_at, u.id
   LIMIT 1;
  IF found IS NULL THEN
    RAISE EXCEPTION 'User with identifier % not found', identifier;
  END IF;
  RETURN found;
END
$dbci$;

CREATE FUNCTION tests.get_supabase_uid(identifier text) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
AS $dbci$
  SELECT (tests.get_supabase_user(identifier) ->> 'id')::uuid
$dbci$;

-- Become the user for the rest of the transaction, as PostgREST does for a request:
-- role authenticated and the JWT claims auth.uid()/auth.jwt() read. SECURITY INVOKER and no
-- SET clause: either would undo the role change when the function returns.
CREATE FUNCTION tests.authenticate_as(identifier text) RETURNS void
LANGUAGE plpgsql
AS $dbci$
DECLARE
  found json := tests.get_supabase_user(identifier);
BEGIN
  PERFORM pg_catalog.set_config('role', 'authenticated', true);
  PERFORM pg_catalog.set_config('request.jwt.claims', pg_catalog.json_build_object(
    'sub', found ->> 'id',
    'role', 'authenticated',
    'aud', 'authenticated',
    'email', found ->> 'email',
    'phone', found ->> 'phone',
    'user_metadata', found -> 'raw_user_meta_data',
    'app_metadata', found -> 'raw_app_meta_data')::text, true);
END
$dbci$;

-- The service key: role service_role (BYPASSRLS), no user.
CREATE FUNCTION tests.authenticate_as_service_role() RETURNS void
LANGUAGE plpgsql
AS $dbci$
BEGIN
  PERFORM pg_catalog.set_config('role', 'service_role', true);
  PERFORM pg_catalog.set_config('request.jwt.claims', '{"role": "service_role"}', true);
END
$dbci$;

-- Back to an anonymous request: role anon, no claims.
CREATE FUNCTION tests.clear_authentication() RETURNS void
LANGUAGE plpgsql
AS $dbci$
BEGIN
  PERFORM pg_catalog.set_config('role', 'anon', true);
  PERFORM pg_catalog.set_config('request.jwt.claims', '', true);
END
$dbci$;

-- pgTAP assertion: every table of the schema has row level security enabled.
CREATE FUNCTION tests.rls_enabled(testing_schema text) RETURNS text
LANGUAGE plpgsql
AS $dbci$
DECLARE
  missing text[];
BEGIN
  SELECT pg_catalog.array_agg(c.relname::text ORDER BY c.relname)
    INTO missing
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = testing_schema AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity;
  -- ok() and diag() are pgTAP's, found through the caller's search_path.
  IF missing IS NULL THEN
    RETURN ok(true, pg_catalog.format('All tables in the %s schema should have row level security enabled', testing_schema));
  END IF;
  RETURN ok(false, pg_catalog.format('All tables in the %s schema should have row level security enabled', testing_schema))
    || E'\n' || diag('tables without row level security: ' || pg_catalog.array_to_string(missing, ', '));
END
$dbci$;

-- pgTAP assertion: the table has row level security enabled.
CREATE FUNCTION tests.rls_enabled(testing_schema text, testing_table text) RETURNS text
LANGUAGE plpgsql
AS $dbci$
BEGIN
  RETURN ok(
    COALESCE((SELECT c.relrowsecurity
                FROM pg_catalog.pg_class c
                JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = testing_schema AND c.relname = testing_table), false),
    pg_catalog.format('Table %s.%s should have row level security enabled', testing_schema, testing_table));
END
$dbci$;

-- Frozen time: test_overrides.now() answers the frozen instant, and freeze_time() puts
-- test_overrides (then pg_catalog, which otherwise is searched first) at the front of the
-- search_path for the rest of the transaction. Expressions bind now() when they are parsed:
-- a column default or function created before the freeze keeps pg_catalog.now(), and a
-- function with its own search_path sees the frozen time only if that path names
-- test_overrides.
CREATE SCHEMA IF NOT EXISTS test_overrides;
GRANT USAGE ON SCHEMA test_overrides TO anon, authenticated, service_role;

CREATE FUNCTION test_overrides.now() RETURNS timestamp with time zone
LANGUAGE sql STABLE
AS $dbci$
  SELECT COALESCE(NULLIF(pg_catalog.current_setting('tests.frozen_time', true), '')::timestamp with time zone,
                  pg_catalog.now())
$dbci$;

CREATE FUNCTION tests.freeze_time(frozen_time timestamp with time zone) RETURNS void
LANGUAGE plpgsql
AS $dbci$
BEGIN
  PERFORM pg_catalog.set_config('tests.frozen_time', frozen_time::text, true);
  IF pg_catalog.current_setting('search_path') NOT LIKE 'test_overrides,%' THEN
    PERFORM pg_catalog.set_config('search_path',
      'test_overrides, pg_catalog, ' || pg_catalog.current_setting('search_path'), true);
  END IF;
END
$dbci$;

CREATE FUNCTION tests.unfreeze_time() RETURNS void
LANGUAGE plpgsql
AS $dbci$
BEGIN
  PERFORM pg_catalog.set_config('tests.frozen_time', '', true);
  PERFORM pg_catalog.set_config('search_path',
    pg_catalog.regexp_replace(pg_catalog.current_setting('search_path'), '^test_overrides, pg_catalog, ', ''), true);
END
$dbci$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tests TO anon, authenticated, service_role;
GRANT EXECUTE ON FUNCTION test_overrides.now() TO anon, authenticated, service_role;
