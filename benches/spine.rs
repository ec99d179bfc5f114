//! Prints the figures issue 2 asks for: local and container boot, the Polaris fixture end to
//! end on the local backend, and db-ci's two passes against psql running the same files twice.
//!
//! `cargo bench --bench spine` (set DB_CI_TEST_IMAGE to time the container backend).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use db_ci::backend::{BackendKind, BackendOptions, Host, Server};
use db_ci::project::Project;
use db_ci::report::events::Silent;
use db_ci::run::run;
use db_ci::stage::RunOptions;

mod common;
use common::{median, secs};

async fn boot(options: &BackendOptions, rounds: usize) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let server = Server::start(options).await.expect("backend starts");
        samples.push(started.elapsed());
        server.shutdown().await;
    }
    median(samples)
}

/// Runs the project's files through one psql session per pass, twice, on a fresh shimmed
/// database: the baseline db-ci's replay is compared with.
async fn psql_two_passes(project: &Project) -> Duration {
    let server = Server::start(&BackendOptions {
        kind: BackendKind::Local,
        ..Default::default()
    })
    .await
    .unwrap();
    let db = server.unique_name("psql");
    server.create_database(&db, None).await.unwrap();
    let client = server.connect(&db).await.unwrap();
    db_ci::shim::apply(&client, db_ci::shim::GrantMode::Classic)
        .await
        .unwrap();
    drop(client);
    let Host::Socket(socket) = &server.connection.host else {
        unreachable!()
    };
    let psql = common::psql();
    let mut total = Duration::ZERO;
    for _pass in 0..2 {
        let mut command = Command::new(&psql);
        command
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(socket)
            .args([
                "-p",
                &server.connection.port.to_string(),
                "-U",
                "postgres",
                "-d",
                &db,
            ]);
        for file in project.files() {
            command.arg("-f").arg(&file.path);
        }
        let started = Instant::now();
        let output = command.output().expect("run psql");
        total += started.elapsed();
        assert!(
            output.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    server.shutdown().await;
    total
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("spine benchmark: run it with `cargo bench --bench spine`");
        return;
    }
    // As a run starts it: from what db-ci keeps (the cache's shimmed cluster, the seed).
    let local = BackendOptions {
        kind: BackendKind::Local,
        shimmed: true,
        ..Default::default()
    };
    // The first boot fills the cache (initdb); the figure is for a cached cluster.
    let _ = boot(&local, 1).await;
    println!(
        "local backend boot, cached cluster (median of 7): {}",
        secs(boot(&local, 7).await)
    );

    match std::env::var("DB_CI_TEST_IMAGE") {
        Ok(image) => {
            let bare = BackendOptions {
                kind: BackendKind::Container,
                image: image.clone(),
                ..Default::default()
            };
            println!(
                "container backend boot, image {image}, without a seed (median of 3): {}",
                secs(boot(&bare, 3).await)
            );
            let seeded = BackendOptions {
                shimmed: true,
                ..bare
            };
            // An image's first start keeps nothing, its second keeps the seed.
            let _ = boot(&seeded, 2).await;
            println!(
                "container backend boot, image {image}, from its seed (median of 3): {}",
                secs(boot(&seeded, 3).await)
            );
        }
        Err(_) => println!("container backend boot: skipped (set DB_CI_TEST_IMAGE)"),
    }

    let polaris =
        Project::discover(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/polaris")).unwrap();
    let mut whole = Vec::new();
    let mut passes = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let report = run(
            &polaris,
            &RunOptions {
                backend: local.clone(),
                // What this figure is: boot, shim, both passes and their comparisons (the
                // fixture's policy tests find defects on purpose, a later stage's work).
                only: Some(vec![
                    db_ci::stage_id::StageId::Replay,
                    db_ci::stage_id::StageId::Idempotence,
                ]),
                ..RunOptions::default()
            },
            &mut Silent,
        )
        .await;
        whole.push(started.elapsed());
        assert_eq!(
            report.exit_code(),
            0,
            "polaris must replay twice with nothing changed: {:?}",
            report.stages
        );
        let stage_ms = |name| report.stage(name).map_or(0, |s| s.duration_ms);
        passes.push(Duration::from_millis(
            stage_ms(db_ci::stage_id::StageId::Replay)
                + stage_ms(db_ci::stage_id::StageId::Idempotence),
        ));
    }
    let files = polaris.files().count();
    println!(
        "polaris fixture ({files} files), boot + shim + both passes + comparisons, local (median of 5): {}",
        secs(median(whole))
    );
    let db_ci = median(passes);
    let mut psql = Vec::new();
    for _ in 0..5 {
        psql.push(psql_two_passes(&polaris).await);
    }
    let psql = median(psql);
    println!(
        "replay overhead: db-ci two passes + comparisons {} vs psql two passes {} = {:.2}x",
        secs(db_ci),
        secs(psql),
        db_ci.as_secs_f64() / psql.as_secs_f64()
    );
}
