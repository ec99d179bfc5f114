-- pgjwt 1.0 for db-ci: sign/verify JSON Web Tokens with HMAC (HS256, HS384,
-- HS512). Objects are created in the extension's schema (the script runs with
-- search_path = that schema, then pgcrypto's); bodies are bound at creation.
\echo Use "CREATE EXTENSION pgjwt" to load this file. \quit

-- base64url without padding
CREATE FUNCTION url_encode(data bytea) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN translate(encode(data, 'base64'), E'+/=\n', '-_');

CREATE FUNCTION url_decode(data text) RETURNS bytea
LANGUAGE sql IMMUTABLE
RETURN decode(translate(data, '-_', '+/') || repeat('=', (4 - length(data) % 4) % 4), 'base64');

-- HMAC signature of "header.payload", base64url-encoded.
CREATE FUNCTION algorithm_sign(signables text, secret text, algorithm text) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN url_encode(hmac(
  signables,
  secret,
  CASE algorithm
    WHEN 'HS256' THEN 'sha256'
    WHEN 'HS384' THEN 'sha384'
    WHEN 'HS512' THEN 'sha512'
    ELSE ''  -- pgcrypto rejects it: unsupported algorithm
  END));

CREATE FUNCTION sign(payload json, secret text, algorithm text DEFAULT 'HS256') RETURNS text
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
  SELECT t.signables || '.' || algorithm_sign(t.signables, sign.secret, sign.algorithm)
  FROM (
    SELECT url_encode(convert_to('{"alg":"' || sign.algorithm || '","typ":"JWT"}', 'utf8'))
           || '.'
           || url_encode(convert_to(sign.payload::text, 'utf8')) AS signables
  ) t;
END;

-- NULL instead of an error for a claim that is not a number.
CREATE FUNCTION try_cast_double(inp text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  RETURN inp::double precision;
EXCEPTION WHEN OTHERS THEN
  RETURN NULL;
END
$fn$;

-- valid: the signature matches and now() lies in [nbf, exp) (a missing or
-- non-numeric claim leaves that side open).
CREATE FUNCTION verify(token text, secret text, algorithm text DEFAULT 'HS256')
RETURNS TABLE(header json, payload json, valid boolean)
LANGUAGE sql STABLE
BEGIN ATOMIC
  SELECT
    jwt.header,
    jwt.payload,
    coalesce(
      jwt.signature_ok
      AND coalesce(to_timestamp(try_cast_double(jwt.payload ->> 'nbf')) <= now(), true)
      AND coalesce(to_timestamp(try_cast_double(jwt.payload ->> 'exp')) > now(), true),
      false)
  FROM (
    SELECT
      convert_from(url_decode(p.part[1]), 'utf8')::json AS header,
      convert_from(url_decode(p.part[2]), 'utf8')::json AS payload,
      p.part[3] = algorithm_sign(p.part[1] || '.' || p.part[2], verify.secret, verify.algorithm) AS signature_ok
    FROM (SELECT string_to_array(verify.token, '.') AS part) p
  ) jwt;
END;
