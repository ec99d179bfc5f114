//! The judge's unit tests: every operation's allow, deny and broken outcomes, and each
//! non-vacuity rule caught with its clean twin.

use super::super::exec::ProbeResult;
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
    step.kind = crate::rls::plan::CellKind::Step {
        scenario: 5,
        probe_actors: Vec::new(),
    };
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
