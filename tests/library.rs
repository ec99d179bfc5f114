//! The library API as a user's `cargo test` uses it (`db_ci::testing`): a passing project
//! with the replayed database queried through tokio-postgres and (with the `sqlx` feature) a
//! `PgPool`, its catalog through insta, and a failing project whose assertion panics with the console's failure text.

mod common;

use std::path::PathBuf;

use db_ci::backend::BackendKind;
use db_ci::report::StageVerdict;
use db_ci::testing::Gate;
use db_ci::StageId;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The local backend (fast to boot), or a loud skip where this machine has none.
fn gate(name: &str) -> Option<Gate> {
    common::Backend::local()?;
    Some(Gate::new(fixture(name)).backend(BackendKind::Local).seed(7))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_project_and_its_replayed_database() {
    let Some(gate) = gate("pass-minimal") else {
        return;
    };
    let checked = gate.run().await.expect("read the project");
    checked.assert_pass();
    checked.assert_stage(StageId::Replay, StageVerdict::Pass);
    checked.assert_stage(StageId::Idempotence, StageVerdict::Pass);
    assert_eq!(checked.report().seed, Some(7));

    let client = checked
        .client()
        .await
        .expect("connect to the replayed database");
    let row = client
        .query_one("select text from greetings where id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "hello");
    // The Supabase shim is there too: a user's test can impersonate as db-ci does.
    let row = client
        .query_one(
            "select count(*) from pg_roles where rolname = 'authenticated'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);

    #[cfg(feature = "sqlx")]
    {
        let pool = checked.pg_pool().await.expect("a sqlx pool");
        let text: String = sqlx::query_scalar("select text from greetings where id = $1")
            .bind(1_i32)
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(text, "hello");
        // The same pool again: made once, shared.
        assert!(std::ptr::eq(pool, checked.pg_pool().await.unwrap()));
    }
    // The catalog through insta, exactly the text of the committed db-ci.snapshot.yaml.
    let catalog = checked.catalog_yaml().await.expect("render the catalog");
    insta::assert_snapshot!("pass_minimal_catalog", catalog);
    assert_eq!(
        catalog,
        std::fs::read_to_string(fixture("pass-minimal").join("db-ci.snapshot.yaml")).unwrap()
    );
    drop(client);
    checked.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_project_panics_with_the_console_failure_text() {
    let Some(gate) = gate("fail-syntax-error") else {
        return;
    };
    let checked = gate.run().await.expect("read the project");
    checked.assert_fail();
    checked.assert_stage(StageId::Replay, StageVerdict::Fail);
    checked.assert_stage(StageId::Idempotence, StageVerdict::Skipped);
    checked.assert_failure_at(StageId::Replay, "migrations/0002_add_title.sql", 7);

    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| checked.assert_pass()))
        .expect_err("assert_pass panics on a failing project");
    let message = panic
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains(&checked.failure_text()),
        "panic message:\n{message}"
    );
    assert!(
        message.contains("migrations/0002_add_title.sql:7:"),
        "panic message:\n{message}"
    );
    assert!(message.contains("syntax error at or near \"tabel\""));
    assert!(message.contains("Summary ["));
    checked.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_project_is_an_error_not_a_report() {
    let error = match Gate::new(fixture("input-duplicate-version")).run().await {
        Ok(_) => panic!("a duplicate version must not give a report"),
        Err(error) => error,
    };
    assert_eq!(error.exit_code(), db_ci::error::exit::INPUT);
}

/// `only` selects stages by type: the selected one runs (and here fails, as the project is
/// wrong), replay runs because every stage needs it, the rest are reported skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_runs_the_selected_stage_and_reports_the_rest_skipped() {
    let Some(gate) = gate("fail-rls-using-true-leak") else {
        return;
    };
    let checked = gate
        .only(&[StageId::Rls])
        .run()
        .await
        .expect("read the project");
    checked.assert_stage(StageId::Replay, StageVerdict::Pass);
    checked.assert_stage(StageId::Rls, StageVerdict::Fail);
    for skipped in [
        StageId::Idempotence,
        StageId::Properties,
        StageId::Pgtap,
        StageId::Snapshot,
        StageId::Lint,
    ] {
        checked.assert_stage(skipped, StageVerdict::Skipped);
        let reason = checked.report().stage(skipped).unwrap().reason.clone();
        assert_eq!(reason.as_deref(), Some("not selected"), "{skipped}");
    }
    checked.assert_failure_at(StageId::Rls, "policy-tests/notes.yaml", 11);
}

/// The README's library example is the example crate's test file word for word (CI runs that
/// file), and its dependencies are the crate's (a path there, a version in the README).
#[test]
fn the_readme_example_is_the_file_ci_runs() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    let readme = read("README.md");
    let section = &readme[readme.find("## Library: `cargo test`").expect("the section")..];
    let block = |lang: &str| {
        let fence = format!("```{lang}\n");
        let start = section.find(&fence).expect("a code block") + fence.len();
        let end = section[start..].find("```\n").expect("the block's end");
        section[start..start + end].to_owned()
    };
    assert_eq!(
        block("rust"),
        read("examples/supabase-app/tests/database.rs")
    );
    let manifest = read("examples/supabase-app/Cargo.toml");
    let dependencies = manifest
        .split_once("[dev-dependencies]\n")
        .expect("the example's dev-dependencies")
        .1;
    assert_eq!(
        block("toml"),
        format!(
            "[dev-dependencies]\n{}",
            dependencies.replace(r#"path = "../..""#, r#"version = "0.1""#)
        )
    );
}
