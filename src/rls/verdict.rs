//! The rls stage's verdict in words and rules: unreviewed recordings failing in CI, and the
//! one-line summary of the cells, which never reads as success when cells did not hold.

use std::collections::BTreeMap;

use crate::policy_tests::cases::Operation;
use crate::report::{CaseVerdict, Failure, StageReport};

/// The stage's summary of `cells` cells, `passed` of them as expected: a run where cells did
/// not hold leads with those, and one where none held says so, never "0 of N as expected".
pub(super) fn cells_summary(passed: usize, cells: usize) -> String {
    match (passed, cells) {
        (_, 0) => "no cell ran".to_owned(),
        (0, n) => format!("NO cell of {n} as expected"),
        (p, n) if p == n => format!("{n} of {n} cells as expected"),
        (p, n) => format!("{} of {n} cells NOT as expected ({p} as expected)", n - p),
    }
}

/// Under `CI=true`: every passing cell whose expectation nobody reviewed fails, with one
/// failure per case and operation naming its actors.
pub(super) fn fail_unreviewed(report: &mut StageReport) {
    let mut groups: BTreeMap<(String, usize, String, Operation), Vec<String>> = BTreeMap::new();
    for case in &mut report.cases {
        let Some(cell) = case.cell.as_ref().filter(|c| c.unreviewed) else {
            continue;
        };
        if case.verdict != CaseVerdict::Pass {
            continue;
        }
        case.verdict = CaseVerdict::Fail;
        case.message = Some(format!(
            "{} as {}: observed {} as recorded, but nobody reviewed that expectation (CI=true)",
            cell.operation.as_str(),
            cell.actor,
            cell.observed.as_str()
        ));
        groups
            .entry((
                case.file.clone().unwrap_or_default(),
                case.line.unwrap_or(1),
                cell.case.clone(),
                cell.operation,
            ))
            .or_default()
            .push(format!("{} {}", cell.actor, cell.observed.as_str()));
    }
    for ((file, line, case, operation), actors) in groups {
        report.failures.push(Failure {
            file,
            line,
            column: None,
            message: format!(
                "case `{case}`: {} {} cell(s) hold a recorded expectation nobody reviewed ({}): under CI=true an unreviewed cell fails",
                actors.len(),
                operation.as_str(),
                actors.join(", ")
            ),
            notes: vec![
                "check each against the policy, then delete its actor from `unreviewed:`; or set `rls.unreviewed: allow` in db-ci.yaml to accept whatever the database did as the baseline".to_owned(),
            ],
            statement: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy_tests::cases;
    use crate::report::{Case, StageVerdict};
    use crate::report::{Observed, RlsCell};
    use crate::rls::STAGE;

    fn cell_case(actor: &str, unreviewed: bool, verdict: CaseVerdict) -> Case {
        Case {
            name: format!("notes / select as {actor}"),
            group: "policy-tests/notes.yaml".into(),
            verdict,
            file: Some("policy-tests/notes.yaml".into()),
            line: Some(7),
            duration_ms: 0,
            message: None,
            cell: Some(RlsCell {
                case: "notes".into(),
                target: "public.notes".into(),
                actor: actor.into(),
                operation: Operation::Select,
                expected: Some(cases::Expect::Allow),
                observed: Observed::Allow,
                unreviewed,
            }),
        }
    }

    #[test]
    fn an_unreviewed_cell_that_passed_fails_and_is_named_once_per_operation() {
        let mut report = StageReport::new(STAGE, StageVerdict::Pass);
        report.cases = vec![
            cell_case("alice", false, CaseVerdict::Pass),
            cell_case("bob", true, CaseVerdict::Pass),
            cell_case("anon", true, CaseVerdict::Pass),
            // Already failing for its own reason: left as it is.
            cell_case("carol", true, CaseVerdict::Broken),
        ];
        fail_unreviewed(&mut report);
        let verdicts: Vec<CaseVerdict> = report.cases.iter().map(|c| c.verdict).collect();
        assert_eq!(
            verdicts,
            [
                CaseVerdict::Pass,
                CaseVerdict::Fail,
                CaseVerdict::Fail,
                CaseVerdict::Broken
            ]
        );
        assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
        let failure = &report.failures[0];
        assert_eq!(
            (failure.file.as_str(), failure.line),
            ("policy-tests/notes.yaml", 7)
        );
        assert!(
            failure.message.contains("2 select cell(s) hold a recorded expectation nobody reviewed (bob allow, anon allow)"),
            "{}",
            failure.message
        );
        assert!(failure.notes[0].contains("rls.unreviewed: allow"));
    }

    #[test]
    fn a_summary_never_reads_as_success_when_cells_did_not_hold() {
        assert_eq!(cells_summary(0, 12), "NO cell of 12 as expected");
        assert_eq!(
            cells_summary(9, 12),
            "3 of 12 cells NOT as expected (9 as expected)"
        );
        assert_eq!(cells_summary(12, 12), "12 of 12 cells as expected");
        assert_eq!(cells_summary(0, 0), "no cell ran");
    }
}
