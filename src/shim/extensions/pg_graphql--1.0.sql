-- db-ci stub of pg_graphql 1.0. Schema graphql is created by CREATE EXTENSION
-- (the control file pins it).
\echo Use "CREATE EXTENSION pg_graphql" to load this file. \quit

CREATE FUNCTION graphql.resolve(
  query text,
  variables jsonb DEFAULT '{}'::jsonb,
  "operationName" text DEFAULT NULL,
  extensions jsonb DEFAULT NULL
)
RETURNS jsonb
LANGUAGE sql
AS $fn$
  SELECT jsonb_build_object(
    'data', NULL,
    'errors', jsonb_build_array(jsonb_build_object(
      'message', 'db-ci stub: pg_graphql is not available in this database; the GraphQL query was not executed')))
$fn$;

DO $grants$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['postgres', 'anon', 'authenticated', 'service_role'] LOOP
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      EXECUTE format('GRANT USAGE ON SCHEMA graphql TO %I', r);
      EXECUTE format('GRANT ALL ON FUNCTION graphql.resolve(text, jsonb, text, jsonb) TO %I', r);
    END IF;
  END LOOP;
END
$grants$;
