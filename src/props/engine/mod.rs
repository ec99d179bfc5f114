//! The engine: proptest strategies over operation sequences, each step run in a savepoint with
//! the invariant checked after it, and shrinking of a failing sequence to a minimal one.
//!
//! This module owns the engine's types and its entry point; `search` generates sequences and
//! shrinks a failing one, apart from what the steps do, and `exec` runs a step on the server
//! and reads what it did.

mod exec;
mod search;
#[cfg(test)]
mod test_support;

use proptest::test_runner::TestRunner;
use tokio_postgres::Client;

use self::exec::run_sequence;
pub use self::exec::{
    before_and_after, end_impersonation_sql, prepare_invariant, query_rows, Impersonation,
    PREPARED_INVARIANT,
};
use self::search::explore;
pub use self::search::runner;

use crate::actors::Actor;
use crate::policy_tests::properties::Template;

/// Why a property could not be run to a verdict: the session or the generator failed, not
/// the property.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A query db-ci sent as admin failed.
    #[error("{}", crate::sql::db_error_text(.0))]
    Query(tokio_postgres::Error),
    #[error("could not return to the property's start: {}", crate::sql::db_error_text(.0))]
    Restart(tokio_postgres::Error),
    #[error("generating a sequence: {0}")]
    Generate(String),
    /// A step replayed to show a finding broke.
    #[error("{0}")]
    Replay(String),
}

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
    /// Each actor's SQL around a step, in the order of `actors`.
    pub impersonations: Vec<Impersonation>,
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

/// Runs the property's cases from the savepoint [`CASE_SAVEPOINT`] (which the caller created
/// after the setup), and shrinks the first failure. `Err` is the connection failing.
pub async fn run(
    client: &Client,
    compiled: &Compiled,
    runner: &mut TestRunner,
) -> std::result::Result<Finding, EngineError> {
    explore(
        compiled,
        runner,
        async |steps: &[Step], outcomes: &mut Vec<StepOutcome>| {
            run_sequence(client, compiled, steps, outcomes).await
        },
    )
    .await
}
#[cfg(test)]
mod tests {
    use super::test_support::{actor, compiled};
    use super::*;

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
}
