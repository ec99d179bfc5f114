//! The gate's rehearsal runs under the run's statement time limit, enforced from db-ci's
//! side: a pending migration that renames its session and catches every cancel still ends
//! at the limit, instead of holding the gate until it is killed.

mod common;

use std::time::{Duration, Instant};

use db_ci::backend::{BackendKind, BackendOptions};
use db_ci::project::Project;
use db_ci::run::run_keeping;
use db_ci::stage::RunOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_migration_cannot_outlast_the_limit_in_the_rehearsal() {
    if common::Backend::local().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("migrations")).unwrap();
    std::fs::write(
        root.join("db-ci.yaml"),
        "migrations: migrations\nreplay:\n  statement_timeout: 1s\n",
    )
    .unwrap();
    std::fs::write(
        root.join("migrations/0010_a.sql"),
        "create table public.a (id int primary key);\nalter table public.a enable row level security;\n",
    )
    .unwrap();
    // Production: the first migration applied through db-ci's ledger.
    let project = Project::discover(root).unwrap();
    let options = RunOptions {
        backend: BackendOptions {
            kind: BackendKind::Local,
            ..Default::default()
        },
        only: Some(vec![]),
        ..Default::default()
    };
    let (_, replayed) = run_keeping(&project, &options, &mut db_ci::report::events::Silent).await;
    let prod = replayed.expect("production replayed");
    let url = prod.server.connection.url(&prod.database);
    for (name, sql) in [
        (
            "clean",
            "create table public.b (id int primary key);\n\
             alter table public.b enable row level security;\n"
                .to_owned(),
        ),
        (
            "renamed, catching every cancel",
            "set application_name = 'restore job';\n\
             do $$ begin loop begin perform pg_sleep(600); \
             exception when query_canceled then null; end; end loop; end $$;\n"
                .to_owned(),
        ),
    ] {
        std::fs::write(root.join("migrations/0020_b.sql"), &sql).unwrap();
        let args: Vec<String> = [
            "gate",
            root.to_str().unwrap(),
            "--against",
            &url,
            "--backend",
            "local",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let started = Instant::now();
        let output =
            tokio::task::spawn_blocking(move || common::db_ci_with_env(&args, &[("CI", "true")]))
                .await
                .unwrap();
        let took = started.elapsed();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(
            took < Duration::from_secs(60),
            "{name}: took {took:?}\n{text}"
        );
        if name == "clean" {
            assert_eq!(output.status.code(), Some(0), "{name}: {text}");
        } else {
            assert_eq!(output.status.code(), Some(1), "{name}: {text}");
            assert!(text.contains("0020_b.sql:2"), "{name}: {text}");
            assert!(text.contains("statement timeout"), "{name}: {text}");
        }
    }
    prod.server.shutdown().await;
}
