-- db-ci platform shim, part 000: cluster roles.
--
-- Roles are cluster-global: another database on the same server may have had
-- the shim already, or the server is a supabase/postgres image whose roles
-- exist. Everything here creates only what is missing, changes an attribute
-- only when it differs, and degrades to a WARNING when the connected role is
-- not allowed to change something that is already there.
--
-- Deliberate differences from a hosted project (see src/shim/README.md):
--   * postgres is created as the platform demotes it where the server has
--     none (db-ci's own clusters, bootstrapped as supabase_admin); a
--     postgres that exists (the url backend's) is left as it is. Either way
--     RLS tests must SET ROLE to anon/authenticated/service_role.
--   * every role is created NOLOGIN, authenticator included: nothing logs in
--     as them here (db-ci impersonates with SET ROLE), and a passwordless
--     LOGIN role that can SET ROLE service_role must not appear on a server
--     db-ci was given; and
--     supabase_auth_admin/supabase_storage_admin get no CREATEROLE.

DO $shim$
DECLARE
  r   record;
  cur boolean;
BEGIN
  -- Serialise concurrent shim runs (several throwaway databases on one
  -- server) on a cluster-wide lock: pg_authid is a shared catalog, so this
  -- lock is seen from every database. Without the privilege to take it (a
  -- non-superuser on a supabase/postgres image) we go on unserialised.
  BEGIN
    LOCK TABLE pg_catalog.pg_authid IN SHARE ROW EXCLUSIVE MODE;
  EXCEPTION WHEN insufficient_privilege THEN
    NULL;
  END;

  -- 1. Create missing roles.
  FOR r IN
    SELECT * FROM (VALUES
      -- Only where the server has no such role (local and container clusters, whose
      -- bootstrap superuser is supabase_admin): the platform's demoted postgres.
      ('postgres',                 'LOGIN NOSUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS'),
      ('anon',                     'NOLOGIN INHERIT'),
      ('authenticated',            'NOLOGIN INHERIT'),
      ('service_role',             'NOLOGIN INHERIT BYPASSRLS'),
      ('authenticator',            'NOLOGIN NOINHERIT'),
      ('supabase_admin',           'NOLOGIN SUPERUSER CREATEDB CREATEROLE REPLICATION BYPASSRLS'),
      ('supabase_auth_admin',      'NOLOGIN NOINHERIT'),
      ('supabase_storage_admin',   'NOLOGIN NOINHERIT'),
      ('supabase_functions_admin', 'NOLOGIN NOINHERIT'),
      ('dashboard_user',           'NOLOGIN CREATEDB CREATEROLE REPLICATION'),
      ('pgbouncer',                'NOLOGIN')
    ) AS t(name, attrs)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', r.name, r.attrs);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created concurrently by another session
      END;
    END IF;
  END LOOP;

  -- 2. Attributes the platform relies on, enforced on pre-existing roles too.
  FOR r IN
    SELECT * FROM (VALUES
      ('anon',           'rolinherit',   true,  'INHERIT'),
      ('authenticated',  'rolinherit',   true,  'INHERIT'),
      ('service_role',   'rolinherit',   true,  'INHERIT'),
      ('service_role',   'rolbypassrls', true,  'BYPASSRLS'),
      ('authenticator',  'rolinherit',   false, 'NOINHERIT'),
      ('supabase_admin', 'rolsuper',     true,  'SUPERUSER')
    ) AS t(name, attr, want, clause)
  LOOP
    EXECUTE format('SELECT %I FROM pg_catalog.pg_roles WHERE rolname = $1', r.attr)
      INTO cur USING r.name;
    IF cur IS DISTINCT FROM r.want THEN
      BEGIN
        EXECUTE format('ALTER ROLE %I %s', r.name, r.clause);
      EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'db-ci shim: role % should be % but % may not change it',
          r.name, r.clause, current_user;
      END;
    END IF;
  END LOOP;

  -- 3. Memberships: PostgREST's authenticator switches to the API roles;
  --    postgres is granted them so it can SET ROLE like on a hosted project.
  --    Never to a role that can log in (on a server db-ci was lent, an
  --    authenticator with a password): through it, anyone holding the password
  --    could become service_role while a run lasts. A superuser can become any
  --    role anyway, and this cluster's own postgres is db-ci's.
  FOR r IN
    SELECT * FROM (VALUES
      ('anon',          'authenticator'),
      ('authenticated', 'authenticator'),
      ('service_role',  'authenticator'),
      ('anon',          'postgres'),
      ('authenticated', 'postgres'),
      ('service_role',  'postgres')
    ) AS t(granted, member)
  LOOP
    IF NOT EXISTS (
      SELECT 1
      FROM pg_catalog.pg_auth_members m
      JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
      JOIN pg_catalog.pg_roles u ON u.oid = m.member
      WHERE g.rolname = r.granted AND u.rolname = r.member
    ) AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_roles u
      WHERE u.rolname = r.member AND u.rolcanlogin AND NOT u.rolsuper
        AND u.rolname <> 'postgres'
    ) THEN
      BEGIN
        EXECUTE format('GRANT %I TO %I', r.granted, r.member);
      EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'db-ci shim: cannot grant % to % as %', r.granted, r.member, current_user;
      END;
    END IF;
  END LOOP;

  -- 4. Role-level settings (the CLI's globals; authenticator as on the platform).
  FOR r IN
    SELECT * FROM (VALUES
      ('anon',          'statement_timeout', '3s'),
      ('authenticated', 'statement_timeout', '8s'),
      ('authenticator', 'statement_timeout', '8s'),
      ('authenticator', 'lock_timeout',      '8s')
    ) AS t(name, setting, value)
  LOOP
    IF NOT EXISTS (
      SELECT 1
      FROM pg_catalog.pg_db_role_setting s
      JOIN pg_catalog.pg_roles ro ON ro.oid = s.setrole
      WHERE ro.rolname = r.name
        AND s.setdatabase = 0
        AND (r.setting || '=' || r.value) = ANY (s.setconfig)
    ) THEN
      BEGIN
        EXECUTE format('ALTER ROLE %I SET %I = %L', r.name, r.setting, r.value);
      EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'db-ci shim: cannot set %.% = % as %', r.name, r.setting, r.value, current_user;
      END;
    END IF;
  END LOOP;
END
$shim$;
