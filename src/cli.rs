//! Command-line arguments and what each command does, down to the exit code.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod sink;

use crate::backend::{BackendKind, BackendOptions, DEFAULT_IMAGE};
use crate::events::Reporter;
use crate::project::Project;
use crate::report::human::{ColorWhen, Human};
use crate::report::{Report, RunError, Verdict};
use crate::rls::record::Recording;
use crate::run::{run_keeping, RunOptions};
use crate::stage_id::StageId;
pub use sink::{Outcome, Ran};

#[derive(Debug, Parser)]
#[command(
    name = "db-ci",
    version,
    about = "Prove a Supabase-style PostgreSQL project is safe to ship"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every stage: replay, idempotence, and the stages built so far.
    Run(RunArgs),
    /// Replay migrations and seeds twice and check idempotence (the replay and idempotence
    /// stages only).
    Replay(RunArgs),
    /// Replay once, then run the RLS matrices (`--record` fills and updates expectations from
    /// what the database does; `--accept` applies a pending recording).
    Rls(RlsArgs),
    /// Replay once, then run the counter properties.
    Props(RunArgs),
    /// Replay once, then run the pgTAP test files (supabase/tests).
    Pgtap(RunArgs),
    /// Replay once, then compare the catalog with the committed snapshot.
    Snapshot(RunArgs),
    /// Replay once, then lint the catalog.
    Lint(RunArgs),
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
pub struct RlsArgs {
    /// Record what each cell observes where it has no expectation or contradicts its own,
    /// into `<matrix>.yaml.pending` beside each matrix for review (never in CI: there a
    /// recording is a failure). With `--accept`, into the matrices themselves.
    #[arg(long)]
    pub record: bool,
    /// Apply the pending recordings (`*.yaml.pending`) to their matrices and show what
    /// changed; with `--record`, write recordings straight into the matrices.
    #[arg(long)]
    pub accept: bool,
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
    /// Accept the new catalog snapshot: write it instead of failing on a difference.
    #[arg(long)]
    pub update_snapshot: bool,
    /// Fail the rls stage when fewer than this percentage of exposed (table, command) pairs
    /// have a cell.
    #[arg(long, value_name = "PERCENT")]
    pub min_coverage: Option<f64>,
    /// The lowest lint level that fails the run (overrides `lint.fail_level` in db-ci.yaml).
    #[arg(long, value_enum, value_name = "LEVEL", env = "DB_CI_FAIL_ON_LINT")]
    pub fail_on_lint: Option<crate::lint::FailOn>,
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
}

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
        Command::Rls(RlsArgs { run: args, .. })
        | Command::Init(InitArgs { run: args, .. })
        | Command::Run(args)
        | Command::Replay(args)
        | Command::Props(args)
        | Command::Pgtap(args)
        | Command::Snapshot(args)
        | Command::Lint(args) => {
            if let Some(url) = &args.database_url {
                crate::redact::register(url);
            }
        }
    }
    let outcome = match cli.command {
        Command::Run(args) => run_command(args, None, None).await,
        Command::Replay(args) => run_command(args, Some(vec![StageId::Idempotence]), None).await,
        Command::Rls(args) => match (args.record, args.accept) {
            (false, true) => accept_command(&args.run.dir),
            (record, accept) => {
                let recording = record.then_some(if accept {
                    Recording::Write
                } else {
                    Recording::Pending
                });
                run_command(args.run, Some(vec![StageId::Rls]), recording).await
            }
        },
        Command::Props(args) => run_command(args, Some(vec![StageId::Properties]), None).await,
        Command::Pgtap(args) => run_command(args, Some(vec![StageId::Pgtap]), None).await,
        Command::Snapshot(args) => run_command(args, Some(vec![StageId::Snapshot]), None).await,
        Command::Lint(args) => run_command(args, Some(vec![StageId::Lint]), None).await,
        Command::Drift(args) => drift_command(&args.dir, &args.against).await,
        Command::Gate(args) => gate_command(args).await,
        Command::Init(args) => init_command(args).await,
    };
    sink::finish(outcome).await
}

/// `db-ci init`: writes what init derives (or nothing, when it fails), then runs every stage
/// with it, as `db-ci run` with the same flags would, and exits as that run does.
async fn init_command(args: InitArgs) -> Outcome {
    let options = run_options(&args.run, None, None);
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
    let mut outcome = run_command_with(args.run, None, None, true).await;
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
fn run_options(
    args: &RunArgs,
    only: Option<Vec<StageId>>,
    record: Option<Recording>,
) -> RunOptions {
    RunOptions {
        backend: BackendOptions {
            kind: args.backend,
            image: args
                .image
                .clone()
                .unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
            database_url: args.database_url.clone(),
        },
        image_given: args.image.is_some(),
        any_server_version: args.any_server_version,
        seed: Some(
            args.seed
                .unwrap_or_else(|| u64::from(rand::random::<u32>())),
        ),
        update_snapshot: args.update_snapshot,
        min_coverage: args.min_coverage,
        fail_on_lint: args.fail_on_lint,
        only,
        record,
        just_recorded: false,
        caller: crate::caller::Caller::Cli,
        changed_by: Vec::new(),
        sequential: false,
    }
}

async fn run_command(
    args: RunArgs,
    only: Option<Vec<StageId>>,
    record: Option<Recording>,
) -> Outcome {
    run_command_with(args, only, record, false).await
}

/// A run from its flags; `just_recorded`: the check run of `init`, right after it recorded.
async fn run_command_with(
    args: RunArgs,
    only: Option<Vec<StageId>>,
    record: Option<Recording>,
    just_recorded: bool,
) -> Outcome {
    let project = match Project::find(&args.dir) {
        Ok(project) => project,
        Err(error) => return Outcome::Stopped(RunError::from_error(&error)),
    };
    let options = RunOptions {
        just_recorded,
        ..run_options(&args, only, record)
    };
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

/// `db-ci rls --accept`: applies the pending recordings and prints who can do what, changed.
fn accept_command(dir: &std::path::Path) -> Outcome {
    if crate::files::in_ci() {
        return Outcome::Stopped(RunError::from_error(&crate::error::Error::input(
            "accept recordings: accepting is off in CI (CI=true); accept locally and commit the matrices",
        )));
    }
    let accepted = Project::find(dir).and_then(|p| crate::rls::record::accept_pending(&p));
    match accepted {
        Ok(accepted) if accepted.is_empty() => Outcome::Answered {
            text: "Nothing to accept: no pending recording (`db-ci rls --record` writes them)"
                .to_owned(),
            verdict: Verdict::Pass,
        },
        Ok(accepted) => {
            let mut text = Vec::new();
            for file in accepted {
                text.push(format!(
                    "Accepted {} ({} change(s))",
                    file.rel,
                    file.changes.len()
                ));
                text.extend(file.changes.iter().map(|change| format!("  {change}")));
            }
            Outcome::Answered {
                text: text.join("\n"),
                verdict: Verdict::Pass,
            }
        }
        Err(error) => Outcome::Stopped(RunError::from_error(&error)),
    }
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
