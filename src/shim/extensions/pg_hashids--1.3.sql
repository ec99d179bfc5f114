-- db-ci emulation of pg_hashids 1.3: the Hashids algorithm (as hashids.c, which pg_hashids
-- wraps) written in PL/pgSQL. Objects go into the schema CREATE EXTENSION chose.
\echo Use "CREATE EXTENSION pg_hashids" to load this file. \quit

-- Hashids' consistent shuffle of `s` by `salt`.
CREATE FUNCTION @extschema@._hashids_reorder(s text, salt text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
DECLARE
  a text[] := regexp_split_to_array(s, '');
  salt_len integer := length(salt);
  idx integer := 0;
  total integer := 0;
  v integer;
  j integer;
  t text;
BEGIN
  IF salt_len = 0 OR length(s) < 2 THEN
    RETURN s;
  END IF;
  FOR i IN REVERSE length(s) - 1 .. 1 LOOP
    v := ascii(substr(salt, idx + 1, 1));
    total := total + v;
    j := (v + idx + total) % i;
    t := a[i + 1];
    a[i + 1] := a[j + 1];
    a[j + 1] := t;
    idx := (idx + 1) % salt_len;
  END LOOP;
  RETURN array_to_string(a, '');
END
$fn$;

-- The alphabet, separators and guards a salt and an alphabet give.
CREATE FUNCTION @extschema@._hashids_setup(salt text, alphabet text, fn text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $fn$
DECLARE
  uniq text := '';
  seps text := '';
  c text;
  n integer;
  diff integer;
  guards text;
BEGIN
  salt := coalesce(salt, '');
  alphabet := coalesce(alphabet, 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ1234567890');
  FOREACH c IN ARRAY regexp_split_to_array(alphabet, '') LOOP
    IF strpos(uniq, c) = 0 THEN
      uniq := uniq || c;
    END IF;
  END LOOP;
  IF length(uniq) < 16 THEN
    RAISE EXCEPTION 'pg_hashids: %(): the alphabet must contain at least 16 unique characters', fn
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF strpos(uniq, ' ') > 0 THEN
    RAISE EXCEPTION 'pg_hashids: %(): the alphabet must not contain spaces', fn
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOREACH c IN ARRAY regexp_split_to_array('cfhistuCFHISTU', '') LOOP
    IF strpos(uniq, c) > 0 THEN
      seps := seps || c;
      uniq := replace(uniq, c, '');
    END IF;
  END LOOP;
  seps := @extschema@._hashids_reorder(seps, salt);
  IF length(seps) = 0 OR length(uniq)::numeric / length(seps) > 3.5 THEN
    n := ceil(length(uniq)::numeric / 3.5)::integer;
    IF n = 1 THEN
      n := 2;
    END IF;
    IF n > length(seps) THEN
      diff := n - length(seps);
      seps := seps || left(uniq, diff);
      uniq := substr(uniq, diff + 1);
    ELSE
      seps := left(seps, n);
    END IF;
  END IF;
  uniq := @extschema@._hashids_reorder(uniq, salt);
  n := ceil(length(uniq)::numeric / 12)::integer;
  IF length(uniq) < 3 THEN
    guards := left(seps, n);
    seps := substr(seps, n + 1);
  ELSE
    guards := left(uniq, n);
    uniq := substr(uniq, n + 1);
  END IF;
  RETURN ARRAY[uniq, seps, guards];
END
$fn$;

CREATE FUNCTION @extschema@._hashids_encode(numbers bigint[], salt text, min_length integer, alphabet text, fn text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $fn$
DECLARE
  setup text[] := @extschema@._hashids_setup(salt, alphabet, fn);
  alpha text := setup[1];
  seps text := setup[2];
  guards text := setup[3];
  alpha_len integer := length(setup[1]);
  values_hash bigint := 0;
  lottery text;
  encoded text;
  last text;
  v bigint;
  x bigint;
  split_at integer;
  excess integer;
BEGIN
  salt := coalesce(salt, '');
  min_length := greatest(coalesce(min_length, 0), 0);
  IF numbers IS NULL OR cardinality(numbers) = 0 THEN
    RETURN '';
  END IF;
  FOR i IN 1 .. cardinality(numbers) LOOP
    IF numbers[i] IS NULL OR numbers[i] < 0 THEN
      RAISE EXCEPTION 'pg_hashids: %(): only non-negative numbers can be encoded, got %', fn, coalesce(numbers[i]::text, 'NULL')
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    values_hash := values_hash + numbers[i] % (i - 1 + 100);
  END LOOP;
  lottery := substr(alpha, (values_hash % alpha_len)::integer + 1, 1);
  encoded := lottery;
  FOR i IN 1 .. cardinality(numbers) LOOP
    alpha := @extschema@._hashids_reorder(alpha, left(lottery || salt || alpha, alpha_len));
    v := numbers[i];
    last := '';
    x := v;
    LOOP
      last := substr(alpha, (x % alpha_len)::integer + 1, 1) || last;
      x := x / alpha_len;
      EXIT WHEN x = 0;
    END LOOP;
    encoded := encoded || last;
    IF i < cardinality(numbers) THEN
      v := v % (ascii(last) + i - 1);
      encoded := encoded || substr(seps, (v % length(seps))::integer + 1, 1);
    END IF;
  END LOOP;
  IF length(encoded) < min_length THEN
    encoded := substr(guards, ((values_hash + ascii(encoded)) % length(guards))::integer + 1, 1) || encoded;
    IF length(encoded) < min_length THEN
      encoded := encoded || substr(guards, ((values_hash + ascii(substr(encoded, 3, 1))) % length(guards))::integer + 1, 1);
    END IF;
    split_at := alpha_len / 2;
    WHILE length(encoded) < min_length LOOP
      alpha := @extschema@._hashids_reorder(alpha, alpha);
      encoded := substr(alpha, split_at + 1) || encoded || left(alpha, split_at);
      excess := length(encoded) - min_length;
      IF excess > 0 THEN
        encoded := substr(encoded, excess / 2 + 1, min_length);
      END IF;
    END LOOP;
  END IF;
  RETURN encoded;
END
$fn$;

-- The numbers in `hash`, or an empty array when it is no hash of this salt and alphabet
-- (re-encoding them must give `hash` back).
CREATE FUNCTION @extschema@._hashids_decode(hash text, salt text, min_length integer, alphabet text, fn text)
RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $fn$
DECLARE
  setup text[] := @extschema@._hashids_setup(salt, alphabet, fn);
  alpha text := setup[1];
  seps text := setup[2];
  guards text := setup[3];
  alpha_len integer := length(setup[1]);
  parts text[];
  body text;
  lottery text;
  part text;
  n numeric;
  pos integer;
  result bigint[] := '{}';
BEGIN
  salt := coalesce(salt, '');
  IF hash IS NULL OR hash = '' THEN
    RETURN '{}';
  END IF;
  parts := regexp_split_to_array(hash, '[' || regexp_replace(guards, '([\]\[\\^-])', '\\\1', 'g') || ']');
  body := CASE WHEN cardinality(parts) IN (2, 3) THEN parts[2] ELSE parts[1] END;
  IF body = '' THEN
    RETURN '{}';
  END IF;
  lottery := left(body, 1);
  body := substr(body, 2);
  FOREACH part IN ARRAY regexp_split_to_array(body, '[' || regexp_replace(seps, '([\]\[\\^-])', '\\\1', 'g') || ']') LOOP
    alpha := @extschema@._hashids_reorder(alpha, left(lottery || salt || alpha, alpha_len));
    n := 0;
    FOR k IN 1 .. length(part) LOOP
      pos := strpos(alpha, substr(part, k, 1));
      IF pos = 0 THEN
        RETURN '{}';
      END IF;
      n := n * alpha_len + (pos - 1);
    END LOOP;
    IF n > 9223372036854775807 THEN
      RETURN '{}';
    END IF;
    result := result || n::bigint;
  END LOOP;
  IF @extschema@._hashids_encode(result, salt, min_length, alphabet, fn) IS DISTINCT FROM hash THEN
    RETURN '{}';
  END IF;
  RETURN result;
END
$fn$;

CREATE FUNCTION @extschema@.id_encode(bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_encode(ARRAY[$1], '', 0, NULL, 'id_encode') $fn$;
CREATE FUNCTION @extschema@.id_encode(bigint, text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_encode(ARRAY[$1], $2, 0, NULL, 'id_encode') $fn$;
CREATE FUNCTION @extschema@.id_encode(bigint, text, integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_encode(ARRAY[$1], $2, $3, NULL, 'id_encode') $fn$;
CREATE FUNCTION @extschema@.id_encode(bigint, text, integer, text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_encode(ARRAY[$1], $2, $3, $4, 'id_encode') $fn$;
CREATE FUNCTION @extschema@.id_encode(bigint[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_encode($1, '', 0, NULL, 'id_encode') $fn$;
CREATE FUNCTION @extschema@.id_encode(bigint[], text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_encode($1, $2, 0, NULL, 'id_encode') $fn$;
CREATE FUNCTION @extschema@.id_encode(bigint[], text, integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_encode($1, $2, $3, NULL, 'id_encode') $fn$;
CREATE FUNCTION @extschema@.id_encode(bigint[], text, integer, text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_encode($1, $2, $3, $4, 'id_encode') $fn$;

CREATE FUNCTION @extschema@.id_decode(text) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_decode($1, '', 0, NULL, 'id_decode') $fn$;
CREATE FUNCTION @extschema@.id_decode(text, text) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_decode($1, $2, 0, NULL, 'id_decode') $fn$;
CREATE FUNCTION @extschema@.id_decode(text, text, integer) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_decode($1, $2, $3, NULL, 'id_decode') $fn$;
CREATE FUNCTION @extschema@.id_decode(text, text, integer, text) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT @extschema@._hashids_decode($1, $2, $3, $4, 'id_decode') $fn$;

CREATE FUNCTION @extschema@.id_decode_once(text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT (@extschema@._hashids_decode($1, '', 0, NULL, 'id_decode_once'))[1] $fn$;
CREATE FUNCTION @extschema@.id_decode_once(text, text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT (@extschema@._hashids_decode($1, $2, 0, NULL, 'id_decode_once'))[1] $fn$;
CREATE FUNCTION @extschema@.id_decode_once(text, text, integer) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT (@extschema@._hashids_decode($1, $2, $3, NULL, 'id_decode_once'))[1] $fn$;
CREATE FUNCTION @extschema@.id_decode_once(text, text, integer, text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT (@extschema@._hashids_decode($1, $2, $3, $4, 'id_decode_once'))[1] $fn$;
