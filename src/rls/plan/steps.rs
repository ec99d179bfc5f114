//! Planning a `steps:` scenario: one cell per step, run in order in one transaction.

use super::render::{render_for, render_then, render_value, returning_rows};
use super::{all_actors, returns_nothing, CaseAt, Cell, CellKind, OpKind, Plan, Returns};
use crate::policy_tests::cases::{CaseError, Expect, Operation, Step};
use crate::yaml::Pos;

/// Plans a `steps:` scenario: one cell per step, run in order in one transaction.
pub(super) fn plan_steps(plan: &mut Plan, at: &CaseAt<'_>, steps: &[Step]) {
    let CaseAt { file, case, .. } = *at;
    let name = &case.name;
    let mut cells = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let actor = file
            .actors
            .get(&step.actor)
            .expect("a step's actor is one of the file's");
        let expect = step.expect;
        let returns = match step
            .returns
            .as_ref()
            .filter(|_| expect == Expect::Allow)
            .map(|want| render_value(file, actor, want))
            .transpose()
        {
            Ok(want) => want.map(|want| Returns {
                want,
                ordered: step.ordered,
            }),
            Err(message) => {
                plan.errors.push(CaseError::new(
                    Pos::from(step.line),
                    format!("case `{name}`: step {}: returns: {message}", index + 1),
                ));
                return;
            }
        };
        let op = match render_for(file, actor, &step.sql) {
            Ok(op) if returns.is_some() => returning_rows(&op),
            Ok(op) if step.returns_rows => format!(
                "select count(*) from ({}) as returned",
                op.trim().trim_end_matches(';')
            ),
            Ok(op) => op,
            Err(message) => {
                plan.errors.push(CaseError::new(
                    Pos::from(step.line),
                    format!("case `{name}`: step {}: {message}", index + 1),
                ));
                return;
            }
        };
        let then = match render_then(file, actor, step.then.as_ref()) {
            Ok(then) => then,
            Err((pos, message)) => {
                plan.errors.push(CaseError::new(
                    pos,
                    format!("case `{name}`: step {}: then: {message}", index + 1),
                ));
                return;
            }
        };
        cells.push(Cell {
            file: file.rel.clone(),
            // Each step is its own reported case: `<case> / step N / sql as <actor>`.
            case: format!("{name} / step {}", index + 1),
            case_line: step.line,
            target: "sql".to_owned(),
            operation: Operation::Sql,
            actor: actor.clone(),
            // A step's `expect:` is required: a scenario is never recorded.
            expect: Some(expect),
            case_index: case.index,
            unreviewed: false,
            deny_sqlstates: step.deny_sqlstates.clone(),
            deny_on_error: step.deny_on_error,
            op,
            op_kind: if step.returns_rows {
                OpKind::Count
            } else {
                OpKind::Rows
            },
            then,
            kind: CellKind::Step {
                scenario: case.line(),
                // A denied step must be one that can succeed, for someone; the rows a
                // `returns: []` hides must exist.
                probe_actors: if expect == Expect::Deny || returns_nothing(returns.as_ref()) {
                    all_actors(file)
                } else {
                    Vec::new()
                },
            },
            returns,
            now: step.now,
            base_now: None,
        });
    }
    plan.cells.extend(cells);
}
