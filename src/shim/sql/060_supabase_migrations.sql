-- db-ci platform shim, part 060: the Supabase CLI's migration ledger.
--
-- The CLI records every applied migration file in schema_migrations (version =
-- the file's numeric prefix) and every applied seed file with its content
-- hash in seed_files (a seed whose hash is unchanged is skipped). db-ci's
-- ledger mode writes the same tables. Owned by the connected role, as the CLI
-- creates them as postgres.

CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (
  version text NOT NULL PRIMARY KEY,
  statements text[],
  name text
);

CREATE TABLE IF NOT EXISTS supabase_migrations.seed_files (
  path text NOT NULL PRIMARY KEY,
  hash text NOT NULL
);
