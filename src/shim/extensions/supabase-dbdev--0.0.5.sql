-- db-ci stub of supabase-dbdev: dbdev.install(package) for the packages db-ci ships.
\echo Use "CREATE EXTENSION ""supabase-dbdev""" to load this file. \quit

CREATE SCHEMA IF NOT EXISTS dbdev;

CREATE FUNCTION dbdev.install(package_name text) RETURNS boolean
LANGUAGE plpgsql
AS $dbci$
BEGIN
  IF package_name IN ('supabase-dbdev', 'basejump-supabase_test_helpers') THEN
    RETURN true;
  END IF;
  RAISE EXCEPTION 'db-ci stub of dbdev: package "%" is not available offline', package_name
    USING HINT = 'db-ci ships basejump-supabase_test_helpers; install other packages in a migration';
END
$dbci$;
