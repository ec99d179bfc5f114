//! Judging a cell: what was observed (allow, deny, partial) and whether the test itself is
//! broken, with the non-vacuous semantics of docs/contract.md.

use super::exec::CellResult;
use super::plan::{Cell, OpKind};
use super::spec::{compare_returns, error_may_deny, then_holds, Expect, Operation, Rows};
use crate::actors::Actor;
use crate::report::CaseVerdict;

/// SQLSTATE of "insufficient privilege": RLS WITH CHECK violations and missing grants.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// allow | deny | partial | broken
    pub observed: &'static str,
    pub verdict: CaseVerdict,
    /// For a failure or a broken test: what happened, in words.
    pub message: Option<String>,
}

fn broken(message: String) -> Judgement {
    Judgement {
        observed: "broken",
        verdict: CaseVerdict::Broken,
        message: Some(format!("broken test: {message}")),
    }
}

/// Judges `result` of `cell` run as `actor`.
pub fn judge(cell: &Cell, actor: &Actor, result: &CellResult) -> Judgement {
    if let Some(message) = &cell.broken {
        return Judgement {
            observed: "broken",
            verdict: CaseVerdict::Broken,
            message: Some(message.clone()),
        };
    }
    if let Some(error) = &result.batch_error {
        return broken(format!("the batch running this cell failed: {error}"));
    }
    if let Some(error) = &result.setup_error {
        let state = result.setup_sqlstate.as_deref().unwrap_or("?");
        return broken(match result.phase.as_deref() {
            Some("impersonate") => format!(
                "impersonating {} as role {} failed ({state}): {error}",
                cell.actor, actor.db_role
            ),
            Some("then") => format!("a `then:` query failed as admin ({state}): {error}"),
            _ => format!("the case's own SQL failed as admin ({state}): {error}"),
        });
    }
    if let (Some(user), Some(superuser), Some(bypass)) =
        (&result.user, result.superuser, result.bypass)
    {
        if let Err(message) = actor.check_effective_role(user, superuser, bypass) {
            return broken(format!("{message}; the cell was not run"));
        }
    } else {
        return broken("the effective role could not be read; the cell was not run".to_owned());
    }
    let before = result.before_count.unwrap_or(0);
    // Target rows must exist as admin sees them, else the cell proves nothing.
    if matches!(
        cell.operation,
        Operation::Select | Operation::Update | Operation::Delete
    ) && before == 0
    {
        return broken(format!(
            "no row of {} matches `{}` as admin: the case checks nothing (create the rows in `setup:`)",
            cell.target, cell.filter
        ));
    }
    if cell.operation == Operation::Update && result.before_match == Some(before) {
        return broken(format!(
            "every target row of {} already has the values `set` gives: an allowed update could not be told from a denied one",
            cell.target
        ));
    }
    let denied_by_error = match &result.sqlstate {
        None => false,
        Some(state) if state == INSUFFICIENT_PRIVILEGE => true,
        Some(state) if cell.deny_sqlstates.contains(state) => true,
        Some(state) if cell.deny_on_error && error_may_deny(state) => true,
        Some(state) => {
            // Say how to declare it when declaring would be honoured: an error that says
            // the statement itself is wrong stays broken whatever the case declares.
            let advice = if !error_may_deny(state) {
                if cell.deny_on_error {
                    " (`deny_on: error` never covers an error saying the statement itself is wrong)"
                        .to_owned()
                } else {
                    String::new()
                }
            } else {
                format!(
                    "; if this is how the project refuses (a trigger or function raising it), declare it: `deny_sqlstate: [{state}]` or `deny_on: error`"
                )
            };
            return broken(format!(
                "{} as {} raised {state} ({}): an error not declared as a denial is never counted as deny{}{advice}",
                cell.operation.as_str(),
                cell.actor,
                result.error.as_deref().unwrap_or(""),
                result
                    .detail
                    .as_deref()
                    .map(|d| format!("; detail: {d}"))
                    .unwrap_or_default()
            ));
        }
    };
    let rows = result.rows.unwrap_or(0);
    let unheld = match unheld_then(cell, result) {
        Ok(unheld) => unheld,
        Err(message) => return broken(message),
    };
    let (observed, detail): (&'static str, String) = match cell.operation {
        Operation::Sql => {
            if denied_by_error {
                ("deny", format!("raised {}", error_text(result)))
            } else if cell.op_kind == OpKind::Count && rows == 0 {
                ("deny", "returned no row".to_owned())
            } else if let Some(why) = &unheld {
                // A call that raised nothing but did not do what `then:` says did nothing
                // for this actor: a denial, never an allow.
                ("deny", format!("succeeded, but {why}"))
            } else if cell.op_kind == OpKind::Count {
                ("allow", format!("returned {rows} row(s)"))
            } else {
                ("allow", "succeeded".to_owned())
            }
        }
        Operation::Select => {
            if denied_by_error {
                ("deny", format!("raised {}", error_text(result)))
            } else if rows == before {
                ("allow", format!("all {before} target row(s) visible"))
            } else if rows == 0 {
                (
                    "deny",
                    format!("none of the {before} target row(s) visible"),
                )
            } else {
                (
                    "partial",
                    format!("{rows} of {before} target row(s) visible"),
                )
            }
        }
        Operation::Insert => {
            let after = result.after_count.unwrap_or(0);
            if denied_by_error {
                ("deny", format!("raised {}", error_text(result)))
            } else if after > before {
                ("allow", "the row was inserted".to_owned())
            } else {
                (
                    "partial",
                    format!("the insert reported {rows} row(s) but no new row exists (a trigger returned NULL?)"),
                )
            }
        }
        Operation::Update => {
            let unchanged = result.after_fp == result.before_fp;
            let matching = result.after_match.unwrap_or(0);
            if denied_by_error {
                ("deny", format!("raised {}", error_text(result)))
            } else if unchanged {
                (
                    "deny",
                    format!("{rows} row(s) updated, target rows unchanged"),
                )
            } else if matching == before {
                ("allow", format!("all {before} target row(s) changed"))
            } else {
                (
                    "partial",
                    format!("{rows} row(s) updated; {matching} of {before} target row(s) were written by it"),
                )
            }
        }
        Operation::Delete => {
            let remaining = result.after_count.unwrap_or(0);
            if denied_by_error {
                ("deny", format!("raised {}", error_text(result)))
            } else if remaining == 0 {
                ("allow", format!("all {before} target row(s) removed"))
            } else if remaining == before && result.after_fp == result.before_fp {
                (
                    "deny",
                    format!("{rows} row(s) deleted, target rows unchanged"),
                )
            } else {
                (
                    "partial",
                    format!("{} of {before} target row(s) removed", before - remaining),
                )
            }
        }
    };
    // An allowed statement must also return what `returns:` says.
    if let (Some(returns), "allow", Expect::Allow) = (&cell.returns, observed, cell.expect) {
        let have = match result.returned.as_deref().map(serde_json::from_str::<Rows>) {
            Some(Ok(have)) => have,
            Some(Err(e)) => return broken(format!("the rows returned could not be read: {e}")),
            None => return broken("the rows returned were not recorded".to_owned()),
        };
        if let Err(difference) = compare_returns(&returns.want, returns.ordered, &have) {
            return Judgement {
                observed,
                verdict: CaseVerdict::Fail,
                message: Some(format!(
                    "{} as {}: expected {}, observed allow ({detail}), but it returned {}: {difference}",
                    cell.operation.as_str(),
                    cell.actor,
                    cell.expect.as_str(),
                    if returns.want.is_array() { "other rows" } else { "another value" }
                )),
            };
        }
    }
    // An allowed write must also make its `then:` hold.
    if let (true, "allow", Expect::Allow, Some(why)) = (
        cell.operation != Operation::Sql,
        observed,
        cell.expect,
        &unheld,
    ) {
        return Judgement {
            observed,
            verdict: CaseVerdict::Fail,
            message: Some(format!(
                "{} as {}: expected {}, observed allow ({detail}), but {why}",
                cell.operation.as_str(),
                cell.actor,
                cell.expect.as_str()
            )),
        };
    }
    let pass = observed == cell.expect.as_str();
    Judgement {
        observed,
        verdict: if pass {
            CaseVerdict::Pass
        } else {
            CaseVerdict::Fail
        },
        message: (!pass).then(|| {
            format!(
                "{} as {}: expected {}, observed {observed} ({detail})",
                cell.operation.as_str(),
                cell.actor,
                match cell.expect {
                    Expect::Allow => "allow",
                    Expect::Deny => "deny",
                },
            )
        }),
    }
}

/// The first `then:` query of `cell` that did not hold, in words (the query and what it
/// returned); `Err` when the results are missing (a harness fault: broken, never a pass).
fn unheld_then(cell: &Cell, result: &CellResult) -> Result<Option<String>, String> {
    if cell.then.is_empty() {
        return Ok(None);
    }
    let Some(returned) = &result.then else {
        return Err("the `then:` queries were not run".to_owned());
    };
    for (query, rows) in cell.then.iter().zip(returned) {
        if let Err(what) = then_holds(rows) {
            return Ok(Some(format!("`then: {query}` did not hold: it {what}")));
        }
    }
    Ok(None)
}

fn error_text(result: &CellResult) -> String {
    format!(
        "{} {}",
        result.sqlstate.as_deref().unwrap_or(""),
        result.error.as_deref().unwrap_or("")
    )
    .trim()
    .to_owned()
}
