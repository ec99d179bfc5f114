-- db-ci platform shim, part 040: the storage schema as Supabase Storage leaves
-- it (the columns policies and seeds touch; no search/prefix machinery).
--
-- Existing tables are kept; only missing columns, constraints and indexes are
-- added. Owners follow the platform (supabase_storage_admin); RLS is enabled
-- on buckets and objects, and the API roles hold ALL on the tables (RLS is the
-- only protection, as on the platform).

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

-- ---------------------------------------------------------------- tables

SELECT pg_temp.dbci_table('storage.buckets', ARRAY[
  $c$id text NOT NULL$c$,
  $c$name text NOT NULL$c$,
  $c$owner uuid$c$,
  $c$created_at timestamp with time zone DEFAULT now()$c$,
  $c$updated_at timestamp with time zone DEFAULT now()$c$,
  $c$public boolean DEFAULT false$c$,
  $c$avif_autodetection boolean DEFAULT false$c$,
  $c$file_size_limit bigint$c$,
  $c$allowed_mime_types text[]$c$,
  $c$owner_id text$c$
]);
SELECT pg_temp.dbci_constraint('storage.buckets', 'buckets_pkey', 'PRIMARY KEY (id)');
SELECT pg_temp.dbci_index('storage.bname',
  'CREATE UNIQUE INDEX bname ON storage.buckets USING btree (name)');

SELECT pg_temp.dbci_table('storage.objects', ARRAY[
  $c$id uuid NOT NULL DEFAULT gen_random_uuid()$c$,
  $c$bucket_id text$c$,
  $c$name text$c$,
  $c$owner uuid$c$,
  $c$created_at timestamp with time zone DEFAULT now()$c$,
  $c$updated_at timestamp with time zone DEFAULT now()$c$,
  $c$last_accessed_at timestamp with time zone DEFAULT now()$c$,
  $c$metadata jsonb$c$,
  $c$path_tokens text[] GENERATED ALWAYS AS (string_to_array(name, '/'::text)) STORED$c$,
  $c$version text$c$,
  $c$owner_id text$c$,
  $c$user_metadata jsonb$c$
]);
SELECT pg_temp.dbci_constraint('storage.objects', 'objects_pkey', 'PRIMARY KEY (id)');
SELECT pg_temp.dbci_constraint('storage.objects', 'objects_bucketId_fkey',
  'FOREIGN KEY (bucket_id) REFERENCES storage.buckets(id)');
SELECT pg_temp.dbci_index('storage.bucketid_objname',
  'CREATE UNIQUE INDEX bucketid_objname ON storage.objects USING btree (bucket_id, name)');
SELECT pg_temp.dbci_index('storage.name_prefix_search',
  'CREATE INDEX name_prefix_search ON storage.objects USING btree (name text_pattern_ops)');

SELECT pg_temp.dbci_table('storage.migrations', ARRAY[
  $c$id integer NOT NULL$c$,
  $c$name character varying(100) NOT NULL$c$,
  $c$hash character varying(40) NOT NULL$c$,
  $c$executed_at timestamp without time zone DEFAULT CURRENT_TIMESTAMP$c$
]);
SELECT pg_temp.dbci_constraint('storage.migrations', 'migrations_pkey', 'PRIMARY KEY (id)');
SELECT pg_temp.dbci_constraint('storage.migrations', 'migrations_name_key', 'UNIQUE (name)');

-- ---------------------------------------------------------------- functions
-- Supabase Storage's semantics, including its edge cases:
--   foldername('a/b/c.png') = {a,b}   foldername('c.png') = {}
--   filename('a/b/c.png')   = 'c.png'
--   extension('a/b/c.tar.gz') = 'gz'  extension('a/README') = 'README'
--   (no dot: the whole file name, because Storage takes the text after the
--   last '.' by splitting the reversed name)

SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION storage.foldername(name text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
  _parts text[] := string_to_array(name, '/');
BEGIN
  -- every path segment but the last
  RETURN _parts[1 : array_length(_parts, 1) - 1];
END
$fn$
$ddl$);

SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION storage.filename(name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
  _parts text[] := string_to_array(name, '/');
BEGIN
  -- the last path segment
  RETURN _parts[array_length(_parts, 1)];
END
$fn$
$ddl$);

SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION storage.extension(name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
  _parts text[] := string_to_array(name, '/');
  _filename text := _parts[array_length(_parts, 1)];
BEGIN
  -- what follows the file name's last '.'; the whole name when it has none
  RETURN reverse(split_part(reverse(_filename), '.', 1));
END
$fn$
$ddl$);

-- ---------------------------------------------------------------- RLS, owners, grants

DO $shim$
DECLARE
  t text;
BEGIN
  PERFORM pg_temp.dbci_rls('storage.buckets');
  PERFORM pg_temp.dbci_rls('storage.objects');
  FOREACH t IN ARRAY ARRAY['storage.buckets', 'storage.objects', 'storage.migrations'] LOOP
    PERFORM pg_temp.dbci_owner('TABLE', t, 'supabase_storage_admin');
  END LOOP;
  FOREACH t IN ARRAY ARRAY['storage.foldername(text)', 'storage.filename(text)', 'storage.extension(text)'] LOOP
    PERFORM pg_temp.dbci_owner('FUNCTION', t, 'supabase_storage_admin');
  END LOOP;
  -- Objects Storage creates later get the API grants (platform default ACL).
  FOREACH t IN ARRAY ARRAY['TABLES', 'FUNCTIONS', 'SEQUENCES'] LOOP
    PERFORM pg_temp.dbci_try(format(
      'ALTER DEFAULT PRIVILEGES FOR ROLE supabase_storage_admin IN SCHEMA storage '
      'GRANT ALL ON %s TO postgres, anon, authenticated, service_role', t));
  END LOOP;
END
$shim$;

SELECT pg_temp.dbci_try($g$GRANT ALL ON storage.buckets, storage.objects
  TO postgres, anon, authenticated, service_role, dashboard_user$g$);
SELECT pg_temp.dbci_try($g$GRANT SELECT ON storage.migrations TO postgres, anon, authenticated, service_role$g$);
SELECT pg_temp.dbci_try($g$GRANT ALL ON ALL TABLES IN SCHEMA storage TO supabase_storage_admin$g$);
SELECT pg_temp.dbci_try($g$GRANT EXECUTE ON FUNCTION storage.foldername(text), storage.filename(text), storage.extension(text)
  TO postgres, anon, authenticated, service_role, dashboard_user$g$);

-- drop the session-local helpers (the connection may be reused)
DROP FUNCTION pg_temp.dbci_try(text), pg_temp.dbci_table(text, text[]),
  pg_temp.dbci_constraint(text, text, text), pg_temp.dbci_index(text, text),
  pg_temp.dbci_rls(text), pg_temp.dbci_owner(text, text, text);
