//! `db-ci drift --against URL`: a live database that matches the committed snapshot exits 0,
//! one changed by hand exits 1 with the diff, the read leaves the database untouched, and the
//! password is never printed. The "live" database is a replay on a local server this test
//! starts itself.

mod common;

use db_ci::backend::{BackendKind, BackendOptions, Host};
use db_ci::idempotence::catalog::Fingerprint;
use db_ci::project::Project;
use db_ci::run::run_keeping;
use db_ci::stage::RunOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_detects_a_hand_made_change_and_never_writes() {
    if common::Backend::local().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/0001_notes.sql"),
        "create table public.notes (id bigint primary key, body text);\n\
         alter table public.notes enable row level security;\n\
         create policy \"read\" on public.notes for select to anon using (true);\n",
    )
    .unwrap();
    let project = Project::discover(dir.path()).unwrap();
    let options = RunOptions {
        backend: BackendOptions {
            kind: BackendKind::Local,
            ..Default::default()
        },
        only: Some(vec![]),
        ..Default::default()
    };
    let (_, replayed) = run_keeping(&project, &options, &mut db_ci::report::events::Silent).await;
    let replayed = replayed.expect("replayed");
    let client = replayed.server.connect(&replayed.database).await.unwrap();
    let yaml = db_ci::snapshot::catalog_yaml(&client, &project)
        .await
        .unwrap();
    std::fs::write(dir.path().join("db-ci.snapshot.yaml"), &yaml).unwrap();

    let Host::Socket(socket) = &replayed.server.connection.host else {
        panic!("local backend uses a socket")
    };
    let secret = "dr1ft-Secret";
    let url = format!(
        "postgres://postgres:{secret}@{}:{}/{}",
        socket.display().to_string().replace('/', "%2F"),
        replayed.server.connection.port,
        replayed.database
    );
    let drift = || {
        common::db_ci(&[
            "drift".into(),
            dir.path().display().to_string(),
            "--against".into(),
            url.clone(),
        ])
    };

    let before = Fingerprint::read(&client).await.unwrap();
    let same = drift();
    let out =
        String::from_utf8_lossy(&same.stdout).into_owned() + &String::from_utf8_lossy(&same.stderr);
    assert_eq!(same.status.code(), Some(0), "{out}");
    assert!(out.contains("no drift"), "{out}");
    assert!(!out.contains(secret), "password printed: {out}");
    assert_eq!(
        before,
        Fingerprint::read(&client).await.unwrap(),
        "drift wrote"
    );

    client
        .batch_execute("alter table public.notes disable row level security")
        .await
        .unwrap();
    let changed = drift();
    let out = String::from_utf8_lossy(&changed.stdout).into_owned()
        + &String::from_utf8_lossy(&changed.stderr);
    assert_eq!(changed.status.code(), Some(1), "{out}");
    assert!(out.contains("-    rls: true"), "{out}");
    assert!(out.contains("+    rls: false"), "{out}");
    assert!(!out.contains(secret), "password printed: {out}");

    // A missing snapshot is input (exit 2), not drift.
    std::fs::remove_file(dir.path().join("db-ci.snapshot.yaml")).unwrap();
    assert_eq!(drift().status.code(), Some(2));
    drop(client);
    replayed.server.shutdown().await;
}
