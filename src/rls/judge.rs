//! Judging a cell: what was observed (allow, deny, partial) and whether the test itself is
//! broken, with the non-vacuous semantics of docs/contract.md.

use super::exec::CellResult;
use super::plan::{Cell, OpKind};
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
        Cell {
            file: "policy-tests/notes.yaml".into(),
            case: "notes are private".into(),
            case_line: 7,
            target: if operation == Operation::Sql {
                "sql".into()
            } else {
                "public.notes".into()
            },
            operation,
            actor: bob(),
            expect: Some(expect),
            case_index: 0,
            unreviewed: false,
            deny_sqlstates: Vec::new(),
            deny_on_error: false,
            before: None,
            op: String::new(),
            op_kind: if operation == Operation::Select {
                OpKind::Count
            } else {
                OpKind::Rows
            },
            after: None,
            then: Vec::new(),
            returns: None,
            filter: "owner_id = alice".into(),
            broken: None,
            scenario: None,
            now: None,
        }
    }

    fn bob() -> Actor {
        let spec: crate::actors::ActorSpec = crate::yaml::parse_yaml(
            "{ user: bob@example.com }",
            std::path::Path::new("notes.yaml"),
        )
        .unwrap();
        let bob = Actor::resolve("bob", &spec).unwrap();
        assert_eq!(bob.db_role, "authenticated");
        bob
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
}
