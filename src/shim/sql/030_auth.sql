-- db-ci platform shim, part 030: the auth schema as GoTrue leaves it.
--
-- Tables carry GoTrue's current column set in GoTrue's column order. On a
-- database that already has them (supabase/postgres image, whose init scripts
-- create the 2020 layout and leave the rest to GoTrue) existing tables are
-- kept and only missing columns, constraints and indexes are added; nothing
-- is dropped or rewritten.
--
-- Deliberate differences from GoTrue (documented in src/shim/README.md): a
-- few columns have defaults GoTrue itself always fills in (id, instance_id,
-- aud, role, metadata, timestamps, empty token strings), so seeds and test
-- helpers that insert only some columns get the row GoTrue would have made.

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

-- ---------------------------------------------------------------- types

DO $shim$
BEGIN
  IF to_regtype('auth.aal_level') IS NULL THEN
    CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');
  END IF;
END
$shim$;

-- ---------------------------------------------------------------- auth.users

-- GoTrue's own history on a 2020-layout table (supabase/postgres image):
-- confirmed_at became email_confirmed_at, email_change_token became
-- email_change_token_new. Replayed only when the old name is still there.
DO $shim$
BEGIN
  IF to_regclass('auth.users') IS NULL THEN
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                 WHERE attrelid = 'auth.users'::regclass AND attname = 'email_confirmed_at' AND NOT attisdropped)
     AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                 WHERE attrelid = 'auth.users'::regclass AND attname = 'confirmed_at'
                   AND attgenerated = '' AND NOT attisdropped) THEN
    PERFORM pg_temp.dbci_try('ALTER TABLE auth.users RENAME COLUMN confirmed_at TO email_confirmed_at');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                 WHERE attrelid = 'auth.users'::regclass AND attname = 'email_change_token_new' AND NOT attisdropped)
     AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                 WHERE attrelid = 'auth.users'::regclass AND attname = 'email_change_token' AND NOT attisdropped) THEN
    PERFORM pg_temp.dbci_try('ALTER TABLE auth.users RENAME COLUMN email_change_token TO email_change_token_new');
  END IF;
END
$shim$;

SELECT pg_temp.dbci_table('auth.users', ARRAY[
  $c$instance_id uuid DEFAULT '00000000-0000-0000-0000-000000000000'::uuid$c$,
  $c$id uuid NOT NULL DEFAULT gen_random_uuid()$c$,
  $c$aud character varying(255) DEFAULT 'authenticated'::character varying$c$,
  $c$"role" character varying(255) DEFAULT 'authenticated'::character varying$c$,
  $c$email character varying(255)$c$,
  $c$encrypted_password character varying(255)$c$,
  $c$email_confirmed_at timestamp with time zone$c$,
  $c$invited_at timestamp with time zone$c$,
  $c$confirmation_token character varying(255) DEFAULT ''::character varying$c$,
  $c$confirmation_sent_at timestamp with time zone$c$,
  $c$recovery_token character varying(255) DEFAULT ''::character varying$c$,
  $c$recovery_sent_at timestamp with time zone$c$,
  $c$email_change_token_new character varying(255) DEFAULT ''::character varying$c$,
  $c$email_change character varying(255) DEFAULT ''::character varying$c$,
  $c$email_change_sent_at timestamp with time zone$c$,
  $c$last_sign_in_at timestamp with time zone$c$,
  $c$raw_app_meta_data jsonb DEFAULT '{"provider": "email", "providers": ["email"]}'::jsonb$c$,
  $c$raw_user_meta_data jsonb DEFAULT '{}'::jsonb$c$,
  $c$is_super_admin boolean$c$,
  $c$created_at timestamp with time zone DEFAULT now()$c$,
  $c$updated_at timestamp with time zone DEFAULT now()$c$,
  $c$phone text DEFAULT NULL::character varying$c$,
  $c$phone_confirmed_at timestamp with time zone$c$,
  $c$phone_change text DEFAULT ''::character varying$c$,
  $c$phone_change_token character varying(255) DEFAULT ''::character varying$c$,
  $c$phone_change_sent_at timestamp with time zone$c$,
  $c$confirmed_at timestamp with time zone GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED$c$,
  $c$email_change_token_current character varying(255) DEFAULT ''::character varying$c$,
  $c$email_change_confirm_status smallint DEFAULT 0$c$,
  $c$banned_until timestamp with time zone$c$,
  $c$reauthentication_token character varying(255) DEFAULT ''::character varying$c$,
  $c$reauthentication_sent_at timestamp with time zone$c$,
  $c$is_sso_user boolean NOT NULL DEFAULT false$c$,
  $c$deleted_at timestamp with time zone$c$,
  $c$is_anonymous boolean NOT NULL DEFAULT false$c$
]);
SELECT pg_temp.dbci_constraint('auth.users', 'users_pkey', 'PRIMARY KEY (id)');
SELECT pg_temp.dbci_constraint('auth.users', 'users_phone_key', 'UNIQUE (phone)');
SELECT pg_temp.dbci_constraint('auth.users', 'users_email_change_confirm_status_check',
  'CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2)');
SELECT pg_temp.dbci_index('auth.users_email_partial_key',
  'CREATE UNIQUE INDEX users_email_partial_key ON auth.users (email) WHERE (is_sso_user = false)');
SELECT pg_temp.dbci_index('auth.users_instance_id_email_idx',
  'CREATE INDEX users_instance_id_email_idx ON auth.users (instance_id, lower((email)::text))');
SELECT pg_temp.dbci_index('auth.users_instance_id_idx',
  'CREATE INDEX users_instance_id_idx ON auth.users (instance_id)');
SELECT pg_temp.dbci_index('auth.users_is_anonymous_idx',
  'CREATE INDEX users_is_anonymous_idx ON auth.users (is_anonymous)');
-- GoTrue's token uniqueness: empty, blank and numeric (OTP) values are exempt.
SELECT pg_temp.dbci_index('auth.confirmation_token_idx',
  $s$CREATE UNIQUE INDEX confirmation_token_idx ON auth.users (confirmation_token) WHERE ((confirmation_token)::text !~ '^[0-9 ]*$'::text)$s$);
SELECT pg_temp.dbci_index('auth.recovery_token_idx',
  $s$CREATE UNIQUE INDEX recovery_token_idx ON auth.users (recovery_token) WHERE ((recovery_token)::text !~ '^[0-9 ]*$'::text)$s$);
SELECT pg_temp.dbci_index('auth.email_change_token_current_idx',
  $s$CREATE UNIQUE INDEX email_change_token_current_idx ON auth.users (email_change_token_current) WHERE ((email_change_token_current)::text !~ '^[0-9 ]*$'::text)$s$);
SELECT pg_temp.dbci_index('auth.email_change_token_new_idx',
  $s$CREATE UNIQUE INDEX email_change_token_new_idx ON auth.users (email_change_token_new) WHERE ((email_change_token_new)::text !~ '^[0-9 ]*$'::text)$s$);
SELECT pg_temp.dbci_index('auth.reauthentication_token_idx',
  $s$CREATE UNIQUE INDEX reauthentication_token_idx ON auth.users (reauthentication_token) WHERE ((reauthentication_token)::text !~ '^[0-9 ]*$'::text)$s$);

-- ---------------------------------------------------------------- auth.identities

SELECT pg_temp.dbci_table('auth.identities', ARRAY[
  $c$provider_id text NOT NULL$c$,
  $c$user_id uuid NOT NULL$c$,
  $c$identity_data jsonb NOT NULL$c$,
  $c$provider text NOT NULL$c$,
  $c$last_sign_in_at timestamp with time zone$c$,
  $c$created_at timestamp with time zone DEFAULT now()$c$,
  $c$updated_at timestamp with time zone DEFAULT now()$c$,
  $c$email text GENERATED ALWAYS AS (lower((identity_data ->> 'email'::text))) STORED$c$,
  $c$id uuid NOT NULL DEFAULT gen_random_uuid()$c$
]);
SELECT pg_temp.dbci_constraint('auth.identities', 'identities_pkey', 'PRIMARY KEY (id)');
SELECT pg_temp.dbci_constraint('auth.identities', 'identities_provider_id_provider_unique',
  'UNIQUE (provider_id, provider)');
SELECT pg_temp.dbci_constraint('auth.identities', 'identities_user_id_fkey',
  'FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE');
SELECT pg_temp.dbci_index('auth.identities_email_idx',
  'CREATE INDEX identities_email_idx ON auth.identities (email text_pattern_ops)');
SELECT pg_temp.dbci_index('auth.identities_user_id_idx',
  'CREATE INDEX identities_user_id_idx ON auth.identities (user_id)');

-- ---------------------------------------------------------------- sessions, tokens

SELECT pg_temp.dbci_table('auth.sessions', ARRAY[
  $c$id uuid NOT NULL DEFAULT gen_random_uuid()$c$,
  $c$user_id uuid NOT NULL$c$,
  $c$created_at timestamp with time zone DEFAULT now()$c$,
  $c$updated_at timestamp with time zone DEFAULT now()$c$,
  $c$factor_id uuid$c$,
  $c$aal auth.aal_level$c$,
  $c$not_after timestamp with time zone$c$,
  $c$refreshed_at timestamp without time zone$c$,
  $c$user_agent text$c$,
  $c$ip inet$c$,
  $c$tag text$c$
]);
SELECT pg_temp.dbci_constraint('auth.sessions', 'sessions_pkey', 'PRIMARY KEY (id)');
SELECT pg_temp.dbci_constraint('auth.sessions', 'sessions_user_id_fkey',
  'FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE');
SELECT pg_temp.dbci_index('auth.sessions_user_id_idx',
  'CREATE INDEX sessions_user_id_idx ON auth.sessions (user_id)');

SELECT pg_temp.dbci_table('auth.refresh_tokens', ARRAY[
  $c$instance_id uuid$c$,
  $c$id bigserial NOT NULL$c$,
  $c$token character varying(255)$c$,
  $c$user_id character varying(255)$c$,
  $c$revoked boolean$c$,
  $c$created_at timestamp with time zone DEFAULT now()$c$,
  $c$updated_at timestamp with time zone DEFAULT now()$c$,
  $c$parent character varying(255)$c$,
  $c$session_id uuid$c$
]);
SELECT pg_temp.dbci_constraint('auth.refresh_tokens', 'refresh_tokens_pkey', 'PRIMARY KEY (id)');
SELECT pg_temp.dbci_constraint('auth.refresh_tokens', 'refresh_tokens_token_unique', 'UNIQUE (token)');
SELECT pg_temp.dbci_constraint('auth.refresh_tokens', 'refresh_tokens_session_id_fkey',
  'FOREIGN KEY (session_id) REFERENCES auth.sessions(id) ON DELETE CASCADE');
SELECT pg_temp.dbci_index('auth.refresh_tokens_instance_id_user_id_idx',
  'CREATE INDEX refresh_tokens_instance_id_user_id_idx ON auth.refresh_tokens (instance_id, user_id)');
SELECT pg_temp.dbci_index('auth.refresh_tokens_session_id_revoked_idx',
  'CREATE INDEX refresh_tokens_session_id_revoked_idx ON auth.refresh_tokens (session_id, revoked)');

SELECT pg_temp.dbci_table('auth.audit_log_entries', ARRAY[
  $c$instance_id uuid$c$,
  $c$id uuid NOT NULL$c$,
  $c$payload json$c$,
  $c$created_at timestamp with time zone$c$,
  $c$ip_address character varying(64) NOT NULL DEFAULT ''::character varying$c$
]);
SELECT pg_temp.dbci_constraint('auth.audit_log_entries', 'audit_log_entries_pkey', 'PRIMARY KEY (id)');

SELECT pg_temp.dbci_table('auth.instances', ARRAY[
  $c$id uuid NOT NULL$c$,
  $c$uuid uuid$c$,
  $c$raw_base_config text$c$,
  $c$created_at timestamp with time zone$c$,
  $c$updated_at timestamp with time zone$c$
]);
SELECT pg_temp.dbci_constraint('auth.instances', 'instances_pkey', 'PRIMARY KEY (id)');

SELECT pg_temp.dbci_table('auth.schema_migrations', ARRAY[
  $c$version character varying(255) NOT NULL$c$
]);
SELECT pg_temp.dbci_constraint('auth.schema_migrations', 'schema_migrations_pkey', 'PRIMARY KEY (version)');

-- ---------------------------------------------------------------- functions
-- Exactly Supabase's definitions: the legacy per-claim setting first, then the
-- key of request.jwt.claims; empty strings count as unset.

SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
AS $fn$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$fn$
$ddl$);

SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
AS $fn$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$fn$
$ddl$);

SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION auth.email() RETURNS text
LANGUAGE sql STABLE
AS $fn$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$fn$
$ddl$);

SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE
AS $fn$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$fn$
$ddl$);

SELECT pg_temp.dbci_try($s$COMMENT ON FUNCTION auth.uid() IS 'Deprecated. Use auth.jwt() -> ''sub'' instead.'$s$);
SELECT pg_temp.dbci_try($s$COMMENT ON FUNCTION auth.role() IS 'Deprecated. Use auth.jwt() -> ''role'' instead.'$s$);

-- ---------------------------------------------------------------- RLS, owners, grants
-- GoTrue enables RLS on its tables (no policies: only their owner and
-- BYPASSRLS roles read them) and owns them as supabase_auth_admin.

DO $shim$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['auth.users', 'auth.identities', 'auth.sessions', 'auth.refresh_tokens',
                           'auth.audit_log_entries', 'auth.instances', 'auth.schema_migrations'] LOOP
    PERFORM pg_temp.dbci_rls(t);
    PERFORM pg_temp.dbci_owner('TABLE', t, 'supabase_auth_admin');
  END LOOP;
  PERFORM pg_temp.dbci_owner('TYPE', 'auth.aal_level', 'supabase_auth_admin');
  FOREACH t IN ARRAY ARRAY['auth.uid()', 'auth.role()', 'auth.email()', 'auth.jwt()'] LOOP
    PERFORM pg_temp.dbci_owner('FUNCTION', t, 'supabase_auth_admin');
  END LOOP;
END
$shim$;

SELECT pg_temp.dbci_try($s$COMMENT ON TABLE auth.users IS 'Auth: Stores user login data within a secure schema.'$s$);
SELECT pg_temp.dbci_try($s$COMMENT ON TABLE auth.identities IS 'Auth: Stores identities associated to a user.'$s$);
SELECT pg_temp.dbci_try($s$COMMENT ON TABLE auth.sessions IS 'Auth: Stores session data associated to a user.'$s$);
SELECT pg_temp.dbci_try($s$COMMENT ON TABLE auth.refresh_tokens IS 'Auth: Store of tokens used to refresh JWT tokens once they expire.'$s$);
SELECT pg_temp.dbci_try($s$COMMENT ON TABLE auth.audit_log_entries IS 'Auth: Audit trail for user actions.'$s$);
SELECT pg_temp.dbci_try($s$COMMENT ON TABLE auth.instances IS 'Auth: Manages users across multiple sites.'$s$);
SELECT pg_temp.dbci_try($s$COMMENT ON TABLE auth.schema_migrations IS 'Auth: Manages updates to the auth system.'$s$);

SELECT pg_temp.dbci_try($g$GRANT ALL ON ALL TABLES    IN SCHEMA auth TO supabase_auth_admin, postgres, dashboard_user$g$);
SELECT pg_temp.dbci_try($g$GRANT ALL ON ALL SEQUENCES IN SCHEMA auth TO supabase_auth_admin, postgres, dashboard_user$g$);
SELECT pg_temp.dbci_try($g$GRANT EXECUTE ON FUNCTION auth.uid(), auth.role(), auth.email(), auth.jwt()
  TO postgres, anon, authenticated, service_role, dashboard_user$g$);

-- drop the session-local helpers (the connection may be reused)
DROP FUNCTION pg_temp.dbci_try(text), pg_temp.dbci_table(text, text[]),
  pg_temp.dbci_constraint(text, text, text), pg_temp.dbci_index(text, text),
  pg_temp.dbci_rls(text), pg_temp.dbci_owner(text, text, text);
