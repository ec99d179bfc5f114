//! Running cells: a server-side function runs a batch of cells per round trip, each in its own
//! subtransaction that is always rolled back, impersonating the actor the way PostgREST does;
//! parallel workers each take a `CREATE DATABASE … TEMPLATE` clone. The steps of a `steps:`
//! scenario run together instead, in order, in one subtransaction.

use serde::Deserialize;
use tokio_postgres::Client;

use super::plan::{cell_json, Cell};
use crate::backend::Server;
use crate::error::{Error, Result};
use crate::sql::db_error_text;

/// Cells per round trip: large enough that latency vanishes, small enough that a statement
/// timeout names a small batch.
const BATCH: usize = 200;

/// Below this many cells a second clone costs more than it saves.
const CELLS_PER_EXTRA_WORKER: usize = 400;

/// Runs each cell of `$1` (a JSON array) and returns one JSON object per cell.
///
/// Per cell, in one block (a subtransaction): the admin `before` query; `set_config('role',
/// …)` and the claims (what `SET LOCAL ROLE` and PostgREST's settings do); the effective-role
/// check; the actor's statement; back to the session role; the admin `after` query; the
/// `then:` post-conditions (each query's rows as JSON, judged in Rust); then a raised DBCIR
/// rolls the whole cell back, so every cell sees the same state. A statement that fails takes
/// the block with it: its error is recorded and the admin reads after it run in a second
/// block, on the state before it (what it left), with the clock and the actor's claims set
/// again. One subtransaction for a cell whose statement runs, two for one whose statement
/// fails: they are much of a cell's cost. QUERY_CANCELED (statement_timeout) is not caught by
/// OTHERS and fails the batch.
///
/// Since every cell is rolled back, the same admin `before` query under the same clock reads
/// the same rows for the next cell too (cells come case by case, an operation's actors one
/// after another): it is read once for them, except while the reads of the real clock are
/// counted (a read must count for every cell that makes it). Likewise the effective role's
/// attributes are looked up once per role per batch.
const BATCH_FUNCTION: &str = r#"
create or replace function pg_temp.dbci_cells(cells jsonb) returns setof jsonb
language plpgsql as $dbci$
declare
  c jsonb; res jsonb; phase text;
  b_count bigint; b_match bigint; b_keys text[]; b_new_keys text[]; b_fp text;
  a_count bigint; a_match bigint; a_fp text;
  n bigint; eff_user text; eff_super boolean; eff_bypass boolean;
  st text; msg text; det text; hnt text;
  q text; t text; thens jsonb; ctx text; cons text; counted boolean; reads jsonb;
  last_before text; last_now text;
  l_count bigint; l_match bigint; l_keys text[]; l_new_keys text[]; l_fp text;
  roles jsonb := '{}'; known jsonb;
begin
  counted := current_setting('db_ci.unfrozen_counters', true) = 'on';
  for c in select value from jsonb_array_elements(cells) loop
    res := jsonb_build_object('i', c->'i');
    b_keys := null;
    b_new_keys := null;
    if counted then
      reads := pg_temp.dbci_unfrozen();
    end if;
    begin
      if c ? 'now' then
        perform set_config('db_ci.now', c->>'now', true);
      end if;
      phase := 'before';
      if c ? 'before' then
        if not counted and last_before = c->>'before' and last_now is not distinct from c->>'now' then
          b_count := l_count; b_match := l_match; b_keys := l_keys; b_new_keys := l_new_keys; b_fp := l_fp;
        else
          execute c->>'before' into b_count, b_match, b_keys, b_new_keys, b_fp;
          l_count := b_count; l_match := b_match; l_keys := b_keys; l_new_keys := b_new_keys; l_fp := b_fp;
          last_before := c->>'before';
          last_now := c->>'now';
        end if;
        res := res || jsonb_build_object('before_count', b_count, 'before_match', b_match, 'before_fp', b_fp);
      end if;
      if c ? 'then' then
        res := res || jsonb_build_object('then_before', pg_temp.dbci_then_before(c));
      end if;
      phase := 'impersonate';
      perform set_config('role', c->>'role', true);
      {CLAIMS}
      known := roles->(c->>'role');
      if known is null then
        select current_user, r.rolsuper, r.rolbypassrls into eff_user, eff_super, eff_bypass
          from pg_catalog.pg_roles r where r.rolname = current_user;
        roles := roles || jsonb_build_object(c->>'role', jsonb_build_array(eff_user, eff_super, eff_bypass));
      else
        eff_user := known->>0;
        eff_super := (known->>1)::boolean;
        eff_bypass := (known->>2)::boolean;
      end if;
      res := res || jsonb_build_object('user', eff_user, 'super', eff_super, 'bypass', eff_bypass);
      if eff_super or (eff_bypass and not (c->>'may_bypass')::boolean) then
        raise sqlstate 'DBCIR';
      end if;
      phase := 'op';
      {OP}
      perform set_config('role', 'none', true);
      {AFTER}
      raise sqlstate 'DBCIR';
    exception
      when sqlstate 'DBCIR' then
        null;
      when others then
        if phase = 'op' then
          {OP_ERROR}
          begin
            if c ? 'now' then
              perform set_config('db_ci.now', c->>'now', true);
            end if;
            {CLAIMS}
            {AFTER}
            raise sqlstate 'DBCIR';
          exception
            when sqlstate 'DBCIR' then
              null;
            when others then
              get stacked diagnostics st = returned_sqlstate, msg = message_text;
              res := res || jsonb_build_object('setup_sqlstate', st, 'setup_error', msg, 'phase', phase);
          end;
        else
          -- The case's own SQL (its where, values) or the impersonation itself failed.
          get stacked diagnostics st = returned_sqlstate, msg = message_text;
          res := res || jsonb_build_object('setup_sqlstate', st, 'setup_error', msg, 'phase', phase);
        end if;
    end;
    if counted then
      res := res || jsonb_build_object('unfrozen', pg_temp.dbci_unfrozen_since(reads));
    end if;
    return next res;
  end loop;
end
$dbci$"#;

/// The actor's claims as PostgREST sets them (`{CLAIMS}` in the cell and scenario functions):
/// `request.jwt.claims`, and the legacy `request.jwt.claim.<name>` settings.
const CLAIMS: &str = r#"
      perform set_config('request.jwt.claims', c->>'claims', true);
      if c->'legacy' <> '{}'::jsonb then
        perform set_config('request.jwt.claim.' || key, value, true) from jsonb_each_text(c->'legacy');
      end if;"#;

/// The actor's statement, read as its kind says (`{OP}`): a count, rows as JSON, or the rows
/// affected.
const OP: &str = r#"
      if c->>'kind' = 'count' then
        execute c->>'op' into n;
      elsif c->>'kind' = 'json' then
        execute c->>'op' into n, t;
        res := res || jsonb_build_object('returned', t);
      else
        execute c->>'op';
        get diagnostics n = row_count;
      end if;
      res := res || jsonb_build_object('rows', n);"#;

/// The statement's error as the judge reads it (`{OP_ERROR}`, in the handler that caught it).
const OP_ERROR: &str = r#"
      get stacked diagnostics st = returned_sqlstate, msg = message_text,
        det = pg_exception_detail, hnt = pg_exception_hint, ctx = pg_exception_context,
        cons = constraint_name;
      res := res || jsonb_build_object('sqlstate', st, 'error', msg,
        'detail', nullif(det, ''), 'hint', nullif(hnt, ''), 'context', nullif(ctx, ''),
        'constraint', nullif(cons, ''));"#;

/// `function` (one of the worker's PL/pgSQL functions) with its shared pieces filled in.
fn with_pieces(function: &str) -> String {
    function
        .replace("{CLAIMS}", CLAIMS)
        .replace("{OP_ERROR}", OP_ERROR)
        .replace("{OP}", OP)
        .replace("{AFTER}", BATCH_AFTER)
}

/// What a cell does as admin after its statement, in [`BATCH_FUNCTION`]'s `{AFTER}`: read
/// the target rows back (by the keys read before), the `then:` queries, the probes.
const BATCH_AFTER: &str = r#"
      phase := 'after';
      if c ? 'after' then
        if (c->>'keys')::boolean then
          execute c->>'after' into a_count, a_match, a_fp using b_keys, b_new_keys;
        else
          execute c->>'after' into a_count, a_match, a_fp;
        end if;
        res := res || jsonb_build_object('after_count', a_count, 'after_match', a_match, 'after_fp', a_fp);
      end if;
      phase := 'then';
      if c ? 'then' then
        thens := '[]'::jsonb;
        for q in select value from jsonb_array_elements_text(c->'then') loop
          execute 'select coalesce(json_agg(dbci_then), ''[]'')::text from (' || q || ') dbci_then' into t;
          thens := thens || jsonb_build_array(t);
        end loop;
        res := res || jsonb_build_object('then', thens);
      end if;
      if c ? 'probes' then
        phase := 'probe';
        res := res || jsonb_build_object('probes', pg_temp.dbci_probe(c));
      end if;"#;

/// Runs the statement of cell `$1` again as each identity of its `probes` (admin, with and
/// without the actor's claims, and every actor of the file), under each clock of its
/// `probe_nows` (a step's own `now:` and its case's), each in its own block rolled back:
/// whether the statement can succeed, or return rows, for someone. Per run: the identity,
/// the rows (count, or rows affected), the error, whether the `then:` queries held.
const PROBE_FUNCTION: &str = r#"
create or replace function pg_temp.dbci_probe(c jsonb) returns jsonb
language plpgsql as $dbci$
declare
  p jsonb; tnow text; out jsonb := '[]'::jsonb; one jsonb; n bigint; t text; q text;
  held boolean; msg text;
begin
  for p, tnow in select pr.value, tn.value from jsonb_array_elements(c->'probes') pr,
                   jsonb_array_elements_text(coalesce(c->'probe_nows', '[null]')) tn loop
    one := jsonb_build_object('who', p->>'who');
    begin
      if tnow is not null then
        perform set_config('db_ci.now', tnow, true);
      end if;
      perform set_config('role', p->>'role', true);
      perform set_config('request.jwt.claims', p->>'claims', true);
      perform set_config('request.jwt.claim.' || key, value, true) from jsonb_each_text(p->'legacy');
      if c->>'kind' = 'count' then
        execute c->>'op' into n;
      elsif c->>'kind' = 'json' then
        execute c->>'op' into n, t;
      else
        execute c->>'op';
        get diagnostics n = row_count;
      end if;
      perform set_config('role', 'none', true);
      held := true;
      if c ? 'then' then
        for q in select value from jsonb_array_elements_text(c->'then') loop
          execute 'select coalesce(json_agg(dbci_then), ''[]'')::text from (' || q || ') dbci_then' into t;
          if t = '[]' or exists (select 1 from json_array_elements(t::json) r, json_each(r) e
                                 where e.value::text in ('false', 'null')) then
            held := false;
          end if;
        end loop;
      end if;
      one := one || jsonb_build_object('rows', n, 'then_held', held);
      raise sqlstate 'DBCIR';
    exception
      when sqlstate 'DBCIR' then null;
      when others then
        get stacked diagnostics msg = message_text;
        one := one || jsonb_build_object('error', msg);
    end;
    out := out || jsonb_build_array(one);
  end loop;
  return out;
end
$dbci$"#;

/// The `then:` queries of cell `$1` run as admin before its statement, each query's rows as
/// JSON text, or null for a query that failed there: a `then:` that already holds before
/// the statement cannot tell a call that did something from one that did nothing.
const THEN_BEFORE_FUNCTION: &str = r#"
create or replace function pg_temp.dbci_then_before(c jsonb) returns jsonb
language plpgsql as $dbci$
declare
  q text; t text; out jsonb := '[]'::jsonb;
begin
  for q in select value from jsonb_array_elements_text(c->'then') loop
    begin
      execute 'select coalesce(json_agg(dbci_then), ''[]'')::text from (' || q || ') dbci_then' into t;
    exception when others then
      t := null;
    end;
    out := out || jsonb_build_array(t);
  end loop;
  return out;
end
$dbci$"#;

/// The reads of the real clock db-ci could not freeze, counted per object (see
/// `clock::unfrozen`): the counters now, and which of them moved since `$1`. Sequences are
/// not rolled back with the cell, so the count survives whatever the statement did.
const UNFROZEN_FUNCTIONS: &str = r#"
create or replace function pg_temp.dbci_unfrozen() returns jsonb
language sql as $dbci$
  select coalesce(jsonb_object_agg(c.relname, pg_catalog.pg_sequence_last_value(c.oid)), '{}')
    from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'db_ci_clock' and c.relkind = 'S'
$dbci$;
create or replace function pg_temp.dbci_unfrozen_since(before jsonb) returns jsonb
language sql as $dbci$
  select coalesce(jsonb_agg(a.key), '[]') from jsonb_each(pg_temp.dbci_unfrozen()) a
   where a.value is distinct from before->a.key
$dbci$"#;

/// Runs the steps of one `steps:` scenario (`$1`, cells in order) in one block rolled back
/// at the end, so each step sees what the steps before it did. Per step, as in
/// `dbci_cells`: impersonate, check the effective role (a refused role skips the statement),
/// the statement in a nested block, back to the session role, the `then:` queries (their
/// own block, so a failing query is reported without ending the scenario).
const SCENARIO_FUNCTION: &str = r#"
create or replace function pg_temp.dbci_scenario(steps jsonb) returns setof jsonb
language plpgsql as $dbci$
declare
  c jsonb; res jsonb; results jsonb := '[]'::jsonb;
  n bigint; eff_user text; eff_super boolean; eff_bypass boolean;
  st text; msg text; det text; hnt text;
  q text; t text; thens jsonb; ctx text; cons text; d jsonb; probed jsonb := '{}'::jsonb;
  counted boolean; reads jsonb;
begin
  counted := current_setting('db_ci.unfrozen_counters', true) = 'on';
  begin
    -- What each probed step's statement can do, for anyone: from the state the scenario
    -- starts in, and after every step (below).
    for d in select value from jsonb_array_elements(steps) where value ? 'probes' loop
      probed := probed || jsonb_build_object(d->>'i', pg_temp.dbci_probe(d));
    end loop;
    for c in select value from jsonb_array_elements(steps) loop
      res := jsonb_build_object('i', c->'i');
      if counted then
        reads := pg_temp.dbci_unfrozen();
      end if;
      if c ? 'now' then
        perform set_config('db_ci.now', c->>'now', true);
      end if;
      if c ? 'then' then
        res := res || jsonb_build_object('then_before', pg_temp.dbci_then_before(c));
      end if;
      perform set_config('role', c->>'role', true);
      {CLAIMS}
      select current_user, r.rolsuper, r.rolbypassrls into eff_user, eff_super, eff_bypass
        from pg_catalog.pg_roles r where r.rolname = current_user;
      res := res || jsonb_build_object('user', eff_user, 'super', eff_super, 'bypass', eff_bypass);
      if not (eff_super or (eff_bypass and not (c->>'may_bypass')::boolean)) then
        begin
          {OP}
        exception when others then
          {OP_ERROR}
        end;
      end if;
      perform set_config('role', 'none', true);
      if c ? 'then' then
        begin
          thens := '[]'::jsonb;
          for q in select value from jsonb_array_elements_text(c->'then') loop
            execute 'select coalesce(json_agg(dbci_then), ''[]'')::text from (' || q || ') dbci_then' into t;
            thens := thens || jsonb_build_array(t);
          end loop;
          res := res || jsonb_build_object('then', thens);
        exception when others then
          get stacked diagnostics st = returned_sqlstate, msg = message_text;
          res := res || jsonb_build_object('setup_sqlstate', st, 'setup_error', msg, 'phase', 'then');
        end;
      end if;
      if counted then
        res := res || jsonb_build_object('unfrozen', pg_temp.dbci_unfrozen_since(reads));
      end if;
      results := results || jsonb_build_array(res);
      for d in select value from jsonb_array_elements(steps) where value ? 'probes' loop
        probed := jsonb_set(probed, array[d->>'i'], (probed->(d->>'i')) || pg_temp.dbci_probe(d));
      end loop;
    end loop;
    raise sqlstate 'DBCIR';
  exception when sqlstate 'DBCIR' then
    null;
  end;
  return query select case when probed ? (value->>'i')
                           then value || jsonb_build_object('probes', probed->(value->>'i'))
                           else value end
                 from jsonb_array_elements(results);
end
$dbci$"#;

/// What the batch function reports for one cell.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CellResult {
    pub i: usize,
    pub before_count: Option<i64>,
    pub before_match: Option<i64>,
    pub before_fp: Option<String>,
    pub user: Option<String>,
    #[serde(rename = "super")]
    pub superuser: Option<bool>,
    pub bypass: Option<bool>,
    pub rows: Option<i64>,
    pub sqlstate: Option<String>,
    pub error: Option<String>,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// Where the error was raised (`PL/pgSQL function … at RAISE`), and the constraint a
    /// constraint violation names: a declared denial counts only when the project refused.
    pub context: Option<String>,
    pub constraint: Option<String>,
    /// Per `then:` query, its rows as JSON text before the statement (null where it failed).
    pub then_before: Option<Vec<Option<String>>>,
    /// The statement run again as each identity of the cell's probes: after the actor's
    /// run; for a step, from the state its scenario starts in and after every step.
    pub probes: Option<Vec<ProbeResult>>,
    /// The case's own SQL (its `where`, values) failed as admin, or impersonating the actor
    /// failed (`phase` says which): a broken test.
    pub setup_sqlstate: Option<String>,
    pub setup_error: Option<String>,
    pub phase: Option<String>,
    pub after_count: Option<i64>,
    pub after_match: Option<i64>,
    pub after_fp: Option<String>,
    /// With `returns:`: the rows the statement returned, as JSON text (see
    /// [`super::plan::returning_rows`]).
    pub returned: Option<String>,
    /// Per `then:` query, its rows as JSON text (run as admin after the statement).
    pub then: Option<Vec<String>>,
    /// The counters (`db_ci_clock.read_N`) of the clock readers db-ci could not freeze that
    /// moved while the cell ran: it read the real clock.
    pub unfrozen: Option<Vec<String>>,
    /// The whole batch failed (statement timeout): the error.
    #[serde(skip)]
    pub batch_error: Option<String>,
}

/// One identity's run of a probed statement (see [`super::plan::Cell::probe_actors`]).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ProbeResult {
    pub who: String,
    pub rows: Option<i64>,
    pub error: Option<String>,
    pub then_held: Option<bool>,
}

/// How many workers to use for `cells` cells.
pub fn worker_count(cells: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (1 + cells / CELLS_PER_EXTRA_WORKER).min(cores).clamp(1, 4)
}

/// Connects to `database` ready to run batches.
pub async fn connect_worker(
    server: &Server,
    database: &str,
    timeout: std::time::Duration,
) -> Result<Client> {
    let client = server.connect(database).await?;
    client
        .batch_execute(&format!(
            "set statement_timeout = {}; {UNFROZEN_FUNCTIONS}; {PROBE_FUNCTION}; {THEN_BEFORE_FUNCTION}; {}; {}",
            timeout.as_millis(),
            with_pieces(BATCH_FUNCTION),
            with_pieces(SCENARIO_FUNCTION),
        ))
        .await
        .map_err(|e| Error::environment(format!("prepare an rls worker: {}", db_error_text(&e))))?;
    Ok(client)
}

/// Runs `cells` on `client` batch by batch, sending each batch's results as it completes.
pub async fn run_on(
    client: &Client,
    cells: &[(usize, &Cell)],
    done: &tokio::sync::mpsc::UnboundedSender<Vec<CellResult>>,
) -> Result<()> {
    for batch in cells.chunks(BATCH) {
        let (mut results, timed_out) = run_batch(client, batch).await?;
        if timed_out && batch.len() > 1 {
            // One cell ran past the time limit and took its batch down: run the batch's
            // cells one by one, so only the cell that times out is broken.
            results.clear();
            for one in batch.chunks(1) {
                results.extend(run_batch(client, one).await?.0);
            }
        }
        let _ = done.send(results);
    }
    Ok(())
}

/// Runs each scenario of `cells` (the steps of a `steps:` case, in order) on `client`,
/// sending each scenario's results as it completes.
pub async fn run_scenarios(
    client: &Client,
    cells: &[(usize, &Cell)],
    done: &tokio::sync::mpsc::UnboundedSender<Vec<CellResult>>,
) -> Result<()> {
    let mut scenarios: Vec<Vec<(usize, &Cell)>> = Vec::new();
    for (index, cell) in cells {
        match scenarios.last_mut() {
            Some(last) if last[0].1.scenario() == cell.scenario() => last.push((*index, cell)),
            _ => scenarios.push(vec![(*index, cell)]),
        }
    }
    for steps in scenarios {
        let results = run_json(client, &steps, "pg_temp.dbci_scenario").await?.0;
        let _ = done.send(results);
    }
    Ok(())
}

/// Runs one batch; says whether it failed on the statement time limit.
async fn run_batch(client: &Client, batch: &[(usize, &Cell)]) -> Result<(Vec<CellResult>, bool)> {
    run_json(client, batch, "pg_temp.dbci_cells").await
}

/// Runs `function` on the cells of `batch` as JSON; says whether it failed on the statement
/// time limit (every cell then carries the error).
async fn run_json(
    client: &Client,
    batch: &[(usize, &Cell)],
    function: &str,
) -> Result<(Vec<CellResult>, bool)> {
    let json: Vec<serde_json::Value> = batch
        .iter()
        .map(|(index, cell)| cell_json(*index, cell))
        .collect();
    let payload = serde_json::Value::Array(json).to_string();
    let results = match client
        .query(
            &format!("select r::text from {function}($1::text::jsonb) r"),
            &[&payload],
        )
        .await
    {
        Ok(rows) => rows
            .iter()
            .map(|row| {
                let text: String = row.get(0);
                serde_json::from_str::<CellResult>(&text).map_err(|e| {
                    Error::environment(format!("read an rls cell result: {e}: {text}"))
                })
            })
            .collect::<Result<Vec<_>>>()?,
        Err(e) => {
            let message = db_error_text(&e);
            let results = batch
                .iter()
                .map(|(index, _)| CellResult {
                    i: *index,
                    batch_error: Some(message.clone()),
                    ..CellResult::default()
                })
                .collect();
            return Ok((results, crate::sql::is_timeout(&e)));
        }
    };
    Ok((results, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_functions_have_every_piece_filled_in() {
        for function in [BATCH_FUNCTION, SCENARIO_FUNCTION] {
            let filled = with_pieces(function);
            for piece in ["{CLAIMS}", "{OP}", "{OP_ERROR}", "{AFTER}"] {
                assert!(!filled.contains(piece), "{piece} left in:\n{filled}");
            }
        }
        // The statement and its error are read the same way in a cell and in a step.
        assert!(with_pieces(SCENARIO_FUNCTION).contains(OP_ERROR));
        assert_eq!(with_pieces(BATCH_FUNCTION).matches(OP_ERROR).count(), 1);
    }
}
