//! Planning a table, view or storage case against the catalog: one cell per actor and
//! operation on the target.

use super::render::{render_then, render_value, returning_rows};
use super::table_sql::{table_cell, CellSql, RowsTarget};
use super::{add_holes, planned, CaseAt, Catalog, Cell, CellKind, Plan, Returns, TargetInfo};
use crate::catalog::QualifiedName;
use crate::policy_tests::cases::{CaseError, CaseKind, Expect, RowAction, RowCase};

/// Plans a table, view or storage case: one cell per actor and operation on its relation.
pub(super) fn plan_table(plan: &mut Plan, at: &CaseAt<'_>, rows: &RowCase) {
    let CaseAt {
        file, case, record, ..
    } = *at;
    let pos = case.pos;
    let (relation, target) = match &case.kind {
        CaseKind::Bucket { bucket, object, .. } => (
            QualifiedName::new("storage", "objects"),
            RowsTarget {
                bucket: Some((bucket.as_str(), object.as_deref())),
                filter: rows.filter.as_deref(),
            },
        ),
        CaseKind::Table { relation, .. } => (
            relation.clone(),
            RowsTarget {
                bucket: None,
                filter: rows.filter.as_deref(),
            },
        ),
        CaseKind::Sql(_) | CaseKind::Steps(_) => unreachable!("rows of a table or bucket case"),
    };
    let info = match at.catalog {
        Catalog::NotRead => TargetInfo::default(),
        Catalog::Read(targets) => {
            let info = targets.get(&relation).cloned().unwrap_or_default();
            if !info.exists {
                plan.errors.push(CaseError::new(
                    pos,
                    format!(
                        "case `{}`: table or view {relation} does not exist after replay",
                        case.name
                    ),
                ));
                return;
            }
            info
        }
    };
    let qualified = relation.quoted();
    let key: Vec<String> = rows.key.clone().unwrap_or_else(|| info.key.clone());
    for row_op in &rows.ops {
        let operation = row_op.action.operation();
        let rules = &row_op.rules;
        let expectations = &rules.expectations;
        // Denials by any error are only worth something when the statement can succeed:
        // an allowed actor's cell shows it does (a case whose own values are wrong, a
        // NOT NULL or foreign key violation, fails there instead of passing as deny).
        // While recording, the allowed actors are not known yet: the check runs on the
        // recorded file.
        let complete = !record || expectations.missing.is_empty();
        if rules.deny_on_error
            && complete
            && !expectations.cells.values().any(|e| *e == Expect::Allow)
        {
            plan.errors.push(CaseError::new(
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
            add_holes(plan, case, operation, &expectations.missing);
        }
        for (actor_name, expect) in planned(expectations, record) {
            let actor = file
                .actors
                .get(&actor_name)
                .expect("resolved against the file's actors");
            match table_cell(
                file,
                &target,
                actor,
                &row_op.action,
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
                    let then_spec = rules
                        .then
                        .as_ref()
                        .filter(|_| expect == Some(Expect::Allow));
                    let then = match render_then(file, actor, then_spec) {
                        Ok(then) => then,
                        Err((l, message)) => {
                            plan.errors.push(CaseError::new(
                                l,
                                format!("case `{}`: then: {message}", case.name),
                            ));
                            break;
                        }
                    };
                    let want = match &row_op.action {
                        RowAction::Select {
                            returns: Some(want),
                        } if expect == Some(Expect::Allow) => Some(want),
                        _ => None,
                    };
                    let returns = match want.map(|want| render_value(file, actor, want)).transpose()
                    {
                        Ok(want) => want.map(|want| Returns {
                            want,
                            ordered: false,
                        }),
                        Err(message) => {
                            plan.errors.push(CaseError::new(
                                pos,
                                format!("case `{}`: returns: {message}", case.name),
                            ));
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
                        case_line: case.line(),
                        target: relation.to_string(),
                        operation,
                        unreviewed: rules.unreviewed.contains(&actor_name),
                        actor: actor.clone(),
                        expect,
                        case_index: case.index,
                        deny_sqlstates: rules.deny_sqlstates.clone(),
                        deny_on_error: rules.deny_on_error,
                        op,
                        op_kind,
                        then,
                        returns,
                        kind: CellKind::Rows {
                            relation: relation.clone(),
                            before,
                            after,
                            filter,
                            broken,
                        },
                        now: None,
                        base_now: None,
                    });
                }
                Err(message) => {
                    plan.errors.push(CaseError::new(
                        pos,
                        format!("case `{}`: {message}", case.name),
                    ));
                    break;
                }
            }
        }
    }
}
