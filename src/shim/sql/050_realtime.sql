-- db-ci platform shim, part 050: Realtime.
--
-- * Publication supabase_realtime (no tables; migrations ADD/DROP TABLE,
--   change its OWNER, or drop and recreate it). Creating a publication needs
--   no wal_level=logical.
-- * realtime.messages with RLS enabled, realtime.topic(), realtime.send() and
--   realtime.broadcast_changes(): what private-channel policies and broadcast
--   triggers in real migrations reference. Stub semantics: send() stores the
--   message in realtime.messages (as the platform does) and nothing is ever
--   delivered. realtime.messages is a plain table here (partitioned by day on
--   the platform).

DO $shim$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = 'supabase_realtime') THEN
    CREATE PUBLICATION supabase_realtime;
  END IF;
END
$shim$;

-- >>> dbci helpers (session-local, pg_temp: never part of the database, never
-- dumped). Identical in every shim file that uses them; dev-test.sh checks.
CREATE OR REPLACE FUNCTION pg_temp.dbci_try(stmt text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE stmt;
EXCEPTION
  WHEN insufficient_privilege THEN
    RAISE WARNING 'db-ci shim: % may not run: %', current_user, stmt;
  WHEN undefined_table OR undefined_function OR undefined_object OR invalid_schema_name THEN
    -- only after an earlier step was refused (non-superuser on a platform image)
    RAISE WARNING 'db-ci shim: skipped, %: %', SQLERRM, stmt;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbci_table(tbl text, cols text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  col     text;
  colname text;
  def     text;
BEGIN
  IF to_regclass(tbl) IS NULL THEN
    PERFORM pg_temp.dbci_try(format('CREATE TABLE %s (%s)', tbl, array_to_string(cols, ', ')));
    RETURN;
  END IF;
  -- existing table: add missing columns; give existing plain columns the
  -- default they lack (defaults only matter for rows that omit the column)
  FOREACH col IN ARRAY cols LOOP
    colname := btrim(split_part(col, ' ', 1), '"');
    IF NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_attribute
      WHERE attrelid = to_regclass(tbl) AND attname = colname AND attnum > 0 AND NOT attisdropped
    ) THEN
      PERFORM pg_temp.dbci_try(format('ALTER TABLE %s ADD COLUMN %s', tbl, col));
    ELSE
      def := substring(col FROM ' DEFAULT (.*)$');
      IF def IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = to_regclass(tbl) AND a.attname = colname
          AND NOT a.atthasdef AND a.attgenerated = '' AND a.attidentity = ''
      ) THEN
        PERFORM pg_temp.dbci_try(format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT %s', tbl, colname, def));
      END IF;
    END IF;
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbci_constraint(tbl text, con text, def text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF to_regclass(tbl) IS NULL OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
             WHERE conrelid = to_regclass(tbl)
               AND (conname = con OR (def ILIKE 'primary key%' AND contype = 'p'))) THEN
    RETURN;
  END IF;
  EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', tbl, con, def);
EXCEPTION
  WHEN insufficient_privilege OR unique_violation OR invalid_table_definition
       OR duplicate_object OR duplicate_table THEN
    RAISE WARNING 'db-ci shim: constraint % on % not added: %', con, tbl, SQLERRM;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbci_index(idx text, stmt text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF to_regclass(idx) IS NOT NULL THEN
    RETURN;
  END IF;
  EXECUTE stmt;
EXCEPTION
  WHEN insufficient_privilege OR unique_violation OR duplicate_table OR undefined_table THEN
    RAISE WARNING 'db-ci shim: index % not created: %', idx, SQLERRM;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbci_rls(tbl text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
  IF NOT (SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = to_regclass(tbl)) THEN
    PERFORM pg_temp.dbci_try(format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl));
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION pg_temp.dbci_owner(kind text, obj text, new_owner text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  cur oid;
BEGIN
  cur := CASE kind
    WHEN 'TABLE'    THEN (SELECT relowner FROM pg_catalog.pg_class WHERE oid = to_regclass(obj))
    WHEN 'VIEW'     THEN (SELECT relowner FROM pg_catalog.pg_class WHERE oid = to_regclass(obj))
    WHEN 'FUNCTION' THEN (SELECT proowner FROM pg_catalog.pg_proc WHERE oid = to_regprocedure(obj))
    WHEN 'TYPE'     THEN (SELECT typowner FROM pg_catalog.pg_type WHERE oid = to_regtype(obj))
  END;
  IF cur IS NULL OR cur = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = new_owner) THEN
    RETURN;
  END IF;
  PERFORM pg_temp.dbci_try(format('ALTER %s %s OWNER TO %I', kind, obj, new_owner));
END
$fn$;
-- <<< dbci helpers

SELECT pg_temp.dbci_table('realtime.messages', ARRAY[
  $c$topic text NOT NULL$c$,
  $c$extension text NOT NULL$c$,
  $c$payload jsonb$c$,
  $c$event text$c$,
  $c$private boolean DEFAULT false$c$,
  $c$updated_at timestamp without time zone NOT NULL DEFAULT now()$c$,
  $c$inserted_at timestamp without time zone NOT NULL DEFAULT now()$c$,
  $c$id uuid NOT NULL DEFAULT gen_random_uuid()$c$
]);
SELECT pg_temp.dbci_constraint('realtime.messages', 'messages_pkey', 'PRIMARY KEY (id, inserted_at)');
SELECT pg_temp.dbci_rls('realtime.messages');

-- The topic of the channel a policy on realtime.messages is evaluated for.
SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION realtime.topic() RETURNS text
LANGUAGE sql STABLE
AS $fn$
  select nullif(current_setting('realtime.topic', true), '')::text;
$fn$
$ddl$);

-- Broadcast a message on a topic (stub: stored, never delivered).
SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  INSERT INTO realtime.messages (payload, event, topic, private, extension)
  VALUES (send.payload, send.event, send.topic, send.private, 'broadcast');
EXCEPTION WHEN OTHERS THEN
  -- the platform never lets a failed broadcast abort the caller
  RAISE WARNING 'ErrorSendingBroadcastMessage: %', SQLERRM;
END
$fn$
$ddl$);

-- Called from row triggers: broadcasts the change as the platform does.
SELECT pg_temp.dbci_try($ddl$
CREATE OR REPLACE FUNCTION realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text DEFAULT 'ROW'::text)
RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  row_data jsonb;
BEGIN
  IF level = 'STATEMENT' THEN
    RAISE EXCEPTION 'function can only be triggered for each row, not for each statement';
  END IF;
  IF operation NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
    RAISE EXCEPTION 'Unexpected operation type: %', operation;
  END IF;
  row_data := jsonb_build_object(
    'old_record', old, 'record', new, 'operation', operation,
    'table', table_name, 'schema', table_schema);
  PERFORM realtime.send(row_data, event_name, topic_name);
END
$fn$
$ddl$);

DO $shim$
DECLARE
  t text;
BEGIN
  PERFORM pg_temp.dbci_owner('TABLE', 'realtime.messages', 'supabase_admin');
  FOREACH t IN ARRAY ARRAY['realtime.topic()', 'realtime.send(jsonb, text, text, boolean)',
      'realtime.broadcast_changes(text, text, text, text, text, record, record, text)'] LOOP
    PERFORM pg_temp.dbci_owner('FUNCTION', t, 'supabase_admin');
  END LOOP;
END
$shim$;

SELECT pg_temp.dbci_try($g$GRANT SELECT, INSERT, UPDATE ON realtime.messages TO anon, authenticated, service_role$g$);
SELECT pg_temp.dbci_try($g$GRANT ALL ON realtime.messages TO postgres, dashboard_user$g$);
SELECT pg_temp.dbci_try($g$GRANT EXECUTE ON FUNCTION realtime.topic(), realtime.send(jsonb, text, text, boolean),
  realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  TO postgres, anon, authenticated, service_role$g$);

-- drop the session-local helpers (the connection may be reused)
DROP FUNCTION pg_temp.dbci_try(text), pg_temp.dbci_table(text, text[]),
  pg_temp.dbci_constraint(text, text, text), pg_temp.dbci_index(text, text),
  pg_temp.dbci_rls(text), pg_temp.dbci_owner(text, text, text);
