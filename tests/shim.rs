//! The platform shim on every available backend: it applies twice without change, in both
//! grant modes, on a server that already got it in another database, and every assertion
//! script in tests/shim_sql passes.

mod common;

use db_ci::backend::{BackendKind, BackendOptions, Server};
use db_ci::idempotence::catalog::Fingerprint;
use db_ci::shim::{self, GrantMode};

fn scripts(mode: GrantMode) -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shim_sql");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql") && mode.includes(name))
        .map(|name| {
            let text = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/shim_sql")
                    .join(&name),
            )
            .unwrap();
            (name, text)
        })
        .collect();
    files.sort();
    files
}

async fn check_backend(options: BackendOptions) {
    let server = Server::start(&options).await.expect("backend starts");
    let mut failures = Vec::new();
    for mode in [GrantMode::Classic, GrantMode::NoExpose] {
        let db = server.unique_name("shim");
        server.create_database(&db, None).await.unwrap();
        let client = server.connect(&db).await.unwrap();
        shim::apply(&client, mode).await.expect("shim applies");
        let first = Fingerprint::read(&client).await.unwrap();
        shim::apply(&client, mode)
            .await
            .expect("shim applies a second time");
        let second = Fingerprint::read(&client).await.unwrap();
        let changes = first.diff(&second);
        assert!(
            changes.is_empty(),
            "{mode:?}: the shim is not idempotent: {changes:#?}"
        );
        assert!(first
            .objects
            .keys()
            .any(|k| k.starts_with("function auth.uid")));
        drop(client);
        let ran = scripts(mode);
        assert!(
            ran.len() >= 5,
            "expected the shim assertion scripts, found {}",
            ran.len()
        );
        for (name, sql) in ran {
            // A fresh connection per script: no state leaks from one to the next.
            let client = server.connect(&db).await.unwrap();
            if let Err(e) = client.batch_execute(&sql).await {
                let db_error = e
                    .as_db_error()
                    .map(|d| format!("{} ({})", d.message(), d.where_().unwrap_or_default()));
                failures.push(format!(
                    "{mode:?} {name}: {}",
                    db_error.unwrap_or_else(|| e.to_string())
                ));
            }
        }
    }
    server.shutdown().await;
    assert!(
        failures.is_empty(),
        "shim assertions failed:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_on_local_backend() {
    if common::Backend::local().is_none() {
        return;
    }
    check_backend(BackendOptions {
        kind: BackendKind::Local,
        ..Default::default()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shim_on_container_backend() {
    if common::Backend::container().is_none() {
        return;
    }
    check_backend(BackendOptions {
        kind: BackendKind::Container,
        image: common::container_image(),
        ..Default::default()
    })
    .await;
}
