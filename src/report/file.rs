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
    /// A seed the CLI's seed ledger holds unchanged (ledger mode, pass 2): not run again,
    /// as `supabase db push --include-seed` does not run it; with what a re-run would do.
    SeedUpToDate(Rerun),
    /// Exempted from pass 2 by configuration.
    Exempt(String),
    Failed(FileFailure),
}

/// What re-running a seed the ledger skips would do: a note for teams that re-run seeds by
/// hand, never a failure (the platform does not re-run it).
#[derive(Debug, Clone)]
pub enum Rerun {
    Works,
    Fails(FileFailure),
    /// Not probed: the file cannot run in a transaction block, so a probe could not be undone.
    NotProbed,
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
