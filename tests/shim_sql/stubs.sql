-- The stub extensions: installable the way real projects install them, and
-- their SQL APIs behave (recording instead of acting).

-- supabase_vault
BEGIN;
DO $$
DECLARE
  sid uuid;
BEGIN
  sid := vault.create_secret('s3cr3t-value', 'api_key', 'the API key');
  ASSERT sid IS NOT NULL, 'create_secret must return an id';
  ASSERT (SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = 'api_key') = 's3cr3t-value',
    'decrypted_secrets must give the secret back';
  ASSERT (SELECT description FROM vault.decrypted_secrets WHERE id = sid) = 'the API key', 'description kept';
  PERFORM vault.update_secret(sid, 'rotated');
  ASSERT (SELECT decrypted_secret FROM vault.decrypted_secrets WHERE id = sid) = 'rotated', 'update_secret';
  ASSERT vault.create_secret('only-a-value') IS NOT NULL, 'name and description are optional';
  BEGIN
    PERFORM vault.create_secret('x', 'api_key');
    RAISE EXCEPTION 'duplicate secret name accepted';
  EXCEPTION WHEN unique_violation THEN NULL;
  END;
END
$$;
-- Vault is not exposed to the API roles
SET LOCAL ROLE authenticated;
DO $$
BEGIN
  BEGIN
    PERFORM 1 FROM vault.decrypted_secrets;
    RAISE EXCEPTION 'authenticated can read vault.decrypted_secrets';
  EXCEPTION WHEN insufficient_privilege THEN NULL;
  END;
END
$$;
RESET ROLE;
ROLLBACK;

-- pg_net, as projects enable it
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_net;
DO $$
DECLARE
  rid bigint;
  q net.http_request_queue;
BEGIN
  rid := net.http_post(url := 'https://x', body := '{}'::jsonb);
  ASSERT rid IS NOT NULL, 'net.http_post must return a request id';
  SELECT * INTO q FROM net.http_request_queue WHERE id = rid;
  ASSERT q.method = 'POST' AND q.url = 'https://x', 'the request must be queued';
  ASSERT q.headers ->> 'Content-Type' = 'application/json', 'default Content-Type header';
  ASSERT convert_from(q.body, 'UTF8')::jsonb = '{}'::jsonb, 'body recorded';
  ASSERT q.timeout_milliseconds = 5000, 'default timeout';

  -- the seeds' one-argument form, and the full signature
  ASSERT net.http_post('https://your-project.supabase.co/functions/v1/refresh-caches') > rid, 'url-only http_post';
  rid := net.http_post('https://x/hook', '{"a": 1}'::jsonb, '{"q": "a b"}'::jsonb,
                       '{"Authorization": "Bearer t"}'::jsonb, 1000);
  SELECT * INTO q FROM net.http_request_queue WHERE id = rid;
  ASSERT q.url = 'https://x/hook?q=a%20b', format('params must be url-encoded, got %s', q.url);
  ASSERT q.headers ->> 'Content-Type' = 'application/json' AND q.headers ->> 'Authorization' = 'Bearer t',
    'Content-Type must be added to custom headers';

  rid := net.http_get('https://x/items', '{"page": "2"}'::jsonb);
  ASSERT (SELECT method = 'GET' AND url = 'https://x/items?page=2' FROM net.http_request_queue WHERE id = rid),
    'net.http_get must be queued';
  rid := net.http_delete('https://x/items/1');
  ASSERT (SELECT method = 'DELETE' FROM net.http_request_queue WHERE id = rid), 'net.http_delete must be queued';
  ASSERT NOT EXISTS (SELECT 1 FROM net._http_response), 'the stub never answers';

  BEGIN
    PERFORM net.http_post('https://x', '{}'::jsonb, headers := '{"Content-Type": "text/plain"}'::jsonb);
    RAISE EXCEPTION 'non-JSON Content-Type accepted';
  EXCEPTION WHEN raise_exception THEN
    IF SQLERRM NOT LIKE 'Content-Type header must be%' THEN RAISE; END IF;
  END;
END
$$;
-- callable by the API roles, as on the platform
SET LOCAL ROLE anon;
DO $$ BEGIN
  ASSERT net.http_post('https://x/anon', '{}'::jsonb) IS NOT NULL, 'anon may call net.http_post';
END $$;
RESET ROLE;
SET LOCAL ROLE authenticated;
DO $$ BEGIN
  ASSERT net.http_get('https://x/authenticated') IS NOT NULL, 'authenticated may call net.http_get';
END $$;
RESET ROLE;
ROLLBACK;

-- pg_net the way Supabase's own dumps write it
BEGIN;
CREATE EXTENSION IF NOT EXISTS pg_net WITH SCHEMA extensions;
DO $$ BEGIN
  ASSERT net.http_post('https://x', '{}'::jsonb) IS NOT NULL, 'pg_net with schema extensions';
  ASSERT (SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_net') = 'extensions',
    'pg_net registered in extensions, objects in net';
END $$;
DROP EXTENSION pg_net;
DO $$ BEGIN
  ASSERT to_regnamespace('net') IS NULL, 'dropping pg_net removes schema net';
END $$;
ROLLBACK;

-- pgjwt: a real implementation
DO $$
DECLARE
  tok text;
  r record;
BEGIN
  -- the jwt.io reference token
  ASSERT extensions.sign('{"sub":"1234567890","name":"John Doe","iat":1516239022}'::json, 'your-256-bit-secret')
    = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
    'HS256 signature must match the reference token';

  tok := extensions.sign(json_build_object('sub', 'u1', 'role', 'authenticated', 'exp', 4102444800), 'secret');
  SELECT * INTO r FROM extensions.verify(tok, 'secret');
  ASSERT r.valid, 'round trip must verify';
  ASSERT r.payload ->> 'sub' = 'u1' AND r.header ->> 'alg' = 'HS256', 'payload and header decoded';
  ASSERT NOT (SELECT valid FROM extensions.verify(tok, 'wrong secret')), 'wrong secret must not verify';
  ASSERT NOT (SELECT valid FROM extensions.verify(tok || 'x', 'secret')), 'tampered token must not verify';

  tok := extensions.sign(json_build_object('sub', 'u1', 'exp', 1000000000), 'secret');
  ASSERT NOT (SELECT valid FROM extensions.verify(tok, 'secret')), 'expired token must not verify';
  tok := extensions.sign(json_build_object('sub', 'u1', 'nbf', 4102444800), 'secret');
  ASSERT NOT (SELECT valid FROM extensions.verify(tok, 'secret')), 'not-yet-valid token must not verify';

  tok := extensions.sign('{"sub":"u2"}'::json, 'k', 'HS512');
  ASSERT (SELECT valid FROM extensions.verify(tok, 'k', 'HS512')), 'HS512 round trip';
  ASSERT NOT (SELECT valid FROM extensions.verify(tok, 'k', 'HS256')), 'algorithm mismatch must not verify';
  tok := extensions.sign('{"sub":"u3"}'::json, 'k', 'HS384');
  ASSERT (SELECT valid FROM extensions.verify(tok, 'k', 'HS384')), 'HS384 round trip';

  ASSERT extensions.url_decode(extensions.url_encode('\x00ff10'::bytea)) = '\x00ff10'::bytea, 'base64url round trip';
END
$$;
-- bodies are bound at creation: no search_path needed
BEGIN;
SET LOCAL search_path = '';
DO $$ BEGIN
  ASSERT (SELECT valid FROM extensions.verify(extensions.sign('{"a":1}'::json, 's'), 's')),
    'pgjwt must work with an empty search_path';
END $$;
ROLLBACK;

-- pg_graphql and the PostgREST entry point: db-ci's stub cannot execute GraphQL, so
-- resolve() (and graphql_public.graphql(), which wraps it) raise naming pg_graphql; the real
-- pg_graphql answers an error object for an unknown field.
DO $$
DECLARE
  stub boolean := EXISTS (SELECT 1 FROM pg_available_extensions
                          WHERE name = 'pg_graphql' AND comment LIKE '%db-ci stub%');
  msg text;
BEGIN
  IF NOT stub THEN
    ASSERT graphql_public.graphql(query := '{ x }') ? 'errors', 'graphql_public.graphql wraps resolve';
    RETURN;
  END IF;
  BEGIN
    PERFORM graphql.resolve('{ __typename }');
    RAISE EXCEPTION 'graphql.resolve must raise';
  EXCEPTION WHEN feature_not_supported THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
    ASSERT msg LIKE 'pg_graphql: graphql.resolve()%', format('the error names pg_graphql: %s', msg);
  END;
  BEGIN
    PERFORM graphql_public.graphql(query := '{ __typename }');
    RAISE EXCEPTION 'graphql_public.graphql must raise';
  EXCEPTION WHEN feature_not_supported THEN
    NULL;
  END;
END
$$;
BEGIN;
SET LOCAL ROLE anon;
DO $$ BEGIN
  -- anon may call it: the call reaches resolve() (which raises feature_not_supported in the
  -- stub), not a permission error.
  PERFORM graphql_public.graphql(query := '{ x }');
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END $$;
ROLLBACK;

