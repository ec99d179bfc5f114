-- db-ci's emulations of pgmq, pg_jsonschema, index_advisor, pgsodium and pg_hashids do the
-- work, and raise naming the extension and function where they cannot. Each part is skipped
-- (NOTICE) when the server offers the real extension instead. Everything is undone at the end.
DO $$
DECLARE
  emulated text[] := ARRAY(SELECT name FROM pg_available_extensions WHERE comment LIKE '%db-ci emulation%');
  ids bigint[];
  m record;
  msg text;
  s json;
BEGIN
  BEGIN
    IF 'pgmq' = ANY (emulated) THEN
      CREATE EXTENSION pgmq;
      PERFORM pgmq.create('Shim_Q');
      ASSERT (SELECT queue_name FROM pgmq.list_queues()) = 'shim_q', 'queue names are lower-cased';
      SELECT array_agg(i) INTO ids FROM pgmq.send_batch('shim_q', ARRAY['{"n":1}', '{"n":2}', '{"n":3}']::jsonb[]) i;
      ASSERT (SELECT array_agg(msg_id ORDER BY msg_id) FROM pgmq.read('shim_q', 60, 2)) = ids[1:2], 'read takes the oldest first';
      ASSERT (SELECT array_agg(msg_id) FROM pgmq.read('shim_q', 60, 5)) = ids[3:3], 'read skips invisible messages';
      ASSERT NOT EXISTS (SELECT 1 FROM pgmq.read_with_poll('shim_q', 60, 1, 1, 50)), 'poll gives up when nothing is visible';
      ASSERT (SELECT array_agg(a ORDER BY a) FROM pgmq.archive('shim_q', ids[1:2]) a) = ids[1:2], 'archive an array';
      ASSERT (SELECT count(*) FROM pgmq.a_shim_q) = 2, 'archived rows';
      ASSERT (SELECT array_agg(d) FROM pgmq.delete('shim_q', ARRAY[ids[3], 999]) d) = ids[3:3], 'delete answers what it deleted';
      ASSERT (SELECT total_messages FROM pgmq.metrics('shim_q')) = 3, 'metrics count every message sent';
      PERFORM pgmq.send('shim_q', '{"n":4}');
      ASSERT pgmq.purge_queue('shim_q') = 1, 'purge answers how many it removed';
      BEGIN
        PERFORM pgmq.send('no_such_queue', '{}');
        RAISE EXCEPTION 'send to a missing queue must raise';
      EXCEPTION WHEN undefined_table THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        ASSERT msg LIKE 'pgmq: queue "no_such_queue" does not exist%', msg;
      END;
      BEGIN
        PERFORM pgmq.create_partitioned('p');
        RAISE EXCEPTION 'create_partitioned must raise';
      EXCEPTION WHEN feature_not_supported THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        ASSERT msg LIKE 'pgmq: pgmq.create_partitioned()%', msg;
      END;
      DROP EXTENSION pgmq;
      ASSERT to_regclass('pgmq.q_shim_q') IS NULL, 'the queue tables belong to the extension';
    ELSE
      RAISE NOTICE 'pgmq: the server''s own extension is used, emulation checks skipped';
    END IF;

    IF 'pg_jsonschema' = ANY (emulated) THEN
      CREATE EXTENSION pg_jsonschema WITH SCHEMA extensions;
      s := '{"type": "object", "properties": {"a": {"type": "integer", "multipleOf": 2}, "b": {"type": ["string", "null"], "minLength": 2}},
             "required": ["a"], "additionalProperties": false}';
      ASSERT extensions.json_matches_schema(s, '{"a": 4, "b": null}'), 'valid';
      ASSERT NOT extensions.json_matches_schema(s, '{"a": 3}'), 'multipleOf';
      ASSERT NOT extensions.json_matches_schema(s, '{"a": 2.5}'), 'integer';
      ASSERT extensions.json_matches_schema(s, '{"a": 2.0}'), '2.0 is an integer';
      ASSERT NOT extensions.json_matches_schema(s, '{"a": 2, "b": "x"}'), 'minLength';
      ASSERT NOT extensions.json_matches_schema(s, '{"a": 2, "c": 1}'), 'additionalProperties false';
      ASSERT NOT extensions.jsonb_matches_schema(s, '[]'), 'type object';
      ASSERT extensions.jsonb_matches_schema('{"items": [{"type": "string"}], "additionalItems": false}', '["x"]'), 'tuple (draft 7)';
      ASSERT NOT extensions.jsonb_matches_schema('{"items": [{"type": "string"}], "additionalItems": false}', '["x", 1]'), 'additionalItems';
      ASSERT NOT extensions.jsonb_matches_schema('{"prefixItems": [{"type": "string"}], "items": false}', '["x", 1]'), 'prefixItems (2020-12)';
      ASSERT extensions.jsonb_matches_schema('{"contains": {"const": 3}, "maxContains": 1}', '[1, 3]'), 'contains';
      ASSERT NOT extensions.jsonb_matches_schema('{"contains": {"const": 3}, "maxContains": 1}', '[3, 3]'), 'maxContains';
      ASSERT NOT extensions.jsonb_matches_schema('{"oneOf": [{"minimum": 0}, {"maximum": 10}]}', '5'), 'oneOf: both match';
      ASSERT extensions.jsonb_matches_schema('{"oneOf": [{"minimum": 0}, {"maximum": 10}]}', '-5'), 'oneOf: one matches';
      ASSERT NOT extensions.jsonb_matches_schema('{"exclusiveMinimum": 0}', '0'), 'exclusiveMinimum (number)';
      ASSERT NOT extensions.jsonb_matches_schema('{"minimum": 0, "exclusiveMinimum": true}', '0'), 'exclusiveMinimum (draft 4)';
      ASSERT NOT extensions.jsonb_matches_schema('{"patternProperties": {"^x_": {"type": "number"}}}', '{"x_a": "s"}'), 'patternProperties';
      ASSERT NOT extensions.jsonb_matches_schema('{"dependentRequired": {"card": ["cvc"]}}', '{"card": 1}'), 'dependentRequired';
      ASSERT NOT extensions.jsonb_matches_schema('{"propertyNames": {"maxLength": 2}}', '{"abc": 1}'), 'propertyNames';
      ASSERT extensions.jsonb_matches_schema('{"$ref": "#/definitions/node", "definitions": {"node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/node"}}}}}',
        '{"next": {"next": {}}}'), 'recursive local $ref';
      ASSERT NOT extensions.jsonb_matches_schema('{"format": "uuid"}', '"not-a-uuid"'), 'format uuid';
      ASSERT NOT extensions.jsonb_matches_schema('{"format": "date-time"}', '"2024-02-30T10:00:00Z"'), 'format date-time';
      ASSERT extensions.jsonb_matches_schema('{"format": "date-time"}', '"2024-02-29T10:00:00+01:00"'), 'a leap day';
      ASSERT extensions.jsonb_matches_schema('{"format": "x-custom"}', '"anything"'), 'unknown formats are annotations';
      ASSERT extensions.jsonb_matches_schema('{"minLength": 2}', '"éé"') AND NOT extensions.jsonb_matches_schema('{"maxLength": 1}', '"éé"'),
        'lengths count characters';
      ASSERT NOT extensions.jsonb_matches_schema('false', 'null') AND extensions.jsonb_matches_schema('true', 'null'), 'boolean schemas';
      ASSERT extensions.jsonb_matches_schema('{"type": "object"}', NULL) IS NULL, 'strict';
      BEGIN
        PERFORM extensions.jsonb_matches_schema('{"unevaluatedProperties": false}', '{}');
        RAISE EXCEPTION 'unevaluatedProperties must raise';
      EXCEPTION WHEN feature_not_supported THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        ASSERT msg LIKE 'pg_jsonschema: jsonb_matches_schema() cannot validate%unevaluatedProperties%', msg;
      END;
      BEGIN
        PERFORM extensions.json_matches_schema('{"minLength": "2"}', '"x"');
        RAISE EXCEPTION 'an invalid schema must raise';
      EXCEPTION WHEN invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        ASSERT msg LIKE 'pg_jsonschema: json_matches_schema(): invalid JSON schema%', msg;
      END;
      DROP EXTENSION pg_jsonschema;
    ELSE
      RAISE NOTICE 'pg_jsonschema: the server''s own extension is used, emulation checks skipped';
    END IF;

    IF 'index_advisor' = ANY (emulated) AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg') THEN
      CREATE EXTENSION index_advisor WITH SCHEMA extensions CASCADE;
      CREATE TABLE public.shim_orders (id bigint PRIMARY KEY, customer text, total numeric);
      INSERT INTO public.shim_orders SELECT g, 'c' || (g % 300), g FROM generate_series(1, 20000) g;
      ANALYZE public.shim_orders;
      SELECT * INTO m FROM extensions.index_advisor('select * from public.shim_orders where customer = $1 and total > $2');
      ASSERT m.errors = '{}' AND 'CREATE INDEX ON public.shim_orders USING btree (customer)' = ANY (m.index_statements),
        format('advice: %s %s', m.index_statements, m.errors);
      SELECT * INTO m FROM extensions.index_advisor('select * from public.shim_orders where id = 1');
      ASSERT m.index_statements = '{}', 'an indexed lookup needs no advice';
      SELECT * INTO m FROM extensions.index_advisor('select * from no_such_table');
      ASSERT m.errors[1] LIKE '%no_such_table%' AND m.index_statements = '{}', 'errors are answered';
      ASSERT NOT EXISTS (SELECT 1 FROM extensions.hypopg_list_indexes), 'no hypothetical index is left';
      ASSERT NOT EXISTS (SELECT 1 FROM pg_prepared_statements), 'no prepared statement is left';
      DROP TABLE public.shim_orders;
      DROP EXTENSION index_advisor, hypopg;
    ELSE
      RAISE NOTICE 'index_advisor: the server''s own extension is used (or hypopg is missing), emulation checks skipped';
    END IF;

    IF 'pgsodium' = ANY (emulated) THEN
      CREATE EXTENSION pgsodium;
      ASSERT encode(pgsodium.crypto_auth_hmacsha512('The quick brown fox jumps over the lazy dog'::bytea, 'key'::bytea), 'hex') =
        'b42af09057bac1e2d41708e48a902e09b5ff7f12ab428a4fe86653c73dd248fb82f948a549f7b791a5b41915ee4d1ec3935357e4e2317250d0372afa2ebeeb3a',
        'HMAC-SHA-512';
      ASSERT pgsodium.crypto_auth_verify(pgsodium.crypto_auth('m'::bytea, 'k'::bytea), 'm'::bytea, 'k'::bytea), 'crypto_auth';
      ASSERT length(pgsodium.crypto_auth('m'::bytea, 'k'::bytea)) = 32, 'crypto_auth is 32 bytes';
      ASSERT encode(pgsodium.crypto_hash_sha256(''::bytea), 'hex') = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'sha256';
      ASSERT length(pgsodium.crypto_secretbox_noncegen()) = 24 AND length(pgsodium.crypto_aead_ietf_noncegen()) = 12, 'nonce lengths';
      ASSERT (SELECT bool_and(pgsodium.randombytes_uniform(3) BETWEEN 0 AND 2) FROM generate_series(1, 100)), 'uniform range';
      ASSERT (pgsodium.create_key('hmacsha256', 'shim-key')).name = 'shim-key', 'create_key records the key';
      BEGIN
        PERFORM pgsodium.crypto_generichash('x'::bytea);
        RAISE EXCEPTION 'crypto_generichash must raise';
      EXCEPTION WHEN feature_not_supported THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        ASSERT msg LIKE 'pgsodium: pgsodium.crypto_generichash() is not available in db-ci%BLAKE2b%', msg;
      END;
      DROP EXTENSION pgsodium;
    ELSE
      RAISE NOTICE 'pgsodium: the server''s own extension is used, emulation checks skipped';
    END IF;
    IF 'pg_hashids' = ANY (emulated) THEN
      CREATE EXTENSION pg_hashids WITH SCHEMA extensions;
      -- reference ids of the Hashids algorithm
      ASSERT extensions.id_encode(1) = 'jR', 'default salt';
      ASSERT extensions.id_encode(ARRAY[1, 2, 3]::bigint[], 's', 10) = 'E6jVSbs36j', 'numbers, salt, minimum length';
      ASSERT extensions.id_encode(42, 's', 0, 'abcdefghijklmnop') = 'jja', 'own alphabet';
      ASSERT extensions.id_decode('E6jVSbs36j', 's', 10) = ARRAY[1, 2, 3]::bigint[], 'decode';
      ASSERT extensions.id_decode_once(extensions.id_encode(9223372036854775807, 'x'), 'x') = 9223372036854775807, 'bigint range';
      ASSERT extensions.id_decode('jR', 'other') = '{}', 'an id of another salt decodes to nothing';
      BEGIN
        PERFORM extensions.id_encode(-1);
        RAISE EXCEPTION 'a negative number must raise';
      EXCEPTION WHEN invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
        ASSERT msg LIKE 'pg_hashids: id_encode()%', msg;
      END;
      DROP EXTENSION pg_hashids;
    ELSE
      RAISE NOTICE 'pg_hashids: the server''s own extension is used, emulation checks skipped';
    END IF;
    RAISE SQLSTATE 'DB001';  -- undo the block
  EXCEPTION WHEN SQLSTATE 'DB001' THEN
    NULL;
  END;
END
$$;
