//! The JUnit reporter: a testsuite per stage (its real duration), a testcase per check
//! (migration file, RLS cell, property, lint finding), failure bodies with file:line, lint
//! warnings as their testcase's system-out, totals on the root. Written with quick-xml, which
//! escapes markup; what XML 1.0 cannot hold at all (control characters from data, `]]>` in
//! CDATA) is handled here.

use std::io::Write as _;
use std::path::Path;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};
use quick_xml::Writer;
pub use time::OffsetDateTime;

use super::github::Paths;
use super::human::failure_text;
use super::{escape_controls, Case, CaseVerdict, Failure, Report, StageReport, StageVerdict};

/// Writes the JUnit XML of `report` to `path`, atomically (a reader never sees half a file),
/// its `file` attributes relative to the repository root like the annotations'.
pub fn write(report: &Report, path: &Path) -> std::io::Result<()> {
    let xml = to_xml(report, OffsetDateTime::now_utc(), &Paths::from_env())?;
    crate::files::write_atomically(path, &crate::redact::scrub_bytes(xml))
}

/// What a testcase ended with.
enum Outcome {
    Pass,
    /// The project is wrong: `<failure>`.
    Failure {
        message: String,
        body: String,
    },
    /// The check itself is wrong, or the run stopped: `<error>`.
    Error {
        kind: String,
        message: String,
        body: String,
    },
    Skipped {
        message: String,
    },
}

struct XmlCase {
    name: String,
    classname: String,
    file: Option<String>,
    /// The line in `file` (an error that stopped the run, when it has a position).
    line: Option<usize>,
    duration_ms: u64,
    outcome: Outcome,
    /// Shown beside a passing check: a lint finding below the fail level.
    system_out: Option<String>,
}

struct Suite {
    name: String,
    duration_ms: u64,
    cases: Vec<XmlCase>,
}

impl Suite {
    fn count(&self, which: fn(&Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| which(&c.outcome)).count()
    }
    fn failures(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failure { .. }))
    }
    fn errors(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Error { .. }))
    }
    fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped { .. }))
    }
}

/// The JUnit XML of `report`, every testsuite stamped with `timestamp`; `file` attributes
/// resolved by `paths` (test-report actions annotate the repository's files with them).
pub fn to_xml(
    report: &Report,
    timestamp: OffsetDateTime,
    paths: &Paths,
) -> std::io::Result<Vec<u8>> {
    let mut suites = Vec::new();
    if let Some(error) = &report.error {
        // The run stopped (exit 2 or 3): say why where a test-report viewer looks.
        suites.push(Suite {
            name: "run".to_owned(),
            duration_ms: 0,
            cases: vec![XmlCase {
                name: "db-ci run".to_owned(),
                classname: "run".to_owned(),
                file: error.diagnostic.file.clone(),
                line: error.diagnostic.line,
                duration_ms: 0,
                outcome: Outcome::Error {
                    kind: error.kind.as_str().to_owned(),
                    message: error.diagnostic.headline(),
                    body: error.message(),
                },
                system_out: None,
            }],
        });
    }
    suites.extend(report.stages.iter().map(stage_suite));
    // Names stay as the console shows them; only the `file` attribute moves to the
    // repository root. A place no file stands for (`(catalog)`) has no file.
    for case in suites.iter_mut().flat_map(|s| s.cases.iter_mut()) {
        case.file = case
            .file
            .take()
            .filter(|f| !f.is_empty() && !f.starts_with('('))
            .map(|f| paths.repository_path(&report.project, &f));
    }
    let timestamp = timestamp
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(std::io::Error::other)?;
    write_xml(report, &suites, &timestamp)
}

fn write_xml(report: &Report, suites: &[Suite], timestamp: &str) -> std::io::Result<Vec<u8>> {
    let total = |f: fn(&Suite) -> usize| suites.iter().map(f).sum::<usize>().to_string();
    let mut writer = Writer::new(Vec::new());
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer.get_mut().push(b'\n');
    let run_time = seconds(report.duration_ms);
    let root = BytesStart::new("testsuites").with_attributes([
        ("name", "db-ci"),
        ("tests", total(|s| s.cases.len()).as_str()),
        ("failures", total(Suite::failures).as_str()),
        ("errors", total(Suite::errors).as_str()),
        ("skipped", total(Suite::skipped).as_str()),
        ("time", run_time.as_str()),
    ]);
    writer.write_event(Event::Start(root))?;
    for (id, suite) in suites.iter().enumerate() {
        let name = xml_text(&suite.name);
        let start = BytesStart::new("testsuite").with_attributes([
            ("id", id.to_string().as_str()),
            ("name", name.as_str()),
            ("tests", suite.cases.len().to_string().as_str()),
            ("failures", suite.failures().to_string().as_str()),
            ("errors", suite.errors().to_string().as_str()),
            ("skipped", suite.skipped().to_string().as_str()),
            ("timestamp", timestamp),
            ("time", seconds(suite.duration_ms).as_str()),
        ]);
        writer.write_event(Event::Start(start))?;
        for case in &suite.cases {
            write_case(&mut writer, case)?;
        }
        writer.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    writer.write_event(Event::End(BytesEnd::new("testsuites")))?;
    let mut xml = writer.into_inner();
    xml.write_all(b"\n")?;
    Ok(xml)
}

fn write_case(writer: &mut Writer<Vec<u8>>, case: &XmlCase) -> std::io::Result<()> {
    let name = xml_text(&case.name);
    let classname = xml_text(&case.classname);
    let file = case.file.as_deref().map(xml_text);
    let time = seconds(case.duration_ms);
    let mut start = BytesStart::new("testcase").with_attributes([
        ("name", name.as_str()),
        ("classname", classname.as_str()),
        ("time", time.as_str()),
    ]);
    if let Some(file) = &file {
        start.push_attribute(("file", file.as_str()));
    }
    let line = case.line.map(|l| l.to_string());
    if let Some(line) = &line {
        start.push_attribute(("line", line.as_str()));
    }
    if matches!(case.outcome, Outcome::Pass) && case.system_out.is_none() {
        return writer.write_event(Event::Empty(start));
    }
    writer.write_event(Event::Start(start))?;
    match &case.outcome {
        Outcome::Pass => {}
        Outcome::Failure { message, body } => {
            write_problem(writer, "failure", "fail", message, body)?;
        }
        Outcome::Error {
            kind,
            message,
            body,
        } => write_problem(writer, "error", kind, message, body)?,
        Outcome::Skipped { message } => {
            let message = xml_text(message);
            let skipped = BytesStart::new("skipped")
                .with_attributes([("type", "skipped"), ("message", message.as_str())]);
            writer.write_event(Event::Empty(skipped))?;
        }
    }
    if let Some(out) = &case.system_out {
        writer.write_event(Event::Start(BytesStart::new("system-out")))?;
        write_cdata(writer, out)?;
        writer.write_event(Event::End(BytesEnd::new("system-out")))?;
    }
    writer.write_event(Event::End(BytesEnd::new("testcase")))
}

/// A `<failure>` or `<error>` element: one-line message attribute, the full text as body.
fn write_problem(
    writer: &mut Writer<Vec<u8>>,
    element: &str,
    kind: &str,
    message: &str,
    body: &str,
) -> std::io::Result<()> {
    let kind = xml_text(kind);
    let message = xml_text(first_line(message));
    let start = BytesStart::new(element)
        .with_attributes([("type", kind.as_str()), ("message", message.as_str())]);
    writer.write_event(Event::Start(start))?;
    write_cdata(writer, body)?;
    writer.write_event(Event::End(BytesEnd::new(element)))
}

/// `text` as CDATA: a `]]>` inside would end the section early, so it is split across two
/// sections (`]]` ends one, `>` opens the next).
fn write_cdata(writer: &mut Writer<Vec<u8>>, text: &str) -> std::io::Result<()> {
    let text = xml_text(text).replace("]]>", "]]]]><![CDATA[>");
    let out = writer.get_mut();
    out.write_all(b"<![CDATA[")?;
    out.write_all(text.as_bytes())?;
    out.write_all(b"]]>")
}

/// Text XML 1.0 can hold: control characters (other than tab and newline) and the two
/// non-characters XML forbids are shown escaped, the way the console shows them.
fn xml_text(text: &str) -> String {
    escape_controls(text)
        .chars()
        .map(|c| match c {
            '\u{fffe}' | '\u{ffff}' => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// Seconds with milliseconds, as JUnit's `time` attributes want them.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn stage_suite(stage: &StageReport) -> Suite {
    let mut cases: Vec<XmlCase> = stage
        .cases
        .iter()
        .map(|case| case_testcase(stage, case))
        .collect();
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
        cases.push(XmlCase {
            name,
            classname: stage.name.as_str().to_owned(),
            file: Some(failure.file.clone()),
            line: None,
            duration_ms: 0,
            outcome: Outcome::Failure {
                message: failure.message.clone(),
                body: failure_text(failure),
            },
            system_out: None,
        });
    }
    let has_failing_case = stage
        .cases
        .iter()
        .any(|c| matches!(c.verdict, CaseVerdict::Fail | CaseVerdict::Broken));
    let whole_stage = |outcome| XmlCase {
        name: stage.name.as_str().to_owned(),
        classname: stage.name.as_str().to_owned(),
        file: None,
        line: None,
        duration_ms: 0,
        outcome,
        system_out: None,
    };
    match stage.verdict {
        StageVerdict::Fail if !has_failing_case && stage.failures.is_empty() => {
            let reason = stage.reason.as_deref().unwrap_or("the stage failed");
            cases.push(whole_stage(Outcome::Failure {
                message: reason.to_owned(),
                body: reason.to_owned(),
            }));
        }
        StageVerdict::Skipped if stage.cases.is_empty() => {
            // A skipped stage shows as one skipped testcase carrying the reason, never as an
            // empty (green-looking) suite.
            let reason = stage.reason.as_deref().unwrap_or("skipped");
            cases.push(whole_stage(Outcome::Skipped {
                message: reason.to_owned(),
            }));
        }
        _ => {}
    }
    Suite {
        name: stage.name.as_str().to_owned(),
        duration_ms: stage.duration_ms,
        cases,
    }
}

/// Whether a failing case already stands for `failure` (same file, same line if it has one).
fn case_covers(case: &Case, failure: &Failure) -> bool {
    matches!(case.verdict, CaseVerdict::Fail | CaseVerdict::Broken)
        && case.file.as_deref() == Some(failure.file.as_str())
        && case.line.is_none_or(|line| line == failure.line)
}

fn case_testcase(stage: &StageReport, case: &Case) -> XmlCase {
    let message = case.message.clone().unwrap_or_default();
    let (outcome, system_out) = match case.verdict {
        // A message on a passing check is a finding below the fail level (a lint warning):
        // it belongs beside the testcase, not hidden in a count.
        CaseVerdict::Pass => (Outcome::Pass, case.message.clone()),
        CaseVerdict::Skipped => (Outcome::Skipped { message }, None),
        CaseVerdict::Fail => (
            Outcome::Failure {
                message,
                body: case_failure_text(stage, case),
            },
            None,
        ),
        // A broken check is the test's own fault, not the project's: JUnit's `error`.
        CaseVerdict::Broken => (
            Outcome::Error {
                kind: "broken".to_owned(),
                message,
                body: case_failure_text(stage, case),
            },
            None,
        ),
    };
    XmlCase {
        name: case.name.clone(),
        classname: case.group.clone(),
        file: case.file.clone(),
        line: None,
        duration_ms: case.duration_ms,
        outcome,
        system_out,
    }
}

/// The body of a failing case: the stage's failure at the case's file:line as the console
/// prints it, else `file:line: message`.
fn case_failure_text(stage: &StageReport, case: &Case) -> String {
    let mut matching: Vec<&Failure> = stage
        .failures
        .iter()
        .filter(|f| case_covers(case, f))
        .collect();
    // The stage may know which of them the case stands for (an RLS cell: the failure that
    // names its operation and actor).
    if let Some(text) = stage
        .detail
        .get()
        .and_then(|detail| detail.junit_failure_text(case, &matching))
    {
        return text;
    }
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
            cell.case,
            cell.operation,
            cell.target,
            cell.actor,
            cell.expected_text(),
            cell.observed
        ));
    }
    text
}

/// The `message` attribute: one line (XML normalises newlines in attributes to spaces).
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
