-- db-ci stub of pg_net 1.0: the SQL API of pg_net, no network access.
-- Requests are queued in net.http_request_queue and never processed.
\echo Use "CREATE EXTENSION pg_net" to load this file. \quit

CREATE SCHEMA IF NOT EXISTS net;

CREATE DOMAIN net.http_method AS text
  CHECK (VALUE ILIKE 'get' OR VALUE ILIKE 'post' OR VALUE ILIKE 'delete');

-- Pending requests (with pg_net, the worker drains this table; here nothing does).
CREATE TABLE net.http_request_queue (
  id bigserial NOT NULL,
  method net.http_method NOT NULL,
  url text NOT NULL,
  headers jsonb NOT NULL,
  body bytea,
  timeout_milliseconds integer NOT NULL
);

-- Responses (never filled by the stub).
CREATE TABLE net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamp with time zone NOT NULL DEFAULT now()
);
CREATE INDEX ON net._http_response (created);

-- Percent-encoding of everything but RFC 3986 unreserved characters.
CREATE FUNCTION net._urlencode_string(string character varying)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT
AS $fn$
DECLARE
  bytes bytea := convert_to(string, 'UTF8');
  result text := '';
  b integer;
BEGIN
  FOR i IN 0 .. length(bytes) - 1 LOOP
    b := get_byte(bytes, i);
    IF b BETWEEN 48 AND 57 OR b BETWEEN 65 AND 90 OR b BETWEEN 97 AND 122
       OR b IN (45, 46, 95, 126) THEN
      result := result || chr(b);
    ELSE
      result := result || '%' || upper(lpad(to_hex(b), 2, '0'));
    END IF;
  END LOOP;
  RETURN result;
END
$fn$;

-- url plus the params object as an encoded query string.
CREATE FUNCTION net._encode_url_with_params(url text, params jsonb)
RETURNS text
LANGUAGE sql IMMUTABLE
AS $fn$
  SELECT CASE
    WHEN q.query IS NULL THEN url
    WHEN position('?' in url) > 0 THEN url || '&' || q.query
    ELSE url || '?' || q.query
  END
  FROM (
    SELECT string_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value), '&') AS query
    FROM jsonb_each_text(coalesce(params, '{}'::jsonb))
  ) q
$fn$;

CREATE FUNCTION net.http_get(
  url text,
  params jsonb DEFAULT '{}'::jsonb,
  headers jsonb DEFAULT '{}'::jsonb,
  timeout_milliseconds integer DEFAULT 5000
)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path TO 'net'
AS $fn$
DECLARE
  request_id bigint;
BEGIN
  INSERT INTO net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  VALUES ('GET', net._encode_url_with_params(http_get.url, http_get.params),
          coalesce(http_get.headers, '{}'::jsonb), NULL, http_get.timeout_milliseconds)
  RETURNING id INTO request_id;
  RETURN request_id;
END
$fn$;

CREATE FUNCTION net.http_post(
  url text,
  body jsonb DEFAULT '{}'::jsonb,
  params jsonb DEFAULT '{}'::jsonb,
  headers jsonb DEFAULT '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer DEFAULT 5000
)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path TO 'net'
AS $fn$
DECLARE
  request_id bigint;
  hdrs jsonb := coalesce(http_post.headers, '{}'::jsonb);
  content_type text;
BEGIN
  SELECT h.value INTO content_type
  FROM jsonb_each_text(hdrs) AS h(key, value)
  WHERE lower(h.key) = 'content-type'
  LIMIT 1;

  -- pg_net: a missing Content-Type is added, any other than JSON refused
  IF content_type IS NULL THEN
    hdrs := hdrs || '{"Content-Type": "application/json"}'::jsonb;
  ELSIF content_type <> 'application/json' THEN
    RAISE EXCEPTION 'Content-Type header must be "application/json"';
  END IF;

  INSERT INTO net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  VALUES ('POST', net._encode_url_with_params(http_post.url, http_post.params), hdrs,
          convert_to(http_post.body::text, 'UTF8'), http_post.timeout_milliseconds)
  RETURNING id INTO request_id;
  RETURN request_id;
END
$fn$;

CREATE FUNCTION net.http_delete(
  url text,
  params jsonb DEFAULT '{}'::jsonb,
  headers jsonb DEFAULT '{}'::jsonb,
  timeout_milliseconds integer DEFAULT 5000,
  body jsonb DEFAULT NULL::jsonb
)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path TO 'net'
AS $fn$
DECLARE
  request_id bigint;
BEGIN
  INSERT INTO net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  VALUES ('DELETE', net._encode_url_with_params(http_delete.url, http_delete.params),
          coalesce(http_delete.headers, '{}'::jsonb),
          convert_to(http_delete.body::text, 'UTF8'), http_delete.timeout_milliseconds)
  RETURNING id INTO request_id;
  RETURN request_id;
END
$fn$;

-- Access as the platform grants it (its issue_pg_net_access event trigger):
-- the request functions run as their owner and are callable by the API roles.
REVOKE ALL ON FUNCTION net.http_get(text, jsonb, jsonb, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION net.http_post(text, jsonb, jsonb, jsonb, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION net.http_delete(text, jsonb, jsonb, integer, jsonb) FROM PUBLIC;

DO $grants$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['supabase_functions_admin', 'postgres', 'anon', 'authenticated', 'service_role'] LOOP
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      EXECUTE format('GRANT USAGE ON SCHEMA net TO %I', r);
      EXECUTE format('GRANT EXECUTE ON FUNCTION net.http_get(text, jsonb, jsonb, integer), '
                     'net.http_post(text, jsonb, jsonb, jsonb, integer), '
                     'net.http_delete(text, jsonb, jsonb, integer, jsonb) TO %I', r);
    END IF;
  END LOOP;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'postgres') THEN
    GRANT ALL ON SCHEMA net TO postgres;
    GRANT ALL ON ALL TABLES IN SCHEMA net TO postgres;
  END IF;
END
$grants$;
