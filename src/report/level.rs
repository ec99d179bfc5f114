//! How serious a lint finding is, and the level that fails a run (`--fail-on-lint`): here
//! because both the run's options and the lint stage name them.

use serde::Deserialize;

/// How serious a finding is. Ordered: `info < warn < error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The lowest level that fails the run, from the command line (`--fail-on-lint`), overriding
/// `lint.fail_level`; `never` reports findings without failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Info,
    Warn,
    Error,
    Never,
}

impl FailOn {
    /// The level at or above which findings fail; `None` for never.
    pub fn level(self) -> Option<Level> {
        match self {
            FailOn::Info => Some(Level::Info),
            FailOn::Warn => Some(Level::Warn),
            FailOn::Error => Some(Level::Error),
            FailOn::Never => None,
        }
    }
}
