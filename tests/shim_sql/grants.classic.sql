-- Classic grant mode: what anon/authenticated/service_role may do to objects
-- created in public after the shim (RLS is then the only protection).
BEGIN;
CREATE TABLE public.t_new (id integer PRIMARY KEY, v text);
CREATE SEQUENCE public.s_new;
CREATE FUNCTION public.f_new() RETURNS integer LANGUAGE sql AS 'select 1';
CREATE VIEW public.v_new AS SELECT 1 AS x;
SET LOCAL ROLE supabase_admin;
CREATE TABLE public.t_admin (id integer PRIMARY KEY);
RESET ROLE;

DO $$
DECLARE
  r text;
  p text;
BEGIN
  FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role', 'postgres'] LOOP
    FOREACH p IN ARRAY ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] LOOP
      ASSERT has_table_privilege(r, 'public.t_new', p), format('%s must have %s on a new table', r, p);
      ASSERT has_table_privilege(r, 'public.t_admin', p), format('%s must have %s on a table made by supabase_admin', r, p);
    END LOOP;
    ASSERT has_table_privilege(r, 'public.v_new', 'SELECT'), format('%s must read a new view', r);
    ASSERT has_sequence_privilege(r, 'public.s_new', 'USAGE') AND has_sequence_privilege(r, 'public.s_new', 'SELECT')
       AND has_sequence_privilege(r, 'public.s_new', 'UPDATE'), format('%s must have ALL on a new sequence', r);
    ASSERT EXISTS (SELECT 1 FROM pg_proc, aclexplode(proacl) a
                   WHERE oid = 'public.f_new()'::regprocedure AND a.grantee = r::regrole AND a.privilege_type = 'EXECUTE'),
      format('%s must be granted EXECUTE on a new function explicitly', r);
  END LOOP;
END
$$;

-- really doing it
SET LOCAL ROLE anon;
DO $$ BEGIN
  INSERT INTO public.t_new VALUES (1, 'anon wrote');
  UPDATE public.t_new SET v = 'anon updated';
  ASSERT (SELECT v FROM public.t_new) = 'anon updated', 'anon can read and write a new table without RLS';
  ASSERT nextval('public.s_new') = 1, 'anon can use a new sequence';
  ASSERT public.f_new() = 1, 'anon can execute a new function';
  DELETE FROM public.t_new;
END $$;
RESET ROLE;
SET LOCAL ROLE service_role;
DO $$ BEGIN
  INSERT INTO public.t_new VALUES (2, 'service');
  ASSERT (SELECT count(*) FROM public.t_new) = 1, 'service_role can write a new table';
END $$;
RESET ROLE;

-- and RLS is what protects it once enabled
ALTER TABLE public.t_new ENABLE ROW LEVEL SECURITY;
SET LOCAL ROLE authenticated;
DO $$ BEGIN
  ASSERT (SELECT count(*) FROM public.t_new) = 0, 'RLS without policy hides everything';
END $$;
RESET ROLE;
ROLLBACK;

-- the default ACLs themselves
DO $$
BEGIN
  ASSERT (SELECT count(*) FROM pg_default_acl d
          WHERE d.defaclnamespace = 'public'::regnamespace
            AND d.defaclrole IN ('postgres'::regrole, 'supabase_admin'::regrole)) = 6,
    'postgres and supabase_admin must each have default ACLs for tables, functions and sequences in public';
END
$$;
