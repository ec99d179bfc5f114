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

impl Tally {
    /// Counts one generated case whose steps ended as `outcomes`.
    fn count(&mut self, outcomes: &[StepOutcome]) {
        self.cases += 1;
        self.steps += outcomes.len() as u64;
        for outcome in outcomes {
            match outcome {
                StepOutcome::Rejected { .. } => self.rejected += 1,
                StepOutcome::Applied { rows: 0 } => self.no_ops += 1,
                _ => {}
            }
        }
    }
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

/// The batch one step sends: a savepoint, the impersonation, the operation, the return to
/// admin and the invariant; with how many statements run up to the end of the operation
/// (an error before that is the operation's, after it the invariant's).
fn step_batch(compiled: &Compiled, step: &Step) -> (String, usize) {
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
    (batch, before_operation + operation_statements)
}

/// How a step that ran through ended: the invariant's rows (the batch's last result) are a
/// violation; else the rows the operation's last statement affected or returned.
fn completed_step(done: &[(Rows, u64)], through_operation: usize) -> StepOutcome {
    let rows = done
        .get(through_operation - 1)
        .map_or(0, |(rows, count)| (*count).max(rows.rows.len() as u64));
    let violating = done
        .last()
        .map(|(rows, _)| rows.clone())
        .unwrap_or_default();
    if violating.rows.is_empty() {
        StepOutcome::Applied { rows }
    } else {
        StepOutcome::Violated(violating)
    }
}

/// Runs one step in a savepoint, then the invariant, in one round trip when it goes well.
async fn run_step(
    client: &Client,
    compiled: &Compiled,
    step: &Step,
) -> std::result::Result<StepOutcome, Broken> {
    let actor = compiled.actor(step);
    let (batch, through_operation) = step_batch(compiled, step);
    match run_batch(client, &batch).await {
        Ok(done) => Ok(completed_step(&done, through_operation)),
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
    classify_server_error(
        db.code().code(),
        db.message(),
        db.where_(),
        impersonated,
        operation,
    )
}

/// [`classify`] once the error is known to come from the server and not from the time
/// limit: `context` is the error's CONTEXT (the function frames it was raised in).
fn classify_server_error(
    sqlstate: &str,
    message: &str,
    context: Option<&str>,
    impersonated: bool,
    operation: usize,
) -> std::result::Result<StepOutcome, Broken> {
    let sqlstate = sqlstate.to_owned();
    if sqlstate.starts_with("23") || (impersonated && sqlstate == "42501") {
        return Ok(StepOutcome::Rejected { sqlstate });
    }
    // An error with no function context comes from the operation's own text (a typo, an
    // unknown column, a value that does not parse): the property is wrong, not the project.
    let inside_function = context.is_some_and(|w| !w.is_empty());
    if !inside_function {
        return Err(Broken {
            message: format!(
                "operation {} fails by itself (SQLSTATE {sqlstate}): {message}",
                operation + 1,
            ),
            operation: Some(operation),
        });
    }
    let mut message = message.to_owned();
    if let Some(context) = context {
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
    explore(
        compiled,
        runner,
        async |steps: &[Step], outcomes: &mut Vec<StepOutcome>| {
            run_sequence(client, compiled, steps, outcomes).await
        },
    )
    .await
}

/// [`run`] with the database behind `try_sequence` (which runs a sequence from the case's
/// start, fills in each step's outcome and returns to the start): the generation, counting
/// and shrinking, apart from what the steps do.
async fn explore(
    compiled: &Compiled,
    runner: &mut TestRunner,
    mut try_sequence: impl AsyncFnMut(
        &[Step],
        &mut Vec<StepOutcome>,
    ) -> std::result::Result<CaseResult, String>,
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
        let result = try_sequence(&steps, &mut outcomes).await?;
        executed += outcomes.len() as u64;
        tally.count(&outcomes);
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
                let (result, steps, shrink_steps) = shrink(
                    compiled,
                    &mut try_sequence,
                    &mut tree,
                    result,
                    steps,
                    outcomes,
                )
                .await?;
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
    compiled: &Compiled,
    try_sequence: &mut impl AsyncFnMut(
        &[Step],
        &mut Vec<StepOutcome>,
    ) -> std::result::Result<CaseResult, String>,
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
            let result = try_sequence(&steps, &mut outcomes).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Template {
        Template::parse(text).unwrap()
    }

    /// Two operations: `vote` draws one value of a three-value pool, `reset` draws none.
    fn compiled(actors: Vec<Actor>) -> Compiled {
        Compiled {
            templates: vec![
                template("update posts set votes = votes + {{delta}}"),
                template("update posts set votes = 0"),
            ],
            draw_pools: vec![vec![vec!["1".into(), "2".into(), "3".into()]], vec![]],
            actors,
            invariant: "select * from posts where votes < 0".into(),
            invariant_call: "select * from posts where votes < 0".into(),
            cases: 40,
            max_steps: 6,
        }
    }

    fn actor(name: &str, spec: &str) -> Actor {
        let spec: crate::actors::ActorSpec =
            crate::yaml::parse_yaml(spec, std::path::Path::new("props.yaml")).unwrap();
        Actor::resolve(name, &spec).unwrap()
    }

    fn violated() -> StepOutcome {
        StepOutcome::Violated(Rows {
            columns: vec!["votes".into()],
            rows: vec![vec![Some("-1".into())]],
        })
    }

    /// Runs `explore` with a fake database: each step ends as `outcome` says (given the
    /// steps before it in its sequence), the first violation fails the case. Returns the
    /// finding and every sequence tried, in order.
    fn explore_with(
        compiled: &Compiled,
        seed: u64,
        outcome: impl Fn(&[Step], &Step) -> std::result::Result<StepOutcome, Broken>,
    ) -> (Finding, Vec<Vec<Step>>) {
        let mut tried = Vec::new();
        let mut runner = runner(
            seed,
            "props/posts.yaml",
            "votes stay positive",
            compiled.cases,
        );
        let finding = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(explore(
                compiled,
                &mut runner,
                async |steps: &[Step], outcomes: &mut Vec<StepOutcome>| {
                    tried.push(steps.to_vec());
                    outcomes.clear();
                    for (index, step) in steps.iter().enumerate() {
                        match outcome(&steps[..index], step) {
                            Ok(o) => {
                                outcomes.push(o.clone());
                                if matches!(o, StepOutcome::Violated(_)) {
                                    return Ok(CaseResult::Failed {
                                        step: index,
                                        outcome: o,
                                    });
                                }
                            }
                            Err(broken) => return Ok(CaseResult::Broken(broken)),
                        }
                    }
                    Ok(CaseResult::Held)
                },
            ))
            .unwrap();
        (finding, tried)
    }

    /// Shrinking, after the first failing case, never runs a sequence again once it saw it
    /// pass (different raw values often make the same steps); returns how many it ran.
    fn shrink_runs_each_passing_sequence_once(
        tried: &[Vec<Step>],
        fails: impl Fn(&[Step]) -> bool,
    ) -> usize {
        let first_failure = tried.iter().position(|s| fails(s)).unwrap();
        let mut passed = HashSet::new();
        for sequence in &tried[first_failure + 1..] {
            if !fails(sequence) {
                assert!(passed.insert(sequence.clone()), "ran twice: {sequence:?}");
            }
        }
        tried.len() - first_failure - 1
    }

    #[test]
    fn concrete_steps_take_pool_entries_modulo_the_pool() {
        let c = compiled(vec![]);
        let steps = c.concrete(&[(0, 3, vec![4]), (1, 0, vec![2]), (0, 0, vec![0])]);
        let sql: Vec<&str> = steps.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "update posts set votes = votes + 2",
                "update posts set votes = 0",
                "update posts set votes = votes + 1"
            ]
        );
        // No actors: the steps run as admin whatever index was drawn.
        assert!(steps.iter().all(|s| s.actor.is_none()));
        let with_actor = compiled(vec![actor("alice", "{ user: alice@example.com }")]);
        assert_eq!(with_actor.concrete(&[(1, 0, vec![])])[0].actor, Some(0));
    }

    #[test]
    fn generated_sequences_stay_within_the_property_bounds() {
        let c = compiled(vec![]);
        let strategy = strategy(&c);
        let mut runner = runner(7, "props/posts.yaml", "bounds", 1);
        let mut lengths = HashSet::new();
        for _ in 0..300 {
            let raw = strategy.new_tree(&mut runner).unwrap().current();
            lengths.insert(raw.len());
            assert!((1..=6).contains(&raw.len()), "{raw:?}");
            for (operation, actor, picks) in &raw {
                assert!(*operation < 2 && *actor == 0, "{raw:?}");
                // One pick per draw of the operation that draws most, each inside the pool.
                assert_eq!(picks.len(), 1, "{raw:?}");
                assert!(picks[0] < 3, "{raw:?}");
            }
        }
        assert_eq!(
            lengths.len(),
            6,
            "every length from 1 to max_steps: {lengths:?}"
        );
    }

    #[test]
    fn the_runner_is_deterministic_in_seed_file_and_property() {
        let c = compiled(vec![]);
        let first = |seed: u64, property: &str| {
            let mut runner = runner(seed, "props/posts.yaml", property, 1);
            (0..5)
                .map(|_| strategy(&c).new_tree(&mut runner).unwrap().current())
                .collect::<Vec<_>>()
        };
        assert_eq!(first(7, "a"), first(7, "a"));
        assert_ne!(first(7, "a"), first(8, "a"));
        assert_ne!(first(7, "a"), first(7, "b"));
    }

    #[test]
    fn a_property_that_holds_runs_every_case_and_counts_its_steps() {
        let c = compiled(vec![]);
        let (finding, tried) = explore_with(&c, 7, |_, step| {
            Ok(if step.operation == 1 {
                StepOutcome::Applied { rows: 0 }
            } else if step.sql.ends_with("+ 3") {
                StepOutcome::Rejected {
                    sqlstate: "23514".into(),
                }
            } else {
                StepOutcome::Applied { rows: 1 }
            })
        });
        assert_eq!(finding.result, CaseResult::Held);
        assert!(finding.steps.is_empty());
        assert_eq!(tried.len(), 40);
        let all: Vec<&Step> = tried.iter().flatten().collect();
        assert_eq!(finding.tally.cases, 40);
        assert_eq!(finding.tally.steps, all.len() as u64);
        assert_eq!(finding.executed, all.len() as u64);
        let resets = all.iter().filter(|s| s.operation == 1).count() as u64;
        let rejected = all.iter().filter(|s| s.sql.ends_with("+ 3")).count() as u64;
        assert_eq!(finding.tally.no_ops, resets);
        assert_eq!(finding.tally.rejected, rejected);
        assert!(resets > 0 && rejected > 0, "{resets} {rejected}");
    }

    #[test]
    fn a_failure_shrinks_to_the_one_step_that_causes_it() {
        // Adding 3 breaks the invariant, whatever ran before.
        let c = compiled(vec![]);
        let (finding, tried) = explore_with(&c, 7, |_, step| {
            Ok(if step.sql.ends_with("+ 3") {
                violated()
            } else {
                StepOutcome::Applied { rows: 1 }
            })
        });
        let CaseResult::Failed { step, outcome } = &finding.result else {
            panic!("{:?}", finding.result);
        };
        assert_eq!((*step, outcome), (0, &violated()));
        let steps: Vec<&str> = finding.steps.iter().map(|(s, _)| s.sql.as_str()).collect();
        assert_eq!(steps, ["update posts set votes = votes + 3"]);
        assert_eq!(finding.steps[0].1, violated());
        let fails = |s: &[Step]| s.iter().any(|s| s.sql.ends_with("+ 3"));
        let shrink_runs = shrink_runs_each_passing_sequence_once(&tried, fails);
        assert!(shrink_runs > 0);
        assert_eq!(
            finding.tally.cases,
            (tried.len() - shrink_runs) as u64,
            "shrinking runs are not generated cases"
        );
    }

    #[test]
    fn a_failure_needing_two_steps_keeps_both_and_drops_the_rest() {
        // Adding 1 after a reset (at any distance) breaks the invariant.
        let c = compiled(vec![]);
        let (finding, tried) = explore_with(&c, 7, |earlier, step| {
            let after_reset = earlier.iter().any(|s| s.operation == 1);
            Ok(if after_reset && step.sql.ends_with("+ 1") {
                violated()
            } else {
                StepOutcome::Applied { rows: 1 }
            })
        });
        let CaseResult::Failed { step, .. } = finding.result else {
            panic!("no failure found: {:?}", finding.result);
        };
        let steps: Vec<&str> = finding.steps.iter().map(|(s, _)| s.sql.as_str()).collect();
        assert_eq!(
            steps,
            [
                "update posts set votes = 0",
                "update posts set votes = votes + 1"
            ]
        );
        assert_eq!(step, 1);
        shrink_runs_each_passing_sequence_once(&tried, |s| {
            s.iter()
                .skip_while(|s| s.operation != 1)
                .any(|s| s.sql.ends_with("+ 1"))
        });
    }

    #[test]
    fn a_broken_case_stops_at_once_without_shrinking() {
        let c = compiled(vec![]);
        let (finding, tried) = explore_with(&c, 7, |_, step| {
            if step.operation == 1 {
                Err(Broken {
                    message: "operation 2 fails by itself".into(),
                    operation: Some(1),
                })
            } else {
                Ok(StepOutcome::Applied { rows: 1 })
            }
        });
        assert!(matches!(finding.result, CaseResult::Broken(_)));
        let last = tried.last().unwrap();
        assert_eq!(finding.tally.cases, tried.len() as u64);
        // The steps before the broken one, with their outcomes; nothing after it.
        let broken_at = last.iter().position(|s| s.operation == 1).unwrap();
        assert_eq!(finding.steps.len(), broken_at);
        assert!(finding.steps.iter().all(|(s, _)| s.operation == 0));
    }

    #[test]
    fn errors_are_rejections_failures_or_a_broken_property() {
        let rejected = |sqlstate: &str| StepOutcome::Rejected {
            sqlstate: sqlstate.into(),
        };
        assert_eq!(
            classify_server_error("23505", "duplicate key", None, false, 0),
            Ok(rejected("23505"))
        );
        assert_eq!(
            classify_server_error("42501", "permission denied", None, true, 0),
            Ok(rejected("42501"))
        );
        // As admin a permission error is no rejection: the operation cannot run at all.
        let broken = classify_server_error("42501", "permission denied", None, false, 2);
        assert_eq!(
            broken,
            Err(Broken {
                message: "operation 3 fails by itself (SQLSTATE 42501): permission denied".into(),
                operation: Some(2),
            })
        );
        assert!(classify_server_error("42703", "no column", Some(""), false, 0).is_err());
        let raised = classify_server_error(
            "P0001",
            "votes went negative",
            Some("PL/pgSQL function check_votes() line 3 at RAISE\nSQL statement \"update posts\""),
            false,
            0,
        );
        assert_eq!(
            raised,
            Ok(StepOutcome::Raised {
                sqlstate: "P0001".into(),
                message: "votes went negative (PL/pgSQL function check_votes() line 3 at RAISE)"
                    .into(),
            })
        );
    }

    #[test]
    fn a_step_batch_wraps_the_operation_and_counts_statements_up_to_it() {
        let c = compiled(vec![]);
        let step = Step {
            operation: 1,
            actor: None,
            sql: "update posts set votes = 0; select 1".into(),
        };
        let (batch, through) = step_batch(&c, &step);
        assert_eq!(
            batch,
            "savepoint db_ci_step;\nupdate posts set votes = 0; select 1;\n\
             release savepoint db_ci_step;\nselect * from posts where votes < 0"
        );
        assert_eq!(through, 3);
        let alice = actor("alice", "{ user: alice@example.com }");
        let impersonation = statement_count(&alice.impersonation_sql());
        let c = compiled(vec![alice]);
        let step = Step {
            actor: Some(0),
            ..step
        };
        let (batch, through) = step_batch(&c, &step);
        assert_eq!(through, 3 + impersonation);
        assert!(batch.contains("reset role;"), "{batch}");
        assert!(
            batch.ends_with("select * from posts where votes < 0"),
            "{batch}"
        );
    }

    #[test]
    fn a_completed_step_is_applied_or_violates_the_invariant() {
        let rows = |n: usize| Rows {
            columns: vec!["id".into()],
            rows: vec![vec![Some("1".into())]; n],
        };
        // savepoint, operation (UPDATE 2), release, invariant.
        let done = vec![
            (Rows::default(), 0),
            (Rows::default(), 2),
            (Rows::default(), 0),
            (rows(0), 0),
        ];
        assert_eq!(completed_step(&done, 2), StepOutcome::Applied { rows: 2 });
        // A SELECT operation counts the rows it returned.
        let done = vec![(Rows::default(), 0), (rows(3), 0), (rows(0), 0)];
        assert_eq!(completed_step(&done, 2), StepOutcome::Applied { rows: 3 });
        let done = vec![(Rows::default(), 0), (rows(0), 1), (rows(2), 2)];
        assert_eq!(completed_step(&done, 2), StepOutcome::Violated(rows(2)));
    }

    #[test]
    fn rows_describe_at_most_limit_rows() {
        let rows = Rows {
            columns: vec!["id".into(), "note".into()],
            rows: vec![
                vec![Some("1".into()), None],
                vec![Some("2".into()), Some("x".into())],
                vec![Some("3".into()), Some("y".into())],
            ],
        };
        assert_eq!(
            rows.describe(2),
            ["(id=1, note=null)", "(id=2, note=x)", "… and 1 more"]
        );
        assert_eq!(rows.describe(5).len(), 3);
    }

    #[test]
    fn statements_are_counted_as_the_server_completes_them() {
        assert_eq!(statement_count("select 1; select 2;"), 2);
        assert_eq!(statement_count("select 1;;  ; -- nothing\n"), 1);
        assert_eq!(statement_count(""), 0);
    }
}
