//! The run report (the JSON contract of DESIGN.md) and the reporters that print it.

pub mod human;
pub mod json;

use serde::Serialize;

/// The stages, in the order a run reaches them.
pub const STAGES: &[&str] = &[
    "replay",
    "idempotence",
    "rls",
    "properties",
    "snapshot",
    "lint",
];

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
    pub name: &'static str,
    pub verdict: StageVerdict,
    /// Why a stage was skipped, or what a passing stage checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Number of checks the stage made (files applied, objects compared…).
    pub checks: usize,
    pub duration_ms: u64,
    pub failures: Vec<Failure>,
}

impl StageReport {
    pub fn skipped(name: &'static str, reason: impl Into<String>) -> StageReport {
        StageReport {
            name,
            verdict: StageVerdict::Skipped,
            reason: Some(reason.into()),
            checks: 0,
            duration_ms: 0,
            failures: Vec::new(),
        }
    }
}

/// An error that stopped the run before its stages could finish (exit 2 or 3).
#[derive(Debug, Clone, Serialize)]
pub struct RunError {
    pub kind: &'static str,
    pub message: String,
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
    pub fn stage(&self, name: &str) -> Option<&StageReport> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The process exit code this report stands for.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit;
        match (&self.error, self.verdict) {
            (Some(e), _) if e.kind == "input" => exit::INPUT,
            (Some(_), _) => exit::ENVIRONMENT,
            (None, Verdict::Pass) => exit::PASS,
            (None, Verdict::Fail) => exit::FAIL,
        }
    }
}
