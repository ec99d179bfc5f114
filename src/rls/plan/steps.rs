//! Planning a `steps:` scenario: one cell per step, run in order in one transaction.

use super::render::{render_for, render_then, render_value, returning_rows};
use super::{all_actors, returns_nothing, states, Cell, OpKind, Plan, Returns};
use crate::policy_tests::cases::{returns_rows_wanted, CaseSpec, DenyOn, Expect, Operation};
use crate::policy_tests::PolicyFile;
use crate::yaml::Pos;

/// Plans a `steps:` scenario: one cell per step, run in order in one transaction.
pub(super) fn plan_steps(
    plan: &mut Plan,
    file: &PolicyFile,
    case: &CaseSpec,
    case_index: usize,
    line: usize,
    pos: Pos,
    steps: &[serde_saphyr::Spanned<crate::policy_tests::cases::StepSpec>],
) {
    let name = &case.name;
    if case.select.is_some()
        || case.insert.is_some()
        || case.update.is_some()
        || case.delete.is_some()
        || case.filter.is_some()
        || case.allow.is_some()
        || case.deny.is_some()
        || case.sqlstate.is_some()
        || case.returns.is_some()
        || case.then.is_some()
        || case.returns_rows
        || case.ordered
    {
        plan.errors.push((
            pos,
            format!(
                "case `{name}`: a `steps:` case has its expectations on each step (`as:`, `sql:`, `expect:`, `then:`, `returns:`…); only `deny_sqlstate:` and `deny_on:` may stand beside it"
            ),
        ));
        return;
    }
    if steps.is_empty() {
        plan.errors
            .push((pos, format!("case `{name}`: `steps: []` checks nothing")));
        return;
    }
    // A scenario whose every step is denied could be denied by its own mistake (a misspelt
    // argument): an allowed step shows the statements can succeed.
    if steps
        .iter()
        .all(|s| s.value.expect == crate::policy_tests::cases::StepExpect::Deny)
    {
        plan.errors.push((
            pos,
            format!("case `{name}`: every step expects deny: allow at least one, so the scenario shows its statements can succeed"),
        ));
        return;
    }
    let mut cells = Vec::new();
    for (index, spanned) in steps.iter().enumerate() {
        let step = &spanned.value;
        let step_line = spanned.referenced.line() as usize;
        let Some(actor) = file.actors.get(&step.actor.value) else {
            plan.errors.push((
                Pos::of(&step.actor),
                format!(
                    "case `{name}`: step {}: `{}` is not an actor of this file (actors: {})",
                    index + 1,
                    step.actor.value,
                    file.actors.names().collect::<Vec<_>>().join(", ")
                ),
            ));
            return;
        };
        if let Some(returns) = &step.returns {
            if let Err(message) = returns_rows_wanted(&returns.value) {
                plan.errors.push((
                    Pos::of(returns),
                    format!("case `{name}`: step {}: {message}", index + 1),
                ));
                return;
            }
        }
        if step.ordered
            && step
                .returns
                .as_ref()
                .is_none_or(|r| returns_rows_wanted(&r.value) != Ok(true))
        {
            plan.errors.push((
                Pos::from(step_line),
                format!(
                    "case `{name}`: step {}: `ordered: true` compares `returns:` rows in order: give `returns:` as a list of rows",
                    index + 1
                ),
            ));
            return;
        }
        let expect = match step.expect {
            crate::policy_tests::cases::StepExpect::Allow => Expect::Allow,
            crate::policy_tests::cases::StepExpect::Deny => Expect::Deny,
        };
        let returns = match step
            .returns
            .as_ref()
            .filter(|_| expect == Expect::Allow)
            .map(|r| render_value(file, actor, &r.value))
            .transpose()
        {
            Ok(want) => want.map(|want| Returns {
                want,
                ordered: step.ordered,
            }),
            Err(message) => {
                plan.errors.push((
                    Pos::from(step_line),
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
                plan.errors.push((
                    Pos::from(step_line),
                    format!("case `{name}`: step {}: {message}", index + 1),
                ));
                return;
            }
        };
        let then = match render_then(file, actor, step.then.as_ref()) {
            Ok(then) => then,
            Err((pos, message)) => {
                plan.errors
                    .push((pos, format!("case `{name}`: step {}: {message}", index + 1)));
                return;
            }
        };
        cells.push(Cell {
            file: file.rel.clone(),
            // Each step is its own reported case: `<case> / step N / sql as <actor>`.
            case: format!("{name} / step {}", index + 1),
            case_line: step_line,
            target: "sql".to_owned(),
            operation: Operation::Sql,
            actor: actor.clone(),
            // A step's `expect:` is required: a scenario is never recorded.
            expect: Some(expect),
            case_index,
            unreviewed: false,
            deny_sqlstates: states(case.deny_sqlstate.as_ref())
                .chain(states(step.deny_sqlstate.as_ref()))
                .collect(),
            deny_on_error: case.deny_on.or(step.deny_on) == Some(DenyOn::Error),
            before: None,
            op,
            op_kind: if step.returns_rows {
                OpKind::Count
            } else {
                OpKind::Rows
            },
            after: None,
            then,
            // A denied step must be one that can succeed, for someone; the rows a
            // `returns: []` hides must exist.
            probe_actors: if expect == Expect::Deny || returns_nothing(returns.as_ref()) {
                all_actors(file)
            } else {
                Vec::new()
            },
            returns,
            filter: String::new(),
            broken: None,
            scenario: Some(line),
            now: step.now,
            base_now: None,
        });
    }
    plan.cells.extend(cells);
}
