//! Command-line arguments and what each command does, down to the exit code.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend::{BackendKind, BackendOptions, DEFAULT_IMAGE};
use crate::error::exit;
use crate::events::Reporter;
use crate::project::Project;
use crate::report::{human::Human, json, Report};
use crate::run::{run, RunOptions};

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
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where the throwaway PostgreSQL comes from.
    #[arg(long, value_enum, default_value_t = BackendKind::Auto, env = "DB_CI_BACKEND")]
    pub backend: BackendKind,
    /// Container image for the container backend.
    #[arg(long, default_value = DEFAULT_IMAGE, env = "DB_CI_IMAGE")]
    pub image: String,
    /// A server on which db-ci creates and drops its own databases (url backend).
    #[arg(long, env = "DB_CI_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Property-test seed (printed on every run, for replay).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print every file as it is applied.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Runs the parsed command; returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    match cli.command {
        Command::Run(args) | Command::Replay(args) => run_command(args).await,
    }
}

async fn run_command(args: RunArgs) -> i32 {
    let project = match Project::discover(&args.dir) {
        Ok(project) => project,
        Err(error) => {
            eprintln!("error: {}", error.render());
            return error.exit_code();
        }
    };
    let options = RunOptions {
        backend: BackendOptions {
            kind: args.backend,
            image: args.image,
            database_url: args.database_url,
        },
        seed: Some(
            args.seed
                .unwrap_or_else(|| u64::from(rand::random::<u32>())),
        ),
    };
    let mut human = Human::stdout();
    human.verbose = args.verbose;
    let report: Report = run(&project, &options, &mut human as &mut dyn Reporter).await;
    if let Some(error) = &report.error {
        eprintln!("error: {}", error.message);
    }
    if let Some(path) = &args.json {
        if let Err(e) = json::write(&report, path) {
            eprintln!("error: write the JSON report {}: {e}", path.display());
            return exit::ENVIRONMENT.max(report.exit_code());
        }
    }
    report.exit_code()
}
