-- The database's search_path ("$user", public, extensions) makes the
-- extension functions real migrations call unqualified work, for every role.
SHOW search_path;

DO $$
BEGIN
  ASSERT current_setting('search_path') = '"$user", public, extensions',
    format('search_path is %s', current_setting('search_path'));
  ASSERT current_setting('pgrst.db_schemas', true) = 'public, graphql_public',
    'pgrst.db_schemas must be set on the database';
  ASSERT uuid_generate_v4() IS NOT NULL, 'uuid_generate_v4() unqualified';
  ASSERT length(gen_random_bytes(4)) = 4, 'gen_random_bytes() unqualified';
  ASSERT crypt('x', gen_salt('bf')) LIKE '$2a$%', 'crypt()/gen_salt() unqualified';
  ASSERT digest('x', 'sha256') IS NOT NULL, 'digest() unqualified';
  ASSERT sign('{"a": 1}'::json, 'secret') LIKE 'eyJ%', 'pgjwt sign() unqualified';
  ASSERT gen_random_uuid() IS NOT NULL, 'gen_random_uuid()';
END
$$;

-- where the extensions live, and what is deliberately not pre-installed
DO $$
DECLARE
  e text;
BEGIN
  FOREACH e IN ARRAY ARRAY['uuid-ossp', 'pgcrypto', 'pgjwt', 'pg_stat_statements'] LOOP
    ASSERT (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = e) = 'extensions',
      format('extension %s must be installed in schema extensions', e);
  END LOOP;
  ASSERT (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_graphql') = 'graphql',
    'pg_graphql must be installed (schema graphql)';
  ASSERT (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'supabase_vault') = 'vault',
    'supabase_vault must be installed (schema vault)';
  FOREACH e IN ARRAY ARRAY['vector', 'pg_net', 'http'] LOOP
    ASSERT NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = e),
      format('extension %s must not be pre-installed (projects create it)', e);
  END LOOP;
END
$$;

-- the API roles resolve them too
BEGIN;
SET LOCAL ROLE anon;
DO $$ BEGIN
  ASSERT uuid_generate_v4() IS NOT NULL, 'anon: uuid_generate_v4()';
  ASSERT length(gen_random_bytes(4)) = 4, 'anon: gen_random_bytes()';
END $$;
RESET ROLE;
SET LOCAL ROLE authenticated;
DO $$ BEGIN
  ASSERT crypt('x', gen_salt('bf')) LIKE '$2a$%', 'authenticated: crypt()';
END $$;
ROLLBACK;
