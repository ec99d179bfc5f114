//! Planning a table, view or storage case: its shape checked against the catalog, then one
//! cell per actor and operation on the target.

use super::render::{render_then, render_value, returning_rows};
use super::table_sql::{table_cell, CellSql};
use super::{
    add_holes, planned, states, unreviewed_actors, CaseAt, Catalog, Cell, Plan, Returns, TargetInfo,
};
use crate::policy_tests::cases::{
    resolve, returns_rows_wanted, DenyOn, Expect, OpExpect, Operation,
};
use crate::sql::quote_ident;
use crate::yaml::Pos;

/// Plans a table, view or storage case: one cell per actor and operation on `schema.table`.
pub(super) fn plan_table(plan: &mut Plan, at: &CaseAt<'_>, schema: &str, table: &str) {
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
    if case.returns.is_some() || case.ordered {
        plan.errors.push((
                pos,
                format!(
                    "case `{}`: `returns:` of a table case goes under `select:` (`select: {{ allow: [...], returns: [...] }}`)",
                    case.name
                ),
            ));
        return;
    }
    if let Some(then) = &case.then {
        plan.errors.push((
                Pos::of(then),
                format!(
                    "case `{}`: `then:` of a table case goes under the operation it follows (`update: {{ set: …, then: … }}`)",
                    case.name
                ),
            ));
        return;
    }
    if case.allow.is_some() || case.deny.is_some() || case.sqlstate.is_some() || case.returns_rows {
        plan.errors.push((
                pos,
                format!(
                    "case `{}`: `allow:`/`deny:` go under an operation (`select: {{ allow: [...] }}`) for table cases",
                    case.name
                ),
            ));
        return;
    }
    let info = match at.catalog {
        Catalog::NotRead => TargetInfo::default(),
        Catalog::Read(targets) => {
            let info = targets
                .get(&(schema.to_owned(), table.to_owned()))
                .cloned()
                .unwrap_or_default();
            if !info.exists {
                plan.errors.push((
                    pos,
                    format!(
                        "case `{}`: table or view {schema}.{table} does not exist after replay",
                        case.name
                    ),
                ));
                return;
            }
            info
        }
    };
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(table));
    let key: Vec<String> = case.key.clone().unwrap_or_else(|| info.key.clone());
    let operations: Vec<(Operation, OpExpect)> = [
        case.select
            .as_ref()
            .map(|o| (Operation::Select, o.expect())),
        case.insert
            .as_ref()
            .map(|o| (Operation::Insert, o.expect())),
        case.update
            .as_ref()
            .map(|o| (Operation::Update, o.expect())),
        case.delete
            .as_ref()
            .map(|o| (Operation::Delete, o.expect())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if operations.is_empty() {
        plan.errors.push((
            pos,
            format!(
                "case `{}`: no operation: give `select:`, `insert:`, `update:` or `delete:`",
                case.name
            ),
        ));
        return;
    }
    for (operation, op) in operations {
        if let Some(select) = case
            .select
            .as_ref()
            .filter(|_| operation == Operation::Select)
        {
            if let Some(ordered) = &select.ordered {
                plan.errors.push((
                        Pos::of(ordered),
                        format!(
                            "case `{}`: a table's rows come in no order: `ordered:` is for `sql:` cases",
                            case.name
                        ),
                    ));
                continue;
            }
            if let Some(returns) = &select.returns {
                if returns_rows_wanted(&returns.value) != Ok(true) {
                    plan.errors.push((
                            Pos::of(returns),
                            format!(
                                "case `{}`: `returns:` of a select is the target rows: a list of objects naming the columns compared, e.g. `[{{ id: 1, title: x }}]`",
                                case.name
                            ),
                        ));
                    continue;
                }
            }
        }
        if let (Operation::Select, Some(then)) = (operation, op.then) {
            plan.errors.push((
                    Pos::of(then),
                    format!(
                        "case `{}`: a select changes nothing for `then:` to check; use `returns:` for what it reads",
                        case.name
                    ),
                ));
            continue;
        }
        let deny_sqlstates: Vec<String> = states(case.deny_sqlstate.as_ref())
            .chain(states(op.deny_sqlstate))
            .collect();
        let deny_on_error = case.deny_on.or(op.deny_on) == Some(DenyOn::Error);
        let then_spec = op.then;
        let expectations = match resolve(op.allow, op.deny, actor_names) {
            Ok(e) => e,
            Err((l, message)) => {
                plan.errors.push((l.unwrap_or(pos), message));
                continue;
            }
        };
        // Denials by any error are only worth something when the statement can succeed:
        // an allowed actor's cell shows it does (a case whose own values are wrong, a
        // NOT NULL or foreign key violation, fails there instead of passing as deny).
        let unreviewed = match unreviewed_actors(op.unreviewed, actor_names, &case.name) {
            Ok(names) => names,
            Err(error) => {
                plan.errors.push(error);
                continue;
            }
        };
        // While recording, the allowed actors are not known yet: the check runs on the
        // recorded file.
        let complete = !record || expectations.missing.is_empty();
        if deny_on_error && complete && !expectations.cells.values().any(|e| *e == Expect::Allow) {
            plan.errors.push((
                    pos,
                    format!(
                        "case `{}`: `deny_on: error` for {} with nobody allowed: an error in the case itself would pass as a denial; allow someone, or name the SQLSTATEs with `deny_sqlstate:`",
                        case.name,
                        operation.as_str()
                    ),
                ));
            continue;
        }
        if !record {
            add_holes(plan, case, line, operation, &expectations.missing);
        }
        for (actor_name, expect) in planned(&expectations, record) {
            let actor = file
                .actors
                .get(&actor_name)
                .expect("resolved against the file's actors");
            match table_cell(
                file,
                case,
                actor,
                operation,
                &qualified,
                &key,
                info.has_xmin,
            ) {
                Ok(CellSql {
                    before,
                    op,
                    op_kind,
                    after,
                    filter,
                    broken,
                }) => {
                    // A write's `then:` is what an allowed actor's write promises.
                    let then_spec = then_spec.filter(|_| expect == Some(Expect::Allow));
                    let then = match render_then(file, actor, then_spec) {
                        Ok(then) => then,
                        Err((l, message)) => {
                            plan.errors
                                .push((l, format!("case `{}`: {message}", case.name)));
                            break;
                        }
                    };
                    let want = case
                        .select
                        .as_ref()
                        .filter(|_| operation == Operation::Select)
                        .and_then(|s| s.returns.as_ref())
                        .filter(|_| expect == Some(Expect::Allow));
                    let returns = match want
                        .map(|r| render_value(file, actor, &r.value))
                        .transpose()
                    {
                        Ok(want) => want.map(|want| Returns {
                            want,
                            ordered: false,
                        }),
                        Err(message) => {
                            plan.errors
                                .push((pos, format!("case `{}`: returns: {message}", case.name)));
                            break;
                        }
                    };
                    // The rows the actor reads, beside their count.
                    let op = match (&returns, broken.is_none()) {
                        (Some(_), true) => {
                            returning_rows(&format!("select t.* from {qualified} t where {filter}"))
                        }
                        _ => op,
                    };
                    plan.cells.push(Cell {
                        file: file.rel.clone(),
                        case: case.name.clone(),
                        case_line: line,
                        target: format!("{schema}.{table}"),
                        operation,
                        unreviewed: unreviewed.contains(&actor_name),
                        actor: actor.clone(),
                        expect,
                        case_index,
                        deny_sqlstates: deny_sqlstates.clone(),
                        deny_on_error,
                        before,
                        op,
                        op_kind,
                        after,
                        then,
                        returns,
                        filter,
                        broken,
                        scenario: None,
                        now: None,
                        base_now: None,
                        probe_actors: Vec::new(),
                    });
                }
                Err(message) => {
                    plan.errors
                        .push((pos, format!("case `{}`: {message}", case.name)));
                    break;
                }
            }
        }
    }
}
