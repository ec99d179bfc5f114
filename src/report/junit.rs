//! The JUnit reporter: a testsuite per stage, a testcase per check (migration file, RLS cell,
//! property, lint finding), failure bodies with file:line. XML escaping is junit-report's job
//! (via quick-xml), except the one thing CDATA cannot hold, handled in [`cdata_safe`].

use std::path::Path;

use junit_report::{
    Duration, OffsetDateTime, ReportBuilder, TestCase, TestCaseBuilder, TestSuite, TestSuiteBuilder,
};

use super::human::failure_text;
use super::{Case, CaseVerdict, Failure, Report, StageReport, StageVerdict};

/// Writes the JUnit XML of `report` to `path`, atomically (a reader never sees half a file).
pub fn write(report: &Report, path: &Path) -> std::io::Result<()> {
    let xml = to_xml(report, OffsetDateTime::now_utc())?;
    super::write_atomically(path, &crate::redact::scrub_bytes(xml))
}

/// The JUnit XML of `report`, every testsuite stamped with `timestamp`.
pub fn to_xml(report: &Report, timestamp: OffsetDateTime) -> std::io::Result<Vec<u8>> {
    let mut builder = ReportBuilder::new();
    if let Some(error) = &report.error {
        // The run stopped (exit 2 or 3): say why where a test-report viewer looks.
        let case = TestCaseBuilder::error(
            "db-ci run",
            Duration::ZERO,
            error.kind,
            first_line(&error.message),
        )
        .set_trace(&cdata_safe(&error.message))
        .build();
        builder.add_testsuite(
            TestSuiteBuilder::new("run")
                .set_timestamp(timestamp)
                .add_testcase(case)
                .build(),
        );
    }
    for stage in &report.stages {
        builder.add_testsuite(stage_suite(stage, timestamp));
    }
    let mut xml = Vec::new();
    builder
        .build()
        .write_xml(&mut xml)
        .map_err(std::io::Error::other)?;
    xml.push(b'\n');
    Ok(xml)
}

fn stage_suite(stage: &StageReport, timestamp: OffsetDateTime) -> TestSuite {
    let mut suite = TestSuiteBuilder::new(stage.name.as_str());
    suite.set_timestamp(timestamp);
    for case in &stage.cases {
        suite.add_testcase(case_testcase(stage, case));
    }
    // Failures no failing case stands for (an idempotence difference in the catalog, a stage
    // failing as a whole) still become failing testcases: JUnit must never look greener than
    // the verdict.
    for failure in stage
        .failures
        .iter()
        .filter(|f| !stage.cases.iter().any(|c| case_covers(c, f)))
    {
        let name = match failure.line {
            0 => failure.file.clone(),
            line => format!("{}:{line}", failure.file),
        };
        suite.add_testcase(
            TestCaseBuilder::failure(&name, Duration::ZERO, "fail", first_line(&failure.message))
                .set_classname(stage.name.as_str())
                .set_filepath(&failure.file)
                .set_trace(&cdata_safe(&failure_text(failure)))
                .build(),
        );
    }
    let has_failing_case = stage
        .cases
        .iter()
        .any(|c| matches!(c.verdict, CaseVerdict::Fail | CaseVerdict::Broken));
    match stage.verdict {
        StageVerdict::Fail if !has_failing_case && stage.failures.is_empty() => {
            let reason = stage.reason.as_deref().unwrap_or("the stage failed");
            suite.add_testcase(
                TestCaseBuilder::failure(
                    stage.name.as_str(),
                    Duration::ZERO,
                    "fail",
                    first_line(reason),
                )
                .set_classname(stage.name.as_str())
                .set_trace(&cdata_safe(reason))
                .build(),
            );
        }
        StageVerdict::Skipped if stage.cases.is_empty() => {
            // A skipped stage shows as one skipped testcase carrying the reason, never as an
            // empty (green-looking) suite.
            let reason = stage.reason.as_deref().unwrap_or("skipped");
            suite.add_testcase(
                TestCaseBuilder::skipped_with_cause(stage.name.as_str(), "skipped", reason)
                    .set_classname(stage.name.as_str())
                    .build(),
            );
        }
        _ => {}
    }
    suite.build()
}

/// Whether a failing case already stands for `failure` (same file, same line if it has one).
fn case_covers(case: &Case, failure: &Failure) -> bool {
    matches!(case.verdict, CaseVerdict::Fail | CaseVerdict::Broken)
        && case.file.as_deref() == Some(failure.file.as_str())
        && case.line.is_none_or(|line| line == failure.line)
}

fn case_testcase(stage: &StageReport, case: &Case) -> TestCase {
    let time = Duration::milliseconds(case.duration_ms as i64);
    let message = case.message.as_deref().unwrap_or_default();
    let mut builder = match case.verdict {
        CaseVerdict::Pass => TestCaseBuilder::success(&case.name, time),
        CaseVerdict::Skipped => TestCaseBuilder::skipped_with_cause(&case.name, "skipped", message),
        CaseVerdict::Fail => {
            let mut builder =
                TestCaseBuilder::failure(&case.name, time, "fail", first_line(message));
            builder.set_trace(&cdata_safe(&case_failure_text(stage, case)));
            builder
        }
        // A broken check is the test's own fault, not the project's: JUnit's `error`.
        CaseVerdict::Broken => {
            let mut builder =
                TestCaseBuilder::error(&case.name, time, "broken", first_line(message));
            builder.set_trace(&cdata_safe(&case_failure_text(stage, case)));
            builder
        }
    };
    builder.set_classname(&case.group);
    if let Some(file) = &case.file {
        builder.set_filepath(file);
    }
    builder.build()
}

/// The body of a failing case: the stage's failure at the case's file:line as the console
/// prints it, else `file:line: message`.
fn case_failure_text(stage: &StageReport, case: &Case) -> String {
    let mut matching: Vec<&Failure> = stage
        .failures
        .iter()
        .filter(|f| case_covers(case, f))
        .collect();
    // Cells of one RLS case share its file:line: keep the failure about this cell.
    if let Some(message) = case.message.as_deref().filter(|m| !m.is_empty()) {
        let same_message: Vec<&Failure> = matching
            .iter()
            .copied()
            .filter(|f| f.message.contains(message) || message.contains(&f.message))
            .collect();
        if !same_message.is_empty() {
            matching = same_message;
        }
    }
    let matching: Vec<String> = matching.into_iter().map(failure_text).collect();
    if !matching.is_empty() {
        return matching.join("\n");
    }
    let message = case.message.as_deref().unwrap_or("failed");
    let mut location = case.file.clone().unwrap_or_default();
    if let Some(line) = case.line {
        location.push_str(&format!(":{line}"));
    }
    let mut text = if location.is_empty() {
        message.to_owned()
    } else {
        format!("{location}: {message}")
    };
    if let Some(cell) = &case.cell {
        text.push_str(&format!(
            "\n{} {} on {} as {}: expected {}, observed {}",
            cell.case, cell.operation, cell.target, cell.actor, cell.expected, cell.observed
        ));
    }
    text
}

/// The `message` attribute: one line (XML normalises newlines in attributes to spaces).
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// junit-report writes failure bodies as CDATA without splitting a `]]>` inside them (which
/// would end the section early and break the file): split it across two sections.
fn cdata_safe(text: &str) -> String {
    text.replace("]]>", "]]]]><![CDATA[>")
}
