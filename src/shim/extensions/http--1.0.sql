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

CREATE FUNCTION http(request http_request) RETURNS http_response
LANGUAGE sql VOLATILE
BEGIN ATOMIC
  INSERT INTO http_stub_calls (method, uri, headers, content_type, content)
  VALUES (upper((request).method), (request).uri, (request).headers,
          (request).content_type, (request).content);
  -- database.dev (dbdev's registry) gets an empty JSON list, "no package version": the
  -- dbdev bootstrap test files copy then installs nothing, and db-ci's own supabase-dbdev
  -- and test-helpers stubs are what CREATE EXTENSION finds.
  SELECT ROW(599,
             CASE WHEN (request).uri LIKE 'https://api.database.dev/%' THEN 'application/json'
                  ELSE 'text/plain' END,
             ARRAY[]::http_header[],
             CASE WHEN (request).uri LIKE 'https://api.database.dev/%' THEN '[]'
                  ELSE 'db-ci stub: the http extension is not available in this database; no request was sent' END
         )::http_response;
END;

CREATE FUNCTION http_get(uri character varying) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http(ROW('GET', uri, NULL, NULL, NULL)::http_request);

CREATE FUNCTION http_get(uri character varying, data jsonb) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http(ROW('GET', uri || '?' || urlencode(data), NULL, NULL, NULL)::http_request);

CREATE FUNCTION http_post(uri character varying, content character varying, content_type character varying)
RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http(ROW('POST', uri, NULL, content_type, content)::http_request);

CREATE FUNCTION http_post(uri character varying, data jsonb) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http(ROW('POST', uri, NULL, 'application/x-www-form-urlencoded', urlencode(data))::http_request);

CREATE FUNCTION http_put(uri character varying, content character varying, content_type character varying)
RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http(ROW('PUT', uri, NULL, content_type, content)::http_request);

CREATE FUNCTION http_patch(uri character varying, content character varying, content_type character varying)
RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http(ROW('PATCH', uri, NULL, content_type, content)::http_request);

CREATE FUNCTION http_delete(uri character varying) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http(ROW('DELETE', uri, NULL, NULL, NULL)::http_request);

CREATE FUNCTION http_delete(uri character varying, content character varying, content_type character varying)
RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http(ROW('DELETE', uri, NULL, content_type, content)::http_request);

CREATE FUNCTION http_head(uri character varying) RETURNS http_response
LANGUAGE sql VOLATILE
RETURN http(ROW('HEAD', uri, NULL, NULL, NULL)::http_request);

-- curl options are accepted and ignored.
CREATE FUNCTION http_set_curlopt(curlopt character varying, value character varying) RETURNS boolean
LANGUAGE sql VOLATILE
RETURN true;

CREATE FUNCTION http_reset_curlopt() RETURNS boolean
LANGUAGE sql VOLATILE
RETURN true;
