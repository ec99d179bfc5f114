-- The http extension stub (pgsql-http's API): installable into extensions; a
-- request raises naming http and the function, except database.dev's registry.
-- Skipped (NOTICE) when the server offers the real http extension instead of db-ci's
-- stub. Everything is undone at the end.
DO $$
DECLARE
  resp record;
  msg text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'http' AND comment LIKE '%db-ci stub%') THEN
    RAISE NOTICE 'http: the server''s own extension is used, stub checks skipped';
    RETURN;
  END IF;
  BEGIN
    CREATE EXTENSION http WITH SCHEMA extensions;
    -- nothing is sent: the call raises naming http and the function called
    BEGIN
      resp := extensions.http_get('https://example.com/a');
      RAISE EXCEPTION 'http_get must raise';
    EXCEPTION WHEN feature_not_supported THEN
      GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
      ASSERT msg LIKE 'http: http_get() cannot send GET https://example.com/a%', msg;
    END;
    BEGIN
      -- unqualified, through the database search_path, like migrations call it
      EXECUTE $q$SELECT http(('PUT', 'https://example.com/c', ARRAY[http_header('X-Key', 'v')],
                              'text/plain', 'body')::http_request)$q$;
      RAISE EXCEPTION 'http must raise';
    EXCEPTION WHEN feature_not_supported THEN
      GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
      ASSERT msg LIKE 'http: http() cannot send PUT%', msg;
    END;
    -- database.dev is answered as db-ci's offline registry, and the call is recorded
    resp := extensions.http((
      'GET', 'https://api.database.dev/rest/v1/package_versions', ARRAY[extensions.http_header('apiKey', 'k')],
      NULL, NULL)::extensions.http_request);
    ASSERT resp.content = '[]', 'the registry has no package versions';
    ASSERT (SELECT count(*) FROM extensions.http_stub_calls) = 1, 'the registry call is recorded';
    ASSERT (SELECT headers[1].field FROM extensions.http_stub_calls) = 'apiKey', 'headers recorded';
    -- curl options are kept for the session
    ASSERT extensions.http_set_curlopt('CURLOPT_TIMEOUT', '5'), 'set a curl option';
    ASSERT (SELECT value FROM extensions.http_list_curlopt() WHERE curlopt = 'CURLOPT_TIMEOUT') = '5',
      'the option is listed';
    PERFORM extensions.http_reset_curlopt();
    ASSERT NOT EXISTS (SELECT 1 FROM extensions.http_list_curlopt()), 'reset clears the options';
    ASSERT extensions.urlencode('a b&c') = 'a%20b%26c', 'urlencode';
    ASSERT extensions.urlencode('{"q": "x y"}'::jsonb) = 'q=x%20y', 'urlencode(jsonb)';
    RAISE SQLSTATE 'DB001';  -- undo the block
  EXCEPTION WHEN SQLSTATE 'DB001' THEN
    NULL;
  END;
END
$$;
