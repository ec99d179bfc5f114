//! The engine: proptest strategies over operation sequences, each step run in a savepoint with
//! the invariant checked after it, and shrinking of a failing sequence to a minimal one.

use std::collections::HashSet;

use futures_util::{pin_mut, TryStreamExt};
use proptest::collection::vec as vec_of;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::actors::Actor;
use crate::props::spec::Template;
use crate::sql::{db_error_text, quote_literal};

/// How many simplifications shrinking may try before it settles (proptest's default).
const MAX_SHRINK_ITERS: u32 = 1024;
/// The savepoint every case starts from: the state after the property's setup.
pub const CASE_SAVEPOINT: &str = "db_ci_property";
const STEP_SAVEPOINT: &str = "db_ci_step";

/// A property ready to run: templates parsed, pools read, actors resolved.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub templates: Vec<Template>,
    /// For each template, the pool values (SQL literals) of each of its draws.
    pub draw_pools: Vec<Vec<Vec<String>>>,
    pub actors: Vec<Actor>,
    pub invariant: String,
    /// What a step runs to check the invariant: `execute` of a prepared statement when the
    /// invariant could be prepared (planned once, not at every step), else its text.
    pub invariant_call: String,
    pub cases: u32,
    pub max_steps: u32,
}

/// One generated step as proptest sees it: which operation, which actor, which pool entries
/// (taken modulo the pool's size). Small integer ranges shrink in a few tries, towards the
/// first operation, actor and pool entry.
type RawStep = (usize, usize, Vec<usize>);

/// A step with its values chosen: what runs, and what the reproducer prints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Step {
    pub operation: usize,
    pub actor: Option<usize>,
    pub sql: String,
}

/// The rows a query returned, as text, with column names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    /// `(id=…, upvotes=2, expected=1)` per row, at most `limit` rows.
    pub fn describe(&self, limit: usize) -> Vec<String> {
        let mut lines: Vec<String> = self
            .rows
            .iter()
            .take(limit)
            .map(|row| {
                let fields: Vec<String> = self
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| format!("{c}={}", v.as_deref().unwrap_or("null")))
                    .collect();
                format!("({})", fields.join(", "))
            })
            .collect();
        if self.rows.len() > limit {
            lines.push(format!("… and {} more", self.rows.len() - limit));
        }
        lines
    }
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// It ran; `rows` is what its last statement affected or returned.
    Applied { rows: u64 },
    /// An integrity constraint (class 23), or RLS/privileges (42501) under `as:`, refused it.
    Rejected { sqlstate: String },
    /// It ran and the invariant returned these rows.
    Violated(Rows),
    /// It raised an error that is not a rejection: a bug in a trigger or function.
    Raised { sqlstate: String, message: String },
}

/// Why a case cannot be trusted: the property itself is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub message: String,
    /// The operation at fault, when one is.
    pub operation: Option<usize>,
}

/// A case's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseResult {
    Held,
    /// The step (0-based) that broke the property and how.
    Failed {
        step: usize,
        outcome: StepOutcome,
    },
    Broken(Broken),
}

/// Counts over the generated (not shrunk) cases.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub cases: u64,
    pub steps: u64,
    pub rejected: u64,
    /// Steps that ran but changed or returned nothing (an UPDATE matching no row).
    pub no_ops: u64,
}

/// What running a property found.
#[derive(Debug, Clone)]
pub struct Finding {
    pub tally: Tally,
    pub result: CaseResult,
    /// The minimal failing (or broken) sequence, with each step's outcome in its last run.
    pub steps: Vec<(Step, StepOutcome)>,
    /// Total steps executed, shrinking included (for speed figures).
    pub executed: u64,
}

/// The runner for one property: deterministic in the seed, the file and the property's name.
pub fn runner(seed: u64, file: &str, property: &str, cases: u32) -> TestRunner {
    let digest = Sha256::digest(format!("db-ci properties {seed} {file} {property}").as_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &digest);
    let config = Config {
        cases,
        max_shrink_iters: MAX_SHRINK_ITERS,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, rng)
}

fn strategy(compiled: &Compiled) -> impl Strategy<Value = Vec<RawStep>> {
    let draws = compiled.draw_pools.iter().map(Vec::len).max().unwrap_or(0);
    let largest_pool = compiled
        .draw_pools
        .iter()
        .flatten()
        .map(Vec::len)
        .max()
        .unwrap_or(1)
        .max(1);
    let max_steps = compiled.max_steps.max(1) as usize;
    vec_of(
        (
            0..compiled.templates.len().max(1),
            0..compiled.actors.len().max(1),
            vec_of(0..largest_pool, draws),
        ),
        1..=max_steps,
    )
}

impl Compiled {
    fn concrete(&self, raw: &[RawStep]) -> Vec<Step> {
        raw.iter()
            .map(|(operation, actor, picks)| {
                let operation = *operation;
                let values: Vec<&str> = self.draw_pools[operation]
                    .iter()
                    .zip(picks)
                    .map(|(pool, pick)| pool[pick % pool.len()].as_str())
                    .collect();
                Step {
                    operation,
                    actor: (!self.actors.is_empty()).then_some(*actor),
                    sql: self.templates[operation].render(&values),
                }
            })
            .collect()
    }

    fn actor(&self, step: &Step) -> Option<&Actor> {
        step.actor.and_then(|a| self.actors.get(a))
    }
}

/// `reset role` and empty claims after an impersonated step, so the invariant (and the next
/// step) runs as admin with no leftover `request.jwt.claim.*` of this actor.
pub fn end_impersonation_sql(actor: &Actor) -> String {
    let mut settings = vec!["set_config('request.jwt.claims', '', true)".to_owned()];
    if let serde_json::Value::Object(map) = &actor.claims {
        for key in map.keys() {
            settings.push(format!(
                "set_config({}, '', true)",
                quote_literal(&format!("request.jwt.claim.{key}"))
            ));
        }
    }
    format!("reset role;\nselect {};", settings.join(", "))
}

/// The statements of a batch, counted the way the server counts CommandComplete messages.
fn statement_count(sql: &str) -> usize {
    crate::sql::split(sql)
        .iter()
        .filter(|s| !s.text(sql).trim().trim_end_matches(';').trim().is_empty())
        .count()
}

/// Runs `sql` and returns, for every statement, its rows (with column names) and the count
/// its CommandComplete reported; on error, the statements that completed before it.
async fn run_batch(
    client: &Client,
    sql: &str,
) -> std::result::Result<Vec<(Rows, u64)>, (usize, tokio_postgres::Error)> {
    let mut done: Vec<(Rows, u64)> = Vec::new();
    let mut current = Rows::default();
    let stream = client.simple_query_raw(sql).await.map_err(|e| (0, e))?;
    pin_mut!(stream);
    loop {
        match stream.try_next().await {
            Ok(Some(SimpleQueryMessage::RowDescription(columns))) => {
                current.columns = columns.iter().map(|c| c.name().to_owned()).collect();
            }
            Ok(Some(SimpleQueryMessage::Row(row))) => {
                current.rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                );
            }
            Ok(Some(SimpleQueryMessage::CommandComplete(count))) => {
                done.push((std::mem::take(&mut current), count));
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok(done),
            Err(e) => return Err((done.len(), e)),
        }
    }
}

/// The prepared statement holding the invariant while a property runs.
pub const PREPARED_INVARIANT: &str = "db_ci_invariant";

/// Prepares the invariant (one statement) so each step only executes it; returns the SQL a
/// step runs. A invariant that cannot be prepared (several statements) runs as text.
pub async fn prepare_invariant(client: &Client, invariant: &str) -> String {
    let text = invariant.trim().trim_end_matches(';');
    let sql = format!(
        "savepoint db_ci_prepare; prepare {PREPARED_INVARIANT} as {text}; release savepoint db_ci_prepare"
    );
    match client.batch_execute(&sql).await {
        Ok(()) => format!("execute {PREPARED_INVARIANT}"),
        Err(_) => {
            let _ = client
                .batch_execute("rollback to savepoint db_ci_prepare")
                .await;
            invariant.to_owned()
        }
    }
}

/// Reads the rows of one query as admin.
pub async fn query_rows(client: &Client, sql: &str) -> std::result::Result<Rows, String> {
    match run_batch(client, sql).await {
        Ok(mut done) => Ok(done.pop().map(|(rows, _)| rows).unwrap_or_default()),
        Err((_, e)) => Err(db_error_text(&e)),
    }
}

/// Runs one step in a savepoint, then the invariant, in one round trip when it goes well.
async fn run_step(
    client: &Client,
    compiled: &Compiled,
    step: &Step,
) -> std::result::Result<StepOutcome, Broken> {
    let actor = compiled.actor(step);
    let mut batch = format!("savepoint {STEP_SAVEPOINT};\n");
    let mut before_operation = 1;
    if let Some(actor) = actor {
        batch.push_str(&actor.impersonation_sql());
        batch.push('\n');
        before_operation += statement_count(&actor.impersonation_sql());
    }
    let operation_statements = statement_count(&step.sql).max(1);
    batch.push_str(&step.sql);
    batch.push_str(";\n");
    batch.push_str(&format!("release savepoint {STEP_SAVEPOINT};\n"));
    if let Some(actor) = actor {
        batch.push_str(&end_impersonation_sql(actor));
        batch.push('\n');
    }
    batch.push_str(&compiled.invariant_call);
    let through_operation = before_operation + operation_statements;
    match run_batch(client, &batch).await {
        Ok(done) => {
            let rows = done
                .get(through_operation - 1)
                .map_or(0, |(rows, count)| (*count).max(rows.rows.len() as u64));
            let violating = done
                .last()
                .map(|(rows, _)| rows.clone())
                .unwrap_or_default();
            if violating.rows.is_empty() {
                Ok(StepOutcome::Applied { rows })
            } else {
                Ok(StepOutcome::Violated(violating))
            }
        }
        Err((completed, error)) if completed < through_operation => {
            // The operation failed: undo it (and the impersonation) and classify the error.
            if let Err(e) = client
                .batch_execute(&format!("rollback to savepoint {STEP_SAVEPOINT}"))
                .await
            {
                return Err(Broken {
                    message: format!("could not roll back the step: {}", db_error_text(&e)),
                    operation: Some(step.operation),
                });
            }
            classify(&error, actor.is_some(), step.operation)
        }
        Err((_, error)) => Err(Broken {
            message: format!("the invariant query failed: {}", db_error_text(&error)),
            operation: None,
        }),
    }
}

/// Rejections are counted, errors inside functions and triggers are failures, and any other
/// error of the operation's own statement is a broken property.
fn classify(
    error: &tokio_postgres::Error,
    impersonated: bool,
    operation: usize,
) -> std::result::Result<StepOutcome, Broken> {
    let Some(db) = error.as_db_error() else {
        return Err(Broken {
            message: format!("the connection failed: {}", db_error_text(error)),
            operation: Some(operation),
        });
    };
    let sqlstate = db.code().code().to_owned();
    if crate::sql::is_timeout(error) {
        return Err(Broken {
            message: format!(
                "operation {} ran past the time limit (replay.statement_timeout): {}",
                operation + 1,
                db_error_text(error)
            ),
            operation: Some(operation),
        });
    }
    if sqlstate.starts_with("23") || (impersonated && sqlstate == "42501") {
        return Ok(StepOutcome::Rejected { sqlstate });
    }
    // An error with no function context comes from the operation's own text (a typo, an
    // unknown column, a value that does not parse): the property is wrong, not the project.
    let inside_function = db.where_().is_some_and(|w| !w.is_empty());
    if !inside_function {
        return Err(Broken {
            message: format!(
                "operation {} fails by itself (SQLSTATE {sqlstate}): {}",
                operation + 1,
                db.message()
            ),
            operation: Some(operation),
        });
    }
    let mut message = db.message().to_owned();
    if let Some(context) = db.where_() {
        // The function frames, not the text of the statement that failed inside them.
        let frames: Vec<&str> = context
            .lines()
            .filter(|l| !l.trim_start().starts_with("SQL statement"))
            .collect();
        message.push_str(&format!(" ({})", frames.join("; ")));
    }
    Ok(StepOutcome::Raised { sqlstate, message })
}

/// Runs a sequence from the case savepoint and returns to it afterwards.
async fn run_sequence(
    client: &Client,
    compiled: &Compiled,
    steps: &[Step],
    outcomes: &mut Vec<StepOutcome>,
) -> std::result::Result<CaseResult, String> {
    outcomes.clear();
    let mut result = CaseResult::Held;
    for (index, step) in steps.iter().enumerate() {
        match run_step(client, compiled, step).await {
            Ok(outcome) => {
                let failed = matches!(
                    outcome,
                    StepOutcome::Violated(_) | StepOutcome::Raised { .. }
                );
                outcomes.push(outcome.clone());
                if failed {
                    result = CaseResult::Failed {
                        step: index,
                        outcome,
                    };
                    break;
                }
            }
            Err(broken) => {
                result = CaseResult::Broken(broken);
                break;
            }
        }
    }
    client
        .batch_execute(&format!("rollback to savepoint {CASE_SAVEPOINT}"))
        .await
        .map_err(|e| {
            format!(
                "could not return to the property's start: {}",
                db_error_text(&e)
            )
        })?;
    Ok(result)
}

/// Runs the property's cases from the savepoint [`CASE_SAVEPOINT`] (which the caller created
/// after the setup), and shrinks the first failure. `Err` is the connection failing.
pub async fn run(
    client: &Client,
    compiled: &Compiled,
    runner: &mut TestRunner,
) -> std::result::Result<Finding, String> {
    let strategy = strategy(compiled);
    let mut tally = Tally::default();
    let mut outcomes = Vec::new();
    let mut executed = 0u64;
    for _ in 0..compiled.cases {
        let mut tree = strategy
            .new_tree(runner)
            .map_err(|e| format!("generating a sequence: {e}"))?;
        let steps = compiled.concrete(&tree.current());
        let result = run_sequence(client, compiled, &steps, &mut outcomes).await?;
        executed += outcomes.len() as u64;
        tally.cases += 1;
        tally.steps += outcomes.len() as u64;
        for outcome in &outcomes {
            match outcome {
                StepOutcome::Rejected { .. } => tally.rejected += 1,
                StepOutcome::Applied { rows: 0 } => tally.no_ops += 1,
                _ => {}
            }
        }
        match result {
            CaseResult::Held => continue,
            CaseResult::Broken(_) => {
                let steps = steps.into_iter().zip(outcomes.iter().cloned()).collect();
                return Ok(Finding {
                    tally,
                    result,
                    steps,
                    executed,
                });
            }
            CaseResult::Failed { .. } => {
                let (result, steps, shrink_steps) =
                    shrink(client, compiled, &mut tree, result, steps, outcomes).await?;
                return Ok(Finding {
                    tally,
                    result,
                    steps,
                    executed: executed + shrink_steps,
                });
            }
        }
    }
    Ok(Finding {
        tally,
        result: CaseResult::Held,
        steps: Vec::new(),
        executed,
    })
}

type Shrunk = (CaseResult, Vec<(Step, StepOutcome)>, u64);

/// proptest's shrinking loop, driven here because each test is asynchronous: simplify while
/// the sequence still fails, complicate back when it passes.
async fn shrink(
    client: &Client,
    compiled: &Compiled,
    tree: &mut dyn ValueTree<Value = Vec<RawStep>>,
    result: CaseResult,
    steps: Vec<Step>,
    outcomes: Vec<StepOutcome>,
) -> std::result::Result<Shrunk, String> {
    let mut best = (result, steps, outcomes);
    let mut executed = 0u64;
    let mut outcomes = Vec::new();
    let mut iterations = 0;
    // Different raw values often pick the same concrete steps: run each sequence once.
    let mut passed: HashSet<Vec<Step>> = HashSet::new();
    if !tree.simplify() {
        return Ok(finish(best, executed));
    }
    while iterations < MAX_SHRINK_ITERS {
        iterations += 1;
        let steps = compiled.concrete(&tree.current());
        let failed = if steps == best.1 {
            true
        } else if passed.contains(&steps) {
            false
        } else {
            let result = run_sequence(client, compiled, &steps, &mut outcomes).await?;
            executed += outcomes.len() as u64;
            let failed = matches!(result, CaseResult::Failed { .. });
            if failed {
                best = (result, steps, outcomes.clone());
            } else {
                passed.insert(steps);
            }
            failed
        };
        if failed {
            if !tree.simplify() {
                break;
            }
        } else if !tree.complicate() {
            break;
        }
    }
    Ok(finish(best, executed))
}

fn finish(best: (CaseResult, Vec<Step>, Vec<StepOutcome>), executed: u64) -> Shrunk {
    let (result, steps, outcomes) = best;
    // Only the steps up to the failing one matter; later ones never ran.
    let steps = steps.into_iter().zip(outcomes).collect();
    (result, steps, executed)
}

/// Replays `steps` (all but the last) and returns `show`'s rows before and after the last
/// step, then returns to the case savepoint.
pub async fn before_and_after(
    client: &Client,
    compiled: &Compiled,
    steps: &[Step],
    show: &str,
) -> std::result::Result<(Rows, Rows), String> {
    let Some((last, earlier)) = steps.split_last() else {
        return Ok((Rows::default(), Rows::default()));
    };
    for step in earlier {
        run_step(client, compiled, step)
            .await
            .map_err(|b| b.message)?;
    }
    let before = query_rows(client, show).await?;
    let _ = run_step(client, compiled, last).await;
    let after = query_rows(client, show).await;
    client
        .batch_execute(&format!("rollback to savepoint {CASE_SAVEPOINT}"))
        .await
        .map_err(|e| db_error_text(&e))?;
    Ok((before, after?))
}
