-- db-ci's test helpers implement the 0.0.6 API, a superset of what earlier versions
-- offered: a project pinning version '0.0.4' gets it through this empty update path.
\echo Use "CREATE EXTENSION ""basejump-supabase_test_helpers"" VERSION '0.0.4'" to load this file. \quit
