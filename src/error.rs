//! Errors that stop a run before any check could give a verdict, and their exit codes.

use std::path::PathBuf;

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
/// after "failed to" or stand alone; user-facing ones name the user's file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The project as given cannot be read: exit 2.
    #[error("{0}")]
    Input(String),
    /// No backend could give us a server: exit 3.
    #[error("{0}")]
    Environment(String),
    /// A YAML file failed to parse; rendered with its source span.
    #[error("{message}")]
    Yaml {
        message: String,
        path: PathBuf,
        rendered: String,
    },
}

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(message.into())
    }

    pub fn environment(message: impl Into<String>) -> Self {
        Error::Environment(message.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Yaml { .. } => exit::INPUT,
            Error::Environment(_) => exit::ENVIRONMENT,
        }
    }

    /// The text printed to stderr for this error.
    pub fn render(&self) -> String {
        match self {
            Error::Yaml { rendered, .. } => rendered.clone(),
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
