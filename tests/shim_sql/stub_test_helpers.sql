-- db-ci's supabase-test-helpers (`basejump-supabase_test_helpers` 0.0.6) and the dbdev
-- bootstrap around it (http answering database.dev with an empty list, pg_tle and
-- supabase-dbdev stubs): the documented behaviour of every tests.* function. Everything
-- is undone at the end.
DO $$
DECLARE
  alice uuid;
  bob uuid;
  found json;
  versions json;
  same boolean;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_available_extensions
                 WHERE name = 'basejump-supabase_test_helpers' AND default_version = '0.0.6') THEN
    RAISE EXCEPTION 'the test helpers are not installable';
  END IF;
  BEGIN
    -- The dbdev bootstrap test suites copy.
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'http' AND comment LIKE '%db-ci stub%') THEN
      CREATE EXTENSION IF NOT EXISTS http WITH SCHEMA extensions;
      SELECT ((row_to_json(x) -> 'content') #>> '{}')::json -> 0 INTO versions
        FROM extensions.http(('GET', 'https://api.database.dev/rest/v1/package_versions?package_name=eq.supabase-dbdev',
                              ARRAY[]::extensions.http_header[], NULL, NULL)) x;
      ASSERT versions IS NULL, 'database.dev lists no package version';
    END IF;
    CREATE EXTENSION pg_tle;
    ASSERT pgtle.install_extension('supabase-dbdev', NULL, 'PostgreSQL package manager', NULL), 'dbdev "installs"';
    CREATE EXTENSION "supabase-dbdev";
    ASSERT dbdev.install('basejump-supabase_test_helpers'), 'the helpers "install"';
    BEGIN
      PERFORM dbdev.install('someone-else_package');
      RAISE EXCEPTION 'other packages must not install';
    EXCEPTION WHEN raise_exception THEN
      ASSERT SQLERRM LIKE '%not available offline%', SQLERRM;
    END;
    -- Projects pin versions: every published one resolves to this implementation.
    CREATE EXTENSION "basejump-supabase_test_helpers" VERSION '0.0.1';
    ASSERT (SELECT extversion FROM pg_extension WHERE extname = 'basejump-supabase_test_helpers') = '0.0.1', 'pinned 0.0.1';
    ASSERT to_regprocedure('tests.freeze_time(timestamptz)') IS NOT NULL, 'the whole API under any version';
    DROP EXTENSION "basejump-supabase_test_helpers";
    CREATE EXTENSION "basejump-supabase_test_helpers" VERSION '0.0.6';

    -- Users.
    alice := tests.create_supabase_user('alice');
    bob := tests.create_supabase_user('bob', 'bob@example.com', '555-0100', '{"plan": "pro"}');
    PERFORM tests.create_supabase_user('carol', NULL, NULL, '{"k": 1}');
    ASSERT (SELECT count(*) FROM auth.users) >= 3, 'users created';
    ASSERT tests.get_supabase_uid('alice') = alice, 'uid by identifier';
    found := tests.get_supabase_user('bob');
    ASSERT (found ->> 'id')::uuid = bob AND found ->> 'email' = 'bob@example.com'
       AND found ->> 'phone' = '555-0100' AND found -> 'raw_user_meta_data' ->> 'plan' = 'pro',
       'user as json: ' || found::text;
    ASSERT (SELECT raw_app_meta_data FROM auth.users WHERE id = alice) = '{}'::jsonb, 'empty app metadata';
    ASSERT (SELECT email FROM auth.users WHERE id = alice) IS NOT NULL, 'a default email';
    BEGIN
      PERFORM tests.get_supabase_user('nobody');
      RAISE EXCEPTION 'an unknown identifier must fail';
    EXCEPTION WHEN raise_exception THEN
      ASSERT SQLERRM = 'User with identifier nobody not found', SQLERRM;
    END;

    -- Authentication, as PostgREST does it.
    PERFORM tests.authenticate_as('alice');
    ASSERT current_user = 'authenticated', 'role authenticated';
    ASSERT auth.uid() = alice, 'auth.uid() is alice';
    ASSERT auth.jwt() ?& ARRAY['sub', 'email', 'phone', 'user_metadata', 'app_metadata'], 'claims';
    -- Callable as any API role, without changing the role.
    PERFORM tests.create_supabase_user('dave');
    ASSERT current_user = 'authenticated', 'create_supabase_user keeps the role';
    ASSERT tests.get_supabase_uid('bob') = bob, 'get_supabase_uid as authenticated';
    PERFORM tests.authenticate_as_service_role();
    ASSERT current_user = 'service_role' AND auth.uid() IS NULL, 'service role, no user';
    ASSERT auth.role() = 'service_role', 'service role claims';
    PERFORM tests.clear_authentication();
    ASSERT current_user = 'anon' AND auth.uid() IS NULL, 'anonymous';
    ASSERT current_setting('request.jwt.claims') = '', 'claims emptied';
    PERFORM tests.authenticate_as('bob');
    ASSERT auth.uid() = bob, 'from anon to bob';
    PERFORM set_config('role', 'none', true);

    -- Frozen time.
    PERFORM tests.freeze_time('2020-01-01 00:00:00+00');
    ASSERT current_setting('search_path') LIKE 'test_overrides,%', 'test_overrides first';
    EXECUTE 'SELECT now() = ''2020-01-01 00:00:00+00''::timestamptz' INTO STRICT same;
    ASSERT same, 'now() frozen';
    PERFORM tests.freeze_time('2021-06-01'::date);
    EXECUTE 'SELECT now() = ''2021-06-01''::date::timestamptz' INTO STRICT same;
    ASSERT same, 'frozen again, from a date';
    PERFORM tests.unfreeze_time();
    ASSERT current_setting('search_path') NOT LIKE '%test_overrides%', 'search_path restored';
    EXECUTE 'SELECT now() = pg_catalog.now()' INTO STRICT same;
    ASSERT same, 'now() unfrozen';
    RAISE SQLSTATE 'DB001';  -- undo the block
  EXCEPTION WHEN SQLSTATE 'DB001' THEN
    NULL;
  END;
END
$$;
