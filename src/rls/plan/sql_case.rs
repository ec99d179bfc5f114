//! Planning an `sql:` case: one cell per actor running the statement.

use super::render::{render_for, render_then, render_value, returning_rows};
use super::{
    add_holes, all_actors, planned, returns_nothing, CaseAt, Cell, CellKind, OpKind, Plan, Returns,
};
use crate::policy_tests::cases::{CaseError, Expect, Operation, SqlCase};

/// Plans an `sql:` case: one cell per actor, none of it reading the catalog.
pub(super) fn plan_sql(plan: &mut Plan, at: &CaseAt<'_>, sql: &SqlCase) {
    let CaseAt {
        file, case, record, ..
    } = *at;
    let pos = case.pos;
    let rules = &sql.rules;
    if !record {
        add_holes(plan, case, Operation::Sql, &rules.expectations.missing);
    }
    for (actor_name, expect) in planned(&rules.expectations, record) {
        let actor = file
            .actors
            .get(&actor_name)
            .expect("resolved against the file's actors");
        // Only what an allowed actor reads is compared (`{{me.email}}` means nothing
        // for anon).
        let returns = match sql
            .returns
            .as_ref()
            .filter(|_| expect == Some(Expect::Allow))
            .map(|want| render_value(file, actor, want))
            .transpose()
        {
            Ok(want) => want.map(|want| Returns {
                want,
                ordered: sql.ordered,
            }),
            Err(message) => {
                plan.errors.push(CaseError::new(
                    pos,
                    format!("case `{}`: returns: {message}", case.name),
                ));
                break;
            }
        };
        let op = match render_for(file, actor, &sql.sql) {
            Ok(op) if returns.is_some() => returning_rows(&op),
            Ok(op) if sql.returns_rows => format!(
                "select count(*) from ({}) as returned",
                op.trim().trim_end_matches(';')
            ),
            Ok(op) => op,
            Err(message) => {
                plan.errors.push(CaseError::new(
                    pos,
                    format!("case `{}`: {message}", case.name),
                ));
                break;
            }
        };
        let then = match render_then(file, actor, rules.then.as_ref()) {
            Ok(then) => then,
            Err((l, message)) => {
                plan.errors.push(CaseError::new(
                    l,
                    format!("case `{}`: then: {message}", case.name),
                ));
                break;
            }
        };
        plan.cells.push(Cell {
            file: file.rel.clone(),
            case: case.name.clone(),
            case_line: case.line(),
            target: "sql".to_owned(),
            operation: Operation::Sql,
            unreviewed: rules.unreviewed.contains(&actor_name),
            actor: actor.clone(),
            expect,
            case_index: case.index,
            deny_sqlstates: rules.deny_sqlstates.clone(),
            deny_on_error: rules.deny_on_error,
            op,
            op_kind: if sql.returns_rows {
                OpKind::Count
            } else {
                OpKind::Rows
            },
            then,
            kind: CellKind::Call {
                probe_actors: if returns_nothing(returns.as_ref()) {
                    all_actors(file)
                } else {
                    Vec::new()
                },
            },
            returns,
            now: None,
            base_now: None,
        });
    }
}
