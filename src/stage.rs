//! What every stage after replay gets: the project, the run's options (with how
//! `rls --record` keeps what it records), and the replayed database.

use crate::backend::BackendOptions;
use crate::backend::Server;
use crate::policy_tests::PolicyFile;
use crate::project::Project;
use crate::stage_id::StageId;

/// The context a stage runs in. The database holds the state after replay; a stage must leave
/// it as it found it (work in rolled-back transactions or on a `CREATE DATABASE … TEMPLATE`
/// clone of it) so that the stages after it see the same state.
pub struct StageContext<'a> {
    pub project: &'a Project,
    pub options: &'a RunOptions,
    pub server: &'a Server,
    pub database: &'a str,
    /// The project's policy-test files, read before boot (a bad one is exit 2 at once).
    pub policy_files: &'a [PolicyFile],
}

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub backend: BackendOptions,
    /// Printed for replay of property tests.
    pub seed: Option<u64>,
    /// Accept the new catalog snapshot (write it) instead of failing on a difference.
    pub update_snapshot: bool,
    /// Fail the rls stage below this coverage percentage (overrides the config).
    pub min_coverage: Option<f64>,
    /// The lowest lint level that fails the run (overrides `lint.fail_level`).
    pub fail_on_lint: Option<crate::config::lint::FailOn>,
    /// The stages after replay to run; `None` runs them all. Replay always runs (every other
    /// stage works on its result); a stage left out is reported skipped, "not selected".
    pub only: Option<Vec<StageId>>,
    /// The container image was given (`--image`/`DB_CI_IMAGE`): used as given, not re-tagged
    /// to the project's `[db] major_version`.
    pub image_given: bool,
    /// Run on a server of another major version than the project's `[db] major_version`.
    pub any_server_version: bool,
    /// `rls --record`: cells without an expectation, or contradicting theirs, record what
    /// they observe (never written in CI, where they fail).
    pub record: Option<Recording>,
}

impl RunOptions {
    pub(crate) fn selected(&self, stage: StageId) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| stage == StageId::Replay || only.contains(&stage))
    }
}

/// How recorded expectations are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// Beside each matrix as `<file>.pending`, for review (`rls --accept` applies it).
    Pending,
    /// Into the matrix itself (`rls --record --accept`).
    Write,
    /// Into matrices `db-ci init` just generated: written even in CI, where init is the
    /// command asked to write files and nothing reviewed is overwritten.
    Init,
}

impl Recording {
    /// Whether recordings are written at all: never in CI (`CI=true`), where a recording is
    /// a failure to record locally, except into matrices init is generating.
    pub fn writes(self) -> bool {
        self == Recording::Init || !crate::files::in_ci()
    }
}
