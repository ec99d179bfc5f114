-- auth.uid(), auth.role(), auth.email(), auth.jwt(): Supabase's definitions,
-- reading PostgREST's request.jwt.claims and the legacy request.jwt.claim.*.
DO $$
DECLARE
  f text;
BEGIN
  FOREACH f IN ARRAY ARRAY['auth.uid()', 'auth.role()', 'auth.email()', 'auth.jwt()'] LOOP
    ASSERT to_regprocedure(f) IS NOT NULL, format('%s is missing', f);
    ASSERT (SELECT l.lanname = 'sql' AND p.provolatile = 's' AND NOT p.prosecdef
            FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
            WHERE p.oid = to_regprocedure(f)), format('%s must be a STABLE SQL function', f);
  END LOOP;
  ASSERT pg_get_function_result('auth.uid()'::regprocedure) = 'uuid', 'auth.uid() returns uuid';
  ASSERT pg_get_function_result('auth.jwt()'::regprocedure) = 'jsonb', 'auth.jwt() returns jsonb';
  ASSERT pg_get_function_result('auth.role()'::regprocedure) = 'text', 'auth.role() returns text';
END
$$;

BEGIN;
-- anon: no claims at all
SET LOCAL ROLE anon;
DO $$ BEGIN
  ASSERT auth.uid() IS NULL, 'auth.uid() must be NULL without claims';
  ASSERT auth.role() IS NULL, 'auth.role() must be NULL without claims';
  ASSERT auth.email() IS NULL, 'auth.email() must be NULL without claims';
  ASSERT auth.jwt() IS NULL, 'auth.jwt() must be NULL without claims';
END $$;
-- empty strings count as unset (what a rolled-back set_config leaves behind)
SELECT set_config('request.jwt.claims', '', true), set_config('request.jwt.claim.sub', '', true);
DO $$ BEGIN
  ASSERT auth.uid() IS NULL, 'auth.uid() must be NULL for empty settings';
  ASSERT auth.jwt() IS NULL, 'auth.jwt() must be NULL for empty settings';
END $$;
-- the anon key: PostgREST sets claims with role anon and no sub
SELECT set_config('request.jwt.claims', '{"role": "anon", "iss": "supabase"}', true);
DO $$ BEGIN
  ASSERT auth.uid() IS NULL, 'auth.uid() must be NULL for anon';
  ASSERT auth.role() = 'anon', 'auth.role() must read role from request.jwt.claims';
  ASSERT auth.jwt() ->> 'iss' = 'supabase', 'auth.jwt() must return request.jwt.claims';
END $$;
RESET ROLE;

-- a signed-in user, as PostgREST (v10+) sets it
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', json_build_object(
  'sub', '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10', 'role', 'authenticated', 'aud', 'authenticated',
  'email', 'alice@example.com', 'phone', '',
  'app_metadata', json_build_object('provider', 'email', 'providers', json_build_array('email'), 'role', 'admin'),
  'user_metadata', json_build_object('full_name', 'Alice'),
  'aal', 'aal1', 'amr', json_build_array(json_build_object('method', 'password', 'timestamp', 1700000000)),
  'session_id', 'a2a1f8a2-6a57-4f07-8d1c-7b1f6f0f6c11', 'is_anonymous', false,
  'exp', 4102444800, 'iat', 1700000000, 'iss', 'http://127.0.0.1:54321/auth/v1')::text, true);
DO $$ BEGIN
  ASSERT auth.uid() = '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10'::uuid, 'auth.uid() must read sub';
  ASSERT auth.role() = 'authenticated', 'auth.role() must read role';
  ASSERT auth.email() = 'alice@example.com', 'auth.email() must read email';
  ASSERT auth.jwt() -> 'app_metadata' ->> 'role' = 'admin', 'auth.jwt() must expose app_metadata';
  ASSERT auth.jwt() ->> 'aal' = 'aal1', 'auth.jwt() must expose aal';
  ASSERT (auth.jwt() ->> 'is_anonymous')::boolean = false, 'auth.jwt() must expose is_anonymous';
  ASSERT (SELECT auth.uid()) = auth.uid(), 'the initplan form must agree';
END $$;

-- legacy per-claim settings (PostgREST < 10) win over request.jwt.claims
SELECT set_config('request.jwt.claim.sub', '0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80', true),
       set_config('request.jwt.claim.role', 'service_role', true),
       set_config('request.jwt.claim.email', 'legacy@example.com', true);
DO $$ BEGIN
  ASSERT auth.uid() = '0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80'::uuid, 'legacy request.jwt.claim.sub must win';
  ASSERT auth.role() = 'service_role', 'legacy request.jwt.claim.role must win';
  ASSERT auth.email() = 'legacy@example.com', 'legacy request.jwt.claim.email must win';
  -- jwt() still reads the claims object: request.jwt.claim is unset
  ASSERT auth.jwt() ->> 'sub' = '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10', 'auth.jwt() must fall back to request.jwt.claims';
END $$;
SELECT set_config('request.jwt.claim', '{"sub": "legacy-object"}', true);
DO $$ BEGIN
  ASSERT auth.jwt() ->> 'sub' = 'legacy-object', 'legacy request.jwt.claim must win in auth.jwt()';
END $$;

-- only the legacy settings, no claims object
SELECT set_config('request.jwt.claims', '', true), set_config('request.jwt.claim', '', true);
DO $$ BEGIN
  ASSERT auth.uid() = '0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80'::uuid, 'legacy sub alone must work';
  ASSERT auth.jwt() IS NULL, 'auth.jwt() must be NULL without claim objects';
END $$;
ROLLBACK;
