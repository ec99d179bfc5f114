-- Platform roles: attributes, memberships and role-level settings.
-- Runs as the superuser in a database where the shim was applied; passes iff
-- no statement raises.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT unnest(ARRAY['anon', 'authenticated', 'service_role', 'authenticator',
                               'supabase_admin', 'supabase_auth_admin', 'supabase_storage_admin',
                               'dashboard_user', 'pgbouncer', 'postgres']) AS name
  LOOP
    ASSERT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name), format('role %s is missing', r.name);
  END LOOP;

  -- API roles: no login, inherit (since 2023), never superuser
  FOR r IN SELECT * FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role') LOOP
    ASSERT NOT r.rolcanlogin, format('%s must be NOLOGIN', r.rolname);
    ASSERT r.rolinherit, format('%s must be INHERIT', r.rolname);
    ASSERT NOT r.rolsuper, format('%s must not be superuser', r.rolname);
  END LOOP;
  ASSERT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role'), 'service_role must be BYPASSRLS';
  ASSERT NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'anon'), 'anon must not bypass RLS';
  ASSERT NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'authenticated'), 'authenticated must not bypass RLS';

  -- PostgREST's login role
  ASSERT NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'authenticator'), 'authenticator must be NOLOGIN (nothing logs in as it here)';
  ASSERT NOT (SELECT rolinherit FROM pg_roles WHERE rolname = 'authenticator'), 'authenticator must be NOINHERIT';
  ASSERT NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'authenticator'),
    'authenticator must have no special power';
  ASSERT pg_has_role('authenticator', 'anon', 'MEMBER'), 'authenticator must be member of anon';
  ASSERT pg_has_role('authenticator', 'authenticated', 'MEMBER'), 'authenticator must be member of authenticated';
  ASSERT pg_has_role('authenticator', 'service_role', 'MEMBER'), 'authenticator must be member of service_role';
  ASSERT NOT pg_has_role('authenticator', 'supabase_admin', 'MEMBER'), 'authenticator must not reach supabase_admin';

  -- postgres may SET ROLE to the API roles
  ASSERT pg_has_role('postgres', 'anon', 'MEMBER'), 'postgres must be granted anon';
  ASSERT pg_has_role('postgres', 'authenticated', 'MEMBER'), 'postgres must be granted authenticated';
  ASSERT pg_has_role('postgres', 'service_role', 'MEMBER'), 'postgres must be granted service_role';

  ASSERT (SELECT rolsuper FROM pg_roles WHERE rolname = 'supabase_admin'), 'supabase_admin must be superuser';

  -- the CLI's statement timeouts
  ASSERT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_roles ro ON ro.oid = s.setrole
                 WHERE ro.rolname = 'anon' AND s.setdatabase = 0
                   AND 'statement_timeout=3s' = ANY (s.setconfig)), 'anon statement_timeout must be 3s';
  ASSERT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_roles ro ON ro.oid = s.setrole
                 WHERE ro.rolname = 'authenticated' AND s.setdatabase = 0
                   AND 'statement_timeout=8s' = ANY (s.setconfig)), 'authenticated statement_timeout must be 8s';
END
$$;

-- The roles really work as SET ROLE targets, and RLS bypass is what the
-- catalog says.
BEGIN;
SET LOCAL ROLE anon;
DO $$ BEGIN
  ASSERT current_user = 'anon', 'SET ROLE anon failed';
  ASSERT NOT (SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user), 'anon bypasses RLS';
END $$;
RESET ROLE;
SET LOCAL ROLE service_role;
DO $$ BEGIN
  ASSERT current_user = 'service_role', 'SET ROLE service_role failed';
  ASSERT (SELECT rolbypassrls AND NOT rolsuper FROM pg_roles WHERE rolname = current_user),
    'service_role must bypass RLS without being superuser';
END $$;
ROLLBACK;
