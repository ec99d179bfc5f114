//! Planning an `sql:` case: its shape checked, then one cell per actor running the statement.

use super::render::{render_for, render_then, render_value, returning_rows};
use super::{
    add_holes, all_actors, planned, returns_nothing, states, unreviewed_actors, CaseAt, Cell,
    OpKind, Plan, Returns,
};
use crate::policy_tests::cases::{resolve, returns_rows_wanted, DenyOn, Expect, Operation};
use crate::yaml::Pos;

/// Plans an `sql:` case: one cell per actor, none of it reading the catalog.
pub(super) fn plan_sql(plan: &mut Plan, at: &CaseAt<'_>, sql: &str) {
    let CaseAt {
        file,
        case,
        case_index,
        line,
        pos,
        actor_names,
        record,
        ..
    } = *at;
    if case.select.is_some()
        || case.insert.is_some()
        || case.update.is_some()
        || case.delete.is_some()
        || case.filter.is_some()
    {
        plan.errors.push((
                    pos,
                    format!(
                        "case `{}`: an `sql:` case takes `allow:`/`deny:` (and `sqlstate:`), not table operations or `where:`",
                        case.name
                    ),
                ));
        return;
    }
    if let Some(returns) = &case.returns {
        if let Err(message) = returns_rows_wanted(&returns.value) {
            plan.errors
                .push((Pos::of(returns), format!("case `{}`: {message}", case.name)));
            return;
        }
    }
    if case.ordered
        && case
            .returns
            .as_ref()
            .is_none_or(|r| returns_rows_wanted(&r.value) != Ok(true))
    {
        plan.errors.push((
                    pos,
                    format!(
                        "case `{}`: `ordered: true` compares `returns:` rows in order: give `returns:` as a list of rows",
                        case.name
                    ),
                ));
        return;
    }
    let allow = case.allow.clone().unwrap_or_default();
    let deny = case.deny.clone().unwrap_or_default();
    let expectations = match resolve(&allow, &deny, actor_names) {
        Ok(e) => e,
        Err((l, message)) => {
            plan.errors.push((l.unwrap_or(pos), message));
            return;
        }
    };
    if case.sqlstate.is_some() && case.deny_sqlstate.is_some() {
        plan.errors.push((
            pos,
            format!(
                "case `{}`: give `deny_sqlstate: [..]` or the older `sqlstate:`, not both",
                case.name
            ),
        ));
        return;
    }
    if let Some(state) = &case.sqlstate {
        if state.len() != 5 || !state.chars().all(|c| c.is_ascii_alphanumeric()) {
            plan.errors.push((
                pos,
                format!(
                    "case `{}`: sqlstate `{state}` is not a 5-character SQLSTATE",
                    case.name
                ),
            ));
            return;
        }
    }
    let unreviewed = match unreviewed_actors(&case.unreviewed, actor_names, &case.name) {
        Ok(names) => names,
        Err(error) => {
            plan.errors.push(error);
            return;
        }
    };
    if !record {
        add_holes(plan, case, line, Operation::Sql, &expectations.missing);
    }
    for (actor_name, expect) in planned(&expectations, record) {
        let actor = file
            .actors
            .get(&actor_name)
            .expect("resolved against the file's actors");
        // Only what an allowed actor reads is compared (`{{me.email}}` means nothing
        // for anon).
        let returns = match case
            .returns
            .as_ref()
            .filter(|_| expect == Some(Expect::Allow))
            .map(|r| render_value(file, actor, &r.value))
            .transpose()
        {
            Ok(want) => want.map(|want| Returns {
                want,
                ordered: case.ordered,
            }),
            Err(message) => {
                plan.errors
                    .push((pos, format!("case `{}`: returns: {message}", case.name)));
                break;
            }
        };
        let op = match render_for(file, actor, sql) {
            Ok(op) if returns.is_some() => returning_rows(&op),
            Ok(op) if case.returns_rows => format!(
                "select count(*) from ({}) as returned",
                op.trim().trim_end_matches(';')
            ),
            Ok(op) => op,
            Err(message) => {
                plan.errors
                    .push((pos, format!("case `{}`: {message}", case.name)));
                break;
            }
        };
        let then = match render_then(file, actor, case.then.as_ref()) {
            Ok(then) => then,
            Err((l, message)) => {
                plan.errors
                    .push((l, format!("case `{}`: {message}", case.name)));
                break;
            }
        };
        plan.cells.push(Cell {
            file: file.rel.clone(),
            case: case.name.clone(),
            case_line: line,
            target: "sql".to_owned(),
            operation: Operation::Sql,
            unreviewed: unreviewed.contains(&actor_name),
            actor: actor.clone(),
            expect,
            case_index,
            deny_sqlstates: case
                .sqlstate
                .iter()
                .cloned()
                .chain(states(case.deny_sqlstate.as_ref()))
                .collect(),
            deny_on_error: case.deny_on == Some(DenyOn::Error),
            before: None,
            op,
            op_kind: if case.returns_rows {
                OpKind::Count
            } else {
                OpKind::Rows
            },
            after: None,
            then,
            probe_actors: if returns_nothing(returns.as_ref()) {
                all_actors(file)
            } else {
                Vec::new()
            },
            returns,
            filter: String::new(),
            broken: None,
            scenario: None,
            now: None,
            base_now: None,
        });
    }
}
