//! Judging a cell: what was observed (allow, deny, partial) and whether the test itself is
//! broken, with the non-vacuous semantics of docs/contract.md.

use super::exec::{CellResult, ProbeResult};
use super::plan::{returns_nothing, Cell, OpKind};
use super::spec::{compare_returns, error_may_deny, then_holds, Expect, Operation, Rows};
use crate::report::CaseVerdict;

/// SQLSTATE of "insufficient privilege": RLS WITH CHECK violations and missing grants.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

pub use crate::report::Observed;

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
    if let Some(message) = &cell.broken {
        return Judgement {
            observed: Observed::Broken,
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
            cell.target, cell.filter
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
        Err(message) => return broken(message),
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
    if pass && cell.scenario.is_some() && observed == Observed::Deny {
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

/// `then:` that held before the statement as it holds after cannot tell a call that did
/// something from one that did nothing: every query of it already held (as admin, before).
fn then_held_before(cell: &Cell, result: &CellResult) -> Option<String> {
    if cell.then.is_empty() {
        return None;
    }
    let before = result.then_before.as_ref()?;
    let held = cell.then.len() == before.len()
        && before
            .iter()
            .all(|rows| rows.as_deref().is_some_and(|rows| then_holds(rows).is_ok()));
    held.then(|| {
        format!(
            "`then: {}` already held before the statement ran: it cannot tell a call that did something from one that did nothing; make `setup:` leave it false",
            cell.then.join("; ")
        )
    })
}

/// Why the error `state` of `result` is a constraint the case's values trip rather than the
/// project refusing: an integrity constraint, a value the server cannot read, or a
/// cardinality error, raised by the server itself (no RAISE or ASSERT of the project's
/// functions or triggers on the way).
fn values_tripped(state: &str, result: &CellResult) -> Option<String> {
    if !matches!(state.get(..2), Some("21" | "22" | "23")) {
        return None;
    }
    let raised_by_project = result.context.as_deref().is_some_and(|context| {
        context
            .lines()
            .filter(|line| !line.contains("dbci_"))
            .any(|line| {
                line.trim_end().ends_with("at RAISE") || line.trim_end().ends_with("at ASSERT")
            })
    });
    if raised_by_project {
        return None;
    }
    Some(match &result.constraint {
        Some(name) => format!(" on constraint {name}"),
        None => String::new(),
    })
}

/// Whether `probe` shows the cell's statement succeeding, returning a row where that is how
/// it is read.
fn succeeded(cell: &Cell, probe: &ProbeResult) -> bool {
    let needs_rows = cell.op_kind == OpKind::Count || cell.returns.is_some();
    probe.error.is_none()
        && probe.then_held != Some(false)
        && (!needs_rows || probe.rows.unwrap_or(0) > 0)
}

/// The probes of `result`, or why there are none although the cell asked for them.
fn probes(result: &CellResult) -> Result<&[ProbeResult], String> {
    result
        .probes
        .as_deref()
        .ok_or_else(|| "the statement was not run again as admin and the other actors".to_owned())
}

/// A `returns: []` passes only when there were rows to hide: the statement returns some
/// for admin (RLS bypassed) or for another actor.
fn hides_nothing(cell: &Cell, result: &CellResult) -> Option<String> {
    if !returns_nothing(cell.returns.as_ref()) {
        return None;
    }
    let probes = match probes(result) {
        Ok(probes) => probes,
        Err(why) => return Some(why),
    };
    if probes
        .iter()
        .any(|p| p.error.is_none() && p.rows.unwrap_or(0) > 0)
    {
        return None;
    }
    Some(format!(
        "`returns: []` for {}, but the statement returns no row for admin or any actor either: there is nothing for it to hide, so a leak would pass (create the rows it must not return in `setup:`)",
        cell.actor.name
    ))
}

/// A denied step passes only when its statement can succeed for someone (admin, or an actor
/// of the file, from the scenario's start or after any of its steps, at the step's clock or
/// its case's): else a misspelt id would pass as a denial.
fn denied_step_never_succeeds(cell: &Cell, result: &CellResult) -> Option<String> {
    let probes = match probes(result) {
        Ok(probes) => probes,
        Err(why) => return Some(why),
    };
    if probes.iter().any(|p| succeeded(cell, p)) {
        return None;
    }
    let why = probes
        .first()
        .and_then(|admin| admin.error.as_ref())
        .map(|e| format!(" (as admin it fails: {e})"))
        .unwrap_or_default();
    Some(format!(
        "the statement of this denied step succeeds for nobody — not admin, not any actor, at no point of the scenario{why}: the step checks nothing (a misspelt id or argument?); show it can succeed, e.g. a later step where it is allowed"
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::Actor;

    fn cell(operation: Operation, expect: Expect) -> Cell {
        super::super::test_support::cell(operation, Some(expect), bob())
    }

    fn bob() -> Actor {
        super::super::test_support::actor("bob", "{ user: bob@example.com }")
    }

    /// A result as the batch reports it: run as `authenticated`, `before` target rows.
    fn ran(before: i64) -> CellResult {
        CellResult {
            user: Some("authenticated".into()),
            superuser: Some(false),
            bypass: Some(false),
            before_count: Some(before),
            before_fp: Some("fp1".into()),
            after_fp: Some("fp1".into()),
            ..CellResult::default()
        }
    }

    fn judged(operation: Operation, expect: Expect, result: CellResult) -> Judgement {
        judge(&cell(operation, expect), &result)
    }

    #[test]
    fn select_sees_all_none_or_part_of_the_target_rows() {
        let seen = |rows| CellResult {
            rows: Some(rows),
            ..ran(3)
        };
        let all = judged(Operation::Select, Expect::Allow, seen(3));
        assert_eq!(
            (all.observed, all.verdict),
            (Observed::Allow, CaseVerdict::Pass)
        );
        let none = judged(Operation::Select, Expect::Deny, seen(0));
        assert_eq!(
            (none.observed, none.verdict),
            (Observed::Deny, CaseVerdict::Pass)
        );
        // Partial visibility fails whatever was expected.
        for expect in [Expect::Allow, Expect::Deny] {
            let part = judged(Operation::Select, expect, seen(1));
            assert_eq!(
                (part.observed, part.verdict),
                (Observed::Partial, CaseVerdict::Fail)
            );
            assert!(part
                .message
                .unwrap()
                .contains("1 of 3 target row(s) visible"));
        }
        let leak = judged(Operation::Select, Expect::Deny, seen(3));
        assert_eq!(leak.verdict, CaseVerdict::Fail);
        assert_eq!(
            leak.message.as_deref(),
            Some("select as bob: expected deny, observed allow (all 3 target row(s) visible)")
        );
    }

    #[test]
    fn a_cell_without_an_expectation_never_passes_and_says_what_it_saw() {
        let mut recording = cell(Operation::Select, Expect::Allow);
        recording.expect = None;
        for (rows, observed) in [
            (3, Observed::Allow),
            (0, Observed::Deny),
            (1, Observed::Partial),
        ] {
            let result = CellResult {
                rows: Some(rows),
                ..ran(3)
            };
            let judgement = judge(&recording, &result);
            assert_eq!(
                (judgement.observed, judgement.verdict),
                (observed, CaseVerdict::Fail)
            );
            assert!(
                judgement
                    .message
                    .unwrap()
                    .contains("expected nothing (no expectation yet)"),
                "{observed:?}"
            );
        }
        // Only allow and deny can become expectations.
        assert_eq!(Observed::Partial.expectation(), None);
        assert_eq!(Observed::Broken.expectation(), None);
        assert_eq!(Observed::Deny.expectation(), Some(Expect::Deny));
    }

    #[test]
    fn no_target_row_as_admin_is_a_broken_test_never_a_pass() {
        for operation in [Operation::Select, Operation::Update, Operation::Delete] {
            let result = CellResult {
                rows: Some(0),
                ..ran(0)
            };
            let judgement = judged(operation, Expect::Deny, result);
            assert_eq!(judgement.verdict, CaseVerdict::Broken, "{operation:?}");
            assert!(judgement.message.unwrap().contains("checks nothing"));
        }
    }

    #[test]
    fn only_insufficient_privilege_is_a_denial_other_errors_are_broken() {
        let failed = |state: &str| CellResult {
            sqlstate: Some(state.into()),
            error: Some("boom".into()),
            ..ran(0)
        };
        let denied = judged(Operation::Insert, Expect::Deny, failed("42501"));
        assert_eq!(
            (denied.observed, denied.verdict),
            (Observed::Deny, CaseVerdict::Pass)
        );
        for state in ["23505", "23503", "P0001", "42P01"] {
            let judgement = judged(Operation::Insert, Expect::Deny, failed(state));
            assert_eq!(judgement.verdict, CaseVerdict::Broken, "{state}");
            assert!(judgement.message.unwrap().contains("never counted as deny"));
        }
    }

    #[test]
    fn an_insert_is_allowed_only_when_its_row_exists_afterwards() {
        let inserted = CellResult {
            rows: Some(1),
            after_count: Some(1),
            ..ran(0)
        };
        let allow = judged(Operation::Insert, Expect::Allow, inserted);
        assert_eq!(
            (allow.observed, allow.verdict),
            (Observed::Allow, CaseVerdict::Pass)
        );
        let swallowed = CellResult {
            rows: Some(1),
            after_count: Some(0),
            ..ran(0)
        };
        let partial = judged(Operation::Insert, Expect::Allow, swallowed);
        assert_eq!(
            (partial.observed, partial.verdict),
            (Observed::Partial, CaseVerdict::Fail)
        );
    }

    #[test]
    fn an_update_is_judged_by_what_it_changed() {
        let unchanged = CellResult {
            rows: Some(0),
            after_match: Some(0),
            ..ran(2)
        };
        let deny = judged(Operation::Update, Expect::Deny, unchanged);
        assert_eq!(
            (deny.observed, deny.verdict),
            (Observed::Deny, CaseVerdict::Pass)
        );
        let changed = |matching| CellResult {
            rows: Some(matching),
            after_match: Some(matching),
            after_fp: Some("fp2".into()),
            ..ran(2)
        };
        let allow = judged(Operation::Update, Expect::Allow, changed(2));
        assert_eq!(
            (allow.observed, allow.verdict),
            (Observed::Allow, CaseVerdict::Pass)
        );
        let part = judged(Operation::Update, Expect::Allow, changed(1));
        assert_eq!(
            (part.observed, part.verdict),
            (Observed::Partial, CaseVerdict::Fail)
        );
        // Rows that already hold the `set` values cannot tell allow from deny.
        let already = CellResult {
            before_match: Some(2),
            ..changed(2)
        };
        let broken = judged(Operation::Update, Expect::Allow, already);
        assert_eq!(broken.verdict, CaseVerdict::Broken);
    }

    #[test]
    fn a_delete_is_judged_by_what_remains() {
        let removed = CellResult {
            rows: Some(2),
            after_count: Some(0),
            ..ran(2)
        };
        let allow = judged(Operation::Delete, Expect::Allow, removed);
        assert_eq!(
            (allow.observed, allow.verdict),
            (Observed::Allow, CaseVerdict::Pass)
        );
        let kept = CellResult {
            rows: Some(0),
            after_count: Some(2),
            ..ran(2)
        };
        let deny = judged(Operation::Delete, Expect::Deny, kept);
        assert_eq!(
            (deny.observed, deny.verdict),
            (Observed::Deny, CaseVerdict::Pass)
        );
        let half = CellResult {
            rows: Some(1),
            after_count: Some(1),
            after_fp: Some("fp2".into()),
            ..ran(2)
        };
        let part = judged(Operation::Delete, Expect::Deny, half);
        assert_eq!(
            (part.observed, part.verdict),
            (Observed::Partial, CaseVerdict::Fail)
        );
    }

    #[test]
    fn sql_cases_deny_by_their_declared_state_or_by_returning_nothing() {
        let mut rpc = cell(Operation::Sql, Expect::Deny);
        rpc.deny_sqlstates = vec!["P0001".into()];
        let raised = CellResult {
            sqlstate: Some("P0001".into()),
            error: Some("not a member".into()),
            ..ran(0)
        };
        let deny = judge(&rpc, &raised);
        assert_eq!(
            (deny.observed, deny.verdict),
            (Observed::Deny, CaseVerdict::Pass)
        );
        let other = CellResult {
            sqlstate: Some("22023".into()),
            ..raised
        };
        assert_eq!(judge(&rpc, &other).verdict, CaseVerdict::Broken);

        let mut count = cell(Operation::Sql, Expect::Allow);
        count.op_kind = OpKind::Count;
        let nothing = CellResult {
            rows: Some(0),
            ..ran(0)
        };
        let judged = judge(&count, &nothing);
        assert_eq!(
            (judged.observed, judged.verdict),
            (Observed::Deny, CaseVerdict::Fail)
        );
    }

    #[test]
    fn a_cell_that_did_not_run_as_its_actor_is_broken() {
        let superuser = CellResult {
            superuser: Some(true),
            rows: Some(3),
            ..ran(3)
        };
        let judgement = judged(Operation::Select, Expect::Allow, superuser);
        assert_eq!(judgement.verdict, CaseVerdict::Broken);
        assert!(judgement.message.unwrap().contains("superuser"));
        let wrong_role = CellResult {
            user: Some("postgres".into()),
            ..ran(3)
        };
        assert_eq!(
            judged(Operation::Select, Expect::Allow, wrong_role).verdict,
            CaseVerdict::Broken
        );
        let unread = CellResult {
            user: None,
            ..ran(3)
        };
        assert_eq!(
            judged(Operation::Select, Expect::Allow, unread).verdict,
            CaseVerdict::Broken
        );
        let timed_out = CellResult {
            batch_error: Some("canceling statement due to statement timeout".into()),
            ..ran(3)
        };
        assert_eq!(
            judged(Operation::Select, Expect::Allow, timed_out).verdict,
            CaseVerdict::Broken
        );
    }

    fn probe(who: &str, rows: Option<i64>, error: Option<&str>) -> ProbeResult {
        ProbeResult {
            who: who.into(),
            rows,
            error: error.map(str::to_owned),
            then_held: Some(true),
        }
    }

    #[test]
    fn returns_nothing_passes_only_when_there_were_rows_to_hide() {
        let mut read = cell(Operation::Sql, Expect::Allow);
        read.returns = Some(super::super::plan::Returns {
            want: serde_json::json!([]),
            ordered: false,
        });
        let empty = |probes: Vec<ProbeResult>| CellResult {
            rows: Some(0),
            returned: Some("[]".into()),
            probes: Some(probes),
            ..ran(0)
        };
        // The table is empty: admin and every actor read nothing too.
        let vacuous = judge(
            &read,
            &empty(vec![
                probe("admin", Some(0), None),
                probe("alice", Some(0), None),
            ]),
        );
        assert_eq!(vacuous.verdict, CaseVerdict::Broken);
        assert!(vacuous.message.unwrap().contains("nothing for it to hide"));
        // Admin sees the rows bob does not: bob's empty result means something.
        let hidden = judge(
            &read,
            &empty(vec![
                probe("admin", Some(2), None),
                probe("alice", Some(0), None),
            ]),
        );
        assert_eq!(
            (hidden.observed, hidden.verdict),
            (Observed::Allow, CaseVerdict::Pass)
        );
        // Another actor's rows count as well; an error does not.
        let theirs = judge(
            &read,
            &empty(vec![
                probe("admin", None, Some("boom")),
                probe("alice", Some(1), None),
            ]),
        );
        assert_eq!(theirs.verdict, CaseVerdict::Pass);
        // Probes that were not run are never a pass.
        let unrun = CellResult {
            probes: None,
            ..empty(Vec::new())
        };
        assert_eq!(judge(&read, &unrun).verdict, CaseVerdict::Broken);
    }

    #[test]
    fn a_then_that_held_before_the_statement_is_a_broken_test() {
        let mut call = cell(Operation::Sql, Expect::Allow);
        call.then = vec!["select archived from projects".into()];
        let after = |before: Option<&str>| CellResult {
            rows: Some(1),
            then: Some(vec![r#"[{"archived":true}]"#.into()]),
            then_before: Some(vec![before.map(str::to_owned)]),
            ..ran(0)
        };
        let held = judge(&call, &after(Some(r#"[{"archived":true}]"#)));
        assert_eq!(held.verdict, CaseVerdict::Broken);
        assert!(held.message.unwrap().contains("already held before"));
        let changed = judge(&call, &after(Some(r#"[{"archived":false}]"#)));
        assert_eq!(
            (changed.observed, changed.verdict),
            (Observed::Allow, CaseVerdict::Pass)
        );
        // A query that failed before the statement did not hold then.
        assert_eq!(judge(&call, &after(None)).verdict, CaseVerdict::Pass);
        // The same rule for a deny cell: the statement is not what made it hold.
        let mut denied = call.clone();
        denied.expect = Some(Expect::Deny);
        assert_eq!(
            judge(&denied, &after(Some(r#"[{"archived":true}]"#))).verdict,
            CaseVerdict::Broken
        );
    }

    #[test]
    fn a_denied_step_must_succeed_for_someone() {
        let mut step = cell(Operation::Sql, Expect::Deny);
        step.scenario = Some(5);
        step.deny_sqlstates = vec!["P0001".into()];
        let refused = |at: Vec<ProbeResult>, later: Vec<ProbeResult>| CellResult {
            sqlstate: Some("P0001".into()),
            error: Some("invitation tok-2 is not valid".into()),
            probes: Some(at.into_iter().chain(later).collect()),
            ..ran(0)
        };
        let nobody = judge(
            &step,
            &refused(
                vec![probe("admin", None, Some("invitation tok-2 is not valid"))],
                vec![probe("bob", None, Some("invitation tok-2 is not valid"))],
            ),
        );
        assert_eq!(nobody.verdict, CaseVerdict::Broken);
        let message = nobody.message.unwrap();
        assert!(message.contains("succeeds for nobody"), "{message}");
        assert!(message.contains("as admin it fails"), "{message}");
        // At some point of the scenario bob's call succeeds: the denial means something.
        let someone = judge(
            &step,
            &refused(
                vec![probe("admin", None, Some("used"))],
                vec![
                    probe("admin", None, Some("used")),
                    probe("bob", Some(1), None),
                ],
            ),
        );
        assert_eq!(
            (someone.observed, someone.verdict),
            (Observed::Deny, CaseVerdict::Pass)
        );
        // A success whose `then:` does not hold is no success.
        let mut unheld = probe("bob", Some(1), None);
        unheld.then_held = Some(false);
        assert_eq!(
            judge(&step, &refused(vec![unheld], Vec::new())).verdict,
            CaseVerdict::Broken
        );
    }

    #[test]
    fn a_declared_denial_is_never_a_constraint_the_values_trip() {
        let mut insert = cell(Operation::Insert, Expect::Deny);
        insert.deny_on_error = true;
        insert.deny_sqlstates = vec!["23514".into()];
        let failed = |state: &str, context: Option<&str>, constraint: Option<&str>| CellResult {
            sqlstate: Some(state.into()),
            error: Some("violates".into()),
            context: context.map(str::to_owned),
            constraint: constraint.map(str::to_owned),
            ..ran(0)
        };
        // The foreign key of a value no user has: RLS let the row through.
        let fk = judge(&insert, &failed("23503", None, Some("notes_owner_id_fkey")));
        assert_eq!(fk.verdict, CaseVerdict::Broken);
        let message = fk.message.unwrap();
        assert!(
            message.contains("on constraint notes_owner_id_fkey"),
            "{message}"
        );
        assert!(message.contains("never a constraint"), "{message}");
        // A value the server cannot read, named or not, with only db-ci's own frames.
        let ours = "SQL statement \"insert …\"\nPL/pgSQL function pg_temp_3.dbci_cells(jsonb) line 40 at EXECUTE";
        assert_eq!(
            judge(&insert, &failed("22P02", Some(ours), None)).verdict,
            CaseVerdict::Broken
        );
        assert_eq!(
            judge(&insert, &failed("23514", Some(ours), Some("body_check"))).verdict,
            CaseVerdict::Broken
        );
        // The project's trigger raising a check_violation is the project refusing.
        let trigger = "PL/pgSQL function public.refuse_spam() line 4 at RAISE\nSQL statement \"insert …\"\nPL/pgSQL function pg_temp_3.dbci_cells(jsonb) line 40 at EXECUTE";
        let refused = judge(&insert, &failed("23514", Some(trigger), None));
        assert_eq!(
            (refused.observed, refused.verdict),
            (Observed::Deny, CaseVerdict::Pass)
        );
        // Other declared states are the project's by nature.
        let mut rpc = cell(Operation::Sql, Expect::Deny);
        rpc.deny_on_error = true;
        assert_eq!(
            judge(&rpc, &failed("P0001", None, None)).verdict,
            CaseVerdict::Pass
        );
    }
}
