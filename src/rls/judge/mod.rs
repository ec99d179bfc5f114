//! Judging a cell: what was observed (allow, deny, partial) and whether the test itself is
//! broken, with the non-vacuous semantics of docs/contract.md.
//!
//! This module owns the verdict; the rules that keep a pass from being vacuous (a `then:`
//! that held already, a `returns: []` with nothing to hide, a denied step nobody can run, an
//! error the case's own values trip) are in `rules`.

mod rules;
#[cfg(test)]
mod tests;

use self::rules::{
    denied_step_never_succeeds, hides_nothing, then_held_before, unheld_then, values_tripped,
};
use super::exec::CellResult;
use super::plan::{Cell, OpKind};
use crate::policy_tests::cases::{compare_returns, error_may_deny, Expect, Operation, Rows};
use crate::report::{CaseVerdict, Observed};

/// SQLSTATE of "insufficient privilege": RLS WITH CHECK violations and missing grants.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

impl Observed {
    /// The expectation this observation would satisfy, when it is one.
    pub fn expectation(self) -> Option<Expect> {
        match self {
            Observed::Allow => Some(Expect::Allow),
            Observed::Deny => Some(Expect::Deny),
            Observed::Partial | Observed::Broken => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub observed: Observed,
    pub verdict: CaseVerdict,
    /// For a failure or a broken test: what happened, in words.
    pub message: Option<String>,
}

fn broken(message: String) -> Judgement {
    Judgement {
        observed: Observed::Broken,
        verdict: CaseVerdict::Broken,
        message: Some(format!("broken test: {message}")),
    }
}

/// Judges `result` of `cell` run as its actor.
pub fn judge(cell: &Cell, result: &CellResult) -> Judgement {
    let actor = &cell.actor;
    if let Some(message) = cell.broken() {
        return Judgement {
            observed: Observed::Broken,
            verdict: CaseVerdict::Broken,
            message: Some(message.to_owned()),
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
                actor.name, actor.db_role
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
    if let Some(message) = then_held_before(cell, result) {
        return broken(message);
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
            cell.target,
            cell.filter()
        ));
    }
    if cell.operation == Operation::Update && result.before_match == Some(before) {
        return broken(format!(
            "every target row of {} already has the values `set` gives: an allowed update could not be told from a denied one",
            cell.target
        ));
    }
    if let Some(leak) = super::no_user_id::leak_past_rls(cell, result) {
        return leak;
    }
    let denied_by_error = match &result.sqlstate {
        None => false,
        Some(state) if state == INSUFFICIENT_PRIVILEGE => true,
        Some(state)
            if cell.deny_sqlstates.contains(state)
                || (cell.deny_on_error && error_may_deny(state)) =>
        {
            if let Some(why) = values_tripped(state, result) {
                return broken(format!(
                    "{} as {} raised {state} ({}){why}: a declared denial (`deny_sqlstate:`, `deny_on: error`) counts only when the project refuses this actor (its policy, or a function or trigger raising it), never a constraint the case's values trip{}",
                    cell.operation.as_str(),
                    cell.actor.name,
                    result.error.as_deref().unwrap_or(""),
                    if cell.actor.id.is_none() {
                        format!("; `{{{{me.id}}}}` of {} is an id no user has: write a real user's id (`{{{{alice.id}}}}`) so the statement reaches the project's checks", cell.actor.name)
                    } else {
                        String::new()
                    }
                ));
            }
            true
        }
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
                cell.actor.name,
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
        Err(not_run) => return broken(not_run.to_string()),
    };
    let (observed, detail): (Observed, String) = match cell.operation {
        Operation::Sql => {
            if denied_by_error {
                (Observed::Deny, format!("raised {}", error_text(result)))
            } else if cell.op_kind == OpKind::Count && rows == 0 {
                (Observed::Deny, "returned no row".to_owned())
            } else if let Some(why) = &unheld {
                // A call that raised nothing but did not do what `then:` says did nothing
                // for this actor: a denial, never an allow.
                (Observed::Deny, format!("succeeded, but {why}"))
            } else if cell.op_kind == OpKind::Count {
                (Observed::Allow, format!("returned {rows} row(s)"))
            } else {
                (Observed::Allow, "succeeded".to_owned())
            }
        }
        Operation::Select => {
            if denied_by_error {
                (Observed::Deny, format!("raised {}", error_text(result)))
            } else if rows == before {
                (
                    Observed::Allow,
                    format!("all {before} target row(s) visible"),
                )
            } else if rows == 0 {
                (
                    Observed::Deny,
                    format!("none of the {before} target row(s) visible"),
                )
            } else {
                (
                    Observed::Partial,
                    format!("{rows} of {before} target row(s) visible"),
                )
            }
        }
        Operation::Insert => {
            let after = result.after_count.unwrap_or(0);
            if denied_by_error {
                (Observed::Deny, format!("raised {}", error_text(result)))
            } else if after > before {
                (Observed::Allow, "the row was inserted".to_owned())
            } else {
                (
                    Observed::Partial,
                    format!("the insert reported {rows} row(s) but no new row exists (a trigger returned NULL?)"),
                )
            }
        }
        Operation::Update => {
            let unchanged = result.after_fp == result.before_fp;
            let matching = result.after_match.unwrap_or(0);
            if denied_by_error {
                (Observed::Deny, format!("raised {}", error_text(result)))
            } else if unchanged {
                (
                    Observed::Deny,
                    format!("{rows} row(s) updated, target rows unchanged"),
                )
            } else if matching == before {
                (
                    Observed::Allow,
                    format!("all {before} target row(s) changed"),
                )
            } else {
                (
                    Observed::Partial,
                    format!("{rows} row(s) updated; {matching} of {before} target row(s) were written by it"),
                )
            }
        }
        Operation::Delete => {
            let remaining = result.after_count.unwrap_or(0);
            if denied_by_error {
                (Observed::Deny, format!("raised {}", error_text(result)))
            } else if remaining == 0 {
                (
                    Observed::Allow,
                    format!("all {before} target row(s) removed"),
                )
            } else if remaining == before && result.after_fp == result.before_fp {
                (
                    Observed::Deny,
                    format!("{rows} row(s) deleted, target rows unchanged"),
                )
            } else {
                (
                    Observed::Partial,
                    format!("{} of {before} target row(s) removed", before - remaining),
                )
            }
        }
    };
    // An allowed statement must also return what `returns:` says.
    if let (Some(returns), Observed::Allow, Some(Expect::Allow)) =
        (&cell.returns, observed, cell.expect)
    {
        let have = match result.returned.as_deref().map(serde_json::from_str::<Rows>) {
            Some(Ok(have)) => have,
            Some(Err(e)) => return broken(format!("the rows returned could not be read: {e}")),
            None => return broken("the rows returned were not recorded".to_owned()),
        };
        if let (Ok(()), Some(message)) = (
            compare_returns(&returns.want, returns.ordered, &have),
            hides_nothing(cell, result),
        ) {
            return broken(message);
        }
        if let Err(difference) = compare_returns(&returns.want, returns.ordered, &have) {
            return Judgement {
                observed,
                verdict: CaseVerdict::Fail,
                message: Some(format!(
                    "{} as {}: expected allow, observed allow ({detail}), but it returned {}: {difference}",
                    cell.operation.as_str(),
                    cell.actor.name,
                    if returns.want.is_array() { "other rows" } else { "another value" }
                )),
            };
        }
    }
    // An allowed write must also make its `then:` hold.
    if let (true, Observed::Allow, Some(Expect::Allow), Some(why)) = (
        cell.operation != Operation::Sql,
        observed,
        cell.expect,
        &unheld,
    ) {
        return Judgement {
            observed,
            verdict: CaseVerdict::Fail,
            message: Some(format!(
                "{} as {}: expected allow, observed allow ({detail}), but {why}",
                cell.operation.as_str(),
                cell.actor.name,
            )),
        };
    }
    let pass = cell.expect.is_some() && observed.expectation() == cell.expect;
    if pass && cell.scenario().is_some() && observed == Observed::Deny {
        if let Some(message) = denied_step_never_succeeds(cell, result) {
            return broken(message);
        }
    }
    Judgement {
        observed,
        verdict: if pass {
            CaseVerdict::Pass
        } else {
            CaseVerdict::Fail
        },
        message: (!pass).then(|| {
            format!(
                "{} as {}: expected {}, observed {} ({detail})",
                cell.operation.as_str(),
                cell.actor.name,
                cell.expect
                    .map_or("nothing (no expectation yet)", Expect::as_str),
                observed.as_str(),
            )
        }),
    }
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
