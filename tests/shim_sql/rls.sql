-- Row level security as the platform's roles see it: authenticated is held
-- by policies, anon has no policy here, service_role bypasses RLS. Table
-- grants are explicit so the script holds in both grant modes.
BEGIN;
CREATE TABLE public.notes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner uuid NOT NULL,
  body text
);
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_owner ON public.notes FOR ALL TO authenticated
  USING (owner = (SELECT auth.uid()))
  WITH CHECK (owner = (SELECT auth.uid()));
GRANT SELECT, INSERT, UPDATE, DELETE ON public.notes TO anon, authenticated, service_role;

INSERT INTO public.notes (owner, body) VALUES
  ('6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10', 'alice 1'),
  ('6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10', 'alice 2'),
  ('0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80', 'bob 1');

-- alice
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims',
  '{"sub": "6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10", "role": "authenticated", "aud": "authenticated"}', true);
DO $$
DECLARE
  n bigint;
BEGIN
  ASSERT current_user = 'authenticated', 'SET ROLE authenticated failed';
  ASSERT NOT (SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user),
    'authenticated must not bypass RLS';
  ASSERT (SELECT count(*) FROM public.notes) = 2, 'alice must see exactly her 2 notes';
  UPDATE public.notes SET body = 'hacked' WHERE body = 'bob 1';
  GET DIAGNOSTICS n = ROW_COUNT;
  ASSERT n = 0, 'alice must not update bob''s note (USING filters it out)';
  DELETE FROM public.notes WHERE body = 'bob 1';
  GET DIAGNOSTICS n = ROW_COUNT;
  ASSERT n = 0, 'alice must not delete bob''s note';
  UPDATE public.notes SET body = 'alice 1 edited' WHERE body = 'alice 1';
  GET DIAGNOSTICS n = ROW_COUNT;
  ASSERT n = 1, 'alice must update her own note';
  INSERT INTO public.notes (owner, body) VALUES ('6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10', 'alice 3');
  BEGIN
    INSERT INTO public.notes (owner, body) VALUES ('0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80', 'forged');
    RAISE EXCEPTION 'alice inserted a note owned by bob';
  EXCEPTION WHEN insufficient_privilege THEN NULL;  -- WITH CHECK violation is 42501
  END;
END
$$;
RESET ROLE;

-- anon: no policy for anon, so nothing is visible and nothing is writable
SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true);
DO $$
BEGIN
  ASSERT (SELECT count(*) FROM public.notes) = 0, 'anon must see nothing';
  BEGIN
    INSERT INTO public.notes (owner, body) VALUES (gen_random_uuid(), 'anon');
    RAISE EXCEPTION 'anon inserted a note';
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
END
$$;
RESET ROLE;

-- service_role bypasses RLS
SET LOCAL ROLE service_role;
SELECT set_config('request.jwt.claims', '{"role": "service_role"}', true);
DO $$
BEGIN
  ASSERT (SELECT count(*) FROM public.notes) = 4, 'service_role must see every note';
  UPDATE public.notes SET body = 'by service' WHERE body = 'bob 1';
  ASSERT FOUND, 'service_role must update any note';
END
$$;
RESET ROLE;

-- the superuser saw alice's and service_role's changes, bob's note intact otherwise
DO $$
BEGIN
  ASSERT (SELECT count(*) FROM public.notes WHERE body = 'hacked') = 0, 'no hacked note';
  ASSERT (SELECT count(*) FROM public.notes WHERE body = 'by service') = 1, 'service_role change visible';
END
$$;

-- FORCE ROW LEVEL SECURITY is not needed for the API roles, but a table owner
-- bypasses RLS: a view owned by postgres exposes every row unless
-- security_invoker is set (PG15+), exactly as on the platform.
CREATE VIEW public.notes_definer AS SELECT * FROM public.notes;
CREATE VIEW public.notes_invoker WITH (security_invoker = true) AS SELECT * FROM public.notes;
GRANT SELECT ON public.notes_definer, public.notes_invoker TO authenticated;
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', '{"sub": "6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10", "role": "authenticated"}', true);
DO $$
BEGIN
  ASSERT (SELECT count(*) FROM public.notes_definer) = 4, 'a definer view leaks every row';
  ASSERT (SELECT count(*) FROM public.notes_invoker) = 3, 'a security_invoker view keeps RLS';
END
$$;
RESET ROLE;
ROLLBACK;
