-- db-ci platform shim, part 020: the extensions every Supabase database has.
--
-- Real contrib extensions go into schema `extensions`. pgjwt, pg_graphql and
-- supabase_vault are db-ci's installable stubs (src/shim/extensions/), copied
-- into the server's extension directory before this runs; on a
-- supabase/postgres image the real ones are already installed and kept.
-- An extension the server does not offer is skipped with a WARNING, so a
-- migration that needs it fails later with PostgreSQL's own "extension ... is
-- not available" message instead of the whole shim failing.
--
-- Deliberately NOT created: vector, pg_net, http, pg_cron, pgtap. Projects
-- create those themselves (`create extension if not exists pg_net`).

DO $shim$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT * FROM (VALUES
      (1, 'uuid-ossp',          'extensions'),
      (2, 'pgcrypto',           'extensions'),
      (3, 'pgjwt',              'extensions'),  -- requires pgcrypto
      (4, 'pg_stat_statements', 'extensions'),
      (5, 'pg_graphql',         NULL),          -- control file pins schema graphql
      (6, 'supabase_vault',     NULL)           -- control file pins schema vault
    ) AS t(ord, name, schema)
    ORDER BY ord
  LOOP
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = r.name) THEN
      CONTINUE;  -- keep whatever is installed, wherever it is
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = r.name) THEN
      RAISE WARNING 'db-ci shim: extension % is not available on this server; skipped', r.name;
      CONTINUE;
    END IF;
    BEGIN
      IF r.schema IS NULL THEN
        EXECUTE format('CREATE EXTENSION IF NOT EXISTS %I', r.name);
      ELSE
        EXECUTE format('CREATE EXTENSION IF NOT EXISTS %I WITH SCHEMA %I', r.name, r.schema);
      END IF;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE WARNING 'db-ci shim: % may not create extension %; skipped', current_user, r.name;
    END;
  END LOOP;
END
$shim$;

-- graphql_public.graphql(): the entry point PostgREST exposes. On the platform
-- it wraps graphql.resolve() while pg_graphql is installed and is a
-- placeholder returning an error object otherwise. Created only when missing.
DO $shim$
BEGIN
  IF to_regprocedure('graphql_public.graphql(text, text, jsonb, jsonb)') IS NOT NULL THEN
    RETURN;
  END IF;
  IF to_regprocedure('graphql.resolve(text, jsonb, text, jsonb)') IS NOT NULL THEN
    CREATE FUNCTION graphql_public.graphql(
      "operationName" text DEFAULT NULL,
      query text DEFAULT NULL,
      variables jsonb DEFAULT NULL,
      extensions jsonb DEFAULT NULL
    ) RETURNS jsonb
    LANGUAGE sql
    AS $fn$
      select graphql.resolve(
        query := query,
        variables := coalesce(variables, '{}'),
        "operationName" := "operationName",
        extensions := extensions
      );
    $fn$;
  ELSE
    CREATE FUNCTION graphql_public.graphql(
      "operationName" text DEFAULT NULL,
      query text DEFAULT NULL,
      variables jsonb DEFAULT NULL,
      extensions jsonb DEFAULT NULL
    ) RETURNS jsonb
    LANGUAGE plpgsql
    AS $fn$
    BEGIN
      RETURN jsonb_build_object(
        'errors', jsonb_build_array(jsonb_build_object(
          'message', 'pg_graphql extension is not enabled.')));
    END
    $fn$;
  END IF;
  BEGIN
    ALTER FUNCTION graphql_public.graphql(text, text, jsonb, jsonb) OWNER TO supabase_admin;
  EXCEPTION WHEN insufficient_privilege THEN
    NULL;  -- stays owned by the connected role
  END;
  GRANT EXECUTE ON FUNCTION graphql_public.graphql(text, text, jsonb, jsonb)
    TO postgres, anon, authenticated, service_role;
END
$shim$;
