-- db-ci stub of pg_graphql 1.0: graphql.resolve() with pg_graphql's signature, raising
-- because db-ci cannot execute GraphQL. Schema graphql is created by CREATE EXTENSION
-- (the control file pins it).
\echo Use "CREATE EXTENSION pg_graphql" to load this file. \quit

CREATE FUNCTION graphql.resolve(
  query text,
  variables jsonb DEFAULT '{}'::jsonb,
  "operationName" text DEFAULT NULL,
  extensions jsonb DEFAULT NULL
)
RETURNS jsonb
LANGUAGE plpgsql
AS $fn$
BEGIN
  RAISE EXCEPTION 'pg_graphql: graphql.resolve() cannot execute GraphQL queries in db-ci (pg_graphql is emulated: only its SQL interface exists)'
    USING ERRCODE = 'feature_not_supported';
END
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
