//! Prints the figures issue 4 asks for: operation steps per second of one worker, and the time
//! of 4 properties × 256 cases, on the local backend with the fixed seed-project twins.
//!
//! `cargo bench --bench props`

use std::path::Path;
use std::time::Instant;

use db_ci::backend::{BackendKind, BackendOptions};
use db_ci::project::Project;
use db_ci::report::events::Silent;
use db_ci::run::run_keeping;
use db_ci::stage::{RunOptions, StageContext};

/// Twins whose properties all hold, so every case runs to its end (no early stop at a failure).
/// The first three hold exactly 4 properties of 256 cases.
const FOUR_PROPERTIES: &[&str] = &[
    "pass-props-magna-vote-tallies-fixed",
    "pass-props-movie-app-follow-counts-fixed",
    "pass-props-bondhu-genre-preferences-fixed",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo test --all-targets` runs bench binaries too: the figures only on `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("props benchmark: run it with `cargo bench --bench props`");
        return;
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut total_seconds = 0.0;
    let mut total_properties = 0;
    let mut total_cases = 0;
    let mut total_steps = 0;
    println!("properties stage, local backend, seed 7, one worker");
    for name in FOUR_PROPERTIES {
        let project = Project::discover(&fixtures.join(name)).expect("fixture reads");
        let options = RunOptions {
            backend: BackendOptions {
                kind: BackendKind::Local,
                ..Default::default()
            },
            seed: Some(7),
            only: Some(Vec::new()),
            ..Default::default()
        };
        let (_, replayed) = run_keeping(&project, &options, &mut Silent).await;
        let replayed = replayed.expect("the fixture replays");
        let policy_files = db_ci::stage::Stages::load(&project)
            .expect("policy tests read")
            .policy_files;
        let ctx = StageContext {
            project: &project,
            options: &options,
            server: &replayed.server,
            database: &replayed.database,
            policy_files: &policy_files,
        };
        let started = Instant::now();
        let (stage, tally) = db_ci::props::stage_with_tally(&ctx, &mut Silent)
            .await
            .expect("the stage runs");
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "  {name}: {:?}, {} properties, {} cases, {} steps in {seconds:.2} s = {:.0} steps/s",
            stage.verdict,
            tally.properties,
            tally.cases,
            tally.executed,
            tally.executed as f64 / seconds
        );
        total_seconds += seconds;
        total_properties += tally.properties;
        total_cases += tally.cases;
        total_steps += tally.executed;
        replayed.server.shutdown().await;
    }
    println!(
        "{total_properties} properties × {} cases: {total_seconds:.2} s (target ≤ 10 s)",
        total_cases / total_properties.max(1) as u64
    );
    println!(
        "steps per second per worker: {:.0} (target ≥ 500)",
        total_steps as f64 / total_seconds
    );
}
