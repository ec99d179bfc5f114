-- db-ci emulation of pg_jsonschema 0.3.1: a JSON Schema validator in PL/pgSQL.
-- Objects go into the schema CREATE EXTENSION chose (Supabase: extensions).
\echo Use "CREATE EXTENSION pg_jsonschema" to load this file. \quit

-- Raised where the emulation cannot decide, naming the function the caller called.
CREATE FUNCTION @extschema@._jsonschema_unsupported(fn text, what text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  RAISE EXCEPTION 'pg_jsonschema: %() cannot validate this schema in db-ci: % is not emulated', fn, what
    USING ERRCODE = 'feature_not_supported';
END
$fn$;

-- A JSON value as the error messages print it.
CREATE FUNCTION @extschema@._jsonschema_show(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
AS $fn$ SELECT left(v::text, 200) $fn$;

-- Whether instance `i` has JSON Schema type `t` (an integer is a number with no fraction).
CREATE FUNCTION @extschema@._jsonschema_is_type(i jsonb, t text) RETURNS boolean
LANGUAGE sql IMMUTABLE
AS $fn$
  SELECT CASE t
    WHEN 'integer' THEN jsonb_typeof(i) = 'number' AND (i #>> '{}')::numeric = trunc((i #>> '{}')::numeric)
    WHEN 'number' THEN jsonb_typeof(i) = 'number'
    ELSE jsonb_typeof(i) = t
  END
$fn$;

-- The common string formats; any other format is an annotation and passes.
CREATE FUNCTION @extschema@._jsonschema_format_ok(s text, fmt text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  CASE fmt
    WHEN 'date' THEN
      IF s !~ '^\d{4}-\d{2}-\d{2}$' THEN RETURN false; END IF;
      PERFORM s::date;
    WHEN 'date-time' THEN
      IF s !~* '^\d{4}-\d{2}-\d{2}t\d{2}:\d{2}:\d{2}(\.\d+)?(z|[+-]\d{2}:\d{2})$' THEN RETURN false; END IF;
      PERFORM s::timestamptz;
    WHEN 'time' THEN
      IF s !~* '^\d{2}:\d{2}:\d{2}(\.\d+)?(z|[+-]\d{2}:\d{2})$' THEN RETURN false; END IF;
      PERFORM regexp_replace(s, '(?i)(z|[+-]\d{2}:\d{2})$', '')::time;
    WHEN 'email' THEN
      RETURN s ~ '^[^@\s]+@[^@\s]+$';
    WHEN 'uuid' THEN
      RETURN s ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
    WHEN 'ipv4' THEN
      RETURN s ~ '^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$';
    WHEN 'ipv6' THEN
      IF s !~ ':' OR s ~ '/' THEN RETURN false; END IF;
      PERFORM s::inet;
    WHEN 'uri' THEN
      RETURN s ~* '^[a-z][a-z0-9+.-]*:[^\s]*$';
    WHEN 'hostname' THEN
      RETURN s ~* '^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$';
    ELSE
      RETURN true;
  END CASE;
  RETURN true;
EXCEPTION WHEN data_exception THEN
  RETURN false;
END
$fn$;

-- Regular expression match; a pattern PostgreSQL cannot compile is the schema's error.
CREATE FUNCTION @extschema@._jsonschema_matches(s text, pattern text, fn text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  RETURN s ~ pattern;
EXCEPTION WHEN invalid_regular_expression THEN
  RAISE EXCEPTION 'pg_jsonschema: %(): invalid JSON schema: pattern % is not a regular expression db-ci can evaluate (%)',
    fn, to_json(pattern), SQLERRM USING ERRCODE = 'invalid_parameter_value';
END
$fn$;

-- The schema a local "$ref" points to ("#", "#/$defs/x", "#/definitions/x", any JSON pointer).
CREATE FUNCTION @extschema@._jsonschema_resolve(root jsonb, ref text, fn text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
  target jsonb;
  parts text[];
BEGIN
  IF ref = '#' THEN
    RETURN root;
  END IF;
  IF left(ref, 2) <> '#/' THEN
    PERFORM @extschema@._jsonschema_unsupported(fn, format('the $ref %s (only local "#/..." references are resolved)', to_json(ref)));
  END IF;
  SELECT array_agg(replace(replace(p, '~1', '/'), '~0', '~') ORDER BY n)
    INTO parts
    FROM unnest(string_to_array(substr(ref, 3), '/')) WITH ORDINALITY AS u(p, n);
  target := root #> parts;
  IF target IS NULL THEN
    RAISE EXCEPTION 'pg_jsonschema: %(): invalid JSON schema: $ref % points nowhere', fn, to_json(ref)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN target;
END
$fn$;

-- Every way instance `i` (at `path`) breaks schema `s`; empty when it matches.
CREATE FUNCTION @extschema@._jsonschema_errors(
  s jsonb, i jsonb, root jsonb, path text, fn text, depth integer DEFAULT 0
) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
  errs text[] := '{}';
  at text := CASE WHEN path = '' THEN '' ELSE path || ': ' END;
  k text;
  v jsonb;
  sub jsonb;
  n numeric;
  lim numeric;
  cnt integer;
  ok boolean;
  idx integer;
  matched integer;
  types jsonb;
  prefix_len integer := 0;
BEGIN
  IF depth > 100 THEN
    RAISE EXCEPTION 'pg_jsonschema: %(): the schema recurses without end (a $ref cycle)', fn
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF s = 'true'::jsonb OR s = '{}'::jsonb THEN
    RETURN errs;
  END IF;
  IF s = 'false'::jsonb THEN
    RETURN ARRAY[at || 'False schema does not allow ' || @extschema@._jsonschema_show(i)];
  END IF;
  IF jsonb_typeof(s) <> 'object' THEN
    RAISE EXCEPTION 'pg_jsonschema: %(): invalid JSON schema: % is not a schema (an object or a boolean)', fn, @extschema@._jsonschema_show(s)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;

  IF s ? 'unevaluatedProperties' THEN
    PERFORM @extschema@._jsonschema_unsupported(fn, 'the keyword unevaluatedProperties');
  END IF;
  IF s ? 'unevaluatedItems' THEN
    PERFORM @extschema@._jsonschema_unsupported(fn, 'the keyword unevaluatedItems');
  END IF;
  IF s ? '$dynamicRef' OR s ? '$recursiveRef' THEN
    PERFORM @extschema@._jsonschema_unsupported(fn, 'a dynamic reference ($dynamicRef/$recursiveRef)');
  END IF;

  IF s ? '$ref' THEN
    errs := errs || @extschema@._jsonschema_errors(
      @extschema@._jsonschema_resolve(root, s ->> '$ref', fn), i, root, path, fn, depth + 1);
  END IF;

  -- type
  IF s ? 'type' THEN
    types := CASE WHEN jsonb_typeof(s -> 'type') = 'array' THEN s -> 'type' ELSE jsonb_build_array(s -> 'type') END;
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(types) t WHERE @extschema@._jsonschema_is_type(i, t)) THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' is not of type ' ||
        (SELECT string_agg(to_json(t)::text, ', ') FROM jsonb_array_elements_text(types) t));
    END IF;
  END IF;
  IF s ? 'enum' AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(s -> 'enum') e WHERE e = i) THEN
    errs := errs || (at || @extschema@._jsonschema_show(i) || ' is not one of ' || @extschema@._jsonschema_show(s -> 'enum'));
  END IF;
  IF s ? 'const' AND (s -> 'const') <> i THEN
    errs := errs || (at || @extschema@._jsonschema_show(s -> 'const') || ' was expected');
  END IF;

  -- numbers
  IF jsonb_typeof(i) = 'number' THEN
    n := (i #>> '{}')::numeric;
    IF jsonb_typeof(s -> 'minimum') = 'number' THEN
      lim := (s ->> 'minimum')::numeric;
      IF (s -> 'exclusiveMinimum') = 'true'::jsonb AND n <= lim THEN
        errs := errs || (at || n::text || ' is less than or equal to the minimum of ' || lim::text);
      ELSIF n < lim THEN
        errs := errs || (at || n::text || ' is less than the minimum of ' || lim::text);
      END IF;
    END IF;
    IF jsonb_typeof(s -> 'maximum') = 'number' THEN
      lim := (s ->> 'maximum')::numeric;
      IF (s -> 'exclusiveMaximum') = 'true'::jsonb AND n >= lim THEN
        errs := errs || (at || n::text || ' is greater than or equal to the maximum of ' || lim::text);
      ELSIF n > lim THEN
        errs := errs || (at || n::text || ' is greater than the maximum of ' || lim::text);
      END IF;
    END IF;
    IF jsonb_typeof(s -> 'exclusiveMinimum') = 'number' AND n <= (s ->> 'exclusiveMinimum')::numeric THEN
      errs := errs || (at || n::text || ' is less than or equal to the minimum of ' || (s ->> 'exclusiveMinimum'));
    END IF;
    IF jsonb_typeof(s -> 'exclusiveMaximum') = 'number' AND n >= (s ->> 'exclusiveMaximum')::numeric THEN
      errs := errs || (at || n::text || ' is greater than or equal to the maximum of ' || (s ->> 'exclusiveMaximum'));
    END IF;
    IF jsonb_typeof(s -> 'multipleOf') = 'number' AND mod(n, (s ->> 'multipleOf')::numeric) <> 0 THEN
      errs := errs || (at || n::text || ' is not a multiple of ' || (s ->> 'multipleOf'));
    END IF;
  END IF;

  -- strings
  IF jsonb_typeof(i) = 'string' THEN
    k := i #>> '{}';
    IF s ? 'minLength' AND char_length(k) < (s ->> 'minLength')::numeric THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' is shorter than ' || (s ->> 'minLength') || ' characters');
    END IF;
    IF s ? 'maxLength' AND char_length(k) > (s ->> 'maxLength')::numeric THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' is longer than ' || (s ->> 'maxLength') || ' characters');
    END IF;
    IF s ? 'pattern' AND NOT @extschema@._jsonschema_matches(k, s ->> 'pattern', fn) THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' does not match ' || to_json(s ->> 'pattern')::text);
    END IF;
    IF s ? 'format' AND NOT @extschema@._jsonschema_format_ok(k, s ->> 'format') THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' is not a ' || to_json(s ->> 'format')::text);
    END IF;
  END IF;

  -- arrays
  IF jsonb_typeof(i) = 'array' THEN
    cnt := jsonb_array_length(i);
    IF s ? 'minItems' AND cnt < (s ->> 'minItems')::numeric THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' has less than ' || (s ->> 'minItems') || ' items');
    END IF;
    IF s ? 'maxItems' AND cnt > (s ->> 'maxItems')::numeric THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' has more than ' || (s ->> 'maxItems') || ' items');
    END IF;
    IF (s -> 'uniqueItems') = 'true'::jsonb
       AND (SELECT count(DISTINCT e) FROM jsonb_array_elements(i) e) < cnt THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' has non-unique elements');
    END IF;
    -- prefixItems (2020-12) or items as an array (draft 4 to 2019-09): one schema per position
    IF jsonb_typeof(s -> 'prefixItems') = 'array' OR jsonb_typeof(s -> 'items') = 'array' THEN
      sub := CASE WHEN jsonb_typeof(s -> 'prefixItems') = 'array' THEN s -> 'prefixItems' ELSE s -> 'items' END;
      prefix_len := jsonb_array_length(sub);
      FOR idx IN 0 .. least(prefix_len, cnt) - 1 LOOP
        errs := errs || @extschema@._jsonschema_errors(sub -> idx, i -> idx, root, path || '/' || idx, fn, depth + 1);
      END LOOP;
      sub := CASE WHEN jsonb_typeof(s -> 'prefixItems') = 'array' THEN s -> 'items' ELSE s -> 'additionalItems' END;
    ELSE
      sub := s -> 'items';
    END IF;
    IF sub IS NOT NULL AND jsonb_typeof(sub) <> 'array' THEN
      FOR idx IN prefix_len .. cnt - 1 LOOP
        errs := errs || @extschema@._jsonschema_errors(sub, i -> idx, root, path || '/' || idx, fn, depth + 1);
      END LOOP;
    END IF;
    IF s ? 'contains' THEN
      matched := 0;
      FOR idx IN 0 .. cnt - 1 LOOP
        IF cardinality(@extschema@._jsonschema_errors(s -> 'contains', i -> idx, root, path, fn, depth + 1)) = 0 THEN
          matched := matched + 1;
        END IF;
      END LOOP;
      IF matched < coalesce((s ->> 'minContains')::numeric, 1) THEN
        errs := errs || (at || 'None of ' || @extschema@._jsonschema_show(i) || ' are valid under the given schema');
      END IF;
      IF s ? 'maxContains' AND matched > (s ->> 'maxContains')::numeric THEN
        errs := errs || (at || @extschema@._jsonschema_show(i) || ' has too many items matching the given schema');
      END IF;
    END IF;
  END IF;

  -- objects
  IF jsonb_typeof(i) = 'object' THEN
    IF jsonb_typeof(s -> 'required') = 'array' THEN
      FOR k IN SELECT r FROM jsonb_array_elements_text(s -> 'required') r LOOP
        IF NOT i ? k THEN
          errs := errs || (at || to_json(k)::text || ' is a required property');
        END IF;
      END LOOP;
    END IF;
    cnt := (SELECT count(*) FROM jsonb_object_keys(i));
    IF s ? 'minProperties' AND cnt < (s ->> 'minProperties')::numeric THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' has less than ' || (s ->> 'minProperties') || ' properties');
    END IF;
    IF s ? 'maxProperties' AND cnt > (s ->> 'maxProperties')::numeric THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' has more than ' || (s ->> 'maxProperties') || ' properties');
    END IF;
    FOR k, v IN SELECT e.key, e.value FROM jsonb_each(i) e LOOP
      ok := false;  -- evaluated by properties or patternProperties
      IF jsonb_typeof(s -> 'properties') = 'object' AND (s -> 'properties') ? k THEN
        ok := true;
        errs := errs || @extschema@._jsonschema_errors(s -> 'properties' -> k, v, root, path || '/' || k, fn, depth + 1);
      END IF;
      IF jsonb_typeof(s -> 'patternProperties') = 'object' THEN
        FOR sub IN SELECT p.value FROM jsonb_each(s -> 'patternProperties') p
                   WHERE @extschema@._jsonschema_matches(k, p.key, fn) LOOP
          ok := true;
          errs := errs || @extschema@._jsonschema_errors(sub, v, root, path || '/' || k, fn, depth + 1);
        END LOOP;
      END IF;
      IF NOT ok AND s ? 'additionalProperties' THEN
        IF (s -> 'additionalProperties') = 'false'::jsonb THEN
          errs := errs || (at || 'Additional properties are not allowed (' || to_json(k)::text || ' was unexpected)');
        ELSE
          errs := errs || @extschema@._jsonschema_errors(s -> 'additionalProperties', v, root, path || '/' || k, fn, depth + 1);
        END IF;
      END IF;
      IF s ? 'propertyNames' THEN
        errs := errs || @extschema@._jsonschema_errors(s -> 'propertyNames', to_jsonb(k), root, path, fn, depth + 1);
      END IF;
      -- dependentRequired / dependentSchemas (2019-09+) and dependencies (draft 4 to 7)
      IF jsonb_typeof(s -> 'dependentRequired' -> k) = 'array' THEN
        errs := errs || (SELECT coalesce(array_agg(at || to_json(d)::text || ' is a dependency of ' || to_json(k)::text), '{}')
                         FROM jsonb_array_elements_text(s -> 'dependentRequired' -> k) d WHERE NOT i ? d);
      END IF;
      IF (s -> 'dependentSchemas') ? k THEN
        errs := errs || @extschema@._jsonschema_errors(s -> 'dependentSchemas' -> k, i, root, path, fn, depth + 1);
      END IF;
      IF jsonb_typeof(s -> 'dependencies' -> k) = 'array' THEN
        errs := errs || (SELECT coalesce(array_agg(at || to_json(d)::text || ' is a dependency of ' || to_json(k)::text), '{}')
                         FROM jsonb_array_elements_text(s -> 'dependencies' -> k) d WHERE NOT i ? d);
      ELSIF (s -> 'dependencies') ? k THEN
        errs := errs || @extschema@._jsonschema_errors(s -> 'dependencies' -> k, i, root, path, fn, depth + 1);
      END IF;
    END LOOP;
  END IF;

  -- combinators
  IF jsonb_typeof(s -> 'allOf') = 'array' THEN
    FOR sub IN SELECT e FROM jsonb_array_elements(s -> 'allOf') e LOOP
      errs := errs || @extschema@._jsonschema_errors(sub, i, root, path, fn, depth + 1);
    END LOOP;
  END IF;
  IF jsonb_typeof(s -> 'anyOf') = 'array' THEN
    ok := false;
    FOR sub IN SELECT e FROM jsonb_array_elements(s -> 'anyOf') e LOOP
      IF cardinality(@extschema@._jsonschema_errors(sub, i, root, path, fn, depth + 1)) = 0 THEN
        ok := true;
        EXIT;
      END IF;
    END LOOP;
    IF NOT ok THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' is not valid under any of the given schemas');
    END IF;
  END IF;
  IF jsonb_typeof(s -> 'oneOf') = 'array' THEN
    matched := 0;
    FOR sub IN SELECT e FROM jsonb_array_elements(s -> 'oneOf') e LOOP
      IF cardinality(@extschema@._jsonschema_errors(sub, i, root, path, fn, depth + 1)) = 0 THEN
        matched := matched + 1;
      END IF;
    END LOOP;
    IF matched = 0 THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' is not valid under any of the given schemas');
    ELSIF matched > 1 THEN
      errs := errs || (at || @extschema@._jsonschema_show(i) || ' is valid under more than one of the given schemas');
    END IF;
  END IF;
  IF s ? 'not' AND cardinality(@extschema@._jsonschema_errors(s -> 'not', i, root, path, fn, depth + 1)) = 0 THEN
    errs := errs || (at || @extschema@._jsonschema_show(s -> 'not') || ' is not allowed for ' || @extschema@._jsonschema_show(i));
  END IF;
  IF s ? 'if' THEN
    IF cardinality(@extschema@._jsonschema_errors(s -> 'if', i, root, path, fn, depth + 1)) = 0 THEN
      IF s ? 'then' THEN
        errs := errs || @extschema@._jsonschema_errors(s -> 'then', i, root, path, fn, depth + 1);
      END IF;
    ELSIF s ? 'else' THEN
      errs := errs || @extschema@._jsonschema_errors(s -> 'else', i, root, path, fn, depth + 1);
    END IF;
  END IF;
  RETURN errs;
END
$fn$;

-- What makes `s` no valid JSON Schema (the keywords' shapes as the meta-schemas require).
CREATE FUNCTION @extschema@._jsonschema_problems(s jsonb, depth integer DEFAULT 0) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
  errs text[] := '{}';
  k text;
  v jsonb;
  e jsonb;
BEGIN
  IF depth > 200 THEN
    RETURN ARRAY['the schema nests too deeply'];
  END IF;
  IF jsonb_typeof(s) = 'boolean' THEN
    RETURN errs;
  END IF;
  IF jsonb_typeof(s) IS DISTINCT FROM 'object' THEN
    RETURN ARRAY[left(s::text, 200) || ' is not of types "boolean", "object"'];
  END IF;
  FOR k, v IN SELECT x.key, x.value FROM jsonb_each(s) x LOOP
    CASE
      WHEN k = 'type' THEN
        IF NOT (
          (jsonb_typeof(v) = 'string' AND v #>> '{}' IN ('null', 'boolean', 'object', 'array', 'number', 'string', 'integer'))
          OR (jsonb_typeof(v) = 'array' AND jsonb_array_length(v) > 0 AND NOT EXISTS (
                SELECT 1 FROM jsonb_array_elements(v) t
                WHERE jsonb_typeof(t) <> 'string'
                   OR t #>> '{}' NOT IN ('null', 'boolean', 'object', 'array', 'number', 'string', 'integer')))
        ) THEN
          errs := errs || (left(v::text, 200) || ' is not valid under any of the given schemas (type)');
        END IF;
      WHEN k IN ('properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas') THEN
        IF jsonb_typeof(v) <> 'object' THEN
          errs := errs || (left(v::text, 200) || ' is not of type "object" (' || k || ')');
        ELSE
          FOR e IN SELECT x.value FROM jsonb_each(v) x LOOP
            errs := errs || @extschema@._jsonschema_problems(e, depth + 1);
          END LOOP;
          IF k = 'patternProperties' THEN
            FOR e IN SELECT to_jsonb(x) FROM jsonb_object_keys(v) x LOOP
              BEGIN
                PERFORM '' ~ (e #>> '{}');
              EXCEPTION WHEN invalid_regular_expression THEN
                errs := errs || (e::text || ' is not a "regex"');
              END;
            END LOOP;
          END IF;
        END IF;
      WHEN k IN ('additionalProperties', 'additionalItems', 'not', 'if', 'then', 'else', 'contains', 'propertyNames') THEN
        errs := errs || @extschema@._jsonschema_problems(v, depth + 1);
      WHEN k = 'items' THEN
        IF jsonb_typeof(v) = 'array' THEN
          FOR e IN SELECT x FROM jsonb_array_elements(v) x LOOP
            errs := errs || @extschema@._jsonschema_problems(e, depth + 1);
          END LOOP;
        ELSE
          errs := errs || @extschema@._jsonschema_problems(v, depth + 1);
        END IF;
      WHEN k IN ('allOf', 'anyOf', 'oneOf', 'prefixItems') THEN
        IF jsonb_typeof(v) <> 'array' OR jsonb_array_length(v) = 0 THEN
          errs := errs || (left(v::text, 200) || ' is not a non-empty array (' || k || ')');
        ELSE
          FOR e IN SELECT x FROM jsonb_array_elements(v) x LOOP
            errs := errs || @extschema@._jsonschema_problems(e, depth + 1);
          END LOOP;
        END IF;
      WHEN k = 'required' THEN
        IF jsonb_typeof(v) <> 'array'
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) x WHERE jsonb_typeof(x) <> 'string')
           OR (SELECT count(DISTINCT x) FROM jsonb_array_elements(v) x) < jsonb_array_length(v) THEN
          errs := errs || (left(v::text, 200) || ' is not an array of unique strings (required)');
        END IF;
      WHEN k = 'enum' THEN
        IF jsonb_typeof(v) <> 'array' THEN
          errs := errs || (left(v::text, 200) || ' is not of type "array" (enum)');
        END IF;
      WHEN k IN ('minLength', 'maxLength', 'minItems', 'maxItems', 'minProperties', 'maxProperties', 'minContains', 'maxContains') THEN
        IF jsonb_typeof(v) <> 'number' OR (v #>> '{}')::numeric < 0
           OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric) THEN
          errs := errs || (left(v::text, 200) || ' is not a non-negative integer (' || k || ')');
        END IF;
      WHEN k IN ('minimum', 'maximum') THEN
        IF jsonb_typeof(v) <> 'number' THEN
          errs := errs || (left(v::text, 200) || ' is not of type "number" (' || k || ')');
        END IF;
      WHEN k IN ('exclusiveMinimum', 'exclusiveMaximum') THEN
        IF jsonb_typeof(v) NOT IN ('number', 'boolean') THEN
          errs := errs || (left(v::text, 200) || ' is not of type "number" (' || k || ')');
        END IF;
      WHEN k = 'multipleOf' THEN
        IF jsonb_typeof(v) <> 'number' OR (v #>> '{}')::numeric <= 0 THEN
          errs := errs || (left(v::text, 200) || ' is not a number greater than 0 (multipleOf)');
        END IF;
      WHEN k = 'uniqueItems' THEN
        IF jsonb_typeof(v) <> 'boolean' THEN
          errs := errs || (left(v::text, 200) || ' is not of type "boolean" (uniqueItems)');
        END IF;
      WHEN k IN ('pattern', 'format', '$ref', '$schema', '$id', 'title', 'description', '$comment') THEN
        IF jsonb_typeof(v) <> 'string' THEN
          errs := errs || (left(v::text, 200) || ' is not of type "string" (' || k || ')');
        ELSIF k = 'pattern' THEN
          BEGIN
            PERFORM '' ~ (v #>> '{}');
          EXCEPTION WHEN invalid_regular_expression THEN
            errs := errs || (v::text || ' is not a "regex"');
          END;
        END IF;
      ELSE
        NULL;  -- annotations and unknown keywords are allowed
    END CASE;
  END LOOP;
  RETURN errs;
END
$fn$;

CREATE FUNCTION @extschema@._jsonschema_check(schema jsonb, fn text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $fn$
DECLARE
  problems text[] := @extschema@._jsonschema_problems(schema);
BEGIN
  IF cardinality(problems) > 0 THEN
    RAISE EXCEPTION 'pg_jsonschema: %(): invalid JSON schema: %', fn, array_to_string(problems, '; ')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
END
$fn$;

CREATE FUNCTION @extschema@.jsonschema_is_valid(schema json) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$ SELECT cardinality(@extschema@._jsonschema_problems(schema::jsonb)) = 0 $fn$;

CREATE FUNCTION @extschema@.jsonschema_validation_errors(schema json, instance json) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
BEGIN
  PERFORM @extschema@._jsonschema_check(schema::jsonb, 'jsonschema_validation_errors');
  RETURN @extschema@._jsonschema_errors(schema::jsonb, instance::jsonb, schema::jsonb, '', 'jsonschema_validation_errors');
END
$fn$;

CREATE FUNCTION @extschema@.json_matches_schema(schema json, instance json) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
BEGIN
  PERFORM @extschema@._jsonschema_check(schema::jsonb, 'json_matches_schema');
  RETURN cardinality(@extschema@._jsonschema_errors(schema::jsonb, instance::jsonb, schema::jsonb, '', 'json_matches_schema')) = 0;
END
$fn$;

CREATE FUNCTION @extschema@.jsonb_matches_schema(schema json, instance jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $fn$
BEGIN
  PERFORM @extschema@._jsonschema_check(schema::jsonb, 'jsonb_matches_schema');
  RETURN cardinality(@extschema@._jsonschema_errors(schema::jsonb, instance, schema::jsonb, '', 'jsonb_matches_schema')) = 0;
END
$fn$;
