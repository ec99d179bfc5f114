-- db-ci stub of pg_tle 1.0: pgtle.install_extension / uninstall_extension(_if_exists) for
-- the packages db-ci ships as real extension files; nothing else can be installed from SQL.
\echo Use "CREATE EXTENSION pg_tle" to load this file. \quit

CREATE SCHEMA IF NOT EXISTS pgtle;

CREATE FUNCTION pgtle.install_extension(
  name text, version text, description text, ext text, requires text[] DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql
AS $dbci$
BEGIN
  IF name IN ('supabase-dbdev', 'basejump-supabase_test_helpers') THEN
    RETURN true;
  END IF;
  RAISE EXCEPTION 'db-ci stub of pg_tle cannot install extension "%" from SQL', name
    USING HINT = 'db-ci ships supabase-dbdev and basejump-supabase_test_helpers; other Trusted Language Extensions are not available';
END
$dbci$;

-- db-ci's packages are extension files, not Trusted Language Extensions: pg_tle holds
-- nothing that could be uninstalled.
CREATE FUNCTION pgtle.uninstall_extension(extname text) RETURNS boolean
LANGUAGE plpgsql
AS $dbci$
BEGIN
  RAISE EXCEPTION 'pg_tle: pgtle.uninstall_extension(): extension "%" is not installed as a Trusted Language Extension (db-ci ships its packages as extension files, which stay available)', extname;
END
$dbci$;

CREATE FUNCTION pgtle.uninstall_extension_if_exists(extname text) RETURNS boolean
LANGUAGE sql
AS $dbci$ SELECT false $dbci$;
