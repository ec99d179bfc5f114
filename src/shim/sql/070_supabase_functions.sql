-- db-ci platform shim, part 070: database webhooks (supabase_functions).
--
-- Dashboard-made database webhooks appear in migrations as
--   create trigger ... execute function supabase_functions.http_request(
--     'https://...', 'POST', '{"Content-Type":"application/json"}', '{}', '1000');
-- The trigger function hands the request to pg_net and logs it in
-- supabase_functions.hooks, as on the platform. The platform installs pg_net
-- together with webhooks; db-ci does not pre-create pg_net (projects create
-- it), so when pg_net is absent the hook is still logged (request_id NULL) and
-- a WARNING says that nothing was queued.

-- >>> dbci helpers (session-local, pg_temp: never part of the database, never
-- dumped). Identical in every shim file that uses them; dev-test.sh checks.
CREATE OR REPLACE FUNCTION pg_temp.dbci_try(stmt text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE stmt;
EXCEPTION
  WHEN insufficient_privilege THEN
    RAISE WARNING 'db-ci shim: % may not run: %', current_user, stmt;
  WHEN undefined_table OR undefined_function OR undefined_object OR invalid_schema_name THEN
    -- only after an earlier step was refused (non-superuser on a platform image)
    RAISE WARNING 'db-ci shim: skipped, %: %', SQLERRM, stmt;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbci_table(tbl text, cols text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  col     text;
  colname text;
  def     text;
BEGIN
  IF to_regclass(tbl) IS NULL THEN
    PERFORM pg_temp.dbci_try(format('CREATE TABLE %s (%s)', tbl, array_to_string(cols, ', ')));
    RETURN;
  END IF;
  -- existing table: add missing columns; give existing plain columns the
  -- default they lack (defaults only matter for rows that omit the column)
  FOREACH col IN ARRAY cols LOOP
    colname := btrim(split_part(col, ' ', 1), '"');
    IF NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_attribute
      WHERE attrelid = to_regclass(tbl) AND attname = colname AND attnum > 0 AND NOT attisdropped
    ) THEN
      PERFORM pg_temp.dbci_try(format('ALTER TABLE %s ADD COLUMN %s', tbl, col));
    ELSE
      def := substring(col FROM ' DEFAULT (.*)$');
      IF def IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = to_regclass(tbl) AND a.attname = colname
          AND NOT a.atthasdef AND a.attgenerated = '' AND a.attidentity = ''
      ) THEN
        PERFORM pg_temp.dbci_try(format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, colname, def));
      END IF;
    END IF;
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbci_constraint(tbl text, con text, def text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF to_regclass(tbl) IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
             WHERE conrelid = to_regclass(tbl)
               AND (conname = con OR (def ILIKE 'primary key%' AND contype = 'p'))) THEN
    RETURN;
  END IF;
  EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', tbl, con, def);
EXCEPTION
  WHEN insufficient_privilege OR unique_violation OR invalid_table_definition
       OR duplicate_object OR duplicate_table THEN
    RAISE WARNING 'db-ci shim: constraint % on % not added: %', con, tbl, SQLERRM;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbci_index(idx text, stmt text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF to_regclass(idx) IS NOT NULL THEN
    RETURN;
  END IF;
  EXECUTE stmt;
EXCEPTION
  WHEN insufficient_privilege OR unique_violation OR duplicate_table OR undefined_table THEN
    RAISE WARNING 'db-ci shim: index % not created: %', idx, SQLERRM;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbci_rls(tbl text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF NOT (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = to_regclass(tbl)) THEN
    PERFORM pg_temp.dbci_try(format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl));
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbci_owner(kind text, obj text, new_owner text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  cur oid;
BEGIN
  cur := CASE kind
    WHEN 'TABLE'    THEN (SELECT relowner FROM pg_catalog.pg_class WHERE oid = to_regclass(obj))
    WHEN 'VIEW'     THEN (SELECT relowner FROM pg_catalog.pg_class WHERE oid = to_regclass(obj))
    WHEN 'FUNCTION' THEN (SELECT proowner FROM pg_catalog.pg_proc WHERE oid = to_regprocedure(obj))
    WHEN 'TYPE'     THEN (SELECT typowner FROM pg_catalog.pg_type WHERE oid = to_regtype(obj))
  END;
  IF cur IS NULL OR cur = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = new_owner) THEN
    RETURN;
  END IF;
  PERFORM pg_temp.dbci_try(format('ALTER %s %s OWNER TO %I', kind, obj, new_owner));
END
$fn$;
-- <<< dbci helpers

SELECT pg_temp.dbci_table('supabase_functions.migrations', ARRAY[
  $c$version text NOT NULL$c$,
  $c$inserted_at timestamp with time zone NOT NULL DEFAULT now()$c$
]);
SELECT pg_temp.dbci_constraint('supabase_functions.migrations', 'migrations_pkey', 'PRIMARY KEY (version)');
SELECT pg_temp.dbci_try($s$
  INSERT INTO supabase_functions.migrations (version)
  VALUES ('initial'), ('20210809183423_update_grants')
  ON CONFLICT DO NOTHING
$s$);

SELECT pg_temp.dbci_table('supabase_functions.hooks', ARRAY[
  $c$id bigserial NOT NULL$c$,
  $c$hook_table_id integer NOT NULL$c$,
  $c$hook_name text NOT NULL$c$,
  $c$created_at timestamp with time zone NOT NULL DEFAULT now()$c$,
  $c$request_id bigint$c$
]);
SELECT pg_temp.dbci_constraint('supabase_functions.hooks', 'hooks_pkey', 'PRIMARY KEY (id)');
SELECT pg_temp.dbci_index('supabase_functions.supabase_functions_hooks_request_id_idx',
  'CREATE INDEX supabase_functions_hooks_request_id_idx ON supabase_functions.hooks USING btree (request_id)');
SELECT pg_temp.dbci_index('supabase_functions.supabase_functions_hooks_h_table_id_h_name_idx',
  'CREATE INDEX supabase_functions_hooks_h_table_id_h_name_idx ON supabase_functions.hooks USING btree (hook_table_id, hook_name)');

-- Trigger arguments: url, method (GET|POST), headers json, params json,
-- timeout in ms; the literal 'null' means "not given".
SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION supabase_functions.http_request() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path TO 'supabase_functions'
AS $fn$
DECLARE
  request_id bigint;
  payload jsonb;
  url text := TG_ARGV[0]::text;
  method text := TG_ARGV[1]::text;
  headers jsonb := '{"Content-Type": "application/json"}'::jsonb;
  params jsonb := '{}'::jsonb;
  timeout_ms integer := 1000;
BEGIN
  IF url IS NULL OR url = 'null' THEN
    RAISE EXCEPTION 'url argument is missing';
  END IF;
  IF method IS NULL OR method = 'null' THEN
    RAISE EXCEPTION 'method argument is missing';
  END IF;
  IF TG_ARGV[2] IS NOT NULL AND TG_ARGV[2] <> 'null' THEN
    headers := TG_ARGV[2]::jsonb;
  END IF;
  IF TG_ARGV[3] IS NOT NULL AND TG_ARGV[3] <> 'null' THEN
    params := TG_ARGV[3]::jsonb;
  END IF;
  IF TG_ARGV[4] IS NOT NULL AND TG_ARGV[4] <> 'null' THEN
    timeout_ms := TG_ARGV[4]::integer;
  END IF;

  IF method NOT IN ('GET', 'POST') THEN
    RAISE EXCEPTION 'method argument % is invalid', method;
  END IF;

  IF to_regnamespace('net') IS NULL THEN
    RAISE WARNING 'db-ci: pg_net is not installed, webhook % on %.% was not queued (the platform enables pg_net with database webhooks)',
      TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME;
  ELSIF method = 'GET' THEN
    EXECUTE 'SELECT net.http_get($1, $2, $3, $4)'
      INTO request_id USING url, params, headers, timeout_ms;
  ELSE
    payload := jsonb_build_object(
      'old_record', OLD, 'record', NEW, 'type', TG_OP,
      'table', TG_TABLE_NAME, 'schema', TG_TABLE_SCHEMA);
    EXECUTE 'SELECT net.http_post($1, $2, $3, $4, $5)'
      INTO request_id USING url, payload, params, headers, timeout_ms;
  END IF;

  INSERT INTO supabase_functions.hooks (hook_table_id, hook_name, request_id)
  VALUES (TG_RELID, TG_NAME, request_id);

  RETURN NEW;
END
$fn$
$ddl$);

DO $shim$
BEGIN
  PERFORM pg_temp.dbci_owner('TABLE', 'supabase_functions.migrations', 'supabase_functions_admin');
  PERFORM pg_temp.dbci_owner('TABLE', 'supabase_functions.hooks', 'supabase_functions_admin');
  PERFORM pg_temp.dbci_owner('FUNCTION', 'supabase_functions.http_request()', 'supabase_functions_admin');
END
$shim$;

SELECT pg_temp.dbci_try($g$REVOKE ALL ON FUNCTION supabase_functions.http_request() FROM PUBLIC$g$);
SELECT pg_temp.dbci_try($g$GRANT EXECUTE ON FUNCTION supabase_functions.http_request() TO postgres, anon, authenticated, service_role$g$);
SELECT pg_temp.dbci_try($g$GRANT ALL ON ALL TABLES IN SCHEMA supabase_functions TO supabase_functions_admin, postgres, anon, authenticated, service_role$g$);
SELECT pg_temp.dbci_try($g$GRANT ALL ON ALL SEQUENCES IN SCHEMA supabase_functions TO supabase_functions_admin, postgres, anon, authenticated, service_role$g$);

-- drop the session-local helpers (the connection may be reused)
DROP FUNCTION pg_temp.dbci_try(text), pg_temp.dbci_table(text, text[]),
  pg_temp.dbci_constraint(text, text, text), pg_temp.dbci_index(text, text),
  pg_temp.dbci_rls(text), pg_temp.dbci_owner(text, text, text);
