//! The stage spine: what a stage after replay is (a [`Registration`] its folder submits:
//! `load` before any backend is touched, then `run` on the replayed database), what every
//! stage gets (the project, the run's options, the replayed database) and the loaded set of
//! stages a run or the gate sequences.

use futures_util::future::LocalBoxFuture;

use crate::backend::BackendOptions;
use crate::backend::Server;
use crate::error::Result;
use crate::policy_tests::PolicyFile;
use crate::project::Project;
use crate::report::events::Reporter;
use crate::report::StageReport;
use crate::stage_id::StageId;

/// What a stage reads before boot: the project (its `db-ci.yaml` sections already parsed)
/// and its policy-test files, parsed but checked only for what every stage shares.
pub struct Input<'a> {
    pub project: &'a Project,
    pub policy_files: &'a [PolicyFile],
    /// The stage being loaded is the only stage after replay the run selected (`db-ci
    /// pgtap`): a stage whose input problems would otherwise only fail it (so that the
    /// others still run) makes them exit 2 then, before anything boots.
    pub alone: bool,
}

/// A stage whose input was read and checked: what it runs once the database is replayed.
pub trait Loaded {
    fn run<'a>(
        &'a self,
        ctx: &'a StageContext<'a>,
        reporter: &'a mut dyn Reporter,
    ) -> LocalBoxFuture<'a, Result<StageReport>>;
}

/// A stage with nothing loaded of its own is its async function:
/// `load: |_| Ok(Box::new(stage))`.
impl<F> Loaded for F
where
    F: for<'a> AsyncFn(&'a StageContext<'a>, &'a mut dyn Reporter) -> Result<StageReport>,
{
    fn run<'a>(
        &'a self,
        ctx: &'a StageContext<'a>,
        reporter: &'a mut dyn Reporter,
    ) -> LocalBoxFuture<'a, Result<StageReport>> {
        Box::pin(self(ctx, reporter))
    }
}

/// One stage after replay, submitted from the stage's folder with
/// `inventory::submit!(Registration { id: StageId::Rls, load })`. Every
/// [`StageId::after_replay`] stage has exactly one (a test holds it); replay and idempotence
/// are the spine itself, and the gate is a command of its own.
pub struct Registration {
    pub id: StageId,
    /// Reads and checks what the stage will run: every problem it returns is an input error
    /// at `file:line:col`, found before any backend is touched.
    pub load: fn(&Input<'_>) -> Result<Box<dyn Loaded>>,
}

inventory::collect!(Registration);

/// The registration of `id`, when it has one.
fn registration(id: StageId) -> Option<&'static Registration> {
    inventory::iter::<Registration>
        .into_iter()
        .find(|registration| registration.id == id)
}

/// Every stage after replay, loaded: what `db-ci run` and the gate run on a replayed
/// database. Loading is all a run does before boot, so an input error anywhere is exit 2
/// with no backend started.
pub struct Stages {
    /// The project's policy-test files (the rls and properties stages' matrices).
    pub policy_files: Vec<PolicyFile>,
    loaded: Vec<(StageId, Box<dyn Loaded>)>,
}

impl Stages {
    pub fn load(project: &Project) -> Result<Stages> {
        Stages::load_selected(project, None)
    }

    /// Loads the stages `only` selects (all with `None`): a stage the run leaves out is not
    /// read at all, so its input problems do not stop `db-ci replay` or `db-ci lint`.
    pub fn load_selected(project: &Project, only: Option<&[StageId]>) -> Result<Stages> {
        let policy_files = crate::policy_tests::load(project)?;
        let selected: Vec<StageId> = StageId::after_replay()
            .filter(|id| only.is_none_or(|only| only.contains(id)))
            .collect();
        let mut loaded = Vec::new();
        for &id in &selected {
            let input = Input {
                project,
                policy_files: &policy_files,
                alone: selected == [id],
            };
            // Every stage after replay is registered (a test holds it): one that is not
            // would only be reported skipped by `run`.
            if let Some(registration) = registration(id) {
                loaded.push((id, (registration.load)(&input)?));
            }
        }
        Ok(Stages {
            policy_files,
            loaded,
        })
    }

    /// Runs stage `id` in `ctx`; `None` for a stage that is not loaded here.
    pub async fn run(
        &self,
        id: StageId,
        ctx: &StageContext<'_>,
        reporter: &mut dyn Reporter,
    ) -> Option<Result<StageReport>> {
        let (_, stage) = self.loaded.iter().find(|(loaded, _)| *loaded == id)?;
        Some(stage.run(ctx, reporter).await)
    }
}

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
    pub fail_on_lint: Option<crate::report::level::FailOn>,
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
    /// The run that checks what this very command just recorded (`init`'s last run): its
    /// unreviewed cells are reported and counted, not failed in CI. The next run fails them.
    pub just_recorded: bool,
    /// Who started the run: advice in messages names the CLI flag or the `Gate` method.
    pub caller: crate::caller::Caller,
    /// The files that changed the schema under test last (the gate's pending migrations): a
    /// lint finding on an object one of them changes points at it.
    pub changed_by: Vec<String>,
    /// The stages after replay one after another on the replayed database, none beside
    /// another (the benchmark compares every verdict of a run with this one's).
    pub sequential: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_after_replay_has_exactly_one_registration_and_no_other_stage_has_one() {
        for &id in <StageId as strum::VariantArray>::VARIANTS {
            let count = inventory::iter::<Registration>
                .into_iter()
                .filter(|registration| registration.id == id)
                .count();
            let expected = usize::from(StageId::after_replay().any(|stage| stage == id));
            assert_eq!(count, expected, "registrations of {id}");
        }
    }
}
