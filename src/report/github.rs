//! The GitHub reporter: workflow-command annotations and the job summary (issue 6 builds it).

use super::Report;

/// The `::error file=…,line=…::` lines for the first failures.
pub fn annotations(report: &Report) -> String {
    let _ = report;
    String::new()
}

/// The `$GITHUB_STEP_SUMMARY` markdown: verdict table and the RLS grid.
pub fn summary(report: &Report) -> String {
    let _ = report;
    String::new()
}
