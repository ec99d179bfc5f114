//! The run report (the JSON contract of docs/contract.md) and the reporters that print it.

pub mod detail;
pub mod events;
pub mod file;
pub mod github;
pub mod human;
pub mod json;
pub mod junit;
pub mod level;

use crate::policy_tests::cases::{Expect, Operation};
use crate::stage_id::StageId;
use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Serialize;

use detail::{Detail, StageDetail};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageVerdict {
    Pass,
    Fail,
    Skipped,
}

/// One failure, pointing at the user's file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub file: String,
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub name: StageId,
    pub verdict: StageVerdict,
    /// Why a stage was skipped, or what a passing stage checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Number of checks the stage made (files applied, objects compared…).
    pub checks: usize,
    pub duration_ms: u64,
    pub failures: Vec<Failure>,
    /// Every check the stage made, one by one (a migration file, an RLS cell, a property, a
    /// lint finding): what JUnit lists as testcases and the job summary draws as the grid.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<Case>,
    /// The stage's own payload (rls: coverage, unreviewed cells, recordings), typed in its
    /// folder; its fields follow the shared ones in the JSON.
    #[serde(flatten)]
    pub detail: Detail,
}

impl StageReport {
    pub fn skipped(name: StageId, reason: impl Into<String>) -> StageReport {
        StageReport {
            reason: Some(reason.into()),
            ..StageReport::new(name, StageVerdict::Skipped)
        }
    }

    pub fn new(name: StageId, verdict: StageVerdict) -> StageReport {
        StageReport {
            name,
            verdict,
            reason: None,
            checks: 0,
            duration_ms: 0,
            failures: Vec::new(),
            cases: Vec::new(),
            detail: Detail::default(),
        }
    }

    /// The stage's payload as `T` (the rls stage's `RlsDetail`), when it carries one.
    pub fn detail<T: StageDetail>(&self) -> Option<&T> {
        self.detail.of::<T>()
    }

    /// The stage's payload as `T` to change, a default `T` when it has none yet.
    pub fn detail_mut<T: StageDetail + Clone + Default>(&mut self) -> &mut T {
        self.detail.of_mut::<T>()
    }
}

/// The outcome of one check inside a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseVerdict {
    Pass,
    /// The check ran and the project is wrong.
    Fail,
    /// The check itself is wrong (a vacuous RLS case, a test hitting a unique violation):
    /// fails the stage, reported apart from real failures.
    Broken,
    Skipped,
}

/// One check: a testcase in JUnit.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// Unique within the stage, e.g. `profiles: owner can read / select as alice`.
    pub name: String,
    /// What JUnit calls the classname: the file or table the check belongs to.
    pub group: String,
    pub verdict: CaseVerdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    pub duration_ms: u64,
    /// Why it failed (also in the stage's failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For RLS cells: the grid coordinates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<RlsCell>,
}

/// An RLS matrix cell: actor × operation × case, expected vs observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RlsCell {
    /// The case's name in the matrix file.
    pub case: String,
    /// The table, view, `storage.objects` or `sql` for an RPC case.
    pub target: String,
    pub actor: String,
    pub operation: Operation,
    /// `none` for a cell with no expectation (a hole, or one being recorded).
    #[serde(serialize_with = "expected_text")]
    pub expected: Option<Expect>,
    pub observed: Observed,
    /// The expectation is a recording nobody reviewed yet (the actor is under `unreviewed:`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unreviewed: bool,
}

impl RlsCell {
    /// What the cell expected, as the JSON says it.
    pub fn expected_text(&self) -> &'static str {
        expected_name(self.expected)
    }
}

/// An expectation's name in the report: `none` for a cell without one.
fn expected_name(expected: Option<Expect>) -> &'static str {
    expected.map_or("none", Expect::as_str)
}

fn expected_text<S: serde::Serializer>(
    expected: &Option<Expect>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(expected_name(*expected))
}

/// What an RLS cell's run showed (`observed` in the JSON); the rls judge decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Observed {
    Allow,
    Deny,
    /// Some target rows but not all: neither allow nor deny.
    Partial,
    /// The test itself is wrong; nothing was learnt about the policy.
    Broken,
}

impl Observed {
    pub fn as_str(self) -> &'static str {
        match self {
            Observed::Allow => "allow",
            Observed::Deny => "deny",
            Observed::Partial => "partial",
            Observed::Broken => "broken",
        }
    }
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error that stopped the run before its stages could finish (exit 2 or 3). In the JSON:
/// `kind`, `message` (the text the console prints first: the position, then the message,
/// then its notes) and, when the error has a position, `file`, `line` and `column`.
#[derive(Debug, Clone)]
pub struct RunError {
    pub kind: RunErrorKind,
    pub diagnostic: crate::diag::Diagnostic,
}

impl RunError {
    /// An error with no position.
    pub fn new(kind: RunErrorKind, message: impl Into<String>) -> RunError {
        RunError {
            kind,
            diagnostic: crate::diag::Diagnostic::message(message),
        }
    }

    /// The report's view of an error that stopped the run: its kind follows its exit code.
    pub fn from_error(error: &crate::error::Error) -> RunError {
        RunError {
            kind: if error.exit_code() == crate::error::exit::INPUT {
                RunErrorKind::Input
            } else {
                RunErrorKind::Environment
            },
            diagnostic: error.diagnostic(),
        }
    }

    /// The whole text: the headline and the notes.
    pub fn message(&self) -> String {
        self.diagnostic.to_string()
    }
}

impl Serialize for RunError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let d = &self.diagnostic;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("message", &d.to_string())?;
        if let Some(file) = &d.file {
            map.serialize_entry("file", file)?;
        }
        if let Some(line) = d.line {
            map.serialize_entry("line", &line)?;
        }
        if let Some(column) = d.column {
            map.serialize_entry("column", &column)?;
        }
        map.end()
    }
}

/// Whose problem stopped the run: the project's input (exit 2) or the machine (exit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunErrorKind {
    Input,
    Environment,
}

impl RunErrorKind {
    /// The word the JSON carries, also printed by the console, JUnit and GitHub reporters.
    pub fn as_str(self) -> &'static str {
        match self {
            RunErrorKind::Input => "input",
            RunErrorKind::Environment => "environment",
        }
    }
}

impl std::fmt::Display for RunErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    pub db_ci_version: &'static str,
    pub project: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    pub replay_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub duration_ms: u64,
    pub stages: Vec<StageReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
}

impl Report {
    pub fn stage(&self, name: StageId) -> Option<&StageReport> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The run's verdict once its stages are in: pass unless an error stopped it or a stage
    /// failed.
    pub fn verdict_from_stages(&self) -> Verdict {
        if self.error.is_none() && self.stages.iter().all(|s| s.verdict != StageVerdict::Fail) {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }

    /// The process exit code this report stands for.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit;
        match (&self.error, self.verdict) {
            (Some(e), _) if e.kind == RunErrorKind::Input => exit::INPUT,
            (Some(_), _) => exit::ENVIRONMENT,
            (None, Verdict::Pass) => exit::PASS,
            (None, Verdict::Fail) => exit::FAIL,
        }
    }
}

/// `text` with every control character shown escaped (`\u{1b}` as `\x1b`, `\u{9b}` as
/// `\u{9b}`), so data from the database or the project (a seed value in an error message)
/// can never move the cursor, recolour or clear a reviewer's terminal, nor make a report
/// file unreadable. Newlines and tabs are layout and stay; a CR before a newline is dropped,
/// any other CR is escaped (it would overwrite the start of the line).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    let keep = |c: char| !c.is_control() || c == '\n' || c == '\t';
    if text.chars().all(keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            c if keep(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(escape_controls("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(
            escape_controls("\u{1b}[2J red\u{7}\u{0}"),
            "\\x1b[2J red\\x07\\x00"
        );
        assert_eq!(escape_controls("a\r\nb\rc"), "a\nb\\x0dc");
        assert_eq!(escape_controls("csi \u{9b}31m"), "csi \\u{9b}31m");
        // Printable text, accents and emoji untouched.
        assert_eq!(escape_controls("é ✅ \\x1b"), "é ✅ \\x1b");
    }
    #[test]
    fn a_run_error_serialises_its_kind_in_lowercase() {
        use super::{RunError, RunErrorKind};
        let error = RunError::from_error(&crate::error::Error::at(
            "db-ci.yaml",
            3,
            Some(5),
            "unknown rule",
        ));
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"kind":"input","message":"db-ci.yaml:3:5: unknown rule","file":"db-ci.yaml","line":3,"column":5}"#
        );
        assert_eq!(
            serde_json::to_string(&RunError::new(RunErrorKind::Input, "no file")).unwrap(),
            r#"{"kind":"input","message":"no file"}"#
        );
        let from = RunError::from_error(&crate::error::Error::environment("no backend"));
        assert_eq!(from.kind, RunErrorKind::Environment);
        assert_eq!(serde_json::to_value(from.kind).unwrap(), "environment");
    }
}
