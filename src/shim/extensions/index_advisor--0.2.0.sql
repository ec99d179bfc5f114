-- db-ci emulation of index_advisor 0.2.0, written from its documented behaviour: the
-- planner's costs before and after hypothetical indexes (hypopg) on every column of the
-- user tables that no index leads with; the indexes the new plan uses are the advice.
\echo Use "CREATE EXTENSION index_advisor" to load this file. \quit

CREATE FUNCTION @extschema@.index_advisor(query text)
RETURNS TABLE (
  startup_cost_before jsonb,
  startup_cost_after jsonb,
  total_cost_before jsonb,
  total_cost_after jsonb,
  index_statements text[],
  errors text[]
)
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
  hypo_schema text;
  stmt_name constant text := 'db_ci_index_advisor';
  n_params integer;
  exec_sql text;
  old_mode text := current_setting('plan_cache_mode');
  plan_before jsonb;
  plan_after jsonb;
  candidate record;
  created record;
  made jsonb := '{}';   -- hypothetical index name -> its CREATE INDEX statement
  made_ids oid[] := '{}';
  advice text[];
  id oid;
BEGIN
  SELECT n.nspname INTO hypo_schema
  FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
  WHERE e.extname = 'hypopg';
  IF hypo_schema IS NULL THEN
    RAISE EXCEPTION 'index_advisor: index_advisor() needs the hypopg extension, which is not installed';
  END IF;
  query := regexp_replace(query, ';\s*$', '');
  IF query ~ ';' THEN
    RETURN QUERY SELECT NULL::jsonb, NULL::jsonb, NULL::jsonb, NULL::jsonb, '{}'::text[],
      ARRAY['Query must not contain a semicolon']::text[];
    RETURN;
  END IF;

  BEGIN
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
    EXECUTE format('PREPARE %I AS %s', stmt_name, query);
    SELECT cardinality(parameter_types) INTO n_params
    FROM pg_catalog.pg_prepared_statements WHERE name = stmt_name;
    exec_sql := format('EXPLAIN (FORMAT JSON) EXECUTE %I', stmt_name)
      || CASE WHEN n_params > 0
              THEN '(' || array_to_string(array_fill('NULL'::text, ARRAY[n_params]), ', ') || ')'
              ELSE '' END;
    EXECUTE exec_sql INTO plan_before;

    FOR candidate IN
      SELECT n.nspname, c.relname, a.attname
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      WHERE c.relkind IN ('r', 'm', 'p')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
        AND n.nspname !~ '^pg_temp_'
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                        WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum)
        AND EXISTS (SELECT 1 FROM pg_catalog.pg_opclass o
                    JOIN pg_catalog.pg_am am ON am.oid = o.opcmethod AND am.amname = 'btree'
                    WHERE o.opcdefault
                      AND (o.opcintype IN (t.oid, t.typbasetype)
                           OR (t.typcategory = 'A' AND o.opcintype = 'pg_catalog.anyarray'::pg_catalog.regtype)
                           OR (t.typtype = 'e' AND o.opcintype = 'pg_catalog.anyenum'::pg_catalog.regtype)
                           OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast k
                                      WHERE k.castsource = t.oid AND k.casttarget = o.opcintype
                                        AND k.castmethod = 'b')))
      ORDER BY n.nspname, c.relname, a.attnum
    LOOP
      EXECUTE format('SELECT * FROM %I.hypopg_create_index($1)', hypo_schema)
        INTO created
        USING format('CREATE INDEX ON %I.%I USING btree (%I)', candidate.nspname, candidate.relname, candidate.attname);
      made := made || jsonb_build_object(created.indexname,
        format('CREATE INDEX ON %I.%I USING btree (%I)', candidate.nspname, candidate.relname, candidate.attname));
      made_ids := made_ids || created.indexrelid;
    END LOOP;

    -- A prepared statement keeps its generic plan: plan again to see the new indexes.
    EXECUTE format('DEALLOCATE %I', stmt_name);
    EXECUTE format('PREPARE %I AS %s', stmt_name, query);
    EXECUTE exec_sql INTO plan_after;
    EXECUTE format('DEALLOCATE %I', stmt_name);

    SELECT coalesce(array_agg(DISTINCT made ->> (u #>> '{}')) FILTER (WHERE made ? (u #>> '{}')), '{}')
      INTO advice
      FROM jsonb_path_query(plan_after, 'strict $.**."Index Name"') AS u;

    FOREACH id IN ARRAY made_ids LOOP
      EXECUTE format('SELECT %I.hypopg_drop_index($1)', hypo_schema) USING id;
    END LOOP;
    PERFORM set_config('plan_cache_mode', old_mode, true);
  EXCEPTION WHEN OTHERS THEN
    -- The failed block's PREPARE and hypothetical indexes are session state, not undone
    -- by the rollback to the block's start: clean them up, then answer the error.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE name = stmt_name) THEN
      EXECUTE format('DEALLOCATE %I', stmt_name);
    END IF;
    FOREACH id IN ARRAY made_ids LOOP
      EXECUTE format('SELECT %I.hypopg_drop_index($1)', hypo_schema) USING id;
    END LOOP;
    PERFORM set_config('plan_cache_mode', old_mode, true);
    RETURN QUERY SELECT NULL::jsonb, NULL::jsonb, NULL::jsonb, NULL::jsonb, '{}'::text[], ARRAY[SQLERRM]::text[];
    RETURN;
  END;

  RETURN QUERY SELECT
    plan_before -> 0 -> 'Plan' -> 'Startup Cost',
    plan_after -> 0 -> 'Plan' -> 'Startup Cost',
    plan_before -> 0 -> 'Plan' -> 'Total Cost',
    plan_after -> 0 -> 'Plan' -> 'Total Cost',
    advice,
    '{}'::text[];
END
$fn$;
