//! Command-line arguments and what each command does, down to the exit code.

use std::path::PathBuf;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Subcommand};

mod sink;

use crate::backend::{BackendKind, BackendOptions, DEFAULT_IMAGE};
use crate::project::Project;
use crate::report::events::Reporter;
use crate::report::human::{ColorWhen, Human};
use crate::report::{Report, RunError, Verdict};
use crate::run::run_keeping;
use crate::stage::RunOptions;
use crate::stage::StageOptions;
use crate::stage_id::StageId;
pub use sink::{Outcome, Ran};

/// The parsed command line. Its commands and flags are the fixed ones below plus what each
/// registered stage adds ([`crate::stage::StageCli`]): its flags on every command that runs
/// stages, its own command.
#[derive(Debug)]
pub struct Cli {
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every stage: replay, idempotence, and the stages built so far.
    Run(RunArgs),
    /// Replay migrations and seeds twice and check idempotence (the replay and idempotence
    /// stages only).
    Replay(RunArgs),
    /// A stage's own command (`db-ci rls`, `db-ci lint`…): replay once, then that stage.
    #[command(skip)]
    Stage(StageId, RunArgs),
    /// Compare a live database with the committed snapshot, read-only; exit 1 on drift.
    Drift(DriftArgs),
    /// Gate a release: rehearse production's pending migrations on a database shaped like it
    /// (read-only on production); exit 1 when applying them is not safe.
    Gate(GateArgs),
    /// Replay the project and write a db-ci.yaml tuned to it (mode, exposed schemas, seeds
    /// that need an exemption, flagged for review) and a matrix per exposed schema whose
    /// expectations are recorded from what the database does now, marked unreviewed.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// Production (read only, in a verified read-only session; TLS per sslmode/sslrootcert).
    #[arg(long, env = "DB_CI_GATE_URL", hide_env_values = true)]
    pub against: String,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Regenerate an existing db-ci.yaml and policy-tests/<schema>.yaml matrices.
    #[arg(long)]
    pub force: bool,
    /// Every flag of `run`: the backend init replays on, and the run with what it wrote.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The project directory (where the committed snapshot is).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The live database to read (never written to).
    #[arg(long, env = "DB_CI_DRIFT_URL", hide_env_values = true)]
    pub against: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where the throwaway PostgreSQL comes from.
    #[arg(long, value_enum, default_value_t = BackendKind::Auto, env = "DB_CI_BACKEND")]
    pub backend: BackendKind,
    /// Container image for the container backend (default: pgvector/pgvector:pgNN, NN the
    /// project's `[db] major_version`, else 17).
    #[arg(long, env = "DB_CI_IMAGE")]
    pub image: Option<String>,
    /// Run on a server of another major version than `supabase/config.toml`'s
    /// `[db] major_version` (otherwise exit 3).
    #[arg(long)]
    pub any_server_version: bool,
    /// A server you give db-ci (url backend): it creates and drops its own databases and
    /// the shim's cluster roles there (NOLOGIN), connected as the `postgres` superuser; the
    /// last run puts the server's roles back as found. Existing roles the shim would change
    /// are refused unless DB_CI_URL_ADOPT_ROLES=1.
    #[arg(long, env = "DB_CI_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Property-test seed (printed on every run, for replay).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print every file as it is applied, and findings below the fail level (lint warnings).
    #[arg(long, short)]
    pub verbose: bool,
    /// Colour the console: auto (a terminal or a GitHub Actions log, unless NO_COLOR is set;
    /// CLICOLOR_FORCE forces it), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// After the run, print a URL to the replayed database and keep it until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
    /// `run --only`: the stages to run (replay always runs); `None` runs them all.
    #[arg(skip)]
    pub only: Option<Vec<StageId>>,
    /// The registered stages' own flags, read by each stage's registration.
    #[arg(skip)]
    pub stages: StageOptions,
}

const ABOUT: &str = "Prove a Supabase-style PostgreSQL project is safe to ship";

impl CommandFactory for Cli {
    fn command() -> clap::Command {
        let root = clap::Command::new("db-ci")
            .version(env!("CARGO_PKG_VERSION"))
            .about(ABOUT)
            .subcommand_required(true)
            .arg_required_else_help(true);
        let mut root = Command::augment_subcommands(root);
        for (_, command) in crate::stage::commands() {
            let own = (command.args)(RunArgs::augment_args(
                clap::Command::new(command.name).about(command.about),
            ));
            root = root.subcommand(own);
        }
        root = root.mut_subcommand("run", |run| {
            run.arg(
                clap::Arg::new("only")
                    .long("only")
                    .value_name("STAGE")
                    .value_delimiter(',')
                    .action(clap::ArgAction::Append)
                    .value_parser(clap::builder::PossibleValuesParser::new(
                        StageId::run().map(StageId::as_str),
                    ))
                    .help(
                        "Run only these stages (comma-separated; replay always runs, the \
                         others are reported skipped)",
                    ),
            )
        });
        // Every command that runs stages takes every stage's flags.
        let mut running: Vec<&str> = vec!["run", "replay", "gate", "init"];
        running.extend(crate::stage::commands().map(|(_, command)| command.name));
        for name in &running {
            root = root.mut_subcommand(*name, |command| {
                crate::stage::clis().fold(command, |command, cli| (cli.flags)(command))
            });
        }
        // Help lists the stages' commands after `replay`, in stage order.
        let order = ["run", "replay"]
            .into_iter()
            .chain(crate::stage::commands().map(|(_, command)| command.name))
            .chain(["drift", "gate", "init"]);
        for (at, name) in order.enumerate() {
            root = root.mut_subcommand(name, |command| command.display_order(at));
        }
        root
    }

    fn command_for_update() -> clap::Command {
        Self::command()
    }
}

impl FromArgMatches for Cli {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Cli, clap::Error> {
        let Some((name, sub)) = matches.subcommand() else {
            return Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand));
        };
        let mut command = match crate::stage::commands().find(|(_, c)| c.name == name) {
            Some((id, _)) => Command::Stage(id, RunArgs::from_arg_matches(sub)?),
            None => Command::from_arg_matches(matches)?,
        };
        let run = match &mut command {
            Command::Run(run) | Command::Replay(run) | Command::Stage(_, run) => run,
            Command::Gate(GateArgs { run, .. }) | Command::Init(InitArgs { run, .. }) => run,
            Command::Drift(_) => return Ok(Cli { command }),
        };
        for cli in crate::stage::clis() {
            (cli.options)(sub, &mut run.stages);
        }
        run.only = sub
            .try_get_many::<String>("only")
            .ok()
            .flatten()
            .map(|names| {
                names
                    .filter_map(|name| StageId::run().find(|id| id.as_str() == name))
                    .collect()
            });
        Ok(Cli { command })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Cli::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Parser for Cli {}

/// Runs the parsed command; returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    // Before anything can print: every form of these passwords is masked in every output.
    match &cli.command {
        Command::Drift(args) => crate::redact::register(&args.against),
        Command::Gate(args) => {
            crate::redact::register(&args.against);
            if let Some(url) = &args.run.database_url {
                crate::redact::register(url);
            }
        }
        Command::Init(InitArgs { run: args, .. })
        | Command::Run(args)
        | Command::Replay(args)
        | Command::Stage(_, args) => {
            if let Some(url) = &args.database_url {
                crate::redact::register(url);
            }
        }
    }
    let outcome = match cli.command {
        Command::Run(args) => {
            let only = args.only.clone();
            run_command(args, only).await
        }
        Command::Replay(args) => run_command(args, Some(vec![StageId::Idempotence])).await,
        Command::Stage(id, args) => {
            let instead = crate::stage::commands()
                .find(|(stage, _)| *stage == id)
                .and_then(|(_, command)| command.instead);
            match instead.and_then(|instead| instead(&args.dir, &args.stages)) {
                Some(Ok(answer)) => Outcome::Answered {
                    text: answer.text,
                    verdict: answer.verdict,
                },
                Some(Err(error)) => Outcome::Stopped(RunError::from_error(&error)),
                None => run_command(args, Some(vec![id])).await,
            }
        }
        Command::Drift(args) => drift_command(&args.dir, &args.against).await,
        Command::Gate(args) => gate_command(args).await,
        Command::Init(args) => init_command(args).await,
    };
    sink::finish(outcome).await
}

/// `db-ci init`: writes what init derives (or nothing, when it fails), then runs every stage
/// with it, as `db-ci run` with the same flags would, and exits as that run does.
async fn init_command(args: InitArgs) -> Outcome {
    let options = run_options(&args.run, None);
    let mut human = Human::stdout_with(args.run.color);
    human.verbose = args.run.verbose;
    let writes = match crate::init::command(
        &args.run.dir,
        args.force,
        &options,
        &mut human as &mut dyn Reporter,
    )
    .await
    {
        Ok(writes) => writes,
        Err(failed) => return sink::init_failed(failed),
    };
    let written: Vec<String> = writes
        .written()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    // Its own recordings are reported unreviewed, not failed: the next run (CI) fails on them.
    let mut run = args.run;
    crate::init::checking_what_it_recorded(&mut run.stages);
    let mut outcome = run_command(run, None).await;
    if let Outcome::Ran(ran) = &mut outcome {
        ran.if_failed = Some(format!(
            "run with what init wrote ({}): it fails (see above); the files are kept, \
             since db-ci.yaml is where a finding is fixed or accepted",
            written.join(", ")
        ));
    }
    outcome
}

/// The options of a run from its flags.
fn run_options(args: &RunArgs, only: Option<Vec<StageId>>) -> RunOptions {
    RunOptions {
        backend: BackendOptions {
            kind: args.backend,
            image: args
                .image
                .clone()
                .unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
            database_url: args.database_url.clone(),
            // A run's server is started shimmed by `version::start`, whatever this says.
            ..BackendOptions::default()
        },
        image_given: args.image.is_some(),
        any_server_version: args.any_server_version,
        seed: Some(
            args.seed
                .unwrap_or_else(|| u64::from(rand::random::<u32>())),
        ),
        only,
        caller: crate::caller::Caller::Cli,
        changed_by: Vec::new(),
        sequential: false,
        stages: args.stages.clone(),
    }
}

/// A run from its flags.
async fn run_command(args: RunArgs, only: Option<Vec<StageId>>) -> Outcome {
    let project = match Project::find(&args.dir) {
        Ok(project) => project,
        Err(error) => return Outcome::Stopped(RunError::from_error(&error)),
    };
    let options = run_options(&args, only);
    let mut human = Human::stdout_with(args.color);
    human.verbose = args.verbose;
    let (report, replayed): (Report, _) =
        run_keeping(&project, &options, &mut human as &mut dyn Reporter).await;
    let mut after = crate::init::unconfirmed_exemptions(&project);
    after.extend(crate::init::next_step_hint(&project));
    Outcome::Ran(Box::new(Ran {
        report,
        json: args.json,
        junit: args.junit,
        after,
        if_failed: None,
        replayed,
        keep: args.keep,
    }))
}

/// `db-ci drift`: the live database against the committed snapshot.
async fn drift_command(dir: &std::path::Path, against: &str) -> Outcome {
    use crate::snapshot::drift::{check, Drift};
    let shown = crate::backend::url::redact_url(against);
    match check(dir, against).await {
        Ok(Drift::None) => Outcome::Answered {
            text: format!("no drift: {shown} matches the committed snapshot"),
            verdict: Verdict::Pass,
        },
        Ok(Drift::Found(diff)) => Outcome::Answered {
            text: format!(
                "drift: {shown} differs from the committed snapshot (- committed, + live):\n{diff}"
            ),
            verdict: Verdict::Fail,
        },
        Err(error) => Outcome::Stopped(RunError::from_error(&error)),
    }
}

async fn gate_command(args: GateArgs) -> Outcome {
    let project = match Project::find(&args.run.dir) {
        Ok(project) => project,
        Err(error) => return Outcome::Stopped(RunError::from_error(&error)),
    };
    let options = crate::gate::GateOptions {
        backend: BackendOptions {
            kind: args.run.backend,
            image: args
                .run
                .image
                .clone()
                .unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
            database_url: args.run.database_url,
            ..BackendOptions::default()
        },
        against: args.against,
        image_given: args.run.image.is_some(),
    };
    let mut human = Human::stdout_with(args.run.color);
    human.verbose = args.run.verbose;
    let report = crate::gate::gate(&project, &options, &mut human as &mut dyn Reporter).await;
    Outcome::Ran(Box::new(Ran {
        report,
        json: args.run.json,
        junit: args.run.junit,
        after: Vec::new(),
        if_failed: None,
        replayed: None,
        keep: false,
    }))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(args).unwrap().command
    }

    #[test]
    fn a_stages_command_and_flags_come_from_its_registration() {
        Cli::command().debug_assert();
        let Command::Stage(id, args) =
            parse(&["db-ci", "rls", "p", "--record", "--min-coverage", "50"])
        else {
            panic!("rls is a stage's command");
        };
        assert_eq!(id, StageId::Rls);
        let rls = args.stages.get::<crate::rls::RlsOptions>();
        assert_eq!(rls.min_coverage, Some(50.0));
        assert_eq!(rls.record, Some(crate::rls::record::Recording::Pending));
        // A stage's flag is on every command that runs stages; its own command's are not.
        let Command::Gate(gate) = parse(&["db-ci", "gate", "--against", "x", "--update-snapshot"])
        else {
            panic!("gate");
        };
        assert!(
            gate.run
                .stages
                .get::<crate::snapshot::SnapshotOptions>()
                .update
        );
        assert!(Cli::try_parse_from(["db-ci", "run", "--record"]).is_err());
        let Command::Stage(id, _) = parse(&["db-ci", "props"]) else {
            panic!("props");
        };
        assert_eq!(id, StageId::Properties);
    }

    #[test]
    fn run_only_takes_stages_of_the_run_comma_separated() {
        let Command::Run(args) = parse(&["db-ci", "run", "--only", "rls,lint", "--only", "pgtap"])
        else {
            panic!("run");
        };
        assert_eq!(
            args.only,
            Some(vec![StageId::Rls, StageId::Lint, StageId::Pgtap])
        );
        let Command::Run(args) = parse(&["db-ci", "run"]) else {
            panic!("run");
        };
        assert_eq!(args.only, None);
        assert!(Cli::try_parse_from(["db-ci", "run", "--only", "gate"]).is_err());
        assert!(Cli::try_parse_from(["db-ci", "lint", "--only", "rls"]).is_err());
    }
}
