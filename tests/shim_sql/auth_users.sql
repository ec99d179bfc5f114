-- auth.users / auth.identities as GoTrue leaves them: seed-style inserts, the
-- on_auth_user_created trigger nearly every project has, generated columns,
-- constraints, and that the API roles cannot read them.
DO $$
DECLARE
  c text;
BEGIN
  FOREACH c IN ARRAY ARRAY['instance_id', 'id', 'aud', 'role', 'email', 'encrypted_password',
      'email_confirmed_at', 'invited_at', 'confirmation_token', 'confirmation_sent_at', 'recovery_token',
      'recovery_sent_at', 'email_change_token_new', 'email_change', 'email_change_sent_at',
      'last_sign_in_at', 'raw_app_meta_data', 'raw_user_meta_data', 'is_super_admin', 'created_at',
      'updated_at', 'phone', 'phone_confirmed_at', 'phone_change', 'phone_change_token',
      'phone_change_sent_at', 'confirmed_at', 'email_change_token_current',
      'email_change_confirm_status', 'banned_until', 'reauthentication_token',
      'reauthentication_sent_at', 'is_sso_user', 'deleted_at', 'is_anonymous'] LOOP
    ASSERT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = 'auth' AND table_name = 'users' AND column_name = c),
      format('auth.users.%s is missing', c);
  END LOOP;
  FOREACH c IN ARRAY ARRAY['provider_id', 'user_id', 'identity_data', 'provider', 'last_sign_in_at',
      'created_at', 'updated_at', 'email', 'id'] LOOP
    ASSERT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = 'auth' AND table_name = 'identities' AND column_name = c),
      format('auth.identities.%s is missing', c);
  END LOOP;
  ASSERT (SELECT is_generated = 'ALWAYS' FROM information_schema.columns
          WHERE table_schema = 'auth' AND table_name = 'users' AND column_name = 'confirmed_at'),
    'auth.users.confirmed_at must be generated';
  ASSERT (SELECT is_generated = 'ALWAYS' FROM information_schema.columns
          WHERE table_schema = 'auth' AND table_name = 'identities' AND column_name = 'email'),
    'auth.identities.email must be generated';
  ASSERT (SELECT relrowsecurity FROM pg_class WHERE oid = 'auth.users'::regclass), 'RLS must be on for auth.users';
  ASSERT to_regclass('auth.sessions') IS NOT NULL AND to_regclass('auth.refresh_tokens') IS NOT NULL,
    'auth.sessions and auth.refresh_tokens must exist';
END
$$;

BEGIN;

CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  email text,
  full_name text,
  created_at timestamptz NOT NULL
);

CREATE FUNCTION public.handle_new_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
BEGIN
  INSERT INTO public.profiles (id, email, full_name, created_at)
  VALUES (new.id, new.email, new.raw_user_meta_data ->> 'full_name', new.created_at);
  RETURN new;
END
$$;

CREATE TRIGGER on_auth_user_created
  AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();

-- what a test helper does: only the email
INSERT INTO auth.users (email) VALUES ('only-email@example.com');

DO $$
DECLARE
  u auth.users;
BEGIN
  SELECT * INTO u FROM auth.users WHERE email = 'only-email@example.com';
  ASSERT u.id IS NOT NULL, 'auth.users.id must default';
  ASSERT u.aud = 'authenticated' AND u.role = 'authenticated', 'aud/role must default like GoTrue';
  ASSERT u.created_at IS NOT NULL, 'created_at must default';
  ASSERT u.raw_user_meta_data = '{}'::jsonb, 'raw_user_meta_data must default to {}';
  ASSERT u.is_anonymous = false AND u.is_sso_user = false, 'is_anonymous/is_sso_user must default to false';
  ASSERT u.confirmed_at IS NULL, 'an unconfirmed user has no confirmed_at';
  ASSERT EXISTS (SELECT 1 FROM public.profiles p WHERE p.id = u.id AND p.email = u.email),
    'on_auth_user_created must have fired';
END
$$;

-- a seed file's 32-column rows (the shape `supabase db dump --data-only` and
-- seed generators produce), password hashed with unqualified pgcrypto
INSERT INTO auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at,
  phone, phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user
) VALUES
  ('00000000-0000-0000-0000-000000000000', '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10', 'authenticated',
   'authenticated', 'alice@example.com', crypt('password123', gen_salt('bf')), now(), NULL,
   '', NULL, '', NULL, '', '', NULL, now(),
   '{"provider": "email", "providers": ["email"]}', '{"full_name": "Alice"}', NULL, now(), now(),
   NULL, NULL, '', '', NULL, '', 0, NULL, '', NULL, false),
  ('00000000-0000-0000-0000-000000000000', '0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80', 'authenticated',
   'authenticated', 'bob@example.com', extensions.crypt('password123', extensions.gen_salt('bf')), now(), NULL,
   '', NULL, '', NULL, '', '', NULL, now(),
   '{"provider": "email", "providers": ["email"]}', '{"full_name": "Bob"}', NULL, now(), now(),
   NULL, NULL, '', '', NULL, '', 0, NULL, '', NULL, false);

-- the full 34 insertable columns, phone user
INSERT INTO auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
  confirmation_token, confirmation_sent_at, recovery_token, recovery_sent_at,
  email_change_token_new, email_change, email_change_sent_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at,
  phone, phone_confirmed_at, phone_change, phone_change_token, phone_change_sent_at,
  email_change_token_current, email_change_confirm_status, banned_until,
  reauthentication_token, reauthentication_sent_at, is_sso_user, deleted_at, is_anonymous
) VALUES
  ('00000000-0000-0000-0000-000000000000', 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f', 'authenticated',
   'authenticated', NULL, '', NULL, NULL, '', NULL, '', NULL, '', '', NULL, NULL,
   '{"provider": "phone", "providers": ["phone"]}', '{}', NULL, now(), now(),
   '15550001111', '2024-01-02 03:04:05+00', '', '', NULL, '', 0, NULL, '', NULL, false, NULL, false);

-- identities as seeds write them (provider_id = user id for email identities)
INSERT INTO auth.identities (id, user_id, identity_data, provider, provider_id, last_sign_in_at, created_at, updated_at)
VALUES (gen_random_uuid(), '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10',
        '{"sub": "6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10", "email": "Alice@Example.com", "email_verified": true}',
        'email', '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10', now(), now(), now());
-- and the minimal form
INSERT INTO auth.identities (user_id, identity_data, provider, provider_id)
VALUES ('0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80', '{"sub": "0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80"}',
        'email', '0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80');

DO $$
BEGIN
  ASSERT (SELECT count(*) FROM public.profiles) = 4, 'the trigger must fire for every seeded user';
  ASSERT (SELECT full_name FROM public.profiles WHERE id = '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10') = 'Alice',
    'the trigger must see raw_user_meta_data';
  ASSERT (SELECT confirmed_at = email_confirmed_at FROM auth.users WHERE email = 'alice@example.com'),
    'confirmed_at must be least(email_confirmed_at, phone_confirmed_at)';
  ASSERT (SELECT confirmed_at = '2024-01-02 03:04:05+00' FROM auth.users WHERE phone = '15550001111'),
    'confirmed_at must follow phone_confirmed_at';
  ASSERT (SELECT encrypted_password = crypt('password123', encrypted_password)
          FROM auth.users WHERE email = 'alice@example.com'), 'bcrypt password must verify';
  ASSERT (SELECT email FROM auth.identities WHERE user_id = '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10')
         = 'alice@example.com', 'identities.email must be generated, lower-cased, from identity_data';
  ASSERT (SELECT email IS NULL AND id IS NOT NULL AND created_at IS NOT NULL FROM auth.identities
          WHERE user_id = '0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80'), 'identities must default id/created_at';
END
$$;

-- constraints GoTrue has
DO $$
BEGIN
  BEGIN
    INSERT INTO auth.identities (user_id, identity_data, provider, provider_id)
    VALUES ('0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80', '{}', 'email', '0b7e9c52-3f1d-4a8e-b6c2-9d4e5f6a7b80');
    RAISE EXCEPTION 'duplicate (provider_id, provider) was accepted';
  EXCEPTION WHEN unique_violation THEN NULL;
  END;
  BEGIN
    INSERT INTO auth.users (phone) VALUES ('15550001111');
    RAISE EXCEPTION 'duplicate phone was accepted';
  EXCEPTION WHEN unique_violation THEN NULL;
  END;
  BEGIN
    INSERT INTO auth.users (email) VALUES ('alice@example.com');
    RAISE EXCEPTION 'duplicate email (non-SSO) was accepted';
  EXCEPTION WHEN unique_violation THEN NULL;
  END;
  BEGIN
    INSERT INTO auth.identities (user_id, identity_data, provider, provider_id)
    VALUES (gen_random_uuid(), '{}', 'email', 'nobody');
    RAISE EXCEPTION 'identity of a missing user was accepted';
  EXCEPTION WHEN foreign_key_violation THEN NULL;
  END;
  BEGIN
    UPDATE auth.users SET confirmed_at = now() WHERE email = 'alice@example.com';
    RAISE EXCEPTION 'confirmed_at was writable';
  EXCEPTION WHEN generated_always OR syntax_error OR object_not_in_prerequisite_state THEN NULL;
  END;
END
$$;

-- deleting a user cascades to identities and to the profile
DELETE FROM auth.users WHERE id = '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10';
DO $$
BEGIN
  ASSERT NOT EXISTS (SELECT 1 FROM auth.identities WHERE user_id = '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10'),
    'identities must cascade';
  ASSERT NOT EXISTS (SELECT 1 FROM public.profiles WHERE id = '6f1c2a3e-0d5b-4b8e-9a41-2c8f3b6d7e10'),
    'profiles must cascade';
END
$$;

-- the API roles cannot read auth tables (no grant)
SET LOCAL ROLE authenticated;
DO $$
BEGIN
  BEGIN
    PERFORM 1 FROM auth.users;
    RAISE EXCEPTION 'authenticated can read auth.users';
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
END
$$;
RESET ROLE;
SET LOCAL ROLE anon;
DO $$
BEGIN
  BEGIN
    PERFORM 1 FROM auth.identities;
    RAISE EXCEPTION 'anon can read auth.identities';
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
END
$$;
RESET ROLE;

ROLLBACK;
