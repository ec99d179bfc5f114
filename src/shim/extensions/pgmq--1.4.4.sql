-- db-ci emulation of pgmq 1.4.4: the SQL API, doing the work with real tables.
-- Schema pgmq is created by CREATE EXTENSION (the control file pins it).
\echo Use "CREATE EXTENSION pgmq" to load this file. \quit

CREATE TABLE pgmq.meta (
  queue_name varchar UNIQUE NOT NULL,
  is_partitioned boolean NOT NULL,
  is_unlogged boolean NOT NULL,
  created_at timestamp with time zone NOT NULL DEFAULT now()
);

CREATE TYPE pgmq.message_record AS (
  msg_id bigint,
  read_ct integer,
  enqueued_at timestamp with time zone,
  vt timestamp with time zone,
  message jsonb
);

CREATE TYPE pgmq.queue_record AS (
  queue_name varchar,
  is_partitioned boolean,
  is_unlogged boolean,
  created_at timestamp with time zone
);

CREATE TYPE pgmq.metrics_result AS (
  queue_name text,
  queue_length bigint,
  newest_msg_age_sec integer,
  oldest_msg_age_sec integer,
  total_messages bigint,
  scrape_time timestamp with time zone
);

-- The table behind a queue: prefix q (messages) or a (archive). Queue names are
-- case-insensitive: tables and pgmq.meta hold the lower-cased name.
CREATE FUNCTION pgmq.format_table_name(queue_name text, prefix text) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $fn$
BEGIN
  IF queue_name ~ '\$|;|--|''' THEN
    RAISE EXCEPTION 'queue name contains invalid characters: $, ;, --, or \''';
  END IF;
  RETURN lower(prefix || '_' || queue_name);
END
$fn$;

CREATE FUNCTION pgmq.validate_queue_name(queue_name text) RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  IF length(queue_name) >= 48 THEN
    RAISE EXCEPTION 'queue name is too long, maximum length is 48 characters';
  END IF;
END
$fn$;

-- The queue's message table, or a clear error when the queue does not exist.
CREATE FUNCTION pgmq._queue_table(queue_name text, prefix text DEFAULT 'q') RETURNS text
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
  t text := pgmq.format_table_name(queue_name, prefix);
BEGIN
  IF to_regclass(format('pgmq.%I', t)) IS NULL THEN
    RAISE EXCEPTION 'pgmq: queue "%" does not exist (no table pgmq.%)', queue_name, t
      USING ERRCODE = 'undefined_table';
  END IF;
  RETURN t;
END
$fn$;

CREATE FUNCTION pgmq._belongs_to_pgmq(table_name text) RETURNS boolean
LANGUAGE sql STABLE
AS $fn$
  SELECT EXISTS (
    SELECT 1 FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'pgmq'
    WHERE d.classid = 'pg_catalog.pg_class'::regclass
      AND d.objid = to_regclass(format('pgmq.%I', table_name))
      AND d.deptype = 'e')
$fn$;

CREATE FUNCTION pgmq._create(queue_name text, unlogged boolean) RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
BEGIN
  PERFORM pgmq.validate_queue_name(queue_name);
  EXECUTE format($q$
    CREATE %s TABLE IF NOT EXISTS pgmq.%I (
      msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
      read_ct integer DEFAULT 0 NOT NULL,
      enqueued_at timestamp with time zone DEFAULT now() NOT NULL,
      vt timestamp with time zone NOT NULL,
      message jsonb
    )$q$, CASE WHEN unlogged THEN 'UNLOGGED' ELSE '' END, qtable);
  EXECUTE format($q$
    CREATE TABLE IF NOT EXISTS pgmq.%I (
      msg_id bigint PRIMARY KEY,
      read_ct integer DEFAULT 0 NOT NULL,
      enqueued_at timestamp with time zone DEFAULT now() NOT NULL,
      archived_at timestamp with time zone DEFAULT now() NOT NULL,
      vt timestamp with time zone NOT NULL,
      message jsonb
    )$q$, atable);
  -- As pgmq does: the queue's tables belong to the extension (DROP EXTENSION drops them).
  IF NOT pgmq._belongs_to_pgmq(qtable) THEN
    EXECUTE format('ALTER EXTENSION pgmq ADD TABLE pgmq.%I', qtable);
  END IF;
  IF NOT pgmq._belongs_to_pgmq(atable) THEN
    EXECUTE format('ALTER EXTENSION pgmq ADD TABLE pgmq.%I', atable);
  END IF;
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (vt ASC)', qtable || '_vt_idx', qtable);
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON pgmq.%I (archived_at)',
                 'archived_at_idx_' || queue_name, atable);
  EXECUTE format('GRANT SELECT ON pgmq.%I TO pg_monitor', qtable);
  EXECUTE format('GRANT SELECT ON pgmq.%I TO pg_monitor', atable);
  INSERT INTO pgmq.meta (queue_name, is_partitioned, is_unlogged)
  VALUES (lower(queue_name), false, unlogged)
  ON CONFLICT ON CONSTRAINT meta_queue_name_key DO NOTHING;
END
$fn$;

CREATE FUNCTION pgmq.create_non_partitioned(queue_name text) RETURNS void
LANGUAGE sql
AS $fn$ SELECT pgmq._create(queue_name, false) $fn$;

CREATE FUNCTION pgmq.create(queue_name text) RETURNS void
LANGUAGE sql
AS $fn$ SELECT pgmq._create(queue_name, false) $fn$;

CREATE FUNCTION pgmq.create_unlogged(queue_name text) RETURNS void
LANGUAGE sql
AS $fn$ SELECT pgmq._create(queue_name, true) $fn$;

CREATE FUNCTION pgmq.create_partitioned(
  queue_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000'
) RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  RAISE EXCEPTION 'pgmq: pgmq.create_partitioned() is not emulated by db-ci (partitioned queues need pg_partman''s maintenance); use pgmq.create()'
    USING ERRCODE = 'feature_not_supported';
END
$fn$;

CREATE FUNCTION pgmq.convert_archive_partitioned(
  table_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000',
  leading_partition integer DEFAULT 10
) RETURNS void
LANGUAGE plpgsql
AS $fn$
BEGIN
  RAISE EXCEPTION 'pgmq: pgmq.convert_archive_partitioned() is not emulated by db-ci (partitioned queues need pg_partman''s maintenance)'
    USING ERRCODE = 'feature_not_supported';
END
$fn$;

CREATE FUNCTION pgmq.drop_queue(queue_name text, partitioned boolean DEFAULT false) RETURNS boolean
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
BEGIN
  IF pgmq._belongs_to_pgmq(qtable) THEN
    EXECUTE format('ALTER EXTENSION pgmq DROP TABLE pgmq.%I', qtable);
  END IF;
  IF pgmq._belongs_to_pgmq(atable) THEN
    EXECUTE format('ALTER EXTENSION pgmq DROP TABLE pgmq.%I', atable);
  END IF;
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', qtable);
  EXECUTE format('DROP TABLE IF EXISTS pgmq.%I', atable);
  DELETE FROM pgmq.meta m WHERE m.queue_name = lower(drop_queue.queue_name);
  RETURN true;
END
$fn$;

CREATE FUNCTION pgmq.detach_archive(queue_name text) RETURNS void
LANGUAGE plpgsql
AS $fn$
DECLARE
  atable text := pgmq._queue_table(queue_name, 'a');
BEGIN
  IF pgmq._belongs_to_pgmq(atable) THEN
    EXECUTE format('ALTER EXTENSION pgmq DROP TABLE pgmq.%I', atable);
  END IF;
END
$fn$;

CREATE FUNCTION pgmq.send(queue_name text, msg jsonb, delay integer DEFAULT 0) RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'INSERT INTO pgmq.%I (vt, message) VALUES (clock_timestamp() + make_interval(secs => $1), $2) RETURNING msg_id',
    pgmq._queue_table(queue_name)) USING delay, msg;
END
$fn$;

CREATE FUNCTION pgmq.send_batch(queue_name text, msgs jsonb[], delay integer DEFAULT 0) RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'INSERT INTO pgmq.%I (vt, message)
     SELECT clock_timestamp() + make_interval(secs => $1), m FROM unnest($2) WITH ORDINALITY AS u(m, i)
     ORDER BY i RETURNING msg_id',
    pgmq._queue_table(queue_name)) USING delay, msgs;
END
$fn$;

-- Reads up to qty visible messages, hiding them for vt seconds (read_ct + 1).
CREATE FUNCTION pgmq.read(queue_name text, vt integer, qty integer) RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format($q$
    WITH cte AS (
      SELECT msg_id FROM pgmq.%1$I
      WHERE vt <= clock_timestamp()
      ORDER BY msg_id
      LIMIT $1
      FOR UPDATE SKIP LOCKED
    )
    UPDATE pgmq.%1$I m
    SET vt = clock_timestamp() + make_interval(secs => $2), read_ct = m.read_ct + 1
    FROM cte WHERE m.msg_id = cte.msg_id
    RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message$q$,
    pgmq._queue_table(queue_name)) USING qty, vt;
END
$fn$;

CREATE FUNCTION pgmq.read_with_poll(
  queue_name text,
  vt integer,
  qty integer,
  max_poll_seconds integer DEFAULT 5,
  poll_interval_ms integer DEFAULT 100
) RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
DECLARE
  deadline timestamp with time zone := clock_timestamp() + make_interval(secs => max_poll_seconds);
  found_any boolean;
  r pgmq.message_record;
BEGIN
  LOOP
    found_any := false;
    FOR r IN SELECT * FROM pgmq.read(queue_name, vt, qty) LOOP
      found_any := true;
      RETURN NEXT r;
    END LOOP;
    IF found_any OR clock_timestamp() >= deadline THEN
      RETURN;
    END IF;
    PERFORM pg_catalog.pg_sleep(poll_interval_ms / 1000.0);
  END LOOP;
END
$fn$;

-- Reads one visible message and deletes it.
CREATE FUNCTION pgmq.pop(queue_name text) RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format($q$
    WITH cte AS (
      SELECT msg_id FROM pgmq.%1$I
      WHERE vt <= clock_timestamp()
      ORDER BY msg_id
      LIMIT 1
      FOR UPDATE SKIP LOCKED
    )
    DELETE FROM pgmq.%1$I m USING cte WHERE m.msg_id = cte.msg_id
    RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message$q$,
    pgmq._queue_table(queue_name));
END
$fn$;

CREATE FUNCTION pgmq.delete(queue_name text, msg_ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format(
    'DELETE FROM pgmq.%I WHERE msg_id = ANY($1) RETURNING msg_id',
    pgmq._queue_table(queue_name)) USING msg_ids;
END
$fn$;

CREATE FUNCTION pgmq.delete(queue_name text, msg_id bigint) RETURNS boolean
LANGUAGE sql
AS $fn$ SELECT EXISTS (SELECT 1 FROM pgmq.delete(queue_name, ARRAY[msg_id])) $fn$;

-- Moves messages to the queue's archive table.
CREATE FUNCTION pgmq.archive(queue_name text, msg_ids bigint[]) RETURNS SETOF bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
  qtable text := pgmq._queue_table(queue_name, 'q');
  atable text := pgmq._queue_table(queue_name, 'a');
BEGIN
  RETURN QUERY EXECUTE format($q$
    WITH moved AS (
      DELETE FROM pgmq.%I WHERE msg_id = ANY($1)
      RETURNING msg_id, vt, read_ct, enqueued_at, message
    )
    INSERT INTO pgmq.%I (msg_id, vt, read_ct, enqueued_at, message)
    SELECT msg_id, vt, read_ct, enqueued_at, message FROM moved
    RETURNING msg_id$q$, qtable, atable) USING msg_ids;
END
$fn$;

CREATE FUNCTION pgmq.archive(queue_name text, msg_id bigint) RETURNS boolean
LANGUAGE sql
AS $fn$ SELECT EXISTS (SELECT 1 FROM pgmq.archive(queue_name, ARRAY[msg_id])) $fn$;

CREATE FUNCTION pgmq.purge_queue(queue_name text) RETURNS bigint
LANGUAGE plpgsql
AS $fn$
DECLARE
  n bigint;
BEGIN
  EXECUTE format('WITH d AS (DELETE FROM pgmq.%I RETURNING 1) SELECT count(*) FROM d',
                 pgmq._queue_table(queue_name)) INTO n;
  RETURN n;
END
$fn$;

-- Makes a message visible again (or hidden longer) vt_offset seconds from now.
CREATE FUNCTION pgmq.set_vt(queue_name text, msg_id bigint, vt_offset integer) RETURNS SETOF pgmq.message_record
LANGUAGE plpgsql
AS $fn$
BEGIN
  RETURN QUERY EXECUTE format($q$
    UPDATE pgmq.%I SET vt = clock_timestamp() + make_interval(secs => $1)
    WHERE msg_id = $2
    RETURNING msg_id, read_ct, enqueued_at, vt, message$q$,
    pgmq._queue_table(queue_name)) USING vt_offset, msg_id;
END
$fn$;

CREATE FUNCTION pgmq.list_queues() RETURNS SETOF pgmq.queue_record
LANGUAGE sql STABLE
AS $fn$
  SELECT queue_name, is_partitioned, is_unlogged, created_at FROM pgmq.meta ORDER BY queue_name
$fn$;

CREATE FUNCTION pgmq.metrics(queue_name text) RETURNS pgmq.metrics_result
LANGUAGE plpgsql
AS $fn$
DECLARE
  result pgmq.metrics_result;
  qtable text := pgmq._queue_table(queue_name);
BEGIN
  EXECUTE format($q$
    SELECT $1::text,
           count(*)::bigint,
           extract(epoch FROM now() - max(enqueued_at))::integer,
           extract(epoch FROM now() - min(enqueued_at))::integer,
           (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM pgmq.%I),
           now()
    FROM pgmq.%I$q$, qtable || '_msg_id_seq', qtable)
  INTO result USING queue_name;
  RETURN result;
END
$fn$;

CREATE FUNCTION pgmq.metrics_all() RETURNS SETOF pgmq.metrics_result
LANGUAGE sql
AS $fn$
  SELECT (pgmq.metrics(m.queue_name)).* FROM pgmq.meta m ORDER BY m.queue_name
$fn$;


GRANT SELECT ON pgmq.meta TO pg_monitor;

-- On the platform, pgmq is created by the superuser (supautils) and Supabase's after-create
-- step then hands the extension and every object in it to postgres, so that postgres can
-- create, use and drop queues. Where this script runs as another role than postgres, do the
-- same, and let postgres create the queue tables in schema pgmq.
DO $owner$
DECLARE
  ext oid := (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'pgmq');
  r record;
BEGIN
  IF current_user = 'postgres' OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'postgres') THEN
    RETURN;
  END IF;
  UPDATE pg_catalog.pg_extension SET extowner = 'postgres'::regrole WHERE oid = ext;
  FOR r IN SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
           WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = ext AND d.deptype = 'e' LOOP
    IF r.classid = 'pg_catalog.pg_class'::regclass THEN
      EXECUTE format('ALTER TABLE %s OWNER TO postgres', r.objid::regclass);
    ELSIF r.classid = 'pg_catalog.pg_proc'::regclass THEN
      EXECUTE format('ALTER FUNCTION %s OWNER TO postgres', r.objid::regprocedure);
    ELSIF r.classid = 'pg_catalog.pg_type'::regclass
          -- Array types and tables' row types follow their element and table.
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.oid = r.objid
                          AND (t.typcategory = 'A' OR t.typrelid <> 0)) THEN
      EXECUTE format('ALTER TYPE %s OWNER TO postgres', r.objid::regtype);
    END IF;
  END LOOP;
  GRANT USAGE, CREATE ON SCHEMA pgmq TO postgres;
END
$owner$;
