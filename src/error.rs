//! Errors that stop a run before any check could give a verdict, and their exit codes.

use crate::diag::Diagnostic;

/// Exit codes, as documented in docs/contract.md.
pub mod exit {
    /// Every check passed.
    pub const PASS: i32 = 0;
    /// A check failed.
    pub const FAIL: i32 = 1;
    /// Invalid input: config, YAML, project layout, unreadable SQL file.
    pub const INPUT: i32 = 2;
    /// Environment: no usable backend, engine or image.
    pub const ENVIRONMENT: i32 = 3;
}

/// An error that ends a run without a verdict. Messages are lowercase fragments that read
/// after "failed to" or stand alone; an input error carries its position as data.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The project as given cannot be read: exit 2, at the file and position to fix.
    #[error("{0}")]
    Input(Box<Diagnostic>),
    /// No backend could give us a server: exit 3.
    #[error("{0}")]
    Environment(String),
}

impl Error {
    /// An input error with no position (a flag, a rule over the whole project).
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(Box::new(Diagnostic::message(message)))
    }

    /// An input error at `line` (and `column`) of `file`.
    pub fn at(
        file: impl Into<String>,
        line: usize,
        column: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Error::Input(Box::new(Diagnostic::at(file, line, column, message)))
    }

    pub fn environment(message: impl Into<String>) -> Self {
        Error::Environment(message.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => exit::INPUT,
            Error::Environment(_) => exit::ENVIRONMENT,
        }
    }

    /// The error as a diagnostic: an input error's own, an environment error's message.
    pub fn diagnostic(&self) -> Diagnostic {
        match self {
            Error::Input(diagnostic) => (**diagnostic).clone(),
            Error::Environment(message) => Diagnostic::message(message.clone()),
        }
    }
}

impl From<Diagnostic> for Error {
    fn from(diagnostic: Diagnostic) -> Self {
        Error::Input(Box::new(diagnostic))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
