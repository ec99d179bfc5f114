//! The properties stage end to end on the local backend: a reproducer is a script that shows
//! the violation when pasted into psql, and the same seed gives the same report byte for byte.

mod common;

use std::path::Path;

use db_ci::backend::{BackendKind, BackendOptions};
use db_ci::project::Project;
use db_ci::report::events::Silent;
use db_ci::run::run_keeping;
use db_ci::stage::RunOptions;
use db_ci::stage_id::StageId;

fn options(seed: u64) -> RunOptions {
    RunOptions {
        backend: BackendOptions {
            kind: BackendKind::Local,
            ..Default::default()
        },
        seed: Some(seed),
        only: Some(vec![StageId::Properties]),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reproducers_show_the_violation_in_a_fresh_session_and_seeds_replay_exactly() {
    if common::Backend::local().is_none() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/movie-app");
    let project = Project::discover(&root).unwrap();
    let (report, replayed) = run_keeping(&project, &options(11), &mut Silent).await;
    let replayed = replayed.expect("the project replays");
    let stage = report.stage(StageId::Properties).unwrap().clone();
    // follows (admin), follows (as users), mood cache.
    assert_eq!(stage.failures.len(), 3, "{stage:?}");
    for failure in &stage.failures {
        let script = failure.statement.as_deref().expect("a reproducer");
        assert!(script.starts_with("-- db-ci property"), "{script}");
        assert!(script.contains("--seed 11"), "{script}");
        // Pasted into a fresh session on the replayed database (what psql would do): the last
        // statement before `rollback` is the invariant, and it returns the violating rows.
        let client = replayed.server.connect(&replayed.database).await.unwrap();
        let messages = client.simple_query(script).await.expect("the script runs");
        let mut rows_per_statement = vec![0usize];
        for message in &messages {
            match message {
                tokio_postgres::SimpleQueryMessage::Row(_) => {
                    *rows_per_statement.last_mut().unwrap() += 1
                }
                tokio_postgres::SimpleQueryMessage::CommandComplete(_) => {
                    rows_per_statement.push(0)
                }
                _ => {}
            }
        }
        // [..., invariant rows, rollback (0), trailing 0]
        let invariant_rows = rows_per_statement[rows_per_statement.len() - 3];
        assert!(invariant_rows > 0, "no violating rows from:\n{script}");
    }
    replayed.server.shutdown().await;

    let (again, replayed) = run_keeping(&project, &options(11), &mut Silent).await;
    replayed.unwrap().server.shutdown().await;
    let again = again.stage(StageId::Properties).unwrap();
    assert_eq!(
        serde_json::to_string(&stage.failures).unwrap(),
        serde_json::to_string(&again.failures).unwrap(),
        "the same seed must give the same failures"
    );
}
