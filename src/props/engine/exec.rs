//! Running a step on the server: the batch that wraps it in a savepoint, impersonates its
//! actor and checks the invariant after it, and what the server's answer means (applied,
//! rejected, violated, raised, or a broken property).

use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::{
    Broken, CaseResult, Compiled, EngineError, Rows, Step, StepOutcome, CASE_SAVEPOINT,
    STEP_SAVEPOINT,
};
use crate::actors::Actor;
use crate::sql::{db_error_text, quote_literal};

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
pub async fn query_rows(client: &Client, sql: &str) -> std::result::Result<Rows, EngineError> {
    match run_batch(client, sql).await {
        Ok(mut done) => Ok(done.pop().map(|(rows, _)| rows).unwrap_or_default()),
        Err((_, e)) => Err(EngineError::Query(e)),
    }
}

/// An actor's SQL around a step, made once per property rather than at every step (a
/// property runs thousands of steps, and the claims are JSON to render and quote).
#[derive(Debug, Clone)]
pub struct Impersonation {
    begin: String,
    begin_statements: usize,
    end: String,
}

impl Impersonation {
    pub fn of(actor: &Actor) -> Impersonation {
        let begin = actor.impersonation_sql();
        Impersonation {
            begin_statements: statement_count(&begin),
            begin,
            end: end_impersonation_sql(actor),
        }
    }
}

/// The batch one step sends: a savepoint, the impersonation, the operation, the return to
/// admin and the invariant; with how many statements run up to the end of the operation
/// (an error before that is the operation's, after it the invariant's).
fn step_batch(compiled: &Compiled, step: &Step) -> (String, usize) {
    let impersonation = step.actor.and_then(|a| compiled.impersonations.get(a));
    let mut batch = format!("savepoint {STEP_SAVEPOINT};\n");
    let mut before_operation = 1;
    if let Some(impersonation) = impersonation {
        batch.push_str(&impersonation.begin);
        batch.push('\n');
        before_operation += impersonation.begin_statements;
    }
    let operation_statements = statement_count(&step.sql).max(1);
    batch.push_str(&step.sql);
    batch.push_str(";\n");
    batch.push_str(&format!("release savepoint {STEP_SAVEPOINT};\n"));
    if let Some(impersonation) = impersonation {
        batch.push_str(&impersonation.end);
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
pub(super) async fn run_sequence(
    client: &Client,
    compiled: &Compiled,
    steps: &[Step],
    outcomes: &mut Vec<StepOutcome>,
) -> std::result::Result<CaseResult, EngineError> {
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
        .map_err(EngineError::Restart)?;
    Ok(result)
}

/// Replays `steps` (all but the last) and returns `show`'s rows before and after the last
/// step, then returns to the case savepoint.
pub async fn before_and_after(
    client: &Client,
    compiled: &Compiled,
    steps: &[Step],
    show: &str,
) -> std::result::Result<(Rows, Rows), EngineError> {
    let Some((last, earlier)) = steps.split_last() else {
        return Ok((Rows::default(), Rows::default()));
    };
    for step in earlier {
        run_step(client, compiled, step)
            .await
            .map_err(|b| EngineError::Replay(b.message))?;
    }
    let before = query_rows(client, show).await?;
    let _ = run_step(client, compiled, last).await;
    let after = query_rows(client, show).await;
    client
        .batch_execute(&format!("rollback to savepoint {CASE_SAVEPOINT}"))
        .await
        .map_err(EngineError::Query)?;
    Ok((before, after?))
}
#[cfg(test)]
mod tests {
    use super::super::test_support::{actor, compiled};
    use super::*;

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
    fn statements_are_counted_as_the_server_completes_them() {
        assert_eq!(statement_count("select 1; select 2;"), 2);
        assert_eq!(statement_count("select 1;;  ; -- nothing\n"), 1);
        assert_eq!(statement_count(""), 0);
    }
}
