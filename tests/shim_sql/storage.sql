-- storage.buckets / storage.objects and Storage's path helpers.
DO $$
BEGIN
  -- Supabase Storage semantics, edge cases included
  ASSERT storage.foldername('a/b/c.png') = ARRAY['a', 'b'], 'foldername: all parts but the last';
  ASSERT storage.foldername('uid-1/avatar.png') = ARRAY['uid-1'], 'foldername: one folder';
  ASSERT (storage.foldername('uid-1/avatar.png'))[1] = 'uid-1', 'foldername()[1]: the policy idiom';
  ASSERT storage.foldername('c.png') = '{}'::text[], 'foldername: no folder';
  ASSERT storage.filename('a/b/c.png') = 'c.png', 'filename: the last part';
  ASSERT storage.filename('c.png') = 'c.png', 'filename: no folder';
  ASSERT storage.extension('a/b/c.png') = 'png', 'extension: after the last dot';
  ASSERT storage.extension('a/b/archive.tar.gz') = 'gz', 'extension: only the last one';
  ASSERT storage.extension('a.b/README') = 'README', 'extension: a name without a dot is returned whole';
  ASSERT storage.extension('a/b/trailing.') = '', 'extension: trailing dot gives empty';

  ASSERT (SELECT relrowsecurity FROM pg_class WHERE oid = 'storage.objects'::regclass), 'RLS on storage.objects';
  ASSERT (SELECT relrowsecurity FROM pg_class WHERE oid = 'storage.buckets'::regclass), 'RLS on storage.buckets';
  ASSERT has_schema_privilege('anon', 'storage', 'USAGE'), 'anon needs USAGE on storage';
  ASSERT has_table_privilege('anon', 'storage.objects', 'SELECT')
     AND has_table_privilege('authenticated', 'storage.objects', 'INSERT')
     AND has_table_privilege('service_role', 'storage.objects', 'DELETE'), 'API roles need grants on objects';
  ASSERT has_table_privilege('authenticated', 'storage.buckets', 'SELECT'), 'grants on buckets';
END
$$;

BEGIN;
INSERT INTO storage.buckets (id, name, public) VALUES ('avatars', 'avatars', false);
INSERT INTO storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
VALUES ('docs', 'docs', true, 1048576, ARRAY['image/png', 'application/pdf']);
INSERT INTO storage.objects (bucket_id, name, owner, metadata)
VALUES ('avatars', '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10/me.png', '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10', '{"size": 1}'),
       ('avatars', '0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80/me.png', '0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80', '{"size": 2}');

DO $$
BEGIN
  ASSERT (SELECT path_tokens FROM storage.objects WHERE name LIKE '6f1c%')
         = ARRAY['6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10', 'me.png'], 'path_tokens must be name split on /';
  ASSERT (SELECT id IS NOT NULL AND created_at IS NOT NULL FROM storage.objects WHERE name LIKE '6f1c%'),
    'objects must default id/created_at';
  BEGIN
    INSERT INTO storage.objects (bucket_id, name) VALUES ('avatars', '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10/me.png');
    RAISE EXCEPTION 'duplicate (bucket_id, name) accepted';
  EXCEPTION WHEN unique_violation THEN NULL;
  END;
  BEGIN
    INSERT INTO storage.objects (bucket_id, name) VALUES ('nope', 'x');
    RAISE EXCEPTION 'object in a missing bucket accepted';
  EXCEPTION WHEN foreign_key_violation THEN NULL;
  END;
END
$$;

-- the policy every Supabase tutorial writes
CREATE POLICY "own folder read" ON storage.objects FOR SELECT TO authenticated
  USING (bucket_id = 'avatars' AND (storage.foldername(name))[1] = (SELECT auth.uid())::text);
CREATE POLICY "own folder write" ON storage.objects FOR INSERT TO authenticated
  WITH CHECK (bucket_id = 'avatars' AND (storage.foldername(name))[1] = (SELECT auth.uid())::text);
CREATE POLICY "buckets readable" ON storage.buckets FOR SELECT TO authenticated USING (true);

SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims',
  '{"sub": "6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10", "role": "authenticated"}', true);
DO $$
BEGIN
  ASSERT (SELECT count(*) FROM storage.objects) = 1, 'authenticated must see only its own folder';
  ASSERT (SELECT count(*) FROM storage.buckets) = 2, 'authenticated sees buckets through the policy';
  INSERT INTO storage.objects (bucket_id, name) VALUES ('avatars', '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10/new.png');
  BEGIN
    INSERT INTO storage.objects (bucket_id, name) VALUES ('avatars', '0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80/evil.png');
    RAISE EXCEPTION 'upload into another user''s folder accepted';
  EXCEPTION WHEN insufficient_privilege THEN NULL;  -- 42501: violates row-level security policy
  END;
END
$$;
RESET ROLE;

SET LOCAL ROLE anon;
SELECT set_config('request.jwt.claims', '{"role": "anon"}', true);
DO $$
BEGIN
  ASSERT (SELECT count(*) FROM storage.objects) = 0, 'anon sees no object without a policy';
  ASSERT (SELECT count(*) FROM storage.buckets) = 0, 'anon sees no bucket without a policy';
END
$$;
RESET ROLE;

SET LOCAL ROLE service_role;
DO $$
BEGIN
  ASSERT (SELECT count(*) FROM storage.objects) = 3, 'service_role bypasses RLS on storage.objects';
END
$$;
RESET ROLE;
ROLLBACK;
