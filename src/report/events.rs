//! The typed event stream a run emits; reporters consume it.

use std::time::Duration;

use crate::report::file::FileOutcome;
use crate::report::{Case, Report, StageReport};
use crate::stage_id::StageId;

#[derive(Debug, Clone)]
pub enum Event<'a> {
    ProjectRead {
        root: &'a str,
        layout: &'a str,
        migrations: usize,
        seeds: usize,
        mode: &'a str,
        /// Why this mode (`auto` resolved, or set in db-ci.yaml).
        mode_reason: &'a str,
        /// Files of the migrations folder not replayed, and why (the Supabase CLI skips them).
        skipped: &'a [(String, String)],
    },
    BackendReady {
        description: &'a str,
        duration: Duration,
    },
    ShimApplied {
        grants: &'a str,
        duration: Duration,
    },
    FileDone {
        pass: u8,
        outcome: &'a FileOutcome,
    },
    /// A stage with `total` checks to make has started (for progress bars).
    StageStarted {
        name: StageId,
        total: usize,
    },
    /// A check of a running stage begins (a property, an RLS file): the progress message names
    /// what is running rather than what last finished.
    CaseStarted {
        stage: StageId,
        name: &'a str,
    },
    /// One check of a running stage is done.
    CaseDone {
        stage: StageId,
        case: &'a Case,
    },
    StageDone(&'a StageReport),
    RunDone(&'a Report),
}

/// Something that turns events into output.
pub trait Reporter {
    fn event(&mut self, event: &Event<'_>);
}

/// Reporters that ignore everything: for library users who only want the [`Report`].
pub struct Silent;

impl Reporter for Silent {
    fn event(&mut self, _: &Event<'_>) {}
}
