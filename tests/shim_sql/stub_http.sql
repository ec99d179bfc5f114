-- The http extension stub (pgsql-http's API): installable into extensions,
-- records every call, answers 599. Skipped (NOTICE) when the server offers the
-- real http extension instead of db-ci's stub. Everything is undone at the end.
DO $$
DECLARE
  resp record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'http' AND comment LIKE '%db-ci stub%') THEN
    RAISE NOTICE 'http: the server''s own extension is used, stub checks skipped';
    RETURN;
  END IF;
  BEGIN
    CREATE EXTENSION http WITH SCHEMA extensions;
    resp := extensions.http_get('https://example.com/a');
    ASSERT resp.status = 599 AND resp.content LIKE 'db-ci stub%', 'stub response';
    -- unqualified, through the database search_path, like migrations call it
    EXECUTE $q$SELECT http_post('https://example.com/b', '{"x":1}', 'application/json')$q$;
    EXECUTE $q$SELECT http(('PUT', 'https://example.com/c', ARRAY[http_header('X-Key', 'v')],
                            'text/plain', 'body')::http_request)$q$;
    ASSERT (SELECT count(*) FROM extensions.http_stub_calls) = 3, 'every call recorded';
    ASSERT (SELECT headers[1].field FROM extensions.http_stub_calls WHERE method = 'PUT') = 'X-Key',
      'headers recorded';
    ASSERT extensions.urlencode('a b&c') = 'a%20b%26c', 'urlencode';
    ASSERT extensions.urlencode('{"q": "x y"}'::jsonb) = 'q=x%20y', 'urlencode(jsonb)';
    RAISE SQLSTATE 'DB001';  -- undo the block
  EXCEPTION WHEN SQLSTATE 'DB001' THEN
    NULL;
  END;
END
$$;
