//! One migration or seed file's outcome (applied, skipped, exempt, failed at file:line:col):
//! what replay produces and the reporters and events show.

use std::time::Duration;

use crate::project::FileKind;

/// Why one file failed, pointing into it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileFailure {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The server's DETAIL, HINT and CONTEXT, and db-ci's own advice.
    pub notes: Vec<String>,
    pub sqlstate: String,
    /// The first lines of the failing statement.
    pub statement: String,
}

impl FileFailure {
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.column)
    }
}

/// How a file was applied.
#[derive(Debug, Clone)]
pub enum FileResult {
    Applied,
    /// Already recorded in the ledger (ledger mode, pass 2).
    SkippedByLedger,
    /// Exempted from pass 2 by configuration.
    Exempt(String),
    Failed(FileFailure),
}

/// One file's outcome and how long it took.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub file: String,
    pub kind: FileKind,
    pub duration: Duration,
    pub result: FileResult,
}

impl FileOutcome {
    /// Why the file failed, when it did.
    pub fn failure(&self) -> Option<&FileFailure> {
        match &self.result {
            FileResult::Failed(f) => Some(f),
            _ => None,
        }
    }
}
