-- No-expose grant mode (auto_expose_new_tables = false, the 2026 default):
-- new objects in public are not reachable by the Data API roles until a
-- migration grants them — service_role included.
BEGIN;
-- Created as migrations create them: by postgres (the harness superuser is
-- supabase_admin on db-ci's own clusters).
SET LOCAL ROLE postgres;
CREATE TABLE public.t_new (id integer PRIMARY KEY, v text);
CREATE SEQUENCE public.s_new;
CREATE FUNCTION public.f_new() RETURNS integer LANGUAGE sql AS 'select 1';
CREATE VIEW public.v_new AS SELECT 1 AS x;
RESET ROLE;
SET LOCAL ROLE supabase_admin;
CREATE TABLE public.t_admin (id integer PRIMARY KEY);
RESET ROLE;

DO $$
DECLARE
  r text;
  p text;
BEGIN
  ASSERT has_schema_privilege('anon', 'public', 'USAGE'), 'USAGE on public stays granted';
  FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
    FOREACH p IN ARRAY ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE'] LOOP
      ASSERT NOT has_table_privilege(r, 'public.t_new', p), format('%s must not get %s on a new table', r, p);
      ASSERT NOT has_table_privilege(r, 'public.v_new', p), format('%s must not get %s on a new view', r, p);
      -- objects created by supabase_admin keep the classic grants
      ASSERT has_table_privilege(r, 'public.t_admin', p), format('%s keeps %s on a table made by supabase_admin', r, p);
    END LOOP;
    -- what the platform's revoke leaves behind
    FOREACH p IN ARRAY ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER'] LOOP
      ASSERT has_table_privilege(r, 'public.t_new', p), format('%s keeps %s on a new table (platform quirk)', r, p);
    END LOOP;
    ASSERT NOT has_sequence_privilege(r, 'public.s_new', 'USAGE') AND NOT has_sequence_privilege(r, 'public.s_new', 'SELECT'),
      format('%s must not get USAGE/SELECT on a new sequence', r);
    ASSERT has_sequence_privilege(r, 'public.s_new', 'UPDATE'), format('%s keeps UPDATE on a new sequence (platform quirk)', r);
    ASSERT NOT EXISTS (SELECT 1 FROM pg_proc, aclexplode(proacl) a
                       WHERE oid = 'public.f_new()'::regprocedure AND a.grantee = r::regrole),
      format('%s must not be granted a new function explicitly', r);
    -- ... but PostgreSQL's global EXECUTE-to-PUBLIC default still applies
    ASSERT has_function_privilege(r, 'public.f_new()', 'EXECUTE'),
      format('%s still executes a new function through PUBLIC', r);
  END LOOP;
  ASSERT has_table_privilege('postgres', 'public.t_new', 'SELECT'), 'postgres keeps its own grants';
END
$$;

-- really trying
SET LOCAL ROLE anon;
DO $$ BEGIN
  BEGIN
    PERFORM 1 FROM public.t_new;
    RAISE EXCEPTION 'anon read a new table';
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
END $$;
RESET ROLE;
SET LOCAL ROLE authenticated;
DO $$ BEGIN
  BEGIN
    INSERT INTO public.t_new VALUES (1, 'x');
    RAISE EXCEPTION 'authenticated wrote a new table';
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
END $$;
RESET ROLE;
SET LOCAL ROLE service_role;
DO $$ BEGIN
  BEGIN
    PERFORM 1 FROM public.t_new;
    RAISE EXCEPTION 'service_role read a new table without a grant';
  EXCEPTION WHEN insufficient_privilege THEN NULL;  -- BYPASSRLS is not a GRANT
  END;
END $$;
RESET ROLE;

-- an explicit grant opens it
GRANT SELECT, INSERT ON public.t_new TO authenticated;
SET LOCAL ROLE authenticated;
DO $$ BEGIN
  INSERT INTO public.t_new VALUES (1, 'granted');
  ASSERT (SELECT count(*) FROM public.t_new) = 1, 'an explicit grant must open the table';
END $$;
RESET ROLE;
ROLLBACK;
