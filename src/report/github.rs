//! The GitHub reporter: `::error` workflow commands that annotate the failing file:line in the
//! pull request, and the `$GITHUB_STEP_SUMMARY` markdown (verdict table per stage, failures,
//! the RLS matrix as a grid, RLS coverage). Everything user-controlled is escaped for where it
//! goes: workflow-command data and properties, markdown table cells.

use std::fmt::Write as _;
use std::path::{Component, PathBuf};

use super::{CaseVerdict, Coverage, Failure, Report, StageReport, StageVerdict, Verdict};

/// GitHub shows at most 10 `error` annotations per step (and 50 per job); later ones are
/// dropped silently. We annotate the first ten failures and say plainly how many more there
/// are, so nobody takes the annotations for the whole list.
pub const MAX_ERROR_ANNOTATIONS: usize = 10;

/// At most this many failures are listed in the job summary (a summary is capped at 1 MiB;
/// the JUnit and JSON reports have them all).
const MAX_SUMMARY_FAILURES: usize = 50;

/// Where the annotations are resolved: GitHub reads `file=` relative to the repository root
/// (`$GITHUB_WORKSPACE`), while the report names files relative to the project directory,
/// itself given relative to the working directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub workspace: PathBuf,
    pub cwd: PathBuf,
}

impl Paths {
    /// `$GITHUB_WORKSPACE` (else the working directory) and the working directory.
    pub fn from_env() -> Paths {
        let cwd = std::env::current_dir().unwrap_or_default();
        let workspace = std::env::var_os("GITHUB_WORKSPACE")
            .map(PathBuf::from)
            .unwrap_or_else(|| cwd.clone());
        Paths { workspace, cwd }
    }

    /// `file` of the project at `project`, relative to the workspace when it lies inside it.
    pub fn repository_path(&self, project: &str, file: &str) -> String {
        let path = self.cwd.join(project).join(file);
        let mut normal = PathBuf::new();
        for component in path.components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    normal.pop();
                }
                other => normal.push(other),
            }
        }
        let workspace: PathBuf = self
            .workspace
            .components()
            .filter(|c| *c != Component::CurDir)
            .collect();
        normal
            .strip_prefix(&workspace)
            .unwrap_or(&normal)
            .to_string_lossy()
            .into_owned()
    }
}

/// The `::error file=…,line=…,col=…,title=…::message` lines for the first failures, then a
/// `::warning::` line if some were left out.
pub fn annotations(report: &Report, paths: &Paths) -> String {
    let failures = all_failures(report);
    let mut out = String::new();
    if let Some(error) = &report.error {
        out.push_str(&error_annotation(error.kind, &error.message));
    }
    for (stage, failure) in failures.iter().take(MAX_ERROR_ANNOTATIONS) {
        let mut properties = Vec::new();
        // A failure no file could be blamed for is annotated on the run, not on a file.
        if !failure.file.starts_with('(') {
            let file = paths.repository_path(&report.project, &failure.file);
            properties.push(format!("file={}", escape_property(&file)));
            if failure.line > 0 {
                properties.push(format!("line={}", failure.line));
                if let Some(column) = failure.column {
                    properties.push(format!("col={column}"));
                }
            }
        }
        properties.push(format!(
            "title={}",
            escape_property(&format!("db-ci {}", stage.name))
        ));
        let message = message_with_notes(failure);
        let _ = writeln!(
            out,
            "::error {}::{}",
            properties.join(","),
            escape_data(&message)
        );
    }
    if failures.len() > MAX_ERROR_ANNOTATIONS {
        let _ = writeln!(
            out,
            "::warning title=db-ci::{}",
            escape_data(&format!(
                "{} more failures are not annotated (GitHub shows {MAX_ERROR_ANNOTATIONS} error \
                 annotations per step): see the job summary or the JUnit/JSON report",
                failures.len() - MAX_ERROR_ANNOTATIONS
            ))
        );
    }
    out
}

/// The annotation of an error that stopped the run (`kind`: input or environment).
pub fn error_annotation(kind: &str, message: &str) -> String {
    format!(
        "::error title={}::{}\n",
        escape_property(&format!("db-ci: {kind} error")),
        escape_data(message)
    )
}

/// The job summary of a run that stopped before it had a report (the project could not be
/// read).
pub fn error_summary(kind: &str, message: &str) -> String {
    format!(
        "## db-ci: ❌ {kind} error\n\n**Error:** {}\n\n",
        escape_markdown(message)
    )
}

/// Every failure of every stage, in stage order.
fn all_failures(report: &Report) -> Vec<(&StageReport, &Failure)> {
    report
        .stages
        .iter()
        .flat_map(|stage| stage.failures.iter().map(move |f| (stage, f)))
        .collect()
}

/// The failure's message followed by its notes, one per line.
fn message_with_notes(failure: &Failure) -> String {
    let mut message = failure.message.clone();
    for note in &failure.notes {
        message.push_str("\nnote: ");
        message.push_str(note);
    }
    message
}

/// Workflow-command message data: `%`, CR and LF are the characters the runner decodes; any
/// other control character from data is shown escaped (`\x1b`), never sent raw into the log.
pub fn escape_data(text: &str) -> String {
    super::escape_controls(text)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command property values: as data, plus `:` and `,`, which end a property.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Text in a markdown table cell: backslash-escapes the punctuation markdown would act on
/// (`|` ends a cell; `*`, `_`, `` ` ``, `<`… would format or inject HTML), newlines as `<br>`.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in super::escape_controls(text).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

fn stage_icon(verdict: StageVerdict) -> &'static str {
    match verdict {
        StageVerdict::Pass => "✅ pass",
        StageVerdict::Fail => "❌ fail",
        StageVerdict::Skipped => "⏭️ skipped",
    }
}

/// The `$GITHUB_STEP_SUMMARY` markdown: verdict table, failures, the RLS grid, RLS coverage.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    if let Some(error) = &report.error {
        out.push_str(&error_summary(error.kind, &error.message));
    } else {
        let verdict = match report.verdict {
            Verdict::Pass => "✅ pass",
            Verdict::Fail => "❌ fail",
        };
        let _ = writeln!(out, "## db-ci: {verdict}\n");
    }
    let mut facts = vec![format!("project {}", escape_markdown(&report.project))];
    if let Some(backend) = &report.backend {
        facts.push(escape_markdown(backend));
    }
    facts.push(format!("{} replay", escape_markdown(&report.replay_mode)));
    if let Some(seed) = report.seed {
        facts.push(format!("seed {seed}"));
    }
    facts.push(format!("{:.2} s", report.duration_ms as f64 / 1000.0));
    let _ = writeln!(out, "{}\n", facts.join(" · "));

    out.push_str("| stage | verdict | checks | time | details |\n|---|---|---:|---:|---|\n");
    for stage in &report.stages {
        let details = match (stage.verdict, &stage.reason) {
            (StageVerdict::Fail, _) => format!(
                "{} failure{}",
                stage.failures.len().max(1),
                if stage.failures.len() == 1 { "" } else { "s" }
            ),
            (_, Some(reason)) => escape_markdown(reason),
            (_, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} s | {details} |",
            stage.name,
            stage_icon(stage.verdict),
            stage.checks,
            stage.duration_ms as f64 / 1000.0
        );
    }
    out.push('\n');

    failures_section(&mut out, report);
    if let Some(rls) = report.stage("rls") {
        rls_grid(&mut out, rls);
        if let Some(coverage) = &rls.coverage {
            coverage_section(&mut out, coverage);
        }
    }
    out
}

fn failures_section(out: &mut String, report: &Report) {
    let failures = all_failures(report);
    if failures.is_empty() {
        return;
    }
    out.push_str("### Failures\n\n| stage | where | message |\n|---|---|---|\n");
    for (stage, failure) in failures.iter().take(MAX_SUMMARY_FAILURES) {
        let mut place = failure.file.clone();
        if failure.line > 0 {
            let _ = write!(place, ":{}", failure.line);
            if let Some(column) = failure.column {
                let _ = write!(place, ":{column}");
            }
        }
        let message = message_with_notes(failure);
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            stage.name,
            escape_markdown(&place),
            escape_markdown(&message)
        );
    }
    if failures.len() > MAX_SUMMARY_FAILURES {
        let _ = writeln!(
            out,
            "\n…and {} more in the JUnit and JSON reports.",
            failures.len() - MAX_SUMMARY_FAILURES
        );
    }
    out.push('\n');
}

/// The RLS matrix: a row per (case, actor), a column per operation; each cell the expected
/// outcome, ✅ when observed as expected, ❌ with what was observed otherwise.
fn rls_grid(out: &mut String, stage: &StageReport) {
    const OPERATIONS: [&str; 5] = ["select", "insert", "update", "delete", "sql"];
    let cells: Vec<_> = stage
        .cases
        .iter()
        .filter_map(|case| case.cell.as_ref().map(|cell| (case, cell)))
        .collect();
    if cells.is_empty() {
        return;
    }
    // Columns: the known operations that occur, in their usual order, then any others.
    let mut columns: Vec<&str> = OPERATIONS
        .iter()
        .copied()
        .filter(|op| cells.iter().any(|(_, cell)| cell.operation == *op))
        .collect();
    for (_, cell) in &cells {
        if !columns.contains(&cell.operation.as_str()) {
            columns.push(&cell.operation);
        }
    }
    // Rows in the order the matrix files list them.
    let mut rows: Vec<(&str, &str, &str)> = Vec::new();
    for (_, cell) in &cells {
        let key = (
            cell.case.as_str(),
            cell.target.as_str(),
            cell.actor.as_str(),
        );
        if !rows.contains(&key) {
            rows.push(key);
        }
    }
    out.push_str("### RLS matrix\n\n| case | actor |");
    for column in &columns {
        let _ = write!(out, " {column} |");
    }
    out.push_str("\n|---|---|");
    for _ in &columns {
        out.push_str(":---:|");
    }
    out.push('\n');
    for (case_name, target, actor) in rows {
        let _ = write!(
            out,
            "| {} ({}) | {} |",
            escape_markdown(case_name),
            escape_markdown(target),
            escape_markdown(actor)
        );
        for column in &columns {
            let found = cells.iter().find(|(_, cell)| {
                cell.case == case_name
                    && cell.target == target
                    && cell.actor == actor
                    && cell.operation == *column
            });
            let text = match found {
                None => String::new(),
                Some((case, cell)) => match case.verdict {
                    CaseVerdict::Pass => format!("✅ {}", escape_markdown(&cell.expected)),
                    CaseVerdict::Fail => format!(
                        "❌ expected {}, got {}",
                        escape_markdown(&cell.expected),
                        escape_markdown(&cell.observed)
                    ),
                    CaseVerdict::Broken => {
                        format!("⚠️ broken (expected {})", escape_markdown(&cell.expected))
                    }
                    CaseVerdict::Skipped => format!("⏭️ {}", escape_markdown(&cell.expected)),
                },
            };
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
    out.push('\n');
}

fn coverage_section(out: &mut String, coverage: &Coverage) {
    let minimum = coverage
        .minimum
        .map(|m| format!(" (minimum {m:.0}%)"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "### RLS coverage: {:.0}%{minimum}\n\n| table | select | insert | update | delete |\n|---|:---:|:---:|:---:|:---:|",
        coverage.percent
    );
    for row in &coverage.tables {
        let marks: Vec<&str> = row
            .commands()
            .iter()
            .map(|(_, covered, applies)| match (covered, applies) {
                (true, _) => "✅",
                (false, true) => "—",
                (false, false) => "n/a",
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} |",
            escape_markdown(&row.table),
            marks.join(" | ")
        );
    }
    out.push('\n');
}
