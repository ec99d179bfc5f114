-- db-ci stub of the http extension 1.0. Objects go into the extension's
-- schema; every function body is bound at creation time.
\echo Use "CREATE EXTENSION http" to load this file. \quit

CREATE DOMAIN http_method AS text
  CHECK (VALUE ILIKE 'get' OR VALUE ILIKE 'post' OR VALUE ILIKE 'put'
         OR VALUE ILIKE 'delete' OR VALUE ILIKE 'patch' OR VALUE ILIKE 'head');

CREATE DOMAIN content_type AS text CHECK (VALUE ~ '^\S+\/\S+');

CREATE TYPE http_header AS (
  field character varying,
  value character varying
);

CREATE TYPE http_response AS (
  status integer,
  content_type character varying,
  headers http_header[],
  content character varying
);

CREATE TYPE http_request AS (
  method http_method,
  uri character varying,
  headers http_header[],
  content_type character varying,
  content character varying
);

-- Every request the stub was asked to make.
CREATE TABLE http_stub_calls (
  id bigserial PRIMARY KEY,
  called_at timestamp with time zone NOT NULL DEFAULT now(),
  method text NOT NULL,
  uri text NOT NULL,
  headers http_header[],
  content_type text,
  content text
);

CREATE FUNCTION http_header(field character varying, value character varying) RETURNS http_header
LANGUAGE sql IMMUTABLE
RETURN ROW(field, value)::http_header;

CREATE FUNCTION urlencode(string character varying) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
RETURN coalesce((
  SELECT string_agg(
           CASE WHEN b.v BETWEEN 48 AND 57 OR b.v BETWEEN 65 AND 90 OR b.v BETWEEN 97 AND 122
                     OR b.v IN (45, 46, 95, 126)
                THEN chr(b.v)
                ELSE '%' || upper(lpad(to_hex(b.v), 2, '0'))
           END, '' ORDER BY b.i)
  FROM (
    SELECT i, get_byte(convert_to(string, 'UTF8'), i) AS v
    FROM generate_series(0, octet_length(convert_to(string, 'UTF8')) - 1) AS i
  ) b
), '');

CREATE FUNCTION urlencode(data jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
RETURN coalesce((
  SELECT string_agg(urlencode(e.key) || '=' || urlencode(e.value), '&')
  FROM jsonb_each_text(data) AS e
), '');

-- No request leaves db-ci: a call raises, naming the function called, except one to
-- database.dev (dbdev's registry), answered as db-ci's offline registry: an empty JSON list,
-- "no package version", so the dbdev bootstrap of test suites installs nothing and finds
-- db-ci's own supabase-dbdev and test-helpers extensions.
CREATE FUNCTION http_stub_refuse(fn text, request http_request) RETURNS http_response
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
  RAISE EXCEPTION 'http: %() cannot send % % in db-ci (the http extension is emulated; nothing reaches the network)',
    fn, upper((request).method), (request).uri
    USING ERRCODE = 'feature_not_supported';
END
$fn$;

CREATE FUNCTION http_stub_send(fn text, request http_request) RETURNS http_response
LANGUAGE sql VOLATILE
BEGIN ATOMIC
  INSERT INTO http_stub_calls (method, uri, headers, content_type, content)
  VALUES (upper((request).method), (request).uri, (request).headers,
          (request).content_type, (request).content);
  SELECT CASE WHEN (request).uri LIKE 'https://api.database.dev/%'
              THEN ROW(599, 'application/json', ARRAY[]::http_header[], '[]')::http_response
              ELSE http_stub_refuse(fn, request)
         END;
END;

CREATE FUNCTION http(request http_request) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http_stub_send('http', request);

CREATE FUNCTION http_get(uri character varying) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http_stub_send('http_get', ROW('GET', uri, NULL, NULL, NULL)::http_request);

CREATE FUNCTION http_get(uri character varying, data jsonb) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http_stub_send('http_get', ROW('GET', uri || '?' || urlencode(data), NULL, NULL, NULL)::http_request);

CREATE FUNCTION http_post(uri character varying, content character varying, content_type character varying)
RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http_stub_send('http_post', ROW('POST', uri, NULL, content_type, content)::http_request);

CREATE FUNCTION http_post(uri character varying, data jsonb) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http_stub_send('http_post', ROW('POST', uri, NULL, 'application/x-www-form-urlencoded', urlencode(data))::http_request);

CREATE FUNCTION http_put(uri character varying, content character varying, content_type character varying)
RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http_stub_send('http_put', ROW('PUT', uri, NULL, content_type, content)::http_request);

CREATE FUNCTION http_patch(uri character varying, content character varying, content_type character varying)
RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http_stub_send('http_patch', ROW('PATCH', uri, NULL, content_type, content)::http_request);

CREATE FUNCTION http_delete(uri character varying) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http_stub_send('http_delete', ROW('DELETE', uri, NULL, NULL, NULL)::http_request);

CREATE FUNCTION http_delete(uri character varying, content character varying, content_type character varying)
RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http_stub_send('http_delete', ROW('DELETE', uri, NULL, content_type, content)::http_request);

CREATE FUNCTION http_head(uri character varying) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http_stub_send('http_head', ROW('HEAD', uri, NULL, NULL, NULL)::http_request);

-- curl options are kept for the session, as pgsql-http keeps them (they would apply to
-- requests, which db-ci never sends); an option pgsql-http does not know raises.
CREATE FUNCTION http_set_curlopt(curlopt character varying, value character varying) RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
  known constant text[] := ARRAY['CURLOPT_CAINFO', 'CURLOPT_CONNECTTIMEOUT', 'CURLOPT_CONNECTTIMEOUT_MS',
    'CURLOPT_DNS_SERVERS', 'CURLOPT_PRE_PROXY', 'CURLOPT_PROXY', 'CURLOPT_PROXYPASSWORD',
    'CURLOPT_PROXYPORT', 'CURLOPT_PROXYUSERNAME', 'CURLOPT_PROXYUSERPWD', 'CURLOPT_SSLCERT',
    'CURLOPT_SSLCERTTYPE', 'CURLOPT_SSLCERT_BLOB', 'CURLOPT_SSLKEY', 'CURLOPT_SSLKEYTYPE',
    'CURLOPT_SSLKEY_BLOB', 'CURLOPT_SSL_VERIFYHOST', 'CURLOPT_SSL_VERIFYPEER', 'CURLOPT_TCP_KEEPALIVE',
    'CURLOPT_TCP_KEEPIDLE', 'CURLOPT_TIMEOUT', 'CURLOPT_TIMEOUT_MS', 'CURLOPT_USERAGENT',
    'CURLOPT_USERPWD', 'CURLOPT_CAPATH', 'CURLOPT_HTTPAUTH', 'CURLOPT_HTTP_VERSION', 'CURLOPT_INTERFACE',
    'CURLOPT_IPRESOLVE', 'CURLOPT_KEYPASSWD', 'CURLOPT_SSL_CIPHER_LIST', 'CURLOPT_SSLVERSION'];
  settings jsonb := coalesce(nullif(current_setting('http.dbci_curlopts', true), ''), '{}')::jsonb;
BEGIN
  IF NOT upper(curlopt) = ANY (known) THEN
    RAISE EXCEPTION 'curl option ''%'' is not available for run-time configuration', curlopt;
  END IF;
  PERFORM set_config('http.dbci_curlopts', (settings || jsonb_build_object(upper(curlopt), value))::text, false);
  RETURN true;
END
$fn$;

CREATE FUNCTION http_list_curlopt() RETURNS TABLE (curlopt text, value text)
LANGUAGE sql VOLATILE
BEGIN ATOMIC
  SELECT o.key, o.value
  FROM jsonb_each_text(coalesce(nullif(current_setting('http.dbci_curlopts', true), ''), '{}')::jsonb) AS o
  ORDER BY o.key;
END;

CREATE FUNCTION http_reset_curlopt() RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
  PERFORM set_config('http.dbci_curlopts', '{}', false);
  RETURN true;
END
$fn$;
