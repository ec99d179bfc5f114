//! The stage spine: what a stage after replay is (a [`Registration`] its folder submits:
//! `load` before any backend is touched, then `run` on the replayed database), what every
//! stage gets (the project, the run's options, the replayed database) and the loaded set of
//! stages a run or the gate sequences.

use std::any::Any;
use std::sync::Arc;

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
/// `inventory::submit!(Registration { id: StageId::Rls, load, on_rehearsal, cli })`. Every
/// [`StageId::after_replay`] stage has exactly one (a test holds it); replay and idempotence
/// are the spine itself, and the gate is a command of its own.
pub struct Registration {
    pub id: StageId,
    /// Reads and checks what the stage will run: every problem it returns is an input error
    /// at `file:line:col`, found before any backend is touched.
    pub load: fn(&Input<'_>) -> Result<Box<dyn Loaded>>,
    /// The gate runs it on its rehearsal too, after production's pending migrations: what a
    /// release changes in who may read and write what.
    pub on_rehearsal: bool,
    /// Its flags and its own command.
    pub cli: StageCli,
}

inventory::collect!(Registration);

/// A stage's command-line surface: the CLI is built from these, so no stage is named there.
pub struct StageCli {
    /// Adds the stage's flags to every command that runs stages (`run`, `init`, `gate` and
    /// each stage's own command).
    pub flags: fn(clap::Command) -> clap::Command,
    /// Reads its flags (and its own command's) from the parsed command into its typed
    /// options; an argument the command does not define reads as absent.
    pub options: fn(&clap::ArgMatches, &mut StageOptions),
    /// Its own command (`db-ci rls`): replay once, then this stage.
    pub command: Option<StageCommand>,
}

impl StageCli {
    /// No flag, no command of its own.
    pub const NONE: StageCli = StageCli {
        flags: |command| command,
        options: |_, _| {},
        command: None,
    };
}

/// A stage's own command: `db-ci <name> [DIR]` with every flag of `run`.
pub struct StageCommand {
    pub name: &'static str,
    /// Its one-line help.
    pub about: &'static str,
    /// Flags only this command takes (`rls --record`).
    pub args: fn(clap::Command) -> clap::Command,
    /// What the command does instead of a run when its flags ask for something else (`rls
    /// --accept` applies recordings): its answer, or `None` to run. The CLI prints it.
    pub instead: Option<Instead>,
}

/// A stage command's alternative to a run: given the project directory and the options, its
/// answer, or `None` to run.
pub type Instead = fn(&std::path::Path, &StageOptions) -> Option<Result<Answer>>;

/// What a stage's command answers instead of a run: text for the console, and its verdict.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    pub verdict: crate::report::Verdict,
}

impl StageCommand {
    /// A command with no flag of its own that always runs.
    pub const fn plain(name: &'static str, about: &'static str) -> StageCommand {
        StageCommand {
            name,
            about,
            args: |command| command,
            instead: None,
        }
    }
}

/// The registered stages' own commands, in stage order.
pub fn commands() -> impl Iterator<Item = (StageId, &'static StageCommand)> {
    StageId::after_replay().filter_map(|id| {
        registration(id)
            .and_then(|registration| registration.cli.command.as_ref())
            .map(|command| (id, command))
    })
}

/// Every registered stage's CLI surface, in stage order.
pub fn clis() -> impl Iterator<Item = &'static StageCli> {
    StageId::after_replay().filter_map(|id| registration(id).map(|r| &r.cli))
}

/// The stages the gate runs on its rehearsal, in stage order.
pub fn on_rehearsal() -> impl Iterator<Item = StageId> {
    StageId::after_replay().filter(|&id| registration(id).is_some_and(|r| r.on_rehearsal))
}

/// One stage's typed options in a run's [`StageOptions`].
pub trait StageOption: Any + std::fmt::Debug + Send + Sync {}

impl<T: Any + std::fmt::Debug + Send + Sync> StageOption for T {}

/// The stages' own options, one typed value per stage (`rls::RlsOptions`…), each read by
/// its stage with [`StageOptions::get`]; an absent one is its type's `Default`.
#[derive(Debug, Clone, Default)]
pub struct StageOptions(Vec<Arc<dyn StageOption>>);

impl StageOptions {
    /// The options of type `T`, or `T::default()` when none were set.
    pub fn get<T: StageOption + Clone + Default>(&self) -> T {
        self.find::<T>().cloned().unwrap_or_default()
    }

    fn find<T: StageOption>(&self) -> Option<&T> {
        self.0
            .iter()
            .find_map(|option| (option.as_ref() as &dyn Any).downcast_ref::<T>())
    }

    /// Sets the options of type `T`, replacing any.
    pub fn set<T: StageOption>(&mut self, value: T) {
        self.0
            .retain(|option| !(option.as_ref() as &dyn Any).is::<T>());
        self.0.push(Arc::new(value));
    }

    /// Changes the options of type `T` (from their default when none were set).
    pub fn edit<T: StageOption + Clone + Default>(&mut self, change: impl FnOnce(&mut T)) {
        let mut value = self.get::<T>();
        change(&mut value);
        self.set(value);
    }
}

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
    /// The properties stage's seed, printed in every report (for replay of property tests).
    pub seed: Option<u64>,
    /// The stages after replay to run; `None` runs them all. Replay always runs (every other
    /// stage works on its result); a stage left out is reported skipped, "not selected".
    pub only: Option<Vec<StageId>>,
    /// The container image was given (`--image`/`DB_CI_IMAGE`): used as given, not re-tagged
    /// to the project's `[db] major_version`.
    pub image_given: bool,
    /// Run on a server of another major version than the project's `[db] major_version`.
    pub any_server_version: bool,
    /// Who started the run: advice in messages names the CLI flag or the `Gate` method.
    pub caller: crate::caller::Caller,
    /// The files that changed the schema under test last (the gate's pending migrations): a
    /// lint finding on an object one of them changes points at it.
    pub changed_by: Vec<String>,
    /// The stages after replay one after another on the replayed database, none beside
    /// another (the benchmark compares every verdict of a run with this one's).
    pub sequential: bool,
    /// Each stage's own options (its flags, the library's setters), typed in its folder.
    pub stages: StageOptions,
}

impl RunOptions {
    pub(crate) fn selected(&self, stage: StageId) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| stage == StageId::Replay || only.contains(&stage))
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

    #[test]
    fn the_stages_flags_and_commands_fit_together_and_read_back_absent_as_defaults() {
        // Every stage's flags on one command: clap's own check fails on a flag two stages
        // define, or a malformed one.
        let all = clis().fold(clap::Command::new("run"), |command, cli| {
            (cli.flags)(command)
        });
        all.clone().debug_assert();
        // A command without any of them (`drift`'s shape) reads every stage's options as
        // absent instead of panicking.
        let bare = clap::Command::new("bare").get_matches_from(["bare"]);
        let mut options = StageOptions::default();
        for cli in clis() {
            (cli.options)(&bare, &mut options);
        }
        // Each stage's own command: a unique name, none of the fixed commands', with every
        // stage's flags beside its own.
        let mut names: Vec<&str> = Vec::new();
        for (id, command) in commands() {
            assert!(
                !["run", "replay", "drift", "gate", "init", "help"].contains(&command.name),
                "{id}'s command `{}` is a fixed command",
                command.name
            );
            assert!(
                !names.contains(&command.name),
                "two stages' command `{}`",
                command.name
            );
            names.push(command.name);
            let own = clis().fold(
                (command.args)(clap::Command::new(command.name)),
                |command, cli| (cli.flags)(command),
            );
            own.debug_assert();
        }
        assert!(!names.is_empty());
    }

    #[test]
    fn the_gates_rehearsal_stages_are_the_registrations_that_ask_for_it() {
        let rehearsal: Vec<StageId> = on_rehearsal().collect();
        let asked: Vec<StageId> = StageId::after_replay()
            .filter(|&id| registration(id).is_some_and(|r| r.on_rehearsal))
            .collect();
        assert_eq!(rehearsal, asked);
        assert!(!rehearsal.is_empty());
        assert!(rehearsal
            .iter()
            .all(|id| StageId::after_replay().any(|s| s == *id)));
    }

    #[test]
    fn stage_options_are_typed_and_default_when_unset() {
        #[derive(Debug, Clone, Default, PartialEq)]
        struct Mine {
            level: u8,
        }
        let mut options = StageOptions::default();
        assert_eq!(options.get::<Mine>(), Mine::default());
        options.set(Mine { level: 2 });
        options.edit(|mine: &mut Mine| mine.level += 1);
        assert_eq!(options.get::<Mine>(), Mine { level: 3 });
        assert_eq!(options.0.len(), 1);
    }
}
