-- db-ci stub of supabase_vault 1.0: Vault's SQL API without encryption.
-- Schema vault is created by CREATE EXTENSION (the control file pins it).
\echo Use "CREATE EXTENSION supabase_vault" to load this file. \quit

CREATE TABLE vault.secrets (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text,
  description text NOT NULL DEFAULT '',
  secret text NOT NULL,
  key_id uuid,
  nonce bytea,
  created_at timestamp with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at timestamp with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP
);

COMMENT ON TABLE vault.secrets IS
  'Table with the `secret` column for storing sensitive information (db-ci stub: NOT encrypted).';

CREATE UNIQUE INDEX secrets_name_idx ON vault.secrets USING btree (name) WHERE name IS NOT NULL;

-- Secrets are user data: dumped with the database, as with the real Vault.
SELECT pg_catalog.pg_extension_config_dump('vault.secrets', '');

-- With the real Vault `secret` holds ciphertext and this view decrypts it;
-- the stub stores the plain value, so both columns are equal.
CREATE VIEW vault.decrypted_secrets AS
SELECT s.id,
       s.name,
       s.description,
       s.secret,
       s.secret AS decrypted_secret,
       s.key_id,
       s.nonce,
       s.created_at,
       s.updated_at
FROM vault.secrets s;

CREATE FUNCTION vault.create_secret(
  new_secret text,
  new_name text DEFAULT NULL,
  new_description text DEFAULT '',
  new_key_id uuid DEFAULT NULL  -- unused, as in Vault 0.3
)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path TO ''
AS $fn$
DECLARE
  new_id uuid;
BEGIN
  INSERT INTO vault.secrets (secret, name, description)
  VALUES (new_secret, new_name, coalesce(new_description, ''))
  RETURNING id INTO new_id;
  RETURN new_id;
END
$fn$;

CREATE FUNCTION vault.update_secret(
  secret_id uuid,
  new_secret text DEFAULT NULL,
  new_name text DEFAULT NULL,
  new_description text DEFAULT NULL,
  new_key_id uuid DEFAULT NULL  -- unused, as in Vault 0.3
)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path TO ''
AS $fn$
BEGIN
  UPDATE vault.secrets s
  SET secret      = coalesce(new_secret, s.secret),
      name        = coalesce(new_name, s.name),
      description = coalesce(new_description, s.description),
      updated_at  = now()
  WHERE s.id = secret_id;
END
$fn$;

REVOKE ALL ON FUNCTION vault.create_secret(text, text, text, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION vault.update_secret(uuid, text, text, text, uuid) FROM PUBLIC;

-- Only postgres (with grant option, so migrations can pass access on) gets
-- Vault; the API roles get nothing unless a migration grants it.
DO $grants$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'postgres') THEN
    GRANT USAGE ON SCHEMA vault TO postgres WITH GRANT OPTION;
    GRANT SELECT, DELETE ON vault.secrets, vault.decrypted_secrets TO postgres WITH GRANT OPTION;
    GRANT EXECUTE ON FUNCTION vault.create_secret(text, text, text, uuid),
                              vault.update_secret(uuid, text, text, text, uuid)
      TO postgres WITH GRANT OPTION;
  END IF;
END
$grants$;
