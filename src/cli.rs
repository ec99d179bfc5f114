//! Command-line arguments and what each command does, down to the exit code.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend::{BackendKind, BackendOptions, DEFAULT_IMAGE};
use crate::error::exit;
use crate::project::Project;
use crate::report::events::Reporter;
use crate::report::human::{ColorWhen, Human};
use crate::report::{github, json, junit, Report};
use crate::run::run_keeping;
use crate::stage::{Recording, RunOptions};
use crate::stage_id::StageId;

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
    pub fail_on_lint: Option<crate::report::level::FailOn>,
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
    match cli.command {
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
        Command::Drift(args) => crate::snapshot::drift_command(&args.dir, &args.against).await,
        Command::Gate(args) => gate_command(args).await,
        Command::Init(args) => init_command(args).await,
    }
}

/// `db-ci init`: writes what init derives (or nothing, when it fails), then runs every stage
/// with it, as `db-ci run` with the same flags would, and exits as that run does.
async fn init_command(args: InitArgs) -> i32 {
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
        Err(code) => return code,
    };
    let written: Vec<String> = writes
        .written()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    // Its own recordings are reported unreviewed, not failed: the next run (CI) fails on them.
    let code = run_command_with(args.run, None, None, true).await;
    if code != exit::PASS {
        eprintln!(
            "error: run with what init wrote ({}): it fails (see above); the files are kept, \
             since db-ci.yaml is where a finding is fixed or accepted",
            written.join(", ")
        );
    }
    code
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

async fn run_command(args: RunArgs, only: Option<Vec<StageId>>, record: Option<Recording>) -> i32 {
    run_command_with(args, only, record, false).await
}

/// A run from its flags; `just_recorded`: the check run of `init`, right after it recorded.
async fn run_command_with(
    args: RunArgs,
    only: Option<Vec<StageId>>,
    record: Option<Recording>,
    just_recorded: bool,
) -> i32 {
    let project = match Project::find(&args.dir) {
        Ok(project) => project,
        Err(error) => {
            eprintln!("error: {}", crate::redact::scrub(&error.render()));
            let kind = if error.exit_code() == exit::INPUT {
                "input"
            } else {
                "environment"
            };
            let message = error.to_string();
            github_output(
                || github::error_annotation(kind, &message, &github::Paths::from_env(), None),
                || github::error_summary(kind, &message),
            );
            return error.exit_code();
        }
    };
    let options = RunOptions {
        just_recorded,
        ..run_options(&args, only, record)
    };
    let mut human = Human::stdout_with(args.color);
    human.verbose = args.verbose;
    let (report, replayed): (Report, _) =
        run_keeping(&project, &options, &mut human as &mut dyn Reporter).await;
    if let Some(error) = &report.error {
        let message = crate::report::escape_controls(&error.message);
        eprintln!("error: {}", crate::redact::scrub(&message));
    }
    let mut code = report.exit_code();
    if let Some(path) = &args.json {
        if let Err(e) = json::write(&report, path) {
            eprintln!("error: write the JSON report {}: {e}", path.display());
            code = code.max(exit::ENVIRONMENT);
        }
    }
    if let Some(path) = &args.junit {
        if let Err(e) = junit::write(&report, path) {
            eprintln!("error: write the JUnit report {}: {e}", path.display());
            code = code.max(exit::ENVIRONMENT);
        }
    }
    github_output(
        || github::annotations(&report, &github::Paths::from_env()),
        || github::summary(&report),
    );
    for line in crate::init::unconfirmed_exemptions(&project) {
        println!("{line}");
    }
    if let Some(hint) = crate::init::next_step_hint(&project) {
        println!("{hint}");
    }
    if let Some(replayed) = replayed {
        if args.keep {
            crate::keep::hold_verdict(code);
            replayed.keep().await;
        } else {
            replayed.server.shutdown().await;
        }
    }
    code
}

/// `db-ci rls --accept`: applies the pending recordings and prints who can do what, changed.
fn accept_command(dir: &std::path::Path) -> i32 {
    if crate::files::in_ci() {
        eprintln!(
            "error: accept recordings: accepting is off in CI (CI=true); accept locally and commit the matrices"
        );
        return exit::INPUT;
    }
    let accepted = Project::find(dir).and_then(|p| crate::rls::record::accept_pending(&p));
    match accepted {
        Ok(accepted) if accepted.is_empty() => {
            println!("Nothing to accept: no pending recording (`db-ci rls --record` writes them)");
            exit::PASS
        }
        Ok(accepted) => {
            for file in accepted {
                println!("Accepted {} ({} change(s))", file.rel, file.changes.len());
                for change in file.changes {
                    println!("  {}", crate::report::escape_controls(&change));
                }
            }
            exit::PASS
        }
        Err(error) => {
            eprintln!("error: {}", error.render());
            error.exit_code()
        }
    }
}

/// On GitHub Actions: prints the annotations and appends the job summary.
fn github_output(annotations: impl FnOnce() -> String, summary: impl FnOnce() -> String) {
    if std::env::var_os("GITHUB_ACTIONS").is_none_or(|v| v != "true") {
        return;
    }
    print!("{}", crate::redact::scrub(&annotations()));
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                let summary = crate::redact::scrub(&summary()).into_owned();
                std::io::Write::write_all(&mut file, summary.as_bytes())
            });
        if let Err(e) = appended {
            eprintln!("error: write the job summary: {e}");
        }
    }
}

async fn gate_command(args: GateArgs) -> i32 {
    let project = match Project::find(&args.run.dir) {
        Ok(project) => project,
        Err(error) => {
            eprintln!("error: {}", error.render());
            return error.exit_code();
        }
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
    if let Some(error) = &report.error {
        eprintln!("error: {}", crate::report::escape_controls(&error.message));
    }
    let mut code = report.exit_code();
    if let Some(path) = &args.run.json {
        if let Err(e) = json::write(&report, path) {
            eprintln!("error: write the JSON report {}: {e}", path.display());
            code = code.max(exit::ENVIRONMENT);
        }
    }
    if let Some(path) = &args.run.junit {
        if let Err(e) = junit::write(&report, path) {
            eprintln!("error: write the JUnit report {}: {e}", path.display());
            code = code.max(exit::ENVIRONMENT);
        }
    }
    github_output(
        || github::annotations(&report, &github::Paths::from_env()),
        || github::summary(&report),
    );
    code
}
